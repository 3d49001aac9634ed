"""Image IO: every supported format and depth, grey/alpha handling, corrupt files, atomic writes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from edgesharp.edge.errors import EdgesharpError, ImageReadError, OutputError, UsageError
from edgesharp.edge.imaging import io


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_lossless_round_trip(tmp_path, test_image, ext):
    path = io.write_image(tmp_path / f"a{ext}", test_image) if ext != ".webp" else None
    if ext == ".webp":
        ok, buf = cv2.imencode(".webp", cv2.cvtColor(test_image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 101])
        path = tmp_path / "a.webp"
        path.write_bytes(buf.tobytes())
    np.testing.assert_array_equal(io.read_image(path), test_image)


def test_jpeg_round_trip_is_close(tmp_path, test_image):
    smooth = cv2.GaussianBlur(test_image, (0, 0), 3)  # JPEG's chroma subsampling needs smooth colour
    out = io.read_image(io.write_image(tmp_path / "a.jpg", smooth, quality=98))
    assert out.shape == smooth.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth).mean() < 3


def test_bgr_and_rgb_orders(tmp_path, test_image):
    path = io.write_image(tmp_path / "a.png", test_image)
    np.testing.assert_array_equal(io.read_image(path, color="bgr"), test_image[:, :, ::-1])
    np.testing.assert_array_equal(cv2.imread(str(path))[:, :, ::-1], test_image)


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    img16 = np.zeros((8, 10, 3), np.uint16)
    img16[..., 0] = 65535
    img16[..., 1] = 257 * 100
    img16[..., 2] = 257 * 7 + 100  # rounds to 7
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), img16)
    out = io.read_image(path, color="bgr")
    assert out.dtype == np.uint8
    assert (out[..., 0] == 255).all() and (out[..., 1] == 100).all() and (out[..., 2] == 7).all()


def test_grey_is_expanded_to_three_channels(tmp_path):
    grey = (np.arange(48, dtype=np.uint8).reshape(6, 8) * 5)
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), grey)
    out = io.read_image(path)
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_alpha_is_kept_aside_and_restored(tmp_path, test_image):
    alpha = np.linspace(0, 255, test_image.shape[0] * test_image.shape[1]).astype(np.uint8).reshape(test_image.shape[:2])
    src = tmp_path / "rgba.png"
    io.write_image(src, test_image, alpha=alpha)
    img, got_alpha = io.read_image_alpha(src)
    np.testing.assert_array_equal(img, test_image)
    np.testing.assert_array_equal(got_alpha, alpha)
    assert io.read_image(src).shape == test_image.shape
    img2, alpha2 = io.read_image_alpha(io.write_image(tmp_path / "copy.png", img, alpha=got_alpha))
    np.testing.assert_array_equal(alpha2, alpha)


def test_truncated_png_names_the_file(tmp_path, test_image):
    path = io.write_image(tmp_path / "cut.png", test_image)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png: truncated PNG"):
        io.read_image(path)


def test_truncated_jpeg_names_the_file(tmp_path, test_image):
    path = io.write_image(tmp_path / "cut.jpg", test_image)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated JPEG"):
        io.read_image(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.png", b"not an image at all, just text" * 4 + b"IEND", "not a readable image"),
        ("empty.png", b"", "empty file"),
    ],
)
def test_corrupt_files_raise_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as info:
        io.read_image(path)
    assert name in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        io.read_image(tmp_path / "nope.png")


def test_write_rejects_bad_arrays_and_extensions(tmp_path, test_image):
    with pytest.raises(EdgesharpError, match=r"expected HxWx3 uint8, got \(96, 128\) uint8"):
        io.write_image(tmp_path / "a.png", test_image[..., 0])
    with pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
        io.write_image(tmp_path / "a.png", test_image.astype(np.float32))
    with pytest.raises(EdgesharpError, match="unsupported image extension '.gif'"):
        io.write_image(tmp_path / "a.gif", test_image)


def test_write_is_atomic(tmp_path, test_image, monkeypatch):
    target = io.write_image(tmp_path / "keep.png", test_image)
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        io.write_image(target, 255 - test_image)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_list_images_sorted_and_filtered(tmp_path, test_image):
    for name in ["b.png", "a.JPG", "c.txt", "d.webp"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in io.list_images(tmp_path)] == ["a.JPG", "b.png", "d.webp"]
    with pytest.raises(EdgesharpError, match="not a folder"):
        io.list_images(tmp_path / "missing")


# -- the output rule ------------------------------------------------------------------------------------


def test_check_outputs_refuses_inputs_by_real_path(tmp_path, monkeypatch):
    src = tmp_path / "a.png"
    src.write_bytes(b"input")
    (tmp_path / "link.png").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    io.check_outputs([("output", tmp_path / "b.png")], [src])  # another file: fine
    for out in ("a.png", "./a.png", "sub/../a.png", "link.png", str(src)):
        with pytest.raises(UsageError) as info:
            io.check_outputs([("output", out)], ["a.png"])
        assert "would overwrite the input a.png" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UsageError, match="also written by output x.json"):
        io.check_outputs([("output", "x.json"), ("--stats-json", "./x.json")], [])
    with pytest.raises(UsageError, match=r"--stats-json .*: is a folder; give a file name"):
        io.check_outputs([("--stats-json", tmp_path)], [])
    assert src.read_bytes() == b"input"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_respect_the_umask(tmp_path, test_image, umask):
    old = os.umask(umask)
    try:
        io.atomic_write_bytes(tmp_path / "a.json", b"{}")
        io.write_image(tmp_path / "b.png", test_image)
    finally:
        os.umask(old)
    for name in ("a.json", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_temporary_files_are_unique_and_beside_the_target(tmp_path):
    target = tmp_path / "out.mp4"
    a, b = io.temporary_beside(target, ".mp4"), io.temporary_beside(target, ".mp4")
    assert a != b and a.parent == b.parent == tmp_path and a.suffix == ".mp4"
    assert a.name.startswith(".out.mp4.") and a.stat().st_mode & 0o777 == 0o600  # private until published
    io.publish(a, target)
    assert target.is_file() and not a.exists()
    io.remove_temporary_files()  # what an emergency exit does with the ones not yet published
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_write_failures_are_one_line_and_keep_the_previous_file(tmp_path, test_image, monkeypatch):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputError) as info:  # an output path under an existing file
        io.write_image(tmp_path / "file" / "sub" / "a.png", test_image)
    assert str(info.value).endswith(f"cannot create the folder {tmp_path / 'file' / 'sub'}: {tmp_path / 'file'} is a file")
    with pytest.raises(OutputError, match="is a folder"):
        io.atomic_write_bytes(tmp_path, b"{}")
    target = io.write_image(tmp_path / "keep.png", test_image)
    before = target.read_bytes()

    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if "w" in mode:
            def write(data):
                raise OSError(28, "No space left on device")
            f.write = write
        return f

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(OutputError) as info:
        io.write_image(target, 255 - test_image)
    monkeypatch.undo()
    assert str(info.value) == f"{target}: not written (No space left on device); the previous file, if any, is unchanged"
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "keep.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(tmp_path, test_image):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=r"cannot create a file in .*ro \(Permission denied\)"):
            io.write_image(folder / "a.png", test_image)
    finally:
        folder.chmod(0o755)
