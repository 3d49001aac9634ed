"""Model-only timing of one network on one backend: sync latency and async throughput, repeated.

Each runner compiles the model for one fixed input shape and measures with random input data
(content does not change the speed of these networks). A measurement is: `warmup` untimed
inferences, then `repeats` timed windows of `duration` seconds (at least `min_iters` inferences
each). FPS is the median over windows, `spread_pct` = (max - min) / median, latency percentiles
come from every timed sync inference.

- OpenVINO: the bundle's IR (u8 BGR NHWC); sync = one InferRequest with the LATENCY hint, async =
  an AsyncInferQueue of N requests with the THROUGHPUT hint (N = OpenVINO's optimal number unless set).
- ONNX Runtime: the bundle's ONNX (float32 RGB NCHW); sync = `run` on one thread, async = N threads
  sharing a session (intra-op threads split between them).
- PyTorch eager: the student checkpoint (`edgesharp.train.checkpoint.load_student`), fp32, sync only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)


@dataclass
class Timing:
    fps: float
    fps_runs: list[float]
    latency_ms: dict[str, float] = field(default_factory=dict)
    requests: int = 1
    iterations: int = 0
    info: dict = field(default_factory=dict)

    @property
    def spread_pct(self) -> float:
        if len(self.fps_runs) < 2 or self.fps <= 0:
            return 0.0
        return 100.0 * (max(self.fps_runs) - min(self.fps_runs)) / self.fps

    def to_dict(self) -> dict:
        return {"fps": round(self.fps, 3), "fps_runs": [round(f, 3) for f in self.fps_runs],
                "spread_pct": round(self.spread_pct, 1), "latency_ms": self.latency_ms,
                "requests": self.requests, "iterations": self.iterations, **({"info": self.info} if self.info else {})}


@dataclass
class Schedule:
    warmup: int = 3
    repeats: int = 3
    duration: float = 2.0
    min_iters: int = 3


def _latencies(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "mean": round(float(ms.mean()), 2)}


def time_sync(call, schedule: Schedule) -> Timing:
    """Time a blocking zero-argument `call`."""
    for _ in range(schedule.warmup):
        call()
    runs, lat = [], []
    for _ in range(schedule.repeats):
        n, start = 0, time.perf_counter()
        while True:
            t0 = time.perf_counter()
            call()
            lat.append(time.perf_counter() - t0)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= schedule.duration and n >= schedule.min_iters:
                break
        runs.append(n / elapsed)
    return Timing(statistics.median(runs), runs, _latencies(lat), 1, len(lat))


def time_async(start_one, wait_all, requests: int, schedule: Schedule) -> Timing:
    """Time `start_one(done_callback)` kept `requests` deep; `wait_all()` drains.

    `start_one` may block while all requests are busy (OpenVINO's AsyncInferQueue does).
    """
    done = 0
    lock = threading.Lock()

    def on_done() -> None:
        nonlocal done
        with lock:
            done += 1

    for _ in range(max(schedule.warmup, requests)):
        start_one(on_done)
    wait_all()
    runs = []
    total = 0
    for _ in range(schedule.repeats):
        with lock:
            done = 0
        started, start = 0, time.perf_counter()
        while True:
            start_one(on_done)
            started += 1
            elapsed = time.perf_counter() - start
            if elapsed >= schedule.duration and started >= max(schedule.min_iters, requests):
                break
        wait_all()
        elapsed = time.perf_counter() - start
        runs.append(done / elapsed)
        total += done
    return Timing(statistics.median(runs), runs, {}, requests, total)


# -- backends ---------------------------------------------------------------------------------------------

def time_openvino(xml: Path, height: int, width: int, mode: str, schedule: Schedule, requests: int | None = None,
                  threads: int | None = None, precision: str | None = None) -> Timing:
    import openvino as ov

    from edgesharp.edge.backends import openvino_precision_config

    core = shared_core()
    model = core.read_model(xml)
    model.reshape({model.input(): [1, height, width, 3]})
    config = {"PERFORMANCE_HINT": "LATENCY" if mode == "sync" else "THROUGHPUT",
              **openvino_precision_config(precision or "")}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(model, "CPU", config)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    info = {}
    for prop in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT"):
        with contextlib.suppress(RuntimeError):
            info[prop.lower()] = str(compiled.get_property(prop))
    if mode == "sync":
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(frame))
        t = time_sync(request.infer, schedule)
    else:
        n = requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, n)
        tensor = ov.Tensor(frame)

        def start_one(cb) -> None:
            # no Python callback in OpenVINO's threads (see edge.backends.openvino_backend): time_async reads its
            # count only after wait_all, when every started request has finished, so counting at start is exact
            queue.start_async({0: tensor})
            cb()

        t = time_async(start_one, queue.wait_all, n, schedule)
    t.info = info
    return t


def _ort_session(onnx_path: Path, threads: int):
    from edgesharp.edge.extras import require

    ort = require("onnxruntime", "the onnxruntime benchmark")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def time_onnxruntime(onnx_path: Path, height: int, width: int, mode: str, schedule: Schedule,
                     requests: int | None = None, threads: int | None = None) -> Timing:
    cpus = threads or usable_cpus()
    n = 1 if mode == "sync" else (requests or 2)
    session = _ort_session(onnx_path, max(1, cpus // n))
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    feed = {name: x}
    if mode == "sync":
        return time_sync(lambda: session.run(None, feed), schedule)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=n)
    slots = threading.Semaphore(n)
    futures: list = []

    def start_one(cb) -> None:
        slots.acquire()

        def job():
            try:
                session.run(None, feed)
            finally:
                cb()
                slots.release()

        futures.append(pool.submit(job))

    def wait_all() -> None:
        for f in futures:
            f.result()
        futures.clear()

    try:
        t = time_async(start_one, wait_all, n, schedule)
    finally:
        pool.shutdown(wait=True)
    t.info = {"intra_op_threads": max(1, cpus // n)}
    return t


def load_torch_student(checkpoint: Path):
    from edgesharp.edge.extras import require

    require("torch", "the PyTorch eager benchmark", extra="train")
    from edgesharp.train.checkpoint import load_student

    model, info = load_student(checkpoint)
    return model, info


def time_pytorch(model, height: int, width: int, schedule: Schedule, threads: int | None = None) -> Timing:
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    x = torch.rand(1, 3, height, width)

    def call():
        with torch.inference_mode():
            model(x)

    try:
        t = time_sync(call, schedule)
    finally:
        torch.set_num_threads(previous)
    t.info = {"torch_threads": threads or previous}
    return t


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def padded(height: int, width: int, multiple: int) -> tuple[int, int]:
    return height + (-height % multiple), width + (-width % multiple)


def check_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480) with a one-line error otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise EdgesharpError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 8 or h < 8:
        raise EdgesharpError(f"size {text!r}: width and height must be at least 8")
    return w, h
