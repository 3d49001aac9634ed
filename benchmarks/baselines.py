"""Classical baselines the students must beat: the blurred input itself, and a tuned OpenCV unsharp mask.

Unsharp mask: out = img + amount * (img - GaussianBlur(img, sigma)), in float, rounded and clipped to uint8.
Its (sigma, amount) per blur level were tuned once on the package photographs (`edgesharp.benchmarks.images`,
never on Kodak24) by a coarse-to-fine search maximising mean SSIM, and are recorded in UNSHARP_PARAMS;
UNSHARP_BLIND is the one setting that maximises the mean over all three levels together, the fair
baseline for a student that is not told the blur level.
Reproduce the tuning with

    python -m edgesharp.benchmarks.baselines --tune
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys

import cv2
import numpy as np

from edgesharp.edge.imaging.io import check_frame

log = logging.getLogger(__name__)

# Tuned by `python -m edgesharp.benchmarks.baselines --tune` (12 package photographs, 256x256 centre crops, seed 0;
# mean SSIM there 0.8632 / 0.9316 / 0.9746).
UNSHARP_PARAMS: dict[str, dict[str, float]] = {
    "heavy": {"sigma": 1.0, "amount": 3.25},
    "medium": {"sigma": 0.75, "amount": 2.125},
    "low": {"sigma": 0.5, "amount": 0.75},
}

BLIND = "blind"
# The same tuning over the three levels' pairs pooled (mean SSIM there 0.9054).
UNSHARP_BLIND: dict[str, float] = {"sigma": 1.25, "amount": 0.625}

# The settings behind the unsharp column of shared/data/README.md, NOT tuned here: found by trying
# conventional values (sigma 1.0, amounts in 0.5 steps) against that table on Kodak24. They are kept
# only to reproduce the reference table; the tuned settings above are the baseline students must beat.
UNSHARP_REFERENCE: dict[str, dict[str, float]] = {
    "heavy": {"sigma": 1.0, "amount": 2.5},
    "medium": {"sigma": 1.0, "amount": 1.0},
    "low": {"sigma": 1.0, "amount": 0.5},
}


def unsharp_mask(img: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask of a uint8 HxWx3 image."""
    check_frame(img, "unsharp input")
    f = img.astype(np.float32)
    blurred = cv2.GaussianBlur(f, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.round(f + amount * (f - blurred)), 0, 255).astype(np.uint8)


def identity(img: np.ndarray) -> np.ndarray:
    """The 'do nothing' baseline: score the blurred input as it is."""
    return img


def unsharp_for_level(level: str, reference: bool = False):
    """The tuned (or README-reference) unsharp mask of `level` as a one-argument function."""
    p = (UNSHARP_REFERENCE if reference else UNSHARP_PARAMS)[level]
    return lambda img: unsharp_mask(img, p["sigma"], p["amount"])


def _mean_ssim(pairs: list[tuple[np.ndarray, np.ndarray]], sigma: float, amount: float) -> float:
    from edgesharp.edge.imaging.metrics import ssim

    return float(np.mean([ssim(gt, unsharp_mask(blur, sigma, amount)) for gt, blur in pairs]))


def tune(pairs: list[tuple[np.ndarray, np.ndarray]], rounds: int = 3) -> dict[str, float]:
    """Maximise mean SSIM over (sigma, amount): a coarse grid, then finer grids around the best point."""
    sigmas = [0.5, 1.0, 1.5, 2.0, 3.0]
    amounts = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    cache: dict[tuple[float, float], float] = {}
    best = (1.0, 1.0)
    for r in range(rounds):
        for s, a in itertools.product(sigmas, amounts):
            key = (round(s, 3), round(a, 3))
            if key not in cache and s > 0.1 and a >= 0:
                cache[key] = _mean_ssim(pairs, *key)
        best = max(cache, key=cache.get)
        log.info("round %d: best sigma %.3f amount %.3f SSIM %.4f", r, best[0], best[1], cache[best])
        ds, da = 0.5 / 2**r, 0.5 / 2**r
        sigmas = [best[0] + k * ds / 2 for k in (-2, -1, 0, 1, 2)]
        amounts = [best[1] + k * da / 2 for k in (-2, -1, 0, 1, 2)]
    return {"sigma": best[0], "amount": best[1], "ssim": round(cache[best], 4)}


def tune_all(max_side: int = 256, seed: int = 0) -> dict[str, dict[str, float]]:
    """Tune one (sigma, amount) per evaluation level on the package photographs, and one for all levels
    together ("blind": the setting a sharpener that does not know the blur level would ship)."""
    from edgesharp.benchmarks.images import load_sharp_images
    from edgesharp.edge.imaging.degrade import LEVELS, degrade_level

    samples = load_sharp_images(None, max_side=max_side)
    out, every = {}, []
    for level in LEVELS:
        pairs = [(s.sharp, degrade_level(s.sharp, level, s.name, seed)[0]) for s in samples]
        every += pairs
        out[level] = tune(pairs)
        log.info("%s: %s", level, out[level])
    out[BLIND] = tune(every)
    log.info("%s: %s", BLIND, out[BLIND])
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="re-run the tuning and print the parameters")
    parser.add_argument("--max-side", type=int, default=256, help="centre-crop size used for tuning")
    args = parser.parse_args(argv)
    if not args.tune:
        print(json.dumps(UNSHARP_PARAMS, indent=2))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(json.dumps(tune_all(args.max_side), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
