"""SSIM/PSNR follow DESIGN.md's definition; folder scoring matches by stem and refuses mismatches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import write_image
from edgesharp.edge.imaging.metrics import psnr, score_folders, ssim


def test_ssim_is_the_design_definition(test_image):
    other = np.clip(test_image.astype(int) + np.random.default_rng(1).integers(-20, 21, test_image.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(test_image, other, channel_axis=2, data_range=255)
    assert ssim(test_image, other) == pytest.approx(expected, abs=1e-12)
    assert ssim(test_image, test_image) == pytest.approx(1.0)
    assert 0.2 < ssim(test_image, other) < 0.99


def test_ssim_uses_data_range_255_not_the_dtype_guess():
    # A flat image offset by one grey level: with data_range=255 the luminance term stays ~1.
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a + 1
    c1 = (0.01 * 255) ** 2
    luminance = (2 * 100 * 101 + c1) / (100**2 + 101**2 + c1)
    assert ssim(a, b) == pytest.approx(luminance, rel=1e-6)


def test_psnr_known_values():
    a = np.full((10, 10, 3), 50, np.uint8)
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2), abs=1e-9)  # 48.13 dB
    b = a.copy()
    b[:5] += 10  # half the pixels off by 10 -> MSE 50
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 50), abs=1e-9)
    assert psnr(a, a) == math.inf


def test_metric_inputs_are_checked(test_image):
    with pytest.raises(EdgesharpError, match="size mismatch"):
        ssim(test_image, test_image[:-1])
    with pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
        psnr(test_image, test_image.astype(np.float32))


def test_score_folders_matches_stems(tmp_path, test_image):
    gt, out = tmp_path / "gt", tmp_path / "out"
    write_image(gt / "a.png", test_image)
    write_image(gt / "b.png", 255 - test_image)
    write_image(out / "a.png", test_image)
    write_image(out / "b.png", np.clip(255 - test_image.astype(int) + 3, 0, 255).astype(np.uint8))
    score = score_folders(out, gt)
    assert set(score.per_image) == {"a", "b"}
    assert score.per_image["a"]["ssim"] == pytest.approx(1.0)
    assert score.mean_ssim == pytest.approx((1.0 + score.per_image["b"]["ssim"]) / 2)
    assert score.to_dict()["count"] == 2


def test_score_folders_refuses_missing_and_mismatched(tmp_path, test_image):
    gt, out = tmp_path / "gt", tmp_path / "out"
    write_image(gt / "a.png", test_image)
    write_image(gt / "b.png", test_image)
    write_image(out / "a.png", test_image)
    with pytest.raises(EdgesharpError, match="no output for 1 ground-truth image.*: b"):
        score_folders(out, gt)
    write_image(out / "b.png", test_image[:50])
    with pytest.raises(EdgesharpError, match=r"b\.png: size 128x50 does not match"):
        score_folders(out, gt)
