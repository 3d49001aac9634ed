"""Teachers behind one interface: `teacher(lq, keys=None) -> output`, float NCHW RGB in [0, 1], no grad.

- `SpandrelTeacher`: any checkpoint spandrel (+ spandrel-extra-arches: Restormer, MPRNet, ...) can
  detect: official Restormer and NAFNet releases and the rest. Loaded without running pickled code
  (`torch.load(weights_only=True)` or safetensors), inference tiled with overlap for large inputs.
- `StudentTeacher`: an edgesharp student checkpoint (a bigger student teaching a smaller one).
- `CachedTeacher`: a folder of precomputed outputs, `<key>.png` per input (`edgesharp.train.data.pair_key`),
  as `edgesharp train cache-teacher` writes it. During training the dataset crops them jointly with
  the inputs; calling the teacher returns the full stored images for `keys`.

`build_teacher(cfg.teacher, device)` returns None for kind `none` (alpha = 1 everywhere).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import read_image, write_image

log = logging.getLogger(__name__)


class TeacherError(EdgesharpError):
    """A teacher checkpoint or cache folder is missing, unsupported or inconsistent."""


def _pad(x: torch.Tensor, multiple: int, minimum: int = 0) -> torch.Tensor:
    h, w = x.shape[-2:]
    th = max(minimum, h + (-h) % multiple)
    tw = max(minimum, w + (-w) % multiple)
    if (th, tw) == (h, w):
        return x
    mode = "reflect" if th - h < h and tw - w < w else "replicate"
    return F.pad(x, (0, tw - w, 0, th - h), mode=mode)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def _ramp(n: int, overlap: int, lead: bool, trail: bool, device) -> torch.Tensor:
    """Blending weights along one axis of a tile. Sides inside the image ramp up over the overlap,
    starting from zero for its first quarter, so a tile's border pixels (distorted by the padding a
    network sees there) do not count when a neighbour covers them. Image borders keep full weight."""
    w = torch.ones(n, device=device)
    k = min(overlap, n // 2)
    if k > 0:
        margin = k // 4
        i = torch.arange(k, device=device, dtype=torch.float32)
        r = ((i - margin + 1) / (k - margin + 1)).clamp(0, 1)
        if lead:
            w[:k] = torch.minimum(w[:k], r)
        if trail:
            w[n - k :] = torch.minimum(w[n - k :], r.flip(0))
    return w


@torch.no_grad()
def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int = 512, overlap: int = 32,
                multiple: int = 1, minimum: int = 0) -> torch.Tensor:
    """Run an image-to-image `fn` over overlapping tiles of x (N, C, H, W), blending the overlaps.

    Each tile is padded to `multiple` (and `minimum`) and cropped back, so `fn` never sees an
    unsupported size. tile <= 0 runs the whole image at once.
    """
    n, _, h, w = x.shape

    def run(t: torch.Tensor) -> torch.Tensor:
        th, tw = t.shape[-2:]
        return fn(_pad(t, multiple, minimum))[..., :th, :tw]

    if tile <= 0 or (h <= tile and w <= tile):
        return run(x)
    overlap = min(overlap, tile // 2)
    out = None
    weight = torch.zeros(1, 1, h, w, device=x.device, dtype=torch.float32)
    for y in _starts(h, tile, overlap):
        for x0 in _starts(w, tile, overlap):
            patch = x[..., y : y + tile, x0 : x0 + tile]
            res = run(patch).float()
            if out is None:
                out = torch.zeros(n, res.shape[1], h, w, device=x.device, dtype=torch.float32)
            ph, pw = patch.shape[-2:]
            wy = _ramp(ph, overlap, y > 0, y + ph < h, x.device)
            wx = _ramp(pw, overlap, x0 > 0, x0 + pw < w, x.device)
            m = (wy[:, None] * wx[None, :])[None, None]
            out[..., y : y + ph, x0 : x0 + pw] += res * m
            weight[..., y : y + ph, x0 : x0 + pw] += m
    return (out / weight).to(x.dtype)


class Teacher:
    """Image batch in, image batch out, no gradients."""

    name = "teacher"

    def __call__(self, lq: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        raise NotImplementedError


class SpandrelTeacher(Teacher):
    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", tile: int = 512, overlap: int = 32,
                 half: bool = False):
        path = Path(path)
        if not path.is_file():
            raise TeacherError(f"{path}: teacher checkpoint not found")
        import spandrel
        import spandrel_extra_arches

        spandrel_extra_arches.install(ignore_duplicates=True)
        try:
            if path.suffix.lower() == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise TeacherError(f"{path}: cannot be loaded safely as weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
        try:
            descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
        except spandrel.UnsupportedModelError as exc:
            raise TeacherError(f"{path}: spandrel does not recognise this architecture") from exc
        if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale != 1:
            raise TeacherError(f"{path}: {descriptor.architecture.name} is not a 1x image-restoration model "
                               f"(scale {getattr(descriptor, 'scale', '?')})")
        if descriptor.input_channels != 3 or descriptor.output_channels != 3:
            raise TeacherError(f"{path}: expected a 3-channel RGB model, got {descriptor.input_channels} in / "
                               f"{descriptor.output_channels} out")
        self.descriptor = descriptor.to(device).eval()
        self.dtype = torch.float32
        if half and torch.device(device).type == "cuda":
            if descriptor.supports_half:
                self.dtype = torch.float16
            elif descriptor.supports_bfloat16:
                self.dtype = torch.bfloat16
            self.descriptor.to(self.dtype)
        self.device, self.tile, self.overlap = torch.device(device), tile, overlap
        self.name = f"{descriptor.architecture.name} ({path.name})"
        req = descriptor.size_requirements
        self.multiple, self.minimum = req.multiple_of, req.minimum
        log.info("teacher: %s, %.1fM parameters, size multiple %d", self.name,
                 sum(p.numel() for p in descriptor.model.parameters()) / 1e6, self.multiple)

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        x = lq.to(self.device, self.dtype)

        def fn(t: torch.Tensor) -> torch.Tensor:
            return self.descriptor.model(t).clamp(0, 1)

        return tiled_apply(fn, x, self.tile, self.overlap, self.multiple, self.minimum).to(lq.device, lq.dtype)


class StudentTeacher(Teacher):
    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", tile: int = 512, overlap: int = 32):
        from edgesharp.train.checkpoint import load_student

        self.model, info = load_student(path)
        self.model.to(device)
        self.device, self.tile, self.overlap = torch.device(device), tile, overlap
        self.multiple = self.model.size_multiple
        self.name = f"{info['arch']} ({Path(path).name}, step {info['step']})"

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        def fn(t: torch.Tensor) -> torch.Tensor:
            return self.model(t).clamp(0, 1)

        out = tiled_apply(fn, lq.to(self.device, torch.float32), self.tile, self.overlap, self.multiple)
        return out.to(lq.device, lq.dtype)


class CachedTeacher(Teacher):
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise TeacherError(f"{self.folder}: teacher cache folder not found (write it with `edgesharp train cache-teacher`)")
        self.name = f"cache ({self.folder})"

    def __call__(self, lq: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        if keys is None or len(keys) != lq.shape[0]:
            raise TeacherError(f"{self.folder}: a cached teacher needs one key per image, got {keys!r}")
        outs = []
        for key in keys:
            f = self.folder / f"{key}.png"
            if not f.is_file():
                raise TeacherError(f"{f}: no cached teacher output for {key!r}")
            img = read_image(f)
            if img.shape[:2] != tuple(lq.shape[-2:]):
                raise TeacherError(f"{f}: size {img.shape[:2]} differs from the input's {tuple(lq.shape[-2:])}")
            outs.append(torch.from_numpy(img).permute(2, 0, 1))
        return torch.stack(outs).to(lq.device, lq.dtype) / 255.0


def build_teacher(tcfg, device: str | torch.device = "cpu") -> Teacher | None:
    """The teacher a `TeacherConfig` describes, or None for kind `none`."""
    if tcfg.kind == "none":
        return None
    if tcfg.kind == "spandrel":
        return SpandrelTeacher(tcfg.path, device, tcfg.tile, tcfg.overlap, tcfg.half)
    if tcfg.kind == "student":
        return StudentTeacher(tcfg.path, device, tcfg.tile, tcfg.overlap)
    if tcfg.kind == "cache":
        return CachedTeacher(tcfg.path)
    raise TeacherError(f"teacher.kind: unknown kind {tcfg.kind!r}")


def cache_teacher_outputs(teacher: Teacher, inputs: str | os.PathLike, out_dir: str | os.PathLike,
                          progress: bool = True) -> dict:
    """Run `teacher` once over every input image and write `<key>.png` to `out_dir`; resumable.

    `inputs` is a GoPro-layout folder (its `blur/` images, keys as `edgesharp.train.data.pair_key`), a RealBlur
    list file, or a plain folder of degraded images (keys = stems). Existing outputs are skipped.
    """
    from edgesharp.train.data import find_images, gopro_pairs, realblur_pairs

    inputs, out = Path(inputs), Path(out_dir)
    if inputs.is_file():
        items = [(blur, key) for blur, _, key in realblur_pairs(inputs)]
    elif any(p.name == "blur" for p in [inputs, *inputs.rglob("blur")] if p.is_dir()):
        items = [(blur, key) for blur, _, key in gopro_pairs(inputs)]
    else:
        items = [(p, p.stem) for p in find_images(inputs)]
        stems = [k for _, k in items]
        if len(set(stems)) != len(stems):
            raise TeacherError(f"{inputs}: image stems are not unique; cached outputs are matched by stem")
    stats = {"inputs": len(items), "written": 0, "skipped": 0}
    it = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, desc="cache-teacher", unit="img")
    for src, key in it:
        target = out / f"{key}.png"
        if target.is_file():
            stats["skipped"] += 1
            continue
        img = read_image(src)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
        y = teacher(x, [key])[0]
        arr = (y.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        write_image(target, np.ascontiguousarray(arr))
        stats["written"] += 1
    return stats
