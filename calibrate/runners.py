"""Float runners: one callable per engine mapping float32 1x3xHxW RGB [0, 1] to the same, for parity and scoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesharp.edge.backends.openvino_core import shared_core

Runner = Callable[[np.ndarray], np.ndarray]


def torch_runner(model) -> Runner:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def ort_runner(onnx_path: str | Path, threads: int | None = None) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run


def openvino_runner(model, device: str = "CPU", fp32_only: bool = True) -> Runner:
    """Compile an ov.Model (or take a CompiledModel); fp32_only pins the CPU's inference precision to f32."""
    import openvino as ov

    if isinstance(model, ov.CompiledModel):
        compiled = model
    else:
        config = {"INFERENCE_PRECISION_HINT": "f32"} if fp32_only else {}
        compiled = shared_core().compile_model(model, device, config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return request.infer({0: x})[0].copy()

    return run


def bgr_as_rgb(run: Runner) -> Runner:
    """An RGB runner (NCHW in and out) around a model that takes and returns BGR."""

    def rgb(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(run(np.ascontiguousarray(x[:, ::-1]))[:, ::-1])

    return rgb
