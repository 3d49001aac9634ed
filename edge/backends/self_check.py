"""The start-up self-check: the bundle's reference frame through the chosen precision, against its FP32 output.

A bundle from `edgesharp calibrate` carries a small blurred frame (`self_check_input.png`, BGR) and what FP32
makes of it (`self_check_fp32.png`), and in its manifest the largest mean absolute difference (8-bit levels) a
precision may show there: a few times the worst that any precision that passed the guard showed on any CPU
class it was checked on. A model that computes something else on this CPU (INT8 kernels that saturate, a
damaged file) shows far more, and the runtime falls back to the next precision with one warning instead of
serving it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

INPUT_FILE = "self_check_input.png"
OUTPUT_FILE = "self_check_fp32.png"
MIN_TOLERANCE = 0.5  # 8-bit levels: below this, rounding differences between kernels alone could trip the check


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgesharpError(f"{path}: the bundle's self-check frame cannot be read")
    return img


def reference_error(backend, folder: Path, spec: dict) -> float:
    """Mean absolute difference (8-bit levels) between `backend`'s output for the reference frame and FP32's."""
    frame = _read(Path(folder) / spec["input"])
    expected = _read(Path(folder) / spec["output"])
    out = backend.infer(frame)
    if out.shape != expected.shape:
        raise EdgesharpError(f"{folder}: self-check output is {out.shape}, the stored FP32 output {expected.shape}")
    return float(np.mean(np.abs(out.astype(np.int16) - expected.astype(np.int16))))


def passes(backend, bundle) -> tuple[bool, float | None, float | None]:
    """(passed, error, tolerance) of `backend` on `bundle`'s self-check; (True, None, None) when it has none."""
    spec = bundle.manifest.get("self_check")
    if not spec:
        return True, None, None
    error = reference_error(backend, bundle.path, spec)
    tolerance = max(float(spec.get("tolerance", MIN_TOLERANCE)), MIN_TOLERANCE)
    return error <= tolerance, error, tolerance
