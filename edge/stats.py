"""Run statistics: input/output FPS, end-to-end latency percentiles, dropped frames, CPU% and RSS.

Thread-safe counters updated by the pipeline's threads; memory stays constant (latencies are kept in a
bounded window, FPS over the last second). `snapshot()` gives a dict, `status_line()` one line for the CLI.
With a frame-rate governor it also keeps the time frames spent inside the backend over the last second (the
governor's load) and the governor's decisions ("governor" in the snapshot, its state in the status line).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import psutil

LATENCY_WINDOW = 10_000  # percentiles are over the most recent frames, so a long run keeps constant memory
# CPU% is measured over at least this long: psutil's cpu_percent(None) between two calls a few microseconds apart
# (the summary, then --stats-json) said 0.0. A shorter gap keeps the previous figure, so the status line and the
# JSON written right after it report the same number.
CPU_MIN_INTERVAL = 0.5
GOVERNOR_CHANGES_KEPT = 1000  # a change needs seconds of cool-down, so this is hours of the busiest governor


class _RateMeter:
    """Events per second over a sliding window of `span` seconds."""

    def __init__(self, span: float = 1.0):
        self.span = span
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.span:
            self._times.popleft()

    def rate(self, now: float) -> float:
        self._trim(now)
        return len(self._times) / self.span


class _SumMeter:
    """The sum of values recorded over a sliding window of `span` seconds."""

    def __init__(self, span: float = 1.0):
        self.span = span
        self._items: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def add(self, now: float, value: float) -> None:
        self._items.append((now, value))
        self._sum += value
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._items and now - self._items[0][0] > self.span:
            self._sum -= self._items.popleft()[1]

    def total(self, now: float) -> float:
        self._trim(now)
        return max(0.0, self._sum) if self._items else 0.0


class RunStats:
    def __init__(self, clock=time.perf_counter, process=None):
        self._clock = clock
        self._lock = threading.Lock()
        self._process = process or psutil.Process(os.getpid())
        self.started = clock()
        self.finished: float | None = None
        self.captured = 0
        self.dropped = 0
        self.written = 0
        self._in_rate = _RateMeter()
        self._out_rate = _RateMeter()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._latency_max = 0.0
        self.rss_start = self._process.memory_info().rss
        self.rss_peak = self.rss_start
        self._cpu_start = self._cpu_mark = self._cpu_seconds()
        self._cpu_mark_at = self.started
        self._cpu_last: float | None = None
        self.info: dict = {}
        self._inference = _SumMeter()
        self.governor_changes: deque[dict] | None = None  # set by the first governor_changed / a governed run
        self.governor_state: str | None = None  # the governor's levels, for the status line

    # -- updates (pipeline threads) -----------------------------------------------------------------------
    def frame_captured(self) -> None:
        with self._lock:
            self.captured += 1
            self._in_rate.tick(self._clock())

    def frame_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def frame_written(self, captured_at: float) -> None:
        now = self._clock()
        with self._lock:
            self.written += 1
            self._out_rate.tick(now)
            latency = now - captured_at
            self._latencies.append(latency)
            self._latency_max = max(self._latency_max, latency)

    def frame_inferred(self, seconds: float) -> None:
        """A frame spent `seconds` inside the backend (submit to result)."""
        now = self._clock()
        with self._lock:
            self._inference.add(now, seconds)

    def inference_seconds(self) -> float:
        """Seconds frames spent inside the backend over the last second: the mean number of frames in it."""
        with self._lock:
            return self._inference.total(self._clock())

    def rates(self) -> tuple[float, float]:
        """(input, output) frames per second over the last second."""
        now = self._clock()
        with self._lock:
            return self._in_rate.rate(now), self._out_rate.rate(now)

    def governor_changed(self, change: dict) -> None:
        with self._lock:
            if self.governor_changes is None:
                self.governor_changes = deque(maxlen=GOVERNOR_CHANGES_KEPT)
            self.governor_changes.append(change)

    def last_latency_ms(self) -> float | None:
        """Capture-to-write latency of the newest frame written (the preview's overlay), or None before one."""
        with self._lock:
            return self._latencies[-1] * 1e3 if self._latencies else None

    def finish(self) -> None:
        with self._lock:
            self.finished = self._clock()

    # -- reading -----------------------------------------------------------------------------------------
    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system

    def sample_process(self) -> tuple[float, int]:
        """CPU% (100 = one core) over the time since the previous sample at least CPU_MIN_INTERVAL ago (a sooner
        call repeats that sample's figure; the first one covers the time since the start) and current RSS in
        bytes; updates the RSS peak."""
        now = self._clock()
        busy = self._cpu_seconds()
        rss = self._process.memory_info().rss
        with self._lock:
            span = now - self._cpu_mark_at
            if self._cpu_last is None or span >= CPU_MIN_INTERVAL:
                if span > 0:
                    self._cpu_last = max(0.0, 100.0 * (busy - self._cpu_mark) / span)
                if span >= CPU_MIN_INTERVAL:
                    self._cpu_mark, self._cpu_mark_at = busy, now
            cpu = self._cpu_last or 0.0
            self.rss_peak = max(self.rss_peak, rss)
        return cpu, rss

    def mean_cpu_percent(self, now: float | None = None) -> float:
        """CPU% over the whole run (100 = one core)."""
        now = self._clock() if now is None else now
        elapsed = now - self.started
        return max(0.0, 100.0 * (self._cpu_seconds() - self._cpu_start) / elapsed) if elapsed > 0 else 0.0

    def snapshot(self) -> dict:
        cpu, rss = self.sample_process()
        with self._lock:
            now = self.finished or self._clock()
            elapsed = max(now - self.started, 1e-9)
            lat = np.array(self._latencies, dtype=np.float64) if self._latencies else None
            return {
                "elapsed_s": round(elapsed, 3),
                "frames_captured": self.captured,
                "frames_written": self.written,
                "frames_dropped": self.dropped,
                "input_fps": round(self._in_rate.rate(now) if self.finished is None else self.captured / elapsed, 2),
                "output_fps": round(self._out_rate.rate(now) if self.finished is None else self.written / elapsed, 2),
                "mean_output_fps": round(self.written / elapsed, 2),
                "latency_ms": {
                    "p50": round(float(np.percentile(lat, 50)) * 1e3, 2) if lat is not None else None,
                    "p95": round(float(np.percentile(lat, 95)) * 1e3, 2) if lat is not None else None,
                    "max": round(self._latency_max * 1e3, 2) if lat is not None else None,
                    "window": len(self._latencies),
                },
                "cpu_percent": round(cpu, 1),
                "mean_cpu_percent": round(self.mean_cpu_percent(now), 1),
                "cpu_count": psutil.cpu_count(),
                "rss_mb": round(rss / 2**20, 1),
                "rss_start_mb": round(self.rss_start / 2**20, 1),
                "rss_peak_mb": round(self.rss_peak / 2**20, 1),
                **({"run": self.info} if self.info else {}),
                **({"governor": list(self.governor_changes or [])}
                   if self.governor_changes is not None or "governor" in self.info else {}),
            }

    def status_line(self, snap: dict | None = None, total: int | None = None) -> str:
        s = snap or self.snapshot()
        lat = s["latency_ms"]
        lat_text = f"latency p50 {lat['p50']:.0f} p95 {lat['p95']:.0f} max {lat['max']:.0f} ms" if lat["p50"] is not None else "latency -"
        progress = f"{s['frames_written']}/{total}" if total else f"{s['frames_written']}"
        return (f"frames {progress}  in {s['input_fps']:.1f} fps  out {s['output_fps']:.1f} fps  {lat_text}  "
                f"dropped {s['frames_dropped']}  cpu {s['cpu_percent']:.0f}%  rss {s['rss_mb']:.0f} MB"
                + (f"  {self.governor_state}" if self.governor_state else ""))

    def write_json(self, path: str | Path) -> Path:
        from edgesharp.edge.imaging.io import atomic_write_bytes

        path = Path(path)
        atomic_write_bytes(path, (json.dumps(self.snapshot(), indent=2) + "\n").encode())
        return path
