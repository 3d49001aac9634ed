"""The fixed train/validation split and the x2 area downscale of the training photos."""

from __future__ import annotations

import numpy as np
import pytest

from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import write_image
from edgesharp.edge.imaging.splits import downscale, split_files, split_of


def test_split_is_a_rule_on_the_file_name_alone(tmp_path):
    names = [f"photo_{i:03d}.png" for i in range(200)]
    img = np.zeros((4, 4, 3), np.uint8)
    for n in names:
        write_image(tmp_path / n, img)
    val = [p.name for p in split_files(tmp_path, "val")]
    train = [p.name for p in split_files(tmp_path, "train")]
    assert sorted(val + train) == names and not set(val) & set(train)
    assert 10 <= len(val) <= 30  # about one in ten
    assert all(split_of(n) == "val" for n in val) and split_of("a/b/" + val[0]) == "val"
    # adding files moves no existing file between the parts
    write_image(tmp_path / "zz_new.png", img)
    assert set(val) <= {p.name for p in split_files(tmp_path, "val")}
    assert len(split_files(tmp_path, None)) == 201
    with pytest.raises(EdgesharpError, match="split 'test'"):
        split_files(tmp_path, "test")


def test_the_training_photos_validation_part(shared_data):
    folder = shared_data / "train_photos"
    if not folder.is_dir():
        pytest.skip("train_photos not present")
    val = split_files(folder, "val")
    assert len(val) == 62 and len({p.name.split("_")[0] for p in val}) >= 8  # spread over the sources


def test_downscale_is_area_averaging():
    img = np.zeros((8, 6, 3), np.uint8)
    img[::2, ::2] = 200
    out = downscale(img, 2)
    assert out.shape == (4, 3, 3) and np.all(out == 50)
    assert downscale(img, 1) is img
    with pytest.raises(EdgesharpError):
        downscale(img, 0.5)
