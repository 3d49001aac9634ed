"""`edgesharp bench`: the quick run end to end, report files, and --compare."""

from __future__ import annotations

import json
import time

from edgesharp.benchmarks import report
from edgesharp.edge.cli import main


def test_bench_all_quick_writes_a_complete_report(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "report"
    t0 = time.perf_counter()
    code = main(["bench", "all", "--quick", "--model", str(tiny_bundle), "--backends", "openvino,onnxruntime",
                 "--precisions", "fp32,int8", "--out", str(out)])
    elapsed = time.perf_counter() - t0
    assert code == 0
    assert elapsed < 120, f"bench all --quick took {elapsed:.0f} s"
    for name in ("results.json", "report.md", "fps.png", "ssim.png", "quality_vs_fps.png", "comparison_sheet.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    results = report.read_results(out / "results.json")
    assert results["machine"]["physical_cores"] >= 1 and results["machine"]["peak"]["fp32_gmacs"] > 0
    kinds = {r["kind"] for r in results["fps"]}
    assert kinds == {"model", "e2e", "verdict"}
    model_rows = report.fps_rows(results, "model")
    assert {(r["backend"], r["precision"], r["mode"]) for r in model_rows} == {
        (b, p, m) for b in ("openvino", "onnxruntime") for p in ("fp32", "int8") for m in ("sync", "async")}
    for r in model_rows:
        assert r["fps"] > 0 and len(r["fps_runs"]) == 2 and r["achieved_gmacs"] > 0, r
    for r in report.fps_rows(results, "e2e"):
        assert r["frames_written"] > 0 and r["cpu_percent"] >= 0 and r["rss_peak_mb"] > 0
    verdicts = report.fps_rows(results, "verdict")
    assert all("max_size_15fps" in v and "max_size_20fps" in v for v in verdicts)
    methods = {r["method"] for r in report.quality_rows(results)}
    assert {"blurred input", "unsharp mask", "nafnet-test openvino fp32", "nafnet-test onnxruntime int8"} <= methods
    md = (out / "report.md").read_text()
    for heading in ("## Model-only speed", "## End to end", "## Real-time verdict", "## Quality"):
        assert heading in md
    text = capsys.readouterr().out
    assert "meets" in text or "misses" in text


def test_compare_prints_ratios(tmp_path, capsys):
    first = tmp_path / "a"
    assert main(["bench", "quality", "--quick", "--no-sheet", "--no-charts", "--out", str(first)]) == 0
    capsys.readouterr()
    assert main(["bench", "quality", "--quick", "--no-sheet", "--no-charts", "--out", str(tmp_path / "b"),
                 "--compare", str(first / "results.json")]) == 0
    text = capsys.readouterr().out
    assert "compared with" in text
    assert "quality|unsharp mask|heavy: SSIM" in text and "(+0.0000)" in text  # same inputs, same scores


def test_compare_arithmetic():
    old = {"fps": [{"suite": "fps", "kind": "model", "model": "m", "backend": "openvino", "precision": "int8",
                    "size": "640x480", "mode": "sync", "fps": 10.0}],
           "quality": {"rows": [{"suite": "quality", "method": "x", "level": "heavy", "ssim": 0.80, "psnr": 27.0}]}}
    new = json.loads(json.dumps(old))
    new["fps"][0]["fps"] = 25.0
    new["quality"]["rows"][0].update(ssim=0.85, psnr=28.5)
    rows = {r["key"]: r for r in report.compare(new, old)}
    assert rows["model|m|openvino|int8|640x480|sync"]["ratio"] == 2.5
    assert rows["quality|x|heavy"]["ssim_delta"] == 0.05 and rows["quality|x|heavy"]["psnr_delta"] == 1.5
    assert "x2.50" in "\n".join(report.format_comparison(list(rows.values())))


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["bench", "fps", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["bench", "fps", "--model", str(tmp_path), "--backends", "tensorrt", "--out", str(tmp_path)]) == 1
    assert "--backends: unknown tensorrt" in capsys.readouterr().err
    assert main(["bench", "fps", "--model", str(tmp_path), "--isa-cap", "avx2", "--backends", "openvino,onnxruntime",
                 "--out", str(tmp_path)]) == 1
    assert "--isa-cap avx2 caps OpenVINO's and PyTorch's kernels only" in capsys.readouterr().err
    import os

    assert "ONEDNN_MAX_CPU_ISA" not in os.environ  # refused before anything was capped
