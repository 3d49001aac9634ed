"""The distillation loop: exact resume, NaN stop, SIGINT, validation/best.pt, CLI runs with real teachers, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config

from edge.cli import main as edgesharp
from train import checkpoint, loop
from train.loop import TrainingDiverged

REPO = Path(__file__).resolve().parents[2]


def folder_cfg(out, sharp_folder, **kw):
    return tiny_config(out, data={"sources": [{"kind": "folder", "path": str(sharp_folder)}]}, **kw)


def test_resume_repeats_the_uninterrupted_run_exactly(sharp_folder, tmp_path):
    # 8 steps over two phases and two epochs (6 images, batch 2: 3 batches per epoch), EMA on
    opts = {"optim": {"ema_decay": 0.5}}
    straight = loop.train(folder_cfg(tmp_path / "a", sharp_folder, **opts))
    assert straight.status == "done" and len(straight.losses) == 8
    first = loop.train(folder_cfg(tmp_path / "b", sharp_folder, **opts), stop_at_step=4)
    assert first.step == 4 and checkpoint.read_checkpoint(tmp_path / "b" / "last.pt")["step"] == 4
    second = loop.train(folder_cfg(tmp_path / "b", sharp_folder, **opts), resume=True)
    assert first.losses + second.losses == straight.losses
    a = checkpoint.read_checkpoint(tmp_path / "a" / "last.pt")
    b = checkpoint.read_checkpoint(tmp_path / "b" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    assert len(set(straight.losses)) > 4, "losses must actually change from step to step"


def test_lr_scale_multiplies_the_schedule_and_an_expanded_student_trains(sharp_folder, tmp_path):
    def lrs(out):
        return [json.loads(line)["lr"] for line in (out / "log.jsonl").read_text().splitlines()]

    loop.train(folder_cfg(tmp_path / "plain", sharp_folder), stop_at_step=5)
    loop.train(folder_cfg(tmp_path / "scaled", sharp_folder, optim={"lr_scale": 3.0}, arch_config={"expand": 2}),
               stop_at_step=5)
    assert lrs(tmp_path / "scaled") == pytest.approx([3 * lr for lr in lrs(tmp_path / "plain")])
    saved = checkpoint.read_checkpoint(tmp_path / "scaled" / "last.pt")
    assert saved["arch_config"]["expand"] == 2 and any(k.endswith(".a") for k in saved["model"])
    model, info = checkpoint.load_student(tmp_path / "scaled" / "last.pt")
    assert info["arch_config"]["expand"] == 0 and all(not k.endswith((".a", ".b")) for k in model.state_dict())


def test_existing_run_needs_resume(sharp_folder, tmp_path):
    loop.train(folder_cfg(tmp_path / "a", sharp_folder), stop_at_step=1)
    with pytest.raises(Exception, match="last.pt exists: pass --resume"):
        loop.train(folder_cfg(tmp_path / "a", sharp_folder))


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(sharp_folder, tmp_path, monkeypatch):
    real = loop.distillation_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 6 else loss), parts

    monkeypatch.setattr(loop, "distillation_loss", poisoned)
    cfg = folder_cfg(tmp_path / "run", sharp_folder, save_every=2)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss \(nan\) at step 6; last good checkpoint: .*last.pt \(step 4\)"):
        loop.train(cfg)
    ckpt = checkpoint.read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_sigint_saves_and_returns(sharp_folder, tmp_path):
    # In a fresh interpreter and session, so the SIGINT reaches nothing but the training. (In-process it once
    # crashed pytest: OpenVINO Cores released out of order had left an unmapped alternate signal stack behind;
    # see edge.backends.openvino_core and test_backends.)
    run = tmp_path / "run"
    code = f"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_train_loop import folder_cfg
from train import checkpoint, loop
real, calls = loop.distillation_loss, [0]
def interrupting(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)
loop.distillation_loss = interrupting
before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs as a background job
result = loop.train(folder_cfg(Path({str(run)!r}), Path({str(sharp_folder)!r})))
assert result.status == "interrupted" and result.step == 3, (result.status, result.step)
assert checkpoint.read_checkpoint(Path({str(run)!r}) / "last.pt")["step"] == 3
assert signal.getsignal(signal.SIGINT) is before
print("interrupted at 3")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, start_new_session=True)
    assert proc.returncode == 0 and "interrupted at 3" in proc.stdout, proc.stderr[-3000:]


def test_validation_keeps_best_and_writes_log_and_curves(sharp_folder, tmp_path):
    cfg = folder_cfg(tmp_path / "run", sharp_folder, validation={"source": str(sharp_folder), "every": 4,
                                                                  "max_images": 2, "max_side": 32})
    result = loop.train(cfg)
    out = tmp_path / "run"
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val" in r]
    assert [r["step"] for r in vals] == [4, 8]
    assert set(vals[0]["val"]) == {"heavy", "medium", "low", "mean_ssim"}
    best = max(vals, key=lambda r: r["val"]["mean_ssim"])
    assert result.best_ssim == pytest.approx(best["val"]["mean_ssim"])
    assert checkpoint.read_checkpoint(out / "best.pt")["step"] == best["step"]
    model, info = checkpoint.load_student(out / "best.pt")
    assert info["metrics"]["best_mean_ssim"] == pytest.approx(result.best_ssim)
    assert (out / "curves.png").stat().st_size > 1000 and (out / "config.yaml").is_file()
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))


def test_edgesharp_train_distils_from_an_official_format_restormer(sharp_folder, tmp_path, capsys):
    from spandrel_extra_arches.architectures.Restormer import Restormer

    torch.manual_seed(0)
    restormer = Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])
    weights = tmp_path / "restormer.pth"
    torch.save({"params": restormer.state_dict()}, weights)
    config = tmp_path / "kd.yaml"
    config.write_text(f"""
arch: nafnet-test
out_dir: {tmp_path / 'run'}
progress: false
data: {{sources: [{{kind: folder, path: {sharp_folder}}}], crop: 32, batch_size: 2, workers: 0}}
teacher: {{kind: spandrel, path: {weights}, tile: 0}}
phases:
  - {{subsets: [1], alpha: 0.7, steps: 2, lr: 0.001, warmup_steps: 1}}
  - {{subsets: [3, 5], alpha: 0.5, steps: 2, lr: 0.0005}}
log_every: 1
""")
    assert edgesharp(["train", str(config), "--set", "optim.ema_decay=0.9"]) == 0
    assert "done at step 4" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all("loss_teacher" in r for r in records)
    r = records[-1]
    assert r["loss"] == pytest.approx(0.5 * r["loss_gt"] + 0.5 * r["loss_teacher"], rel=1e-5)
    model, info = checkpoint.load_student(tmp_path / "run" / "last.pt")
    assert info["weights"] == "ema" and info["config"]["teacher"]["kind"] == "spandrel"


def test_training_from_a_cached_teacher_folder(gopro_root, tmp_path):
    from train import teachers

    student = tmp_path / "teacher.pt"
    from train import models

    checkpoint.save_checkpoint(student, models.create("nafnet-test", width=4))
    assert edgesharp(["train", "cache-teacher", "--teacher", str(student), "--inputs", str(gopro_root),
                      "--out", str(tmp_path / "cache")]) == 0
    assert len(list((tmp_path / "cache").glob("*.png"))) == 6
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "gopro", "path": str(gopro_root)}]},
                      teacher={"kind": "cache", "path": str(tmp_path / "cache")},
                      phases=[{"steps": 3, "alpha": 0.5, "subsets": [3]}])
    result = loop.train(cfg)
    assert result.status == "done" and result.step == 3
    assert isinstance(teachers.build_teacher(cfg.teacher), teachers.CachedTeacher)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert edgesharp(["train", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: config file not found" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("arch: nafnet-test\n")
    assert edgesharp(["train", str(cfg), "--set", "optim.lr=1"]) == 1
    assert "unknown config key 'optim.lr'" in capsys.readouterr().err


def test_ddp_two_gloo_processes_train_and_rank0_writes(sharp_folder, tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(f"""
arch: nafnet-test
out_dir: {tmp_path / 'run'}
device: cpu
progress: false
data: {{sources: [{{kind: folder, path: {sharp_folder}}}], crop: 32, batch_size: 1, workers: 0}}
phases: [{{subsets: [1], steps: 3, lr: 0.001, warmup_steps: 1}}]
log_every: 1
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "train", "-q", str(config)]
    # own process group, so a hang kills the workers too instead of leaving them orphaned
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun with 2 gloo processes did not finish in 120 s")
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("done at step 3") == 1, "only rank 0 reports"
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3], "only rank 0 logs"
    ckpt = checkpoint.read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 3


def test_init_from_an_official_release_file(sharp_folder, tmp_path):
    from train import models

    src = models.create("nafnet-test")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_(0, 0.1)
    release = tmp_path / "NAFNet-test.pth"
    torch.save({"params": src.state_dict()}, release)
    cfg = folder_cfg(tmp_path / "run", sharp_folder, init_from=str(release),
                     phases=[{"subsets": [1], "steps": 1, "lr": 1e-12, "warmup_steps": 0, "min_lr": 1e-12}])
    loop.train(cfg)
    model, _ = checkpoint.load_student(tmp_path / "run" / "last.pt")
    for key, value in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=1e-6)
