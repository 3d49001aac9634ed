"""Issue 29 end to end: no run replaces one of its inputs, none reports a broken file as written, rates that are
not finite are refused before anything opens, a second signal ends a stuck run at once, one bad image does not
stop a folder, and a truncated video is reported. Each case checks the exit code, the one-line message, the
inputs byte for byte (sha256) and that every output is complete and decodable or absent."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fakes import indexed_frame, two_signals_while_stuck
from test_sinks import FaultyOutput

from edgesharp.edge.cli import main

REPO = Path(__file__).resolve().parents[2]


def _hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (symlinks as their target's name), by relative path."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def _video(path: Path, n: int, codec: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, (64, 48))
    for i in range(n):
        writer.write(indexed_frame(i, 48, 64))
    writer.release()
    return path


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A working folder (the current directory) with an image, a symlink to it, a folder of images, a video."""
    work = tmp_path / "work"
    (work / "dir").mkdir(parents=True)
    cv2.imwrite(str(work / "a.png"), indexed_frame(1, 48, 64))
    (work / "link.png").symlink_to("a.png")
    for i in range(3):
        cv2.imwrite(str(work / "dir" / f"p{i}.png"), indexed_frame(i, 40, 56))
    _video(work / "s.mp4", 6)
    monkeypatch.chdir(work)
    return work


def _one_line(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0], captured.out


@pytest.mark.parametrize("argv", [
    ["enhance", "a.png", "."],  # the case: OUT is the folder, the file written is ./a.png
    ["enhance", "a.png", "link.png"],  # a symlink to the input
    ["enhance", "a.png", "out.png", "--stats-json", "a.png"],
    ["enhance", "dir", "dir"],
    ["enhance", "s.mp4", "./s.mp4"],
    ["run", "--source", "dir", "--sink", "folder:dir"],
    ["run", "--source", "dir", "--sink", "dir/"],
    ["run", "--source", "s.mp4", "--sink", "s.mp4"],
    ["run", "--source", "s.mp4", "--sink", "null", "--stats-json", "s.mp4"],
    ["run", "--source", "dir", "--sink", "compare:dir", "--sink", "null"],
])
def test_no_run_overwrites_its_input(inputs, tiny_bundle_dir, capsys, argv):
    if argv[-1] == "compare:dir" or "compare:dir" in argv:
        cv2.imwrite("dir/compare.png", indexed_frame(9, 40, 56))  # an input named like the comparison sheet
    before = _hashes(inputs)
    assert main([*argv, "--model", str(tiny_bundle_dir)]) == 2
    line, out = _one_line(capsys)
    assert line.startswith(f"edgesharp {argv[0]}: error: ") and "would overwrite the input" in line, line
    assert out == "" and _hashes(inputs) == before  # inputs byte-identical, nothing else written


@pytest.mark.parametrize(("fault", "reason"), [
    ("lose", "decodes 3 of 10 frames"),  # frames silently lost
    ("cut", "decodes 0 of 10 frames"),  # no moov atom
    ("nospace", "failed ([Errno 28] No space left on device)"),  # a full disk
])
def test_a_broken_video_is_never_reported_as_written(inputs, tiny_bundle_dir, capsys, monkeypatch, fault, reason):
    _video(inputs / "x.mp4", 4)
    before = _hashes(inputs)
    monkeypatch.setattr(av, "open", FaultyOutput(fault))
    code = main(["-q", "run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--size", "64x48",
                 "--frames", "10", "--sink", "x.mp4", "--stats-json", "stats.json"])
    line, out = _one_line(capsys)
    assert code == 1 and "wrote" not in out and "frames from" not in out
    assert line.startswith("edgesharp run: error: x.mp4: ") and reason in line, line
    after = _hashes(inputs)
    assert after.pop("stats.json") and after == before  # the previous x.mp4 untouched, no temporary file left
    monkeypatch.undo()
    assert _count_frames(inputs / "x.mp4") == 4


def test_two_runs_on_one_output_both_finish_complete(inputs, tiny_bundle_dir):
    """The issue's race: two runs writing the same MP4 (one died with a traceback, the other left a file whose
    header claimed 150 frames of which 20 decoded)."""
    cmd = [sys.executable, "-m", "edgesharp.edge.cli", "-q", "run", "--model", str(tiny_bundle_dir), "--source",
           "synthetic:fast", "--size", "64x48", "--sink", "same.mp4", "--backend", "onnxruntime", "--requests", "1"]
    procs = [subprocess.Popen([*cmd, "--frames", str(n)], cwd=inputs, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}) for n in (30, 12)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-1000:] for r in results]
    assert _count_frames(inputs / "same.mp4") in (30, 12)
    assert not [p.name for p in inputs.iterdir() if p.name.startswith(".same.mp4")]


@pytest.mark.parametrize("option", [
    "--fps=inf", "--fps=nan", "--fps=-inf", "--fps=0", "--fps=-2", "--fps=1e9", "--frames=0", "--frames=-3",
    "--size=0x0", "--size=infxinf", "--strength=nan", "--requests=0", "--threads=-1",
])
def test_rates_sizes_and_counts_that_are_not_finite_and_positive_are_refused(inputs, tiny_bundle_dir, capsys,
                                                                            option):
    start = time.perf_counter()
    code = main(["run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--frames", "10",
                 "--sink", "out.mp4", option])
    line, _ = _one_line(capsys)
    assert code == 2 and line.startswith(f"edgesharp run: error: {option.split('=')[0]} "), line
    assert not Path("out.mp4").exists() and time.perf_counter() - start < 5


STUCK_WRITER = """
import ctypes, pathlib, sys

def stuck(*args, **kwargs):  # the --fps inf hang: a thread blocked in a native call that no signal interrupts
    pathlib.Path(sys.argv[1]).write_text("stuck")
    mutex = ctypes.create_string_buffer(64)
    libc = ctypes.CDLL(None)
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)

import edgesharp.edge.imaging.video_out as video_out
video_out.AvVideoWriter = stuck
from edgesharp.edge.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)])
def test_a_second_signal_ends_a_run_stuck_in_a_native_call(inputs, tiny_bundle_dir, signals):
    marker = inputs / "stuck"
    cmd = [sys.executable, "-c", STUCK_WRITER, str(marker), "-q", "run", "--model", str(tiny_bundle_dir), "--source",
           "synthetic:fast", "--size", "64x48", "--frames", "10", "--sink", "out.mp4", "--backend", "onnxruntime"]
    proc = subprocess.Popen(cmd, cwd=inputs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})

    def writing() -> None:
        assert [p.name for p in inputs.iterdir() if p.name.startswith(".out.mp4.")]  # its temporary file

    elapsed, err = two_signals_while_stuck(proc, marker, *signals, pause=0.5, while_stuck=writing)
    assert proc.returncode == 128 + signals[1] and elapsed < 1.5, (proc.returncode, elapsed, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"second {signals[1].name}: exiting now" in lines[0], err
    assert not Path(inputs / "out.mp4").exists()
    assert not [p.name for p in inputs.iterdir() if p.name.startswith(".out.mp4.")]  # temporary file removed


def test_one_bad_image_does_not_stop_a_folder(inputs, tiny_bundle_dir, capsys, caplog):
    src = inputs / "mixed"
    src.mkdir()
    cv2.imwrite(str(src / "a_good.png"), indexed_frame(1, 40, 56))
    cv2.imwrite(str(src / "b_tiny.png"), indexed_frame(2, 40, 56)[:5, :5])  # decodes, too small for the model
    (src / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # does not decode
    cv2.imwrite(str(src / "d_good.jpg"), indexed_frame(3, 40, 56))
    before = _hashes(src)
    code = main(["-q", "enhance", str(src), "out", "--model", str(tiny_bundle_dir), "--requests", "2"])
    line, out = _one_line(capsys)
    assert code == 1 and out.startswith("2 frames -> out")
    assert line == ("edgesharp enhance: 2 inputs skipped (unreadable or failed): c_broken.png, b_tiny.png; "
                    "every other output was written")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("b_tiny.png" in w and "too small" in w for w in warnings), warnings
    assert any("c_broken.png" in w for w in warnings), warnings
    assert sorted(p.name for p in Path("out").iterdir()) == ["a_good.png", "d_good.png"]
    assert all(cv2.imread(str(p)).shape == (40, 56, 3) for p in Path("out").iterdir())
    assert _hashes(src) == before


def test_enhance_reports_a_truncated_video(inputs, tiny_bundle_dir, capsys):
    whole = _video(inputs / "whole.avi", 20, codec="MJPG")
    cut = inputs / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    before = _hashes(inputs)
    code = main(["-q", "enhance", "cut.avi", "sharp.mp4", "--model", str(tiny_bundle_dir)])
    captured = capsys.readouterr()
    got = _count_frames(inputs / "sharp.mp4")
    assert code == 1 and 0 < got < 19
    assert captured.err.strip().splitlines()[-1] == (
        f"edgesharp enhance: cut.avi is truncated or damaged: its header promised 20 frames, it gave {got}; "
        f"sharp.mp4 has those {got}")
    assert "header promised 20 frames" in captured.err.strip().splitlines()[0]  # the source's warning
    after = _hashes(inputs)
    assert after.pop("sharp.mp4") and after == before
    assert main(["-q", "enhance", "whole.avi", "whole.mp4", "--model", str(tiny_bundle_dir)]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["enhance", "a.png", "a.png/sub/out.png"], "cannot create the folder a.png/sub: a.png is a file"),
    (["run", "--source", "synthetic:fast", "--frames", "2", "--sink", "null", "--stats-json", "dir"],
     "--stats-json dir: is a folder; give a file name"),
    (["run", "--source", "synthetic:fast", "--frames", "2", "--sink", "outptu"], "not a known sink"),
])
def test_more_mistakes_are_one_line(inputs, tiny_bundle_dir, capsys, argv, message):
    before = _hashes(inputs)
    assert main([*argv, "--model", str(tiny_bundle_dir)]) in (1, 2)
    line, _ = _one_line(capsys)
    assert message in line, line
    assert _hashes(inputs) == before


def test_outputs_get_the_mode_the_umask_gives(inputs, tiny_bundle_dir):
    old = os.umask(0o027)
    try:
        assert main(["-q", "run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--size", "64x48",
                     "--frames", "3", "--sink", "o.avi", "--sink", "folder:f", "--stats-json", "s.json"]) == 0
        assert main(["-q", "enhance", "a.png", "b.png", "--model", str(tiny_bundle_dir)]) == 0
    finally:
        os.umask(old)
    for path in ("o.avi", "f/frame_000000.png", "s.json", "b.png"):
        assert (inputs / path).stat().st_mode & 0o777 == 0o640, path
    assert np.array_equal(cv2.imread("a.png"), indexed_frame(1, 48, 64))
