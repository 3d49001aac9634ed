"""Unsharp-mask and identity baselines; the package images they are tuned and tested on."""

from __future__ import annotations

import numpy as np
import pytest

from edgesharp.benchmarks import baselines
from edgesharp.benchmarks.images import load_sharp_images, package_image_paths
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.degrade import degrade_level
from edgesharp.edge.imaging.metrics import ssim


def test_package_images_are_found_and_cropped():
    assert len(package_image_paths()) >= 5
    samples = load_sharp_images(None, limit=3, max_side=64)
    assert len(samples) == 3
    for s in samples:
        assert s.sharp.dtype == np.uint8 and s.sharp.shape == (64, 64, 3)


def test_unsharp_beats_the_blurred_input_on_a_package_image_at_heavy():
    sample = load_sharp_images(None, limit=1, max_side=128)[0]
    blurred, _ = degrade_level(sample.sharp, "heavy", sample.name)
    restored = baselines.unsharp_for_level("heavy")(blurred)
    assert ssim(sample.sharp, restored) > ssim(sample.sharp, blurred) + 0.02


def test_unsharp_mask_properties(test_image):
    assert np.array_equal(baselines.unsharp_mask(test_image, 1.0, 0.0), test_image)
    flat = np.full((16, 16, 3), 77, np.uint8)
    assert np.array_equal(baselines.unsharp_mask(flat, 1.5, 3.0), flat)
    out = baselines.unsharp_mask(test_image, 1.0, 2.0)
    assert out.dtype == np.uint8 and out.shape == test_image.shape
    assert np.abs(out.astype(int) - test_image).mean() > 1
    assert baselines.identity(test_image) is test_image
    with pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
        baselines.unsharp_mask(test_image.astype(np.float32), 1.0, 1.0)


def test_tuned_and_reference_settings_cover_every_level():
    for table in (baselines.UNSHARP_PARAMS, baselines.UNSHARP_REFERENCE):
        assert set(table) == {"heavy", "medium", "low"}
        assert all(p["sigma"] > 0 and p["amount"] >= 0 for p in table.values())


def test_tuning_finds_the_better_setting():
    sample = load_sharp_images(None, limit=1, max_side=64)[0]
    pairs = [(sample.sharp, degrade_level(sample.sharp, "medium", sample.name)[0])]
    tuned = baselines.tune(pairs, rounds=1)
    assert tuned["ssim"] >= baselines._mean_ssim(pairs, 3.0, 0.25)
    assert tuned["ssim"] > ssim(*pairs[0])
