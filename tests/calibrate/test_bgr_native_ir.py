"""A bundle's OpenVINO IR is built BGR-native: no channel swap in the graph, the same frames out as ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np

from edgesharp.edge.backends import open_backend
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.bundle import load_bundle


def test_the_ir_has_no_channel_swap_and_agrees_with_onnx_runtime(tiny_bundle):
    report = json.loads((tiny_bundle / "calibration_report.json").read_text())
    assert report["ir_float_channels"] == "bgr"
    for precision in ("fp32", "int8"):
        ops = {op.get_type_name() for op in shared_core().read_model(str(tiny_bundle / f"{precision}.xml")).get_ordered_ops()}
        assert "Gather" not in ops and "Split" not in ops and "Slice" not in ops, precision
    bundle = load_bundle(tiny_bundle)
    frame = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    frame[:, :, 0] //= 4  # colours far apart, so a swapped pair of channels would show
    ov_out = open_backend(bundle, "openvino", "fp32").infer(frame)
    ort_out = open_backend(bundle, "onnxruntime", "fp32").infer(frame)
    diff = np.abs(ov_out.astype(int) - ort_out.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-2
    assert np.abs(ov_out.astype(int) - frame.astype(int)).max() > 2  # the network changes the frame
