"""Linear over-parameterisation for training (ExpandNets, Guo et al., NeurIPS 2020).

A dense convolution W (out x in x k x k) is trained as the product of two factors: a k x k convolution
into `hidden` channels, then a 1x1 convolution back to `out`; there is no nonlinearity between them, so
the product is again one k x k convolution. The function class is unchanged; what changes is the
optimisation (gradient descent on a product of matrices), which helps compact networks train.

`ExpandedConv2d` composes its weight on every forward, so a training step costs the plain network's
convolutions plus the (small) weight products. `collapse(model)` replaces every `ExpandedConv2d` with
the `nn.Conv2d` it equals; the collapsed model is the registry architecture without expansion, so
export, calibration and the runtime never see the factors.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


class ExpandedConv2d(nn.Module):
    """A dense `nn.Conv2d` stored as a k x k factor `a` (hidden x in) and a 1x1 factor `b` (out x hidden)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, ratio: int = 4):
        super().__init__()
        if ratio < 1:
            raise ValueError(f"expansion ratio must be >= 1, got {ratio}")
        hidden = ratio * max(in_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kernel_size, kernel_size), (stride, stride), (padding, padding)
        self.a = nn.Parameter(torch.empty(hidden, in_channels, kernel_size, kernel_size))
        self.b = nn.Parameter(torch.empty(out_channels, hidden))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The product starts with the variance of nn.Conv2d's default init, 1 / (3 fan_in).
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        hidden = self.a.shape[0]
        nn.init.uniform_(self.a, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.uniform_(self.b, -math.sqrt(3 / hidden), math.sqrt(3 / hidden))
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    @property
    def weight(self) -> torch.Tensor:
        return torch.einsum("oh,hikl->oikl", self.b, self.a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def collapsed(self) -> nn.Conv2d:
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, hidden={self.a.shape[0]}")


def expanded(conv: nn.Conv2d, ratio: int) -> nn.Module:
    """The expanded form of a freshly built dense convolution (depthwise and grouped ones stay as they are)."""
    if ratio <= 0 or conv.groups != 1:
        return conv
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if conv.kernel_size != (k, k) or conv.stride != (s, s) or conv.padding != (p, p) or conv.dilation != (1, 1):
        raise ValueError(f"can expand only square, undilated convolutions, not {conv}")
    return ExpandedConv2d(conv.in_channels, conv.out_channels, k, s, p, bias=conv.bias is not None, ratio=ratio)


def expand_convs(module: nn.Module, ratio: int) -> None:
    """Replace every dense `nn.Conv2d` under `module` (in place) with its `ExpandedConv2d`."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, expanded(child, ratio))
        else:
            expand_convs(child, ratio)


def collapse(model: nn.Module) -> nn.Module:
    """A copy of `model` with every `ExpandedConv2d` multiplied out into an `nn.Conv2d` (the same function);
    `arch_config["expand"]` becomes 0. A model without expansion comes back as it is."""
    if not any(isinstance(m, ExpandedConv2d) for m in model.modules()):
        return model
    out = copy.deepcopy(model)

    def rewrite(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, ExpandedConv2d):
                setattr(parent, name, child.collapsed())
            else:
                rewrite(child)

    rewrite(out)
    if isinstance(getattr(out, "arch_config", None), dict):
        out.arch_config = {**out.arch_config, "expand": 0}
    return out
