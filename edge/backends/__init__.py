"""Inference backends behind one interface (`InferenceBackend`): OpenVINO (default) and ONNX Runtime.

`open_backend(bundle, "openvino", "int8", ...)` picks the bundle's file for the backend and precision,
falling back (with a warning) to the best precision the bundle has, and builds the backend.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.backends.base import InferenceBackend, InferenceError, pad_to_multiple
from edge.errors import EdgesharpError

log = logging.getLogger(__name__)

BACKEND_NAMES = ("openvino", "onnxruntime")
PRECISION_NAMES = ("int8", "fp16", "fp32")
# fastest first: what to fall back to when the requested precision is missing
# what stands in for a precision a bundle lacks, nearest first (a slim bundle ships FP16 for OpenVINO FP32)
FALLBACK = {"fp32": ("fp16", "int8"), "fp16": ("fp32", "int8"), "int8": ("fp16", "fp32")}

__all__ = ["BACKEND_NAMES", "PRECISION_NAMES", "InferenceBackend", "InferenceError", "open_backend",
           "openvino_precision_config", "pad_to_multiple", "select_precision"]


def select_precision(bundle, backend: str, precision: str) -> str:
    """`precision` if the bundle has it for `backend`, else the nearest one it has (logged as a warning)."""
    if backend not in BACKEND_NAMES:
        raise EdgesharpError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if precision not in PRECISION_NAMES:
        raise EdgesharpError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_NAMES)}")
    if bundle.has(backend, precision):
        return precision
    for candidate in FALLBACK[precision]:
        if bundle.has(backend, candidate):
            log.warning("%s has no %s model for %s; using %s instead", bundle.path, precision, backend, candidate)
            return candidate
    raise EdgesharpError(f"{bundle.path}: no model file for the {backend} backend in this bundle")


def openvino_precision_config(precision: str) -> dict[str, str]:
    """OpenVINO properties that make `precision` mean what it says.

    CPUs with bf16 or fp16 units (AVX512_BF16, AMX) run an fp32 IR in reduced precision by default;
    fp32 asks for f32 execution. fp16 and int8 IRs keep the device's fastest default, except under an
    instruction-set cap without bf16/fp16 (`ONEDNN_MAX_CPU_ISA=AVX2`), where f32 is what such a CPU runs.
    """
    from edge.backends.openvino_core import NO_REDUCED_FLOAT_ISAS, isa_cap

    f32 = precision == "fp32" or isa_cap() in NO_REDUCED_FLOAT_ISAS
    return {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {}


def open_backend(bundle, backend: str = "openvino", precision: str = "int8", **options: Any) -> InferenceBackend:
    """Build a backend for a loaded `edge.bundle.Bundle`; `options` go to the backend's constructor."""
    requested, precision = precision, select_precision(bundle, backend, precision)
    path = bundle.model_path(backend, precision)
    if backend == "openvino":
        from edge.backends.openvino_backend import OpenVINOBackend

        ov_options = {k: v for k, v in options.items() if k not in ("providers",)}
        # an FP32 request served by FP16 weights still computes in f32
        hint = openvino_precision_config("fp32" if requested == "fp32" else precision)
        ov_options["config"] = {**hint, **(ov_options.get("config") or {})}
        instance: InferenceBackend = OpenVINOBackend(path, bundle.size_multiple, **ov_options)
    else:
        from edge.backends.onnxruntime_backend import OnnxRuntimeBackend

        allowed = ("requests", "threads", "providers")
        ignored = sorted(k for k, v in options.items() if k not in allowed and v is not None)
        if ignored:
            log.warning("onnxruntime backend ignores %s", ", ".join(ignored))
        contract = bundle.manifest.get("onnx_contract", {})
        instance = OnnxRuntimeBackend(
            path, bundle.size_multiple, input_name=contract.get("input"), output_name=contract.get("output"),
            **{k: v for k, v in options.items() if k in allowed},
        )
    instance.precision = precision
    return instance
