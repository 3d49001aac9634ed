"""ONNX Runtime backend: the bundle's ONNX (float32 RGB NCHW in [0, 1], FP32 or INT8) behind the same interface.

One session, a small pool of worker threads calling `run` on it concurrently (ONNX Runtime allows that),
intra-op threads split between them so the pool does not oversubscribe the cores. OpenVINO's execution
provider for ONNX Runtime is used when the installed onnxruntime has it.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgesharp.edge.backends.base import InferenceBackend, check_bgr_frame, pad_to_multiple
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.extras import require

log = logging.getLogger(__name__)


def default_workers(cpus: int | None = None) -> int:
    cpus = cpus or os.cpu_count() or 1
    return 2 if cpus >= 2 else 1


class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        size_multiple: int = 1,
        requests: int | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
    ):
        super().__init__(size_multiple)
        ort = require("onnxruntime", "the onnxruntime backend")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise EdgesharpError(f"{self.model_path}: ONNX model not found")
        if requests is not None and requests < 1:
            raise EdgesharpError(f"--requests must be >= 1, got {requests}")
        self._workers = requests or default_workers()
        cpus = os.cpu_count() or 1
        self.threads = threads or max(1, cpus // self._workers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("OpenVINOExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self._session = ort.InferenceSession(str(self.model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EdgesharpError(f"{self.model_path}: ONNX Runtime cannot load this model ({_first_line(exc)})") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        self.input_name = input_name or inputs[0].name
        self.output_name = output_name or outputs[0].name
        shape = inputs[0].shape
        self._fixed_hw = tuple(shape[2:4]) if all(isinstance(d, int) for d in shape[2:4]) else None
        self.providers = self._session.get_providers()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="ort")
        self._slots = threading.BoundedSemaphore(self._workers)
        self._idle = threading.Condition()
        self._in_flight = 0
        log.debug("onnxruntime %s: %d workers x %d threads, providers %s", self.model_path.name, self._workers,
                  self.threads, self.providers)

    @property
    def num_requests(self) -> int:
        return self._workers

    def _run(self, padded: np.ndarray, h: int, w: int) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(padded, scalefactor=1.0 / 255.0, swapRB=True)  # RGB NCHW float32
        out = self._session.run([self.output_name], {self.input_name: blob})[0][0]
        rgb = np.clip(np.rint(out.transpose(1, 2, 0)[:h, :w] * 255.0), 0, 255).astype(np.uint8)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def _job(self, padded: np.ndarray, h: int, w: int, tag: Any) -> None:
        try:
            out, error = self._run(padded, h, w), None
        except BaseException as exc:  # handed to the consumer, which raises it
            out, error = None, exc
        finally:
            self._slots.release()
        try:
            self._deliver(tag, out, error)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def submit(self, frame: np.ndarray, tag: Any) -> None:
        check_bgr_frame(frame)
        h, w = frame.shape[:2]
        padded = pad_to_multiple(frame, self.size_multiple)
        if self._fixed_hw and tuple(padded.shape[:2]) != self._fixed_hw:
            raise EdgesharpError(
                f"{self.model_path}: the ONNX input is fixed at {self._fixed_hw[1]}x{self._fixed_hw[0]}, "
                f"cannot run a {w}x{h} frame (export it with dynamic height/width)"
            )
        self._slots.acquire()
        with self._idle:
            self._in_flight += 1
        self._pool.submit(self._job, padded, h, w, tag)

    def wait_all(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def _close(self) -> None:
        self.wait_all()
        self._pool.shutdown(wait=True)

    def describe(self) -> dict:
        info = super().describe()
        info.update(model=str(self.model_path), threads=self.threads, providers=self.providers)
        return info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
