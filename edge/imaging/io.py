"""Image reading and writing with validation: 8/16-bit, grey and alpha handled, truncation caught, atomic writes.

Images travel through the project as uint8 HxWx3 arrays in RGB order (`color="bgr"` for OpenCV order).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgesharpError, ImageReadError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_COLORS = ("rgb", "bgr")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside `folder`, sorted by name; an error if the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgesharpError(f"{folder}: not a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _check_color(color: str) -> None:
    if color not in _COLORS:
        raise ValueError(f"color must be one of {_COLORS}, got {color!r}")


def _truncation_problem(data: bytes, suffix: str) -> str | None:
    """Decoders often return a partial image for a cut-off file; the container's end marker tells."""
    if suffix == ".png" and b"IEND" not in data[-32:]:
        return "truncated PNG (no IEND chunk)"
    if suffix in (".jpg", ".jpeg") and b"\xff\xd9" not in data.rstrip(b"\x00\r\n ")[-2:]:
        return "truncated JPEG (no end-of-image marker)"
    return None


def read_image_alpha(path: str | os.PathLike, color: str = "rgb") -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as uint8 HxWx3 plus its alpha plane (uint8 HxW) when it has one."""
    _check_color(color)
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(f"{path}: empty file")
    problem = _truncation_problem(data, path.suffix.lower())
    if problem:
        raise ImageReadError(f"{path}: {problem}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}")
    alpha = None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 2:
        alpha = img[:, :, 1].copy()
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        alpha = img[:, :, 3].copy()
        img = img[:, :, :3]
    elif img.shape[2] != 3:
        raise ImageReadError(f"{path}: unsupported channel count {img.shape[2]}")
    if color == "rgb":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img), alpha


def read_image(path: str | os.PathLike, color: str = "rgb") -> np.ndarray:
    """Read an image as uint8 HxWx3 (grey expanded, alpha dropped, 16-bit scaled to 8-bit)."""
    return read_image_alpha(path, color)[0]


def check_frame(img: np.ndarray, what: str = "image") -> None:
    """Raise a clear error unless `img` is a uint8 HxWx3 array."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{getattr(img, 'shape', None)} {getattr(img, 'dtype', type(img).__name__)}"
        raise EdgesharpError(f"{what}: expected HxWx3 uint8, got {got}")


def write_image(
    path: str | os.PathLike, img: np.ndarray, color: str = "rgb", alpha: np.ndarray | None = None, quality: int = 95
) -> Path:
    """Write atomically (temporary file + rename); the format follows the extension."""
    _check_color(color)
    path = Path(path)
    check_frame(img, str(path))
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise EdgesharpError(f"{path}: unsupported image extension {suffix!r} (use one of {', '.join(IMAGE_EXTENSIONS)})")
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if color == "rgb" else img
    if alpha is not None:
        if alpha.shape != img.shape[:2]:
            raise EdgesharpError(f"{path}: alpha plane {alpha.shape} does not match image {img.shape[:2]}")
        bgr = np.dstack([bgr, alpha.astype(np.uint8)])
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    ok, buf = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise EdgesharpError(f"{path}: OpenCV could not encode the image as {suffix}")
    atomic_write_bytes(path, buf.tobytes())
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
