"""`edgesharp bench quality`: SSIM and PSNR at heavy / medium / low blur for baselines, students and a teacher.

Sharp images (package photographs by default, or `--images DIR`) are blurred with the evaluation
protocol (`edgesharp.edge.imaging.degrade.degrade_level`, per-image parameters from the seed) and restored by:
- `blurred input` (identity) and the tuned OpenCV `unsharp mask` (`edgesharp.benchmarks.baselines`; one setting
  per level, so it knows how blurred each input is), `unsharp mask (blind)` (one setting for every level,
  as blind as the students), plus the settings that reproduce shared/data/README.md (`unsharp (reference)`);
- each student bundle at each backend/precision it ships, through the runtime (`edge.Sharpener`);
- a teacher (`--teacher CKPT`: an edgesharp checkpoint or any spandrel-loadable restoration model).
Real pairs (`--pairs DIR`, `*_blur.png` / `*_sharp.png`) are scored as level "pairs" (unsharp uses
its heavy settings there). Scores are means over the images (DESIGN.md definitions, `edgesharp.edge.imaging.metrics`).
A comparison sheet shows the same crop across methods and levels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgesharp.benchmarks import baselines
from edgesharp.benchmarks.images import Sample, load_pairs, load_sharp_images
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

LEVELS = ("heavy", "medium", "low")
PAIRS_LEVEL = "pairs"


@dataclass
class QualityConfig:
    models: list[Path] = field(default_factory=list)
    images: Path | None = None
    pairs: Path | None = None
    teacher: Path | None = None
    levels: list[str] = field(default_factory=lambda: list(LEVELS))
    backends: list[str] = field(default_factory=lambda: ["openvino", "onnxruntime"])
    precisions: list[str] = field(default_factory=lambda: ["fp32", "fp16", "int8"])
    limit: int | None = None
    max_side: int | None = None
    seed: int = 0
    exposure: float = 1.0  # scale the sharp images' 8-bit values first (0.5: a dim room)
    split: str | None = None  # train or val part of `images` (edge.imaging.splits)
    downscale: float = 1.0  # area-downscale each image first (train_photos: 2)
    reference_unsharp: bool = True
    sheet: Path | None = None
    crop: int = 96


@dataclass
class Method:
    """A restoration to score: `apply(rgb_blurred, level) -> rgb_out`."""

    label: str
    kind: str
    apply: Callable[[np.ndarray, str], np.ndarray]
    model: str | None = None
    backend: str | None = None
    precision: str | None = None
    close: Callable[[], None] | None = None


def _baseline_methods(reference: bool) -> list[Method]:
    def unsharp(ref: bool):
        def apply(img: np.ndarray, level: str) -> np.ndarray:
            return baselines.unsharp_for_level("heavy" if level == PAIRS_LEVEL else level, reference=ref)(img)

        return apply

    blind = baselines.UNSHARP_BLIND
    methods = [Method("blurred input", "baseline", lambda img, level: baselines.identity(img)),
               Method("unsharp mask", "baseline", unsharp(False)),
               Method("unsharp mask (blind)", "baseline",
                      lambda img, level: baselines.unsharp_mask(img, blind["sigma"], blind["amount"]))]
    if reference:
        methods.append(Method("unsharp (reference)", "baseline", unsharp(True)))
    return methods


def runtime_variants(models: list[Path], backends: list[str], precisions: list[str]):
    """(path, bundle, backend, precision) for each bundle at each backend and precision it has (`auto`: always)."""
    from edgesharp.edge.bundle import load_bundle

    for path in models:
        bundle = load_bundle(path)
        for backend in backends:
            for precision in precisions:
                if precision != "auto" and not bundle.has(backend, precision):
                    log.info("%s has no %s %s model; skipped", bundle.name, backend, precision)
                    continue
                yield path, bundle, backend, precision


def _student_methods(cfg: QualityConfig) -> list[Method]:
    from edgesharp.edge.sharpener import Sharpener

    methods = []
    for path, bundle, backend, precision in runtime_variants(cfg.models, cfg.backends, cfg.precisions):
        sharpener = Sharpener(path, backend=backend, precision=precision, color="rgb")
        label = f"auto ({sharpener.precision})" if precision == "auto" else precision
        methods.append(Method(f"{bundle.name} {backend} {label}", "student",
                              lambda img, level, s=sharpener: s.enhance(img),
                              bundle.name, backend, precision, sharpener.close))
    return methods


def load_teacher(path: Path):
    """A teacher from an edgesharp checkpoint, or any restoration model spandrel recognises (needs torch)."""
    from edgesharp.edge.extras import require

    require("torch", "--teacher", extra="train")
    from edgesharp.train.checkpoint import CheckpointError, read_checkpoint
    from edgesharp.train.teachers import SpandrelTeacher, StudentTeacher

    try:
        read_checkpoint(path)
    except CheckpointError:
        return SpandrelTeacher(path)
    return StudentTeacher(path)


def _teacher_method(path: Path) -> Method:
    import torch

    teacher = load_teacher(path)

    def apply(img: np.ndarray, level: str) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255.0
        y = teacher(x)[0].clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).numpy()
        return np.ascontiguousarray(y)

    return Method(f"teacher {teacher.name}", "teacher", apply, model=str(path), backend="pytorch", precision="fp32")


def build_methods(cfg: QualityConfig) -> list[Method]:
    methods = _baseline_methods(cfg.reference_unsharp) + _student_methods(cfg)
    if cfg.teacher:
        methods.append(_teacher_method(cfg.teacher))
    return methods


def degraded_sets(cfg: QualityConfig) -> dict[str, list[Sample]]:
    """level -> samples with `blurred` filled: protocol levels on the sharp images, and real pairs."""
    sets: dict[str, list[Sample]] = {}
    if cfg.levels:
        from edgesharp.edge.imaging.degrade import degrade_level

        sharp = load_sharp_images(cfg.images, cfg.limit, cfg.max_side, cfg.split, cfg.downscale)
        if cfg.exposure != 1.0:
            if not 0 < cfg.exposure <= 1:
                raise EdgesharpError(f"--exposure must be in (0, 1], got {cfg.exposure}")
            from edgesharp.edge.imaging.degrade import exposure

            sharp = [Sample(s.name, exposure(s.sharp, cfg.exposure)) for s in sharp]
        for level in cfg.levels:
            if level not in LEVELS:
                raise EdgesharpError(f"unknown blur level {level!r}; choose from {', '.join(LEVELS)}")
            sets[level] = [Sample(s.name, s.sharp, degrade_level(s.sharp, level, s.name, cfg.seed)[0]) for s in sharp]
    if cfg.pairs:
        sets[PAIRS_LEVEL] = load_pairs(cfg.pairs, cfg.limit, cfg.max_side)
    if not sets:
        raise EdgesharpError("nothing to score: no levels and no --pairs")
    return sets


def score_methods(methods: list[Method], sets: dict[str, list[Sample]], keep: str | None = None,
                  progress=None) -> tuple[list[dict], dict]:
    """Rows of mean SSIM/PSNR per (method, level); also the outputs for image `keep` (for the sheet)."""
    from edgesharp.edge.imaging.metrics import psnr, ssim

    say = progress or (lambda text: log.info("%s", text))
    rows, kept = [], {}
    for level, samples in sets.items():
        for m in methods:
            say(f"quality {m.label} {level} ({len(samples)} images)")
            per_image, seconds = {}, 0.0
            for s in samples:
                t0 = time.perf_counter()
                out = m.apply(s.blurred, level)
                seconds += time.perf_counter() - t0
                per_image[s.name] = {"ssim": round(ssim(s.sharp, out), 5), "psnr": round(psnr(s.sharp, out), 3)}
                if s.name == keep:
                    kept[(level, m.label)] = out
            rows.append({
                "suite": "quality", "kind": m.kind, "method": m.label, "model": m.model, "backend": m.backend,
                "precision": m.precision, "level": level, "count": len(samples),
                "ssim": round(float(np.mean([v["ssim"] for v in per_image.values()])), 4),
                "psnr": round(float(np.mean([v["psnr"] for v in per_image.values()])), 3),
                "seconds_per_image": round(seconds / len(samples), 4),
                "images": per_image,
            })
    return rows, kept


# -- comparison sheet ---------------------------------------------------------------------------------------

def detail_crop(img: np.ndarray, size: int) -> tuple[int, int, int]:
    """(y, x, side) of the square with the most edge energy: where sharpening shows."""
    side = min(size, img.shape[0], img.shape[1])
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    box = cv2.boxFilter(energy, -1, (side, side), normalize=True, borderType=cv2.BORDER_CONSTANT)
    half = side // 2
    valid = box[half : img.shape[0] - side + half + 1, half : img.shape[1] - side + half + 1]
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(y), int(x), side


def _tile(img: np.ndarray, label: str, scale: int) -> np.ndarray:
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    bar = np.full((22, big.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, label[:28], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, big])


def sheet_columns(methods: list[Method]) -> list[str]:
    """blurred / unsharp / first student at fp32 and int8 (OpenVINO preferred) / teacher."""
    labels = ["blurred input", "unsharp mask"]
    students = [m for m in methods if m.kind == "student"]
    for precision in ("fp32", "int8"):
        pick = next((m for m in students if m.precision == precision and m.backend == "openvino"), None) or next(
            (m for m in students if m.precision == precision), None)
        if pick:
            labels.append(pick.label)
    labels += [m.label for m in methods if m.kind == "teacher"]
    return labels


def comparison_sheet(kept: dict, sets: dict[str, list[Sample]], name: str, columns: list[str], crop: int = 96,
                     scale: int = 2) -> np.ndarray:
    """Rows: levels; columns: `columns` then ground truth; the same crop everywhere (RGB uint8)."""
    rows = []
    for level, samples in sets.items():
        sample = next((s for s in samples if s.name == name), None)
        if sample is None:
            continue
        y, x, side = detail_crop(sample.sharp, crop)
        tiles = []
        for label in columns:
            out = kept.get((level, label))
            if out is not None:
                tiles.append(_tile(out[y : y + side, x : x + side], label, scale))
        tiles.append(_tile(sample.sharp[y : y + side, x : x + side], "ground truth", scale))
        gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
        row = np.hstack([t for tile in tiles for t in (tile, gap)][:-1])
        head = np.full((row.shape[0], 70, 3), 255, np.uint8)
        cv2.putText(head, level, (4, row.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.hstack([head, row]))
    if not rows:
        raise EdgesharpError(f"comparison sheet: image {name!r} not found")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.vstack(rows)


def run_quality(cfg: QualityConfig, progress=None) -> dict:
    """Score every method at every level; write the comparison sheet when `cfg.sheet` is set."""
    sets = degraded_sets(cfg)
    methods = build_methods(cfg)
    first = next(iter(sets.values()))[0].name
    try:
        rows, kept = score_methods(methods, sets, keep=first if cfg.sheet else None, progress=progress)
    finally:
        for m in methods:
            if m.close:
                m.close()
    result = {"rows": rows, "images": {lv: [s.name for s in ss] for lv, ss in sets.items()},
              "unsharp_params": baselines.UNSHARP_PARAMS, "unsharp_blind": baselines.UNSHARP_BLIND, "seed": cfg.seed,
              "source": str(cfg.images) if cfg.images else "package photographs"}
    if cfg.sheet:
        from edgesharp.edge.imaging.io import write_image

        sheet = comparison_sheet(kept, sets, first, sheet_columns(methods), cfg.crop)
        write_image(cfg.sheet, sheet)
        result["sheet"] = str(cfg.sheet)
    return result
