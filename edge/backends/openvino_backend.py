"""OpenVINO backend: the bundle's IR (u8 BGR NHWC in and out) reshaped to the padded frame size and run by N
infer requests of one compiled model; a collector thread waits on them in submission order, copies each
output and hands it to the callback with the frame's tag.

No Python callable is ever registered with OpenVINO. A request callback runs on OpenVINO's stream threads and
needs the GIL there, while releasing a compiled model joins those threads with the GIL held by whoever drops
the last reference: that race hung a benchmark run in `close()`. Waiting in a Python thread
(`InferRequest.wait` releases the GIL) keeps every OpenVINO thread free of Python.

The Core is the process's one (`edgesharp.edge.backends.openvino_core.shared_core`).

`spare_requests` adds requests beyond OpenVINO's optimal number (one per stream): with a live camera a stream
that finishes finds the next request already holding a frame instead of waiting for the camera's next tick.
The optimal number is the compiled model's `OPTIMAL_NUMBER_OF_INFER_REQUESTS`; asked before any frame size was
compiled, `num_requests` takes it from the settings and the device instead of compiling a model for it (the CPU
plugin's device-level answer is 1 whatever the settings): `NUM_STREAMS` when it is a number, one stream under the
latency hint, the device's most streams (`RANGE_FOR_STREAMS`) under the throughput hint. A count above the compiled
model's only makes a submit wait for a free request.

Shapes are static: each padded frame size gets its own compiled model (the last two are kept, so a folder
that alternates landscape and portrait images does not recompile every time). With `cache_dir` OpenVINO
stores compiled blobs and later runs start faster.

`device` goes to `compile_model` as given (CPU, GPU, GPU.1, NPU, AUTO, AUTO:GPU,CPU, ...). A device other than the
CPU gets OpenVINO's compiled-model cache by default (`default_cache_dir()`; `cache_dir=""` turns it off): OpenVINO's
model-caching guide names compilation as the start-up delay it removes, and the NPU compiles ahead of time, which
Intel notes takes longer than on the GPU. A device that OpenVINO does not list in
`Core().available_devices` fails at open with one line naming it, the devices that are there and the driver to
install. Only the CPU has been run here; GPU, NPU and AUTO choosing one of them are untested on real hardware.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesharp.edge.backends.base import MAX_REQUESTS, InferenceBackend, check_bgr_frame, pad_to_multiple
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.errors import EdgesharpError, UsageError

log = logging.getLogger(__name__)

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
KEEP_COMPILED = 3
# OpenVINO property -> the option that set it, named when compiling fails because of its value
OPTION_OF_PROPERTY = {"NUM_STREAMS": "--streams", "INFERENCE_NUM_THREADS": "--threads",
                      "PERFORMANCE_HINT": "--hint", "CACHE_DIR": "--cache-dir"}


CPU = "CPU"
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")  # they run the model on devices from a list, or on any there
DRIVERS = {
    "GPU": "install the Intel graphics driver with its OpenCL runtime (Windows: Intel's graphics driver; Linux: "
           "intel-opencl-icd and ocl-icd-libopencl1)",
    "NPU": "install the Intel NPU driver (Intel Core Ultra processors; Windows: Intel's NPU driver; Linux: "
           "intel/linux-npu-driver)",
}


def default_cache_dir() -> Path:
    """The per-user folder for OpenVINO's compiled models: `$EDGESHARP_CACHE/openvino`, else
    `~/.cache/edgesharp/openvino` (the project's cache folder)."""
    root = os.environ.get("EDGESHARP_CACHE") or Path.home() / ".cache" / "edgesharp"
    return Path(root).expanduser() / "openvino"


def device_base(device: str) -> str:
    """`GPU.1` -> `GPU`, `AUTO:GPU,CPU` -> `AUTO`, `MULTI:CPU(4),GPU(2)` -> `MULTI`."""
    return device.split(":")[0].split(".")[0].split("(")[0].strip().upper()


def named_devices(device: str) -> list[str]:
    """The hardware devices `device` names: itself, or a virtual device's list (`AUTO:GPU,CPU`; `-CPU` excludes,
    so it is not named); an empty list for a virtual device without one (it takes any device there is)."""
    name, _, rest = device.partition(":")
    if device_base(name) not in VIRTUAL_DEVICES:
        return [device]
    return [d.split("(")[0].strip() for d in rest.split(",") if d.strip() and not d.strip().startswith("-")]


def missing_device_error(device: str, available: list[str]) -> UsageError | None:
    """The one-line error for a `device` that names hardware OpenVINO did not find (`available`), else None."""
    have = {device_base(d) for d in available}
    missing = [d for d in named_devices(device) if device_base(d) not in have]
    if not missing:
        return None
    base, there = device_base(missing[0]), ", ".join(available) or "none"
    if base not in DRIVERS:
        return UsageError(f"--device {device}: OpenVINO has no device named {base} (available here: {there}); "
                          f"choose CPU, GPU, NPU or AUTO")
    return UsageError(f"--device {device}: OpenVINO finds no {base} here (available: {there}); {DRIVERS[base]}, "
                      f"or use --device CPU")


@dataclass
class _Compiled:
    """One compiled padded size: its requests and the indices of those free for a new frame."""

    model: Any
    requests: list
    free: deque = field(init=False)

    def __post_init__(self) -> None:
        self.free = deque(range(len(self.requests)))


class OpenVINOBackend(InferenceBackend):
    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        size_multiple: int = 1,
        device: str = CPU,
        hint: str = "latency",
        requests: int | None = None,
        streams: int | str | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        config: dict[str, Any] | None = None,
        spare_requests: int = 0,
    ):
        super().__init__(size_multiple)
        if hint not in HINTS:
            raise EdgesharpError(f"performance hint {hint!r}: choose one of {', '.join(HINTS)}")
        if requests is not None and not 1 <= requests <= MAX_REQUESTS:
            raise UsageError(f"--requests {requests}: must be between 1 and {MAX_REQUESTS}")
        if spare_requests < 0:
            raise EdgesharpError(f"spare requests must be >= 0, got {spare_requests}")
        self._spare = spare_requests
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise EdgesharpError(f"{self.model_path}: OpenVINO model not found")
        self.device = str(device).strip().upper()
        self.hint = hint
        self._requested = requests
        self._core = shared_core()
        if self.device != CPU:
            error = missing_device_error(self.device, list(self._core.available_devices))
            if error is not None:
                raise error
            if cache_dir is None:  # the module docstring: on by default off the CPU
                cache_dir = default_cache_dir()
                try:
                    cache_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    log.warning("%s: cannot create the model cache (%s); compiling without it", cache_dir, exc)
                    cache_dir = ""
        try:
            self._model = self._core.read_model(self.model_path)
        except RuntimeError as exc:
            raise EdgesharpError(f"{self.model_path}: OpenVINO cannot read this model ({_first_line(exc)})") from None
        if len(self._model.inputs) != 1 or len(self._model.outputs) != 1:
            raise EdgesharpError(f"{self.model_path}: expected one input and one output, "
                                 f"got {len(self._model.inputs)} and {len(self._model.outputs)}")
        in_type = self._model.input().get_element_type().get_type_name()
        if in_type != "u8":
            raise EdgesharpError(f"{self.model_path}: expected a u8 BGR NHWC input (pre-processing embedded), got {in_type}")
        self._config: dict[str, Any] = {"PERFORMANCE_HINT": HINTS[hint]}
        if streams is not None:  # OpenVINO takes AUTO and NUMA in capitals only
            self._config["NUM_STREAMS"] = s if (s := str(streams).strip()).upper() not in ("AUTO", "NUMA") else s.upper()
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self._config["CACHE_DIR"] = str(cache_dir)
        self._config.update(config or {})
        self._compiled: OrderedDict[tuple[int, int], _Compiled] = OrderedDict()
        self._active: tuple[int, int] | None = None
        self._lock = threading.RLock()  # submitters, size switches and close
        self._done = threading.Condition()  # free requests and frames in flight
        self._in_flight: deque = deque()
        self._collector: threading.Thread | None = None
        self._stopping = False
        self._num_requests = requests or 0

    # -- compiled models per padded size -------------------------------------------------------------
    def _compile(self, ph: int, pw: int, model=None) -> _Compiled:
        model = self._model if model is None else model
        model.reshape({model.input(): [1, ph, pw, 3]})
        try:
            compiled = self._core.compile_model(model, self.device, self._config)
        except RuntimeError as exc:
            raise self._compile_error(exc, pw, ph) from None
        n = self._requested or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) + self._spare
        self._num_requests = n
        entry = _Compiled(compiled, [compiled.create_infer_request() for _ in range(n)])
        log.debug("compiled %s for %dx%d on %s: %d requests, %s", self.model_path.name, pw, ph, self.device, n,
                  self._config)
        return entry

    def _compile_error(self, exc: BaseException, pw: int, ph: int) -> EdgesharpError:
        """One line naming the option whose value OpenVINO refused (`UsageError`, exit 2), else every option set."""
        reason = _openvino_reason(exc)
        words = {"NUM_STREAMS": "streams", "INFERENCE_NUM_THREADS": "threads", "PERFORMANCE_HINT": "hint",
                 "CACHE_DIR": "cache"}
        for prop, option in OPTION_OF_PROPERTY.items():
            if prop in self._config and (prop in reason or words[prop] in reason.lower()):
                value = self._config[prop]
                if prop == "PERFORMANCE_HINT":
                    value = self.hint
                return UsageError(f"{option} {value}: OpenVINO refused it ({reason})")
        device_base = self.device.split(":")[0].split(".")[0].split(",")[0]
        if ("not registered" in reason or "Cannot load library" in reason
                or f'"{device_base}"' in reason or f"'{device_base}'" in reason):
            try:
                available = ", ".join(self._core.available_devices)
            except RuntimeError:
                available = "unknown"
            return UsageError(f"--device {self.device}: OpenVINO cannot use this device ({reason}; "
                              f"available here: {available})")
        options = [f"--device {self.device}", f"--hint {self.hint}"]
        options += [f"{option} {self._config[prop]}" for prop, option in OPTION_OF_PROPERTY.items()
                    if prop in self._config and prop != "PERFORMANCE_HINT"]
        if self._requested:
            options.append(f"--requests {self._requested}")
        return EdgesharpError(f"{self.model_path}: cannot compile for {pw}x{ph} with {' '.join(options)} ({reason})")

    def _entry_for(self, ph: int, pw: int) -> _Compiled:
        """The compiled model for a padded size (caller holds `_lock`); a new size first drains the old one."""
        key = (ph, pw)
        if self._active == key:
            return self._compiled[key]
        if self._active is not None:
            self.wait_all()
        if key not in self._compiled:
            self._compiled[key] = self._compile(ph, pw)
            while len(self._compiled) > KEEP_COMPILED:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(key)
        self._active = key
        return self._compiled[key]

    def warmup(self, width: int, height: int) -> None:
        """Compile for a frame size ahead of the first frame (so the first frame's latency is not compile time)."""
        from edgesharp.edge.backends.base import padded_size

        with self._lock:
            self._entry_for(*padded_size(height, width, self.size_multiple))

    def prepare(self, width: int, height: int) -> None:
        """Compile for a frame size without switching to it, while frames of the current size keep running (a
        copy of the model is reshaped, outside the lock): the governor's processing scale changes without a stall."""
        from edgesharp.edge.backends.base import padded_size

        key = padded_size(height, width, self.size_multiple)
        with self._lock:
            if self._closed or key in self._compiled:
                return
        entry = self._compile(*key, model=self._model.clone())
        with self._lock:
            if self._closed or key in self._compiled:
                return
            self._compiled[key] = entry
            extra = len(self._compiled) - KEEP_COMPILED
            for old in [k for k in self._compiled if k not in (key, self._active)][:max(0, extra)]:
                del self._compiled[old]

    # -- interface ---------------------------------------------------------------------------------------
    @property
    def num_requests(self) -> int:
        """Requests per compiled model: --requests, else OpenVINO's optimum plus the spares (module docstring)."""
        if self._num_requests:
            return self._num_requests
        return self._requested or self._expected_optimum() + self._spare

    def _expected_optimum(self) -> int:
        """OpenVINO's optimal number of requests for these settings, before any model is compiled (one per stream)."""
        streams = str(self._config.get("NUM_STREAMS", "")).strip()
        if streams.isdigit() and int(streams) > 0:
            return int(streams)
        if str(self._config.get("PERFORMANCE_HINT")) == HINTS["latency"]:
            return 1
        try:
            return max(1, int(self._core.get_property(self.device, "RANGE_FOR_STREAMS")[1]))
        except (RuntimeError, TypeError, IndexError, ValueError) as exc:
            log.debug("%s: no RANGE_FOR_STREAMS (%s); expecting one request", self.device, _first_line(exc))
            return 1

    def submit(self, frame: np.ndarray, tag: Any) -> None:
        check_bgr_frame(frame)
        h, w = frame.shape[:2]
        padded = pad_to_multiple(frame, self.size_multiple)
        with self._lock:
            if self._closed:
                raise EdgesharpError(f"{self.model_path}: the OpenVINO backend is closed")
            entry = self._entry_for(*padded.shape[:2])
            with self._done:
                self._done.wait_for(lambda: entry.free)
                index = entry.free.popleft()
            request = entry.requests[index]
            request.start_async({0: padded[None]}, share_inputs=False)
            with self._done:
                self._in_flight.append((entry, index, tag, h, w))
                self._done.notify_all()
            if self._collector is None:
                self._collector = threading.Thread(target=self._collect, name="edgesharp-openvino", daemon=True)
                self._collector.start()

    def _collect(self) -> None:
        """Wait for each started request in submission order, copy its output, free it, deliver the frame."""
        while True:
            with self._done:
                self._done.wait_for(lambda: self._in_flight or self._stopping)
                if not self._in_flight:
                    return
                entry, index, tag, h, w = self._in_flight[0]
            request = entry.requests[index]
            out, error = None, None
            try:
                request.wait()
                out = np.array(request.get_output_tensor(0).data[0, :h, :w], copy=True)  # buffers are reused
            except BaseException as exc:  # handed to the consumer, which raises it
                error = exc
            with self._done:
                entry.free.append(index)
                self._done.notify_all()
            try:
                self._deliver(tag, out, error)
            except BaseException:
                log.exception("result callback failed for frame %r", tag)
            with self._done:
                self._in_flight.popleft()
                self._done.notify_all()

    def wait_all(self) -> None:
        with self._done:
            self._done.wait_for(lambda: not self._in_flight)

    def _close(self) -> None:
        with self._lock:
            self.wait_all()
            with self._done:
                self._stopping = True
                self._done.notify_all()
            if self._collector is not None:
                self._collector.join()
            self._compiled.clear()
            self._active = None

    def describe(self) -> dict:
        info = super().describe()
        info.update(model=str(self.model_path), device=self.device, hint=self.hint,
                    config={k: str(v) for k, v in self._config.items()})
        if self._active is not None:
            compiled = self._compiled[self._active].model
            for prop in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT", "EXECUTION_DEVICES"):
                with contextlib.suppress(RuntimeError):
                    value = compiled.get_property(prop)
                    value = ",".join(value) if isinstance(value, list) else value
                    info[prop.lower()] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
        return info


def _openvino_reason(exc: BaseException) -> str:
    """The line of an OpenVINO error that says what is wrong: its messages start with one "Exception from
    FILE:LINE:" line per layer (and "Check '...' failed at FILE:LINE:"), the reason comes last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("Exception from ")
               and not (line.startswith("Check '") and line.endswith(":"))]
    return " ".join(reasons) if reasons else (lines[-1] if lines else type(exc).__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
