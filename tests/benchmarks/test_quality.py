"""The quality suite: degraded sets, scoring, real pairs, the comparison sheet, and the Kodak24 reference table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesharp.benchmarks import baselines, quality
from edgesharp.benchmarks.images import load_pairs, load_sharp_images
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.io import read_image, write_image


def test_baseline_rows_on_package_images(tmp_path):
    cfg = quality.QualityConfig(limit=2, max_side=64, sheet=tmp_path / "sheet.png")
    result = quality.run_quality(cfg)
    rows = {(r["method"], r["level"]): r for r in result["rows"]}
    assert set(rows) == {(m, lv) for m in ("blurred input", "unsharp mask", "unsharp mask (blind)", "unsharp (reference)")
                         for lv in ("heavy", "medium", "low")}
    assert result["unsharp_blind"] == baselines.UNSHARP_BLIND
    # the blind method applies one filter whatever the level; the per-level one does not
    methods = {m.label: m for m in quality._baseline_methods(reference=False)}
    img = load_sharp_images(None, limit=1, max_side=64)[0].sharp
    blind, tuned = methods["unsharp mask (blind)"].apply, methods["unsharp mask"].apply
    assert np.array_equal(blind(img, "heavy"), blind(img, "low"))
    assert not np.array_equal(tuned(img, "heavy"), tuned(img, "low"))
    for lv in ("heavy", "medium", "low"):
        assert rows[("blurred input", lv)]["count"] == 2
    # blur gets lighter from heavy to low
    assert rows[("blurred input", "heavy")]["ssim"] < rows[("blurred input", "medium")]["ssim"] < rows[("blurred input", "low")]["ssim"]
    sheet = read_image(tmp_path / "sheet.png")
    assert sheet.shape[0] > 3 * 64 and sheet.shape[1] > 3 * 64


def test_real_pairs_are_scored_against_their_sharp_frame(tmp_path, test_image):
    from edgesharp.benchmarks.baselines import unsharp_mask

    blurred = unsharp_mask(test_image, 2.0, -0.8)  # negative amount: a blur
    write_image(tmp_path / "scene_blur.png", blurred)
    write_image(tmp_path / "scene_sharp.png", test_image)
    write_image(tmp_path / "orphan_blur.png", blurred)
    pairs = load_pairs(tmp_path)
    assert [p.name for p in pairs] == ["scene"]
    result = quality.run_quality(quality.QualityConfig(levels=[], pairs=tmp_path))
    rows = {r["method"]: r for r in result["rows"]}
    assert all(r["level"] == quality.PAIRS_LEVEL for r in rows.values())
    assert rows["unsharp mask"]["ssim"] > rows["blurred input"]["ssim"]


def test_pairs_folder_without_pairs_is_a_clear_error(tmp_path, test_image):
    write_image(tmp_path / "a.png", test_image)
    with pytest.raises(EdgesharpError, match="no \\*_blur / \\*_sharp image pairs"):
        load_pairs(tmp_path)


def test_detail_crop_finds_the_textured_corner():
    img = np.full((64, 64, 3), 128, np.uint8)
    img[40:, 40:] = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    y, x, side = quality.detail_crop(img, 16)
    assert side == 16 and y >= 36 and x >= 36


def test_students_are_scored_through_the_runtime(tiny_bundle):
    cfg = quality.QualityConfig(models=[tiny_bundle], limit=1, max_side=48, levels=["medium"],
                                backends=["openvino"], precisions=["fp32", "int8"], reference_unsharp=False)
    rows = {r["method"]: r for r in quality.run_quality(cfg)["rows"]}
    name = "nafnet-test openvino fp32"
    assert name in rows and "nafnet-test openvino int8" in rows
    assert rows[name]["kind"] == "student" and rows[name]["backend"] == "openvino"
    assert 0 <= rows[name]["ssim"] <= 1


@pytest.mark.slow
def test_kodak24_reproduces_the_reference_table(shared_data):
    """Blurred input and the reference unsharp settings give shared/data/README.md's SSIM within 0.003."""
    expected = {"blurred input": {"heavy": 0.779, "medium": 0.881, "low": 0.970},
                "unsharp (reference)": {"heavy": 0.831, "medium": 0.919, "low": 0.970}}
    methods = [m for m in quality._baseline_methods(reference=True) if m.label in expected]
    cfg = quality.QualityConfig(images=shared_data / "kodak24")
    rows, _ = quality.score_methods(methods, quality.degraded_sets(cfg))
    got = {(r["method"], r["level"]): r["ssim"] for r in rows}
    assert len(rows) == 6 and all(r["count"] == 24 for r in rows)
    for method, levels in expected.items():
        for level, value in levels.items():
            assert abs(got[(method, level)] - value) <= 0.003, f"{method} {level}: {got[(method, level)]} vs {value}"


def test_teacher_from_an_edgesharp_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="--teacher needs torch")
    from edgesharp.edge.imaging.metrics import ssim
    from edgesharp.train import models
    from edgesharp.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = models.create("nafnet-test").eval()
    ckpt = save_checkpoint(tmp_path / "teacher.pt", net)
    cfg = quality.QualityConfig(teacher=ckpt, limit=1, max_side=40, levels=["low"], reference_unsharp=False)
    rows = {r["kind"]: r for r in quality.run_quality(cfg)["rows"] if r["kind"] == "teacher"}
    assert rows["teacher"]["method"].startswith("teacher nafnet-test")
    sample = quality.degraded_sets(cfg)["low"][0]
    with torch.no_grad():
        x = torch.from_numpy(sample.blurred.transpose(2, 0, 1).copy())[None].float() / 255
        y = net(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert rows["teacher"]["ssim"] == pytest.approx(ssim(sample.sharp, y), abs=1e-3)


def test_report_counts_images_made_worse_than_their_blurred_input(tmp_path, capsys):
    from edgesharp.benchmarks import report

    def row(method, kind, level, scores):
        return {"suite": "quality", "kind": kind, "method": method, "level": level, "ssim": 0.0, "psnr": 0.0,
                "images": {k: {"ssim": v, "psnr": 0.0} for k, v in scores.items()}}

    results = {"quality": {"rows": [
        row("blurred input", "baseline", "low", {"a": 0.90, "b": 0.80, "c": 0.70}),
        row("unsharp mask", "baseline", "low", {"a": 0.10, "b": 0.10, "c": 0.10}),
        row("student", "student", "low", {"a": 0.91, "b": 0.79, "c": 0.65}),
    ], "images": {"low": ["a", "b", "c"]}}}
    (r,) = report.below_input_rows(results)
    assert (r["method"], r["below"], r["count"]) == ("student", 2, 3) and r["worst"] == pytest.approx(-0.05)
    assert "| student | low | 2 of 3 | -0.0500 |" in report.render_markdown(results)
    # python -m edgesharp.benchmarks.report re-renders a stored run's report.md
    results["format"] = report.FORMAT
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert report.main([str(tmp_path / "results.json")]) == 0
    assert "2 of 3" in (tmp_path / "report.md").read_text()
    assert report.main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such results file" in capsys.readouterr().out


def test_sharp_images_of_one_split_at_a_downscale(tmp_path, test_image):
    from edgesharp.edge.imaging.splits import split_of

    names = [f"photo_{i:03d}.png" for i in range(40)]
    for name in names:
        write_image(tmp_path / name, test_image)
    val = sorted(n for n in names if split_of(n) == "val")
    assert val and len(val) < len(names)
    samples = load_sharp_images(tmp_path, split="val", downscale=2)
    assert [s.name + ".png" for s in samples] == val
    h, w = test_image.shape[:2]
    assert samples[0].sharp.shape == (round(h / 2), round(w / 2), 3)
    assert len(load_sharp_images(tmp_path, split="train")) == len(names) - len(val)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgesharpError, match="no images found in its val split"):
        load_sharp_images(tmp_path / "empty", split="val")
