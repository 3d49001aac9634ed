"""Frame sinks: a preview window, a virtual camera (pyvirtualcam), a video file, an image folder, a
before/after comparison, null. Several can run at once (`--sink vcam --sink preview`).

A sink is opened with the first frame's size and the run's FPS, receives every output frame in capture
order together with its input (`write(original, output, name, index)`), and is closed once. A sink sets
`should_stop` to end the run (the preview window's `q`). `open_sink(spec)` parses the `--sink` argument.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgesharpError

log = logging.getLogger(__name__)

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
SINK_HELP = "preview[:split], vcam[:DEVICE], a video file (.mp4 .mkv .avi .mov), folder:DIR, compare:DIR, null"


class Sink:
    description = "sink"

    def __init__(self):
        self.should_stop = False
        self.frames = 0

    def preflight(self) -> None:
        """Fail before the source opens when this sink cannot work here (no display, no driver)."""

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, original: np.ndarray, output: np.ndarray, name: str | None, index: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Discards frames (benchmarks, dry runs)."""

    description = "null"

    def write(self, original, output, name, index) -> None:
        self.frames += 1


def side_by_side(original: np.ndarray, output: np.ndarray, labels: bool = True) -> np.ndarray:
    """Input left, output right, each labelled."""
    pair = np.hstack([original, output])
    if labels:
        _label(pair, "before", (8, 8))
        _label(pair, "after", (original.shape[1] + 8, 8))
    return pair


def split_view(original: np.ndarray, output: np.ndarray, position: float) -> np.ndarray:
    """Input left of the split line, output right of it (position in 0..1 of the width)."""
    w = original.shape[1]
    x = int(round(np.clip(position, 0.0, 1.0) * w))
    view = output.copy()
    view[:, :x] = original[:, :x]
    cv2.line(view, (min(x, w - 1), 0), (min(x, w - 1), view.shape[0] - 1), (255, 255, 255), 1)
    return view


def _label(img: np.ndarray, text: str, org: tuple[int, int]) -> None:
    scale = max(0.4, img.shape[0] / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 4, y - 4), (x + tw + 4, y + th + base + 4), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def display_problem() -> str | None:
    """Why no window can be shown here, or None if a display seems available."""
    system = platform.system()
    if system == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class PreviewSink(Sink):
    """A window with before/after side by side (or a split slider), an FPS overlay, `q`/Esc to quit."""

    def __init__(self, mode: str = "side", window: str = "edgesharp", gui=None, max_width: int = 1920):
        super().__init__()
        if mode not in ("side", "split"):
            raise EdgesharpError(f"preview mode {mode!r}: choose side or split")
        self.mode = mode
        self.window = window
        self.description = f"preview ({mode})"
        self.max_width = max_width
        self._gui = gui or cv2
        self._split = 50
        self._last: float | None = None
        self._fps = 0.0

    def preflight(self) -> None:
        if self._gui is cv2:
            problem = display_problem()
            if problem:
                raise EdgesharpError(f"--sink preview: {problem}; use a file, folder:DIR or vcam sink instead")

    def open(self, width: int, height: int, fps: float) -> None:
        self.preflight()
        try:
            self._gui.namedWindow(self.window, cv2.WINDOW_NORMAL)
            if self.mode == "split":
                self._gui.createTrackbar("split %", self.window, self._split, 100, self._set_split)
        except cv2.error as exc:
            raise EdgesharpError(f"--sink preview: OpenCV cannot open a window ({str(exc).strip().splitlines()[-1]}); "
                                 "is this a headless OpenCV build or a session without a display?") from None

    def _set_split(self, value: int) -> None:
        self._split = value

    def compose(self, original: np.ndarray, output: np.ndarray) -> np.ndarray:
        view = side_by_side(original, output) if self.mode == "side" else split_view(original, output, self._split / 100)
        if view.shape[1] > self.max_width:
            scale = self.max_width / view.shape[1]
            view = cv2.resize(view, (self.max_width, int(view.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        _label(view, f"{self._fps:5.1f} fps", (8, view.shape[0] - 30))
        return view

    def write(self, original, output, name, index) -> None:
        now = time.perf_counter()
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        self._last = now
        self._gui.imshow(self.window, self.compose(original, output))
        self.frames += 1
        key = self._gui.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            log.info("preview: quit key pressed")
            self.should_stop = True
        elif self._gui.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) < 1:
            log.info("preview: window closed")
            self.should_stop = True

    def close(self) -> None:
        try:
            self._gui.destroyWindow(self.window)
            self._gui.waitKey(1)
        except cv2.error:
            pass


def virtual_camera_help(system: str | None = None) -> str:
    system = system or platform.system()
    if system == "Linux":
        return ("install v4l2loopback and load it: sudo apt install v4l2loopback-dkms && "
                "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=edgesharp")
    return "install OBS Studio (28 or newer) and start its Virtual Camera once so the driver registers"


class VirtualCameraSink(Sink):
    """Output frames to a virtual camera (Zoom, Meet, Teams, OBS) through pyvirtualcam, in BGR."""

    def __init__(self, device: str | None = None, backend: str | None = None):
        super().__init__()
        self.device = device
        self.backend = backend
        self.description = "virtual camera" + (f" {device}" if device else "")
        self._cam = None

    def preflight(self) -> None:
        self._module()

    def _module(self):
        from edge.extras import require

        pyvirtualcam = require("pyvirtualcam", "--sink vcam")
        if self.backend and self.backend not in pyvirtualcam.camera.BACKENDS:
            raise EdgesharpError(f"--sink vcam: unknown pyvirtualcam backend {self.backend!r} "
                                 f"(available: {', '.join(pyvirtualcam.camera.BACKENDS) or 'none'})")
        if not self.backend and not pyvirtualcam.camera.BACKENDS:
            raise EdgesharpError(f"--sink vcam: pyvirtualcam has no backend on {platform.system()}; "
                                 f"{virtual_camera_help()}")
        return pyvirtualcam

    def open(self, width: int, height: int, fps: float) -> None:
        pyvirtualcam = self._module()
        try:
            self._cam = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=self.device, backend=self.backend)
        except Exception as exc:  # pyvirtualcam raises RuntimeError listing every backend's failure
            details = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            raise EdgesharpError(f"--sink vcam: no virtual camera available ({details}); {virtual_camera_help()}") from None
        self.description = f"virtual camera {self._cam.device} ({self._cam.backend})"
        log.info("virtual camera %s open (%dx%d @ %.1f fps)", self._cam.device, width, height, fps)

    def write(self, original, output, name, index) -> None:
        self._cam.send(output)
        self.frames += 1

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None


class VideoFileSink(Sink):
    """A video file, codec chosen by extension; written beside the target and renamed into place on close."""

    def __init__(self, path: str | Path, fps: float | None = None, side_by_side: bool = False):
        super().__init__()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise EdgesharpError(f"{self.path}: unsupported video extension {suffix!r} "
                                 f"(use one of {', '.join(VIDEO_CODECS)})")
        self.codec = VIDEO_CODECS[suffix]
        self.fps = fps
        self.side_by_side = side_by_side
        self.description = str(self.path)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self._writer = None
        self._size: tuple[int, int] | None = None
        self._warned = False

    def open(self, width: int, height: int, fps: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = (width * 2, height) if self.side_by_side else (width, height)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.codec), self.fps or fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            raise EdgesharpError(f"{self.path}: OpenCV cannot write {self.codec} video here")

    def write(self, original, output, name, index) -> None:
        frame = side_by_side(original, output) if self.side_by_side else output
        if frame.shape[1::-1] != self._size:
            if not self._warned:
                log.warning("%s: frame %dx%d resized to the video's %dx%d", self.path, frame.shape[1],
                            frame.shape[0], *self._size)
                self._warned = True
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames:
            os.replace(self._tmp, self.path)
            log.info("wrote %s (%d frames)", self.path, self.frames)
        else:
            self._tmp.unlink(missing_ok=True)


class ImageFolderSink(Sink):
    """One image per frame: the input file's stem when it has one, else frame_000000; PNG by default."""

    def __init__(self, folder: str | Path, ext: str = ".png"):
        super().__init__()
        from edge.imaging.io import IMAGE_EXTENSIONS

        self.folder = Path(folder)
        self.ext = ext if ext.startswith(".") else f".{ext}"
        if self.ext.lower() not in IMAGE_EXTENSIONS:
            raise EdgesharpError(f"image format {ext!r}: use one of {', '.join(IMAGE_EXTENSIONS)}")
        self.description = f"folder {self.folder}"
        self._used: set[str] = set()

    def open(self, width: int, height: int, fps: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, original, output, name, index) -> None:
        from edge.imaging.io import write_image

        stem = name or f"frame_{index:06d}"
        if stem in self._used:
            n = 1
            while f"{stem}_{n}" in self._used:
                n += 1
            log.warning("%s: two inputs named %s; writing the second as %s_%d", self.folder, stem, stem, n)
            stem = f"{stem}_{n}"
        self._used.add(stem)
        write_image(self.folder / f"{stem}{self.ext}", output, color="bgr")
        self.frames += 1


class CompareSink(Sink):
    """A before/after record in a folder: compare.mp4 (side by side) and compare.png (the last frame pair)."""

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)
        self.description = f"compare {self.folder}"
        self._video = VideoFileSink(self.folder / "compare.mp4", side_by_side=True)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        self._video.open(width, height, fps)

    def write(self, original, output, name, index) -> None:
        self._video.write(original, output, name, index)
        self._last = (original, output)
        self.frames += 1

    def close(self) -> None:
        from edge.imaging.io import write_image

        self._video.close()
        if self._last is not None:
            write_image(self.folder / "compare.png", side_by_side(*self._last), color="bgr")


def open_sink(spec: str, fps: float | None = None) -> Sink:
    """Build (not open) the sink named by one `--sink` argument."""
    spec = str(spec)
    head, sep, rest = spec.partition(":")
    if spec in ("null", "none"):
        return NullSink()
    if head in ("preview", "window"):
        return PreviewSink(mode=rest or "side")
    if head == "vcam":
        opts = dict(part.partition("=")[::2] for part in rest.split(",") if "=" in part)
        device = opts.get("device") or (rest if rest and "=" not in rest else None)
        return VirtualCameraSink(device=device, backend=opts.get("backend"))
    if head == "compare" and sep:
        return CompareSink(rest)
    if head == "folder" and sep:
        return ImageFolderSink(rest)
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if suffix in VIDEO_CODECS:
        return VideoFileSink(path, fps=fps)
    from edge.imaging.io import IMAGE_EXTENSIONS

    if suffix in IMAGE_EXTENSIONS:
        raise EdgesharpError(f"--sink {spec}: a stream needs a video file or folder:DIR, not one image file")
    if path.is_dir() or not suffix or spec.endswith(("/", os.sep)):
        return ImageFolderSink(path)
    raise EdgesharpError(f"--sink {spec!r}: not a known sink ({SINK_HELP})")
