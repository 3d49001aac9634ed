"""Photographs that installed packages ship (scikit-image, scikit-learn, matplotlib): data that needs no download.

Training's builtin source and calibration's default images both come from here. Never Kodak24 or the
GoPro pairs: those are the test sets.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle", "colorwheel", "brick", "camera", "coins", "gravel", "grass", "moon", "page",
    "text", "clock", "logo",
)
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")


def to_rgb_u8(img: np.ndarray) -> np.ndarray:
    """bool, float in [0, 1] or uint8; grey, RGB or RGBA -> uint8 HxWx3."""
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _is_colour(img: np.ndarray) -> bool:
    return img.ndim == 3 and img.shape[2] == 3


def package_photographs(colour_only: bool = False) -> dict[str, np.ndarray]:
    """Every shipped photograph this environment can load offline, uint8 RGB by name; packages that are
    not installed are skipped. `colour_only` keeps the images that are RGB photographs to begin with."""
    raw: dict[str, np.ndarray] = {}
    try:
        import skimage.data

        for name in SKIMAGE_PHOTOS:
            try:
                img = getattr(skimage.data, name)()
                raw[f"skimage_{name}"] = img[0] if isinstance(img, tuple) else img
            except Exception as exc:  # some versions fetch a few images on demand
                log.debug("skimage.data.%s unavailable: %s", name, exc)
    except ImportError:
        log.info("scikit-image not installed: no skimage photographs")
    try:
        from sklearn.datasets import load_sample_images

        samples = load_sample_images()
        for fname, img in zip(samples.filenames, samples.images, strict=True):
            raw[f"sklearn_{Path(fname).stem}"] = img
    except ImportError:
        log.info("scikit-learn not installed: no sklearn photographs")
    try:
        import matplotlib
        from matplotlib import image as mpimg

        folder = Path(matplotlib.get_data_path()) / "sample_data"
        for name in MATPLOTLIB_PHOTOS:
            if (folder / name).is_file():
                raw[f"mpl_{Path(name).stem}"] = mpimg.imread(folder / name)
    except ImportError:
        log.info("matplotlib not installed: no matplotlib sample images")
    return {k: to_rgb_u8(v) for k, v in raw.items() if not colour_only or _is_colour(v)}
