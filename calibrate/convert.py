"""Step 2: ONNX -> OpenVINO model, u8 BGR NHWC pre/post-processing, model facts in rt_info, IR files, parity.

The float model (no pre/post-processing) is what NNCF quantizes and what parity compares with ONNX
Runtime; `add_u8_bgr_io` wraps any float model (FP32 or INT8) so that it takes the frames OpenCV
gives (uint8 BGR NHWC, H and W padded to the size multiple) and returns the same layout:
u8 -> f32, BGR -> RGB, /255, NHWC -> NCHW, model, x255, clamp 0..255, round half to even,
RGB -> BGR, NCHW -> NHWC, u8. A BGR-native float model (`edgesharp.train.models.export_form.bgr_native`) skips
both channel swaps: on a 2-core CPU they cost more than a tenth of a frame's time.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edgesharp.calibrate.data import from_model_output, pad_to_multiple, to_model_input
from edgesharp.calibrate.runners import Runner, bgr_as_rgb, openvino_runner
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

PARITY_TOL = 1e-4
RT_INFO_ROOT = "edgesharp"


class ConvertError(EdgesharpError):
    """OpenVINO conversion failed, or the converted model disagrees with ONNX Runtime."""


def convert_onnx(onnx_path: str | Path):
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise ConvertError(f"{onnx_path}: OpenVINO cannot convert it: {str(exc).strip().splitlines()[0]}") from exc


def set_model_facts(model, facts: dict) -> None:
    """Store facts (size multiple, architecture, ...) under rt_info['edgesharp'][key] as strings (JSON for containers)."""
    for key, value in facts.items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, tuple)) else str(value)
        model.set_rt_info(text, [RT_INFO_ROOT, key])


def model_facts(model) -> dict[str, str]:
    if not model.has_rt_info([RT_INFO_ROOT]):
        return {}
    return {k: v.astype(str) for k, v in model.get_rt_info([RT_INFO_ROOT]).astype(dict).items()}


def add_u8_bgr_io(model, bgr_native: bool = False):
    """A copy of the float model taking and returning uint8 BGR NHWC frames (see the module docstring);
    `bgr_native`: the float model itself takes and returns BGR."""
    import openvino as ov
    import openvino.opset13 as ops
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model.clone())
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    pre = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if not bgr_native:
        pre.convert_color(ColorFormat.RGB)
    pre.scale(255.0)
    ppp.output().model().set_layout(ov.Layout("NCHW"))
    ppp.output().tensor().set_layout(ov.Layout("NHWC")).set_element_type(ov.Type.u8)

    def to_u8_range_bgr(node):
        x = ops.multiply(node, ops.constant(np.float32(255.0)))
        x = ops.round(ops.clamp(x, 0.0, 255.0), "half_to_even")
        if bgr_native:
            return x.output(0)
        channels = ops.constant(np.array([2, 1, 0], dtype=np.int64))
        return ops.gather(x, channels, ops.constant(np.int64(1))).output(0)

    ppp.output().postprocess().custom(to_u8_range_bgr)
    return ppp.build()


def save_ir(model, xml_path: str | Path, fp16: bool = False) -> Path:
    import openvino as ov

    xml_path = Path(xml_path)
    ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    return xml_path


def ir_parity(model, reference: Runner, inputs: dict[str, np.ndarray], tol: float = PARITY_TOL,
              bgr_native: bool = False) -> dict[str, dict]:
    """Max abs error of the float OpenVINO model (f32 inference) vs `reference` (ONNX Runtime, RGB);
    a `bgr_native` model is fed and read in its own channel order."""
    ov_run = openvino_runner(model, fp32_only=True)
    if bgr_native:
        ov_run = bgr_as_rgb(ov_run)
    results = {}
    for name, x in inputs.items():
        err = float(np.abs(ov_run(x) - reference(x)).max())
        results[name] = {"shape": list(x.shape), "max_abs_err": err}
        log.info("  openvino fp32 vs onnxruntime, %s: max abs err %.2e", name, err)
        if not err <= tol:
            raise ConvertError(f"OpenVINO FP32 differs from ONNX Runtime by {err:.3g} on {name} {x.shape} (limit {tol:g})")
    return results


def reference_u8_bgr(reference: Runner, bgr: np.ndarray, multiple: int) -> np.ndarray:
    """What the u8 IR should return for a BGR frame of any size: numpy pre/post around a float runner.

    The frame is padded to the size multiple by reflection (as the runtime does) and the result cropped.
    """
    h, w = bgr.shape[:2]
    rgb = np.ascontiguousarray(pad_to_multiple(bgr, multiple)[..., ::-1])
    out = from_model_output(reference(to_model_input(rgb)))
    return np.ascontiguousarray(out[:h, :w, ::-1])


def u8_ir_infer(compiled, bgr: np.ndarray, multiple: int) -> np.ndarray:
    """Run a u8 IR on a BGR frame of any size: reflect-pad to the multiple, infer, crop."""
    h, w = bgr.shape[:2]
    padded = np.ascontiguousarray(pad_to_multiple(bgr, multiple)[None])
    return compiled({0: padded})[0][0, :h, :w].copy()


def u8_io_check(u8_model, reference: Runner, frames: dict[str, np.ndarray], multiple: int) -> dict[str, dict]:
    """Compare the u8 IR with the numpy reference on BGR frames; rounding ties may differ by 1 on a few pixels."""
    compiled = shared_core().compile_model(u8_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    results = {}
    for name, bgr in frames.items():
        got = u8_ir_infer(compiled, bgr, multiple)
        want = reference_u8_bgr(reference, bgr, multiple)
        diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
        results[name] = {"shape": list(bgr.shape), "max_abs_diff": int(diff.max()), "differing_fraction": float((diff > 0).mean())}
        log.info("  u8 IR vs numpy reference, %s %dx%d: max diff %d, %.4f%% pixels differ", name, bgr.shape[1], bgr.shape[0], diff.max(), 100 * (diff > 0).mean())
        if diff.max() > 1 or (diff > 0).mean() > 1e-3:
            raise ConvertError(f"u8 pre/post-processing mismatch on {name} {bgr.shape}: max diff {diff.max()}, {(diff > 0).mean():.2%} pixels differ")
    return results
