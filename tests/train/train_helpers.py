"""Helpers for tests/train (a unique module name, so no other folder's conftest can shadow it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_image(h: int, w: int, seed: int) -> np.ndarray:
    """A deterministic uint8 RGB image with gradients, blocks and stripes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], axis=-1)
    for _ in range(5):
        y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        img[y0 : y0 + rng.integers(3, h // 2), x0 : x0 + rng.integers(3, w // 2)] = rng.integers(0, 256, 3)
    img[::5, :, 1] = 255 - img[::5, :, 1]
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def tiny_config(out_dir: Path, **sections):
    """A TrainConfig for nafnet-test on builtin-free tiny data; sections override dataclass fields."""
    from edgesharp.train.config import TrainConfig, _merge

    base = {
        "arch": "nafnet-test",
        "out_dir": str(out_dir),
        "progress": False,
        "data": {"crop": 32, "batch_size": 2, "workers": 0},
        "phases": [{"subsets": [1], "steps": 4, "lr": 1e-3, "warmup_steps": 1},
                   {"subsets": [3, 5], "steps": 4, "lr": 5e-4, "warmup_steps": 0}],
        "log_every": 1,
        "save_every": 100,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    from edgesharp.train.config import validate

    return validate(_merge(TrainConfig(), base))
