"""`edgesharp bench governor`: both runs under one CPU hog that is gone afterwards, the structure of results.json
and report.md (speeds are not asserted), and its arguments' one-line errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from edgesharp.benchmarks import governor as bench
from edgesharp.benchmarks import report
from edgesharp.edge.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "edge"))
from fakes import ScaledCostBackend  # noqa: E402  (tests/edge's test doubles)


def _fake_backend(bundle):
    return ScaledCostBackend(frame_s=0.01, full_pixels=96 * 64)  # 100 fps at 96x64: the target is always held


def test_governor_bench_runs_both_under_one_hog(monkeypatch):
    hogs = []
    real_hog = bench.cpu_hog

    def spy(enabled=True):
        cm = real_hog(enabled)
        hogs.append(cm)
        return cm

    monkeypatch.setattr(bench, "cpu_hog", spy)
    cfg = bench.GovernorBenchConfig(size=(96, 64), seconds=1.0, backend_factory=_fake_backend)
    result = bench.run_governor(cfg)
    assert len(hogs) == 1
    hog = result["hog"]
    assert not psutil.pid_exists(hog["pid"])
    if hasattr(os, "sched_getaffinity"):
        assert hog["pinned"] and hog["core"] == max(os.sched_getaffinity(0))
    assert [r["governed"] for r in result["runs"]] == [False, True]
    plain, governed = result["runs"]
    for r in result["runs"]:
        assert r["target_fps"] == 30.0 and r["frames_captured"] > 0
        assert r["frames_written"] + r["frames_dropped"] == r["frames_captured"]
        assert {"fps", "settled_fps", "fps_per_second", "drop_pct", "latency_ms", "mean_cpu_percent"} <= set(r)
    assert "changes" not in plain
    assert governed["changes"] == [] and governed["final_level"] == {"processing scale": 1.0}
    assert set(governed["absent_levers"]) == {"precision", "lighter model"}
    md = bench.render_markdown({"governor": result, "command": "edgesharp bench governor --seconds 1"})
    assert "| un-governed |" in md and "| governed |" in md and "`edgesharp bench governor --seconds 1`" in md


def test_the_hog_spins_on_its_core_and_stops():
    with bench.cpu_hog() as hog:
        proc = psutil.Process(hog["pid"])
        proc.cpu_percent(None)
        psutil.cpu_percent(0.5)  # a short wait: the hog is busy by then
        assert proc.cpu_percent(None) > 50.0
        if hog["pinned"]:
            assert proc.cpu_affinity() == [hog["core"]]
    assert not psutil.pid_exists(hog["pid"])


def test_bench_governor_cli_writes_results_and_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "_open_backend", lambda cfg, bundle, live: _fake_backend(bundle))
    out = tmp_path / "gov"
    assert main(["bench", "governor", "--seconds", "1", "--size", "96x64", "--no-hog", "--no-charts",
                 "--out", str(out)]) == 0
    results = report.read_results(out / "results.json")
    assert results["governor"]["hog"] is None and results["governor"]["config"]["size"] == "96x64"
    assert len(results["governor"]["runs"]) == 2
    assert "# Governor under load" in (out / "report.md").read_text()
    text = capsys.readouterr().out
    assert "un-governed" in text and "governed" in text and f"report: {out / 'report.md'}" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--seconds", "0"], "--seconds 0.0: must be above 0"),
    (["--precisions", "fp16,int8"], "bench governor runs the openvino backend at one precision"),
    (["--camera-fps", "0"], "--camera-fps"),
])
def test_bench_governor_bad_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["bench", "governor", "--out", str(tmp_path), "--no-hog", *args]) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
