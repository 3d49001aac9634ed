"""Sources: synthetic scene (size, determinism, pacing), video file, image folder, camera open failure and
stall recovery through a fake capture, the camera's MJPG request, delivered mode and fallback (a fake V4L2-like
capture), `edgesharp devices`, and the --source parser."""

from __future__ import annotations

import json
import logging
import time

import cv2
import numpy as np
import pytest

from edgesharp.edge.cli import main
from edgesharp.edge.errors import EdgesharpError, UsageError
from edgesharp.edge.sources import (
    CameraError,
    CameraMode,
    CameraSource,
    ImageFolderSource,
    SyntheticSource,
    VideoFileSource,
    check_fps,
    fourcc_text,
    open_source,
    parse_size,
)


def test_synthetic_any_size_deterministic_and_blurred():
    a = SyntheticSource((97, 65), fps=30, paced=False)
    b = SyntheticSource((97, 65), fps=30, paced=False)
    fa, fb = [a.read().image for _ in range(3)], [b.read().image for _ in range(3)]
    assert all(x.shape == (65, 97, 3) and x.dtype == np.uint8 for x in fa)
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert not np.array_equal(fa[0], fa[2])  # the scene moves
    sharp = a.sharp(0)
    lap = lambda img: cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()  # noqa: E731
    assert lap(fa[0]) < 0.6 * lap(sharp)  # blurred by the protocol


def test_synthetic_paced_is_live_and_keeps_rate():
    src = open_source("synthetic", (64, 48), fps=50)
    assert src.live
    t = time.perf_counter()
    for _ in range(11):
        src.read()
    elapsed = time.perf_counter() - t
    assert 0.17 <= elapsed < 0.5  # 10 intervals of 20 ms
    fast = open_source("synthetic:fast,level=heavy", (64, 48), fps=5)
    assert not fast.live and fast.level == "heavy"
    t = time.perf_counter()
    for _ in range(10):
        fast.read()
    assert time.perf_counter() - t < 0.5


def test_video_file_source_reads_every_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12, (72, 40))
    for i in range(9):
        writer.write(np.full((40, 72, 3), i * 20, np.uint8))
    writer.release()
    with VideoFileSource(path) as src:
        frames = [f.image for f in src]
        assert src.fps == 12 and not src.live
    assert len(frames) == 9 and frames[0].shape == (40, 72, 3)
    with pytest.raises(EdgesharpError, match="no such video file"):
        VideoFileSource(tmp_path / "missing.mp4").open()
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(EdgesharpError, match="junk.mp4"):
        VideoFileSource(tmp_path / "junk.mp4").open()


def test_image_folder_source_names_and_skips_unreadable(tmp_path):
    for name in ("b", "a"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((20, 30, 3), 7, np.uint8))
    (tmp_path / "c.png").write_bytes(b"\x89PNG broken")
    src = ImageFolderSource(tmp_path, size=(15, 10))
    with src:
        frames = list(src)
    assert [f.name for f in frames] == ["a", "b"] and frames[0].image.shape == (10, 15, 3)
    assert len(src.skipped) == 1 and src.skipped[0].endswith("c.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgesharpError, match="no images"):
        ImageFolderSource(empty).open()


class FakeCapture:
    """cv2.VideoCapture stand-in: `script` says, per open, how many frames it delivers before stalling."""

    opens: list = []

    def __init__(self, script):
        self.script = script
        self.left = script.pop(0) if script else None

    def isOpened(self):
        return self.left is not None

    def set(self, prop, value):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 32, cv2.CAP_PROP_FRAME_HEIGHT: 24, cv2.CAP_PROP_FPS: 30}.get(prop, 0)

    def read(self):
        if not self.left:
            return False, None
        self.left -= 1
        return True, np.zeros((24, 32, 3), np.uint8)

    def release(self):
        pass


def _camera(script, attempts=2):
    return CameraSource(3, reopen_attempts=attempts, backoff_s=0.01, capture_factory=lambda dev: FakeCapture(script))


def test_camera_open_failure_names_device_and_suggests_synthetic():
    with pytest.raises(CameraError) as info:
        _camera([]).open()
    assert "camera 3" in str(info.value) and "--source synthetic" in str(info.value)


def test_camera_reopened_after_a_stall():
    cam = _camera([2, 3])  # first open: 2 frames then stall; reopen: 3 more
    cam.open()
    assert cam.live and sum(1 for _ in range(5) if cam.read() is not None) == 5


def test_camera_that_never_comes_back_ends_clearly():
    cam = _camera([2], attempts=2)
    cam.open()
    cam.read(), cam.read()
    with pytest.raises(CameraError, match="camera 3: stopped delivering frames .* 2 reopen attempts"):
        cam.read()


def test_real_missing_camera_has_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="--source synthetic"):
        CameraSource(str(tmp_path / "video99")).open()


def test_source_parser(tmp_path):
    assert isinstance(open_source("camera:2"), CameraSource) and open_source("camera:2").device == 2
    assert open_source("/dev/video7").device == "/dev/video7"
    assert open_source("1").device == 1
    assert isinstance(open_source(str(tmp_path)), ImageFolderSource)
    (tmp_path / "x.mkv").write_bytes(b"")
    assert isinstance(open_source(str(tmp_path / "x.mkv")), VideoFileSource)
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(EdgesharpError, match="edgesharp enhance"):
        open_source(str(tmp_path / "x.png"))
    with pytest.raises(EdgesharpError, match="no such file or folder"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(EdgesharpError, match="unknown option"):
        open_source("synthetic:wobble")
    assert parse_size("640x480") == (640, 480) and parse_size(None) is None
    with pytest.raises(EdgesharpError, match="WIDTHxHEIGHT"):
        parse_size("640")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "1e6", "2.2e-311", "0.009", "fast"])  # 2.2e-311: Hypothesis
def test_frame_rates_that_are_not_finite_and_positive_are_refused(value):
    with pytest.raises(UsageError) as info:
        check_fps(value if value == "fast" else float(value), "--fps")
    assert str(info.value).startswith(f"--fps {value!r}" if value == "fast" else "--fps ") and "\n" not in str(info.value)
    with pytest.raises(UsageError):
        SyntheticSource((64, 48), fps=float(value) if value != "fast" else value)
    assert check_fps(29.97) == 29.97 and check_fps(1000) == 1000.0 and check_fps(0.01) == 0.01


def test_sizes_and_options_refused_as_usage_errors():
    for text in ("0x10", "640x0", "99999x480", "axb", "640x480x3"):
        with pytest.raises(UsageError, match="--size"):
            parse_size(text)
    with pytest.raises(UsageError, match="seed=x is not a whole number"):
        open_source("synthetic:seed=x")


def _avi(path, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(n):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


def test_truncated_video_says_what_its_header_promised(tmp_path, caplog):
    whole = _avi(tmp_path / "whole.avi", 20)
    with VideoFileSource(whole) as src:
        assert len(list(src)) == 20 and src.shortfall is None
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with VideoFileSource(cut) as src:
        got = len(list(src))
    assert 0 < got < 19 and src.shortfall == (20, got) and src.input_files() == [cut]
    assert f"cut.avi: truncated or damaged: its header promised 20 frames, it gave {got}" in caplog.text


def test_image_folder_source_lists_its_inputs_before_opening(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in ImageFolderSource(tmp_path).input_files()] == ["a.jpg", "b.png"]
    assert ImageFolderSource(tmp_path / "missing").input_files() == []


FOURCC, WIDTH, HEIGHT, FPS = (cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                              cv2.CAP_PROP_FPS)
# a typical USB webcam: 720p at 10 fps uncompressed, at 30 fps in MJPG
WEBCAM = {"YUYV": [(640, 480, 30.0), (1280, 720, 10.0)], "MJPG": [(640, 480, 30.0), (1280, 720, 30.0)]}


class ModeCapture:
    """A V4L2-like camera: it starts in `default`, takes a FOURCC only from `formats` (set() returns False and
    nothing changes otherwise, as OpenCV's V4L2 backend does), delivers the mode of its current format nearest to
    the requested size, and records every set() call in order."""

    def __init__(self, formats=WEBCAM, default="YUYV"):
        self.formats, self.fourcc = formats, default
        self.size = formats[default][0][:2]
        self.calls: list[tuple[int, float]] = []
        self.released = False

    def mode(self):
        return min(self.formats[self.fourcc], key=lambda m: abs(m[0] - self.size[0]) + abs(m[1] - self.size[1]))

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.calls.append((prop, value))
        if prop == FOURCC:
            if fourcc_text(value) not in self.formats:
                return False
            self.fourcc = fourcc_text(value)
        elif prop == WIDTH:
            self.size = (int(value), self.size[1])
        elif prop == HEIGHT:
            self.size = (self.size[0], int(value))
        return True

    def get(self, prop):
        w, h, fps = self.mode()
        return {FOURCC: float(cv2.VideoWriter_fourcc(*self.fourcc)), WIDTH: float(w), HEIGHT: float(h),
                FPS: fps}.get(prop, 0.0)

    def read(self):
        w, h, _ = self.mode()
        return True, np.full((h, w, 3), 100, np.uint8)

    def release(self):
        self.released = True


def test_fourcc_codes_read_back_as_text():
    assert fourcc_text(float(cv2.VideoWriter_fourcc(*"MJPG"))) == "MJPG"
    assert fourcc_text(cv2.VideoWriter_fourcc(*"YUYV")) == "YUYV"
    assert fourcc_text(0.0) == fourcc_text(float("nan")) == fourcc_text(-1) == ""  # backend does not say
    assert fourcc_text(3) == "0x00000003"


def test_camera_asks_for_mjpg_before_size_and_rate_and_reports_what_it_delivers(caplog):
    cap = ModeCapture()
    cam = CameraSource(0, size=(1280, 720), fps=30, capture_factory=lambda dev: cap)
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.sources"):
        cam.open()
    assert cap.calls == [(FOURCC, cv2.VideoWriter_fourcc(*"MJPG")), (WIDTH, 1280), (HEIGHT, 720), (FPS, 30.0)]
    assert cam.mode == CameraMode("MJPG", 1280, 720, 30.0)
    assert [r.getMessage() for r in caplog.records] == ["camera 0 delivers MJPG 1280x720 at 30.0 fps"]
    assert cam.description == "camera 0 (MJPG 1280x720 at 30.0 fps)"
    assert cam.read().image.shape == (720, 1280, 3)
    cam.open()  # already open (edgesharp run opens a camera before the pipeline does): nothing new
    assert len(cap.calls) == 4 and len(caplog.records) == 1
    cam.close()
    assert cap.released


def test_camera_without_mjpg_falls_back_to_its_own_format_with_one_line(caplog):
    cap = ModeCapture({"YUYV": WEBCAM["YUYV"]})
    cam = CameraSource("/dev/video2", size=(1280, 720), capture_factory=lambda dev: cap)
    cam.open()
    assert cap.calls[0] == (FOURCC, cv2.VideoWriter_fourcc(*"MJPG")) and cap.fourcc == "YUYV"
    assert cam.mode == CameraMode("YUYV", 1280, 720, 10.0) and cam.fps == 10.0  # the rate it really gives
    lines = [r for r in caplog.records if r.name == "edgesharp.edge.sources"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].getMessage().startswith("camera /dev/video2 did not accept MJPG; it delivers YUYV 1280x720 at "
                                            "10.0 fps, which the run uses") and "fourcc=default" in lines[0].getMessage()
    assert [cam.read().image.shape for _ in range(2)] == [(720, 1280, 3)] * 2  # the run goes on


def test_camera_fourcc_default_asks_for_no_format_and_a_size_it_lacks_is_resized(caplog, monkeypatch):
    cap = ModeCapture()
    monkeypatch.setattr("edgesharp.edge.sources.cv2.VideoCapture", lambda dev: cap)
    cam = open_source("camera:1,fourcc=default", (1920, 1080))
    cam.open()
    assert [p for p, _ in cap.calls] == [WIDTH, HEIGHT] and cam.mode == CameraMode("YUYV", 1280, 720, 10.0)
    assert "delivers 1280x720 instead of the requested 1920x1080; frames are resized" in caplog.text
    assert cam.read().image.shape == (1080, 1920, 3)


def test_camera_that_does_not_report_its_format_says_what_it_asked_for(caplog):
    cam = _camera([5])  # FakeCapture: CAP_PROP_FOURCC reads back 0
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.sources"):
        cam.open()
    assert cam.mode == CameraMode("", 32, 24, 30.0) and cam.mode.to_dict()["fourcc"] is None
    assert caplog.records[0].getMessage() == "camera 3 delivers format unreported 32x24 at 30.0 fps; asked for MJPG"


def test_camera_source_spec_fourcc_option():
    assert open_source("camera:0").fourcc == "MJPG" and open_source("2").fourcc == "MJPG"
    yuyv = open_source("camera:0,fourcc=YUYV")
    assert (yuyv.device, yuyv.fourcc) == (0, "YUYV")
    assert open_source("/dev/video2,fourcc=H264").device == "/dev/video2"
    assert open_source("3,fourcc=none").fourcc is None and open_source("camera:,fourcc=default").device == 0
    with pytest.raises(UsageError, match="fourcc='MJPEG': a FOURCC is 4 characters"):
        open_source("camera:0,fourcc=MJPEG")
    with pytest.raises(UsageError, match=r"unknown option\(s\) wobble"):
        open_source("camera:0,wobble")


def test_run_reports_the_camera_mode_first_and_in_stats_json(tiny_bundle_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("edgesharp.edge.sources.cv2.VideoCapture", lambda dev: ModeCapture(default="MJPG"))
    stats = tmp_path / "stats.json"
    with caplog.at_level(logging.INFO):
        assert main(["run", "--model", str(tiny_bundle_dir), "--source", "camera:5", "--size", "640x480",
                     "--frames", "3", "--sink", "null", "--stats-json", str(stats)]) == 0
    assert caplog.records[0].getMessage() == "camera 5 delivers MJPG 640x480 at 30.0 fps"
    run = json.loads(stats.read_text())["run"]
    assert run["source"] == "camera 5 (MJPG 640x480 at 30.0 fps)"
    assert run["source_mode"] == {"fourcc": "MJPG", "width": 640, "height": 480, "fps": 30.0,
                                  "requested_fourcc": "MJPG"}


def test_devices_lists_the_cameras_that_open_with_their_modes(monkeypatch, capsys):
    cameras = {0: WEBCAM, 2: {"YUYV": WEBCAM["YUYV"]}}

    monkeypatch.setattr("edgesharp.edge.sources.cv2.VideoCapture",
                        lambda dev: ModeCapture(cameras[dev]) if dev in cameras else FakeCapture([]))
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "camera:0  default YUYV 640x480 at 30.0 fps; asked for MJPG at 640x480, 1280x720, 1920x1080: "
        "MJPG 640x480 at 30.0 fps, MJPG 1280x720 at 30.0 fps",
        "camera:2  default YUYV 640x480 at 30.0 fps; asked for MJPG at 640x480, 1280x720, 1920x1080: "
        "YUYV 640x480 at 30.0 fps, YUYV 1280x720 at 10.0 fps",
    ]
    assert main(["devices", "7"]) == 0
    assert capsys.readouterr().out.strip() == "no camera opened at 7 (none connected, busy, or no permission)"
    assert main(["devices", "--fourcc", "MJPEG"]) == 2
    assert "--fourcc='MJPEG'" in capsys.readouterr().err
