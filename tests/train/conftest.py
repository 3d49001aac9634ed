"""Fixtures for tests/train: small image folders and paired layouts, an isolated builtin cache, tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import make_image

from edgesharp.edge.imaging.io import write_image


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
    from edgesharp.edge.imaging.degrade import bicubic_blur

    root = tmp_path / "gopro"
    for s in range(2):
        for i in range(3):
            sharp = make_image(40, 48, 10 * s + i)
            write_image(root / f"scene{s}" / "sharp" / f"{i:06d}.png", sharp)
            write_image(root / f"scene{s}" / "blur" / f"{i:06d}.png", bicubic_blur(sharp, 1.8, 1.0))
    return root
