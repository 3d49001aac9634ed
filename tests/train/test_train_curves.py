"""Curves: several runs' validation SSIM in one PNG, and the command's one-line errors."""

from __future__ import annotations

import json

import pytest

from edgesharp.train.curves import compare_curves, main


def write_log(path, points):
    lines = [{"step": 1, "phase": 0, "loss": 0.1, "lr": 1e-3}]
    lines += [{"step": s, "val": {"heavy": {"ssim": h, "psnr": 20.0}, "medium": {"ssim": h + 0.05, "psnr": 25.0},
                                  "low": {"ssim": h + 0.09, "psnr": 30.0}, "mean_ssim": h + 0.05}} for s, h in points]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return path


def test_compare_curves_draws_every_run_and_mark(tmp_path):
    a = write_log(tmp_path / "a.jsonl", [(100, 0.80), (200, 0.82)])
    b = write_log(tmp_path / "b.jsonl", [(50, 0.81), (150, 0.83), (250, 0.84)])
    png = compare_curves({"a": a, "b": b}, tmp_path / "out" / "c.png", {"ref": {"heavy": 0.85, "low": 0.95}})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_compare_curves_refuses_a_log_without_validation(tmp_path):
    a = write_log(tmp_path / "a.jsonl", [(100, 0.80)])
    empty = write_log(tmp_path / "empty.jsonl", [])
    with pytest.raises(ValueError, match="no validation records in .*empty.jsonl"):
        compare_curves({"a": a, "e": empty}, tmp_path / "c.png")


def test_command_writes_the_png_and_names_bad_arguments(tmp_path, capsys):
    a = write_log(tmp_path / "a.jsonl", [(100, 0.80), (200, 0.82)])
    out = tmp_path / "c.png"
    assert main([f"run a={a}", "--mark", "v12=0.85,0.9,0.95", "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    for argv, message in [([f"{tmp_path}/missing.jsonl", "--out", str(out)], "must be LABEL=VALUE"),
                          ([f"x={tmp_path}/missing.jsonl", "--out", str(out)], "missing.jsonl: no such log"),
                          ([f"a={a}", "--mark", "v12=0.8,0.9", "--out", str(out)], "three comma-separated")]:
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
