"""Every registry architecture: odd frame sizes through its size multiple, PyTorch = ONNX Runtime = OpenVINO
(FP32) after export, and the parameter and MAC counts the README and model card quote."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesharp.calibrate.untrained import perturb
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.train import models

# The counts `edgesharp train archs` reports and the docs quote; a change to an architecture must update them.
REPORTED = {
    "nafnet-tiny": (712_499, 47_544),
    "nafnet-tiny-seedcode": (2_699_923, 47_452),
    "nafnet-width32": (17_111_907, 243_436),
    "nafnet-w16-small": (319_475, 17_340),
    "nafnet-ps2-w16": (554_428, 8_334),
    "nafnet-w32-m6": (4_018_979, 141_648),
    "nafnet-ps4-w32": (2_176_144, 8_919),
    "nafnet-rt": (1_270_864, 5_708),
    "nafnet-rt-lite": (724_680, 3_561),
    "nafnet-rt-lite-rms": (727_176, 3_561),
    "nafnet-rt-ln": (1_274_192, 5_708),
    "nafnet-rt-s2": (291_308, 1_557),
    "nafnet-rt-s2-w12": (165_324, 2_518),
    "nafnet-rt-deep": (564_832, 2_732),
    "nafnet-rt-deeper": (753_536, 3_136),
    "nafnet-rt-fast": (521_184, 2_298),
    "nafnet-rt-wide-stem": (1_147_056, 4_894),
    "nafnet-rt-lite-rms-k5": (747_144, 3_747),
    "nafnet-rt-s2-lean": (321_380, 1_526),
    "nafnet-test": (5_227, 2_200),
}
PARITY_TOL = 1e-4


def perturbed(arch: str) -> torch.nn.Module:
    """A model whose blocks are not the identity (beta/gamma start at zero) and whose norms are not 1/0."""
    model = models.create(arch).eval()
    perturb(model, 0, scale=0.1, norms=True)
    return model


def test_every_architecture_has_reported_counts():
    assert set(REPORTED) == set(models.REGISTRY) | set(models.RESEARCH)


@pytest.mark.parametrize("arch", [*models.REGISTRY, *models.RESEARCH])
def test_reported_parameter_and_mac_counts(arch):
    d = models.describe(arch)
    params = sum(p.numel() for p in models.create(arch).parameters())
    assert (d["params"], round(d["macs_per_pixel"])) == REPORTED[arch]
    assert params == d["params"]


@pytest.mark.parametrize("arch", [*models.REGISTRY, *models.RESEARCH])
def test_odd_frame_sizes_round_trip_through_the_size_multiple(arch):
    model = perturbed(arch)
    m = model.size_multiple
    x = torch.rand(1, 3, 2 * m + 3, m + 5)
    padded, size = models.pad_to_multiple(x, m)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert padded.shape[-2] - x.shape[-2] < m and padded.shape[-1] - x.shape[-1] < m
    with torch.no_grad():
        y = models.unpad(model(padded), size)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("arch", [*models.REGISTRY, *models.RESEARCH])
def test_onnx_runtime_and_openvino_match_pytorch(arch, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    from edgesharp.calibrate.export import export_onnx
    from edgesharp.edge.backends import openvino_precision_config

    model = perturbed(arch)
    m = model.size_multiple
    path = export_onnx(model, tmp_path / f"{arch}.onnx", sample_hw=(2 * m, 2 * m))
    # a size other than the export sample: height and width must stay dynamic
    x = torch.rand(1, 3, 3 * m, 2 * m) if m >= 16 else torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        ref = model(x).numpy()
    (from_ort,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    compiled = shared_core().compile_model(str(path), "CPU", openvino_precision_config("fp32"))
    from_ov = compiled(x.numpy())[compiled.output(0)]
    assert from_ort.shape == from_ov.shape == ref.shape
    assert np.abs(from_ort - ref).max() <= PARITY_TOL
    assert np.abs(from_ov - ref).max() <= PARITY_TOL


def test_research_architectures_are_apart_and_still_build():
    assert not set(models.REGISTRY) & set(models.RESEARCH)
    assert {"nafnet-rt-s2", "nafnet-test"} <= set(models.REGISTRY) and "nafnet-rt-ln" in models.RESEARCH
    assert models.create("nafnet-rt-ln").arch == "nafnet-rt-ln"
    with pytest.raises(models.UnknownArch, match="or a study's: .*nafnet-rt-ln"):
        models.spec("nafnet-nope")
