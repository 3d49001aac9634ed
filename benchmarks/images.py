"""Sharp test images for the quality suite: photographs shipped inside installed packages, or a folder.

The default set needs no download: scikit-image ships photographs in `skimage/data/` and
scikit-learn ships two in `sklearn/datasets/images/`. Greyscale ones are expanded to RGB by
`read_image`. Real blurred/sharp pairs (GoPro) come from a folder of `*_blur.png` + `*_sharp.png`.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesharp.calibrate.data import center_crop
from edgesharp.edge.errors import EdgesharpError, ImageReadError
from edgesharp.edge.imaging.io import list_images, read_image

log = logging.getLogger(__name__)

# (package, file inside the package's data folder): natural photographs only (no charts, text, binary masks).
PACKAGE_PHOTOS: tuple[tuple[str, str], ...] = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/camera.png"),
    ("skimage", "data/brick.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/coins.png"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
)


@dataclass
class Sample:
    """A sharp ground-truth image, and for real pairs the camera's blurred frame."""

    name: str
    sharp: np.ndarray
    blurred: np.ndarray | None = None


def _package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_image_paths() -> list[Path]:
    """The shipped photographs that exist in this environment (missing packages are skipped)."""
    paths = []
    for package, rel in PACKAGE_PHOTOS:
        root = _package_root(package)
        if root is not None and (root / rel).is_file():
            paths.append(root / rel)
        else:
            log.debug("package image %s/%s not available", package, rel)
    return paths


def load_sharp_images(folder: Path | None = None, limit: int | None = None, max_side: int | None = None,
                      split: str | None = None, downscale: float = 1.0) -> list[Sample]:
    """Images from `folder` (only its `split` part, edge.imaging.splits, when given), or the package photographs
    when None; each area-downscaled by `downscale`, then optionally the first `limit`, centre-cropped."""
    from edgesharp.edge.imaging.splits import downscale as area_downscale
    from edgesharp.edge.imaging.splits import split_files

    if folder is None:
        paths = package_image_paths()
        if not paths:
            raise EdgesharpError("no package images found (install scikit-image or scikit-learn, or pass --images DIR)")
    else:
        paths = split_files(folder, split) if split else list_images(folder)
        if not paths:
            raise EdgesharpError(f"{folder}: no images found" + (f" in its {split} split" if split else ""))
    if limit:
        paths = paths[:limit]
    samples = []
    for p in paths:
        try:
            img = area_downscale(read_image(p), downscale)
            samples.append(Sample(p.stem, np.ascontiguousarray(center_crop(img, max_side))))
        except ImageReadError as exc:
            log.warning("skipping %s", exc)
    if not samples:
        raise EdgesharpError(f"{folder or 'package images'}: none of the images could be read")
    return samples


def load_pairs(folder: Path, limit: int | None = None, max_side: int | None = None) -> list[Sample]:
    """Real pairs `<name>_blur.<ext>` + `<name>_sharp.<ext>` from `folder` (GoPro layout)."""
    files = list_images(folder)
    blurs = {p.stem[: -len("_blur")]: p for p in files if p.stem.endswith("_blur")}
    sharps = {p.stem[: -len("_sharp")]: p for p in files if p.stem.endswith("_sharp")}
    names = sorted(set(blurs) & set(sharps))
    if not names:
        raise EdgesharpError(f"{folder}: no *_blur / *_sharp image pairs found")
    unmatched = sorted(set(blurs) ^ set(sharps))
    if unmatched:
        log.warning("%s: %d image(s) without a partner: %s", folder, len(unmatched), ", ".join(unmatched[:5]))
    samples = []
    for name in names[:limit] if limit else names:
        sharp, blurred = read_image(sharps[name]), read_image(blurs[name])
        if sharp.shape != blurred.shape:
            raise EdgesharpError(f"{blurs[name]}: size {blurred.shape[:2]} differs from {sharps[name]} {sharp.shape[:2]}")
        samples.append(Sample(name, np.ascontiguousarray(center_crop(sharp, max_side)), np.ascontiguousarray(center_crop(blurred, max_side))))
    return samples
