"""Fixtures of the runtime tests: a real tiny bundle (no torch), frames that carry their own index, fake backends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ir_factory and fakes sit beside the tests



@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_dir):
    from edgesharp.edge.bundle import load_bundle

    return load_bundle(tiny_bundle_dir)
