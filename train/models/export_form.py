"""The inference form of a student: the same function, rearranged for OpenVINO and ONNX Runtime on a CPU.

`inference_form(model)` returns a copy in which every NAFBlock is rewritten exactly (up to float
rounding):

- SimpleGate's channel split becomes two convolutions: the 1x1 and depthwise convolutions in front
  of a gate are cut into the halves that the gate multiplies, so no tensor is sliced at run time
  (a slice is a full memory copy in OpenVINO's blocked layouts);
- the residual scales `beta` and `gamma` are folded into the 1x1 convolutions before them;
- an eval-mode BatchNorm in front of a block's 1x1 convolutions is folded into them (its running
  statistics and affine become their weights and biases), so a BatchNorm student costs no more at
  inference than one without normalisation.

Training keeps the official NAFNet layout (its checkpoints load unchanged); `edgesharp.calibrate.export` exports
this form. Other modules are left as they are. `bgr_native(model)` reverses the colour order of the
first and last convolutions, for the OpenVINO IR that OpenCV's BGR frames go through.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgesharp.train.models.nafnet import NAFBlock


def _conv_slice(conv: nn.Conv2d, lo: int, hi: int) -> nn.Conv2d:
    """Output channels lo:hi of `conv` as a convolution of its own (depthwise stays depthwise)."""
    depthwise = conv.groups > 1
    if depthwise and conv.groups != conv.out_channels:
        raise ValueError(f"cannot slice a grouped convolution with {conv.groups} groups of {conv.out_channels} channels")
    out = nn.Conv2d(hi - lo if depthwise else conv.in_channels, hi - lo, conv.kernel_size, conv.stride, conv.padding,
                    groups=hi - lo if depthwise else 1, bias=conv.bias is not None)
    out.weight.data.copy_(conv.weight.data[lo:hi])
    if conv.bias is not None:
        out.bias.data.copy_(conv.bias.data[lo:hi])
    return out


def _conv_scaled(conv: nn.Conv2d, scale: torch.Tensor) -> nn.Conv2d:
    """`conv` followed by a per-output-channel scale, as one convolution."""
    out = copy.deepcopy(conv)
    s = scale.detach().reshape(-1)
    out.weight.data.mul_(s.view(-1, 1, 1, 1))
    if out.bias is not None:
        out.bias.data.mul_(s)
    return out


def _conv_after_batchnorm(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """`conv(bn(x))` as one convolution, for a 1x1 `conv` (padding would see the shift) and an eval BatchNorm."""
    if not isinstance(bn, nn.BatchNorm2d):
        return conv
    if conv.kernel_size != (1, 1) or conv.groups != 1:
        raise ValueError(f"can fold a BatchNorm only into a dense 1x1 convolution, not {conv}")
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias.detach() if bn.affine else 0) - bn.running_mean * scale
    out = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True)
    w = conv.weight.detach()[:, :, 0, 0]
    out.weight.data.copy_((w * scale.view(1, -1)).view_as(conv.weight))
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    out.bias.data.copy_(bias + w @ shift)
    return out


class GateSplitNAFBlock(nn.Module):
    """A NAFBlock with its gates computed by split convolutions and beta/gamma folded in."""

    def __init__(self, block: NAFBlock):
        super().__init__()
        dw, ffn = block.conv1.out_channels, block.conv4.out_channels
        self.norm1, self.norm2, self.sca = copy.deepcopy(block.norm1), copy.deepcopy(block.norm2), copy.deepcopy(block.sca)
        self.conv1a, self.conv1b = _conv_slice(block.conv1, 0, dw // 2), _conv_slice(block.conv1, dw // 2, dw)
        self.conv2a, self.conv2b = _conv_slice(block.conv2, 0, dw // 2), _conv_slice(block.conv2, dw // 2, dw)
        self.conv3 = _conv_scaled(block.conv3, block.beta)
        self.conv4a, self.conv4b = _conv_slice(block.conv4, 0, ffn // 2), _conv_slice(block.conv4, ffn // 2, ffn)
        self.conv5 = _conv_scaled(block.conv5, block.gamma)
        for norm, convs in (("norm1", ("conv1a", "conv1b")), ("norm2", ("conv4a", "conv4b"))):
            if isinstance(getattr(self, norm), nn.BatchNorm2d):
                for conv in convs:
                    setattr(self, conv, _conv_after_batchnorm(getattr(self, conv), getattr(self, norm)))
                setattr(self, norm, nn.Identity())

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        x = self.conv2a(self.conv1a(x)) * self.conv2b(self.conv1b(x))
        y = inp + self.conv3(x * self.sca(x))
        x = self.norm2(y)
        return y + self.conv5(self.conv4a(x) * self.conv4b(x))


def inference_form(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every NAFBlock replaced by its GateSplitNAFBlock."""
    out = copy.deepcopy(model).eval()

    def rewrite(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, NAFBlock):
                setattr(parent, name, GateSplitNAFBlock(child))
            else:
                rewrite(child)

    if isinstance(out, NAFBlock):
        return GateSplitNAFBlock(out).eval()
    rewrite(out)
    return out


def bgr_native(model: nn.Module) -> nn.Module | None:
    """A copy of a NAFNet-family `model` that takes and returns BGR instead of RGB: the colour order of the
    first convolution's input channels and of the last one's outputs reversed (exact), so a runtime fed
    OpenCV's BGR frames needs no channel swap. None for a model without that stem (`intro`/`ending`)."""
    intro, ending = getattr(model, "intro", None), getattr(model, "ending", None)
    if not (isinstance(intro, nn.Conv2d) and isinstance(ending, nn.Conv2d)) or intro.in_channels % 3:
        return None
    out = copy.deepcopy(model).eval()
    per_colour = intro.in_channels // 3  # pixel-unshuffle keeps each colour's s*s sub-pixels together
    w = out.intro.weight.data
    out.intro.weight.data = w.view(w.shape[0], 3, per_colour, *w.shape[2:]).flip(1).reshape(w.shape).contiguous()
    w = out.ending.weight.data
    out.ending.weight.data = w.view(3, per_colour, *w.shape[1:]).flip(0).reshape(w.shape).contiguous()
    if out.ending.bias is not None:
        out.ending.bias.data = out.ending.bias.data.view(3, per_colour).flip(0).reshape(-1).contiguous()
    return out
