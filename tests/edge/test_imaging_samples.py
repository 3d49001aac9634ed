"""Package-shipped photographs: offline, RGB uint8, never the test sets."""

from __future__ import annotations

import numpy as np

from edgesharp.edge.imaging.samples import package_photographs, to_rgb_u8


def test_package_photographs_are_rgb_u8_and_named_by_source():
    photos = package_photographs()
    assert len(photos) >= 10
    for name, img in photos.items():
        assert name.split("_", 1)[0] in ("skimage", "sklearn", "mpl")
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert "kodim" not in name and "gopro" not in name


def test_colour_only_drops_grey_originals():
    everything, colour = package_photographs(), package_photographs(colour_only=True)
    assert set(colour) < set(everything)
    assert "skimage_camera" in everything and "skimage_camera" not in colour
    assert "skimage_astronaut" in colour


def test_to_rgb_u8_handles_float_bool_grey_and_alpha():
    assert to_rgb_u8(np.ones((2, 3), bool)).tolist() == np.full((2, 3, 3), 255).tolist()
    np.testing.assert_array_equal(to_rgb_u8(np.full((2, 2), 0.5, np.float32)), np.full((2, 2, 3), 127, np.uint8))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 9
    assert to_rgb_u8(rgba).shape == (2, 2, 3) and to_rgb_u8(rgba).max() == 0
