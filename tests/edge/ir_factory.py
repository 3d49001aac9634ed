"""A real, tiny model bundle built without torch: OpenVINO opset IR (u8 BGR NHWC in/out) plus the same net as ONNX.

The net is a per-channel 3x3 sharpening kernel followed by SpaceToDepth/DepthToSpace with block
`size_multiple` (an identity that only accepts frames whose sides are multiples of the block, so the
runtime's reflect padding is really exercised) and a clamp to [0, 1]. The IR embeds the pre/post-processing
of the bundle contract (docs/contracts.md); the ONNX follows the float32 RGB NCHW [0, 1] contract.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

MANIFEST_FORMAT = "edgesharp-bundle/1"


def sharpen_kernel(amount: float) -> np.ndarray:
    """The 3x3 kernel of `x + amount * laplacian(x)` (sums to 1, so flat areas stay unchanged)."""
    k = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32) * amount
    k[1, 1] += 1.0
    return k


def reference_output(frame_bgr: np.ndarray, amount: float, size_multiple: int = 8) -> np.ndarray:
    """What the runtime should return for this model, in numpy/OpenCV: reflect-101 padding of the bottom and
    right edges up to the size multiple, the kernel with the model's zero padding, then the crop back."""
    import cv2

    h, w = frame_bgr.shape[:2]
    ph, pw = -h % size_multiple, -w % size_multiple
    x = cv2.copyMakeBorder(frame_bgr, 0, ph, 0, pw, cv2.BORDER_REFLECT_101).astype(np.float32) / 255.0
    y = cv2.filter2D(x, -1, sharpen_kernel(amount), borderType=cv2.BORDER_CONSTANT)[:h, :w]
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


def _weights(amount: float) -> np.ndarray:
    return np.repeat(sharpen_kernel(amount)[None, None], 3, axis=0)  # (3, 1, 3, 3): one group per channel


def build_float_model(amount: float, size_multiple: int, h: int = 64, w: int = 64):
    """The float32 RGB NCHW [0, 1] model as an ov.Model (what calibrate/ converts from ONNX)."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 3, h, w], ov.Type.f32, name="input")
    weights = ops.constant(_weights(amount).reshape(3, 1, 1, 3, 3))  # GroupConvolution: (G, O/G, I/G, kh, kw)
    y = ops.group_convolution(x, weights, strides=[1, 1], pads_begin=[1, 1], pads_end=[1, 1], dilations=[1, 1])
    y = ops.space_to_depth(y, "blocks_first", size_multiple)
    y = ops.depth_to_space(y, "blocks_first", size_multiple)
    y = ops.clamp(y, 0.0, 1.0)
    y.output(0).get_tensor().set_names({"output"})
    return ov.Model([y], [x], "tiny_sharpen")


def embed_pre_post(model):
    """u8 BGR NHWC in, u8 BGR NHWC out, everything else inside the graph (the bundle's IR contract)."""
    import openvino as ov
    import openvino.opset13 as ops
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)

    def to_u8_bgr_nhwc(node):
        y = ops.multiply(node, ops.constant(np.float32(255.0)))
        y = ops.clamp(ops.round(y, "half_to_even"), 0.0, 255.0)
        y = ops.gather(y, ops.constant(np.array([2, 1, 0], np.int64)), ops.constant(np.int64(1)))
        y = ops.convert(y, ov.Type.u8)
        return ops.transpose(y, ops.constant(np.array([0, 2, 3, 1], np.int64))).output(0)

    ppp.output().postprocess().custom(to_u8_bgr_nhwc)
    return ppp.build()


def build_onnx(path: Path, amount: float, size_multiple: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], group=3, pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("SpaceToDepth", ["c"], ["s"], blocksize=size_multiple),
        helper.make_node("DepthToSpace", ["s"], ["d"], blocksize=size_multiple, mode="DCR"),
        helper.make_node("Clip", ["d", "lo", "hi"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(_weights(amount), "w"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_sharpen",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "height", "width"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_test_bundle(
    out_dir: str | Path,
    amount: float = 0.5,
    size_multiple: int = 8,
    precisions: tuple[str, ...] = ("fp32", "fp16"),
    with_onnx: bool = True,
    int8_amount: float | None = None,
    self_check: bool = False,
    extra_manifest: dict | None = None,
) -> Path:
    """Write a complete bundle folder (manifest.json, IR per precision, model.onnx) and return it.

    "int8" in `precisions` writes an FP32-weight IR under int8.xml: the runtime cannot tell and the tests
    only need the file layout; real INT8 comes from calibrate/. `int8_amount` builds that IR with another
    sharpening amount: a model that computes something else, as a damaged or saturating INT8 would.
    `self_check` adds the start-up self-check frame (a test image) and its FP32 output, tolerance 2.5 levels (bf16 CPUs run this float net 1.3 levels off).
    """
    import openvino as ov

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ir = embed_pre_post(build_float_model(amount, size_multiple))
    entries: dict[str, dict[str, str]] = {}
    for precision in precisions:
        model = ir
        if precision == "int8" and int8_amount is not None:
            model = embed_pre_post(build_float_model(int8_amount, size_multiple))
        ov.save_model(model, out / f"{precision}.xml", compress_to_fp16=(precision == "fp16"))
        entries[precision] = {"openvino": f"{precision}.xml"}
    if self_check:
        import cv2

        rng = np.random.default_rng(7)
        frame = cv2.GaussianBlur(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8), (0, 0), 1.5)
        cv2.imwrite(str(out / "self_check_input.png"), frame)
        cv2.imwrite(str(out / "self_check_fp32.png"), reference_output(frame, amount, size_multiple))
    if with_onnx:
        build_onnx(out / "model.onnx", amount, size_multiple)
        entries.setdefault("fp32", {})["onnxruntime"] = "model.onnx"
    files = {
        p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size}
        for p in sorted(out.iterdir())
        if p.suffix in (".xml", ".bin", ".onnx", ".png")
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": "tiny-sharpen-test",
        "arch": "test-sharpen-kernel",
        "arch_config": {"amount": amount},
        "size_multiple": size_multiple,
        "onnx_contract": {"input": "input", "output": "output", "layout": "NCHW", "dtype": "float32",
                          "color": "RGB", "range": [0, 1]},
        "ir_contract": {"layout": "NHWC", "dtype": "uint8", "color": "BGR"},
        "files": files,
        "precisions": entries,
        "metrics": {},
        "int8_ssim_drop": {},
        "recipe": {"note": "built by tests/edge/ir_factory.py, not trained"},
        "versions": {"openvino": ov.__version__},
        "created": "1970-01-01T00:00:00Z",
    }
    if self_check:
        manifest["self_check"] = {"input": "self_check_input.png", "output": "self_check_fp32.png", "tolerance": 2.5}
    manifest.update(extra_manifest or {})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (out / "calibration_report.json").write_text(json.dumps({"note": "test bundle, not calibrated"}))
    return out
