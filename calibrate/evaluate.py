"""SSIM/PSNR of a float runner on a validation set, per blur level (DESIGN.md metrics on 8-bit RGB)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgesharp.calibrate.data import Sample, run_u8
from edgesharp.calibrate.runners import Runner
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.imaging.metrics import psnr, ssim

ImageFn = Callable[[np.ndarray], np.ndarray]


def float_image_fn(run: Runner, multiple: int) -> ImageFn:
    """RGB uint8 -> RGB uint8 through a float runner (numpy pre/post-processing, reflect padding)."""
    return lambda rgb: run_u8(run, rgb, multiple)


def u8_ir_image_fn(xml_path, multiple: int) -> ImageFn:
    """RGB uint8 -> RGB uint8 through a u8 BGR IR file, exactly as the runtime feeds it."""
    from edgesharp.calibrate.convert import u8_ir_infer

    compiled = shared_core().compile_model(str(xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda rgb: np.ascontiguousarray(u8_ir_infer(compiled, np.ascontiguousarray(rgb[..., ::-1]), multiple)[..., ::-1])


def sample_ssim(run: Runner, sample: Sample, multiple: int) -> float:
    return ssim(sample.sharp, run_u8(run, sample.blurred, multiple))


def score(run: Runner, samples: list[Sample], multiple: int) -> dict:
    """Scores of a float runner; see score_images."""
    return score_images(float_image_fn(run, multiple), samples)


def score_images(image_fn: ImageFn, samples: list[Sample]) -> dict:
    """{"levels": {level: {"ssim", "psnr", "images"}}, "mean_ssim": float} over `samples`."""
    per_level: dict[str, dict[str, list[float]]] = {}
    for s in samples:
        out = image_fn(s.blurred)
        entry = per_level.setdefault(s.level, {"ssim": [], "psnr": []})
        entry["ssim"].append(ssim(s.sharp, out))
        entry["psnr"].append(psnr(s.sharp, out))
    levels = {
        level: {"ssim": float(np.mean(v["ssim"])), "psnr": finite_mean(v["psnr"]), "images": len(v["ssim"])}
        for level, v in per_level.items()
    }
    all_ssim = [x for v in per_level.values() for x in v["ssim"]]
    return {"levels": levels, "mean_ssim": float(np.mean(all_ssim)) if all_ssim else float("nan")}


def finite_mean(values: list[float]) -> float | None:
    """Mean of PSNRs; None when an identical pair made one infinite (JSON has no infinity)."""
    m = float(np.mean(values))
    return m if math.isfinite(m) else None


def baseline(samples: list[Sample]) -> dict:
    """The blurred inputs' own scores: what the model must beat."""
    return score_images(lambda rgb: rgb, samples)
