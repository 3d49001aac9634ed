"""`edgesharp bench temporal`: identity adds no flicker, per-frame noise adds some, a temporal smoother removes
some; the synthetic clips are deterministic and move as they say; the CLI writes results.json and report.md."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from edgesharp.benchmarks import report
from edgesharp.benchmarks.temporal import (
    Clip,
    Method,
    TemporalConfig,
    pan_clip,
    run_temporal,
    score_clip,
    static_clip,
)
from edgesharp.edge.cli import main
from edgesharp.edge.imaging.degrade import add_noise
from edgesharp.edge.sources import SyntheticSource

SIZE = (96, 64)


@pytest.fixture
def image(test_image):
    return cv2.cvtColor(test_image, cv2.COLOR_RGB2BGR)


@pytest.fixture
def clips(image):
    src = SyntheticSource(SIZE, fps=30, paced=False)  # a moving scene: edges, text and two faces drifting
    video = Clip("moving scene", "video", [src.read().image for _ in range(8)])
    return [video, static_clip(image, 8, SIZE), pan_clip(image, 8, SIZE)]


def identity(frames):
    return [f.copy() for f in frames]


def noisy(frames):
    """A 'model' that adds fresh noise to every frame: what visible shimmer is."""
    return [add_noise(f, np.random.default_rng(i), "gaussian", 4.0) for i, f in enumerate(frames)]


def smoothed(frames):
    """A 'model' that averages each frame with its previous output: steadier than its input."""
    out = [frames[0]]
    for f in frames[1:]:
        out.append(cv2.addWeighted(f, 0.5, out[-1], 0.5, 0))
    return out


def test_identity_adds_no_flicker(clips):
    for clip in clips:
        s = score_clip(clip, {"identity": identity(clip.frames)})["identity"]
        assert s["flicker_ratio"] == 1.0 and s["warp_ratio"] == 1.0, clip.name
        assert s["added_flicker_pct"] == 0.0 and s["added_warp_pct"] == 0.0
        assert s["input_flicker"] > 0 and s["input_warp_error"] > 0 and s["output_flicker"] == s["input_flicker"]
        assert s["frames"] == 8 and s["size"] == "96x64" and s["tracked_pct"] > 50
    assert score_clip(clips[1], {"i": clips[1].frames})["i"]["static_pct"] == 100.0  # static by construction
    assert 0 < score_clip(clips[0], {"i": clips[0].frames})["i"]["static_pct"] < 100  # parts of it move


def test_per_frame_noise_adds_flicker_and_a_smoother_removes_some(clips):
    for clip in clips:
        s = score_clip(clip, {"noisy": noisy(clip.frames), "smooth": smoothed(clip.frames)})
        assert s["noisy"]["flicker_ratio"] > 1.1 and s["noisy"]["warp_ratio"] > 1.05, clip.name
        assert s["noisy"]["added_flicker_pct"] == pytest.approx(100 * (s["noisy"]["flicker_ratio"] - 1), abs=0.01)
        if clip.kind == "static":
            assert s["smooth"]["flicker_ratio"] < 0.8  # averaging frames halves noise-only changes


def test_warping_follows_the_pan(image):
    clean = pan_clip(image, 6, SIZE, noise=(0.0, 0.0))
    s = score_clip(clean, {"i": clean.frames})["i"]
    raw = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(clean.frames, clean.frames[1:], strict=False)])
    assert s["input_warp_error"] < 0.5 * raw  # the flow undoes most of the 1 px motion


def test_synthetic_clips_are_deterministic(image):
    a, b = static_clip(image, 5, SIZE, seed=3), static_clip(image, 5, SIZE, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not np.array_equal(a.frames[0], a.frames[1])  # fresh noise every frame
    assert not np.array_equal(a.frames[0], static_clip(image, 1, SIZE, seed=4).frames[0])
    still = static_clip(image, 3, SIZE, noise=(0.0, 0.0))
    assert all(np.array_equal(still.frames[0], f) for f in still.frames)
    pan, pan2 = pan_clip(image, 5, SIZE, step=1, noise=(0.0, 0.0)), pan_clip(image, 5, SIZE, step=1, noise=(0.0, 0.0))
    assert all(np.array_equal(x, y) for x, y in zip(pan.frames, pan2.frames, strict=True))
    for prev, cur in zip(pan.frames, pan.frames[1:], strict=False):
        assert cur.shape == (64, 96, 3) and np.array_equal(cur[:, :-1], prev[:, 1:])  # the scene moves 1 px left
    assert np.array_equal(pan_clip(image, 3, SIZE, step=2, noise=(0.0, 0.0)).frames[1][:, :-2],
                          pan.frames[0][:, 2:])


def test_run_temporal_with_given_methods(tmp_path, image):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    src = SyntheticSource(SIZE, fps=10, paced=False)
    for _ in range(6):
        writer.write(src.read().image)
    writer.release()
    image_path = tmp_path / "scene.png"
    cv2.imwrite(str(image_path), image)
    cfg = TemporalConfig(videos=[tmp_path], frames=5, size=SIZE, image=image_path)
    results = run_temporal(cfg, methods=[Method("identity", "baseline", identity), Method("noisy", "baseline", noisy)])
    rows = results["rows"]
    assert [(r["method"], r["clip"]) for r in rows] == [
        (m, c) for c in ("clip.avi", "static + noise", "pan 1 px/frame") for m in ("identity", "noisy")]
    assert all(r["within_bound"] for r in rows if r["method"] == "identity")
    assert not any(r["within_bound"] for r in rows if r["method"] == "noisy")
    assert [c["kind"] for c in results["clips"]] == ["video", "static", "pan"]


def _moving_clip(folder, frames: int):
    """An MJPG clip of the moving synthetic scene in `folder`."""
    video = folder / "moving.avi"
    folder.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    src = SyntheticSource(SIZE, fps=10, paced=False)
    for _ in range(frames):
        writer.write(src.read().image)
    writer.release()
    return video


def test_bench_temporal_writes_results_and_report(tiny_bundle, tmp_path, capsys):
    video = _moving_clip(tmp_path / "videos", 6)
    out = tmp_path / "report"
    t0 = time.perf_counter()
    assert main(["bench", "temporal", "--model", str(tiny_bundle), "--videos", str(video.parent), "--frames", "4",
                 "--size", "96x64", "--out", str(out), "--no-charts"]) == 0
    assert time.perf_counter() - t0 < 60
    results = report.read_results(out / "results.json")
    rows = results["temporal"]["rows"]
    assert {r["clip"] for r in rows} == {"moving.avi", "static + noise", "pan 1 px/frame"}
    assert {r["method"] for r in rows} == {f"nafnet-test openvino auto ({rows[0]['precision']})", "unsharp mask (blind)"}
    for r in rows:
        assert r["frames"] == 4 and r["size"] == "96x64" and r["flicker_ratio"] > 0 and r["warp_ratio"] > 0
    assert json.loads((out / "results.json").read_text())["temporal"]["config"]["frames"] == 4
    md = (out / "report.md").read_text()
    assert "## Temporal stability" in md and "| nafnet-test openvino auto" in md and "`static + noise`" in md
    text = capsys.readouterr().out
    assert "temporal:" in text and "flicker" in text and f"report: {out / 'report.md'}" in text


def test_bench_temporal_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["bench", "temporal", "--frames", "1", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "edgesharp bench: error: --frames 1: a clip needs at least 2 frames"
    assert main(["bench", "temporal", "--videos", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("nope.mp4: no such file or folder") and "--videos" in err[0]
    assert main(["bench", "temporal", "--backends", "pytorch", "--out", str(tmp_path)]) == 1
    assert "--backends: pytorch not for the temporal suite" in capsys.readouterr().err


def test_bench_temporal_store_keeps_the_machines_speed_results(tiny_bundle, tmp_path, monkeypatch):
    from edgesharp.benchmarks import cli as bench_cli

    monkeypatch.setattr(bench_cli, "RESULTS_ROOT", tmp_path / "results")
    from edgesharp.benchmarks import machine

    slug = machine.collect().slug
    (tmp_path / "results" / slug).mkdir(parents=True)
    (tmp_path / "results" / slug / "results.json").write_text("{}")  # the machine's speed run
    video = _moving_clip(tmp_path / "videos", 4)
    assert main(["bench", "temporal", "--model", str(tiny_bundle), "--videos", str(video.parent), "--frames", "3",
                 "--size", "96x64", "--out", str(tmp_path / "report"), "--no-charts", "--store"]) == 0
    assert (tmp_path / "results" / slug / "results.json").read_text() == "{}"
    assert (tmp_path / "results" / f"{slug}-temporal" / "results.json").is_file()
