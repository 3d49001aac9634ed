"""`edgesharp run` and `edgesharp enhance` end to end on the tiny bundle: images, folders, videos (same frame
count), stats JSON, SIGINT shutdown without lost frames, clear errors, and a light `import edge`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from fakes import indexed_frame
from ir_factory import reference_output

from edgesharp.edge.cli import main

REPO = Path(__file__).resolve().parents[2]


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_enhance_image_keeps_alpha(tiny_bundle_dir, tmp_path):
    frame = indexed_frame(1, 50, 70)
    alpha = np.full((50, 70), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), np.dstack([frame, alpha]))
    assert main(["enhance", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--model", str(tiny_bundle_dir)]) == 0
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (50, 70, 4) and (out[:, :, 3] == 128).all()
    assert np.abs(out[:, :, :3].astype(int) - reference_output(frame, 0.5)).max() <= 3


def test_enhance_folder_same_stems_png(tiny_bundle_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, size in enumerate([(40, 60), (60, 40), (33, 47)]):  # mixed sizes and orientations
        cv2.imwrite(str(src / f"pic{i}.jpg"), indexed_frame(i, *size))
    stats = tmp_path / "stats.json"
    assert main(["-q", "enhance", str(src), str(tmp_path / "out"), "--model", str(tiny_bundle_dir),
                 "--stats-json", str(stats)]) == 0
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["pic0.png", "pic1.png", "pic2.png"]
    assert cv2.imread(str(tmp_path / "out" / "pic1.png")).shape == (60, 40, 3)
    written = json.loads(stats.read_text())
    assert written["frames_written"] == 3
    # --precision auto (the default): the choice, its reason and the CPU class travel with the statistics
    run = written["run"]
    assert run["precision_requested"] == "auto" and run["precision"] in ("int8", "fp16", "fp32")
    assert run["precision_reason"].startswith("CPU class ") and run["cpu_class"]


def test_enhance_video_same_frame_count(tiny_bundle_dir, tmp_path):
    src = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(13):
        writer.write(indexed_frame(i, 48, 64))
    writer.release()
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(src), str(out), "--model", str(tiny_bundle_dir), "--backend", "onnxruntime"]) == 0
    assert _count_frames(out) == 13
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == 10


def test_run_synthetic_to_files_with_stats(tiny_bundle_dir, tmp_path):
    stats = tmp_path / "stats.json"
    code = main(["run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--size", "96x64",
                 "--frames", "12", "--sink", str(tmp_path / "o.mkv"), "--sink", f"compare:{tmp_path / 'cmp'}",
                 "--sink", f"folder:{tmp_path / 'frames'}", "--requests", "2", "--strength", "0.5",
                 "--stats-json", str(stats)])
    assert code == 0
    data = json.loads(stats.read_text())
    assert data["frames_written"] == 12 and data["frames_dropped"] == 0
    assert data["run"]["requests"] == 2 and data["run"]["strength"] == 0.5
    assert set(data["latency_ms"]) >= {"p50", "p95", "max"} and data["rss_mb"] > 0
    assert _count_frames(tmp_path / "o.mkv") == 12
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 12
    assert (tmp_path / "cmp" / "compare.png").is_file()


def test_run_keeps_every_stream_busy_on_a_live_source(tiny_bundle_dir, tmp_path):
    """A live source runs under the throughput hint with one request more than OpenVINO's optimum, so a stream
    that finishes finds a frame waiting; a file source gets the optimum."""
    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.bundle import load_bundle

    with open_backend(load_bundle(tiny_bundle_dir), "openvino", "int8", hint="throughput") as be:
        optimal = be.num_requests
    runs = {}
    for source in ("synthetic", "synthetic:fast"):
        stats = tmp_path / f"{source.replace(':', '-')}.json"
        assert main(["run", "--model", str(tiny_bundle_dir), "--source", source, "--size", "96x64", "--frames", "6",
                     "--sink", "null", "--stats-json", str(stats)]) == 0
        runs[source] = json.loads(stats.read_text())["run"]
    assert runs["synthetic"]["live"] and runs["synthetic"]["hint"] == "throughput"
    assert runs["synthetic"]["requests"] == optimal + 1
    assert not runs["synthetic:fast"]["live"] and runs["synthetic:fast"]["requests"] == optimal


def test_run_errors_are_one_line(tiny_bundle_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("edgesharp.edge.bundle.default_bundle_path", lambda: tmp_path / "default")
    assert main(["run", "--source", "synthetic", "--sink", "null"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgesharp run: error: no default model") and "--model" in err[-1]
    assert main(["run", "--model", str(tiny_bundle_dir), "--source", str(tmp_path / "video99"), "--sink", "null"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["run", "--model", str(tiny_bundle_dir), "--source", "camera:/nonexistent/video9",
                 "--sink", "null"]) == 1
    err = capsys.readouterr().err
    assert "camera /nonexistent/video9: cannot open it" in err and "--source synthetic" in err


def test_sigint_stops_cleanly_without_losing_frames(tiny_bundle_dir, tmp_path):
    frames_dir, stats = tmp_path / "frames", tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "edgesharp.edge.cli", "-q", "run", "--model", str(tiny_bundle_dir), "--source",
           "synthetic:fast", "--size", "80x64", "--sink", f"folder:{frames_dir}", "--sink", str(tmp_path / "o.avi"),
           "--stats-json", str(stats)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(frames_dir.glob("*.png"))) < 5 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    data = json.loads(stats.read_text())
    n = data["frames_written"]
    assert n >= 5 and n == data["frames_captured"] and data["frames_dropped"] == 0
    assert sorted(p.name for p in frames_dir.glob("*.png")) == [f"frame_{i:06d}.png" for i in range(n)]
    assert _count_frames(tmp_path / "o.avi") == n
    assert "SIGINT received" in out


def test_run_real_video_same_frame_count(shared_data, tiny_bundle_dir, tmp_path):
    video = shared_data / "video" / "webcam_person_asl_book.mkv"
    out = tmp_path / "out.mp4"
    assert main(["-q", "run", "--model", str(tiny_bundle_dir), "--source", str(video), "--sink", str(out)]) == 0
    assert _count_frames(out) == _count_frames(video) == 109


def test_enhance_kodak24(shared_data, tiny_bundle_dir, tmp_path):
    out = tmp_path / "kodak"
    assert main(["-q", "enhance", str(shared_data / "kodak24"), str(out), "--model", str(tiny_bundle_dir)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.with_suffix(".png").name for p in (shared_data / "kodak24").glob("*.png"))
    assert len(names) == 24
    assert cv2.imread(str(out / "kodim04.png")).shape == (768, 512, 3)  # portrait kept


def test_import_edge_stays_light():
    code = (
        "import sys\n"
        "import edgesharp.edge.sharpener, edgesharp.edge.pipeline, edgesharp.edge.sources, edgesharp.edge.sinks\n"
        "import edgesharp.edge.stats, edgesharp.edge.backends.openvino_backend, edgesharp.edge.cli\n"
        "import edgesharp.edge.commands.run, edgesharp.edge.commands.enhance\n"
        "from edgesharp import Sharpener\n"
        "heavy = [m for m in ('torch', 'onnx', 'nncf', 'onnxruntime', 'pyvirtualcam', 'edgesharp.train', 'edgesharp.calibrate')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]


def test_enhance_refuses_an_image_over_the_pixel_limit_before_decoding(tiny_bundle_dir, tmp_path, capsys,
                                                                       monkeypatch):
    import edgesharp.edge.backends.base as base

    monkeypatch.setattr(base, "MAX_PIXELS", 96 * 64 - 1)
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((64, 96, 3), np.uint8))
    folder = tmp_path / "folder"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.png"), np.zeros((64, 96, 3), np.uint8))
    cv2.imwrite(str(folder / "small.png"), np.zeros((32, 32, 3), np.uint8))
    assert main(["-q", "enhance", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                 "--model", str(tiny_bundle_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"edgesharp enhance: error: {tmp_path / 'in.png'}: 96x64 is ")
    assert "megapixels, more than the limit of 0.006143; scale it down first" in err[0]
    assert not (tmp_path / "out.png").exists()
    # in a folder the image is skipped and named, the others written
    assert main(["-q", "enhance", str(folder), str(tmp_path / "out"), "--model", str(tiny_bundle_dir)]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.png"]
    assert "big.png" in capsys.readouterr().err


def test_a_governed_run_can_switch_to_the_bundles_lighter_variant(tmp_path, caplog):
    """A bundle that names a lighter variant: a governed (live) run wraps both in one backend and lists the
    variants; an ungoverned run (--target-fps 0) never touches the variant; a broken link only turns the lever off."""
    import logging

    from ir_factory import build_test_bundle

    build_test_bundle(tmp_path / "light", amount=0.3, extra_manifest={"name": "tiny-light"})
    main_dir = build_test_bundle(tmp_path / "main", extra_manifest={"name": "tiny",
                                                                     "lighter": {"path": "../light", "cost": 0.5}})
    broken_dir = build_test_bundle(tmp_path / "broken", extra_manifest={"lighter": {"path": "../gone", "cost": 0.5}})
    runs = {}
    for label, model, extra in (("governed", main_dir, []), ("off", main_dir, ["--target-fps", "0"]),
                                ("broken", broken_dir, [])):
        stats = tmp_path / f"{label}.json"
        with caplog.at_level(logging.WARNING):
            assert main(["run", "--model", str(model), "--source", "synthetic", "--size", "96x64", "--frames", "8",
                         "--sink", "null", "--stats-json", str(stats), *extra]) == 0
        runs[label] = json.loads(stats.read_text())["run"]
    assert runs["governed"]["model_variants"] == ["tiny", "tiny-light"]
    assert "lighter model" in runs["governed"]["governor"]["levers"]
    assert runs["governed"]["governor"]["absent"]["precision"].startswith("--precision auto already runs")
    assert "model_variants" not in runs["off"] and "governor" not in runs["off"]
    assert "model_variants" not in runs["broken"]
    assert runs["broken"]["governor"]["absent"]["lighter model"] == "the bundle's lighter variant cannot be used"
    assert any("its lighter variant '../gone' cannot be used" in r.getMessage() for r in caplog.records)
