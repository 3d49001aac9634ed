"""The fixed train/validation split of a photo folder, and the ×2 area downscale its photos are used at.

A file belongs to the validation part when the SHA-256 of its file name is 0 modulo 10 (about one file in
ten). The rule needs no list and does not move when files are added: `train_photos` (638 photos) puts 62 in
validation, spread over its sources. Every choice of the recipe (checkpoints, learning rates, quantization
settings, guard thresholds) is made on the validation part; Kodak24 and the GoPro pairs are test sets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import list_images

SPLITS = ("train", "val")
VAL_MODULUS = 10


def split_of(name: str) -> str:
    """'val' or 'train' for a file name (the name only, not its folder)."""
    digest = int(hashlib.sha256(Path(name).name.encode("utf-8")).hexdigest(), 16)
    return "val" if digest % VAL_MODULUS == 0 else "train"


def split_files(folder: str | os.PathLike, part: str | None) -> list[Path]:
    """The image files of `folder` in `part` ('train' or 'val'; None: all), sorted by name."""
    if part is not None and part not in SPLITS:
        raise EdgesharpError(f"split {part!r}: choose one of {', '.join(SPLITS)}")
    files = list_images(folder)
    return files if part is None else [p for p in files if split_of(p.name) == part]


def downscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Area-downscale by `factor` (1: unchanged); photos softer than their pixel grid are used at factor 2."""
    if factor == 1:
        return img
    if not factor > 1:
        raise EdgesharpError(f"downscale factor must be >= 1, got {factor}")
    h, w = img.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)
