"""Property-based tests (Hypothesis): random images through `Sharpener.enhance` and random option values through
`edgesharp run`. Each either works or fails with one `EdgesharpError` line / exit 2 and one stderr line, never a
traceback. Small `max_examples` keep the file well under a minute on 2 cores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgesharp.edge.errors import EdgesharpError

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

DTYPES = [np.uint8, np.uint16, np.int8, np.float32, np.float64, np.bool_]


@pytest.fixture(scope="module")
def sharpener(tiny_bundle_dir):
    from edgesharp import Sharpener

    with Sharpener(tiny_bundle_dir, precision="fp32") as s:
        yield s


@st.composite
def images(draw):
    ndim = draw(st.sampled_from([1, 2, 3, 3, 3, 4]))
    shape = [draw(st.integers(0, 80)) for _ in range(min(ndim, 2))]
    if ndim >= 3:
        shape.append(draw(st.sampled_from([0, 1, 2, 3, 3, 3, 4, 5])))
    if ndim == 4:
        shape.insert(0, draw(st.integers(1, 2)))
    dtype = draw(st.sampled_from(DTYPES))
    image = np.zeros(shape, dtype) + np.array(draw(st.integers(0, 1)), dtype)
    layout = draw(st.sampled_from(["c", "fortran", "reversed"]))  # views and other memory orders
    if layout == "fortran":
        image = np.asfortranarray(image)
    elif layout == "reversed" and image.ndim >= 2:
        image = image[::-1, ::-1]
    return image


@SETTINGS
@given(image=images())
def test_enhance_returns_the_input_shape_or_one_line_error(sharpener, image):
    valid = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 16
    try:
        out = sharpener.enhance(image)
    except EdgesharpError as exc:
        assert not valid, f"{image.shape} {image.dtype} refused: {exc}"
        assert str(exc) and "\n" not in str(exc)
        return
    assert out.shape == image.shape and out.dtype == np.uint8


@SETTINGS
@given(h=st.integers(16, 96), w=st.integers(16, 96), strength=st.floats(0, 1))
def test_valid_frames_keep_shape_in_rgb_and_stream(tiny_bundle_dir, h, w, strength):
    from edgesharp import Sharpener

    frame = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with Sharpener(tiny_bundle_dir, precision="fp32", strength=strength, color="rgb", requests=1) as s:
        assert s.enhance(frame).shape == (h, w, 3)
        assert [o.shape for o in s.stream([frame, frame])] == [(h, w, 3)] * 2


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e-9, 0.5, 30.0, 1e6])
SIZES = st.one_of(
    st.builds(lambda w, h: f"{w}x{h}", st.integers(-5, 200), st.integers(-5, 200)),
    st.sampled_from(["", "x", "64", "96x", "8000x100", "0x0", "64X48", " 64x48 ", "1e3x64", "abc"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fps=st.none() | st.floats(1, 240) | FLOATS, size=st.none() | SIZES, strength=st.none() | st.floats(0, 1) | FLOATS,
       requests=st.none() | st.integers(-3, 100))
def test_run_options_exit_0_or_2_with_one_line(tiny_bundle_dir, capsys, fps, size, strength, requests):
    from edgesharp.edge.cli import main

    argv = ["-q", "run", "--model", str(tiny_bundle_dir), "--precision", "fp32", "--source", "synthetic:fast",
            "--frames", "2", "--sink", "null"]
    for option, value in (("--fps", fps), ("--size", size), ("--strength", strength), ("--requests", requests)):
        if value is not None:
            argv.append(f"{option}={value}")  # '=' keeps a negative value from reading as an option
    if size is None:
        argv.append("--size=64x48")  # the default scene size is larger than a quick example needs
    code = main(argv)
    event(f"exit {code}")
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), (argv, code, err)
    assert not any("Traceback" in line for line in err), err
    if code == 2:
        assert len(err) == 1 and err[0].startswith("edgesharp run: error: --"), err
    else:
        assert err == [], err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 72), w=st.integers(1, 72), channels=st.sampled_from([1, 3, 4]),
       depth=st.sampled_from([np.uint8, np.uint16]), ext=st.sampled_from([".png", ".jpg", ".tif"]))
def test_enhance_image_files_written_whole_or_one_line(tiny_bundle_dir, tmp_path_factory, capsys, h, w, channels,
                                                      depth, ext):
    import hashlib

    import cv2

    from edgesharp.edge.cli import main

    if ext == ".jpg" and (depth is np.uint16 or channels == 4):
        depth, channels = np.uint8, 3  # JPEG holds neither
    folder = tmp_path_factory.mktemp("enhance")
    src = folder / f"in{ext}"
    pixels = np.random.default_rng(h * 100 + w).integers(0, np.iinfo(depth).max, (h, w, channels), dtype=depth)
    assert cv2.imwrite(str(src), pixels if channels > 1 else pixels[..., 0])
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = folder / "out.png"
    code = main(["-q", "enhance", str(src), str(out), "--model", str(tiny_bundle_dir), "--precision", "fp32"])
    err = capsys.readouterr().err.strip().splitlines()
    event(f"exit {code}")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # the input is never touched
    assert not any("Traceback" in line for line in err), err
    if code == 0:
        written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert written is not None and written.shape[:2] == (h, w)
    else:
        assert code in (1, 2) and len(err) == 1 and err[0].startswith("edgesharp enhance: error: "), err
        assert not out.exists()
