"""`edgesharp calibrate` end to end on a saved checkpoint: success, and a refused INT8 with exit 1."""

from __future__ import annotations

import json
import shutil

import pytest

from edgesharp.calibrate.untrained import fit, perturb
from edgesharp.edge import cli
from edgesharp.edge.bundle import load_bundle


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from edgesharp.train import models
    from edgesharp.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models.create("nafnet-test")
    perturb(model, 0)
    fit(model, 30, 0)  # a sharpener, which INT8 makes measurably worse (a random network may even gain)
    path = tmp_path_factory.mktemp("ckpt") / "student.pt"
    save_checkpoint(path, model, config={"loss": "l1", "lr": 0.001}, step=7)
    return path


def _args(checkpoint, out, image_dir, *extra):
    return ["calibrate", str(checkpoint), "--out", str(out), "--val-images", str(image_dir), "--calib-images",
            str(image_dir), "--subset-size", "3", "--calib-crop", "32", "--sizes", "32x32", "48x40", "--guard-classes", "none",
            *extra]


def test_cli_refuses_int8_beyond_the_guard(checkpoint, image_dir, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)  # a good bundle from an earlier run must survive the refusal
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # 7-bit weights (the overflow fix) leave this tiny student's INT8 level with FP32: ask INT8 to beat it by 0.5
    rc = cli.main(_args(checkpoint, out, image_dir, "--max-ssim-drop", "-0.5", "--no-accuracy-control", "--skip-ort-int8"))
    text = capsys.readouterr().out
    assert rc == 1
    assert "INT8 refused" in text and "exceeds --max-ssim-drop -0.5" in text and "no bundle written" in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundle.calibration-failed.json"]
    failed = json.loads((tmp_path / "bundle.calibration-failed.json").read_text())
    assert failed["refused"]["ssim_drop"] > -0.5 and failed["refused"]["attempts"][0]["method"] == "plain"


def test_cli_writes_a_bundle(checkpoint, image_dir, tmp_path, capsys):
    out = tmp_path / "bundle"
    rc = cli.main(_args(checkpoint, out, image_dir, "--max-ssim-drop", "0.5", "--name", "cli-test"))
    text = capsys.readouterr().out
    assert rc == 0 and "bundle:" in text and "int8" in text and "mean SSIM" in text
    bundle = load_bundle(out)
    assert bundle.name == "cli-test" and bundle.manifest["recipe"]["step"] == 7
    assert bundle.manifest["recipe"]["loss"] == "l1"
    from edgesharp.train.checkpoint import load_student
    from edgesharp.train.models.complexity import count_params

    model, _ = load_student(checkpoint)
    assert bundle.manifest["params"] == count_params(model)
    assert bundle.manifest["macs_per_pixel"] > 0


def test_slim_bundle_leaves_out_the_fp32_ir_and_serves_fp32_from_fp16(checkpoint, image_dir, tmp_path, capsys, caplog):
    import numpy as np

    from edgesharp.edge.backends import open_backend

    out = tmp_path / "slim"
    assert cli.main(_args(checkpoint, out, image_dir, "--max-ssim-drop", "0.5", "--skip-ort-int8", "--slim")) == 0
    bundle = load_bundle(out)
    assert not (out / "fp32.xml").exists() and not (out / "fp32.bin").exists()
    assert "fp32.xml" not in bundle.manifest["files"] and bundle.manifest["precisions"]["fp32"] == {"onnxruntime": "model.onnx"}
    assert set(bundle.manifest["metrics"]) == {"fp32", "fp16", "int8"}  # FP32 was still scored
    frame = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    with open_backend(bundle, "openvino", "fp32") as ov, open_backend(bundle, "onnxruntime", "fp32") as ort:
        assert np.abs(ov.infer(frame).astype(int) - ort.infer(frame).astype(int)).max() <= 2
        # FP32 computed by the FP16 IR in f32: a slim bundle's convention, so no warning
        assert ov.precision == "fp32" and ov.model_path.name == "fp16.xml"
        assert ov.describe()["inference_precision_hint"] == "f32"
    assert "no fp32 model for openvino" not in caplog.text


def test_quantization_aware_int8_goes_into_the_bundle(checkpoint, image_dir, tmp_path, capsys):
    from edgesharp.calibrate.quantize import count_quantizers
    from edgesharp.edge.backends.openvino_core import shared_core

    out = tmp_path / "bundle"
    rc = cli.main(_args(checkpoint, out, image_dir, "--max-ssim-drop", "0.5", "--skip-ort-int8", "--qat-steps", "4",
                        "--qat-batch", "2", "--qat-crop", "32", "--qat-lr", "1e-4"))
    assert rc == 0, capsys.readouterr().out
    report = json.loads((out / "calibration_report.json").read_text())
    attempt = report["openvino_int8"]["attempts"][0]
    assert attempt["method"] == "quantization_aware" and attempt["steps"] == 4 and attempt["lr"] == 1e-4
    assert report["options"]["qat_steps"] == 4
    assert count_quantizers(shared_core().read_model(out / "int8.xml")) > 0
    assert load_bundle(out).manifest["metrics"]["int8"]["heavy"]["ssim"] == pytest.approx(report["scores"]["int8"]["levels"]["heavy"]["ssim"])


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["calibrate", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_cli_missing_checkpoint_is_one_line(tmp_path, image_dir, capsys):
    rc = cli.main(_args(tmp_path / "nope.pt", tmp_path / "b", image_dir))
    err = capsys.readouterr().err
    assert rc == 1 and "nope.pt" in err and len(err.strip().splitlines()) == 1


def test_cli_guard_on_the_worst_level(checkpoint, image_dir, tmp_path, capsys):
    rc = cli.main(_args(checkpoint, tmp_path / "bundle", image_dir, "--max-ssim-drop", "-0.5", "--no-accuracy-control",
                        "--skip-ort-int8", "--guard", "worst-level"))
    assert rc == 1 and "worst-level SSIM drop" in capsys.readouterr().out
    failed = json.loads((tmp_path / "bundle.calibration-failed.json").read_text())
    assert failed["refused"]["guard"] == "worst-level"
    assert failed["refused"]["ssim_drop"] == max(failed["refused"]["ssim_drop_per_level"].values())


def test_an_amx_cpu_calibrates_with_onednn_capped_below_amx(monkeypatch):
    import os

    from edgesharp.calibrate import cli as calibrate_cli
    from edgesharp.edge.backends import openvino_core

    amx = "processor\t: 0\nflags\t\t: fpu sse4_2 avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8\n\nprocessor\t: 1\n"
    assert openvino_core.cpuinfo(amx) == {"processor": "0", "flags": "fpu sse4_2 avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8"}
    assert openvino_core.cpu_has_amx(openvino_core.cpuinfo(amx))
    assert not openvino_core.cpu_has_amx(openvino_core.cpuinfo(amx.replace("amx_tile ", "")))
    monkeypatch.setattr(openvino_core, "cpu_has_amx", lambda info=None: True)
    assert calibrate_cli.cap_below_amx() and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_VNNI"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a cap the user set is kept
    assert not calibrate_cli.cap_below_amx() and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(openvino_core, "cpu_has_amx", lambda info=None: False)
    assert not calibrate_cli.cap_below_amx() and "ONEDNN_MAX_CPU_ISA" not in os.environ


def test_repeated_ignored_scope_flags_add_up():
    from edgesharp.edge.cli import build_parser

    args = build_parser("calibrate").parse_args(
        ["calibrate", "x.pt", "--out", "o", "--ignored-scope", "intro/conv2d/0", "type:Multiply",
         "--ignored-scope", "ending/conv2d/0"])
    assert args.ignored_scope == ["intro/conv2d/0", "type:Multiply", "ending/conv2d/0"]
