"""Images for calibration and validation, and the numpy conversions around the float model.

Calibration inputs are sharp images degraded by the training subsets (edge.imaging.degrade); the
validation set is the same kind of images degraded at the three evaluation levels, paired with the
sharp originals. Without a folder, the photographs scikit-image and scikit-learn ship are used, so
calibration works offline.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.degrade import LEVELS, SUBSETS, degrade_level, degrade_subset
from edgesharp.edge.imaging.io import read_image
from edgesharp.edge.imaging.samples import package_photographs
from edgesharp.edge.imaging.splits import downscale, split_files

log = logging.getLogger(__name__)

# Colour photographs bundled with the packages (no download needed).


@dataclass(frozen=True)
class Sample:
    """One validation pair: the blurred input and its sharp ground truth (uint8 HxWx3 RGB)."""

    name: str
    level: str
    blurred: np.ndarray
    sharp: np.ndarray


def packaged_images() -> list[tuple[str, np.ndarray]]:
    """The colour photographs installed packages ship (scikit-image, scikit-learn, matplotlib), as (name, RGB uint8)."""
    images = list(package_photographs(colour_only=True).items())
    if not images:
        raise EdgesharpError("no packaged sample images found (scikit-image/scikit-learn); pass --calib-images DIR")
    return images


def folder_images(folder: str | os.PathLike, limit: int | None = None, split: str | None = None,
                  downscale_by: float = 1.0) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) of the images in `folder`: only its `split` part ('train'/'val', `edgesharp.edge.imaging.splits`)
    when given, each area-downscaled by `downscale_by`, the first `limit` of them."""
    paths = split_files(folder, split)
    if not paths:
        what = f"no images of the {split!r} split" if split else "no images"
        raise EdgesharpError(f"{folder}: {what} found (looked for {', '.join(('png', 'jpg', 'bmp', 'tif', 'webp'))})")
    return [(p.stem, downscale(read_image(p), downscale_by)) for p in paths[:limit]]


def center_crop(img: np.ndarray, size: int | None) -> np.ndarray:
    """The central size x size window (each side capped at the image's); None keeps the image."""
    if not size:
        return img
    h, w = img.shape[:2]
    ch, cw = min(h, size), min(w, size)
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


def crop_side(images: list[tuple[str, np.ndarray]], crop: int | None, multiple: int, purpose: str,
              error: type[EdgesharpError] = EdgesharpError) -> int:
    """Side of square crops: `crop` (None: no limit) capped by the smallest image, rounded down to `multiple`."""
    side = min([crop or 10**9] + [min(img.shape[:2]) for _, img in images]) // multiple * multiple
    if side < multiple:
        raise error(f"{purpose} crops of {crop} px are smaller than the model's size multiple {multiple}")
    return side


def calibration_inputs(
    images: list[tuple[str, np.ndarray]], crop: int | None, count: int, seed: int = 0, multiple: int = 1
) -> list[np.ndarray]:
    """`count` degraded RGB uint8 crops: images cycled, subsets 1, 3, 5, 7 in turn, random crop positions.

    Every crop has the same size, a multiple of `multiple`, so that both NNCF and ONNX Runtime
    calibrate on one shape the model accepts without padding.
    """
    rng = np.random.default_rng(seed)
    subsets = sorted(SUBSETS)
    side = crop_side(images, crop, multiple, "calibration")
    out = []
    for i in range(count):
        _, img = images[i % len(images)]
        h, w = img.shape[:2]
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        window = np.ascontiguousarray(img[y : y + side, x : x + side])
        degraded, _ = degrade_subset(window, subsets[i % len(subsets)], rng)
        out.append(degraded)
    return out


def validation_samples(images: list[tuple[str, np.ndarray]], crop: int | None, levels=tuple(LEVELS)) -> list[Sample]:
    """Each image blurred at each evaluation level (whole image first, then the central crop)."""
    samples = []
    for name, img in images:
        sharp = center_crop(img, crop)
        for level in levels:
            blurred, _ = degrade_level(img, level, name)
            samples.append(Sample(name, level, np.ascontiguousarray(center_crop(blurred, crop)), np.ascontiguousarray(sharp)))
    return samples


def pad_to_multiple(img: np.ndarray, multiple: int) -> np.ndarray:
    """Pad HxWxC at the bottom and right by reflection so that H and W are multiples of `multiple`."""
    h, w = img.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return img
    mode = "reflect" if ph < h and pw < w else "symmetric"
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)


def to_model_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 1x3xHxW in [0, 1] (the ONNX contract)."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def from_model_output(out: np.ndarray) -> np.ndarray:
    """float32 1x3xHxW -> uint8 HxWx3: x255, clamp to 0..255, round half to even (as the IR's post-processing)."""
    x = np.clip(out[0].transpose(1, 2, 0) * np.float32(255.0), 0.0, 255.0)
    return np.round(x).astype(np.uint8)


def run_u8(infer, rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Sharpen one RGB uint8 image with a float runner: pad by reflection, infer, convert, crop."""
    h, w = rgb.shape[:2]
    out = infer(to_model_input(pad_to_multiple(rgb, multiple)))
    return from_model_output(out)[:h, :w]
