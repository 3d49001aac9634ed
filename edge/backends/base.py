"""The interface every inference backend implements, and the padding both of them share.

A backend takes u8 BGR HxWx3 frames of any size, pads them (reflect) to the model's size multiple,
runs up to `num_requests` of them at once and hands each result, cropped back to the input size,
to a callback together with the caller's tag. Results may arrive in any order.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import check_frame

# callback(tag, output_frame_or_None, error_or_None)
ResultCallback = Callable[[Any, "np.ndarray | None", "BaseException | None"], None]

MIN_SIDE = 8


class InferenceError(EdgesharpError):
    """Inference of a frame failed inside the backend."""


# The largest frame sharpened: 64 megapixels (8000x8000; 8K video is 33). Past it the model's activations alone
# take tens of GB, so a mistaken input (a scan, a panorama) would swap the machine instead of failing.
MAX_PIXELS = 64_000_000
# Frames in flight a user may ask for (--requests): each holds its input and output buffers, and far more requests
# than streams only queue (a typo of --requests 1000 allocated 1000 of them). `edgesharp.edge.commands.run` repeats it.
MAX_REQUESTS = 64


def check_pixel_count(width: int, height: int, what: str = "frame") -> None:
    """Refuse a frame of more than MAX_PIXELS, naming it and its size."""
    if width * height > MAX_PIXELS:
        raise EdgesharpError(f"{what}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the "
                             f"limit of {MAX_PIXELS / 1e6:g}; scale it down first")


def check_bgr_frame(frame: np.ndarray) -> None:
    """What every backend accepts: a uint8 HxWx3 frame of at least MIN_SIDE and at most MAX_PIXELS."""
    check_frame(frame, "frame")
    if frame.shape[0] < MIN_SIDE or frame.shape[1] < MIN_SIDE:
        raise EdgesharpError(f"frame: {frame.shape[1]}x{frame.shape[0]} is too small (at least {MIN_SIDE}x{MIN_SIDE})")
    check_pixel_count(frame.shape[1], frame.shape[0])


def padded_size(h: int, w: int, multiple: int) -> tuple[int, int]:
    return h + (-h % multiple), w + (-w % multiple)


def pad_to_multiple(frame: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the bottom and right edges so both sides are multiples of `multiple` (no copy if they are)."""
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return frame
    return cv2.copyMakeBorder(frame, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)


class InferenceBackend(ABC):
    """submit(frame, tag) -> results through the callback (or `results()` when none is set) -> close()."""

    name = "base"

    def __init__(self, size_multiple: int = 1):
        if size_multiple < 1:
            raise EdgesharpError(f"size multiple must be >= 1, got {size_multiple}")
        self.size_multiple = int(size_multiple)
        self._callback: ResultCallback = self._to_queue
        self._results: queue.Queue = queue.Queue()
        self._closed = False

    # -- results ---------------------------------------------------------------------------------------
    def set_callback(self, callback: ResultCallback | None) -> None:
        """Deliver results to `callback(tag, frame, error)`, called from a backend thread; None: to `results()`."""
        self._callback = callback or self._to_queue

    def _to_queue(self, tag: Any, frame: np.ndarray | None, error: BaseException | None) -> None:
        self._results.put((tag, frame, error))

    def _deliver(self, tag: Any, frame: np.ndarray | None, error: BaseException | None) -> None:
        self._callback(tag, frame, error)

    def results(self, timeout: float | None = None) -> Iterator[tuple[Any, np.ndarray]]:
        """(tag, frame) pairs as they finish, when no callback is set; stops after `timeout` s without one."""
        while True:
            try:
                tag, frame, error = self._results.get(timeout=timeout)
            except queue.Empty:
                return
            if error is not None:
                raise InferenceError(f"inference of frame {tag!r} failed: {error}") from error
            yield tag, frame

    # -- work ------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def num_requests(self) -> int:
        """How many frames can be in flight at once."""

    @abstractmethod
    def submit(self, frame: np.ndarray, tag: Any) -> None:
        """Start inference of a u8 BGR HxWx3 frame; blocks while all requests are busy."""

    @abstractmethod
    def wait_all(self) -> None:
        """Block until every submitted frame has been delivered."""

    @abstractmethod
    def _close(self) -> None: ...

    def close(self) -> None:
        """Finish in-flight frames and release the device; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def describe(self) -> dict:
        """Settings worth logging and saving with statistics."""
        info = {"backend": self.name, "requests": self.num_requests, "size_multiple": self.size_multiple}
        info.update(self.describe_choice())
        return info

    def describe_choice(self) -> dict:
        """The precision, what was asked for, why, and the start-up self-check (set by `open_backend`)."""
        keys = ("precision", "precision_requested", "precision_reason", "cpu_class", "self_check")
        return {k: getattr(self, k) for k in keys if getattr(self, k, None) is not None}

    def infer(self, frame: np.ndarray) -> np.ndarray:
        """Synchronous single-frame inference (for scripts and tests; the pipeline uses submit)."""
        done = threading.Event()
        box: dict = {}

        def catch(tag, out, error):
            box.update(out=out, error=error)
            done.set()

        previous = self._callback
        self.wait_all()
        self._callback = catch
        try:
            self.submit(frame, "infer")
            done.wait()
        finally:
            self._callback = previous
        if box["error"] is not None:
            raise InferenceError(f"inference failed: {box['error']}") from box["error"]
        return box["out"]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
