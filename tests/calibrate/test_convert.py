"""Step 2: OpenVINO IR parity with ONNX Runtime, the u8 BGR pre/post-processing, rt_info facts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch import nn

from edgesharp.calibrate.convert import (
    ConvertError,
    add_u8_bgr_io,
    convert_onnx,
    ir_parity,
    model_facts,
    reference_u8_bgr,
    save_ir,
    set_model_facts,
    u8_ir_infer,
)
from edgesharp.calibrate.data import pad_to_multiple
from edgesharp.calibrate.export import export_onnx
from edgesharp.calibrate.runners import ort_runner
from edgesharp.calibrate.untrained import sample_frame
from edgesharp.edge.backends.openvino_core import shared_core


class _Fixed(nn.Module):
    """A parameter-free model to pin the u8 I/O exactly: identity, or the red channel everywhere."""

    size_multiple = 1

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "identity":
            return x * 1.0
        if self.kind == "red":
            return x[:, 0:1].expand(-1, 3, -1, -1) * 1.0
        return x * 2.0 - 0.5  # "overdrive": leaves 0..1, so clamping matters


def _u8_compiled(kind: str, tmp_path):
    path = export_onnx(_Fixed(kind), tmp_path / f"{kind}.onnx", sample_hw=(8, 8))
    return shared_core().compile_model(add_u8_bgr_io(convert_onnx(path)), "CPU")


def test_ir_parity_with_onnxruntime(float_ir):
    path, model = float_ir
    rng = np.random.default_rng(0)
    inputs = {"a": rng.random((1, 3, 32, 48), dtype=np.float32), "b": rng.random((1, 3, 64, 40), dtype=np.float32)}
    result = ir_parity(model, ort_runner(path), inputs)
    assert all(r["max_abs_err"] <= 1e-4 for r in result.values())
    with pytest.raises(ConvertError, match="differs from ONNX Runtime"):
        ir_parity(model, lambda x: ort_runner(path)(x) + 1e-3, inputs)


def test_u8_io_identity_returns_the_frame(tmp_path):
    frame = sample_frame(24, 40)[..., ::-1].copy()
    out = _u8_compiled("identity", tmp_path)({0: frame[None]})[0]
    assert out.dtype == np.uint8 and out.shape == (1, 24, 40, 3)
    np.testing.assert_array_equal(out[0], frame)


def test_u8_io_colour_order_is_bgr_in_and_out(tmp_path):
    bgr = sample_frame(16, 16)[..., ::-1].copy()
    out = _u8_compiled("red", tmp_path)({0: bgr[None]})[0][0]
    # the model sees RGB, so its "red" is BGR channel 2; the output copies it to every channel
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], bgr[..., 2])


def test_u8_io_clamps_and_rounds(tmp_path):
    bgr = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    out = _u8_compiled("overdrive", tmp_path)({0: bgr[None]})[0][0]
    expected = np.round(np.clip((bgr.astype(np.float32) / 255 * 2 - 0.5) * 255, 0, 255)).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert out.min() == 0 and out.max() == 255


def test_u8_known_frame_odd_size_matches_numpy_reference(tiny_model, float_ir):
    path, model = float_ir
    multiple = tiny_model.size_multiple
    u8 = add_u8_bgr_io(model)
    frame = sample_frame(479, 641)[..., ::-1].copy()
    compiled = shared_core().compile_model(u8, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = u8_ir_infer(compiled, frame, multiple)
    want = reference_u8_bgr(ort_runner(path), frame, multiple)
    assert got.shape == frame.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert (got != want).mean() < 1e-3
    assert np.abs(got.astype(int) - frame.astype(int)).mean() > 1  # the model does change the frame


def test_pad_to_multiple_reflects():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = pad_to_multiple(img, 4)
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[5, :7], img[3])  # reflect: row 5 mirrors row 3
    np.testing.assert_array_equal(padded[:5, 7], img[:, 5])
    np.testing.assert_array_equal(padded[:5, :7], img)


def test_rt_info_facts_survive_save_and_read(float_ir, tmp_path):
    _, model = float_ir
    u8 = add_u8_bgr_io(model)
    set_model_facts(u8, {"size_multiple": 4, "arch": "nafnet-test", "arch_config": {"width": 8}})
    for fp16 in (False, True):
        xml = save_ir(u8, tmp_path / f"m{int(fp16)}.xml", fp16=fp16)
        facts = model_facts(shared_core().read_model(xml))
        assert facts["size_multiple"] == "4" and facts["arch"] == "nafnet-test"
        assert json.loads(facts["arch_config"]) == {"width": 8}


def test_fp16_ir_is_half_size_and_close(float_ir, tmp_path):
    _, model = float_ir
    u8 = add_u8_bgr_io(model)
    f32 = save_ir(u8, tmp_path / "f32.xml")
    f16 = save_ir(u8, tmp_path / "f16.xml", fp16=True)
    assert f16.with_suffix(".bin").stat().st_size < 0.6 * f32.with_suffix(".bin").stat().st_size
    frame = sample_frame(32, 48)
    core = shared_core()
    a = core.compile_model(str(f32), "CPU")({0: frame[None]})[0]
    b = core.compile_model(str(f16), "CPU")({0: frame[None]})[0]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 3



def test_calibration_crops_fit_the_size_multiple():
    from edgesharp.calibrate.data import calibration_inputs
    from edgesharp.calibrate.untrained import synthetic_images

    crops = calibration_inputs(synthetic_images(2, 60, 70), 50, 5, multiple=8)
    assert len(crops) == 5 and {c.shape for c in crops} == {(48, 48, 3)} and all(c.dtype == np.uint8 for c in crops)
