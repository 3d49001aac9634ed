"""`edgesharp bench governor`: the governed and the un-governed pipeline on a machine with a CPU hog.

One invocation starts a hog (a subprocess spinning on one core, pinned there with `os.sched_setaffinity`
where the OS has it), then runs the real `edgesharp run` pipeline twice on the same paced camera-like source
(`edgesharp.benchmarks.fps.CameraLikeSource`: pre-rendered frames, so drawing them costs nothing): once without
a governor, once with one holding the source's rate. Each run reports the delivered FPS (over the whole run
and, settled, the median of the per-second rates of its second half), the frames dropped, CPU% and latency;
the governed one also the levels it chose. The hog stops with the benchmark, whatever happens.

Rows (results.json "governor"): {"config", "hog", "runs": [{"governed", "fps", "settled_fps", ...}]}.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesharp.benchmarks.fps import run_counts
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

HOG_CODE = """
import os, sys
core = int(sys.argv[1])
if core >= 0 and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {core})
while True:
    pass
"""


@dataclass
class GovernorBenchConfig:
    model: Path | None = None  # None: the shipped default bundle
    size: tuple[int, int] = (640, 480)
    camera_fps: float = 30.0
    target_fps: float | None = None  # None: the camera's rate
    seconds: float = 30.0
    precision: str = "auto"
    hog: bool = True
    order: tuple[bool, ...] = (False, True)  # governed? per run, in this order
    # tests: a callable(bundle_or_None) -> InferenceBackend instead of opening the bundle with OpenVINO
    backend_factory: Callable | None = field(default=None, repr=False)


def hog_core() -> int:
    """The core the hog spins on: the last one this process may use (-1 where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return max(os.sched_getaffinity(0))
    return -1


@contextlib.contextmanager
def cpu_hog(enabled: bool = True):
    """A subprocess spinning on one core for the duration of the block; yields its description (or None)."""
    if not enabled:
        yield None
        return
    core = hog_core()
    proc = subprocess.Popen([sys.executable, "-c", HOG_CODE, str(core)], stdin=subprocess.DEVNULL)
    try:
        yield {"pid": proc.pid, "core": core if core >= 0 else None,
               "pinned": core >= 0, "cpu_count": os.cpu_count()}
    finally:
        proc.kill()
        proc.wait()


def _open_backend(cfg: GovernorBenchConfig, bundle, live: bool):
    if cfg.backend_factory is not None:
        return cfg.backend_factory(bundle)
    from edgesharp.edge.backends import open_backend

    # as `edgesharp run` opens it for a live source: the throughput hint, one request to spare
    return open_backend(bundle, "openvino", cfg.precision, hint="throughput", spare_requests=1 if live else 0)


def run_once(cfg: GovernorBenchConfig, governed: bool, bundle=None) -> dict:
    """One run of `cfg.seconds` through the pipeline into a null sink; with `governed` a governor holds the rate."""
    from edgesharp.benchmarks.fps import CameraLikeSource
    from edgesharp.edge.commands.run import governor_levers, with_lighter_variant
    from edgesharp.edge.governor import Governor
    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sinks import NullSink

    w, h = cfg.size
    source = CameraLikeSource(w, h, cfg.camera_fps, paced=True)
    target = cfg.target_fps or cfg.camera_fps
    backend = _open_backend(cfg, bundle, source.live)
    series: list[float] = []
    try:
        if hasattr(backend, "warmup"):
            backend.warmup(w, h)
        backend.infer(np.zeros((h, w, 3), np.uint8))
        governor = None
        if governed:  # as `edgesharp run` governs: with the bundle's lighter variant where it names one
            backend, model = with_lighter_variant(backend, bundle, lambda variant: _open_backend(cfg, variant, True))
            governor = Governor(target, governor_levers(backend, model))
        pipeline = Pipeline(source, backend, [NullSink()], queue_size=1, governor=governor)
        timer = threading.Timer(cfg.seconds, pipeline.stop, args=("benchmark time limit",))
        timer.start()
        try:
            snap = pipeline.run(on_status=lambda stats: series.append(stats.rates()[1]), status_every=1.0)
        finally:
            timer.cancel()
    finally:
        backend.close()
    settled = series[len(series) // 2:]
    row = {
        "governed": governed,
        "target_fps": target,
        **run_counts(snap),
        "settled_fps": round(statistics.median(settled), 1) if settled else None,
        "fps_per_second": [round(v, 1) for v in series],
        "mean_cpu_percent": snap["mean_cpu_percent"],
        "requests": backend.num_requests,
        "precision": getattr(backend, "precision", None),
        "source": source.description,
    }
    if row["settled_fps"] is not None:
        row["settled_within_10pct"] = row["settled_fps"] >= 0.9 * target
    if governor is not None:
        row["changes"] = snap.get("governor", [])
        row["final_level"] = governor.level
        row["absent_levers"] = governor.info()["absent"]
    return row


def run_governor(cfg: GovernorBenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Both runs under one hog; returns the results' "governor" section."""
    if cfg.seconds <= 0:
        raise EdgesharpError(f"--seconds {cfg.seconds}: must be above 0")
    bundle = None
    if cfg.backend_factory is None:
        from edgesharp.edge.sharpener import load_model_bundle

        bundle = load_model_bundle(cfg.model)
    runs = []
    with cpu_hog(cfg.hog) as hog:
        for governed in cfg.order:
            if progress:
                progress(f"{'governed' if governed else 'un-governed'} run, {cfg.seconds:g} s, "
                         f"{cfg.size[0]}x{cfg.size[1]} @ {cfg.camera_fps:g} fps" + (" with a CPU hog" if hog else ""))
            runs.append(run_once(cfg, governed, bundle))
    return {
        "config": {"model": getattr(bundle, "name", None), "size": f"{cfg.size[0]}x{cfg.size[1]}",
                   "camera_fps": cfg.camera_fps, "target_fps": cfg.target_fps or cfg.camera_fps,
                   "seconds": cfg.seconds, "precision": cfg.precision},
        "hog": hog,
        "runs": runs,
    }


def _level_text(row: dict) -> str:
    changes = row.get("changes")
    if changes is None:
        return "-"
    if not changes:
        return "none (full quality)"
    from edgesharp.edge.governor import moves_text

    return "; ".join(f"{c['t']:.0f} s: {moves_text(c['from'], c['to'])}" for c in changes)


def render_markdown(results: dict) -> str:
    g = results["governor"]
    c = g["config"]
    hog = g["hog"]
    hog_text = (f"a CPU hog spinning on core {hog['core']} of {hog['cpu_count']}" if hog and hog["pinned"] else
                "a CPU hog (one spinning process, not pinned)" if hog else "no CPU hog")
    lines = [
        "# Governor under load", "",
        f"Command: `{results.get('command') or 'edgesharp bench governor'}`", "",
        f"Model {c['model']} ({c['precision']}), camera-like source {c['size']} @ {c['camera_fps']:g} fps, target "
        f"{c['target_fps']:g} fps, {c['seconds']:g} s per run, {hog_text}.", "",
        "| run | FPS (mean) | FPS (settled) | within 10% | dropped | CPU % | latency p50 / p95 ms | levels chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in g["runs"]:
        lat = r["latency_ms"]
        lines.append(f"| {'governed' if r['governed'] else 'un-governed'} | {r['fps']:.1f} | {r['settled_fps'] or 0:.1f} | "
                     f"{'yes' if r.get('settled_within_10pct') else 'no'} | {r['frames_dropped']} ({r['drop_pct']:.0f}%) "
                     f"| {r['mean_cpu_percent']:.0f} | {lat['p50'] or 0:.0f} / {lat['p95'] or 0:.0f} | {_level_text(r)} |")
    lines += ["", "Settled: the median of the per-second output rates over the second half of the run."]
    return "\n".join(lines) + "\n"


def write_markdown(out_dir: Path, results: dict) -> Path:
    from edgesharp.edge.imaging.io import atomic_write_bytes

    path = Path(out_dir) / "report.md"
    atomic_write_bytes(path, render_markdown(results).encode())
    return path


def summary_lines(results: dict) -> list[str]:
    g = results.get("governor")
    if not g:
        return []
    return [f"{'governed' if r['governed'] else 'un-governed':<12} {r['fps']:.1f} FPS mean, {r['settled_fps'] or 0:.1f} "
            f"settled (target {r['target_fps']:g}), {r['frames_dropped']} dropped ({r['drop_pct']:.0f}%); "
            f"levels: {_level_text(r)}" for r in g["runs"]]
