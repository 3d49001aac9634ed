"""The inference form (train.models.export_form): the same function as the training form, without slices."""

from __future__ import annotations

import onnx
import pytest
import torch

from edgesharp.calibrate.export import export_onnx
from edgesharp.calibrate.untrained import perturb
from edgesharp.train import models
from edgesharp.train.models.complexity import count_macs, count_params
from edgesharp.train.models.export_form import _conv_slice, inference_form


def perturbed(arch: str, **overrides) -> torch.nn.Module:
    model = models.create(arch, **overrides).eval()
    perturb(model, 0, scale=0.3, norms=True)
    return model


@pytest.mark.parametrize("arch, overrides", [("nafnet-test", {}), ("nafnet-rt-ln", {}), ("nafnet-rt", {}),
                                             ("nafnet-test", {"norm": "batchnorm", "kernel_size": 5}),
                                             ("nafnet-rt-lite", {"norm": "batchnorm"}),
                                             ("nafnet-rt-lite", {"norm": "rmsnorm"})])
def test_inference_form_computes_the_same_function(arch, overrides):
    model = perturbed(arch, **overrides)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = inference_form(model)
    m = model.size_multiple
    x = torch.rand(1, 3, 3 * m, 5 * m, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, out = model(x), fused(x)
    assert (ref - x).abs().max() > 1e-2  # the blocks do something, so the comparison means something
    assert torch.allclose(out, ref, atol=2e-5), float((out - ref).abs().max())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the training model is untouched
    assert fused.size_multiple == model.size_multiple and fused.arch == model.arch


def test_inference_form_keeps_the_work_and_drops_only_the_residual_scales():
    model = perturbed("nafnet-rt-ln")
    fused = inference_form(model)
    assert count_macs(fused, 64, 96) == count_macs(model, 64, 96)
    scales = sum(p.numel() for n, p in model.named_parameters() if n.endswith(("beta", "gamma")))
    assert count_params(fused) == count_params(model) - scales


def test_batchnorm_is_folded_into_the_convolutions_after_it(tmp_path):
    model = perturbed("nafnet-rt-lite", norm="batchnorm")
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():  # running statistics far from (0, 1), as after training
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.5, generator=g)
            bn.running_var.uniform_(0.2, 3.0, generator=g)
    fused = inference_form(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(1, 3, 64, 96, generator=g)
    with torch.no_grad():
        assert torch.allclose(fused(x), model(x), atol=2e-5)
    assert "BatchNormalization" not in _op_types(export_onnx(model, tmp_path / "bn.onnx"))
    plain = models.create("nafnet-rt-lite")
    assert count_macs(fused, 64, 96) == count_macs(inference_form(plain), 64, 96)  # the same graph as no norm


def test_batchnorm_folds_only_into_a_dense_pointwise_convolution():
    from edgesharp.train.models.export_form import _conv_after_batchnorm

    with pytest.raises(ValueError, match="dense 1x1"):
        _conv_after_batchnorm(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4).eval())


def _op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_exported_graph_has_no_channel_slices(tmp_path):
    model = perturbed("nafnet-rt-ln")
    plain = _op_types(export_onnx(model, tmp_path / "plain.onnx", inference=False))
    fused = _op_types(export_onnx(model, tmp_path / "fused.onnx"))
    assert plain & {"Split", "Slice"}
    assert not fused & {"Split", "Slice"}


def test_a_grouped_convolution_that_is_not_depthwise_is_refused():
    conv = torch.nn.Conv2d(8, 8, 3, groups=2)
    with pytest.raises(ValueError, match="2 groups of 8 channels"):
        _conv_slice(conv, 0, 4)


@pytest.mark.parametrize("arch", ["nafnet-test", "nafnet-rt-ln"])  # no stem and a pixel-unshuffle x4 stem
def test_bgr_native_form_is_the_rgb_model_in_the_other_channel_order(arch):
    from edgesharp.train.models.export_form import bgr_native

    model = perturbed(arch)
    with torch.no_grad():
        model.intro.bias.add_(0.1)
        model.ending.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
    bgr = bgr_native(model)
    m = model.size_multiple
    x = torch.rand(1, 3, 2 * m, 3 * m, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x)
        out = bgr(x.flip(1)).flip(1)
        assert not torch.allclose(bgr(x), ref, atol=1e-3)  # the order matters, so the check means something
    assert torch.allclose(out, ref, atol=1e-5)


def test_bgr_native_form_needs_a_colour_stem():
    from edgesharp.train.models.export_form import bgr_native

    assert bgr_native(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1))) is None
