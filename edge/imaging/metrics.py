"""SSIM and PSNR exactly as DESIGN.md defines them, and scoring an output folder against ground truth.

SSIM = skimage.metrics.structural_similarity(gt, out, channel_axis=2, data_range=255) on 8-bit RGB
(7x7 uniform window); PSNR on 8-bit RGB. scikit-image is imported on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.extras import require
from edgesharp.edge.imaging.io import check_frame, list_images, read_image


def _pair(gt: np.ndarray, out: np.ndarray) -> None:
    check_frame(gt, "ground truth")
    check_frame(out, "output")
    if gt.shape != out.shape:
        raise EdgesharpError(f"size mismatch: ground truth {gt.shape} vs output {out.shape}")


def ssim(gt: np.ndarray, out: np.ndarray) -> float:
    _pair(gt, out)
    metrics = require("skimage.metrics", "SSIM", extra="bench")
    return float(metrics.structural_similarity(gt, out, channel_axis=2, data_range=255))


def psnr(gt: np.ndarray, out: np.ndarray) -> float:
    """PSNR in dB; identical images give +inf."""
    _pair(gt, out)
    mse = np.mean((gt.astype(np.float64) - out.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


@dataclass
class FolderScore:
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def mean_ssim(self) -> float:
        return float(np.mean([v["ssim"] for v in self.per_image.values()]))

    @property
    def mean_psnr(self) -> float:
        return float(np.mean([v["psnr"] for v in self.per_image.values()]))

    def to_dict(self) -> dict:
        return {"count": len(self.per_image), "ssim": self.mean_ssim, "psnr": self.mean_psnr, "images": self.per_image}


def score_folders(out_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> FolderScore:
    """Score every ground-truth image against the output with the same stem; missing or mis-sized is an error."""
    out_dir, gt_dir = Path(out_dir), Path(gt_dir)
    gts = list_images(gt_dir)
    if not gts:
        raise EdgesharpError(f"{gt_dir}: no images to score against")
    outs = {p.stem: p for p in list_images(out_dir)}
    missing = [p.stem for p in gts if p.stem not in outs]
    if missing:
        raise EdgesharpError(f"{out_dir}: no output for {len(missing)} ground-truth image(s): {', '.join(missing[:5])}")
    score = FolderScore()
    for gt_path in gts:
        gt, out = read_image(gt_path), read_image(outs[gt_path.stem])
        if gt.shape != out.shape:
            raise EdgesharpError(f"{outs[gt_path.stem]}: size {out.shape[1]}x{out.shape[0]} does not match "
                                 f"{gt_path} {gt.shape[1]}x{gt.shape[0]}")
        score.per_image[gt_path.stem] = {"ssim": ssim(gt, out), "psnr": psnr(gt, out)}
    return score
