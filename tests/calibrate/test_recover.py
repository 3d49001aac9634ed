"""Rebuilding a student checkpoint from a bundle's ONNX file (calibrate.recover)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgesharp.calibrate.export import export_onnx
from edgesharp.calibrate.recover import RecoverError, main, state_dict_from_onnx
from edgesharp.calibrate.runners import ort_runner
from edgesharp.calibrate.untrained import perturb
from edgesharp.train import models
from edgesharp.train.checkpoint import load_student, read_checkpoint


@pytest.fixture
def layernorm_student():
    torch.manual_seed(3)
    model = models.create("nafnet-test").eval()
    perturb(model, 3, scale=0.3, norms=True)
    return model


def test_training_form_weights_come_back_exactly(layernorm_student, tmp_path):
    path = export_onnx(layernorm_student, tmp_path / "plain.onnx", inference=False)
    recovered = state_dict_from_onnx(path, models.create("nafnet-test"))
    for key, value in layernorm_student.state_dict().items():
        assert torch.equal(recovered[key], value), key


def test_inference_form_comes_back_as_the_same_function(layernorm_student, tmp_path):
    path = export_onnx(layernorm_student, tmp_path / "fused.onnx")
    model = models.create("nafnet-test").eval()
    model.load_state_dict(state_dict_from_onnx(path, model))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in layernorm_student.state_dict().items()
               if "norm" in k or k.startswith(("intro", "ending")))
    x = torch.rand(1, 3, 6, 10)
    with torch.no_grad():
        assert torch.allclose(model(x), layernorm_student(x), atol=1e-5)


def test_a_graph_of_another_architecture_is_refused(layernorm_student, tmp_path):
    path = export_onnx(layernorm_student, tmp_path / "m.onnx")
    with pytest.raises(RecoverError, match=r"m\.onnx: .*(no weights for|has \d+ values)"):
        state_dict_from_onnx(path, models.create("nafnet-w16-small"))


def test_bundle_to_checkpoint_to_the_same_outputs(tiny_bundle, tmp_path, capsys):
    assert main([str(tiny_bundle), str(tmp_path / "ckpt.pt")]) == 0
    assert "wrote" in capsys.readouterr().out
    model, info = load_student(tmp_path / "ckpt.pt")
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert info["arch"] == manifest["arch"] and info["step"] == manifest["recipe"]["step"]
    assert read_checkpoint(tmp_path / "ckpt.pt")["recovered_from"]["sha256"] == manifest["files"]["model.onnx"]["sha256"]
    x = np.random.default_rng(0).random((1, 3, 8, 12), dtype=np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    assert np.abs(ours - ort_runner(tiny_bundle / "model.onnx")(x)).max() < 1e-5


def test_a_folder_without_a_bundle_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "ckpt.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path) in err and err.count("\n") == 1
    assert not (tmp_path / "ckpt.pt").exists()
