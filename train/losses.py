"""Distillation loss: alpha * L(student, gt) + (1 - alpha) * L(student, teacher).

L is Charbonnier or L1, plus optional weighted SSIM (1 - SSIM, Gaussian 11x11 window, or the reported
metric's 7x7 uniform window with sample covariances) and frequency (L1 of the 2-D FFT difference) terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def _gaussian_window(size: int = 11, sigma: float = 1.5, channels: int = 3, device=None, dtype=None) -> torch.Tensor:
    g = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).to(dtype or torch.float32)
    return w.expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: str = "gaussian") -> torch.Tensor:
    """Mean SSIM of two NCHW batches over valid windows. `window`: gaussian (11x11, sigma 1.5) or uniform
    (7x7 with sample covariances: scikit-image's `structural_similarity` defaults, the reported metric)."""
    c = x.shape[1]
    if window == "uniform":
        w = torch.full((c, 1, 7, 7), 1.0 / 49, device=x.device, dtype=x.dtype)
        cov_norm = 49 / 48
    else:
        w = _gaussian_window(channels=c, device=x.device, dtype=x.dtype)
        cov_norm = 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = cov_norm * (F.conv2d(x * x, w, groups=c) - mu_x**2)
    syy = cov_norm * (F.conv2d(y * y, w, groups=c) - mu_y**2)
    sxy = cov_norm * (F.conv2d(x * y, w, groups=c) - mu_x * mu_y)
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def frequency_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = torch.fft.rfft2(x.float(), norm="ortho") - torch.fft.rfft2(y.float(), norm="ortho")
    return d.real.abs().mean() + d.imag.abs().mean()


class RestorationLoss:
    """The per-target loss L(a, b) of a `LossConfig`."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        loss = charbonnier(out, target, c.eps) if c.kind == "charbonnier" else F.l1_loss(out, target)
        if c.ssim_weight > 0:
            loss = loss + c.ssim_weight * (1.0 - ssim(out, target, window=c.ssim_window))
        if c.freq_weight > 0:
            loss = loss + c.freq_weight * frequency_l1(out, target)
        return loss


def distillation_loss(loss_fn: RestorationLoss, out: torch.Tensor, gt: torch.Tensor, teacher: torch.Tensor | None,
                      alpha: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha * L(out, gt) + (1 - alpha) * L(out, teacher); the teacher term is skipped when alpha == 1."""
    l_gt = loss_fn(out, gt)
    parts = {"loss_gt": l_gt.detach()}
    if alpha >= 1.0 or teacher is None:
        if alpha < 1.0:
            raise ValueError(f"alpha {alpha} < 1 needs teacher outputs")
        return l_gt, parts
    l_t = loss_fn(out, teacher)
    parts["loss_teacher"] = l_t.detach()
    return alpha * l_gt + (1.0 - alpha) * l_t, parts
