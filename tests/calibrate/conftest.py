"""Fixtures for calibrate tests: a tiny student, a folder of small synthetic images, one shared tiny bundle."""

from __future__ import annotations

import pytest

from edgesharp.calibrate.untrained import build_tiny_bundle, perturb, synthetic_images, write_images


@pytest.fixture(scope="session")
def tiny_model():
    """nafnet-test (width 8) with non-zero residual scales, so that quantization visibly changes it."""
    import torch

    from edgesharp.train import models

    torch.manual_seed(0)
    model = models.create("nafnet-test")
    perturb(model, 0)
    return model.eval()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"), synthetic_images(3, 64, 80))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """One bundle built end to end with NNCF accuracy control (open guard), shared by read-only tests."""
    return build_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny", accuracy_control=True)


@pytest.fixture(scope="session")
def float_ir(tiny_model, tmp_path_factory):
    """(onnx path, float OpenVINO model) of the tiny student."""
    from edgesharp.calibrate.convert import convert_onnx
    from edgesharp.calibrate.export import export_onnx

    path = export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return path, convert_onnx(path)

