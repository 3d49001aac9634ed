"""Inference backends behind one interface (`InferenceBackend`): OpenVINO (default) and ONNX Runtime.

`open_backend(bundle, "openvino", "auto", ...)` resolves `auto` to the precision that is correct and fastest on
this CPU's kernel class (`edgesharp.edge.backends.precision_choice`), picks the bundle's file for the backend and precision
(falling back, with a warning, to the nearest precision the bundle has), builds the backend and runs the bundle's
self-check frame through it (`edgesharp.edge.backends.self_check`): a chosen precision that does not reproduce FP32 there
is replaced by the next one, with one warning; a forced one is kept, with the warning.

The CPU kernel classes decide `auto` only where the model runs on the CPU. On an OpenVINO `device` that may run it
elsewhere (GPU, NPU, AUTO where OpenVINO finds a GPU or NPU), `auto` takes the bundle's float model (its FP16 IR):
INT8 was checked per CPU kernel class only, and AUTO may start on the CPU and move to the GPU, so the float model
is the precision that is right on every device it may use. AUTO on a machine with only a CPU is the CPU.
"""

from __future__ import annotations

import logging
from typing import Any

from edgesharp.edge.backends.base import InferenceBackend, InferenceError, pad_to_multiple
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

BACKEND_NAMES = ("openvino", "onnxruntime")
PRECISION_NAMES = ("int8", "fp16", "fp32")
AUTO = "auto"
PRECISION_CHOICES = (AUTO, *PRECISION_NAMES)
# fastest first: what to fall back to when the requested precision is missing
# what stands in for a precision a bundle lacks, nearest first (a slim bundle ships FP16 for OpenVINO FP32)
FALLBACK = {"fp32": ("fp16", "int8"), "fp16": ("fp32", "int8"), "int8": ("fp16", "fp32")}
# what `auto` tries next when the start-up self-check refuses a precision: only more exact ones
SELF_CHECK_FALLBACK = {"int8": ("fp16", "fp32"), "fp16": ("fp32",), "fp32": ()}

__all__ = ["AUTO", "BACKEND_NAMES", "PRECISION_CHOICES", "PRECISION_NAMES", "InferenceBackend", "InferenceError",
           "devices_besides_cpu", "open_backend", "openvino_precision_config", "pad_to_multiple", "select_precision"]


def select_precision(bundle, backend: str, precision: str) -> str:
    """`precision` if the bundle has it for `backend`, else the nearest one it has (logged as a warning)."""
    if backend not in BACKEND_NAMES:
        raise EdgesharpError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if precision not in PRECISION_NAMES:
        raise EdgesharpError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_CHOICES)}")
    if bundle.has(backend, precision):
        return precision
    if _serves(bundle, backend, precision):
        return "fp16"  # a slim bundle: FP32 runs the FP16 IR in f32 (open_backend asks for f32)
    for candidate in FALLBACK[precision]:
        if bundle.has(backend, candidate):
            log.warning("%s has no %s model for %s; using %s instead", bundle.path, precision, backend, candidate)
            return candidate
    raise EdgesharpError(f"{bundle.path}: no model file for the {backend} backend in this bundle")


def openvino_precision_config(precision: str, device: str = "CPU") -> dict[str, str]:
    """OpenVINO properties that make `precision` mean what it says on `device`.

    CPUs with bf16 or fp16 units (AVX512_BF16, AMX) and GPUs run an fp32 IR in reduced precision by default;
    fp32 asks for f32 execution. fp16 and int8 IRs keep the device's fastest default, except under an
    instruction-set cap without bf16/fp16 (`ONEDNN_MAX_CPU_ISA=AVX2`), where f32 is what such a CPU runs.
    The NPU computes in FP16 whatever the hint (OpenVINO's NPU page), so it gets none.
    """
    from edgesharp.edge.backends.openvino_backend import CPU, VIRTUAL_DEVICES, device_base
    from edgesharp.edge.backends.openvino_core import NO_REDUCED_FLOAT_ISAS, isa_cap

    base = device_base(device)
    if base == "NPU":
        return {}
    cpu_may_run = base in (CPU, *VIRTUAL_DEVICES)
    f32 = precision == "fp32" or (cpu_may_run and isa_cap() in NO_REDUCED_FLOAT_ISAS)
    return {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {}


def devices_besides_cpu(device: str) -> list[str]:
    """The devices other than the CPU that the OpenVINO `device` may run the model on (AUTO without a list: those
    OpenVINO finds here)."""
    from edgesharp.edge.backends.openvino_backend import CPU, device_base, named_devices
    from edgesharp.edge.backends.openvino_core import shared_core

    device = str(device or CPU).strip().upper()
    if device == CPU:
        return []
    named = named_devices(device) or list(shared_core().available_devices)
    return [d for d in named if device_base(d) != CPU]


def open_backend(bundle, backend: str = "openvino", precision: str = AUTO, self_check: bool = True,
                 **options: Any) -> InferenceBackend:
    """Build a backend for a loaded `edgesharp.edge.bundle.Bundle`; `options` go to the backend's constructor.

    The backend's `precision`, `precision_requested`, `precision_reason` and `self_check` attributes say what was
    chosen and why (`describe()` includes them)."""
    if backend not in BACKEND_NAMES:
        raise EdgesharpError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    requested, reason, cpu_class = precision, None, None
    elsewhere = devices_besides_cpu(options.get("device")) if precision == AUTO and backend == "openvino" else []
    if elsewhere:  # the module docstring: the float model off the CPU
        device = str(options["device"]).strip().upper()
        where = f"--device {device}" + (f" may run on {', '.join(elsewhere)}" if device not in elsewhere else "")
        precision, reason = "fp16", (f"{where}: the bundle's float model (INT8 was checked on CPU kernel classes "
                                     f"only; --precision int8 forces it)")
    elif precision == AUTO:
        from edgesharp.edge.backends.precision_choice import choose

        choice = choose(bundle, backend)
        precision, reason, cpu_class = choice.precision, choice.reason, choice.cpu_class
    if not _serves(bundle, backend, precision):
        precision = select_precision(bundle, backend, precision)  # the nearest it has, with a warning (or an error)
    candidates = [precision]
    if requested == AUTO:  # a self-check failure falls back to the more exact precisions the bundle serves
        candidates += [p for p in SELF_CHECK_FALLBACK[precision] if _serves(bundle, backend, p)]
    check: dict | None = None
    for i, p in enumerate(candidates):
        instance = _build(bundle, backend, p, dict(options))
        if not self_check:
            break
        check = _self_check(instance, bundle, p)
        if check is None or check["passed"]:
            break
        last = i == len(candidates) - 1
        action = ("kept, as --precision forced it" if requested != AUTO else
                  "no other precision is left" if last else f"falling back to {candidates[i + 1]}")
        log.warning("%s: %s on this CPU gives a mean error of %.2f levels on the bundle's self-check frame "
                    "(tolerance %.2f): %s", bundle.path, p, check["error"], check["tolerance"], action)
        if requested != AUTO:
            break
        instance.close()
        if last:
            raise EdgesharpError(f"{bundle.path}: no precision of this bundle reproduces its FP32 reference on this CPU "
                                 f"(self-check); the bundle or the runtime is broken")
        reason = f"{reason or p}; {p} failed the start-up self-check here"
    instance.precision_requested = requested
    instance.precision_reason = reason or f"forced by --precision {requested}"
    instance.cpu_class = cpu_class
    instance.self_check = check
    return instance


def _serves(bundle, backend: str, precision: str) -> bool:
    """Whether the bundle computes `precision` on `backend` (OpenVINO runs FP32 on the FP16 IR of a slim bundle)."""
    if bundle.has(backend, precision):
        return True
    return backend == "openvino" and precision == "fp32" and bundle.has(backend, "fp16")


def _self_check(instance: InferenceBackend, bundle, precision: str) -> dict | None:
    import time

    from edgesharp.edge.backends.self_check import passes

    t0 = time.perf_counter()
    ok, error, tolerance = passes(instance, bundle)
    if error is None:
        return None
    return {"precision": precision, "passed": ok, "error": round(error, 4), "tolerance": tolerance,
            "seconds": round(time.perf_counter() - t0, 3)}


def _build(bundle, backend: str, precision: str, options: dict) -> InferenceBackend:
    """The backend computing in `precision`: its own file, or, for FP32 on OpenVINO, the FP16 IR run in f32."""
    file_precision = select_precision(bundle, backend, precision)
    path = bundle.model_path(backend, file_precision)
    if backend == "openvino":
        from edgesharp.edge.backends.openvino_backend import OpenVINOBackend

        ov_options = {k: v for k, v in options.items() if k not in ("providers",)}
        hint = openvino_precision_config("fp32" if precision == "fp32" else file_precision,
                                         ov_options.get("device") or "CPU")
        ov_options["config"] = {**hint, **(ov_options.get("config") or {})}
        instance: InferenceBackend = OpenVINOBackend(path, bundle.size_multiple, **ov_options)
    else:
        from edgesharp.edge.backends.onnxruntime_backend import OnnxRuntimeBackend

        allowed = ("requests", "threads", "providers")
        ignored = sorted(k for k, v in options.items() if k not in allowed and v is not None)
        if ignored:
            log.warning("onnxruntime backend ignores %s", ", ".join(ignored))
        contract = bundle.manifest.get("onnx_contract", {})
        instance = OnnxRuntimeBackend(
            path, bundle.size_multiple, input_name=contract.get("input"), output_name=contract.get("output"),
            **{k: v for k, v in options.items() if k in allowed},
        )
    # FP32 served by the FP16 IR still computes in f32
    instance.precision = "fp32" if precision == "fp32" and backend == "openvino" else file_precision
    return instance
