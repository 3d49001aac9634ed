"""Test doubles: frames that carry their index in flat blocks (which the sharpening kernel leaves unchanged),
backends that finish out of order, slowly, or with an error, and a video writer with faults."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.backends.base import InferenceBackend

BLOCK = (slice(8, 24), slice(8, 24))
BLOCK_HIGH = (slice(8, 24), slice(32, 48))


def indexed_frame(index: int, h: int = 64, w: int = 80, seed: int | None = None) -> np.ndarray:
    """A textured u8 BGR frame whose two flat 16x16 blocks encode `index` (up to 251*251)."""
    rng = np.random.default_rng(index if seed is None else seed)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame[BLOCK] = index % 251
    frame[BLOCK_HIGH] = index // 251
    return frame


def frame_index(frame: np.ndarray) -> int:
    return int(frame[16, 16, 1]) + 251 * int(frame[16, 40, 1])


class FakeBackend(InferenceBackend):
    """Returns 255 - frame after a random delay, from `workers` threads, so results finish out of order."""

    name = "fake"

    def __init__(self, workers: int = 3, delay: tuple[float, float] = (0.0, 0.004), fail_at: int | None = None):
        super().__init__(size_multiple=1)
        self._workers = workers
        self.delay = delay
        self.fail_at = fail_at
        self.submitted = 0
        self.completion_order: list = []
        self._pool = ThreadPoolExecutor(workers)
        self._slots = threading.BoundedSemaphore(workers)
        self._idle = threading.Condition()
        self._busy = 0
        self._rng = random.Random(0)

    @property
    def num_requests(self) -> int:
        return self._workers

    def _job(self, frame, tag, wait):
        time.sleep(wait)
        self._slots.release()
        if self.fail_at is not None and tag == self.fail_at:
            self._deliver(tag, None, RuntimeError("device lost"))
        else:
            self.completion_order.append(tag)
            self._deliver(tag, 255 - frame, None)
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def submit(self, frame, tag) -> None:
        self._slots.acquire()
        with self._idle:
            self._busy += 1
        self.submitted += 1
        self._pool.submit(self._job, frame, tag, self._rng.uniform(*self.delay))

    def wait_all(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0)

    def _close(self) -> None:
        self.wait_all()
        self._pool.shutdown()


class FaultyVideoWriter:
    """Stands in for cv2.VideoWriter (`monkeypatch.setattr(cv2, "VideoWriter", FaultyVideoWriter(fault))`) with a
    fault: "lose" drops every frame after `keep` (a full disk: OpenCV's write reports nothing), "cut" halves the
    file at release (no moov atom), "raise" raises from write after `keep` frames, "open" never opens."""

    def __init__(self, fault: str, keep: int = 3):
        self.fault, self.keep = fault, keep
        self._make = cv2.VideoWriter

    def __call__(self, path, *args):
        self.path = path
        self.real = self._make(path, *args)
        self.written = 0
        return self

    def isOpened(self):
        return self.fault != "open" and self.real.isOpened()

    def write(self, frame):
        if self.fault == "raise" and self.written == self.keep:
            raise cv2.error("OpenCV(5.1.0) cap_ffmpeg.cpp: error: (-2:Unspecified error) write failed")
        if self.fault != "lose" or self.written < self.keep:
            self.real.write(frame)
        self.written += 1

    def release(self):
        self.real.release()
        if self.fault == "cut":
            data = Path(self.path).read_bytes()
            Path(self.path).write_bytes(data[: len(data) // 2])


class ScaledCostBackend(FakeBackend):
    """One worker whose frame takes `frame_s` x `slowdown` x (its pixels / `full_pixels`): a machine whose load
    the test changes (`slowdown`, read at each submit) and a cost that follows the governor's processing scale.
    `sizes` lists the frame sizes submitted (each run of one size once), `prepared` the sizes `prepare` was given."""

    def __init__(self, frame_s: float, full_pixels: int, slowdown: float = 1.0):
        super().__init__(workers=1)
        self.frame_s, self.full_pixels, self.slowdown = frame_s, full_pixels, slowdown
        self.sizes: list[tuple[int, int]] = []
        self.prepared: list[tuple[int, int]] = []

    def prepare(self, width: int, height: int) -> None:
        self.prepared.append((width, height))

    def submit(self, frame, tag) -> None:
        h, w = frame.shape[:2]
        if not self.sizes or self.sizes[-1] != (w, h):
            self.sizes.append((w, h))
        wait = self.frame_s * self.slowdown * (w * h) / self.full_pixels
        self.delay = (wait, wait)
        super().submit(frame, tag)


def two_signals_while_stuck(proc, marker: Path, first, second, pause: float = 0.3,
                            while_stuck=None) -> tuple[float, str]:
    """Wait until `proc` writes `marker` (it is stuck in a native call), check `while_stuck()` if given, send
    `first`, check it did not end the process, send `second`; returns (seconds from `second` to the exit, stderr)."""
    deadline = time.time() + 60
    try:
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert marker.exists(), proc.communicate(timeout=5)
        if while_stuck is not None:
            while_stuck()
        proc.send_signal(first)
        time.sleep(pause)
        assert proc.poll() is None  # the first signal asks the run to finish; the stuck call cannot
        sent = time.perf_counter()
        proc.send_signal(second)
        proc.wait(timeout=10)
        elapsed = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    return elapsed, proc.communicate()[1]
