"""Fixtures for tests/train: small image folders and paired layouts, an isolated builtin cache, tiny configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.imaging.io import write_image


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


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """The builtin source writes into a per-session temporary cache, never the user's home."""
    monkeypatch.setenv("EDGESHARP_CACHE", str(tmp_path_factory.getbasetemp() / "edgesharp-cache"))


@pytest.fixture
def sharp_folder(tmp_path) -> Path:
    folder = tmp_path / "sharp"
    for i in range(6):
        write_image(folder / f"img{i}.png", make_image(48 + 8 * (i % 2), 64, i))
    return folder


@pytest.fixture
def gopro_root(tmp_path) -> Path:
    """Two scenes in the GoPro layout: scene/blur/*.png with scene/sharp/*.png."""
    from edge.imaging.degrade import bicubic_blur

    root = tmp_path / "gopro"
    for s in range(2):
        for i in range(3):
            sharp = make_image(40, 48, 10 * s + i)
            write_image(root / f"scene{s}" / "sharp" / f"{i:06d}.png", sharp)
            write_image(root / f"scene{s}" / "blur" / f"{i:06d}.png", bicubic_blur(sharp, 1.8, 1.0))
    return root


def tiny_config(out_dir: Path, **sections):
    """A TrainConfig for nafnet-test on builtin-free tiny data; sections override dataclass fields."""
    from train.config import TrainConfig, _merge

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
    from train.config import validate

    return validate(_merge(TrainConfig(), base))
