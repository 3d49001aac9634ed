"""calibrate.lighter: linking a lighter variant into a bundle's manifest, with its measured cost."""

from __future__ import annotations

import json
import shutil

import pytest

from edgesharp.calibrate import lighter
from edgesharp.edge.bundle import load_bundle
from edgesharp.edge.errors import EdgesharpError


@pytest.fixture
def two_bundles(tiny_bundle_dir, tmp_path):
    models = tmp_path / "models"
    main, light = models / "default", models / "default-lighter"
    shutil.copytree(tiny_bundle_dir, main)
    shutil.copytree(tiny_bundle_dir, light)
    return main, light


def test_time_rounds_alternates_and_times_each_model(two_bundles, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="edgesharp.calibrate.lighter"):
        times = lighter.time_rounds(list(two_bundles), (64, 48), rounds=2, seconds=0.05)
    assert len(times) == 2 and all(len(t) == 2 and all(ms > 0 for ms in t) for t in times)
    rounds = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "edgesharp.calibrate.lighter"]
    assert rounds == ["round 1/2", "round 2/2"]


def test_link_records_the_median_ratio_and_the_runtime_reads_it(two_bundles, monkeypatch):
    main, light = two_bundles
    files_before = load_bundle(main).manifest["files"]
    monkeypatch.setattr(lighter, "time_rounds", lambda paths, size, rounds, seconds: [[10.0, 10.0, 12.0],
                                                                                      [8.0, 9.0, 6.0]])
    entry = lighter.link(main, light, (1280, 720), rounds=3, command="python -m edgesharp.calibrate.lighter x y")
    assert entry["path"] == "../default-lighter" and entry["cost"] == 0.8  # ratios 0.8, 0.9, 0.5
    assert entry["measured"]["ms_per_frame"] == [10.0, 8.0] and entry["measured"]["size"] == "1280x720"
    assert entry["measured"]["command"].startswith("python -m edgesharp.calibrate.lighter")
    bundle = load_bundle(main)  # files and checksums untouched
    assert bundle.manifest["files"] == files_before
    assert bundle.lighter().cost == 0.8 and bundle.lighter().bundle.path == main / "../default-lighter"
    assert lighter.unlink(main) and load_bundle(main).lighter() is None and not lighter.unlink(main)


def test_a_variant_that_is_not_lighter_is_refused_and_the_manifest_kept(two_bundles, monkeypatch):
    main, light = two_bundles
    before = (main / "manifest.json").read_bytes()
    monkeypatch.setattr(lighter, "time_rounds", lambda *a: [[10.0], [10.5]])
    with pytest.raises(EdgesharpError, match=r"takes 1.05x the time of .*default here .*it is not lighter"):
        lighter.link(main, light)
    with pytest.raises(EdgesharpError, match="is the bundle itself"):
        lighter.link(main, main)
    assert (main / "manifest.json").read_bytes() == before


def test_cli_errors_are_one_line(two_bundles, tmp_path, capsys):
    main, _ = two_bundles
    assert lighter.main([str(main), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and err.count("\n") == 1
    assert lighter.main([str(main), "--unlink"]) == 0
    assert "had no lighter variant" in capsys.readouterr().out
    assert json.loads((main / "manifest.json").read_text())["name"]
