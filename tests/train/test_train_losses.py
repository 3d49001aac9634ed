"""The restoration loss: SSIM windows against scikit-image's metric, Charbonnier, the distillation mix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from edgesharp.train.config import LossConfig
from edgesharp.train.losses import RestorationLoss, charbonnier, distillation_loss, ssim


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.random((40, 52, 3))
    return a, np.clip(a + 0.1 * rng.standard_normal(a.shape), 0.0, 1.0)


def _nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.transpose(2, 0, 1).copy())[None]


def test_uniform_window_is_the_reported_metric():
    a, b = _pair()
    reference = structural_similarity(a, b, channel_axis=2, data_range=1.0)
    assert ssim(_nchw(a), _nchw(b), window="uniform").item() == pytest.approx(reference, abs=1e-9)
    # the Gaussian window is a different (smoother) estimate of the same quantity
    gaussian = ssim(_nchw(a), _nchw(b)).item()
    assert gaussian != pytest.approx(reference, abs=1e-4) and abs(gaussian - reference) < 0.02
    assert ssim(_nchw(a), _nchw(a), window="uniform").item() == pytest.approx(1.0)


def test_loss_adds_the_weighted_ssim_term_with_its_window():
    a, b = (_nchw(x).float() for x in _pair(1))
    for window in ("gaussian", "uniform"):
        loss = RestorationLoss(LossConfig(eps=0.05, ssim_weight=0.5, ssim_window=window))(a, b)
        expected = charbonnier(a, b, 0.05) + 0.5 * (1.0 - ssim(a, b, window=window))
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_distillation_mixes_ground_truth_and_teacher_by_alpha():
    a, gt = (_nchw(x).float() for x in _pair(2))
    teacher = gt.flip(-1)
    fn = RestorationLoss(LossConfig())
    loss, parts = distillation_loss(fn, a, gt, teacher, 0.7)
    assert loss.item() == pytest.approx(0.7 * fn(a, gt).item() + 0.3 * fn(a, teacher).item(), rel=1e-6)
    assert set(parts) == {"loss_gt", "loss_teacher"}
    with pytest.raises(ValueError, match="needs teacher outputs"):
        distillation_loss(fn, a, gt, None, 0.5)
