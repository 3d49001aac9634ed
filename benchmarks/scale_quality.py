"""What the governor's processing scale costs in quality: SSIM of the model run on a downscaled frame with its
detail added back at full resolution (the pipeline's `add_detail`), against a plain upscale of the model's output,
at each scale, on sharp images blurred at one evaluation level.

    python -m edgesharp.benchmarks.scale_quality --images ../shared/data/train_photos --split val --downscale 2

Choices are read on the validation split of the training photos, never on Kodak24 or the GoPro pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError


def score_scales(sharpener, samples, scales: list[float], level: str, method: str | None = None) -> dict[str, float]:
    """Mean SSIM of the blurred input and, per scale, of `add_detail` and of a plain upscale (BGR frames); the
    frame is downscaled as the pipeline does (`edgesharp.edge.pipeline.downscale`), by `method` if given."""
    from edgesharp.edge.governor import scaled_size
    from edgesharp.edge.imaging.degrade import degrade_level
    from edgesharp.edge.imaging.metrics import ssim
    from edgesharp.edge.pipeline import DOWNSCALE_METHOD, add_detail, downscale

    rows: dict[str, list[float]] = {"input": []}
    multiple = sharpener.backend.size_multiple
    for sample in samples:
        gt = np.ascontiguousarray(sample.sharp[..., ::-1])  # BGR, as frames come
        blurred, _ = degrade_level(gt, level, sample.name)
        h, w = blurred.shape[:2]
        rows["input"].append(ssim(gt, blurred))
        for scale in scales:
            size = scaled_size(w, h, scale, multiple)
            small = downscale(blurred, size, method or DOWNSCALE_METHOD) if size != (w, h) else blurred
            out = sharpener.enhance(small)
            detail = add_detail(blurred, small, out) if size != (w, h) else out
            plain = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if size != (w, h) else out
            rows.setdefault(f"detail {scale:g}", []).append(ssim(gt, detail))
            rows.setdefault(f"upscale {scale:g}", []).append(ssim(gt, plain))
    return {k: float(np.mean(v)) for k, v in rows.items()}


def time_downscale(method: str, scales: list[float], multiple: int, size: tuple[int, int] = (1280, 720),
                   repeats: int = 200) -> dict[float, float]:
    """Median ms of the pipeline's downscale of one `size` frame to each scale, on one OpenCV thread."""
    import statistics
    import time

    from edgesharp.edge.governor import scaled_size
    from edgesharp.edge.pipeline import downscale

    frame = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        times = {}
        for scale in (s for s in scales if s < 1.0):
            target = scaled_size(*size, scale, multiple)
            laps = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                downscale(frame, target, method)
                laps.append(time.perf_counter() - t0)
            times[scale] = 1e3 * statistics.median(laps)
        return times
    finally:
        cv2.setNumThreads(threads)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.scale_quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model bundle (default: the shipped one)")
    p.add_argument("--images", type=Path, required=True, help="folder of sharp images")
    p.add_argument("--split", choices=["train", "val"], default=None, help="part of the folder (edge.imaging.splits)")
    p.add_argument("--downscale", type=float, default=1.0, help="area-downscale each image first")
    p.add_argument("--level", choices=["heavy", "medium", "low"], default="medium")
    p.add_argument("--scales", default="1,0.75,0.5", help="comma list of processing scales")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--method", choices=["area", "linear"], default=None,
                   help="how the frame is downscaled (default: the pipeline's, edge.pipeline.DOWNSCALE_METHOD)")
    a = p.parse_args(argv)
    from edgesharp import Sharpener
    from edgesharp.benchmarks.images import load_sharp_images

    try:
        scales = [float(s) for s in a.scales.split(",") if s]
        samples = load_sharp_images(a.images, a.limit, None, a.split, a.downscale)
        with Sharpener(a.model) as sharpener:
            scores = score_scales(sharpener, samples, scales, a.level, a.method)
            multiple = sharpener.backend.size_multiple
    except (EdgesharpError, ValueError) as exc:
        print(f"scale_quality: error: {exc}", file=sys.stderr)
        return 2
    from edgesharp.edge.pipeline import DOWNSCALE_METHOD

    print(f"{len(samples)} images from {a.images}{f' ({a.split} split)' if a.split else ''}, {a.level} blur, "
          f"{a.method or DOWNSCALE_METHOD} downscale; mean SSIM:")
    for name, value in scores.items():
        print(f"  {name:<14} {value:.4f}")
    for scale, ms in time_downscale(a.method or DOWNSCALE_METHOD, scales, multiple).items():
        print(f"  downscale of a 1280x720 frame to {scale:g}: {ms:.2f} ms (median of 200, one OpenCV thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
