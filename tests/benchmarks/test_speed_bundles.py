"""Speed-only bundles: a registry architecture with random weights, as a loadable, runnable bundle."""

from __future__ import annotations

import numpy as np
import pytest

from edgesharp.benchmarks import speed_bundles


def test_a_speed_bundle_runs_like_a_real_one(tmp_path, capsys):
    pytest.importorskip("nncf")
    from edgesharp import Sharpener

    assert speed_bundles.main(["nafnet-test:width=4,enc_blk_nums=0/1,dec_blk_nums=1/0", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "nafnet-test-width=4-enc_blk_nums=0-1-dec_blk_nums=1-0"  # one folder, no nesting
    assert str(folder) in capsys.readouterr().out
    with Sharpener(folder, precision="int8") as sharpener:
        assert sharpener.bundle.name == "nafnet-test-width=4-enc_blk_nums=0-1-dec_blk_nums=1-0-untrained"
        assert sharpener.bundle.arch_config["width"] == 4
        assert sharpener.bundle.arch_config["enc_blk_nums"] == [0, 1]
        frame = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
        assert sharpener.enhance(frame).shape == frame.shape


def test_an_unknown_override_is_a_one_line_error(tmp_path, capsys):
    assert speed_bundles.main(["nafnet-test:nonsense", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: nafnet-test:nonsense: expected key=value")
