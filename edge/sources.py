"""Frame sources: a camera (index or device path), a video file, a folder of images, a generated scene.

Every source yields u8 BGR HxWx3 frames (`SourceFrame`) until it returns None. `live` sources (cameras,
paced synthetic scenes) keep producing whether or not anyone keeps up, so the pipeline may drop their
frames; the others wait for the pipeline and never lose a frame. `open_source(spec, size, fps)` parses the
`--source` argument.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError, UsageError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
SYNTHETIC_LEVELS = {"heavy": (1.95, 1.35), "medium": (1.5, 0.8), "low": (1.2, 0.4), "none": (1.0, 0.0)}
SOURCE_HELP = "camera:N[,fourcc=CODE|default], /dev/videoN, a video file, a folder of images, or synthetic"
MIN_FPS = 0.01
MAX_FPS = 1000.0  # OpenCV's MP4 writer refuses more; its writers hang on an infinite rate


def check_fps(fps, what: str = "--fps") -> float:
    """`fps` as a float if it is a finite number from MIN_FPS to MAX_FPS, else a one-line `UsageError`."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise UsageError(f"{what} {fps!r}: not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{what} {fps!r}: the frame rate must be a finite number above 0")
    if value > MAX_FPS:
        raise UsageError(f"{what} {fps!r}: the frame rate must be at most {MAX_FPS:g}")
    if value < MIN_FPS:  # a frame every 100 s at the slowest: 1/fps must stay a usable interval
        raise UsageError(f"{what} {fps!r}: the frame rate must be at least {MIN_FPS:g}")
    return value


class CameraError(EdgesharpError):
    """A camera could not be opened or stopped delivering frames."""


@dataclass
class SourceFrame:
    image: np.ndarray  # u8 BGR HxWx3
    name: str | None = None  # file stem for image folders, else None
    origin: str | None = None  # the file it was read from (image folders), for messages


class Source:
    """Base class: `open()`, `read() -> SourceFrame | None`, `close()`; `interrupt()` from another thread."""

    live = False
    description = "source"

    def __init__(self, size: tuple[int, int] | None = None, fps: float | None = None):
        self.size = size  # (width, height) wanted; None: native
        self.fps = None if fps is None else check_fps(fps, "fps")
        self.total: int | None = None  # frame count when known in advance
        self._interrupted = threading.Event()
        self._t0: float | None = None  # when frame 0 was due (paced sources)

    def open(self) -> None:
        pass

    def input_files(self) -> list[Path]:
        """The files this source reads (no output of the same run may replace one of them)."""
        return []

    def _read(self) -> SourceFrame | None:
        raise NotImplementedError

    def read(self) -> SourceFrame | None:
        if self._interrupted.is_set():
            return None
        frame = self._read()
        if frame is not None and self.size and frame.image.shape[1::-1] != tuple(self.size):
            frame.image = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_AREA)
        return frame

    def _wait_for_frame(self, index: int) -> bool:
        """Pace a generated live source like a camera: sleep until frame `index` is due at `fps`.
        False when interrupted while waiting."""
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + index / self.fps
        return not (due > now and self._interrupted.wait(due - now))

    def interrupt(self) -> None:
        """Make `read` return None soon (used on shutdown; also cuts camera back-off waits short)."""
        self._interrupted.set()

    def close(self) -> None:
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs several lines of backend internals when a camera is missing; our own error says it in one."""
    try:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:
        yield
        return
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


CAMERA_FOURCC = "MJPG"  # asked of every camera: most webcams give 720p at full rate only compressed (MJPG)
NATIVE_FOURCC = ("default", "native", "none")  # `fourcc=` values that skip the request


def fourcc_text(code) -> str:
    """OpenCV's CAP_PROP_FOURCC (a float holding four bytes) as text ('MJPG'); '' when the backend does not say."""
    try:
        value = int(code)
    except (TypeError, ValueError, OverflowError):
        return ""
    if value <= 0:
        return ""
    text = "".join(chr((value >> 8 * i) & 0xFF) for i in range(4))
    return text if text.isascii() and text.isprintable() and text.strip() else f"0x{value:08x}"


def check_fourcc(text: str, what: str = "fourcc") -> str | None:
    """A FOURCC to ask the camera for ('MJPG', 'YUYV', ...), or None for the camera's default format."""
    value = str(text).strip()
    if value.lower() in NATIVE_FOURCC:
        return None
    if len(value) != 4 or not (value.isascii() and value.isprintable()):
        raise UsageError(f"{what}={value!r}: a FOURCC is 4 characters (MJPG, YUYV, H264, ...) or "
                         f"'default' for the camera's own format")
    return value


@dataclass(frozen=True)
class CameraMode:
    """What a camera delivers, read back from the driver after the request."""

    fourcc: str  # 'MJPG', 'YUYV', ...; '' when the backend does not report it
    width: int
    height: int
    fps: float  # 0 when the backend does not report it

    @classmethod
    def read(cls, cap) -> CameraMode:
        fps = cap.get(cv2.CAP_PROP_FPS)
        return cls(fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                   int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                   round(float(fps), 2) if fps and math.isfinite(fps) and fps > 0 else 0.0)

    def __str__(self) -> str:
        rate = f"{self.fps:.1f} fps" if self.fps else "an unreported rate"
        return f"{self.fourcc or 'format unreported'} {self.width}x{self.height} at {rate}"

    def to_dict(self) -> dict:
        return {"fourcc": self.fourcc or None, "width": self.width, "height": self.height, "fps": self.fps or None}


def _open_quietly(factory, device):
    with _quiet_opencv():
        cap = factory(device)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


def _request_mode(cap, fourcc: str | None, size: tuple[int, int] | None, fps: float | None) -> None:
    """The FOURCC first: V4L2 drivers list the sizes and rates per format, so size and rate follow it."""
    if fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
    if size:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    if fps:
        cap.set(cv2.CAP_PROP_FPS, fps)


class CameraSource(Source):
    """A camera by index (`camera:0`) or device path (`/dev/video2`); reopened with back-off when it stalls.

    It asks for `fourcc` (MJPG unless told otherwise: many webcams give 720p at 5-10 fps uncompressed and at
    their full rate in MJPG), then the size and rate; `mode` is what the camera actually delivers."""

    live = True

    def __init__(self, device: int | str, size=None, fps=None, reopen_attempts: int = 3, backoff_s: float = 0.5,
                 capture_factory: Callable[[int | str], object] | None = None, fourcc: str | None = CAMERA_FOURCC):
        super().__init__(size, fps)
        self.device = device
        self.description = f"camera {device}"
        self.reopen_attempts = reopen_attempts
        self.backoff_s = backoff_s
        self.fourcc = fourcc  # None: the camera's default format
        self.mode: CameraMode | None = None  # set by open()
        self._factory = capture_factory or (lambda dev: cv2.VideoCapture(dev))  # looked up late: tests patch it
        self._cap = None

    def _open_capture(self):
        cap = _open_quietly(self._factory, self.device)
        if cap is not None:
            with _quiet_opencv():  # a refused FOURCC is said once, in our own line
                _request_mode(cap, self.fourcc, self.size, self.fps)
        return cap

    def open(self) -> None:
        """Open the camera and log its delivered mode in one line (a second call while open does nothing:
        `edgesharp run` opens a camera before the model, so a missing one fails fast)."""
        if self._cap is not None:
            return
        self._cap = self._open_capture()
        if self._cap is None:
            raise CameraError(f"camera {self.device}: cannot open it (no such device, busy, or no permission); "
                              "to try edgesharp without a camera use --source synthetic or --source VIDEO_FILE")
        self.mode = mode = CameraMode.read(self._cap)
        self.description = f"camera {self.device} ({mode})"
        self.fps = self.fps or (mode.fps if 0 < mode.fps <= MAX_FPS else 30.0)
        if self.fourcc and mode.fourcc and mode.fourcc != self.fourcc:
            log.warning("camera %s did not accept %s; it delivers %s, which the run uses (',fourcc=default' "
                        "after the --source skips the request)", self.device, self.fourcc, mode)
        else:
            asked = f"; asked for {self.fourcc}" if self.fourcc and not mode.fourcc else ""
            log.info("camera %s delivers %s%s", self.device, mode, asked)
        if self.size and (mode.width, mode.height) != tuple(self.size):
            log.warning("camera %s delivers %dx%d instead of the requested %dx%d; frames are resized",
                        self.device, mode.width, mode.height, *self.size)

    def _read(self) -> SourceFrame | None:
        ok, image = self._cap.read() if self._cap is not None else (False, None)
        if ok:
            return SourceFrame(image)
        for attempt in range(1, self.reopen_attempts + 1):
            wait = self.backoff_s * 2 ** (attempt - 1)
            log.warning("camera %s delivered no frame; reopening in %.1f s (attempt %d of %d)",
                        self.device, wait, attempt, self.reopen_attempts)
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            if self._interrupted.wait(wait):
                return None
            self._cap = self._open_capture()
            if self._cap is not None:
                ok, image = self._cap.read()
                if ok:
                    log.info("camera %s is back", self.device)
                    return SourceFrame(image)
        raise CameraError(f"camera {self.device}: stopped delivering frames and did not come back after "
                          f"{self.reopen_attempts} reopen attempts")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


PROBE_SIZES = ((640, 480), (1280, 720), (1920, 1080))


@dataclass
class CameraProbe:
    device: int | str
    default: CameraMode  # what it delivers when asked for nothing
    modes: list[CameraMode]  # what it delivers when asked for the FOURCC at each probed size (distinct)


def probe_camera(device: int | str, fourcc: str | None = CAMERA_FOURCC, sizes=PROBE_SIZES, fps: float = 30.0,
                 capture_factory: Callable[[int | str], object] | None = None) -> CameraProbe | None:
    """Open camera `device`, read its default mode, then ask for `fourcc` at each of `sizes` and `fps` and read
    back what it delivers; None when it does not open. Each request is what `CameraSource` would make."""
    factory = capture_factory or (lambda dev: cv2.VideoCapture(dev))
    cap = _open_quietly(factory, device)
    if cap is None:
        return None
    try:
        probe = CameraProbe(device, CameraMode.read(cap), [])
        for size in sizes:
            with _quiet_opencv():
                _request_mode(cap, fourcc, size, fps)
            mode = CameraMode.read(cap)
            if mode not in probe.modes:
                probe.modes.append(mode)
    finally:
        cap.release()
    return probe


class VideoFileSource(Source):
    """Every frame of a video file, as fast as the pipeline takes them. A file that ends more than a frame
    before its header's frame count is reported (`shortfall`, and a warning): it is truncated or damaged."""

    def __init__(self, path: str | Path, size=None, fps=None):
        super().__init__(size, fps)
        self.path = Path(path)
        self.description = str(self.path)
        self.frames_read = 0
        self.shortfall: tuple[int, int] | None = None  # (frames the header promised, frames it gave)
        self._cap = None

    def input_files(self) -> list[Path]:
        return [self.path]

    def open(self) -> None:
        if not self.path.is_file():
            raise EdgesharpError(f"{self.path}: no such video file")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise EdgesharpError(f"{self.path}: OpenCV cannot open this video (unsupported or corrupt)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = self.fps or (fps if fps and 0 < fps < 1000 else 30.0)
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.total = int(count) if math.isfinite(count) and count > 0 else None  # some containers: off by one

    def _read(self) -> SourceFrame | None:
        ok, image = self._cap.read()
        if ok:
            self.frames_read += 1
            return SourceFrame(image)
        if self.total and self.frames_read < self.total - 1 and not self._interrupted.is_set():
            self.shortfall = (self.total, self.frames_read)
            log.warning("%s: truncated or damaged: its header promised %d frames, it gave %d", self.path,
                        self.total, self.frames_read)
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource(Source):
    """The images directly in a folder, sorted by name; unreadable files are skipped with a warning."""

    def __init__(self, folder: str | Path, size=None, fps=None):
        super().__init__(size, 30.0 if fps is None else fps)
        self.folder = Path(folder)
        self.description = str(self.folder)
        self.skipped: list[str] = []
        self._paths: list[Path] = []
        self._next = 0

    def input_files(self) -> list[Path]:
        from edgesharp.edge.imaging.io import list_images

        return self._paths or (list_images(self.folder) if self.folder.is_dir() else [])

    def open(self) -> None:
        from edgesharp.edge.imaging.io import list_images

        self._paths = list_images(self.folder)
        if not self._paths:
            raise EdgesharpError(f"{self.folder}: no images in this folder")
        self.total = len(self._paths)

    def _read(self) -> SourceFrame | None:
        from edgesharp.edge.errors import ImageReadError
        from edgesharp.edge.imaging.io import read_image

        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            try:
                return SourceFrame(read_image(path, color="bgr"), name=path.stem, origin=str(path))
            except ImageReadError as exc:
                log.warning("skipping %s", exc)
                self.skipped.append(str(path))
        return None


class IterableSource(Source):
    """Frames from any Python iterable of u8 BGR arrays (the `Sharpener.stream` API, tests)."""

    def __init__(self, frames: Iterable[np.ndarray], live: bool = False, fps: float | None = None,
                 total: int | None = None):
        super().__init__(None, 30.0 if fps is None else fps)
        self.live = live
        self.description = "frames"
        self.total = total
        self._it = iter(frames)

    def _read(self) -> SourceFrame | None:
        image = next(self._it, None)
        return None if image is None else SourceFrame(image)


class SyntheticScene:
    """A sharp moving scene (text, edges, stripes, face-like shapes) rendered at any size, deterministic per frame."""

    def __init__(self, width: int, height: int, seed: int = 0):
        self.width, self.height = width, height
        rng = np.random.default_rng(seed)
        ch, cw = height + height // 2, width + width // 2
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        canvas = np.stack([90 + 60 * np.sin(xx / cw * 6.3), 110 + 50 * np.cos(yy / ch * 4.1),
                           140 + 40 * np.sin((xx + yy) / (cw + ch) * 9.0)], axis=-1)
        canvas = canvas.astype(np.uint8)
        s = max(1, min(width, height) // 120)
        for i in range(0, cw, 24 * s):  # fine stripes: where blur shows first
            cv2.line(canvas, (i, 0), (i + ch // 3, ch), (235, 235, 235), 1, cv2.LINE_AA)
        for _ in range(10):
            x0, y0 = int(rng.integers(0, cw)), int(rng.integers(0, ch))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(canvas, (x0, y0), (x0 + int(rng.integers(8, 60)) * s, y0 + int(rng.integers(8, 60)) * s),
                          color, -1)
        square = 8 * s
        for y in range(0, min(ch, 12 * square), square):  # checkerboard patch
            for x in range(0, min(cw, 12 * square), square):
                if (x // square + y // square) % 2 == 0:
                    canvas[y:y + square, x:x + square] = 20
        words = ["EDGESHARP", "Sharp text 0123456789", "The quick brown fox", "jumps over the lazy dog"]
        for i, text in enumerate(words * 3):
            scale = (0.35 + 0.2 * (i % 3)) * min(width, height) / 480
            y = int((i + 1) * ch / (len(words) * 3 + 1))
            cv2.putText(canvas, text, (int(rng.integers(0, max(1, cw // 3))), y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (10, 10, 10) if i % 2 else (250, 250, 250), max(1, s // 2), cv2.LINE_AA)
        self._canvas = canvas

    def render(self, index: int, fps: float = 30.0) -> np.ndarray:
        t = index / fps
        h, w = self.height, self.width
        oy = int((self._canvas.shape[0] - h) * (0.5 + 0.5 * math.sin(t * 0.7)))
        ox = int((self._canvas.shape[1] - w) * (0.5 + 0.5 * math.sin(t * 0.5)))
        frame = self._canvas[oy:oy + h, ox:ox + w].copy()
        s = min(w, h)
        for k, phase in enumerate((0.0, 2.1)):  # two faces drifting across
            cx = int(w * (0.3 + 0.4 * k) + 0.15 * w * math.sin(t * (0.9 + 0.3 * k) + phase))
            cy = int(h * 0.55 + 0.1 * h * math.cos(t * 0.8 + phase))
            r = max(6, s // (5 + 2 * k))
            cv2.ellipse(frame, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (120, 160, 215), -1, cv2.LINE_AA)
            for ex in (-1, 1):
                eye = (cx + ex * r // 3, cy - r // 4)
                cv2.ellipse(frame, eye, (max(2, r // 7), max(1, r // 12)), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
                cv2.circle(frame, eye, max(1, r // 16), (40, 30, 20), -1, cv2.LINE_AA)
                cv2.line(frame, (eye[0] - r // 6, eye[1] - r // 6), (eye[0] + r // 6, eye[1] - r // 5),
                         (30, 40, 60), max(1, r // 25), cv2.LINE_AA)
            cv2.ellipse(frame, (cx, cy + r // 2), (r // 3, r // 8), 0, 0, 180, (60, 60, 170), max(1, r // 20),
                        cv2.LINE_AA)
            cv2.ellipse(frame, (cx, cy - int(r * 0.85)), (int(r * 0.85), int(r * 0.4)), 0, 180, 360, (30, 35, 45),
                        -1, cv2.LINE_AA)
        cv2.putText(frame, f"frame {index}", (max(2, w // 40), h - max(4, h // 30)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.35, s / 600), (255, 255, 255), max(1, s // 240), cv2.LINE_AA)
        return frame


class SyntheticSource(Source):
    """The synthetic scene blurred by the degradation protocol; paced like a camera (`live`) or as fast as taken."""

    def __init__(self, size=None, fps=None, level: str = "medium", paced: bool = True, seed: int = 0):
        size = size or (640, 480)
        super().__init__(None, 30.0 if fps is None else fps)
        if level not in SYNTHETIC_LEVELS:
            raise EdgesharpError(f"synthetic level {level!r}: choose one of {', '.join(SYNTHETIC_LEVELS)}")
        if size[0] < 16 or size[1] < 16:
            raise EdgesharpError(f"synthetic size {size[0]}x{size[1]} is too small (at least 16x16)")
        self.width, self.height = size
        self.level = level
        self.live = paced
        self.description = f"synthetic {self.width}x{self.height} @ {self.fps:g} fps, blur {level}" + (
            "" if paced else ", unpaced")
        self._scene = SyntheticScene(self.width, self.height, seed)
        self._index = 0

    def sharp(self, index: int) -> np.ndarray:
        return self._scene.render(index, self.fps)

    def _read(self) -> SourceFrame | None:
        from edgesharp.edge.imaging.degrade import bicubic_blur

        if self.live and not self._wait_for_frame(self._index):
            return None
        factor, sigma = SYNTHETIC_LEVELS[self.level]
        frame = bicubic_blur(self.sharp(self._index), factor, sigma)
        self._index += 1
        return SourceFrame(frame)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'640x480' -> (640, 480)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise UsageError(f"--size {text!r}: width and height must be between 16 and 7680x4320")
    return w, h


def _options(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip() if value else "1"
    return out


def _camera_source(spec: str, text: str, size, fps) -> CameraSource:
    """camera:N, N or /dev/videoN, each optionally followed by ,fourcc=CODE|default."""
    device, _, rest = text.partition(",")
    opts = _options(rest)
    unknown = set(opts) - {"fourcc"}
    if unknown:
        raise UsageError(f"--source {spec!r}: unknown option(s) {', '.join(sorted(unknown))} "
                         "(camera:N[,fourcc=MJPG|YUYV|...|default])")
    fourcc = check_fourcc(opts["fourcc"], f"--source {spec!r}: fourcc") if "fourcc" in opts else CAMERA_FOURCC
    device = device.strip() or "0"
    return CameraSource(int(device) if device.isdigit() else device, size, fps, fourcc=fourcc)


def open_source(spec: str, size: tuple[int, int] | None = None, fps: float | None = None) -> Source:
    """Build (not open) the source named by `--source`: camera:N, /dev/videoN, N (a camera may add
    ,fourcc=CODE|default), video file, folder, synthetic."""
    spec = str(spec)
    head, _, rest = spec.partition(":")
    if head == "synthetic":
        opts = _options(rest)
        unknown = set(opts) - {"level", "paced", "seed", *SYNTHETIC_LEVELS, "fast", "live"}
        if unknown:
            raise EdgesharpError(f"--source {spec!r}: unknown option(s) {', '.join(sorted(unknown))} "
                                 "(synthetic[:level=heavy|medium|low|none][,fast][,seed=N])")
        level = opts.get("level") or next((k for k in SYNTHETIC_LEVELS if k in opts), "medium")
        paced = "fast" not in opts and opts.get("paced", "1") not in ("0", "false", "no")
        seed = opts.get("seed", "0")
        if not seed.isdigit():
            raise UsageError(f"--source {spec!r}: seed={seed} is not a whole number >= 0")
        return SyntheticSource(size, fps, level=level, paced=paced, seed=int(seed))
    if head == "camera" or spec.split(",")[0].isdigit() or spec.startswith("/dev/video"):
        return _camera_source(spec, rest if head == "camera" else spec, size, fps)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, size, fps)
    if path.is_file():
        from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS

        if path.suffix.lower() in IMAGE_EXTENSIONS:
            raise EdgesharpError(f"--source {spec}: a single image is not a stream; use 'edgesharp enhance {spec} OUT'")
        return VideoFileSource(path, size, fps)
    raise EdgesharpError(f"--source {spec!r}: no such file or folder (sources: {SOURCE_HELP})")
