"""Step 4: ONNX Runtime QDQ INT8 with the same SSIM report and guard."""

from __future__ import annotations

import onnx
import pytest

from edgesharp.calibrate.data import calibration_inputs, validation_samples
from edgesharp.calibrate.ort_int8 import quantize_onnx
from edgesharp.calibrate.quantize import GuardError
from edgesharp.calibrate.runners import ort_runner
from edgesharp.calibrate.untrained import synthetic_images


def _data():
    images = synthetic_images(2, 40, 48, seed=5)
    return calibration_inputs(images, 32, 3), validation_samples(images, None)


def test_ort_int8_is_qdq_and_scored(float_ir, tiny_model, tmp_path):
    path, _ = float_ir
    calib, val = _data()
    out = tmp_path / "int8.onnx"
    report = quantize_onnx(path, out, calib, val, tiny_model.size_multiple, max_ssim_drop=0.5, subset_size=3)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert report["passed"] and set(report["int8"]["levels"]) == {"heavy", "medium", "low"}
    assert report["ssim_drop"] == pytest.approx(report["fp32"]["mean_ssim"] - report["int8"]["mean_ssim"])
    ort_runner(out)  # loads


def test_ort_int8_guard_failure_leaves_no_file(float_ir, tiny_model, tmp_path):
    path, _ = float_ir
    calib, val = _data()
    out = tmp_path / "int8.onnx"
    with pytest.raises(GuardError, match="ONNX Runtime INT8 refused"):
        quantize_onnx(path, out, calib, val, tiny_model.size_multiple, max_ssim_drop=-1.0, subset_size=3)
    assert not out.exists()
