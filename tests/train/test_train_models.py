"""Student registry: parameter and MAC counts, forward shapes, official NAFNet key compatibility."""

from __future__ import annotations

import pytest
import torch

from edgesharp.edge.errors import EdgesharpError
from edgesharp.train import models
from edgesharp.train.models.complexity import count_macs


def block_params(c: int) -> int:
    # conv1 c->2c, dw 3x3 on 2c, conv3 c->c, sca c->c, conv4 c->2c, conv5 c->c (all with bias),
    # two LayerNorm2d (2c each), beta and gamma (c each)
    return (2 * c * c + 2 * c) + (2 * c * 9 + 2 * c) + (c * c + c) * 3 + (2 * c * c + 2 * c) + 4 * c + 2 * c


def block_macs(c: int, pixels: int) -> int:
    return pixels * (2 * c * c + 2 * c * 9 + c * c + 2 * c * c + c * c) + c * c  # sca runs on one pixel


def test_tiny_config_counts_match_a_hand_computation():
    model = models.create("nafnet-test")  # width 8, [1] / 1 / [1]
    c, s = 8, 32
    params = (8 * 3 * 9 + 8) + (3 * 8 * 9 + 3) + (16 * 8 * 4 + 16) + 16 * 32 + block_params(8) * 2 + block_params(16)
    assert models.count_params(model) == params
    full, half = s * s, (s // 2) ** 2
    macs = (
        full * 3 * 9 * c  # intro
        + full * c * 9 * 3  # ending
        + half * 2 * c * c * 4  # down 2x2 stride 2
        + half * 2 * c * 4 * c  # up 1x1 16 -> 32 at half resolution
        + block_macs(c, full) * 2
        + block_macs(2 * c, half)
    )
    assert count_macs(model, s, s) == macs


def test_registry_matches_the_documented_sizes():
    tiny = models.describe("nafnet-tiny")
    assert 0.69e6 < tiny["params"] < 0.73e6  # the seed's "~0.7M"
    assert tiny["size_multiple"] == 8
    seedcode = models.describe("nafnet-tiny-seedcode")
    assert 2.6e6 < seedcode["params"] < 2.8e6
    ps2, ps4 = models.describe("nafnet-ps2-w16"), models.describe("nafnet-ps4-w32")
    assert (ps2["size_multiple"], ps4["size_multiple"]) == (16, 32)
    # the pixel-unshuffle students do a fraction of the seed student's work per pixel (DESIGN.md leads)
    assert ps2["macs_per_pixel"] < tiny["macs_per_pixel"] / 5
    assert ps4["macs_per_pixel"] < tiny["macs_per_pixel"] / 5


@pytest.mark.parametrize("arch", [a for a in models.REGISTRY if a != "nafnet-width32"])
def test_forward_keeps_shape_at_multiples_of_size_multiple(arch):
    torch.manual_seed(0)
    model = models.create(arch).eval()
    m = model.size_multiple
    assert model.arch == arch and model.arch_config == models.full_config(arch)
    x = torch.rand(1, 3, 2 * m, 3 * m)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    # zero-initialised beta/gamma make every block the identity at start; the output differs from
    # the input only through intro/ending/up/down. After perturbing them the output must change.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.1)
        assert not torch.allclose(model(x), y)


def test_padding_helpers_round_trip_odd_sizes():
    model = models.create("nafnet-ps2-w16").eval()
    x = torch.rand(1, 3, 37, 51)
    padded, size = models.pad_to_multiple(x, model.size_multiple)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    with torch.no_grad():
        y = models.unpad(model(padded), size)
    assert y.shape == x.shape


def test_official_nafnet_state_dict_loads_and_matches_outputs():
    """spandrel ships the official NAFNet class verbatim: its keys and outputs must equal ours."""
    from spandrel.architectures.NAFNet import NAFNet as OfficialNAFNet

    torch.manual_seed(1)
    official = OfficialNAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]).eval()
    with torch.no_grad():
        for name, p in official.named_parameters():
            if name.endswith(("beta", "gamma")) or "norm" in name:
                p.normal_(0, 0.5)
    ours = models.create("nafnet-test").eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-5)


def test_official_width32_layout_has_our_key_names_and_shapes():
    from spandrel.architectures.NAFNet import NAFNet as OfficialNAFNet

    official = OfficialNAFNet(img_channel=3, width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])
    ours = models.create("nafnet-width32")
    theirs = {k: v.shape for k, v in official.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == theirs


def test_unknown_arch_and_unknown_override_name_the_problem():
    with pytest.raises(EdgesharpError, match="unknown architecture 'nafnet-huge'.*nafnet-tiny"):
        models.create("nafnet-huge")
    with pytest.raises(EdgesharpError, match="unknown config key.*widht"):
        models.create("nafnet-test", widht=4)
    model = models.create("nafnet-test", width=4, kernel_size=5, norm="none")
    assert model.arch_config["width"] == 4 and model.arch_config["kernel_size"] == 5


def test_models_trace_to_onnx_without_python_branches(tmp_path):
    pytest.importorskip("onnx")
    model = models.create("nafnet-ps2-w16").eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model, (torch.rand(1, 3, 32, 32),), str(path), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "h", 3: "w"}}, dynamo=False,
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 48, 64)
    (y,) = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), model(x), rtol=1e-4, atol=1e-4)


def test_macs_per_pixel_is_the_per_pixel_slope():
    model = models.create("nafnet-test")
    per_image = 8 * 8 * 2 + 16 * 16  # channel attention 1x1 convolutions of the two width-8 blocks and the middle one
    for side in (16, 64):
        assert count_macs(model, side, side) == pytest.approx(models.macs_per_pixel(model) * side * side + per_image)


def test_edgesharp_train_archs_lists_the_registry(capsys):
    from edgesharp.edge.cli import main as edgesharp

    assert edgesharp(["train", "archs"]) == 0
    out = capsys.readouterr().out
    for name in models.REGISTRY:
        assert name in out
    tiny_row = next(line for line in out.splitlines() if line.startswith("nafnet-tiny "))
    assert f"{models.count_params(models.create('nafnet-tiny')):,}" in tiny_row


def test_rmsnorm_gives_unit_rms_per_pixel_and_ignores_contrast():
    from edgesharp.train.models.nafnet import RMSNorm2d

    norm = RMSNorm2d(6).eval()
    x = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(0)) + 0.5
    with torch.no_grad():
        y = norm(x)
        assert torch.allclose(y.pow(2).mean(1), torch.ones(2, 5, 7), atol=1e-4)
        assert torch.allclose(norm(3.0 * x), y, atol=1e-5)  # a contrast change does not reach the block
        assert not torch.allclose(y.mean(1), torch.zeros(2, 5, 7), atol=1e-2)  # not centred, unlike LayerNorm
    assert models.describe("nafnet-rt-lite", norm="rmsnorm")["params"] == models.describe("nafnet-rt-lite", norm="layernorm")["params"]
