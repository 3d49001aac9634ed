"""Image reading and writing with validation: 8/16-bit, grey and alpha handled, truncation caught, atomic writes.

Images travel through the project as uint8 HxWx3 arrays in RGB order (`color="bgr"` for OpenCV order).

The output rule every file writer of the runtime follows (images, videos, statistics): `check_outputs` refuses
before anything runs a file that is an input of the same run (compared by real path, symlinks resolved), written
twice, or an existing folder; the data goes to a new uniquely named temporary file in the target's folder
(`temporary_beside`), is checked, and `publish` renames it over the target only when complete, with the mode the
umask gives a new file. On any failure the temporary file is removed and the previous file is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError, ImageReadError, OutputError, UsageError

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


def real_path(path: str | os.PathLike) -> Path:
    """The absolute path with every symlink resolved, also for a file that does not exist yet."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike]], inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse (`UsageError`) a run whose outputs, as (what, path) pairs, include one of its input files, a file
    written twice, or an existing folder where a file goes; every path compared by its real path."""
    protected = {real_path(p): p for p in inputs}
    seen: dict[Path, str] = {}
    for what, path in outputs:
        real = real_path(path)
        shown = f"{what} {path}" if what else str(path)
        if real in protected:
            raise UsageError(f"{shown}: would overwrite the input {protected[real]} of this run; choose another output")
        if real in seen:
            raise UsageError(f"{shown}: also written by {seen[real]} in this run; give each output its own file")
        if real.is_dir():
            raise UsageError(f"{shown}: is a folder; give a file name")
        seen[real] = shown


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def make_folder(folder: str | os.PathLike, what: str | os.PathLike | None = None) -> Path:
    """Create `folder` and its parents; one-line `OutputError` when a file is in the way or it is not allowed."""
    folder = Path(folder)
    what = what or folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise OutputError(f"{what}: cannot create the folder {folder}: {blocker} is a file") from None
    except OSError as exc:
        raise OutputError(f"{what}: cannot create the folder {folder} ({_reason(exc)})") from None
    return folder


# temporary files not yet published, removed by `remove_temporary_files` on an emergency exit
_TEMPORARY: set[str] = set()
_TEMPORARY_LOCK = threading.Lock()
_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask would, for a moment)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def temporary_beside(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A new empty file with a unique name in `path`'s folder (created with it), for `publish` or `discard`."""
    path = Path(path)
    make_folder(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create a file in {path.parent} ({_reason(exc)})") from None
    os.close(fd)
    with _TEMPORARY_LOCK:
        _TEMPORARY.add(tmp)
    return Path(tmp)


def discard(tmp: str | os.PathLike) -> None:
    """Remove a temporary file made by `temporary_beside` (if it is still there)."""
    with _TEMPORARY_LOCK:
        _TEMPORARY.discard(str(tmp))
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a complete temporary file the mode a new file gets under the umask and rename it over `path`;
    on failure the temporary file is removed, `path` is unchanged and an `OutputError` says why."""
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise OutputError(f"{path}: not written ({_reason(exc)}); the previous file, if any, is unchanged") from None
    with _TEMPORARY_LOCK:
        _TEMPORARY.discard(str(tmp))


def remove_temporary_files() -> None:
    """Remove every temporary file not yet published (before an emergency exit that skips the normal cleanup)."""
    with _TEMPORARY_LOCK:
        pending = list(_TEMPORARY)
        _TEMPORARY.clear()
    for tmp in pending:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a new temporary file beside `path` (its real path), then rename it over `path`.

    Every failure is a one-line `OutputError` (also an `OSError`); the previous file is then unchanged."""
    make_folder(Path(path).parent, path)  # messages name the path as given, not its real path
    target = real_path(path)
    if target.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    tmp = temporary_beside(target)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        written = os.stat(tmp).st_size
        if written != len(data):
            raise OSError(f"only {written} of {len(data)} bytes reached the disk")
    except OSError as exc:
        discard(tmp)
        raise OutputError(f"{path}: not written ({_reason(exc)}); the previous file, if any, is unchanged") from None
    except BaseException:
        discard(tmp)
        raise
    publish(tmp, target)
