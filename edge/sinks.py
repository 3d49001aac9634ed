"""Frame sinks: a preview window, a virtual camera (pyvirtualcam), a video file, an image folder, a
before/after comparison, null. Several can run at once (`--sink vcam --sink preview`).

A sink is opened with the first frame's size and the run's FPS, receives every output frame in capture
order together with its input (`write(original, output, name, index)`), and is closed once (`abort` instead
when the sink itself failed: it publishes nothing). A sink sets `should_stop` to end the run (the preview
window's `q`). `open_sink(spec)` parses the `--sink` argument.

File sinks follow the output rule of `edgesharp.edge.imaging.io`: `guard_outputs` refuses a run whose sinks would
replace one of its inputs, every file goes to a unique temporary file and is renamed into place only when
complete (a video only once it decodes with every frame written), and a failure leaves the previous file as
it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.controls import apply_key
from edgesharp.edge.errors import EdgesharpError, OutputError, UsageError
from edgesharp.edge.sources import check_fps

log = logging.getLogger(__name__)

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
SINK_HELP = "preview[:split], vcam[:DEVICE], a video file (.mp4 .mkv .avi .mov), folder:DIR, compare:DIR, null"


class Sink:
    description = "sink"

    def __init__(self):
        self.should_stop = False
        self.frames = 0
        self.protected: frozenset[Path] = frozenset()  # real paths of the run's inputs: never written
        self.prepared = False  # the output rule and preflight passed (`prepare_sinks`)
        self.live = False  # the run's source is live (set by the pipeline): frames must not wait on this sink

    def preflight(self) -> None:
        """Fail before the source opens when this sink cannot work here (no display, no driver)."""

    def planned_outputs(self, inputs: Sequence[Path]) -> list[Path]:
        """The files this sink will write, as far as they are known before the run (checked against `inputs`)."""
        return []

    def protect(self, inputs: Iterable[Path]) -> None:
        """Never write any of these files (checked again at each write, by real path)."""
        from edgesharp.edge.imaging.io import real_path

        self.protected = frozenset(real_path(p) for p in inputs)

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, original: np.ndarray, output: np.ndarray, name: str | None, index: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """This sink failed (its error is raised from the run): release what is open, publish nothing incomplete."""
        self.close()

    def _refuse_input(self, path: Path) -> Path:
        """`path`'s real path, or a `UsageError` if it is one of the run's inputs."""
        from edgesharp.edge.imaging.io import real_path

        real = real_path(path)
        if real in self.protected:
            raise UsageError(f"output {path}: would overwrite an input of this run; choose another output")
        return real


def guard_outputs(sinks: Iterable[Sink], inputs: Iterable[str | os.PathLike],
                  extra: Iterable[tuple[str, str | os.PathLike]] = ()) -> None:
    """The output rule before a run: refuse (`UsageError`) sinks or `extra` (what, path) outputs that would
    replace an input, write one file twice or write a file over a folder; then tell each sink the inputs."""
    from edgesharp.edge.imaging.io import check_outputs

    sinks, inputs = list(sinks), [Path(p) for p in inputs]
    outputs = [("output", path) for sink in sinks for path in sink.planned_outputs(inputs)]
    check_outputs([*outputs, *extra], inputs)
    for sink in sinks:
        sink.protect(inputs)


def prepare_sinks(sinks: Iterable[Sink], inputs: Iterable[str | os.PathLike],
                  extra: Iterable[tuple[str, str | os.PathLike]] = ()) -> None:
    """The output rule (`guard_outputs`) and every sink's preflight, once: a command that prepared its sinks
    before opening the source and the model (to fail fast) is not checked again when the pipeline starts."""
    sinks = list(sinks)
    if sinks and all(getattr(sink, "prepared", False) for sink in sinks):
        return
    guard_outputs(sinks, inputs, extra)
    for sink in sinks:
        sink.preflight()
        sink.prepared = True


def decodable_frames(path: str | os.PathLike) -> int:
    """How many frames OpenCV decodes from a video file (0 when it cannot open it)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def _cv_reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


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
    """A window with before/after side by side (or a split slider), an FPS and strength overlay, and keys:
    those of `edgesharp.edge.controls` (`+`/`-` strength, `b` bypass) acting on `controls` (the pipeline: every sink
    receives the change), `s` side by side / split, `q`/Esc quit.

    OpenCV's HighGUI must be driven from the main thread on macOS (and from one thread everywhere): a pipeline
    calls `drive_from_caller()` and then `pump()` from its own (main) thread, so the writer thread only hands
    over the newest frame pair and every window call happens in `pump`. Used on its own, `write` shows frames
    itself."""

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
        self._pumped = False
        self._lock = threading.Lock()
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self._wanted = False  # open() was called: the window should exist
        self._window = False  # it does
        self._trackbar = False
        self.controls = None  # an object with `strength` (0..1) and `bypass` (bool): the pipeline

    def preflight(self) -> None:
        if self._gui is cv2:
            problem = display_problem()
            if problem:
                raise EdgesharpError(f"--sink preview: {problem}; use a file, folder:DIR or vcam sink instead")

    def drive_from_caller(self, controls=None) -> None:
        """From now on window calls happen only in `pump()`, on the thread that calls it; keys act on `controls`."""
        self._pumped = True
        if controls is not None:
            self.controls = controls

    def open(self, width: int, height: int, fps: float) -> None:
        if not self.prepared:
            self.preflight()
        self._wanted = True
        if not self._pumped:
            self._open_window()

    def _open_window(self) -> None:
        try:
            self._gui.namedWindow(self.window, cv2.WINDOW_NORMAL)
            if self.mode == "split":
                self._add_trackbar()
        except cv2.error as exc:
            raise EdgesharpError(f"--sink preview: OpenCV cannot open a window ({str(exc).strip().splitlines()[-1]}); "
                                 "is this a headless OpenCV build or a session without a display?") from None
        self._window = True

    def _add_trackbar(self) -> None:
        if not self._trackbar:
            self._gui.createTrackbar("split %", self.window, self._split, 100, self._set_split)
            self._trackbar = True

    def _set_split(self, value: int) -> None:
        self._split = value

    def compose(self, original: np.ndarray, output: np.ndarray) -> np.ndarray:
        view = side_by_side(original, output) if self.mode == "side" else split_view(original, output, self._split / 100)
        if view.shape[1] > self.max_width:
            scale = self.max_width / view.shape[1]
            view = cv2.resize(view, (self.max_width, int(view.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        _label(view, self.status_text(), (8, view.shape[0] - 30))
        return view

    def status_text(self) -> str:
        """The overlay: display rate, the newest frame's latency, strength (or bypass)."""
        status = f"{self._fps:5.1f} fps"
        latency = self.controls.stats.last_latency_ms() if hasattr(self.controls, "stats") else None
        if latency is not None:
            status += f"  {latency:.0f} ms"
        if self.controls is not None:
            status += "  bypass" if self.controls.bypass else f"  strength {self.controls.strength:.1f}"
        return status

    def write(self, original, output, name, index) -> None:
        now = time.perf_counter()
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        self._last = now
        self.frames += 1
        if self._pumped:
            with self._lock:  # the newest pair wins: a slow window never holds the pipeline back
                self._pending = (original, output)
            return
        self._show(original, output)

    def _show(self, original, output) -> None:
        self._gui.imshow(self.window, self.compose(original, output))
        self._events()

    def _events(self) -> None:
        key = self._gui.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            log.info("preview: quit key pressed")
            self.should_stop = True
        elif self.controls is not None and chr(key) in "+=-_bB":
            log.info("preview: %s", apply_key(self.controls, chr(key)))
        elif key in (ord("s"), ord("S")):
            self.mode = "split" if self.mode == "side" else "side"
            if self.mode == "split":
                self._add_trackbar()
        elif self._gui.getWindowProperty(self.window, cv2.WND_PROP_VISIBLE) < 1:
            log.info("preview: window closed")
            self.should_stop = True

    def pump(self, final: bool = False) -> None:
        """Window work on the caller's thread: open the window once wanted, show the newest frame, read keys;
        `final` closes it."""
        if self._wanted and not self._window and not final:
            self._open_window()
        with self._lock:
            pending, self._pending = self._pending, None
        if self._window and pending is not None:
            self._show(*pending)
        elif self._window and not final:
            self._events()
        if final and self._window:
            self._destroy()

    def close(self) -> None:
        if not self._pumped:
            self._destroy()

    def _destroy(self) -> None:
        try:
            self._gui.destroyWindow(self.window)
            self._gui.waitKey(1)
        except cv2.error:
            pass
        self._window = False


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
        from edgesharp.edge.extras import require

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


class _OpenCvVideoWriter:
    """OpenCV's VideoWriter (codec by extension, no sound): the video writer when PyAV is not installed."""

    def __init__(self, path: Path, label: Path, fourcc: str, size: tuple[int, int], fps: float):
        self.label, self.codec, self.size = label, fourcc, size
        self.frames = 0
        self.audio_notes: list[str] = []
        try:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
            opened = writer.isOpened()
        except cv2.error as exc:
            writer, opened = None, False
            log.debug("%s: %s", label, exc)
        if not opened:
            raise OutputError(f"{label}: OpenCV cannot write {fourcc} video at {size[0]}x{size[1]}, {fps:g} fps here")
        self._writer = writer

    def write(self, frame: np.ndarray, index: int) -> None:
        try:
            self._writer.write(frame)
        except cv2.error as exc:
            raise OutputError(f"{self.label}: writing frame {index} failed ({_cv_reason(exc)})") from None
        self.frames += 1

    def close(self) -> None:
        try:
            self._writer.release()
        except cv2.error as exc:
            raise OutputError(f"{self.label}: not written: finishing the video failed ({_cv_reason(exc)}); "
                              "the previous file, if any, is unchanged") from None

    def abort(self) -> None:
        with contextlib.suppress(cv2.error):
            self._writer.release()


class VideoFileSink(Sink):
    """A video file, the container chosen by extension: H.264 through PyAV (`edgesharp.edge.imaging.video_out`:
    Motion JPEG in .avi, MPEG-4 part 2 where no H.264 encoder exists), with the sound of `audio_from` (the clip
    the frames come from) copied beside it; OpenCV's writer (`VIDEO_CODECS`, no sound) when PyAV is not installed.
    Frames go to a new uniquely named file beside the target; on close it must decode with every frame written
    before it is renamed into place; if it does not (a full disk, a failing writer) it is removed, the previous
    file is left as it was and an `OutputError` says why."""

    def __init__(self, path: str | Path, fps: float | None = None, side_by_side: bool = False,
                 audio_from: str | Path | None = None):
        super().__init__()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise EdgesharpError(f"{self.path}: unsupported video extension {suffix!r} "
                                 f"(use one of {', '.join(VIDEO_CODECS)})")
        self.codec = VIDEO_CODECS[suffix]  # OpenCV's fourcc; after open, the codec actually written
        self.fps = None if fps is None else check_fps(fps, f"{self.path}: frame rate")
        self.side_by_side = side_by_side
        self.audio_from = None if audio_from is None else Path(audio_from)
        self.description = str(self.path)
        self._target: Path | None = None
        self._tmp: Path | None = None
        self._writer = None
        self._size: tuple[int, int] | None = None
        self._warned = False

    def planned_outputs(self, inputs: Sequence[Path]) -> list[Path]:
        return [self.path]

    def open(self, width: int, height: int, fps: float) -> None:
        from edgesharp.edge.imaging.io import discard, make_folder, temporary_beside
        from edgesharp.edge.imaging.video_out import AvVideoWriter, load_av

        fps = check_fps(self.fps or fps, f"{self.path}: frame rate")
        if width < 1 or height < 1:
            raise UsageError(f"{self.path}: frame size {width}x{height} is not positive")
        make_folder(self.path.parent, self.path)
        self._target = self._refuse_input(self.path)
        if self._target.is_dir():
            raise UsageError(f"output {self.path}: is a folder; give a video file name")
        self._size = (width * 2, height) if self.side_by_side else (width, height)
        suffix = self.path.suffix.lower()
        self._tmp = temporary_beside(self._target, suffix=suffix)
        av = load_av()
        try:
            if av is None:
                sound = f" without the sound of {self.audio_from}" if self.audio_from else ""
                log.warning("%s: PyAV is not installed: OpenCV writes it as %s%s; pip install av for H.264%s",
                            self.path, self.codec, sound, " with sound" if sound else "")
                self._writer = _OpenCvVideoWriter(self._tmp, self.path, self.codec, self._size, fps)
            else:
                self._writer = AvVideoWriter(av, self._tmp, suffix, self._size, fps, audio_from=self.audio_from,
                                             label=self.path, live=self.live)
        except BaseException:
            discard(self._tmp)
            self._tmp = None
            raise
        self.codec = self._writer.codec

    def write(self, original, output, name, index) -> None:
        frame = side_by_side(original, output) if self.side_by_side else output
        if frame.shape[1::-1] != self._size:
            if not self._warned:
                log.warning("%s: frame %dx%d resized to the video's %dx%d", self.path, frame.shape[1],
                            frame.shape[0], *self._size)
                self._warned = True
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame, index)
        self.frames += 1

    def close(self) -> None:
        from edgesharp.edge.imaging.io import discard, publish

        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except BaseException:
            discard(self._tmp)
            raise
        if not self.frames:
            discard(self._tmp)
            log.info("%s: no frames, not written", self.path)
            return
        decoded = decodable_frames(self._tmp)
        if decoded != self.frames:
            discard(self._tmp)
            raise OutputError(f"{self.path}: not written: the video writer's file decodes {decoded} of "
                              f"{self.frames} frames (disk full or a failing writer); the previous file, if any, "
                              "is unchanged")
        publish(self._tmp, self._target)
        sound = f", audio {', '.join(writer.audio_notes)}" if writer.audio_notes else ""
        log.info("wrote %s (%d frames, %s%s)", self.path, self.frames, writer.codec, sound)

    def abort(self) -> None:
        from edgesharp.edge.imaging.io import discard

        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.abort()
        discard(self._tmp)
        log.info("%s: not written (the previous file, if any, is unchanged)", self.path)


class ImageFolderSink(Sink):
    """One image per frame: the input file's stem when it has one, else frame_000000; PNG by default."""

    def __init__(self, folder: str | Path, ext: str = ".png"):
        super().__init__()
        from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS

        self.folder = Path(folder)
        self.ext = ext if ext.startswith(".") else f".{ext}"
        if self.ext.lower() not in IMAGE_EXTENSIONS:
            raise EdgesharpError(f"image format {ext!r}: use one of {', '.join(IMAGE_EXTENSIONS)}")
        self.description = f"folder {self.folder}"
        self._used: set[str] = set()

    def planned_outputs(self, inputs: Sequence[Path]) -> list[Path]:
        """Image inputs keep their stem: each is written as STEM.EXT here (other frames as frame_NNNNNN)."""
        from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS

        return [self.folder / f"{p.stem}{self.ext}" for p in inputs if p.suffix.lower() in IMAGE_EXTENSIONS]

    def open(self, width: int, height: int, fps: float) -> None:
        from edgesharp.edge.imaging.io import make_folder

        make_folder(self.folder)

    def write(self, original, output, name, index) -> None:
        from edgesharp.edge.imaging.io import write_image

        stem = name or f"frame_{index:06d}"
        if stem in self._used:
            n = 1
            while f"{stem}_{n}" in self._used:
                n += 1
            log.warning("%s: two inputs named %s; writing the second as %s_%d", self.folder, stem, stem, n)
            stem = f"{stem}_{n}"
        self._used.add(stem)
        path = self.folder / f"{stem}{self.ext}"
        self._refuse_input(path)
        write_image(path, output, color="bgr")
        self.frames += 1


class CompareSink(Sink):
    """A before/after record in a folder: compare.mp4 (side by side) and compare.png (the last frame pair)."""

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)
        self.description = f"compare {self.folder}"
        self._video = VideoFileSink(self.folder / "compare.mp4", side_by_side=True)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def planned_outputs(self, inputs: Sequence[Path]) -> list[Path]:
        return [self.folder / "compare.mp4", self.folder / "compare.png"]

    def protect(self, inputs: Iterable[Path]) -> None:
        inputs = list(inputs)
        super().protect(inputs)
        self._video.protect(inputs)

    def open(self, width: int, height: int, fps: float) -> None:
        self._video.live = self.live
        self._video.open(width, height, fps)

    def write(self, original, output, name, index) -> None:
        self._video.write(original, output, name, index)
        self._last = (original, output)
        self.frames += 1

    def close(self) -> None:
        from edgesharp.edge.imaging.io import write_image

        self._video.close()
        if self._last is not None:
            write_image(self._refuse_input(self.folder / "compare.png"), side_by_side(*self._last), color="bgr")

    def abort(self) -> None:
        self._video.abort()


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
    from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS

    if suffix in IMAGE_EXTENSIONS:
        raise EdgesharpError(f"--sink {spec}: a stream needs a video file or folder:DIR, not one image file")
    if path.is_dir() or spec.endswith(("/", os.sep)):
        return ImageFolderSink(path)
    hint = f"; for a new folder of images write folder:{spec}" if not suffix else ""
    raise UsageError(f"--sink {spec!r}: not a known sink ({SINK_HELP}){hint}")
