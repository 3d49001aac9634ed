"""NAFNet (Chen et al., 2022) written for export: plain tensor ops, no custom autograd, no padding.

Parameter names follow the official implementation (megvii-research/NAFNet `NAFNet_arch.py`), so an
official checkpoint (`{"params": state_dict}`) loads into the matching configuration. Additions for
CPU students keep those names and add none with parameters: a pixel-unshuffle stem (`shuffle`),
the depthwise kernel size, the expansion ratios and the normalisation kind. `expand` > 0 trains every
dense convolution as a product of two factors (`edgesharp.train.models.expand`; `collapse` multiplies them out
into this layout).

The forward pass has no shape-dependent Python branches: H and W must be multiples of
`size_multiple`; callers pad (see `edgesharp.train.models.pad_to_multiple`).
"""

from __future__ import annotations

import torch
from torch import nn

from edgesharp.train.models.expand import expand_convs

NORMS = ("layernorm", "rmsnorm", "batchnorm", "none")


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of NCHW tensors (official NAFNet's, as plain ops)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        centred = x - mu
        var = centred.pow(2).mean(1, keepdim=True)
        y = centred / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class RMSNorm2d(LayerNorm2d):
    """Root-mean-square normalisation over the channel axis: LayerNorm without the centring, so one channel
    reduction per call instead of two (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "layernorm":
        return LayerNorm2d(channels)
    if kind == "rmsnorm":
        return RMSNorm2d(channels)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class NAFBlock(nn.Module):
    """NAFNet's block: norm, 1x1, depthwise kxk, SimpleGate, simplified channel attention, 1x1; then an FFN."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, kernel_size: int = 3, norm: str = "layernorm"):
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, kernel_size, padding=kernel_size // 2, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = make_norm(norm, c)
        self.norm2 = make_norm(norm, c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = self.sg(x)
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """U-shaped NAFNet; with `shuffle` > 1 the network runs on a pixel-unshuffled image.

    Output = input + network(input) (global residual on the input image). H and W must be multiples
    of `size_multiple` = shuffle * 2 ** len(enc_blk_nums). A level with 0 blocks is only its strided
    down conv and its up conv (a stem that leaves the blocks to lower resolutions).
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: list[int] | tuple[int, ...] = (),
        dec_blk_nums: list[int] | tuple[int, ...] = (),
        shuffle: int = 1,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        kernel_size: int = 3,
        norm: str = "layernorm",
        expand: int = 0,
    ):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} must have the same length")
        if shuffle < 1 or kernel_size % 2 == 0:
            raise ValueError(f"shuffle must be >= 1 and kernel_size odd, got shuffle={shuffle} kernel_size={kernel_size}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        if expand < 0:
            raise ValueError(f"expand must be >= 0 (0: plain convolutions), got {expand}")

        def block(c: int) -> NAFBlock:
            return NAFBlock(c, dw_expand=dw_expand, ffn_expand=ffn_expand, kernel_size=kernel_size, norm=norm)

        io_channels = img_channel * shuffle * shuffle
        self.unshuffle = nn.PixelUnshuffle(shuffle) if shuffle > 1 else nn.Identity()
        self.shuffle = nn.PixelShuffle(shuffle) if shuffle > 1 else nn.Identity()
        self.intro = nn.Conv2d(io_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, io_channels, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[block(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[block(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[block(chan) for _ in range(num)]))
        self.size_multiple = shuffle * 2 ** len(enc_blk_nums)
        if expand:
            expand_convs(self, expand)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.intro(self.unshuffle(inp))
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1], strict=True):
            x = decoder(up(x) + skip)
        return self.shuffle(self.ending(x)) + inp
