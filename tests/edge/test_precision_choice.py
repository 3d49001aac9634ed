"""`--precision auto` per CPU class (faked cpuinfo) and the start-up self-check's fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from ir_factory import build_test_bundle, reference_output

from edgesharp.edge.backends import cpu_classes, open_backend
from edgesharp.edge.backends.cpu_classes import detect
from edgesharp.edge.backends.precision_choice import choose
from edgesharp.edge.bundle import load_bundle
from edgesharp.edge.errors import EdgesharpError

SKYLAKE_LAPTOP = "fpu sse4_2 avx fma f16c avx2"
ICE_LAKE = SKYLAKE_LAPTOP + " avx512f avx512bw avx512vl avx512dq avx512_vnni"
ALDER_LAKE = SKYLAKE_LAPTOP + " avx_vnni"
SAPPHIRE_RAPIDS = ICE_LAKE + " avx512_bf16 avx_vnni amx_tile amx_int8 amx_bf16"


def _entry(auto, passed=("int8", "fp16"), fps=None):
    return {"checked": True, "auto": auto, "fps_1280x720": fps or {"int8": 30.0, "fp16": 25.0},
            "precisions": {p: {"passed": p in passed} for p in ("int8", "fp16")}}


CLASSES = {"kernel_classes": {"classes": {
    "avx2": _entry("fp16", fps={"int8": 20.0, "fp16": 22.0}),
    "avx512-vnni": _entry("int8"),
    "avx512": {"checked": False, "why": "test"},
}}}


@pytest.fixture(autouse=True)
def _no_cap(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


def fake_cpu(monkeypatch, flags: str):
    monkeypatch.setattr(cpu_classes, "cpu_flags", lambda: (set(flags.split()), "test flags"))


@pytest.fixture(scope="module")
def classed_bundle(tmp_path_factory):
    return load_bundle(build_test_bundle(tmp_path_factory.mktemp("classed") / "b", precisions=("fp32", "fp16", "int8"),
                                         self_check=True, extra_manifest=CLASSES))


@pytest.mark.parametrize("flags, precision, words", [
    (SKYLAKE_LAPTOP, "fp16", "fp16 passed the bundle's guard on this class"),
    (ICE_LAKE, "int8", "int8 passed the bundle's guard on this class"),
    (ALDER_LAKE, "int8", "not checked on this class; avx512-vnni computes INT8 and float the same way"),
    (SAPPHIRE_RAPIDS, "fp32", "nor on one that computes the same way"),  # bf16 floats: nothing checked computes so
])
def test_auto_picks_per_cpu_flags(monkeypatch, classed_bundle, flags, precision, words):
    fake_cpu(monkeypatch, flags)
    choice = choose(classed_bundle)
    assert choice.precision == precision and words in choice.reason
    assert choice.reason.startswith(f"CPU class {detect().name}")


def test_auto_follows_the_cap(monkeypatch, classed_bundle):
    fake_cpu(monkeypatch, ICE_LAKE)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert choose(classed_bundle).precision == "fp16"


def test_a_bundle_without_class_results_gets_int8_only_with_vnni(monkeypatch, tiny_bundle):
    fake_cpu(monkeypatch, SKYLAKE_LAPTOP)
    assert choose(tiny_bundle).precision == "fp16"
    fake_cpu(monkeypatch, ICE_LAKE)
    assert choose(tiny_bundle).precision == "int8"
    assert "no per-class guard results" in choose(tiny_bundle).reason


def test_onnxruntime_auto_is_fp32(monkeypatch, classed_bundle):
    fake_cpu(monkeypatch, ICE_LAKE)
    assert choose(classed_bundle, "onnxruntime").precision == "fp32"


def test_open_backend_records_the_choice_and_its_reason(monkeypatch, classed_bundle):
    fake_cpu(monkeypatch, ICE_LAKE)
    with open_backend(classed_bundle, "openvino", "auto") as be:
        info = be.describe()
    assert info["precision"] == "int8" and info["precision_requested"] == "auto" and info["cpu_class"] == "avx512-vnni"
    assert "passed the bundle's guard" in info["precision_reason"]
    assert info["self_check"]["passed"] and info["self_check"]["error"] <= 2.5


def test_self_check_falls_back_from_a_damaged_int8_with_one_warning(monkeypatch, tmp_path, caplog):
    damaged = load_bundle(build_test_bundle(tmp_path / "damaged", precisions=("fp32", "fp16", "int8"), int8_amount=3.0,
                                            self_check=True, extra_manifest=CLASSES))
    fake_cpu(monkeypatch, ICE_LAKE)
    with caplog.at_level(logging.WARNING), open_backend(damaged, "openvino", "auto") as be:
        assert be.precision == "fp16" and be.self_check["passed"]
        assert "failed the start-up self-check" in be.precision_reason
        frame = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        assert np.abs(be.infer(frame).astype(int) - reference_output(frame, 0.5).astype(int)).mean() < 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "int8 on this CPU gives a mean error" in warnings[0].getMessage()
    assert "falling back to fp16" in warnings[0].getMessage()


def test_a_forced_precision_is_kept_with_the_warning(monkeypatch, tmp_path, caplog):
    damaged = load_bundle(build_test_bundle(tmp_path / "damaged", precisions=("fp32", "fp16", "int8"), int8_amount=3.0,
                                            self_check=True))
    with caplog.at_level(logging.WARNING), open_backend(damaged, "openvino", "int8") as be:
        assert be.precision == "int8" and not be.self_check["passed"]
    assert "kept, as --precision forced it" in caplog.text


def test_no_precision_passing_the_self_check_is_an_error(monkeypatch, tmp_path):
    broken = build_test_bundle(tmp_path / "broken", precisions=("fp32",), with_onnx=False, self_check=True)
    import cv2

    cv2.imwrite(str(broken / "self_check_fp32.png"), np.zeros((32, 40, 3), np.uint8))
    import json

    from ir_factory import _sha256
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"]["self_check_fp32.png"]["sha256"] = _sha256(broken / "self_check_fp32.png")
    manifest["files"]["self_check_fp32.png"]["bytes"] = (broken / "self_check_fp32.png").stat().st_size
    (broken / "manifest.json").write_text(json.dumps(manifest))
    fake_cpu(monkeypatch, ICE_LAKE)
    with pytest.raises(EdgesharpError, match="no precision of this bundle reproduces its FP32 reference"):
        open_backend(load_bundle(broken), "openvino", "auto")
