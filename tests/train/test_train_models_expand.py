"""Expanded (factorised) convolutions: same function after collapsing, plain layout, training and loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgesharp.train import checkpoint, models
from edgesharp.train.models.expand import ExpandedConv2d, collapse, expanded


def _perturb_residual_scales(model: nn.Module) -> None:
    """NAFNet zero-initialises beta/gamma (blocks start as the identity); give them values so blocks count."""
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.normal_(0, 0.5)


@pytest.mark.parametrize(("k", "stride", "padding", "bias"), [(1, 1, 0, True), (3, 1, 1, True), (2, 2, 0, True), (1, 1, 0, False)])
def test_expanded_conv_equals_its_collapsed_conv(k, stride, padding, bias):
    torch.manual_seed(0)
    conv = expanded(nn.Conv2d(6, 5, k, stride, padding, bias=bias), ratio=3)
    assert isinstance(conv, ExpandedConv2d) and conv.a.shape == (18, 6, k, k) and conv.b.shape == (5, 18)
    x = torch.rand(2, 6, 12, 10)
    plain = conv.collapsed()
    assert type(plain) is nn.Conv2d and (plain.bias is None) == (not bias)
    torch.testing.assert_close(conv(x), plain(x), atol=1e-5, rtol=1e-5)


def test_initial_weights_have_the_plain_convolutions_scale():
    torch.manual_seed(0)
    conv = expanded(nn.Conv2d(64, 64, 3, padding=1), ratio=4)
    plain = nn.Conv2d(64, 64, 3, padding=1)
    ratio = conv.weight.detach().std() / plain.weight.detach().std()
    assert 0.8 < ratio < 1.25, ratio


def test_depthwise_convolutions_stay_plain_and_bad_ratios_are_refused():
    dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert expanded(dw, 4) is dw
    dense = nn.Conv2d(8, 8, 1)
    assert expanded(dense, 0) is dense
    with pytest.raises(ValueError, match="expansion ratio must be >= 1, got -1"):
        ExpandedConv2d(8, 8, 1, ratio=-1)
    with pytest.raises(ValueError, match="expand must be >= 0"):
        models.create("nafnet-test", expand=-2)


@pytest.mark.parametrize("arch", ["nafnet-test", "nafnet-rt-s2"])
def test_collapsed_network_is_the_plain_architecture_and_the_same_function(arch):
    torch.manual_seed(0)
    model = models.create(arch, expand=2).eval()
    _perturb_residual_scales(model)
    plain = collapse(model)
    assert plain.arch_config == models.full_config(arch) and model.arch_config["expand"] == 2
    assert not any(isinstance(m, ExpandedConv2d) for m in plain.modules())
    reference = models.create(arch)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert models.count_params(plain) == models.count_params(reference) < models.count_params(model)
    m = model.size_multiple
    x = torch.rand(1, 3, 2 * m, 3 * m)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), atol=2e-5, rtol=1e-4)
    assert collapse(reference) is reference


def test_expanded_student_trains_and_loads_collapsed(tmp_path):
    torch.manual_seed(0)
    model = models.create("nafnet-test", width=4, expand=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    first = None
    for _ in range(5):
        loss = (model(x) - y).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    path = checkpoint.save_checkpoint(tmp_path / "last.pt", model, step=5)
    loaded, info = checkpoint.load_student(path)
    assert info["arch_config"]["expand"] == 0 and loaded.arch_config["expand"] == 0
    assert checkpoint.read_checkpoint(path)["arch_config"]["expand"] == 2, "the checkpoint keeps the factors to resume"
    assert not any(isinstance(m, ExpandedConv2d) for m in loaded.modules())
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), atol=1e-5, rtol=1e-4)
