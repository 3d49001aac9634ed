"""Step 4: ONNX Runtime INT8 (QDQ, static, per-channel weights) over the same calibration images, same guard.

It exists so benchmarks can compare ONNX Runtime and OpenVINO at equal precision.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from edgesharp.calibrate.data import Sample, to_model_input
from edgesharp.calibrate.evaluate import score
from edgesharp.calibrate.quantize import GuardError
from edgesharp.calibrate.runners import ort_runner

log = logging.getLogger(__name__)


def _reader(calib: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib)

        def get_next(self):
            img = next(self._it, None)
            return None if img is None else {"input": to_model_input(img)}

        def rewind(self):
            self._it = iter(calib)

    return Reader()


def _preprocessed(onnx_path: Path, out: Path) -> Path:
    """ONNX Runtime's recommended pre-quantization pass (graph optimisation; symbolic shapes skipped:
    they cannot be inferred through dynamic H and W). Falls back to the original file if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(onnx_path), str(out), skip_symbolic_shape=True)
        return out
    except Exception as exc:
        log.warning("onnxruntime pre-quantization pass failed (%s); quantizing the exported graph as is", exc)
        return onnx_path


def quantize_onnx(onnx_path: str | Path, out_path: str | Path, calib: list[np.ndarray], val: list[Sample],
                  multiple: int, max_ssim_drop: float, subset_size: int, fp32: dict | None = None) -> dict:
    """Write a QDQ INT8 ONNX to `out_path` and return its report; GuardError (and no file) when it loses too much."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out_path = Path(out_path)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        source = _preprocessed(Path(onnx_path), Path(tmp) / "pre.onnx")
        quantize_static(str(source), str(out_path), _reader(calib[:subset_size]), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    seconds = time.perf_counter() - t0
    fp32 = fp32 or score(ort_runner(onnx_path), val, multiple)
    int8 = score(ort_runner(out_path), val, multiple)
    drop = fp32["mean_ssim"] - int8["mean_ssim"]
    report = {"fp32": fp32, "int8": int8, "ssim_drop": drop, "max_ssim_drop": max_ssim_drop,
              "ssim_drop_per_level": {lv: fp32["levels"][lv]["ssim"] - int8["levels"][lv]["ssim"] for lv in fp32["levels"]},
              "attempts": [{"method": "quantize_static QDQ per-channel u8/s8", "subset_size": min(subset_size, len(calib)), "reached_drop": drop}],
              "seconds": seconds, "passed": drop <= max_ssim_drop}
    log.info("  onnxruntime int8: mean SSIM %.4f vs fp32 %.4f, drop %.5f (limit %g)", int8["mean_ssim"], fp32["mean_ssim"], drop, max_ssim_drop)
    if not report["passed"]:
        out_path.unlink(missing_ok=True)
        raise GuardError(f"ONNX Runtime INT8 refused: mean SSIM drop {drop:.5f} exceeds --max-ssim-drop {max_ssim_drop:g} "
                         "(tried quantize_static QDQ per-channel; pass --skip-ort-int8 to make a bundle without it)", report)
    return report
