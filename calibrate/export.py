"""Step 1: PyTorch student -> ONNX (opset >= 17, dynamic height and width), then ONNX Runtime vs PyTorch parity.

The exported graph is the student's inference form (`edgesharp.train.models.export_form`: gates as split
convolutions, residual scales folded), checked against the training form by `onnx_parity`.

The classic TorchScript exporter (`dynamo=False`) is used: with torch 2.14 it exports these plain
convolutional students with symbolic H and W in a fraction of a second, where the dynamo exporter
needs several seconds and a `torch.export.Dim` per axis for no gain in the resulting graph.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from edgesharp.calibrate.runners import ort_runner, torch_runner
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOL = 1e-4
_OP_PATTERNS = (
    re.compile(r"operator '?([\w:.]+)'?"),
    re.compile(r"(aten::\w+|prim::\w+|onnx::\w+)"),
    re.compile(r"[Uu]nsupported[^:]*:\s*'?([\w:.]+)'?"),
)


class ExportError(EdgesharpError):
    """The model could not be exported to ONNX, or its ONNX graph disagrees with PyTorch."""


def offending_op(message: str) -> str | None:
    """The operator an exporter error message blames, e.g. 'aten::grid_sampler' (None if it names none)."""
    for pattern in _OP_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


def export_onnx(model, path: str | Path, opset: int = OPSET, sample_hw: tuple[int, int] | None = None,
                inference: bool = True) -> Path:
    """Export `model` (float32 NCHW RGB in, same out) with input 'input', output 'output', dynamic H and W.

    With `inference` (the default) the graph is the model's inference form (`edgesharp.train.models.export_form`):
    the same function without run-time channel slices; `onnx_parity` against `model` checks that.
    """
    import onnx
    import torch

    if inference:
        from edgesharp.train.models.export_form import inference_form

        model = inference_form(model)

    if opset < 17:
        raise ExportError(f"opset {opset} is too old; edgesharp needs opset >= 17")
    path = Path(path)
    multiple = int(getattr(model, "size_multiple", 1))
    h, w = sample_hw or (multiple * max(1, 64 // multiple),) * 2
    example = torch.rand(1, 3, h, w)
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # deprecation notice of the TorchScript exporter, tracer warnings
            torch.onnx.export(
                model.eval(),
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": axes, "output": axes},
                do_constant_folding=True,
            )
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        op = offending_op(str(exc))
        where = f" at operator {op}" if op else ""
        raise ExportError(f"ONNX export of {type(model).__name__} failed{where}: {text}") from exc
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: exported graph fails the ONNX checker: {str(exc).splitlines()[0]}") from exc
    log.info("exported %s (opset %d, %d nodes, %.1f KiB)", path.name, opset, len(proto.graph.node), path.stat().st_size / 1024)
    return path


def onnx_parity(model, onnx_path: str | Path, inputs: dict[str, np.ndarray], tol: float = PARITY_TOL) -> dict[str, dict]:
    """Max abs error of ONNX Runtime vs PyTorch on each named float input; ExportError beyond `tol`."""
    try:
        ort = ort_runner(onnx_path)
    except Exception as exc:
        raise ExportError(f"{onnx_path}: ONNX Runtime cannot load the exported model: {str(exc).splitlines()[0]}") from exc
    ref = torch_runner(model.eval())
    results = {}
    for name, x in inputs.items():
        err = float(np.abs(ort(x) - ref(x)).max())
        results[name] = {"shape": list(x.shape), "max_abs_err": err}
        log.info("  onnxruntime vs pytorch, %s: max abs err %.2e", name, err)
        if not err <= tol:
            raise ExportError(f"{onnx_path}: ONNX Runtime differs from PyTorch by {err:.3g} on {name} {x.shape} (limit {tol:g})")
    return results
