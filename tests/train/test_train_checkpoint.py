"""Checkpoint format: round trip, EMA choice, atomic writes, official weight files, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from train import checkpoint, models
from train.checkpoint import CheckpointError


def test_round_trip_restores_weights_info_and_rng(tmp_path):
    torch.manual_seed(0)
    model = models.create("nafnet-test", width=4)
    ema = models.create("nafnet-test", width=4)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 8, 8)).mean().backward()
    opt.step()
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    path = checkpoint.save_checkpoint(tmp_path / "a" / "last.pt", model, ema=ema, optimizer=opt, step=7, phase=1,
                                      config={"x": [1, 2]}, metrics={"heavy": {"ssim": 0.5}})
    expected = (random.random(), np.random.rand(), torch.rand(1))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"], "no temporary file may remain"

    loaded, info = checkpoint.load_student(path)
    assert info["weights"] == "ema" and info["step"] == 7 and info["phase"] == 1
    assert info["arch"] == "nafnet-test" and info["arch_config"]["width"] == 4
    assert info["config"] == {"x": [1, 2]} and info["metrics"]["heavy"]["ssim"] == 0.5
    assert not loaded.training
    for a, b in zip(loaded.state_dict().values(), ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    raw, _ = checkpoint.load_student(path, use_ema=False)
    for a, b in zip(raw.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)

    ckpt = checkpoint.read_checkpoint(path)
    checkpoint.set_rng_state(ckpt["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    opt2 = torch.optim.AdamW(raw.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt["optimizer"])


def test_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: checkpoint not found"):
        checkpoint.load_student(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable torch checkpoint"):
        checkpoint.load_student(junk)
    official = tmp_path / "official.pth"
    torch.save({"params": models.create("nafnet-test").state_dict()}, official)
    with pytest.raises(CheckpointError, match="official.pth: expected format.*released weight file"):
        checkpoint.load_student(official)
    model = models.create("nafnet-test")
    unknown = tmp_path / "unknown.pt"
    ckpt = checkpoint.build_checkpoint(model)
    ckpt["arch"] = "resnet-9000"
    torch.save(ckpt, unknown)
    with pytest.raises(CheckpointError, match="unknown.pt: unknown architecture 'resnet-9000'"):
        checkpoint.load_student(unknown)
    wrong = tmp_path / "wrong.pt"
    ckpt = checkpoint.build_checkpoint(model)
    ckpt["arch_config"]["width"] = 4
    torch.save(ckpt, wrong)
    with pytest.raises(CheckpointError, match="wrong.pt: model weights do not fit nafnet-test"):
        checkpoint.load_student(wrong)


def test_load_weights_accepts_official_release_layout(tmp_path):
    src = models.create("nafnet-test")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    path = tmp_path / "NAFNet-test.pth"
    torch.save({"params": src.state_dict()}, path)
    dst = checkpoint.load_weights(models.create("nafnet-test"), path)
    for a, b in zip(dst.state_dict().values(), src.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match="weights do not fit nafnet-tiny"):
        checkpoint.load_weights(models.create("nafnet-tiny"), path)
