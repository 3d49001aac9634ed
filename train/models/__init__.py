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
from edgesharp.train.models.research import RESEARCH as _RESEARCH


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
    "nafnet-width32": ArchSpec(
        NAFNet,
        dict(width=32, enc_blk_nums=[1, 1, 1, 28], middle_blk_num=1, dec_blk_nums=[1, 1, 1, 1]),
        "official NAFNet-GoPro-width32 (loads the released checkpoint); a teacher, too slow for a student",
    ),
    "nafnet-w32-m6": ArchSpec(
        NAFNet,
        dict(width=32, enc_blk_nums=[2, 2, 4], middle_blk_num=6, dec_blk_nums=[2, 2, 2]),
        "GPU teacher: width 32 at full resolution, [2,2,4]/6/[2,2,2], LayerNorm (4.0M parameters)",
    ),
    # the shipped real-time student: an RMS norm, as LayerNorm's memory-bound reductions cost as much as the
    # convolutions in OpenVINO on a CPU
    "nafnet-rt-s2": ArchSpec(
        NAFNet,
        dict(shuffle=2, width=8, enc_blk_nums=[0, 1, 1, 2], middle_blk_num=1, dec_blk_nums=[0, 1, 1, 1], norm="rmsnorm"),
        "pixel-unshuffle x2 stem and last conv at 1/4 of the pixels with one decoder block there (width 8), "
        "the other blocks from 1/16 on (width 16), RMS norm",
    ),
    "nafnet-test": ArchSpec(
        NAFNet,
        dict(width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1]),
        "a tiny network for fast tests (width 8, [1]/1/[1])",
    ),
}
# the student studies' architectures, apart so that the list above is what the product uses
RESEARCH: dict[str, ArchSpec] = {name: ArchSpec(NAFNet, config, summary) for name, (config, summary) in _RESEARCH.items()}


class UnknownArch(EdgesharpError, KeyError):
    """An architecture name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def spec(arch: str) -> ArchSpec:
    found = REGISTRY.get(arch) or RESEARCH.get(arch)
    if found is None:
        raise UnknownArch(f"unknown architecture {arch!r}; choose one of {', '.join(REGISTRY)} "
                          f"(or a study's: {', '.join(RESEARCH)})")
    return found


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
    """Build architecture `arch` (a REGISTRY or RESEARCH name) with optional config overrides, randomly initialised."""
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
    "RESEARCH",
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
