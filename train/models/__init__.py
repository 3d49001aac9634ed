"""Student architectures: a literal registry of named configurations, and `create(arch, **overrides)`.

Every model takes float32 NCHW RGB in [0, 1] and returns the same shape; H and W must be multiples
of its `size_multiple` (pad outside the model with `pad_to_multiple`, crop back with `unpad`).
Each model carries `.arch` (registry name), `.arch_config` (the full keyword config it was built
with) and `.size_multiple`.

    python -m edgesharp.train.models          # table of architectures with parameters and MACs per pixel
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from edgesharp.edge.errors import EdgesharpError
from edgesharp.train.models.complexity import count_params, macs_per_pixel
from edgesharp.train.models.expand import collapse
from edgesharp.train.models.nafnet import NAFNet


@dataclass(frozen=True)
class ArchSpec:
    family: type[nn.Module]
    config: dict = field(default_factory=dict)
    summary: str = ""


REGISTRY: dict[str, ArchSpec] = {
    "nafnet-tiny": ArchSpec(
        NAFNet,
        dict(width=16, enc_blk_nums=[4, 4, 6], middle_blk_num=2, dec_blk_nums=[4, 4, 2]),
        "the seed's student: width 16, 26 NAFBlocks, 2 middle blocks (~0.7M parameters)",
    ),
    "nafnet-tiny-seedcode": ArchSpec(
        NAFNet,
        dict(width=16, enc_blk_nums=[2, 2, 4, 8], middle_blk_num=2, dec_blk_nums=[2, 2, 2, 2]),
        "the configuration the seed's code builds: width 16, [2,2,4,8]/2/[2,2,2,2]",
    ),
    "nafnet-width32": ArchSpec(
        NAFNet,
        dict(width=32, enc_blk_nums=[1, 1, 1, 28], middle_blk_num=1, dec_blk_nums=[1, 1, 1, 1]),
        "official NAFNet-GoPro-width32 (loads the released checkpoint); a teacher, too slow for a student",
    ),
    "nafnet-w16-small": ArchSpec(
        NAFNet,
        dict(width=16, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1]),
        "width 16, [1,1,2]/1/[1,1,1] at full resolution",
    ),
    "nafnet-ps2-w16": ArchSpec(
        NAFNet,
        dict(shuffle=2, width=16, enc_blk_nums=[2, 2, 4], middle_blk_num=2, dec_blk_nums=[2, 2, 2]),
        "pixel-unshuffle x2 stem, width 16, [2,2,4]/2/[2,2,2], pixel-shuffle back, global residual",
    ),
    "nafnet-w32-m6": ArchSpec(
        NAFNet,
        dict(width=32, enc_blk_nums=[2, 2, 4], middle_blk_num=6, dec_blk_nums=[2, 2, 2]),
        "GPU teacher: width 32 at full resolution, [2,2,4]/6/[2,2,2], LayerNorm (4.0M parameters)",
    ),
    "nafnet-ps4-w32": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=32, enc_blk_nums=[2, 2, 4], middle_blk_num=2, dec_blk_nums=[2, 2, 2]),
        "pixel-unshuffle x4 stem, width 32, [2,2,4]/2/[2,2,2], pixel-shuffle back, global residual",
    ),
    # Real-time CPU students (issue 8): LayerNorm costs as much as the convolutions in OpenVINO on a
    # CPU (its reductions are memory-bound), so these drop it; zero-initialised beta/gamma keep the
    # norm-free blocks stable. The pixel-unshuffle x4 stem runs every block on 1/16 of the pixels.
    "nafnet-rt": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=32, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1], norm="none"),
        "real-time student: pixel-unshuffle x4, width 32, [1,1,2]/1/[1,1,1], no normalisation",
    ),
    "nafnet-rt-lite": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=24, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1], norm="none"),
        "lighter real-time student: pixel-unshuffle x4, width 24, [1,1,2]/1/[1,1,1], no normalisation",
    ),
    "nafnet-rt-lite-rms": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=24, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1], norm="rmsnorm"),
        "nafnet-rt-lite with an RMS norm (one channel reduction; LayerNorm's heavy-blur gain at 0.88x the speed)",
    ),
    "nafnet-rt-ln": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=32, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1], norm="layernorm"),
        "real-time student: nafnet-rt with NAFNet's LayerNorm (1.25x its OpenVINO time, better on heavy blur)",
    ),
    # Second study (issue 8): where the ~0.04 heavy-blur gap to nafnet-tiny at equal steps comes from. Depth at
    # the cheap low-resolution levels and a stem at 1/4 of the pixels cost little in OpenVINO; neither closes it.
    "nafnet-rt-s2": ArchSpec(
        NAFNet,
        dict(shuffle=2, width=8, enc_blk_nums=[0, 1, 1, 2], middle_blk_num=1, dec_blk_nums=[0, 1, 1, 1], norm="rmsnorm"),
        "pixel-unshuffle x2 stem and last conv at 1/4 of the pixels, blocks from 1/16 on (width 16), RMS norm",
    ),
    "nafnet-rt-s2-w12": ArchSpec(
        NAFNet,
        dict(shuffle=2, width=12, enc_blk_nums=[0, 1, 2], middle_blk_num=1, dec_blk_nums=[0, 1, 1], norm="rmsnorm"),
        "nafnet-rt-s2 at width 12 with three levels (blocks at 1/16 with width 24, like nafnet-rt-lite-rms)",
    ),
    "nafnet-rt-deep": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=16, enc_blk_nums=[2, 2, 4], middle_blk_num=2, dec_blk_nums=[2, 2, 2], norm="rmsnorm"),
        "pixel-unshuffle x4, width 16, 16 blocks [2,2,4]/2/[2,2,2], RMS norm: depth instead of width",
    ),
    "nafnet-rt-deeper": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=16, enc_blk_nums=[2, 3, 6], middle_blk_num=3, dec_blk_nums=[2, 2, 2], norm="rmsnorm"),
        "nafnet-rt-deep with 4 more blocks at 1/64 to 1/1024 of the pixels (20 blocks)",
    ),
    "nafnet-rt-fast": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=16, enc_blk_nums=[1, 2, 4], middle_blk_num=2, dec_blk_nums=[1, 1, 1], norm="rmsnorm"),
        "nafnet-rt-deep less 4 blocks (12), mostly in the decoder: 1.2-1.3x nafnet-rt-lite-rms's OpenVINO speed",
    ),
    "nafnet-rt-wide-stem": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=32, enc_blk_nums=[0, 1, 2], middle_blk_num=1, dec_blk_nums=[0, 1, 1], norm="rmsnorm"),
        "pixel-unshuffle x4 into width 32 with no blocks at 1/16: a wider first and last conv",
    ),
    "nafnet-rt-lite-rms-k5": ArchSpec(
        NAFNet,
        dict(shuffle=4, width=24, enc_blk_nums=[1, 1, 2], middle_blk_num=1, dec_blk_nums=[1, 1, 1], norm="rmsnorm",
             kernel_size=5),
        "nafnet-rt-lite-rms with 5x5 depthwise convolutions",
    ),
    "nafnet-test": ArchSpec(
        NAFNet,
        dict(width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1]),
        "a tiny network for fast tests (width 8, [1]/1/[1])",
    ),
}


class UnknownArch(EdgesharpError, KeyError):
    """An architecture name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def spec(arch: str) -> ArchSpec:
    if arch not in REGISTRY:
        raise UnknownArch(f"unknown architecture {arch!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[arch]


def full_config(arch: str, **overrides) -> dict:
    """The registry config of `arch` with `overrides` applied, checked against the family's arguments."""
    s = spec(arch)
    accepted = set(inspect.signature(s.family.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise EdgesharpError(f"{arch}: unknown config key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}")
    config = {
        name: p.default
        for name, p in inspect.signature(s.family.__init__).parameters.items()
        if name != "self" and p.default is not inspect.Parameter.empty
    }
    config.update(copy.deepcopy(s.config))
    config.update(copy.deepcopy(overrides))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def create(arch: str, **overrides) -> nn.Module:
    """Build architecture `arch` (a REGISTRY name) with optional config overrides, randomly initialised."""
    config = full_config(arch, **overrides)
    model = spec(arch).family(**config)
    model.arch = arch
    model.arch_config = config
    return model


def describe(arch: str, **overrides) -> dict:
    """Name, config, parameter count, MACs per pixel and size multiple of an architecture (as exported:
    expanded convolutions collapsed)."""
    model = collapse(create(arch, **overrides))
    return {
        "arch": arch,
        "summary": spec(arch).summary,
        "params": count_params(model),
        "macs_per_pixel": macs_per_pixel(model),
        "size_multiple": model.size_multiple,
        "config": model.arch_config,
    }


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad NCHW `x` at the bottom/right to multiples of `multiple`; returns it and the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def unpad(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


__all__ = [
    "REGISTRY",
    "ArchSpec",
    "UnknownArch",
    "count_params",
    "create",
    "describe",
    "full_config",
    "macs_per_pixel",
    "pad_to_multiple",
    "spec",
    "unpad",
]
