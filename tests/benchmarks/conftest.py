"""Fixtures for the benchmark tests: one tiny real bundle (nafnet-test through calibrate) per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real bundle (ONNX, FP32/FP16/INT8 IR, INT8 ONNX) of the width-8 test network, built in ~15 s."""
    pytest.importorskip("torch", reason="the tiny bundle is exported from a torch model (edgesharp[train])")
    pytest.importorskip("nncf", reason="the tiny bundle's INT8 needs nncf (edgesharp[calibrate])")
    from edgesharp.calibrate.untrained import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("bench") / "tiny-bundle")
