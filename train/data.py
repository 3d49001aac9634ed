"""Training data: sharp images degraded on the fly, paired blur/sharp sets, cached teacher outputs.

Sources (`edgesharp.train.config.DataSource`):
- `folder`: sharp images (searched recursively), degraded per sample with the protocol's training
  subsets (`edgesharp.edge.imaging.degrade.degrade_pair`) chosen from the current phase; `split` keeps the train or
  validation part of the folder (`edgesharp.edge.imaging.splits`), `downscale` area-downscales each image once, as
  it is read (photos softer than their pixel grid are used at 2);
- `gopro`: every `blur/` folder under the root with its sibling `sharp/` (GoPro layout; also what
  `edgesharp train prepare --degrade` writes);
- `realblur`: a RealBlur list file of `gt_path blur_path` lines, paths relative to `root`
  (default: the list file's folder);
- `builtin`: offline photographs and generated video-call content (`edgesharp.train.builtin`).

Each sample is random-cropped, flipped and rotated by 90 degrees; its randomness comes from
`numpy.random.default_rng([seed, epoch, index])`, so a run is reproducible whatever the number of
DataLoader workers and a resumed run sees the same samples. Samples are uint8 CHW tensors
(`lq`, `gt`, optionally `teacher`); the loop converts them to float on its device.
"""

from __future__ import annotations

import logging
import math
import os
import random
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from edgesharp.edge.errors import EdgesharpError, ImageReadError
from edgesharp.edge.imaging.degrade import degrade_pair
from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS, read_image, write_image

log = logging.getLogger(__name__)


class DataError(EdgesharpError):
    """A data source is missing, empty, or inconsistent (unpaired files, mismatched sizes)."""


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder`, recursively, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of images")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def pair_key(blur: Path, root: Path) -> str:
    """Name of a paired sample (and of its cached teacher output): the blur file's path under `root`
    without the `blur` folder and the suffix, joined by `__` (root/blur/x.png -> x, root/s/blur/x.png -> s__x)."""
    rel = blur.relative_to(root).with_suffix("")
    return "__".join(p for p in rel.parts if p != "blur")


def gopro_pairs(root: str | os.PathLike) -> list[tuple[Path, Path, str]]:
    """(blur, sharp, key) for every `blur/*` file with a `sharp/*` sibling of the same name under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: GoPro-layout folder not found")
    blur_dirs = sorted({p for p in [root, *root.rglob("*")] if p.is_dir() and p.name == "blur"})
    pairs = []
    for bdir in blur_dirs:
        sdir = bdir.parent / "sharp"
        for blur in sorted(p for p in bdir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            sharp = sdir / blur.name
            if not sharp.is_file():
                raise DataError(f"{blur}: no sharp counterpart {sharp}")
            pairs.append((blur, sharp, pair_key(blur, root)))
    if not pairs:
        raise DataError(f"{root}: no */blur/*.png files with */sharp/ siblings (GoPro layout)")
    return pairs


def realblur_pairs(list_file: str | os.PathLike, root: str | os.PathLike = "") -> list[tuple[Path, Path, str]]:
    """(blur, gt, key) from a RealBlur list file of `gt_path blur_path` lines."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise DataError(f"{list_file}: RealBlur list file not found")
    base = Path(root) if root else list_file.parent
    pairs = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"{list_file}:{n}: expected 'gt_path blur_path', got {line.strip()!r}")
        gt, blur = base / parts[0], base / parts[1]
        for p in (gt, blur):
            if not p.is_file():
                raise DataError(f"{list_file}:{n}: {p} not found")
        pairs.append((blur, gt, pair_key(blur, base)))
    if not pairs:
        raise DataError(f"{list_file}: no pairs listed")
    return pairs


def random_crop_box(h: int, w: int, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))


def pad_to(img: np.ndarray, crop: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h >= crop and w >= crop:
        return img
    return cv2.copyMakeBorder(img, 0, max(0, crop - h), 0, max(0, crop - w), cv2.BORDER_REFLECT_101)


def augment(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flip and 90-degree rotation applied to every image of a sample."""
    flip, rot = rng.random() < 0.5, int(rng.integers(4))
    out = []
    for img in images:
        if flip:
            img = img[:, ::-1]
        out.append(np.ascontiguousarray(np.rot90(img, rot)))
    return out


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class SampleRNG:
    """Per-sample randomness keyed by (seed, epoch, index)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.epoch = 0

    def __call__(self, index: int, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, salt])


class DegradedImages(Dataset):
    """Sharp images cropped and degraded on the fly by one of `subsets` per sample."""

    def __init__(
        self,
        files: list[Path],
        crop: int,
        seed: int = 0,
        subsets: list[int] = (1, 3, 5, 7),
        preload: bool = False,
        rescale: tuple[float, float] = (1.0, 1.0),
        downscale: float = 1.0,
    ):
        if not files:
            raise DataError("no images to train on")
        self.files, self.crop, self.rng, self.subsets = list(files), crop, SampleRNG(seed), list(subsets)
        self.rescale = (float(rescale[0]), float(rescale[1]))
        self.downscale = float(downscale)
        self.cache = [self.read(i) for i in range(len(self.files))] if preload else None

    def read(self, index: int) -> np.ndarray:
        from edgesharp.edge.imaging.splits import downscale

        return downscale(read_image(self.files[index]), self.downscale)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        # index may exceed len(self): it picks file index % len and keys a fresh crop and degradation
        rng = self.rng(index)
        index %= len(self.files)
        img = self.cache[index] if self.cache is not None else self.read(index)
        (gt,) = augment([self.sharp_crop(img, rng)], rng)
        subset = int(rng.choice(self.subsets))
        gt, lq, _ = degrade_pair(gt, subset, rng)
        return {"lq": to_tensor(lq), "gt": to_tensor(gt), "key": self.files[index].stem}


    def sharp_crop(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A crop x crop patch; with `rescale` above 1, a patch `factor` times larger (at most the image),
        area-downscaled to crop x crop."""
        lo, hi = self.rescale
        side = self.crop
        if hi > 1.0:  # no draw otherwise: runs without rescale keep the sample stream they always had
            factor = min(float(rng.uniform(lo, hi)), min(img.shape[:2]) / self.crop)
            side = max(self.crop, int(round(self.crop * factor)))
        img = pad_to(img, side)
        y, x = random_crop_box(*img.shape[:2], side, rng)
        patch = img[y : y + side, x : x + side]
        if side != self.crop:
            patch = cv2.resize(patch, (self.crop, self.crop), interpolation=cv2.INTER_AREA)
        return patch


class PairedImages(Dataset):
    """Fixed blur/sharp pairs (and cached teacher outputs, matched by key), cropped jointly."""

    def __init__(self, pairs: list[tuple[Path, Path, str]], crop: int, seed: int = 0, teacher_dir: str | os.PathLike | None = None):
        if not pairs:
            raise DataError("no image pairs to train on")
        self.pairs, self.crop, self.rng = list(pairs), crop, SampleRNG(seed)
        self.subsets: list[int] = []
        self.teacher_dir = Path(teacher_dir) if teacher_dir else None
        if self.teacher_dir is not None:
            missing = [k for _, _, k in self.pairs if not self.teacher_file(k).is_file()]
            if missing:
                raise DataError(f"{self.teacher_dir}: no cached teacher output for {len(missing)} of {len(self.pairs)} inputs "
                                f"(first: {missing[0]}.png); run `edgesharp train cache-teacher`")

    def teacher_file(self, key: str) -> Path:
        return self.teacher_dir / f"{key}.png"

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        blur, sharp, key = self.pairs[index % len(self.pairs)]
        images = [read_image(blur), read_image(sharp)]
        if self.teacher_dir is not None:
            images.append(read_image(self.teacher_file(key)))
        if any(im.shape != images[0].shape for im in images):
            raise DataError(f"{blur}: size {images[0].shape[:2]} differs from its pair's {[im.shape[:2] for im in images[1:]]}")
        images = [pad_to(im, self.crop) for im in images]
        y, x = random_crop_box(*images[0].shape[:2], self.crop, rng)
        images = augment([im[y : y + self.crop, x : x + self.crop] for im in images], rng)
        sample = {"lq": to_tensor(images[0]), "gt": to_tensor(images[1]), "key": key}
        if self.teacher_dir is not None:
            sample["teacher"] = to_tensor(images[2])
        return sample


class MixedDataset(Dataset):
    """Several sources drawn with probabilities proportional to their weights.

    Index i maps to (source, item) through an RNG keyed by (seed, epoch, i); each draw gets its own
    crop and degradation even when it repeats an image. An epoch is the sum of the sources' lengths,
    or `epoch_samples` when that is larger (small sources would otherwise restart loader workers
    every few steps).
    """

    def __init__(self, sources: list[Dataset], weights: list[float], seed: int = 0, epoch_samples: int = 0):
        if len(sources) != len(weights) or not sources:
            raise DataError(f"{len(sources)} sources but {len(weights)} weights")
        self.sources = sources
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self.rng = SampleRNG(seed)
        self.length = max(sum(len(s) for s in sources), epoch_samples)

    def set_epoch(self, epoch: int) -> None:
        self.rng.epoch = epoch
        for s in self.sources:
            s.rng.epoch = epoch

    def set_subsets(self, subsets: list[int]) -> None:
        for s in self.sources:
            s.subsets = list(subsets)

    def needs_subsets(self) -> bool:
        return any(isinstance(s, DegradedImages) for s in self.sources)

    def has_teacher(self) -> bool:
        return all(getattr(s, "teacher_dir", None) is not None for s in self.sources)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if len(self.sources) == 1:
            return self.sources[0][index]
        rng = self.rng(index, salt=1)
        k = int(rng.choice(len(self.sources), p=self.probs))
        n = len(self.sources[k])
        return self.sources[k][int(rng.integers(n)) + n * index]


def build_dataset(cfg, teacher_dir: str | os.PathLike | None = None) -> MixedDataset:
    """The training dataset of a `TrainConfig` (cached teacher outputs need paired sources)."""
    from edgesharp.train.builtin import ensure_builtin

    d = cfg.data
    sources: list[Dataset] = []
    for i, src in enumerate(d.sources):
        if src.kind in ("folder", "builtin"):
            if teacher_dir is not None:
                raise DataError(f"data.sources.{i}: a cached teacher needs fixed inputs (gopro or realblur sources, "
                                f"e.g. from `edgesharp train prepare --degrade`), not {src.kind} degraded on the fly")
            folder = ensure_builtin("train", d.builtin_count) if src.kind == "builtin" else src.path
            files = find_images(folder)
            if src.split:
                from edgesharp.edge.imaging.splits import split_of

                files = [f for f in files if split_of(f.name) == src.split]
            if src.kind == "builtin" and src.content != "all":
                files = [f for f in files if f.name.startswith("gen_") == (src.content == "generated")]
            if not files:
                raise DataError(f"data.sources.{i}: {folder} holds no images")
            preload = 0 < len(files) <= d.cache_images
            sources.append(DegradedImages(files, d.crop, cfg.seed + i, cfg.phases[0].subsets, preload, tuple(d.rescale),
                                          src.downscale))
        elif src.kind == "gopro":
            sources.append(PairedImages(gopro_pairs(src.path), d.crop, cfg.seed + i, teacher_dir))
        elif src.kind == "realblur":
            sources.append(PairedImages(realblur_pairs(src.path, src.root), d.crop, cfg.seed + i, teacher_dir))
        else:
            raise DataError(f"data.sources.{i}.kind: unknown kind {src.kind!r}")
        log.info("data source %d: %s %s%s, %d samples, weight %g", i, src.kind, src.path or src.content,
                 f" ({src.split} split)" if src.split else "", len(sources[-1]), src.weight)
    return MixedDataset(sources, [s.weight for s in d.sources], cfg.seed, d.epoch_samples)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way through an epoch (for exact resume)."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def __iter__(self):
        return islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


def worker_init(worker_id: int) -> None:
    """Seed the global RNGs of a DataLoader worker from torch's per-worker seed (samples use SampleRNG)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def collate(batch: list[dict]) -> dict:
    out = {k: torch.stack([b[k] for b in batch]) for k in batch[0] if k != "key"}
    out["key"] = [b["key"] for b in batch]
    return out


def batches_per_epoch(dataset: Dataset, batch_size: int, world: int = 1) -> int:
    per_rank = len(dataset) // world
    n = per_rank // batch_size
    if n == 0:
        raise DataError(f"{len(dataset)} samples are too few for batch size {batch_size} on {world} process(es)")
    return n


# ---- `edgesharp train prepare` -------------------------------------------------------------------


def prepare_patches(inputs: list[str | os.PathLike], out_dir: str | os.PathLike, size: int = 256,
                    degrade: list[int] | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Cut every image under `inputs` into non-overlapping size x size PNG patches.

    Without `degrade`, patches go to `out_dir`. With a list of subsets, each patch is degraded by one
    of them (seeded by its name) and written in the GoPro layout: `out_dir/sharp/` and `out_dir/blur/`.
    Unreadable files are skipped and counted. Returns counts.
    """
    out = Path(out_dir)
    files: list[Path] = []
    for src in inputs:
        files.extend([Path(src)] if Path(src).is_file() else find_images(src))
    stats = {"images": len(files), "patches": 0, "unreadable": 0, "too_small": 0, "skipped_existing": 0}
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc="prepare", unit="img")
    for f in it:
        try:
            img = read_image(f)
        except ImageReadError as exc:
            log.warning("skipping %s", exc)
            stats["unreadable"] += 1
            continue
        h, w = img.shape[:2]
        if h < size or w < size:
            stats["too_small"] += 1
            continue
        for y in range(0, h - size + 1, size):
            for x in range(0, w - size + 1, size):
                name = f"{f.stem}_{y:05d}_{x:05d}.png"
                patch = img[y : y + size, x : x + size]
                if degrade:
                    target = out / "blur" / name
                    if target.is_file() and (out / "sharp" / name).is_file():
                        stats["skipped_existing"] += 1
                        continue
                    rng = np.random.default_rng([seed, *name.encode()])
                    sharp, lq, _ = degrade_pair(patch, int(rng.choice(degrade)), rng)
                    write_image(out / "sharp" / name, sharp)
                    write_image(target, lq)
                else:
                    write_image(out / name, patch)
                stats["patches"] += 1
    return stats


def epochs_for(steps: int, per_epoch: int) -> int:
    return math.ceil(steps / per_epoch)
