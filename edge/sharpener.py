"""The Python API: `from edgesharp import Sharpener`.

    with Sharpener() as sharpener:                  # the shipped default model, OpenVINO, the precision right here
        sharp = sharpener.enhance(frame)            # u8 HxWx3, BGR by default (color="rgb" for RGB)
        for out in sharpener.stream(frames):        # pipelined, several frames in flight, order kept
            ...

With OpenVINO and neither `hint` nor `requests` given, `enhance` runs under the latency hint (every core on the
one frame) and `stream` under the throughput hint with one request to spare (OpenVINO's streams each on a frame
of their own, as `edgesharp run` does), on a second backend opened at the first `stream` call with the precision
the first one chose and checked: the throughput hint splits the cores between streams, which slows a single
frame. An explicit `hint` or `requests` gives one backend, set that way, for both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgesharp.edge.backends.base import MAX_REQUESTS, check_bgr_frame
from edgesharp.edge.controls import StrengthSetting
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.sinks import Sink
from edgesharp.edge.sources import Source, SourceFrame


def load_model_bundle(model: str | Path | None = None):
    """The bundle at `model`, or the shipped default; a clear error when there is none."""
    from edgesharp.edge.bundle import default_bundle_path, load_bundle

    if model is None:
        path = default_bundle_path()
        if not (path / "manifest.json").is_file():
            raise EdgesharpError(f"no default model in this install ({path} has no manifest.json); "
                                 "pass --model BUNDLE_DIR, or make one with 'edgesharp calibrate'")
        return load_bundle(path)
    return load_bundle(model)


class Sharpener:
    """Sharpen frames with a model bundle: `enhance(frame)` for one, `stream(frames)` for many."""

    strength = StrengthSetting("strength")

    def __init__(
        self,
        model: str | Path | None = None,
        backend: str = "openvino",
        precision: str = "auto",
        strength: float = 1.0,
        color: str = "bgr",
        requests: int | None = None,
        hint: str | None = None,
        **backend_options: Any,
    ):
        from edgesharp.edge.backends import open_backend

        if color not in ("bgr", "rgb"):
            raise EdgesharpError(f"color must be 'bgr' or 'rgb', got {color!r}")
        self.strength = strength  # validated by the property; may change between frames, also while streaming
        if requests is not None and not 1 <= requests <= MAX_REQUESTS:
            raise EdgesharpError(f"requests must be between 1 and {MAX_REQUESTS}, got {requests}")
        self.bundle = load_model_bundle(model)
        self.color = color
        # the module docstring: by default stream gets a throughput-hinted backend of its own, opened when first used
        self._stream_options = None
        if backend == "openvino":
            if hint is None and requests is None:
                self._stream_options = {"spare_requests": 1, **backend_options, "hint": "throughput"}
            backend_options["hint"] = hint or "latency"
        self.backend = open_backend(self.bundle, backend, precision, requests=requests, **backend_options)
        self.precision = self.backend.precision
        self._stream_backend = None
        self._lock = threading.Lock()  # one enhance/stream at a time

    def _to_bgr(self, frame: np.ndarray) -> np.ndarray:
        check_bgr_frame(frame)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if self.color == "rgb" else frame

    def _finish(self, original_bgr: np.ndarray, output_bgr: np.ndarray) -> np.ndarray:
        from edgesharp.edge.pipeline import blend

        out = blend(original_bgr, output_bgr, self.strength)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if self.color == "rgb" else out

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        """One frame in, its sharpened version out (same size, dtype and colour order)."""
        bgr = self._to_bgr(frame)
        with self._lock:
            return self._finish(bgr, self.backend.infer(bgr))

    def _streaming_backend(self):
        """The backend `stream` runs on: `self.backend`, or by default one under the throughput hint (module docstring)."""
        if self._stream_options is None:
            return self.backend
        if self._stream_backend is None:
            from edgesharp.edge.backends import open_backend

            # the numerics do not depend on the hint: the first backend's self-check holds for this one
            self._stream_backend = open_backend(self.bundle, "openvino", self.precision, self_check=False,
                                                **self._stream_options)
        return self._stream_backend

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Sharpened frames in input order, with up to `num_requests` of the streaming backend in flight.

        It runs `edgesharp.edge.pipeline.Pipeline` (the `edgesharp run` pipeline: its request slots and reorder
        buffer) on a background thread, which also reads `frames`; results wait for the caller in a small bounded
        hand-off, so memory stays flat however long the stream. A failed frame raises here; leaving the loop early
        stops the pipeline."""
        from edgesharp.edge.pipeline import Pipeline

        with self._lock:
            handoff = _Handoff()
            pipeline = Pipeline(_FrameSource(frames, self._to_bgr), self._streaming_backend(), [handoff])
            outcome: list[BaseException] = []

            def run() -> None:
                try:
                    pipeline.run()
                except BaseException as exc:
                    outcome.append(exc)
                finally:
                    handoff.put(_END)

            worker = threading.Thread(target=run, name="edgesharp-stream", daemon=True)
            worker.start()
            try:
                while (item := handoff.queue.get()) is not _END:
                    yield self._finish(*item)
                if outcome:
                    raise outcome[0]
            finally:
                handoff.cancelled.set()
                pipeline.stop("stream closed")
                worker.join()

    def describe(self) -> dict:
        """The backend's settings; `stream` holds those of the streaming backend once it is open."""
        info = {"model": str(self.bundle.path), "name": self.bundle.name, **self.backend.describe(),
                "precision": self.precision}
        if self._stream_backend is not None:
            info["stream"] = self._stream_backend.describe()
        return info

    def close(self) -> None:
        self.backend.close()
        if self._stream_backend is not None:
            self._stream_backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_END = object()


class _FrameSource(Source):
    """The caller's frames as a pipeline source (not live: the pipeline waits for them, never drops one)."""

    description = "frames"

    def __init__(self, frames: Iterable[np.ndarray], to_bgr):
        super().__init__()
        self._frames = iter(frames)
        self._to_bgr = to_bgr

    def _read(self) -> SourceFrame | None:
        frame = next(self._frames, _END)
        return None if frame is _END else SourceFrame(self._to_bgr(frame))


class _Handoff(Sink):
    """Pipeline output (original, model output) for the `stream` caller; writing waits while the caller is
    behind, and gives up once the caller has left."""

    description = "stream"

    def __init__(self, size: int = 4):
        super().__init__()
        self.queue: queue.Queue = queue.Queue(size)
        self.cancelled = threading.Event()

    def put(self, item) -> None:
        while not self.cancelled.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def write(self, original: np.ndarray, output: np.ndarray, name: str | None, index: int) -> None:
        self.put((original, output))
