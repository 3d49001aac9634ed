"""OpenVINO backend: the bundle's IR (u8 BGR NHWC in and out) reshaped to the padded frame size and run by an
AsyncInferQueue of N requests, the frame's tag as userdata and the output copied inside the callback.

Shapes are static: each padded frame size gets its own compiled model (the last two are kept, so a folder
that alternates landscape and portrait images does not recompile every time). With `cache_dir` OpenVINO
stores compiled blobs and later runs start faster.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.base import InferenceBackend, check_bgr_frame, pad_to_multiple
from edge.errors import EdgesharpError

log = logging.getLogger(__name__)

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
KEEP_COMPILED = 2


class OpenVINOBackend(InferenceBackend):
    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        size_multiple: int = 1,
        device: str = "CPU",
        hint: str = "latency",
        requests: int | None = None,
        streams: int | str | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        config: dict[str, Any] | None = None,
    ):
        super().__init__(size_multiple)
        import openvino as ov

        if hint not in HINTS:
            raise EdgesharpError(f"performance hint {hint!r}: choose one of {', '.join(HINTS)}")
        if requests is not None and requests < 1:
            raise EdgesharpError(f"--requests must be >= 1, got {requests}")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise EdgesharpError(f"{self.model_path}: OpenVINO model not found")
        self.device = device
        self.hint = hint
        self._requested = requests
        self._core = ov.Core()
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self._core.set_property({"CACHE_DIR": str(cache_dir)})
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
        if streams is not None:
            self._config["NUM_STREAMS"] = str(streams)
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        self._config.update(config or {})
        self._compiled: OrderedDict[tuple[int, int], tuple[Any, Any]] = OrderedDict()
        self._active: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._num_requests = requests or 0

    # -- compiled models per padded size -------------------------------------------------------------
    def _compile(self, ph: int, pw: int):
        import openvino as ov

        self._model.reshape({self._model.input(): [1, ph, pw, 3]})
        try:
            compiled = self._core.compile_model(self._model, self.device, self._config)
        except RuntimeError as exc:
            raise EdgesharpError(
                f"{self.model_path}: cannot compile for {pw}x{ph} on {self.device} ({_first_line(exc)})"
            ) from None
        n = self._requested or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._num_requests = n
        infer_queue = ov.AsyncInferQueue(compiled, n)
        infer_queue.set_callback(self._on_done)
        log.debug("compiled %s for %dx%d on %s: %d requests, %s", self.model_path.name, pw, ph, self.device, n,
                  self._config)
        return compiled, infer_queue

    def _queue_for(self, ph: int, pw: int):
        key = (ph, pw)
        if self._active == key:
            return self._compiled[key][1]
        if self._active is not None:
            self._compiled[self._active][1].wait_all()
        if key not in self._compiled:
            self._compiled[key] = self._compile(ph, pw)
            while len(self._compiled) > KEEP_COMPILED:
                old_key, (_, old_queue) = self._compiled.popitem(last=False)
                old_queue.wait_all()
        self._compiled.move_to_end(key)
        self._active = key
        return self._compiled[key][1]

    def warmup(self, width: int, height: int) -> None:
        """Compile for a frame size ahead of the first frame (so the first frame's latency is not compile time)."""
        from edge.backends.base import padded_size

        with self._lock:
            self._queue_for(*padded_size(height, width, self.size_multiple))

    # -- interface ---------------------------------------------------------------------------------------
    @property
    def num_requests(self) -> int:
        if not self._num_requests:
            self.warmup(64, 64)
        return self._num_requests

    def _on_done(self, request, userdata) -> None:
        tag, h, w = userdata
        try:
            out = np.array(request.get_output_tensor(0).data[0, :h, :w], copy=True)  # buffers are reused
        except BaseException as exc:  # handed to the consumer, which raises it
            self._deliver(tag, None, exc)
            return
        self._deliver(tag, out, None)

    def submit(self, frame: np.ndarray, tag: Any) -> None:
        check_bgr_frame(frame)
        h, w = frame.shape[:2]
        padded = pad_to_multiple(frame, self.size_multiple)
        with self._lock:
            infer_queue = self._queue_for(*padded.shape[:2])
            infer_queue.start_async({0: padded[None]}, (tag, h, w))

    def wait_all(self) -> None:
        with self._lock:
            if self._active is not None:
                self._compiled[self._active][1].wait_all()

    def _close(self) -> None:
        self.wait_all()
        with self._lock:
            self._compiled.clear()
            self._active = None

    def describe(self) -> dict:
        info = super().describe() if self._num_requests else {"backend": self.name}
        info.update(model=str(self.model_path), device=self.device, hint=self.hint,
                    config={k: str(v) for k, v in self._config.items()})
        if self._active is not None:
            compiled = self._compiled[self._active][0]
            for prop in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT"):
                with contextlib.suppress(RuntimeError):
                    info[prop.lower()] = str(compiled.get_property(prop))
        return info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
