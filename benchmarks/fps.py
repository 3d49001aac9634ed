"""`edgesharp bench fps`: model-only and end-to-end speed per bundle x backend x precision x size x mode.

Rows (plain dicts, the `results.json` format):
- kind "model": model-only FPS (median of repeats, spread) and latency p50/p95 (`edgesharp.benchmarks.timing`),
  achieved GMAC/s = FPS x MACs per frame, and its share of the machine's theoretical peak.
- kind "e2e": the real `edgesharp run` pipeline (`edgesharp.edge.pipeline.Pipeline`) from a camera-like source
  (pre-rendered synthetic frames paced at --camera-fps, live: frames are dropped when it cannot keep
  up) or a video file, to a null sink: output FPS, dropped frames, CPU% (100 = one core), peak RSS.
- kind "search": the largest standard size that sustains each target FPS end to end (unpaced source:
  the pipeline's capacity), found by bisection over STANDARD_SIZES.
- kind "verdict": per configuration, end-to-end FPS at --target-size against --target-fps.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesharp.benchmarks import timing
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.sources import Source, SourceFrame

log = logging.getLogger(__name__)

STANDARD_SIZES: tuple[tuple[int, int], ...] = (
    (160, 120), (320, 240), (424, 240), (640, 360), (640, 480), (848, 480),
    (960, 540), (1280, 720), (1600, 900), (1920, 1080),
)
BACKENDS = ("openvino", "onnxruntime", "pytorch")
PRECISIONS = ("fp32", "fp16", "int8")
MODES = ("sync", "async")


@dataclass
class FpsConfig:
    models: list[Path]
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(640, 480), (1280, 720)])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    requests: int | None = None
    schedule: timing.Schedule = field(default_factory=timing.Schedule)
    checkpoints: list[Path] = field(default_factory=list)
    e2e: bool = True
    e2e_seconds: float = 6.0
    e2e_source: str = "camera"  # "camera" (paced synthetic) or a video file path
    camera_fps: float = 30.0
    target_fps: float = 15.0
    target_size: tuple[int, int] = (640, 480)
    search: bool = True
    search_targets: tuple[float, ...] = (15.0, 20.0)
    search_seconds: float = 2.5
    threads: int | None = None
    hint: str = "throughput"  # the OpenVINO hint of the end-to-end runs, as `edgesharp run` uses
    spare_requests: int | None = None  # beyond OpenVINO's optimum; None: 1 for a live source, as `edgesharp run`


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# -- MACs ---------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _macs_per_pixel_from_arch(arch: str, config_items: tuple) -> float | None:
    try:
        from edgesharp.train import models
    except ImportError:
        log.warning("MACs per pixel of %s unknown: needs torch (edgesharp[train]) or a macs_per_pixel manifest field", arch)
        return None
    try:
        return float(models.describe(arch, **dict(config_items))["macs_per_pixel"])
    except EdgesharpError as exc:
        log.warning("MACs per pixel of %s unknown: %s", arch, exc)
        return None


def macs_per_pixel(manifest: dict) -> float | None:
    """From the manifest's `macs_per_pixel` field, else counted on the architecture (train.models, needs torch)."""
    if isinstance(manifest.get("macs_per_pixel"), (int, float)):
        return float(manifest["macs_per_pixel"])
    config = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in manifest.get("arch_config", {}).items()))
    return _macs_per_pixel_from_arch(manifest.get("arch", ""), config)


def compute_row(row: dict, mpp: float | None, padded_pixels: int, peak: dict) -> dict:
    """Add MACs per frame, achieved GMAC/s and % of the theoretical peak (int8 rows against the int8 peak)."""
    if mpp is None or not row.get("fps"):
        return row
    macs = mpp * padded_pixels
    gmacs = row["fps"] * macs / 1e9
    row["gmacs_per_frame"] = round(macs / 1e9, 3)
    row["achieved_gmacs"] = round(gmacs, 2)
    ref = peak.get("int8_gmacs" if row.get("precision") == "int8" else "fp32_gmacs")
    if ref:
        row["peak_pct"] = round(100.0 * gmacs / ref, 1)
    return row


# -- sources for the end-to-end runs ------------------------------------------------------------------------

class CameraLikeSource(Source):
    """Pre-rendered blurred synthetic frames, cycled; `paced` delivers them at `fps` like a camera (live)."""

    def __init__(self, width: int, height: int, fps: float = 30.0, paced: bool = True, distinct: int = 8,
                 level: str = "medium"):
        from edgesharp.edge.imaging.degrade import bicubic_blur
        from edgesharp.edge.sources import SYNTHETIC_LEVELS, SyntheticScene

        super().__init__(None, fps)
        self.live = paced
        scene = SyntheticScene(width, height)
        factor, sigma = SYNTHETIC_LEVELS[level]
        self._frames = [bicubic_blur(scene.render(i * 3, fps), factor, sigma) for i in range(distinct)]
        self.description = f"camera-like {width}x{height}" + (f" @ {fps:g} fps" if paced else ", unpaced")
        self._index = 0

    def _read(self) -> SourceFrame | None:
        if self.live and not self._wait_for_frame(self._index):
            return None
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        return SourceFrame(frame)


def _open_runtime_backend(bundle, backend: str, precision: str, cfg: FpsConfig, live: bool = False):
    from edgesharp.edge.backends import open_backend

    options = {"requests": cfg.requests}
    if backend == "openvino":
        options["hint"] = cfg.hint
        options["spare_requests"] = (1 if live else 0) if cfg.spare_requests is None else cfg.spare_requests
    if cfg.threads:
        options["threads"] = cfg.threads
    return open_backend(bundle, backend, precision, **options)



def run_counts(snap: dict) -> dict:
    """Rate, frame counts, drop share and latency of a pipeline run's statistics snapshot (`RunStats.snapshot`)."""
    return {
        "fps": snap["mean_output_fps"],
        "frames_captured": snap["frames_captured"],
        "frames_written": snap["frames_written"],
        "frames_dropped": snap["frames_dropped"],
        "drop_pct": round(100.0 * snap["frames_dropped"] / max(1, snap["frames_captured"]), 1),
        "latency_ms": {k: snap["latency_ms"][k] for k in ("p50", "p95")},
    }


def run_pipeline(bundle, backend: str, precision: str, size: tuple[int, int], cfg: FpsConfig, seconds: float,
                 paced: bool, source_spec: str = "camera") -> dict:
    """One end-to-end run through edge.pipeline.Pipeline into a null sink, stopped after `seconds`."""
    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sinks import NullSink
    from edgesharp.edge.sources import open_source

    w, h = size
    if source_spec == "camera":
        source = CameraLikeSource(w, h, cfg.camera_fps, paced=paced)
    else:
        source = open_source(source_spec, size=size)
    runtime = _open_runtime_backend(bundle, backend, precision, cfg, live=source.live)
    try:
        if hasattr(runtime, "warmup"):
            runtime.warmup(w, h)
        warm = np.zeros((h, w, 3), np.uint8)
        runtime.infer(warm)
        # A short queue: stopping flushes every captured frame, which at ~1 FPS would take longer than the run.
        pipeline = Pipeline(source, runtime, [NullSink()], queue_size=1)
        timer = threading.Timer(seconds, pipeline.stop, args=("benchmark time limit",))
        timer.start()
        try:
            snap = pipeline.run()
        finally:
            timer.cancel()
    finally:
        runtime.close()
    return {
        **run_counts(snap),
        "cpu_percent": snap["cpu_percent"],
        "rss_peak_mb": snap["rss_peak_mb"],
        "rss_growth_mb": round(snap["rss_peak_mb"] - snap["rss_start_mb"], 1),
        "source": source.description,
        "requests": runtime.num_requests,
    }


# -- the suite ----------------------------------------------------------------------------------------------

def _configs(bundle, cfg: FpsConfig) -> list[tuple[str, str]]:
    out = []
    for backend in cfg.backends:
        if backend == "pytorch":
            continue
        for precision in cfg.precisions:
            if precision == "auto" or bundle.has(backend, precision):
                out.append((backend, precision))
            else:
                log.info("%s: no %s %s model; skipped", bundle.name, backend, precision)
    return out


def _base_row(kind: str, model: str, arch: str, backend: str, precision: str, size, mode: str) -> dict:
    return {"suite": "fps", "kind": kind, "model": model, "arch": arch, "backend": backend, "precision": precision,
            "size": size_text(size) if size else None, "mode": mode}


def _model_row(bundle, backend, precision, size, mode, cfg, mpp, peak) -> dict:
    w, h = size
    ph, pw = timing.padded(h, w, bundle.size_multiple)
    row = _base_row("model", bundle.name, bundle.arch, backend, precision, size, mode)
    if precision == "auto":  # time what auto picks here (the start-up self-check is not part of model-only timing)
        from edgesharp.edge.backends.precision_choice import choose

        choice = choose(bundle, backend)
        row.update(auto=choice.precision, auto_reason=choice.reason)
        precision = choice.precision
    file_precision = precision if bundle.has(backend, precision) else None
    try:
        if file_precision is None:
            from edgesharp.edge.backends import select_precision

            file_precision = select_precision(bundle, backend, precision)  # FP32 of a slim bundle: the FP16 IR in f32
        if backend == "openvino":
            t = timing.time_openvino(bundle.model_path("openvino", file_precision), ph, pw, mode, cfg.schedule,
                                     cfg.requests, cfg.threads, precision=precision)
        else:
            t = timing.time_onnxruntime(bundle.model_path("onnxruntime", file_precision), ph, pw, mode, cfg.schedule,
                                        cfg.requests, cfg.threads)
    except (RuntimeError, EdgesharpError) as exc:
        row["error"] = str(exc).splitlines()[0][:300]
        log.error("%s %s %s %s %s failed: %s", bundle.name, backend, precision, size_text(size), mode, row["error"])
        return row
    row.update(t.to_dict())
    return compute_row(row, mpp, ph * pw, peak)


def _torch_rows(cfg: FpsConfig, bundles: list, peak: dict) -> list[dict]:
    rows = []
    if "pytorch" not in cfg.backends or "fp32" not in cfg.precisions or "sync" not in cfg.modes:
        return rows
    if not cfg.checkpoints:
        log.info("no --checkpoint given: no PyTorch eager rows")
    for ckpt in cfg.checkpoints:
        model, info = timing.load_torch_student(ckpt)
        match = next((b for b in bundles if b.arch == info["arch"]), None)
        name = match.name if match else f"{info['arch']} ({Path(ckpt).name})"
        mpp = macs_per_pixel({"arch": info["arch"], "arch_config": info["arch_config"]})
        for size in cfg.sizes:
            w, h = size
            ph, pw = timing.padded(h, w, model.size_multiple)
            row = _base_row("model", name, info["arch"], "pytorch", "fp32", size, "sync")
            log.info("model-only %s pytorch fp32 %s sync", name, size_text(size))
            row.update(timing.time_pytorch(model, ph, pw, cfg.schedule, cfg.threads).to_dict())
            rows.append(compute_row(row, mpp, ph * pw, peak))
    return rows


def search_highest(probe, targets: tuple[float, ...], sizes=STANDARD_SIZES) -> tuple[dict, dict]:
    """Largest size (by pixels) with probe(size) >= target, for each target; bisection assuming FPS falls with size.

    Returns ({target: size or None}, {size: fps} of every probe run)."""
    ordered = sorted(sizes, key=lambda s: s[0] * s[1])
    seen: dict[tuple[int, int], float] = {}

    def fps(i: int) -> float:
        if ordered[i] not in seen:
            seen[ordered[i]] = probe(ordered[i])
        return seen[ordered[i]]

    best: dict[float, tuple[int, int] | None] = {}
    for target in targets:
        lo, hi = 0, len(ordered) - 1
        found = None
        while lo <= hi:
            mid = (lo + hi) // 2
            if fps(mid) >= target:
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        best[target] = ordered[found] if found is not None else None
    return best, seen


def run_fps(cfg: FpsConfig, peak: dict, progress=None) -> list[dict]:
    """Every row of the FPS suite; `progress(text)` is called before each measurement."""
    from edgesharp.edge.bundle import load_bundle

    say = progress or (lambda text: log.info("%s", text))
    bundles = [load_bundle(p) for p in cfg.models]
    rows: list[dict] = []
    for bundle in bundles:
        mpp = macs_per_pixel(bundle.manifest)
        for backend, precision in _configs(bundle, cfg):
            for size in cfg.sizes:
                for mode in cfg.modes:
                    say(f"model-only {bundle.name} {backend} {precision} {size_text(size)} {mode}")
                    rows.append(_model_row(bundle, backend, precision, size, mode, cfg, mpp, peak))
    rows += _torch_rows(cfg, bundles, peak)
    if not cfg.e2e:
        return rows
    paced = cfg.e2e_source == "camera"
    for bundle in bundles:
        for backend, precision in _configs(bundle, cfg):
            sizes = list(dict.fromkeys([*cfg.sizes, cfg.target_size]))
            e2e_fps = {}
            for size in sizes:
                say(f"end-to-end {bundle.name} {backend} {precision} {size_text(size)}")
                row = _base_row("e2e", bundle.name, bundle.arch, backend, precision, size,
                                f"camera{cfg.camera_fps:g}" if paced else "video")
                try:
                    row.update(run_pipeline(bundle, backend, precision, size, cfg, cfg.e2e_seconds, paced, cfg.e2e_source))
                except (RuntimeError, EdgesharpError) as exc:
                    row["error"] = str(exc).splitlines()[0][:300]
                rows.append(row)
                e2e_fps[size] = row.get("fps")
            got = e2e_fps.get(cfg.target_size)
            verdict = _base_row("verdict", bundle.name, bundle.arch, backend, precision, cfg.target_size, "e2e")
            verdict.update(target_fps=cfg.target_fps, fps=got,
                           meets=bool(got is not None and got >= cfg.target_fps))
            if cfg.search:
                def probe(size, b=bundle, be=backend, pr=precision):
                    say(f"search {b.name} {be} {pr} {size_text(size)}")
                    return run_pipeline(b, be, pr, size, cfg, cfg.search_seconds, paced=False)["fps"]

                best, seen = search_highest(probe, cfg.search_targets)
                for target, size in best.items():
                    verdict[f"max_size_{target:g}fps"] = size_text(size) if size else None
                verdict["search_probes"] = {size_text(s): f for s, f in seen.items()}
            rows.append(verdict)
    return rows
