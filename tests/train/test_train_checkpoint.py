"""Checkpoint format: round trip, EMA choice, atomic writes, official weight files, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from edgesharp.train import checkpoint, models
from edgesharp.train.checkpoint import CheckpointError


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


def test_load_matching_refuses_a_file_of_which_nothing_fits(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"params": {"head.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(CheckpointError, match="other.pth: no tensor of this file fits nafnet-test"):
        checkpoint.load_matching(models.create("nafnet-test"), path)
    with pytest.raises(CheckpointError, match="missing.pth: weight file not found"):
        checkpoint.load_matching(models.create("nafnet-test"), tmp_path / "missing.pth")


def trained_checkpoint(path, ema_offset: float | None = 0.05):
    """A full checkpoint of nafnet-test after one optimizer step; EMA weights offset from the model's."""
    torch.manual_seed(0)
    model = models.create("nafnet-test", width=8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    opt.step()
    ema = None
    if ema_offset is not None:
        ema = models.create("nafnet-test", width=8)
        ema.load_state_dict(model.state_dict())
        with torch.no_grad():
            for p in ema.parameters():
                p.add_(torch.randn_like(p) * ema_offset)
    checkpoint.save_checkpoint(path, model, ema=ema, optimizer=opt, step=12, phase=1, config={"seed": 3},
                               metrics={"best_mean_ssim": 0.9})
    return model, ema


def test_slim_checkpoint_keeps_the_ema_weights_and_drops_the_resume_state(tmp_path):
    model, ema = trained_checkpoint(tmp_path / "last.pt")
    out = checkpoint.slim_checkpoint(tmp_path / "last.pt", tmp_path / "slim.pt")
    assert out == tmp_path / "slim.pt" and out.stat().st_size < (tmp_path / "last.pt").stat().st_size
    slim = checkpoint.read_checkpoint(out)
    assert slim["optimizer"] is None and slim["scheduler"] is None and slim["ema"] is None and "rng" not in slim
    assert (slim["arch"], slim["arch_config"]["width"], slim["step"], slim["phase"]) == ("nafnet-test", 8, 12, 1)
    assert slim["config"] == {"seed": 3} and slim["metrics"] == {"best_mean_ssim": 0.9}
    assert slim["slimmed"] == {"from": str(tmp_path / "last.pt"), "weights": "ema", "dtype": "float32"}
    assert slim["model"].keys() == ema.state_dict().keys()
    for key, value in ema.state_dict().items():
        assert torch.equal(slim["model"][key], value), key
    assert not all(torch.equal(slim["model"][k], v) for k, v in model.state_dict().items()), "EMA, not the model"
    loaded, info = checkpoint.load_student(out)
    assert info["step"] == 12
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ema.eval()(x))
    # without an EMA the model's weights are kept
    model, _ = trained_checkpoint(tmp_path / "plain.pt", ema_offset=None)
    slim = checkpoint.read_checkpoint(checkpoint.slim_checkpoint(tmp_path / "plain.pt", tmp_path / "plain-slim.pt"))
    assert slim["slimmed"]["weights"] == "model"
    assert all(torch.equal(slim["model"][k], v) for k, v in model.state_dict().items())


def test_half_slim_checkpoint_stores_float16_and_loads_back_as_float32(tmp_path):
    _, ema = trained_checkpoint(tmp_path / "last.pt")
    full = checkpoint.slim_checkpoint(tmp_path / "last.pt", tmp_path / "slim.pt")
    half = checkpoint.slim_checkpoint(tmp_path / "last.pt", tmp_path / "half.pt", half=True)
    slim = checkpoint.read_checkpoint(half)
    assert slim["slimmed"]["dtype"] == "float16"
    floats = {k: v for k, v in slim["model"].items() if v.is_floating_point()}
    assert floats and all(v.dtype == torch.float16 for v in floats.values())
    for key, value in ema.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(slim["model"][key].float(), value, rtol=1e-3, atol=1e-4)
    sizes = [p.stat().st_size for p in (tmp_path / "last.pt", full, half)]
    assert sizes[2] < sizes[1] < sizes[0]

    def weight_bytes(path):
        return sum(v.numel() * v.element_size() for v in checkpoint.read_checkpoint(path)["model"].values())

    assert weight_bytes(half) == weight_bytes(full) // 2  # nafnet-test holds float tensors only
    loaded, info = checkpoint.load_student(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        reference = ema.eval()(x)
        out = loaded(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference, rtol=0, atol=2e-3)


def test_train_slim_command(tmp_path, capsys):
    from edgesharp.train.__main__ import main as python_m_train

    trained_checkpoint(tmp_path / "last.pt")
    assert python_m_train(["slim", str(tmp_path / "last.pt"), "--out", str(tmp_path / "out" / "teacher.pt"), "--half"]) == 0
    assert f"wrote {tmp_path / 'out' / 'teacher.pt'} (" in capsys.readouterr().out
    assert checkpoint.read_checkpoint(tmp_path / "out" / "teacher.pt")["slimmed"]["dtype"] == "float16"
    assert python_m_train(["slim", str(tmp_path / "last.pt"), "--out", str(tmp_path / "f32.pt")]) == 0
    assert checkpoint.read_checkpoint(tmp_path / "f32.pt")["slimmed"]["dtype"] == "float32"
    assert python_m_train(["slim", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.pt")]) == 1
    assert "missing.pt: checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(SystemExit):
        python_m_train(["slim", str(tmp_path / "last.pt")])  # --out is required
