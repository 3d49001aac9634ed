"""Bundles of untrained (random-weight, or a few steps fitted) networks, calibrated in seconds on synthetic images:
an architecture's speed before anyone trains it (`edgesharp.benchmarks.speed_bundles`), and the real bundles the
tests of every package run on. Offline, no shared data.

    from edgesharp.calibrate.untrained import build_tiny_bundle
    bundle_dir = build_tiny_bundle(tmp_path / "bundle")          # nafnet-test, random weights
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesharp.calibrate.pipeline import CalibrateOptions, CalibrationResult, calibrate_model


def synthetic_images(count: int = 3, h: int = 64, w: int = 80, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Deterministic RGB uint8 images with edges, gradients, stripes and noise (no files needed)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], axis=-1)
        for _ in range(5):
            y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
            img[y0 : y0 + rng.integers(4, h // 2), x0 : x0 + rng.integers(4, w // 2)] = rng.integers(0, 256, 3)
        img[:: 5 + i, :, 1] = 255 - img[:: 5 + i, :, 1]
        img += rng.normal(0, 5, img.shape)
        out.append((f"synthetic{i}", np.clip(img, 0, 255).astype(np.uint8)))
    return out


def write_images(folder: str | Path, images: list[tuple[str, np.ndarray]]) -> Path:
    from edgesharp.edge.imaging.io import write_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in images:
        write_image(folder / f"{name}.png", img)
    return folder


def tiny_options(image_dir: Path, **overrides) -> CalibrateOptions:
    """Options that keep a calibrate run to seconds: few small images, tiny calibration subset."""
    defaults = dict(val_images=image_dir, calib_images=image_dir, calib_crop=48, subset_size=4,
                    sizes=[(32, 48), (48, 64)], max_ssim_drop=1.0, accuracy_control=False,
                    guard_classes=[], class_timing_s=0.0)  # the class guard (subprocesses) only where a test asks
    defaults.update(overrides)
    return CalibrateOptions(**defaults)


def build_tiny_bundle(out_dir: str | Path, arch: str = "nafnet-test", steps: int = 0, seed: int = 0,
                      **overrides) -> Path:
    """Build a bundle of a randomly initialised `arch` (after `steps` quick L1 steps on synthetic pairs).

    The guard is open (max drop 1.0) so the bundle always has INT8; metrics in it are real but meaningless.
    """
    result = build_tiny_result(out_dir, arch=arch, steps=steps, seed=seed, **overrides)
    if result.bundle is None:
        raise RuntimeError(f"tiny bundle was not written: {result.failure}")
    return result.bundle


def build_tiny_result(out_dir: str | Path, arch: str = "nafnet-test", steps: int = 0, seed: int = 0,
                      model=None, **overrides) -> CalibrationResult:
    import torch

    from edgesharp.train import models

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    if model is None:
        model = models.create(arch)
        perturb(model, seed)
        if steps:
            fit(model, steps, seed)
    model.eval()
    images = write_images(out_dir.parent / f"{out_dir.name}-images", synthetic_images(seed=seed))
    info = {"arch": model.arch, "arch_config": dict(model.arch_config), "step": steps, "phase": 0,
            "config": {"source": "edgesharp.calibrate.untrained.build_tiny_bundle"}, "metrics": {}, "weights": "model", "path": None}
    return calibrate_model(model, info, out_dir, tiny_options(images, **overrides))


def perturb(model, seed: int, scale: float = 0.5, norms: bool = False) -> None:
    """NAFNet starts with zero residual scales (an identity-like block); give them values so INT8 and export
    parity matter. `norms` also moves LayerNorm weights and biases off 1 and 0."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.copy_(torch.randn(p.shape, generator=g) * scale)
            elif norms and "norm" in name:
                p.add_(torch.randn(p.shape, generator=g) * scale)


def fit(model, steps: int, seed: int) -> None:
    import torch

    from edgesharp.edge.imaging.degrade import degrade_level

    rng = np.random.default_rng(seed)
    pairs = []
    for name, img in synthetic_images(4, 48, 48, seed + 1):
        blurred, _ = degrade_level(img, "medium", name)
        pairs.append((blurred, img))
    x = torch.from_numpy(np.stack([b for b, _ in pairs]).transpose(0, 3, 1, 2).astype(np.float32) / 255)
    y = torch.from_numpy(np.stack([s for _, s in pairs]).transpose(0, 3, 1, 2).astype(np.float32) / 255)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.permutation(len(pairs))[:2])
        loss = (model(x[idx]) - y[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def sample_frame(h: int, w: int, seed: int = 3) -> np.ndarray:
    """One synthetic RGB uint8 frame of any size."""
    return synthetic_images(1, h, w, seed)[0][1]
