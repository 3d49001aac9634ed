"""Shared fixtures: the reference data beside the checkout, small sample images, a signal-survival check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGESHARP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isa_caps_stay_in_their_test():
    """`edgesharp calibrate` caps oneDNN on AMX CPUs and `--isa-cap` caps benchmarks, in this process: undone
    after each test so a cap never reaches the next one."""
    saved = {name: os.environ.get(name) for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`, or skip: the real images and videos are not part of the repository."""
    if not (SHARED_DATA / "kodak24").is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (set EDGESHARP_SHARED_DATA or put shared/ beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """A real tiny bundle built without torch (tests/edge/ir_factory.py): fp32 + fp16 IR and model.onnx, no int8."""
    sys.path.insert(0, str(REPO / "tests" / "edge"))
    from ir_factory import build_test_bundle

    return build_test_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def make_test_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB image with edges, gradients, text-like strokes and texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], axis=-1)
    for _ in range(6):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        y1, x1 = min(h, y0 + rng.integers(4, h // 2)), min(w, x0 + rng.integers(4, w // 2))
        img[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    img[::7, :, 1] = 255 - img[::7, :, 1]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def test_image() -> np.ndarray:
    return make_test_image()


SIGNAL_CHECK = """
import os as _os, signal as _signal
_got = []
_signal.signal(_signal.SIGUSR1, lambda *a: _got.append(1))
_os.kill(_os.getpid(), _signal.SIGUSR1)
assert _got == [1]
print("signal handled")
"""


@pytest.fixture
def survives_a_signal():
    """check(code): run `code` in a fresh interpreter, then raise a Python-handled signal; assert it was handled
    (a crash there cannot take pytest with it)."""

    def check(code: str, timeout: float = 300) -> None:
        proc = subprocess.run([sys.executable, "-c", code + SIGNAL_CHECK], capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0 and "signal handled" in proc.stdout, (proc.returncode, proc.stderr[-2000:])

    return check
