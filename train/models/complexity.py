"""Parameter and multiply-accumulate counts of a student network.

MACs are counted by forward hooks on every Conv2d and Linear (elementwise ops, norms and pooling are
not counted). "MACs per pixel" divides the total for one image by its pixel count at a reference
size; the per-image terms (the channel attention's 1x1 convolutions on pooled features) make this
depend very slightly on the size, hence the fixed reference.
"""

from __future__ import annotations

import torch
from torch import nn

REFERENCE_SIZE = 256


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    """MACs of one Conv2d call: output elements x (in_channels / groups) x kernel area."""
    kh, kw = module.kernel_size
    return out.numel() // out.shape[0] * (module.in_channels // module.groups) * kh * kw


def count_macs(model: nn.Module, height: int, width: int, channels: int = 3) -> int:
    """Total MACs of Conv2d and Linear layers for one image of height x width."""
    total = 0

    def hook(module: nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += conv_macs(module, out)
        else:
            total += out.numel() // out.shape[0] * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, height, width))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total


def macs_per_pixel(model: nn.Module, size: int = REFERENCE_SIZE) -> float:
    multiple = getattr(model, "size_multiple", 1)
    side = max(multiple, size // multiple * multiple)
    return count_macs(model, side, side) / (side * side)
