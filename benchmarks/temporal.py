"""`edgesharp bench temporal`: the flicker a sharpener adds to video, measured per clip.

Clips: the videos in `../shared/data/video` (or `--videos`), the first `--frames` frames of each; a static
scene (a package photograph blurred once by the protocol's medium level, then fresh sensor noise every frame,
as a webcam on a tripod sees a still room); a slow pan (the same blurred photograph shifted 1 px a frame, with
the same noise). Every frame goes through the runtime (`edge.Sharpener.stream`), and the output is compared
with the input it came from:

- **flicker**: the mean absolute frame-to-frame difference (8-bit levels, all channels) in static regions,
  of the output divided by that of the input. Static: the whole frame for the static scene; elsewhere the
  pixels whose input changes little (the grey input's absolute difference, averaged over a 15x15 window,
  below `--static-threshold`), the same pixels for input and output.
- **warping error**: optical flow between consecutive input frames (OpenCV DIS, medium preset, grey frames),
  the previous frame warped onto the current one (`cv2.remap`), the mean absolute error against the current
  frame over pixels the flow tracks (inside the frame, forward-backward consistent), of the output divided
  by that of the input.

A ratio of 1 adds nothing; the added flicker is (ratio - 1) in %. A sharpener that keeps each frame's
sharpening to what is in that frame stays near 1 on the motion clips; on noise every sharpener (the unsharp
mask baseline too) raises the ratio, because it sharpens the noise with the detail.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

SHARED_DATA = Path(os.environ.get("EDGESHARP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_VIDEOS = SHARED_DATA / "video"
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
STATIC_WINDOW = 15  # px: the window the input's change is averaged over before the static threshold
SYNTHETIC_SIZE = (640, 480)

Process = Callable[[list[np.ndarray]], Iterable[np.ndarray]]  # u8 BGR frames in, the same number out, in order


@dataclass
class TemporalConfig:
    models: list[Path] = field(default_factory=list)
    backends: list[str] = field(default_factory=lambda: ["openvino"])
    precisions: list[str] = field(default_factory=lambda: ["auto"])
    videos: list[Path] | None = None  # files or folders; None: DEFAULT_VIDEOS where it exists
    frames: int = 60
    size: tuple[int, int] | None = None  # every clip resized to (w, h); None: videos as they are, scenes 640x480
    image: Path | None = None  # the synthetic scenes' photograph; None: the first package photograph
    blur: str = "medium"  # protocol level the synthetic scenes are blurred with, once
    noise: tuple[float, float] = (0.1, 1.0)  # sensor noise (shot, read), edge.imaging.degrade.sensor_noise
    pan_step: int = 1  # px per frame
    seed: int = 0
    static_threshold: float = 4.0  # 8-bit levels of mean grey change over STATIC_WINDOW
    bound_pct: float = 10.0  # the added flicker a run should stay within, per clip
    baseline: bool = True  # also score the blind unsharp mask


@dataclass
class Clip:
    name: str
    kind: str  # video | static | pan
    frames: list[np.ndarray]  # u8 BGR
    what: str = ""
    all_static: bool = False  # True: every pixel is static by construction


# -- clips --------------------------------------------------------------------------------------------------

def video_files(paths: list[Path]) -> list[Path]:
    """Video files among `paths` (a folder contributes the videos directly in it, sorted)."""
    files = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
            if not found:
                raise EdgesharpError(f"--videos {p}: no video files in this folder ({', '.join(VIDEO_EXTENSIONS)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise EdgesharpError(f"--videos {p}: no such file or folder")
    return files


def read_video(path: Path, frames: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The first `frames` frames of a video (fewer if it is shorter), resized to `size` when given."""
    cap = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    try:
        while len(out) < frames:
            ok, img = cap.read()
            if not ok:
                break
            out.append(_resize(img, size) if size else img)
    finally:
        cap.release()
    if len(out) < 2:
        raise EdgesharpError(f"{path}: fewer than 2 frames could be decoded (a clip needs at least 2)")
    if len(out) < frames:
        log.warning("%s: only %d frames (asked for %d)", path, len(out), frames)
    return out


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    shrink = w * h < img.shape[0] * img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def cover(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """`img` scaled (aspect kept) to cover width x height, then centre-cropped to exactly that."""
    ih, iw = img.shape[:2]
    scale = max(width / iw, height / ih)
    sw, sh = max(width, round(iw * scale)), max(height, round(ih * scale))
    img = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y, x = (sh - height) // 2, (sw - width) // 2
    return np.ascontiguousarray(img[y:y + height, x:x + width])


def _blurred(img: np.ndarray, level: str) -> np.ndarray:
    from edgesharp.edge.imaging.degrade import bicubic_blur
    from edgesharp.edge.sources import SYNTHETIC_LEVELS

    if level not in SYNTHETIC_LEVELS:
        raise EdgesharpError(f"blur level {level!r}: choose one of {', '.join(SYNTHETIC_LEVELS)}")
    factor, sigma = SYNTHETIC_LEVELS[level]
    return img if factor == 1.0 and sigma == 0.0 else bicubic_blur(img, factor, sigma)


def _noisy(img: np.ndarray, noise: tuple[float, float], seed: int, index: int) -> np.ndarray:
    from edgesharp.edge.imaging.degrade import sensor_noise

    if not any(noise):
        return img.copy()
    return sensor_noise(img, np.random.default_rng([seed, index]), *noise)


def static_clip(image: np.ndarray, frames: int, size: tuple[int, int], blur: str = "medium",
                noise: tuple[float, float] = (0.1, 1.0), seed: int = 0) -> Clip:
    """One blurred frame of `image` (u8 BGR) with fresh sensor noise every frame: nothing in it moves."""
    base = _blurred(cover(image, *size), blur)
    return Clip("static + noise", "static", [_noisy(base, noise, seed, i) for i in range(frames)],
                f"a still photograph, blur {blur}, sensor noise shot {noise[0]:g} read {noise[1]:g}", all_static=True)


def pan_clip(image: np.ndarray, frames: int, size: tuple[int, int], step: int = 1, blur: str = "medium",
             noise: tuple[float, float] = (0.1, 1.0), seed: int = 0) -> Clip:
    """A window moving `step` px right per frame across a blurred `image`, sensor noise on every frame."""
    w, h = size
    canvas = _blurred(cover(image, w + step * (frames - 1), h), blur)
    out = [_noisy(np.ascontiguousarray(canvas[:, i * step:i * step + w]), noise, seed + 1, i) for i in range(frames)]
    return Clip(f"pan {step} px/frame", "pan", out,
                f"the same photograph panned {step} px a frame, blur {blur}, the same noise")


def scene_image(path: Path | None) -> np.ndarray:
    """The synthetic scenes' photograph (u8 BGR): `path`, or the first package photograph."""
    from edgesharp.edge.imaging.io import read_image

    if path is not None:
        return read_image(path, color="bgr")
    from edgesharp.benchmarks.images import load_sharp_images

    return cv2.cvtColor(load_sharp_images(None, limit=1)[0].sharp, cv2.COLOR_RGB2BGR)


def build_clips(cfg: TemporalConfig) -> list[Clip]:
    """The video clips, then the static scene and the pan (all `cfg.frames` long)."""
    if cfg.frames < 2:
        raise EdgesharpError(f"--frames {cfg.frames}: a clip needs at least 2 frames")
    if cfg.pan_step < 1:
        raise EdgesharpError(f"--pan-step {cfg.pan_step}: must be at least 1")
    videos = cfg.videos
    if videos is None:
        if DEFAULT_VIDEOS.is_dir():
            videos = [DEFAULT_VIDEOS]
        else:
            log.warning("no videos at %s (pass --videos DIR or files); scoring the synthetic clips only", DEFAULT_VIDEOS)
            videos = []
    clips = [Clip(path.name, "video", read_video(path, cfg.frames, cfg.size), "video")
             for path in video_files(videos)]
    for clip in clips:
        clip.what = f"video, first {len(clip.frames)} frames"
    image = scene_image(cfg.image)
    size = cfg.size or SYNTHETIC_SIZE
    clips.append(static_clip(image, cfg.frames, size, cfg.blur, cfg.noise, cfg.seed))
    clips.append(pan_clip(image, cfg.frames, size, cfg.pan_step, cfg.blur, cfg.noise, cfg.seed))
    return clips


# -- metrics ------------------------------------------------------------------------------------------------

def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def static_mask(prev: np.ndarray, cur: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels whose grey change, averaged over STATIC_WINDOW x STATIC_WINDOW, is below `threshold` levels."""
    change = cv2.absdiff(_grey(cur), _grey(prev)).astype(np.float32)
    return cv2.blur(change, (STATIC_WINDOW, STATIC_WINDOW)) < threshold


def flow_warp(prev: np.ndarray, cur: np.ndarray, dis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map_x, map_y, valid): where each pixel of `cur` was in `prev` by DIS optical flow, and the pixels whose
    flow lands inside the frame and agrees with the forward flow (Sundaram et al. 2010's consistency test)."""
    g0, g1 = _grey(prev), _grey(cur)
    back = dis.calc(g1, g0, None)  # cur(x) ~ prev(x + back(x))
    fwd = dis.calc(g0, g1, None)
    h, w = g1.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = gx + back[..., 0], gy + back[..., 1]
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    fwd_there = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    loop = back + fwd_there
    consistent = (loop ** 2).sum(-1) < 0.01 * ((back ** 2).sum(-1) + (fwd_there ** 2).sum(-1)) + 0.5
    return map_x, map_y, inside & consistent


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute difference over the channels (float32 HxW)."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def _ratio(out: float, inp: float) -> float | None:
    return out / inp if inp > 0 else None


def score_clip(clip: Clip, outputs: dict[str, list[np.ndarray]], static_threshold: float = 4.0) -> dict[str, dict]:
    """Per method (the keys of `outputs`, each the clip's frames after it, same count and size): flicker in
    static regions and flow-compensated warping error, each of the output, of the input, and their ratio.
    The flow and the masks come from the input only, so every method is measured on the same pixels."""
    frames = clip.frames
    for label, outs in outputs.items():
        if len(outs) != len(frames) or any(o.shape != f.shape for o, f in zip(outs, frames, strict=False)):
            raise EdgesharpError(f"{label} on {clip.name}: {len(outs)} frames of another size or count than the "
                                 f"{len(frames)} it was given")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    sums = {label: {"flicker": 0.0, "warp": 0.0} for label in outputs}
    inp = {"flicker": 0.0, "warp": 0.0}
    static_px = tracked_px = total_px = 0
    for t in range(1, len(frames)):
        prev, cur = frames[t - 1], frames[t]
        mask = np.ones(cur.shape[:2], bool) if clip.all_static else static_mask(prev, cur, static_threshold)
        map_x, map_y, valid = flow_warp(prev, cur, dis)
        static_px += int(mask.sum())
        tracked_px += int(valid.sum())
        total_px += mask.size
        inp["flicker"] += float(_abs_diff(cur, prev)[mask].sum())
        inp["warp"] += float(_abs_diff(cur, cv2.remap(prev, map_x, map_y, cv2.INTER_LINEAR))[valid].sum())
        for label, outs in outputs.items():
            o_prev, o_cur = outs[t - 1], outs[t]
            sums[label]["flicker"] += float(_abs_diff(o_cur, o_prev)[mask].sum())
            sums[label]["warp"] += float(_abs_diff(o_cur, cv2.remap(o_prev, map_x, map_y, cv2.INTER_LINEAR))[valid].sum())
    input_flicker = inp["flicker"] / static_px if static_px else None
    input_warp = inp["warp"] / tracked_px if tracked_px else None
    scores = {}
    for label, s in sums.items():
        flicker_ratio = _ratio(s["flicker"], inp["flicker"]) if static_px else None
        warp_ratio = _ratio(s["warp"], inp["warp"]) if tracked_px else None
        scores[label] = {
            "frames": len(frames), "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
            "static_pct": round(100 * static_px / total_px, 1), "tracked_pct": round(100 * tracked_px / total_px, 1),
            "input_flicker": _round(input_flicker), "output_flicker": _round(s["flicker"] / static_px if static_px else None),
            "flicker_ratio": _round(flicker_ratio), "added_flicker_pct": _pct(flicker_ratio),
            "input_warp_error": _round(input_warp),
            "output_warp_error": _round(s["warp"] / tracked_px if tracked_px else None),
            "warp_ratio": _round(warp_ratio), "added_warp_pct": _pct(warp_ratio),
        }
    return scores


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else round(100 * (ratio - 1), 2)


# -- methods and the run ------------------------------------------------------------------------------------

@dataclass
class Method:
    label: str
    kind: str  # model | baseline
    process: Process
    info: dict = field(default_factory=dict)


def baseline_methods() -> list[Method]:
    from edgesharp.benchmarks import baselines

    blind = baselines.UNSHARP_BLIND
    return [Method("unsharp mask (blind)", "baseline",
                   lambda frames: [baselines.unsharp_mask(f, blind["sigma"], blind["amount"]) for f in frames])]


def model_methods(cfg: TemporalConfig, stack: contextlib.ExitStack) -> list[Method]:
    """Each bundle at each backend and precision through the runtime's streaming path (closed with `stack`)."""
    from edgesharp.benchmarks.quality import runtime_variants
    from edgesharp.edge.sharpener import Sharpener

    bad = [b for b in cfg.backends if b not in ("openvino", "onnxruntime")]
    if bad:
        raise EdgesharpError(f"--backends {','.join(bad)}: the temporal suite runs the runtime's backends "
                             "(openvino, onnxruntime)")
    methods = []
    for path, bundle, backend, precision in runtime_variants(cfg.models, cfg.backends, cfg.precisions):
        sharpener = stack.enter_context(Sharpener(path, backend=backend, precision=precision, hint="throughput"))
        label = f"auto ({sharpener.precision})" if precision == "auto" else precision
        methods.append(Method(f"{bundle.name} {backend} {label}", "model",
                              lambda frames, s=sharpener: list(s.stream(frames)),
                              {"model": bundle.name, "path": str(path), "backend": backend,
                               "precision": sharpener.precision}))
    return methods


def run_temporal(cfg: TemporalConfig, progress: Callable[[str], None] | None = None,
                 methods: list[Method] | None = None) -> dict:
    """Score `methods` (default: the config's bundles, and the unsharp baseline) on every clip."""
    progress = progress or (lambda text: log.info("%s", text))
    clips = build_clips(cfg)
    with contextlib.ExitStack() as stack:
        if methods is None:
            methods = model_methods(cfg, stack) + (baseline_methods() if cfg.baseline else [])
        if not methods:
            raise EdgesharpError("nothing to score: no model bundle (pass --model BUNDLE) and no baseline")
        rows = []
        for clip in clips:
            progress(f"{clip.name}: {len(clip.frames)} frames {clip.frames[0].shape[1]}x{clip.frames[0].shape[0]} "
                     f"through {len(methods)} method(s)")
            outputs = {m.label: list(m.process(clip.frames)) for m in methods}
            scores = score_clip(clip, outputs, cfg.static_threshold)
            rows += [_row(m, clip, scores[m.label], cfg.bound_pct) for m in methods]
    return {"rows": rows, "clips": [{"name": c.name, "kind": c.kind, "what": c.what} for c in clips],
            "config": {"frames": cfg.frames, "size": "x".join(map(str, cfg.size)) if cfg.size else None,
                       "synthetic_size": "x".join(map(str, cfg.size or SYNTHETIC_SIZE)), "blur": cfg.blur,
                       "noise": {"shot": cfg.noise[0], "read": cfg.noise[1]}, "pan_step": cfg.pan_step,
                       "seed": cfg.seed, "static_threshold": cfg.static_threshold, "static_window": STATIC_WINDOW,
                       "bound_pct": cfg.bound_pct, "flow": "OpenCV DIS, medium preset"}}


def _row(method: Method, clip: Clip, score: dict, bound_pct: float) -> dict:
    added = [v for v in (score["added_flicker_pct"], score["added_warp_pct"]) if v is not None]
    return {"suite": "temporal", "method": method.label, "kind": method.kind, **method.info, "clip": clip.name,
            "clip_kind": clip.kind, **score, "within_bound": bool(added) and max(added) <= bound_pct}


# -- report -------------------------------------------------------------------------------------------------

def temporal_rows(results: dict) -> list[dict]:
    return list((results.get("temporal") or {}).get("rows") or [])


def _f(x, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio_cell(ratio, pct) -> str:
    return "-" if ratio is None else f"{ratio:.3f} ({pct:+.1f}%)"


def temporal_table(results: dict) -> list[str]:
    from edgesharp.benchmarks.report import markdown_table

    bound = (results.get("temporal") or {}).get("config", {}).get("bound_pct", 10.0)
    body = [[r["method"], r["clip"], r["frames"], r["size"], _f(r["static_pct"], 0), _f(r["input_flicker"]),
             _f(r["output_flicker"]), _ratio_cell(r["flicker_ratio"], r["added_flicker_pct"]),
             _f(r["input_warp_error"]), _f(r["output_warp_error"]), _ratio_cell(r["warp_ratio"], r["added_warp_pct"]),
             "yes" if r["within_bound"] else "no"] for r in temporal_rows(results)]
    return markdown_table(["method", "clip", "frames", "size", "static %", "input flicker", "output flicker",
                           "flicker ratio (added)", "input warp error", "output warp error", "warp ratio (added)",
                           f"within {bound:g}%"], body)


def markdown_section(results: dict) -> list[str]:
    t = results.get("temporal") or {}
    c = t.get("config", {})
    lines = ["## Temporal stability", "",
             "Flicker: mean absolute frame-to-frame difference (8-bit levels) in static regions (the whole frame of "
             f"the static scene; elsewhere pixels whose grey input changes by less than {c.get('static_threshold')} "
             f"levels averaged over {c.get('static_window')}x{c.get('static_window')}). Warp error: mean absolute "
             f"error between a frame and the previous one warped onto it by {c.get('flow')} optical flow between the "
             "input frames, over the pixels the flow tracks. Ratio: output / input; added = ratio - 1.", ""]
    lines += [f"- `{clip['name']}`: {clip['what']}" for clip in t.get("clips", [])] + [""]
    return lines + temporal_table(results) + [""]


def render_markdown(results: dict) -> str:
    from edgesharp.benchmarks.report import machine_line

    lines = [f"# edgesharp temporal stability ({results.get('created', '')})", ""]
    if results.get("machine"):
        lines += [machine_line(results["machine"]), ""]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    return "\n".join(lines + markdown_section(results))


def write_markdown(out_dir: Path, results: dict) -> Path:
    from edgesharp.edge.imaging.io import atomic_write_bytes

    path = Path(out_dir) / "report.md"
    atomic_write_bytes(path, render_markdown(results).encode())
    return path


def summary_lines(results: dict) -> list[str]:
    return [f"{r['method']:<36} {r['clip']:<44} flicker {_ratio_cell(r['flicker_ratio'], r['added_flicker_pct'])}  "
            f"warp {_ratio_cell(r['warp_ratio'], r['added_warp_pct'])}" for r in temporal_rows(results)]
