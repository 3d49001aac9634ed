"""Parameter and multiply-accumulate counts of a student network.

MACs are counted by forward hooks on every Conv2d and Linear (elementwise ops, norms and pooling are
not counted). A fully convolutional network costs MACs(H, W) = a * H * W + b, where b is the per-image
work on pooled features (the channel attention's 1x1 convolutions). "MACs per pixel" is the slope a,
found exactly from two small square inputs, so it does not depend on a reference size.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    """MACs of one Conv2d call: output elements x (in_channels / groups) x kernel area."""
    kh, kw = module.kernel_size
    return out.numel() // out.shape[0] * (module.in_channels // module.groups) * kh * kw


def count_macs(model: nn.Module, height: int, width: int, channels: int = 3) -> int:
    """Total MACs of Conv2d and Linear layers for one image of height x width.

    The network runs on a copy on the "meta" device: only shapes are propagated, nothing is computed.
    """
    total = 0

    def hook(module: nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += conv_macs(module, out)
        else:
            total += out.numel() // out.shape[0] * module.in_features

    meta = copy.deepcopy(model).to("meta").eval()
    for m in meta.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        meta(torch.zeros(1, channels, height, width, device="meta"))
    return total


def macs_per_pixel(model: nn.Module) -> float:
    """Multiply-accumulates per input pixel (the per-image constant excluded)."""
    s = max(8, getattr(model, "size_multiple", 1))
    small, large = count_macs(model, s, s), count_macs(model, 2 * s, 2 * s)
    return (large - small) / (3 * s * s)
