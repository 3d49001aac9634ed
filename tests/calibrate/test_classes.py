"""Step 6: the guard under every CPU kernel class (capped child processes), its criteria, and the overflow check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesharp.calibrate import classes
from edgesharp.calibrate.classes import GuardSample, choose_auto, guard_samples, judge_class
from edgesharp.calibrate.untrained import build_tiny_result, synthetic_images
from edgesharp.edge.backends.cpu_classes import runnable_classes


def _samples(groups):
    img = np.zeros((8, 8, 3), np.uint8)
    return [GuardSample(f"im{i}", g, img, img) for i, g in enumerate(groups)]


def test_guard_set_has_levels_dark_low_contrast_and_large_frames():
    images = synthetic_images(2, 64, 80)
    large = [("big", np.random.default_rng(0).integers(0, 256, (760, 1300, 3), dtype=np.uint8))]
    samples = guard_samples(images, large)
    groups = {s.group for s in samples}
    assert groups == {"heavy", "medium", "low", "dark-heavy", "dark-medium", "dark-low", "low-contrast-heavy", "large-heavy"}
    assert all(s.blurred.shape == (64, 64, 3) for s in samples if s.group != "large-heavy")
    big = [s for s in samples if s.group == "large-heavy"]
    assert len(big) == 1 and big[0].sharp.shape == (720, 1280, 3)
    dark = next(s for s in samples if s.group == "dark-heavy")
    assert dark.sharp.mean() < 0.55 * next(s for s in samples if s.group == "heavy").sharp.mean()


def test_a_group_mean_drop_fails():
    samples = _samples(["heavy", "heavy", "low"])
    verdict = judge_class(samples, [0.9, 0.9, 0.95], [0.8, 0.8, 0.94], [0.88, 0.89, 0.95], max_drop=0.01,
                          below_tolerance=0.0)
    assert not verdict["passed"] and verdict["worst_group"] == "heavy"
    assert verdict["drops"]["heavy"] == pytest.approx(0.015) and "heavy loses 0.0150" in verdict["failures"][0]


def test_an_image_below_its_input_where_fp32_is_not_fails_even_when_means_pass():
    samples = _samples(["low", "low", "low"])
    # image 1 falls below its input (0.950 -> 0.947) where FP32 (0.951) is above; image 2 was below in FP32 too
    verdict = judge_class(samples, [0.96, 0.951, 0.93], [0.95, 0.95, 0.94], [0.962, 0.947, 0.93], max_drop=0.01,
                          below_tolerance=0.0005)
    assert not verdict["passed"] and verdict["below_input"] == ["im1 low (-0.0030; FP32 +0.0010)"]
    # FP32 a hair below its input counts as below: INT8 further below is not INT8's failure
    assert judge_class(samples, [0.96, 0.9499, 0.93], [0.95, 0.95, 0.94], [0.962, 0.947, 0.93], 0.01, 0.0005)["passed"]
    assert judge_class(samples, [0.96, 0.951, 0.93], [0.95, 0.95, 0.94], [0.962, 0.9496, 0.93], 0.01, 0.0005)["passed"]


def test_auto_takes_the_fastest_precision_that_passed_and_the_exact_one_on_a_tie():
    passed = {"int8": {"passed": True}, "fp16": {"passed": True}}
    assert choose_auto({"precisions": passed, "fps": {"int8": 30.0, "fp16": 25.0}}) == "int8"
    assert choose_auto({"precisions": passed, "fps": {"int8": 30.0, "fp16": 29.5}}) == "fp16"
    assert choose_auto({"precisions": {**passed, "int8": {"passed": False}}, "fps": {"int8": 40.0, "fp16": 25.0}}) == "fp16"
    assert choose_auto({"precisions": passed, "fps": None}) == "fp16"
    assert choose_auto({"precisions": {"int8": {"passed": False}}, "fps": None}) is None


@pytest.fixture(scope="module")
def classed(tmp_path_factory):
    """A tiny bundle calibrated with the class guard on every class this CPU runs (each in a capped process)."""
    result = build_tiny_result(tmp_path_factory.mktemp("classed") / "b", guard_classes=None, class_timing_s=0.0)
    assert result.bundle is not None, result.failure
    return result


def test_every_runnable_class_is_checked_in_a_process_capped_to_it(classed):
    manifest = json.loads((classed.bundle / "manifest.json").read_text())
    checked = manifest["kernel_classes"]["classes"]
    assert sorted(checked) == sorted(k.name for k in runnable_classes())
    for entry in checked.values():
        assert entry["checked"], entry  # the child's own detection agreed with the class asked for
        assert set(entry["precisions"]) >= {"int8", "fp16"} and entry["auto"] in ("int8", "fp16", "fp32")
        assert entry["fps_1280x720"] is None  # not timed here: the float-only test below times one class
    assert manifest["self_check"]["tolerance"] >= 0.5
    assert {"self_check_input.png", "self_check_fp32.png"} <= set(manifest["files"])


def test_the_runtime_takes_what_the_guard_chose_and_passes_its_self_check(classed):
    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.backends.cpu_classes import detect
    from edgesharp.edge.bundle import load_bundle

    bundle = load_bundle(classed.bundle)
    with open_backend(bundle, "openvino", "auto") as be:
        assert be.precision == bundle.manifest["kernel_classes"]["classes"][detect().name]["auto"]
        assert be.self_check["passed"]


def test_a_candidate_failing_one_class_only_is_refused(tmp_path, monkeypatch):
    real = classes._run_child

    def one_bad_class(name, cap, spec, scratch):
        result = real(name, cap, spec, scratch)
        if name == "avx2" and "int8" in result.get("precisions", {}):
            result["precisions"]["int8"]["ssim"] = [v - 0.05 for v in result["precisions"]["int8"]["ssim"]]
        return result

    monkeypatch.setattr(classes, "_run_child", one_bad_class)
    result = build_tiny_result(tmp_path / "b", guard_classes=["avx2"], class_timing_s=0.0, max_ssim_drop=0.02)
    assert result.bundle is None and not (tmp_path / "b").exists()
    assert "OpenVINO INT8 refused on CPU class avx2" in result.failure and "loses 0.05" in result.failure
    assert result.report["refused"]["kernel_classes"]["classes"]["avx2"]["precisions"]["fp16"]["passed"]


def test_overflow_report_reads_both_weight_forms(tmp_path):
    import openvino as ov
    import openvino.opset13 as ops

    from edgesharp.calibrate.overflow import overflow_report

    x = ops.parameter([1, 4, 8, 8], ov.Type.f32)
    # QAT's export: s8 constant -> Convert -> Multiply(scale)
    q = ops.constant(np.array([100, -3, 5, 0] * 4, np.int8).reshape(4, 4, 1, 1))
    w1 = ops.multiply(ops.convert(q, ov.Type.f32), ops.constant(np.full((4, 1, 1, 1), 0.01, np.float32)))
    y = ops.convolution(x, w1, [1, 1], [0, 0], [0, 0], [1, 1])
    # the post-training form: float weights behind a symmetric 255-level FakeQuantize
    wf = ops.constant(np.array([0.5, -0.25, 0.1, 0.0] * 4, np.float32).reshape(4, 4, 1, 1))
    lo, hi = ops.constant(np.float32(-1.0)), ops.constant(np.float32(1.0))
    w2 = ops.fake_quantize(wf, lo, hi, lo, hi, 255)
    y = ops.convolution(y, w2, [1, 1], [0, 0], [0, 0], [1, 1])
    report = overflow_report(ov.Model([y], [x]))
    assert report["quantized_dense_convolutions"] == 2
    assert report["max_abs_weight"] == 100 and len(report["unsafe"]) == 1  # 0.5 / (2/254) = 63.5 -> 64: safe
    assert not report["safe"]


def test_int8_optional_writes_a_float_bundle_that_auto_runs_in_float(tmp_path, monkeypatch):
    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.bundle import load_bundle

    real = classes._run_child

    def bad_int8(name, cap, spec, scratch):
        result = real(name, cap, spec, scratch)
        result["precisions"]["int8"]["ssim"] = [v - 0.05 for v in result["precisions"]["int8"]["ssim"]]
        return result

    monkeypatch.setattr(classes, "_run_child", bad_int8)
    result = build_tiny_result(tmp_path / "b", guard_classes=["avx2"], class_timing_s=0.1, max_ssim_drop=0.02,
                               int8_optional=True)
    assert "refused on CPU class avx2" in result.report["int8_refused"]["why"]
    assert result.failure is None and result.bundle is not None
    bundle = load_bundle(result.bundle)
    assert not bundle.has("openvino", "int8") and not (result.bundle / "int8.xml").exists()
    assert "refused on CPU class avx2" in bundle.manifest["int8_refused"]
    avx2 = bundle.manifest["kernel_classes"]["classes"]["avx2"]
    assert avx2["auto"] in ("fp16", "fp32") and avx2["fps_1280x720"]["int8"] > 0 and avx2["fps_1280x720"]["fp16"] > 0
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with open_backend(bundle, "openvino", "auto") as be:
        assert be.precision in ("fp16", "fp32") and be.self_check["passed"]
