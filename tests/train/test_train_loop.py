"""The distillation loop: exact resume, NaN stop, SIGINT, validation/best.pt, CLI runs with real teachers, DDP."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import make_image, tiny_config

from edgesharp.edge.cli import main as edgesharp
from edgesharp.train import checkpoint, loop
from edgesharp.train.loop import TrainingDiverged

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
from edgesharp.train import checkpoint, loop
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
    from edgesharp.train import teachers

    student = tmp_path / "teacher.pt"
    from edgesharp.train import models

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
    from edgesharp.train import models

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


def test_init_partial_loads_what_fits_a_pruned_and_grown_architecture(sharp_folder, tmp_path, caplog):
    from edgesharp.train import models

    src = models.create("nafnet-test")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_(0, 0.1)
    torch.save({"params": src.state_dict()}, tmp_path / "src.pth")
    # the decoder's block removed, a second middle block added
    cfg = folder_cfg(tmp_path / "run", sharp_folder, init_from=str(tmp_path / "src.pth"), init_partial=True,
                     arch_config={"dec_blk_nums": [0], "middle_blk_num": 2},
                     phases=[{"subsets": [1], "steps": 1, "lr": 1e-12, "warmup_steps": 0, "min_lr": 1e-12}])
    with caplog.at_level(logging.INFO, logger="edgesharp.train.loop"):
        loop.train(cfg)
    model, _ = checkpoint.load_student(tmp_path / "run" / "last.pt")
    own = model.state_dict()
    assert not any(k.startswith("decoders.0.0.") for k in own)
    for key, value in src.state_dict().items():
        if not key.startswith("decoders.0.0."):
            torch.testing.assert_close(own[key], value, rtol=0, atol=1e-6)
    # the new block starts as the identity: its residual scales are zero
    assert float(own["middle_blks.1.beta"].abs().max()) < 1e-6 and float(own["middle_blks.1.gamma"].abs().max()) < 1e-6
    line = next(r.getMessage() for r in caplog.records if "initialised" in r.getMessage())
    assert "18 of the file not used (decoders.0.0." in line and "18 new (middle_blks.1." in line
    # without init_partial the same file is refused, naming it
    strict = folder_cfg(tmp_path / "strict", sharp_folder, init_from=str(tmp_path / "src.pth"),
                        arch_config={"dec_blk_nums": [0], "middle_blk_num": 2})
    with pytest.raises(checkpoint.CheckpointError, match="src.pth: weights do not fit"):
        loop.train(strict)


def phases_of(*steps):
    from edgesharp.train.config import PhaseConfig

    return [PhaseConfig(name=f"p{i}", steps=s) for i, s in enumerate(steps)]


@pytest.mark.parametrize(("done", "seconds_left"), [(150, 100.0), (150, 900.0), (100, 100.0), (0, 60.0), (599, 1000.0)])
def test_fit_budget_scales_the_steps_still_to_run(done, seconds_left):
    from edgesharp.train.schedule import phase_at

    phases = phases_of(100, 200, 300)
    current, k = phase_at(phases, done)
    before = [p.steps for p in phases]
    factor = loop.fit_budget(phases, done, 0.5, seconds_left)
    after = [p.steps for p in phases]
    assert factor == pytest.approx(seconds_left / 0.5 / (600 - done))
    assert after[:current] == before[:current], "finished phases stay as they are"
    assert after[current] == k + max(1, round((before[current] - k) * factor)) and after[current] > k
    assert after[current + 1 :] == [max(1, round(s * factor)) for s in before[current + 1 :]]
    assert sum(after) == pytest.approx(done + seconds_left / 0.5, abs=len(phases))
    assert [p.name for p in phases] == ["p0", "p1", "p2"]


def test_ema_warms_up_so_a_short_run_does_not_keep_its_initial_weights():
    from edgesharp.train import models
    from edgesharp.train.schedule import EMA, ema_decay_at

    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 100) == pytest.approx(101 / 110)
    assert ema_decay_at(0.999, 20_000) == 0.999
    model = models.create("nafnet-test", width=4)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    warm, constant = EMA(model, 0.999), EMA(model, 0.999, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    for n in range(1200):
        warm.update(model, n)
        constant.update(model, n)
    warm_w = torch.cat([p.flatten() for p in warm.module.parameters()])
    constant_w = torch.cat([p.flatten() for p in constant.module.parameters()])
    assert torch.all(warm_w > 0.99), float(warm_w.min())
    # optim.ema_warmup=false: 0.999**1200 = 30 % of the starting weights remain
    assert torch.allclose(constant_w, torch.full_like(constant_w, 1 - 0.999**1200), atol=1e-4)


def test_fit_budget_without_time_left_ends_one_step_later():
    phases = phases_of(100, 200, 300)
    assert loop.fit_budget(phases, 150, 0.5, -20.0) == 0.0
    assert [p.steps for p in phases] == [100, 51, 1], "the current phase keeps its steps done and one more"
    phases = phases_of(10, 10)
    assert loop.fit_budget(phases, 5, 0.0, 50.0) > 1e6  # a zero rate does not divide by zero
    assert phases[0].steps > 1e6 and phases[1].steps > 1e6


def test_validator_reads_one_split_of_a_folder_at_the_downscale(tmp_path):
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.imaging.io import read_image, write_image
    from edgesharp.edge.imaging.splits import split_of
    from edgesharp.train import models

    names = [f"v{i}.png" for i in range(200)]
    val = [n for n in names if split_of(n) == "val"][:2]
    train = [n for n in names if split_of(n) == "train"][:3]
    for i, name in enumerate(val + train):
        write_image(tmp_path / "photos" / name, make_image(80, 96, i))

    def items(folder, **validation):
        cfg = tiny_config(tmp_path / "run", validation={"source": str(folder), "max_side": 512, **validation})
        return loop.Validator(cfg, 8).items

    got = items(tmp_path / "photos", split="val", downscale=2)
    assert sorted(name for name, _, _ in got) == sorted(n.removesuffix(".png") for n in val)
    for name, gt, blurred in got:
        assert gt.shape == (40, 48, 3)
        full = read_image(tmp_path / "photos" / f"{name}.png").astype(float)
        assert np.abs(gt - full.reshape(40, 2, 48, 2, 3).mean(axis=(1, 3))).max() <= 1
        assert set(blurred) == {"heavy", "medium", "low"} and all(b.shape == gt.shape for b in blurred.values())
    assert sorted(name for name, _, _ in items(tmp_path / "photos", split="train")) == sorted(n[:-4] for n in train)
    assert {gt.shape for _, gt, _ in items(tmp_path / "photos", split="train")} == {(80, 96, 3)}
    assert len(items(tmp_path / "photos")) == 5
    for name in val:
        (tmp_path / "photos" / name).unlink()
    with pytest.raises(EdgesharpError, match="validation.source: .*photos holds no images in its val split"):
        items(tmp_path / "photos", split="val")
    cfg = tiny_config(tmp_path / "run", validation={"source": str(tmp_path / "photos"), "split": "train", "downscale": 2})
    scores = loop.Validator(cfg, 8)(models.create("nafnet-test"), torch.device("cpu"))
    assert 0 < scores["mean_ssim"] <= 1


def test_time_budget_scales_the_phases_saves_them_and_resume_keeps_them(sharp_folder, tmp_path, monkeypatch):
    # 16 steps; the budget probe times steps 11-12 and the budget is spent by then: the current phase (1, 4
    # steps done) gets one more step, so the run ends at 13; a resumed run keeps the scaled phases
    calls = []
    real = loop.fit_budget

    def recording(phases, done, rate, left):
        calls.append((done, rate, left))
        return real(phases, done, rate, left)

    monkeypatch.setattr(loop, "fit_budget", recording)
    opts = {"time_budget_s": 1e-3, "budget_probe_steps": 2, "phases": [
        {"subsets": [1], "steps": 8, "lr": 1e-3, "warmup_steps": 1}, {"subsets": [3], "steps": 8, "lr": 5e-4}]}
    straight = loop.train(folder_cfg(tmp_path / "a", sharp_folder, **opts))
    assert straight.status == "done" and straight.step == 13 and len(straight.losses) == 13
    assert len(calls) == 1 and calls[0][0] == 12 and calls[0][1] > 0 and calls[0][2] < 0
    from edgesharp.train.config import load_config

    saved = load_config(tmp_path / "a" / "config.yaml")
    assert [p.steps for p in saved.phases] == [8, 5] and saved.time_budget_s == 1e-3
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 14))
    assert checkpoint.read_checkpoint(tmp_path / "a" / "last.pt")["step"] == 13

    first = loop.train(folder_cfg(tmp_path / "b", sharp_folder, **opts), stop_at_step=12)
    assert first.step == 12
    assert [p["steps"] for p in checkpoint.read_checkpoint(tmp_path / "b" / "last.pt")["config"]["phases"]] == [8, 5]
    second = loop.train(folder_cfg(tmp_path / "b", sharp_folder, **opts), resume=True)
    assert second.status == "done" and second.step == 13, "the resumed run ends where the budget put the end"
    assert first.losses + second.losses == straight.losses


def test_a_run_shorter_than_the_budget_probe_keeps_its_phases(sharp_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "fit_budget", lambda *a: pytest.fail("fit_budget must not run"))
    result = loop.train(folder_cfg(tmp_path / "a", sharp_folder, time_budget_s=1e-3, budget_probe_steps=60))
    assert result.step == 8  # the probe would end at step 70
    from edgesharp.train.config import load_config

    assert [p.steps for p in load_config(tmp_path / "a" / "config.yaml").phases] == [4, 4]
