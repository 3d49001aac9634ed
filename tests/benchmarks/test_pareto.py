"""The real-time student study: candidates, Pareto front and targets from a bench results file."""

from __future__ import annotations

import json

import pytest

from edgesharp.benchmarks import pareto
from edgesharp.benchmarks.report import FORMAT

LEVELS = ("heavy", "medium", "low")


def quality_rows(method, kind, ssim, model=None, precision=None):
    return [{"suite": "quality", "kind": kind, "method": method, "model": model, "backend": "openvino" if model else None,
             "precision": precision, "level": lv, "ssim": s, "psnr": 30.0} for lv, s in zip(LEVELS, ssim, strict=True)]


def fps_rows(model, arch, async_fps, e2e, precision="int8", torch_fps=None):
    rows = [{"suite": "fps", "kind": "model", "model": model, "arch": arch, "backend": "openvino", "precision": precision,
             "size": "640x480", "mode": "async", "fps": async_fps, "gmacs_per_frame": 1.5},
            {"suite": "fps", "kind": "model", "model": model, "arch": arch, "backend": "openvino", "precision": precision,
             "size": "640x480", "mode": "sync", "fps": async_fps / 2}]
    rows += [{"suite": "fps", "kind": "e2e", "model": model, "arch": arch, "backend": "openvino", "precision": precision,
              "size": size, "mode": "camera30", "fps": f} for size, f in zip(("640x480", "1280x720"), e2e, strict=True)]
    if torch_fps:
        rows.append({"suite": "fps", "kind": "model", "model": model, "arch": arch, "backend": "pytorch", "precision": "fp32",
                     "size": "640x480", "mode": "sync", "fps": torch_fps})
    return rows


@pytest.fixture
def results_file(tmp_path):
    quality = (quality_rows("blurred input", "baseline", (0.78, 0.88, 0.970))
               + quality_rows("unsharp mask", "baseline", (0.83, 0.92, 0.975))
               + quality_rows("unsharp mask (blind)", "baseline", (0.80, 0.915, 0.96))
               + quality_rows("tiny int8", "student", (0.86, 0.93, 0.976), "nafnet-tiny", "int8")
               + quality_rows("tiny fp32", "student", (0.87, 0.93, 0.977), "nafnet-tiny", "fp32")
               + quality_rows("rt int8", "student", (0.857, 0.935, 0.978), "nafnet-rt", "int8")
               + quality_rows("slow fp32", "student", (0.80, 0.90, 0.971), "slow", "fp32")
               + quality_rows("mid int8", "student", (0.84, 0.91, 0.972), "mid", "int8"))
    fps = (fps_rows("nafnet-tiny", "nafnet-tiny", 3.5, (2.1, 0.6), torch_fps=1.0) + fps_rows("nafnet-rt", "nafnet-rt", 78.0, (29.6, 17.8))
           + fps_rows("slow", "slow-arch", 1.0, (0.9, 0.3), precision="fp32") + fps_rows("mid", "mid-arch", 20.0, (19.0, 8.0)))
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format": FORMAT, "created": "now", "command": "edgesharp bench all ...",
                                "machine": {"cpu_model": "Test CPU"}, "fps": fps, "quality": {"rows": quality}}))
    return path


def test_candidates_front_and_targets(results_file, tmp_path):
    study = pareto.write_study(results_file, tmp_path / "study")
    rows = {r["model"]: r for r in study["rows"]}
    assert set(rows) == {"nafnet-tiny", "nafnet-rt", "slow", "mid"}
    assert rows["nafnet-tiny"]["precision"] == "int8" and rows["nafnet-tiny"]["ssim"]["heavy"] == 0.86
    assert rows["slow"]["precision"] == "fp32"  # no INT8 scored: the FP32 row stands in
    assert rows["nafnet-rt"]["e2e_fps"] == {"640x480": 29.6, "1280x720": 17.8}
    # rt is faster than every other candidate and has the best mean SSIM
    assert study["front"] == ["nafnet-rt"]
    t = study["targets"]["nafnet-rt"]
    assert t["e2e 640x480 >= 20"] and t["e2e 1280x720 >= 10"] and t["10x nafnet-tiny PyTorch"]
    assert t["above blurred input"] and t["above unsharp mask"]
    assert t["nafnet-tiny - 0.005"]  # heavy 0.857 >= 0.86 - 0.005
    assert not study["targets"]["mid"]["nafnet-tiny - 0.005"]
    assert not study["targets"]["mid"]["e2e 640x480 >= 20"] and not study["targets"]["mid"]["above unsharp mask"]
    # mid beats the blind unsharp at heavy (0.84 > 0.80) and low, not at medium (0.91 < 0.915)
    assert not study["targets"]["mid"]["above unsharp mask (blind)"] and t["above unsharp mask (blind)"]
    md = (tmp_path / "study" / "pareto.md").read_text()
    assert "| nafnet-rt | nafnet-rt | int8 |" in md and "Machine: Test CPU" in md and "edgesharp bench all" in md
    assert "nafnet-tiny in PyTorch eager FP32 at 640x480, same run: 1.00 FPS." in md
    assert (tmp_path / "study" / "pareto.png").stat().st_size > 5000


def test_a_run_without_scored_students_is_refused(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format": FORMAT, "fps": [], "quality": {"rows": quality_rows("blurred input", "baseline", (0.7, 0.8, 0.9))}}))
    assert pareto.main([str(path), "--out", str(tmp_path / "o")]) == 2
    assert "no OpenVINO student scored" in capsys.readouterr().err
    assert pareto.main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such results file" in capsys.readouterr().err


def test_without_out_the_study_is_stored_beside_the_runs_under_the_machine_slug(results_file, tmp_path, monkeypatch):
    from edgesharp.benchmarks import readme_tables

    monkeypatch.setattr(readme_tables, "RESULTS_ROOT", tmp_path / "results")
    assert pareto.main([str(results_file), "--no-chart"]) == 2  # the run names no machine slug: refused
    run = json.loads(results_file.read_text())
    run["machine"]["slug"] = "test-cpu-4c-as-avx2"
    results_file.write_text(json.dumps(run))
    assert pareto.main([str(results_file), "--no-chart"]) == 0
    out = tmp_path / "results" / "test-cpu-4c-as-avx2-pareto"
    assert json.loads((out / "bench-results.json").read_text()) == run
    assert (out / "pareto.md").is_file() and (out / "pareto.json").is_file()
    assert pareto.main([str(out / "bench-results.json"), "--no-chart"]) == 0  # re-run on the stored copy
