"""Data sources: on-the-fly degradation, GoPro and RealBlur pairs, builtin images, weights, prepare."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import make_image, tiny_config

from edgesharp.edge.imaging.io import read_image, write_image
from edgesharp.train import data
from edgesharp.train.config import ConfigError
from edgesharp.train.data import DataError


def test_folder_source_degrades_crops_and_repeats_by_seed_epoch_index(sharp_folder, tmp_path):
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "folder", "path": str(sharp_folder)}]})
    ds = data.build_dataset(cfg)
    ds.set_subsets([1])
    s = ds[2]
    assert s["lq"].shape == s["gt"].shape == (3, 32, 32) and s["lq"].dtype == torch.uint8
    assert (s["lq"].float() - s["gt"].float()).abs().mean() > 1.0, "subset 1 must blur the crop"
    again = ds[2]
    assert torch.equal(again["lq"], s["lq"]) and torch.equal(again["gt"], s["gt"])
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["gt"], s["gt"]), "a new epoch draws new crops"


def test_rescale_takes_larger_crops_area_downscaled_and_fits_small_images(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    write_image(tmp_path / "ramp" / "ramp.png", ramp)
    write_image(tmp_path / "small" / "small.png", ramp[:40, :40])

    def spans(folder, rescale):
        cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "folder", "path": str(folder)}], "rescale": rescale})
        ds = data.build_dataset(cfg)
        gts = [ds[i]["gt"] for i in range(8)]
        assert all(g.shape == (3, 32, 32) for g in gts)
        return [int(g.max()) - int(g.min()) for g in gts]

    assert spans(tmp_path / "ramp", [1.0, 1.0]) == [31] * 8
    # a 64-pixel window of the ramp, averaged in pairs: the crop spans twice the grey levels
    assert all(61 <= s <= 63 for s in spans(tmp_path / "ramp", [2.0, 2.0]))
    # a 40-pixel image cannot give a 64-pixel window: the factor shrinks to fit
    assert all(37 <= s <= 39 for s in spans(tmp_path / "small", [2.0, 2.0]))
    with pytest.raises(ConfigError, match="data.rescale"):
        tiny_config(tmp_path / "run", data={"rescale": [0.5, 2.0]})


def test_loader_batches_are_the_same_with_and_without_workers(sharp_folder, tmp_path):
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "folder", "path": str(sharp_folder)}]})
    ds = data.build_dataset(cfg)
    batches = []
    for workers in (0, 2):
        sampler = data.ResumableSampler(ds, seed=0)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers,
                                             collate_fn=data.collate, worker_init_fn=data.worker_init)
        batches.append([b["lq"] for b in loader])
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))
    sampler = data.ResumableSampler(ds, seed=0)
    sampler.start = 2
    assert list(sampler) == list(data.ResumableSampler(ds, seed=0))[2:]


def test_gopro_layout_pairs_by_name_and_crops_jointly(gopro_root, tmp_path):
    pairs = data.gopro_pairs(gopro_root)
    assert len(pairs) == 6 and pairs[0][2] == "scene0__000000"
    ds = data.PairedImages(pairs, crop=32, seed=0)
    s = ds[1]
    assert s["lq"].shape == (3, 32, 32) and s["key"] == "scene0__000001"
    assert 0 < (s["lq"].float() - s["gt"].float()).abs().mean() < 40
    # the crop, flip and rotation are shared: a pair of identical files gives identical tensors
    same = data.PairedImages([(p[1], p[1], p[2]) for p in pairs], crop=32, seed=0)
    assert all(torch.equal(same[i]["lq"], same[i]["gt"]) for i in range(len(same)))
    (gopro_root / "scene1" / "sharp" / "000002.png").unlink()
    with pytest.raises(DataError, match="000002.png: no sharp counterpart"):
        data.gopro_pairs(gopro_root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*/blur"):
        data.gopro_pairs(tmp_path / "empty")


def test_realblur_list_file(gopro_root, tmp_path):
    listing = tmp_path / "RealBlur_J_train_list.txt"
    lines = [f"scene0/sharp/{i:06d}.png scene0/blur/{i:06d}.png" for i in range(3)]
    listing.write_text("\n".join(lines) + "\n")
    pairs = data.realblur_pairs(listing, root=gopro_root)
    assert [p[1].name for p in pairs] == ["000000.png", "000001.png", "000002.png"]
    assert pairs[0][0].parent.name == "blur"
    listing.write_text("scene0/sharp/000000.png scene0/blur/missing.png\n")
    with pytest.raises(DataError, match=r"RealBlur_J_train_list.txt:1: .*missing.png not found"):
        data.realblur_pairs(listing, root=gopro_root)


def test_weighted_sources_draw_in_proportion(sharp_folder, gopro_root, tmp_path):
    cfg = tiny_config(tmp_path / "run", data={"sources": [
        {"kind": "folder", "path": str(sharp_folder), "weight": 3.0},
        {"kind": "gopro", "path": str(gopro_root), "weight": 1.0},
    ]})
    ds = data.build_dataset(cfg)
    keys = [ds[i]["key"] for i in range(len(ds))] + [ds[i]["key"] for i in range(len(ds))]
    ds.set_epoch(1)
    keys += [ds[i]["key"] for i in range(len(ds))] * 1
    from_folder = sum(k.startswith("img") for k in keys) / len(keys)
    assert 0.55 < from_folder < 0.95


def test_epoch_samples_lengthen_small_epochs_with_fresh_crops(sharp_folder, gopro_root, tmp_path):
    sources = [{"kind": "folder", "path": str(sharp_folder)}, {"kind": "gopro", "path": str(gopro_root)}]
    ds = data.build_dataset(tiny_config(tmp_path / "run", data={"sources": sources, "epoch_samples": 64}))
    assert len(ds) == 64
    draws = [ds[i] for i in range(len(ds))]
    folder = [d for d in draws if d["key"].startswith("img")]
    assert len({d["key"] for d in folder}) == 6 and len(folder) > 12
    # an image drawn twice in one epoch comes back as a different crop or degradation
    first = {}
    for d in folder:
        if d["key"] in first:
            assert not torch.equal(first[d["key"]], d["lq"])
        first[d["key"]] = d["lq"]
    np.testing.assert_array_equal(ds[5]["lq"].numpy(), draws[5]["lq"].numpy())


def test_builtin_source_has_photos_and_generated_content(tmp_path):
    from edgesharp.train.builtin import GENERATED_KINDS, ensure_builtin, generate

    folder = ensure_builtin("train", count=5)
    names = sorted(p.stem for p in folder.glob("*.png"))
    assert any(n.startswith("skimage_") for n in names) and any(n.startswith("gen_text") for n in names)
    assert not any("kodim" in n or "gopro" in n.lower() for n in names)
    assert sum(n.startswith("gen_") for n in names) == 5
    for kind in GENERATED_KINDS:
        img = generate(kind, 1, width=192, height=128)
        assert img.shape == (128, 192, 3) and img.dtype == np.uint8 and img.std() > 5
    np.testing.assert_array_equal(generate("text", 7, 96, 64), generate("text", 7, 96, 64))
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "builtin"}], "builtin_count": 5})
    assert len(data.build_dataset(cfg)) == len(names)
    split = [{"kind": "builtin", "content": "photos", "weight": 3}, {"kind": "builtin", "content": "generated"}]
    ds = data.build_dataset(tiny_config(tmp_path / "split", data={"sources": split, "builtin_count": 5}))
    photos, generated = ds.sources
    assert len(generated) == 5 and len(photos) == len(names) - 5
    assert not any(f.name.startswith("gen_") for f in photos.files)
    np.testing.assert_allclose(ds.probs, [0.75, 0.25])


def test_only_builtin_sources_take_a_content_filter(sharp_folder, tmp_path):
    from edgesharp.train.config import ConfigError

    with pytest.raises(ConfigError, match=r"data.sources.0.content: only a builtin source"):
        tiny_config(tmp_path / "a", data={"sources": [{"kind": "folder", "path": str(sharp_folder), "content": "photos"}]})
    with pytest.raises(ConfigError, match=r"data.sources.0.content: expected one of all, photos, generated, got 'faces'"):
        tiny_config(tmp_path / "b", data={"sources": [{"kind": "builtin", "content": "faces"}]})


def test_cached_teacher_needs_paired_sources(sharp_folder, gopro_root, tmp_path):
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "folder", "path": str(sharp_folder)}]})
    with pytest.raises(DataError, match="cached teacher needs fixed inputs"):
        data.build_dataset(cfg, teacher_dir=tmp_path)
    cache = tmp_path / "cache"
    for blur, _, key in data.gopro_pairs(gopro_root):
        write_image(cache / f"{key}.png", 255 - read_image(blur))
    ds = data.PairedImages(data.gopro_pairs(gopro_root), crop=32, seed=0, teacher_dir=cache)
    s = ds[3]
    assert torch.equal(s["teacher"], 255 - s["lq"]), "teacher outputs are cropped and flipped with their input"
    (cache / "scene1__000001.png").unlink()
    with pytest.raises(DataError, match="no cached teacher output for 1 of 6 inputs.*scene1__000001"):
        data.PairedImages(data.gopro_pairs(gopro_root), crop=32, teacher_dir=cache)


def test_prepare_cuts_non_overlapping_patches_and_counts_bad_files(tmp_path):
    src = tmp_path / "hr"
    write_image(src / "big.png", make_image(70, 100, 1))  # 2 x 3 patches of 32
    write_image(src / "small.png", make_image(20, 20, 2))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    stats = data.prepare_patches([src], tmp_path / "patches", size=32)
    assert stats == {"images": 3, "patches": 6, "unreadable": 1, "too_small": 1, "skipped_existing": 0}
    big = read_image(src / "big.png")
    np.testing.assert_array_equal(read_image(tmp_path / "patches" / "big_00032_00064.png"), big[32:64, 64:96])
    paired = data.prepare_patches([src], tmp_path / "paired", size=32, degrade=[1])
    assert paired["patches"] == 6
    pairs = data.gopro_pairs(tmp_path / "paired")
    assert len(pairs) == 6 and pairs[0][2] == "big_00000_00000"
    assert data.prepare_patches([src], tmp_path / "paired", size=32, degrade=[1])["skipped_existing"] == 6


def test_edgesharp_train_prepare_reports_counts(tmp_path, capsys):
    from edgesharp.edge.cli import main as edgesharp

    write_image(tmp_path / "hr" / "a.png", make_image(64, 96, 3))
    (tmp_path / "hr" / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    assert edgesharp(["train", "prepare", str(tmp_path / "hr"), "--out", str(tmp_path / "p"), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "6 patches from 2 images" in out and "1 unreadable" in out
    assert len(list((tmp_path / "p").glob("*.png"))) == 6


def split_folder(folder, n_val: int = 2, n_train: int = 3, h: int = 80, w: int = 96):
    """A folder of images whose names fall in the val and train parts (`edgesharp.edge.imaging.splits.split_of`)."""
    from edgesharp.edge.imaging.splits import split_of

    names = [f"p{i}.png" for i in range(200)]
    val = [n for n in names if split_of(n) == "val"][:n_val]
    train = [n for n in names if split_of(n) == "train"][:n_train]
    assert len(val) == n_val and len(train) == n_train
    for i, name in enumerate(val + train):
        write_image(folder / name, make_image(h, w, i))
    return sorted(val), sorted(train)


def test_folder_source_split_keeps_one_part_of_the_folder(tmp_path):
    val, train = split_folder(tmp_path / "photos")
    for part, expected in (("val", val), ("train", train), ("", sorted(val + train))):
        src = {"kind": "folder", "path": str(tmp_path / "photos"), "split": part}
        ds = data.build_dataset(tiny_config(tmp_path / part, data={"sources": [src]}))
        assert sorted(f.name for f in ds.sources[0].files) == expected, part
        assert {ds[i]["key"] for i in range(len(ds))} <= {n.removesuffix(".png") for n in expected}
    only_train = tmp_path / "only-train"
    only_train.mkdir()
    for name in train:
        (only_train / name).write_bytes((tmp_path / "photos" / name).read_bytes())
    cfg = tiny_config(tmp_path / "none", data={"sources": [{"kind": "folder", "path": str(only_train), "split": "val"}]})
    with pytest.raises(DataError, match="data.sources.0: .*holds no images"):
        data.build_dataset(cfg)


@pytest.mark.parametrize("cache_images", [2000, 0])
def test_folder_source_downscale_reads_each_image_once_at_the_smaller_size(tmp_path, cache_images):
    _, train = split_folder(tmp_path / "photos", n_val=0, n_train=2)
    src = {"kind": "folder", "path": str(tmp_path / "photos"), "downscale": 2}
    ds = data.build_dataset(tiny_config(tmp_path / "run", data={"sources": [src], "cache_images": cache_images}))
    images = ds.sources[0]
    assert images.downscale == 2.0 and (images.cache is not None) == bool(cache_images)
    for i in range(len(images)):
        full = read_image(images.files[i]).astype(float)
        small = images.read(i)
        assert small.shape == (40, 48, 3) and small.dtype == np.uint8
        blocks = full.reshape(40, 2, 48, 2, 3).mean(axis=(1, 3))  # area downscale by 2: means of 2x2 blocks
        assert np.abs(small - blocks).max() <= 1
        if images.cache is not None:
            np.testing.assert_array_equal(images.cache[i], small)
    assert all(ds[i]["gt"].shape == (3, 32, 32) for i in range(4))
    # a horizontal ramp read at half size: a 32-pixel crop spans twice the grey levels
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (96, 1, 3))
    write_image(tmp_path / "ramp" / "ramp.png", ramp)
    src = {"kind": "folder", "path": str(tmp_path / "ramp"), "downscale": 2}
    ds = data.build_dataset(tiny_config(tmp_path / "ramp-run", data={"sources": [src], "cache_images": cache_images}))
    ds.set_subsets([9])
    gts = [ds[i]["gt"] for i in range(6)]
    assert all(61 <= int(g.max()) - int(g.min()) <= 63 for g in gts)


def test_webcam_subset_changes_the_target_with_the_scene(tmp_path):
    """Subset 11's scene change (darker or another tone curve) is in the ground truth as in the input."""
    write_image(tmp_path / "grey" / "grey.png", np.full((48, 48, 3), 128, np.uint8))
    cfg = tiny_config(tmp_path / "run", data={"sources": [{"kind": "folder", "path": str(tmp_path / "grey")}]})
    ds = data.build_dataset(cfg)
    ds.set_subsets([3])
    assert all(bool((ds[i]["gt"] == 128).all()) for i in range(12))
    ds.set_subsets([11])
    samples = [ds[i] for i in range(24)]
    changed = [s for s in samples if not bool((s["gt"] == 128).all())]
    assert 0 < len(changed) < len(samples)
    for s in changed:
        assert len(s["gt"].unique()) == 1, "a flat scene stays flat in the target"
        # the input is the changed scene, degraded: its mean follows the target, not the original grey
        assert abs(s["lq"].float().mean() - s["gt"].float().mean()) < 3
