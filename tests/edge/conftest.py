"""Fixtures of the runtime tests: a real tiny bundle (no torch), frames that carry their own index, fake backends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ir_factory and fakes sit beside the tests

from ir_factory import build_test_bundle  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """fp32 + fp16 IR and model.onnx (no int8: the runtime's default int8 falls back to fp16)."""
    return build_test_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_dir):
    from edgesharp.edge.bundle import load_bundle

    return load_bundle(tiny_bundle_dir)
