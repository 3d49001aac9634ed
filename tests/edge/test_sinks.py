"""Sinks: video files (codec by extension, frame count, PyAV and the OpenCV fallback, failing writers), image
folders, compare, preview through a fake GUI and its no-display error, the virtual camera through a fake
pyvirtualcam backend and the missing-driver message."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import pyvirtualcam
from fakes import FaultyVideoWriter, indexed_frame

from edgesharp.edge.errors import EdgesharpError, OutputError, UsageError
from edgesharp.edge.imaging import video_out
from edgesharp.edge.sinks import (
    CompareSink,
    ImageFolderSink,
    NullSink,
    PreviewSink,
    VideoFileSink,
    VirtualCameraSink,
    guard_outputs,
    open_sink,
    split_view,
    virtual_camera_help,
)


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _feed(sink, n=7, h=48, w=64):
    sink.open(w, h, 15.0)
    for i in range(n):
        frame = indexed_frame(i, h, w)
        sink.write(frame, 255 - frame, f"img{i}", i)
    sink.close()


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".mov", ".m4v"])
def test_video_sink_codec_by_extension(tmp_path, ext):
    path = tmp_path / "sub" / f"out{ext}"
    sink = open_sink(str(path))
    assert isinstance(sink, VideoFileSink)
    _feed(sink)
    assert path.is_file() and _count_frames(path) == 7
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # temporary file renamed into place
    h264 = video_out.h264_encoder(av) is not None
    expected = "mjpeg" if ext == ".avi" else "h264" if h264 else "mpeg4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == expected and not container.streams.audio
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert stream.average_rate == 15


def test_video_sink_without_pyav_falls_back_to_opencv_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video_out, "load_av", lambda: None)
    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path, audio_from=tmp_path / "clip.mkv")
    with caplog.at_level(logging.WARNING):
        _feed(sink)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"{path}: PyAV is not installed: OpenCV writes it as mp4v without the sound of "
                        f"{tmp_path / 'clip.mkv'}; pip install av for H.264 with sound"]
    assert _count_frames(path) == 7 and sink.codec == "mp4v"
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"


def test_video_sink_without_h264_encoder_writes_mpeg4(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video_out, "h264_encoder", lambda av: None)
    path = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING):
        _feed(VideoFileSink(path))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{path}: this PyAV/FFmpeg build has no H.264 encoder (tried libx264, libopenh264, h264_videotoolbox, "
        "h264_mf); writing mpeg4 video as OpenCV did"]
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert _count_frames(path) == 7


def test_odd_frame_sizes_lose_their_last_row_and_column_as_with_opencv(tmp_path):
    sink = VideoFileSink(tmp_path / "odd.mp4")
    sink.open(65, 49, 15.0)
    frames = [cv2.GaussianBlur(indexed_frame(i, 49, 65), (0, 0), 3) for i in range(3)]  # compressible pictures
    for i, frame in enumerate(frames):
        sink.write(frame, frame, None, i)
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    first = cap.read()[1]
    cap.release()
    assert first.shape == (48, 64, 3) and _count_frames(tmp_path / "odd.mp4") == 3
    resized = cv2.resize(frames[0], (64, 48), interpolation=cv2.INTER_AREA)
    assert cv2.PSNR(first, frames[0][:48, :64]) > 35 > cv2.PSNR(first, resized)  # cropped, not rescaled


def test_video_sink_rejects_unknown_extension(tmp_path):
    with pytest.raises(EdgesharpError, match="unsupported video extension '.flv'"):
        VideoFileSink(tmp_path / "x.flv")


def test_image_folder_sink_keeps_names(tmp_path):
    sink = open_sink(f"folder:{tmp_path / 'out'}")
    _feed(sink, n=3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    img = cv2.imread(str(tmp_path / "out" / "img1.png"))
    assert np.array_equal(img, 255 - indexed_frame(1, 48, 64))
    unnamed = ImageFolderSink(tmp_path / "unnamed", ext="jpg")
    unnamed.open(8, 8, 1)
    unnamed.write(indexed_frame(0), indexed_frame(0), None, 12)
    assert (tmp_path / "unnamed" / "frame_000012.jpg").is_file()


def test_compare_sink_writes_side_by_side_video_and_png(tmp_path):
    _feed(CompareSink(tmp_path / "cmp"), n=4)
    assert _count_frames(tmp_path / "cmp" / "compare.mp4") == 4
    png = cv2.imread(str(tmp_path / "cmp" / "compare.png"))
    assert png.shape == (48, 128, 3)


def test_null_sink_counts():
    sink = NullSink()
    _feed(sink, n=5)
    assert sink.frames == 5


class FakeGui:
    """The cv2 HighGUI calls the preview uses, recording what is shown and replaying key presses."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.shown = []
        self.destroyed = False
        self.trackbar = None

    def namedWindow(self, name, flags):
        self.name = name

    def createTrackbar(self, label, window, value, maximum, callback):
        self.trackbar = callback

    def imshow(self, name, image):
        self.shown.append(image)

    def waitKey(self, ms):
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, name, prop):
        return 1.0

    def destroyWindow(self, name):
        self.destroyed = True


def test_preview_side_by_side_with_fps_overlay_and_q_to_quit():
    gui = FakeGui([-1, -1, ord("q")])
    sink = PreviewSink(gui=gui)
    sink.open(64, 48, 30)
    frame = indexed_frame(0, 48, 64)
    output = 255 - frame
    for i in range(3):
        assert not sink.should_stop
        sink.write(frame, output, None, i)
    assert sink.should_stop
    sink.close()
    assert gui.destroyed and gui.shown[0].shape == (48, 128, 3)
    bottom = gui.shown[-1][-30:]
    assert not np.array_equal(bottom[:, :64], frame[-30:])  # the overlay is drawn on the preview ...
    assert np.array_equal(frame, indexed_frame(0, 48, 64))  # ... never on the frames other sinks receive
    assert np.array_equal(output, 255 - indexed_frame(0, 48, 64))


def test_preview_split_slider():
    gui = FakeGui([])
    sink = PreviewSink(mode="split", gui=gui)
    sink.open(64, 48, 30)
    gui.trackbar(25)
    a, b = np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 200, np.uint8)
    sink.write(a, b, None, 0)
    assert gui.shown[0].shape == (48, 64, 3)
    view = split_view(a, b, 0.25)
    assert (view[5, :15] == 0).all() and (view[5, 17:] == 200).all()


def test_preview_without_display_fails_clearly(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    with pytest.raises(EdgesharpError, match="--sink preview: no display"):
        open_sink("preview").preflight()


class FakeVirtualCamera:
    """A pyvirtualcam backend (the interface pyvirtualcam.register_backend documents) that keeps the frames."""

    instances: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames = []
        self.closed = False
        FakeVirtualCamera.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True

    def device(self):
        return "fake-cam"

    def native_fourcc(self):
        return None


class BrokenBackend(FakeVirtualCamera):
    def __init__(self, **kw):
        raise RuntimeError("device not found, check if v4l2loopback module is loaded")


@pytest.fixture
def fake_vcam(monkeypatch):
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", dict(pyvirtualcam.camera.BACKENDS))
    pyvirtualcam.register_backend("fake", FakeVirtualCamera)
    FakeVirtualCamera.instances.clear()
    return FakeVirtualCamera


def test_virtual_camera_through_a_fake_backend(fake_vcam):
    sink = open_sink("vcam:backend=fake")
    assert isinstance(sink, VirtualCameraSink)
    sink.preflight()
    _feed(sink, n=5)
    cam = fake_vcam.instances[-1]
    assert (cam.width, cam.height, cam.fps) == (64, 48, 15.0) and cam.closed
    assert cam.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
    assert len(cam.frames) == 5
    assert np.array_equal(cam.frames[2].reshape(48, 64, 3), 255 - indexed_frame(2, 48, 64))


def test_virtual_camera_missing_driver_message(monkeypatch):
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {"v4l2loopback": BrokenBackend})
    monkeypatch.setattr("platform.system", lambda: "Linux")
    with pytest.raises(EdgesharpError) as info:
        VirtualCameraSink().open(64, 48, 30)
    message = str(info.value)
    assert "\n" not in message and "no virtual camera available" in message
    assert "v4l2loopback" in message and "modprobe" in message
    assert "OBS" in virtual_camera_help("Windows") and "OBS" in virtual_camera_help("Darwin")


def test_virtual_camera_real_backend_on_this_machine_fails_with_install_hint(tmp_path):
    """No v4l2loopback device here: the real pyvirtualcam backend must fail with the one-line hint."""
    if list(__import__("pathlib").Path("/dev").glob("video*")):
        pytest.skip("this machine has video devices; the missing-driver path cannot be exercised for real")
    with pytest.raises(EdgesharpError, match="no virtual camera available .*install"):
        VirtualCameraSink().open(64, 48, 30)


def test_sink_parser(tmp_path):
    assert isinstance(open_sink("null"), NullSink)
    assert open_sink("preview:split").mode == "split"
    assert open_sink("vcam:/dev/video9").device == "/dev/video9"
    assert isinstance(open_sink(str(tmp_path)), ImageFolderSink)
    with pytest.raises(EdgesharpError, match="not one image file"):
        open_sink(str(tmp_path / "x.png"))
    with pytest.raises(EdgesharpError, match="not a known sink"):
        open_sink("out.xyz")


# -- the output rule: unique temporary files, checked videos, inputs never replaced -----------------------


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _only(folder) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


def test_two_writers_of_one_video_use_their_own_temporary_files(tmp_path):
    """Two runs writing the same file (a fixed temporary name made one crash and the other publish a mix)."""
    path = tmp_path / "same.mp4"
    a, b = VideoFileSink(path), VideoFileSink(path)
    a.open(64, 48, 15.0)
    b.open(64, 48, 15.0)
    assert len(_only(tmp_path)) == 2  # two distinct temporary files, no target yet
    for i in range(9):
        frame = indexed_frame(i, 48, 64)
        a.write(frame, frame, None, i)
        if i < 4:
            b.write(frame, frame, None, i)
    b.close()
    assert _count_frames(path) == 4
    a.close()
    assert _count_frames(path) == 9 and _only(tmp_path) == ["same.mp4"]  # the last complete one wins


class FaultyOutput:
    """Stands in for PyAV's output container with a fault: "lose" drops every video packet after `keep` (a writer
    that loses data without an error), "nospace" fails every write after `keep` packets as a full disk does,
    "cut" halves the file when it is closed, "open" cannot create the file."""

    def __init__(self, fault: str, keep: int = 3):
        self.fault, self.keep = fault, keep
        self._open = av.open

    def __call__(self, file, mode="r", **kwargs):
        if mode != "w":
            return self._open(file, mode, **kwargs)
        if self.fault == "open":
            raise av.error.PermissionError(errno.EACCES, "Permission denied", str(file))
        self.path, self.real, self.muxed = Path(file), self._open(file, mode, **kwargs), 0
        return self

    def mux(self, packet):
        self.muxed += 1
        if self.fault == "nospace" and self.muxed > self.keep:
            raise av.error.OSError(errno.ENOSPC, "No space left on device")
        if self.fault == "lose" and packet.stream.type == "video" and self.muxed > self.keep:
            return
        self.real.mux(packet)

    def close(self):
        self.real.close()
        if self.fault == "cut":
            data = self.path.read_bytes()
            self.path.write_bytes(data[: len(data) // 2])

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize(("fault", "message"), [
    ("lose", r"not written: the video writer's file decodes [0-7] of 8 frames"),
    ("cut", r"not written: the video writer's file decodes 0 of 8 frames"),
    ("nospace", r"(writing frame \d|not written: finishing the video) failed \(.*No space left on device"),
    ("open", r"cannot create the video file \(.*Permission denied"),
])
def test_a_failing_pyav_writer_never_publishes_and_keeps_the_previous_file(tmp_path, monkeypatch, fault, message):
    # the pipeline aborts a sink that failed itself (nothing left to release after close)
    _a_failing_writer_keeps_the_previous_file(tmp_path, message, lambda: monkeypatch.setattr(av, "open", FaultyOutput(fault)),
                                              abort=True)


def _a_failing_writer_keeps_the_previous_file(tmp_path, message, break_writer, abort):
    path = tmp_path / "x.mp4"
    _feed(VideoFileSink(path), n=5)
    before = _sha(path)
    break_writer()
    sink = VideoFileSink(path)
    with pytest.raises(OutputError, match=message) as info:
        _feed(sink, n=8)
    if abort:
        sink.abort()
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))
    assert _sha(path) == before and _only(tmp_path) == ["x.mp4"]  # previous file intact, no temporary left


@pytest.mark.parametrize(("fault", "message"), [
    ("lose", r"not written: the video writer's file decodes 3 of 8 frames"),
    ("cut", r"not written: the video writer's file decodes 0 of 8 frames"),
    ("raise", r"writing frame 3 failed \(.*write failed\)"),
    ("open", r"OpenCV cannot write mp4v video at 64x48, 15 fps here"),
])
def test_a_failing_opencv_writer_never_publishes_and_keeps_the_previous_file(tmp_path, monkeypatch, fault, message):
    """The writer without PyAV: OpenCV's, whose failures are silent as often as not."""

    def break_writer():
        monkeypatch.setattr(video_out, "load_av", lambda: None)
        monkeypatch.setattr(cv2, "VideoWriter", FaultyVideoWriter(fault))

    # a writer that raised mid-stream is aborted by the pipeline
    _a_failing_writer_keeps_the_previous_file(tmp_path, message, break_writer, abort=fault == "raise")


def test_a_full_disk_is_one_line_from_the_pyav_writer(tmp_path):
    """The real thing, not a stand-in: /dev/full refuses every write with ENOSPC."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    writer = video_out.AvVideoWriter(av, "/dev/full", ".mkv", (64, 48), 15.0, label="full.mkv")
    with pytest.raises(OutputError, match=r"^full\.mkv: (writing frame \d+|not written: finishing the video) "
                                          r"failed \(.*No space left on device"):
        for i in range(40):
            writer.write(indexed_frame(i, 48, 64), i)
        writer.close()
    writer.abort()


def test_video_sink_refuses_non_finite_rates_before_opening_a_writer(tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, "VideoWriter", lambda *a: pytest.fail("the writer must not be constructed"))
    for fps in (float("inf"), float("nan"), 0.0, -5.0, 1e6):
        with pytest.raises(UsageError, match="frame rate must be"):
            VideoFileSink(tmp_path / "a.mp4").open(64, 48, fps)
        with pytest.raises(UsageError, match="frame rate must be"):
            VideoFileSink(tmp_path / "a.mp4", fps=fps)
    assert _only(tmp_path) == []


def test_video_sink_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        _feed(VideoFileSink(tmp_path / "a.avi"), n=2)
    finally:
        os.umask(old)
    assert (tmp_path / "a.avi").stat().st_mode & 0o777 == 0o640


def test_guard_outputs_refuses_sinks_that_would_replace_an_input(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(src / name), indexed_frame(0))
    video = tmp_path / "s.mp4"
    _feed(VideoFileSink(video), n=2)
    inputs = [src / "a.png", src / "b.jpg"]
    with pytest.raises(UsageError, match=r"output .*in/a\.png: would overwrite the input"):
        guard_outputs([open_sink(f"folder:{src}")], inputs)
    guard_outputs([open_sink(f"folder:{src}")], [src / "b.jpg"])  # b.png beside b.jpg replaces nothing
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").symlink_to(src / "a.png")  # writing other/a.png would write through to the input
    with pytest.raises(UsageError, match=r"other/a\.png: would overwrite the input"):
        guard_outputs([open_sink(f"folder:{other}")], inputs)
    with pytest.raises(UsageError, match=r"s\.mp4: would overwrite the input"):
        guard_outputs([open_sink(str(video))], [video])
    with pytest.raises(UsageError, match="compare.png: would overwrite"):
        guard_outputs([open_sink(f"compare:{tmp_path}")], [tmp_path / "compare.png"])
    with pytest.raises(UsageError, match="also written by"):
        guard_outputs([open_sink(str(tmp_path / "o.mp4")), open_sink(f"{tmp_path}/./o.mp4")], [])


def test_image_folder_sink_checks_every_file_it_writes(tmp_path):
    """A name the plan could not foresee (a second input with the same stem) is still never written over an input."""
    keep = tmp_path / "a_1.png"
    cv2.imwrite(str(keep), indexed_frame(5))
    before = _sha(keep)
    sink = ImageFolderSink(tmp_path)
    sink.protect([keep])
    sink.open(80, 64, 30)
    sink.write(indexed_frame(0), indexed_frame(0), "a", 0)
    with pytest.raises(UsageError, match=r"a_1\.png: would overwrite an input"):
        sink.write(indexed_frame(1), indexed_frame(1), "a", 1)
    assert _sha(keep) == before and _only(tmp_path) == ["a.png", "a_1.png"]


def test_sink_typo_is_not_a_new_folder(tmp_path):
    with pytest.raises(UsageError, match="not a known sink .*for a new folder of images write folder:previwe"):
        open_sink("previwe")
    assert isinstance(open_sink(f"{tmp_path}/new/"), ImageFolderSink)


class ThreadRecordingGui(FakeGui):
    """FakeGui that records the thread of every window call."""

    def __init__(self, keys):
        super().__init__(keys)
        self.threads = set()

    def __getattribute__(self, name):
        if name in ("namedWindow", "createTrackbar", "imshow", "waitKey", "getWindowProperty", "destroyWindow"):
            object.__getattribute__(self, "threads").add(threading.current_thread().name)
        return object.__getattribute__(self, name)


def test_pipeline_drives_the_preview_window_from_its_own_thread_only():
    from fakes import FakeBackend

    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sources import IterableSource

    gui = ThreadRecordingGui([])
    sink = PreviewSink(gui=gui)
    frames = [indexed_frame(i, 48, 64) for i in range(12)]
    summary = Pipeline(IterableSource(frames), FakeBackend(), [sink]).run()
    assert summary["frames_written"] == 12 and sink.frames == 12
    assert gui.threads == {threading.current_thread().name}, gui.threads  # never the pipeline's writer thread
    assert gui.shown and gui.shown[-1].shape == (48, 128, 3) and gui.destroyed


def test_quit_key_in_a_pumped_preview_stops_the_pipeline():
    from fakes import FakeBackend

    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sources import IterableSource

    gui = ThreadRecordingGui([-1, ord("q")])
    sink = PreviewSink(gui=gui)
    backend = FakeBackend(delay=(0.01, 0.01))
    pipeline = Pipeline(IterableSource([indexed_frame(i, 48, 64) for i in range(500)]), backend, [sink])
    summary = pipeline.run()
    assert summary["frames_written"] < 500 and pipeline.stop_reason == "quit from the preview window"
    assert gui.destroyed


def test_preview_keys_change_strength_bypass_and_view():
    from types import SimpleNamespace

    controls = SimpleNamespace(strength=0.5, bypass=False)
    gui = FakeGui([ord("-"), ord("-"), ord("b"), ord("s"), ord("+"), ord("b")])
    sink = PreviewSink(gui=gui)
    sink.controls = controls
    sink.open(64, 48, 30)
    frame = indexed_frame(0, 48, 64)
    seen = []
    for i in range(6):
        sink.write(frame, 255 - frame, None, i)
        seen.append((controls.strength, controls.bypass, sink.mode))
    assert seen == [(0.4, False, "side"), (0.3, False, "side"), (0.3, True, "side"), (0.3, True, "split"),
                    (0.4, True, "split"), (0.4, False, "split")]
    assert gui.trackbar is not None  # the split slider appears with the split view
    assert gui.shown[0].shape == (48, 128, 3) and gui.shown[-1].shape == (48, 64, 3)


def test_strength_and_bypass_change_the_frames_written_while_the_pipeline_runs():
    from fakes import FakeBackend

    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sinks import Sink
    from edgesharp.edge.sources import IterableSource

    class Switching(Sink):
        """Records outputs; after frame 3 lowers the strength to 0.5, after frame 6 bypasses the model."""

        def __init__(self):
            super().__init__()
            self.outputs = []
            self.pipeline = None

        def write(self, original, output, name, index):
            self.outputs.append((original.copy(), output.copy()))
            if index == 3:
                self.pipeline.strength = 0.5
            if index == 6:
                self.pipeline.bypass = True

    sink = Switching()
    frames = [indexed_frame(i, 48, 64) for i in range(10)]
    pipeline = Pipeline(IterableSource(frames), FakeBackend(), [sink])
    sink.pipeline = pipeline
    pipeline.run()
    full = [np.array_equal(out, 255 - orig) for orig, out in sink.outputs]
    half = [np.abs(out.astype(int) - 127.5).max() <= 1 for orig, out in sink.outputs]  # (x + 255 - x) / 2
    same = [np.array_equal(out, orig) for orig, out in sink.outputs]
    assert full[:4] == [True] * 4 and half[4:7] == [True] * 3 and same[7:] == [True] * 3
    with pytest.raises(EdgesharpError, match="between 0 and 1"):
        pipeline.strength = float("nan")


def test_preview_overlay_shows_rate_latency_and_strength():
    from types import SimpleNamespace

    from edgesharp.edge.stats import RunStats

    clock = [10.0]
    stats = RunStats(clock=lambda: clock[0])
    controls = SimpleNamespace(strength=0.7, bypass=False, stats=stats)
    sink = PreviewSink(gui=FakeGui([]))
    sink.controls = controls
    assert sink.status_text() == "  0.0 fps  strength 0.7"  # no frame written yet: no latency
    stats.frame_written(captured_at=9.958)
    assert sink.status_text() == "  0.0 fps  42 ms  strength 0.7"
    controls.bypass = True
    assert sink.status_text().endswith("42 ms  bypass")


def test_prepared_sinks_are_checked_once(tmp_path):
    from edgesharp.edge.sinks import prepare_sinks

    class Counting(NullSink):
        def __init__(self):
            super().__init__()
            self.preflights = 0

        def preflight(self) -> None:
            self.preflights += 1

    sinks = [Counting(), Counting()]
    prepare_sinks(sinks, [])
    prepare_sinks(sinks, [])  # the pipeline's start, after a command prepared them
    assert [s.preflights for s in sinks] == [1, 1] and all(s.prepared for s in sinks)
    late = Counting()
    prepare_sinks([*sinks, late], [])  # a sink not yet checked: the rule runs over all of them again
    assert late.preflights == 1
