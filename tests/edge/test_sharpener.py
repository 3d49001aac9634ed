"""The Python API: Sharpener.enhance / .stream on the tiny bundle, colour order, strength, missing default model."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import frame_index, indexed_frame
from ir_factory import reference_output

from edge import Sharpener
from edge.errors import EdgesharpError


def test_enhance_bgr_and_rgb(tiny_bundle_dir):
    frame = indexed_frame(3, 70, 90)
    ref = reference_output(frame, 0.5)
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener:
        assert np.abs(sharpener.enhance(frame).astype(int) - ref).max() <= 3
    with Sharpener(tiny_bundle_dir, precision="fp32", color="rgb", backend="onnxruntime") as sharpener:
        out = sharpener.enhance(np.ascontiguousarray(frame[:, :, ::-1]))
        assert np.abs(out[:, :, ::-1].astype(int) - ref).max() <= 1


def test_stream_keeps_order_and_strength(tiny_bundle_dir):
    frames = [indexed_frame(i, 64, 64) for i in range(15)]
    with Sharpener(tiny_bundle_dir, precision="fp32", requests=3, strength=0.0) as sharpener:
        assert sharpener.backend.num_requests == 3
        outs = list(sharpener.stream(iter(frames)))
        assert all(np.array_equal(a, b) for a, b in zip(outs, frames, strict=True))  # strength 0: input back
        sharpener.strength = 1.0
        first = []
        for out in sharpener.stream(frames):  # stopping early leaves the backend usable
            first.append(frame_index(out))
            if len(first) == 4:
                break
        assert first == [0, 1, 2, 3]
        assert [frame_index(o) for o in sharpener.stream(frames)] == list(range(15))


def test_bad_input_and_options(tiny_bundle_dir):
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener, pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
        sharpener.enhance(np.zeros((10, 10), np.float32))
    with pytest.raises(EdgesharpError, match="color"):
        Sharpener(tiny_bundle_dir, color="yuv")


def test_missing_default_model_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr("edge.bundle.default_bundle_path", lambda: tmp_path / "default")
    with pytest.raises(EdgesharpError, match="pass --model BUNDLE_DIR, or make one with 'edgesharp calibrate'"):
        Sharpener()
