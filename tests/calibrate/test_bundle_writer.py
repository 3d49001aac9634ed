"""Step 5: the bundle is written atomically and what it holds is what the runtime expects."""

from __future__ import annotations

import json
import shutil

import numpy as np
import openvino as ov
import pytest

from edgesharp.calibrate.bundle_writer import BundleStaging
from edgesharp.calibrate.convert import model_facts
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.bundle import load_bundle
from edgesharp.edge.errors import BundleError

EXPECTED_FILES = {"manifest.json", "model.onnx", "fp32.xml", "fp32.bin", "fp16.xml", "fp16.bin", "int8.xml",
                  "int8.bin", "int8.onnx", "calibration_report.json"}


def test_tiny_bundle_is_complete_and_verifies(tiny_bundle):
    assert {p.name for p in tiny_bundle.iterdir()} == EXPECTED_FILES
    bundle = load_bundle(tiny_bundle)
    assert bundle.arch == "nafnet-test" and bundle.precisions == ("fp32", "fp16", "int8")
    assert bundle.model_path("onnxruntime", "int8").name == "int8.onnx"
    m = bundle.manifest
    for precision in ("fp32", "fp16", "int8"):
        assert set(m["metrics"][precision]) == {"heavy", "medium", "low"}
        assert 0 < m["metrics"][precision]["heavy"]["ssim"] <= 1
    assert set(m["int8_ssim_drop"]) == {"openvino", "onnxruntime"}
    # the guard (mean, the default) compared "guarded" with max_ssim_drop; per level alongside
    assert m["ssim_guard"] == "mean"
    for drops in m["int8_ssim_drop"].values():
        assert set(drops) == {"mean", "guarded", "heavy", "medium", "low"} and drops["guarded"] == drops["mean"]
    assert m["versions"]["openvino"] and m["versions"]["nncf"] and m["recipe"]["source"]
    assert set(m["files"]) == EXPECTED_FILES - {"manifest.json"}
    report = json.loads((tiny_bundle / "calibration_report.json").read_text())
    assert report["onnx_parity"] and all(v["max_abs_err"] <= 1e-4 for v in report["onnx_parity"].values())
    assert report["file_bytes"]["int8.bin"] < report["file_bytes"]["fp32.bin"]


def test_bundle_ir_is_u8_bgr_and_carries_facts(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    core = shared_core()
    for precision in bundle.precisions:
        model = core.read_model(bundle.model_path("openvino", precision))
        assert model.input(0).get_element_type() == ov.Type.u8 and model.output(0).get_element_type() == ov.Type.u8
        assert model_facts(model)["size_multiple"] == str(bundle.size_multiple)
        m = bundle.size_multiple
        frame = np.full((1, 8 * m, 6 * m, 3), 128, np.uint8)
        assert core.compile_model(model, "CPU")({0: frame})[0].shape == frame.shape


def _good(tmp_path, tiny_bundle):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def test_failure_mid_write_keeps_the_previous_bundle(tmp_path, tiny_bundle):
    out, before = _good(tmp_path, tiny_bundle)
    with pytest.raises(RuntimeError, match="disk full"), BundleStaging(out) as stage:
        (stage.path / "model.onnx").write_bytes(b"half a model")
        raise RuntimeError("disk full")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_commit_refuses_an_invalid_bundle_and_keeps_the_old_one(tmp_path, tiny_bundle):
    out, before = _good(tmp_path, tiny_bundle)
    with pytest.raises(BundleError, match="size_multiple"), BundleStaging(out) as stage:
        (stage.path / "fp32.xml").write_text("<net/>")
        stage.commit({"name": "x", "arch": "x", "arch_config": {}, "size_multiple": 0, "metrics": {},
                      "precisions": {"fp32": {"openvino": "fp32.xml"}}}, {})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_commit_swaps_in_a_new_bundle(tmp_path, tiny_bundle):
    out, _ = _good(tmp_path, tiny_bundle)
    with BundleStaging(out) as stage:
        for name in ("fp32.xml", "fp32.bin"):
            (stage.path / name).write_bytes(b"new " + name.encode())
        stage.commit({"name": "new", "arch": "x", "arch_config": {}, "size_multiple": 4, "metrics": {},
                      "precisions": {"fp32": {"openvino": "fp32.xml"}}}, {"note": "replacement"})
    assert load_bundle(out).name == "new"
    assert {p.name for p in out.iterdir()} == {"manifest.json", "fp32.xml", "fp32.bin", "calibration_report.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
