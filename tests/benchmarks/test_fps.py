"""Pieces of the FPS suite: timing loops, the size search, GMAC/s arithmetic, the camera-like source."""

from __future__ import annotations

import threading
import time

import numpy as np

from edgesharp.benchmarks import fps, timing


def test_sync_timing_counts_calls_and_reports_latency():
    calls = []
    t = timing.time_sync(lambda: (calls.append(1), time.sleep(0.005)), timing.Schedule(2, 2, 0.05, 3))
    assert len(calls) == t.iterations + 2
    assert 20 < t.fps < 210  # 5 ms per call, whatever the load
    assert t.latency_ms["p50"] >= 5.0 and t.latency_ms["p95"] >= t.latency_ms["p50"]
    assert len(t.fps_runs) == 2


def test_async_timing_keeps_requests_in_flight():
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(4)
    slots = threading.Semaphore(4)  # like AsyncInferQueue: starting blocks while every request is busy
    futures = []

    def job(cb):
        time.sleep(0.02)
        cb()
        slots.release()

    def start(cb):
        slots.acquire()
        futures.append(pool.submit(job, cb))

    def wait():
        for f in futures:
            f.result()
        futures.clear()

    t = timing.time_async(start, wait, 4, timing.Schedule(1, 2, 0.1, 4))
    pool.shutdown()
    assert t.requests == 4 and t.fps > 60  # 4 x 50/s if truly concurrent, 50/s if serialised


def test_search_finds_the_largest_size_per_target():
    probes = []

    def probe(size):  # 3 Mpixel/s
        probes.append(size)
        return 3e6 / (size[0] * size[1])

    best, seen = fps.search_highest(probe, (15.0, 20.0))
    # 424x240 = 101760 px -> 29.5 FPS; 640x360 -> 13.0 FPS
    assert best[15.0] == (424, 240) and best[20.0] == (424, 240)
    assert len(probes) == len(set(probes)) < len(fps.STANDARD_SIZES)
    best, _ = fps.search_highest(lambda s: 1.0, (15.0,))
    assert best[15.0] is None


def test_gmacs_and_peak_share():
    row = fps.compute_row({"fps": 10.0, "precision": "fp32"}, 1000.0, 640 * 480, {"fp32_gmacs": 100.0, "int8_gmacs": 400.0})
    assert row["gmacs_per_frame"] == round(1000 * 640 * 480 / 1e9, 3)
    assert row["achieved_gmacs"] == round(10 * 1000 * 640 * 480 / 1e9, 2)
    assert row["peak_pct"] == round(100 * 10 * 1000 * 640 * 480 / 1e9 / 100.0, 1)
    int8 = fps.compute_row({"fps": 10.0, "precision": "int8"}, 1000.0, 640 * 480, {"fp32_gmacs": 100.0, "int8_gmacs": 400.0})
    assert int8["peak_pct"] == round(row["peak_pct"] / 4, 1)
    assert fps.macs_per_pixel({"macs_per_pixel": 1234.5}) == 1234.5


def test_camera_like_source_is_paced_and_live():
    src = fps.CameraLikeSource(64, 48, fps=50.0, distinct=3)
    assert src.live
    t0 = time.perf_counter()
    frames = [src.read().image for _ in range(6)]
    assert time.perf_counter() - t0 >= 5 / 50.0 * 0.9
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert np.array_equal(frames[0], frames[3]) and not np.array_equal(frames[0], frames[1])
    fast = fps.CameraLikeSource(64, 48, paced=False)
    assert not fast.live


def test_pytorch_rows_come_from_the_checkpoint(tmp_path):
    import pytest

    pytest.importorskip("torch", reason="PyTorch eager rows need torch")
    from edgesharp.benchmarks import report
    from edgesharp.train import models
    from edgesharp.train.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "s.pt", models.create("nafnet-test"))
    cfg = fps.FpsConfig(models=[], checkpoints=[ckpt], sizes=[(40, 30)], schedule=timing.Schedule(1, 2, 0.05, 2))
    rows = fps._torch_rows(cfg, [], {"fp32_gmacs": 100.0})
    assert len(rows) == 1
    row = rows[0]
    assert (row["backend"], row["precision"], row["mode"], row["size"]) == ("pytorch", "fp32", "sync", "40x30")
    assert row["fps"] > 0 and row["achieved_gmacs"] > 0
    faster = dict(row, backend="openvino", fps=row["fps"] * 3)
    table = "\n".join(report.model_table({"fps": [row, faster]}))
    assert "| 3.00x |" in table and "| 1.00x |" in table
