"""edge.backends.variants: one backend over a model and its lighter variant, opened on first use."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeBackend, frame_index, indexed_frame
from ir_factory import reference_output

from edgesharp.edge.backends import open_backend
from edgesharp.edge.backends.variants import VariantBackend
from edgesharp.edge.errors import EdgesharpError

AMOUNT = 0.5  # the tiny bundle's sharpening amount (tests/edge/ir_factory.py)


class Opener:
    """Opens one FakeBackend and counts the calls."""

    def __init__(self, **kwargs):
        self.kwargs, self.opened = kwargs, []

    def __call__(self) -> FakeBackend:
        backend = ClosingFake(**self.kwargs)
        self.opened.append(backend)
        return backend


class ClosingFake(FakeBackend):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prepared: list[tuple[int, int]] = []

    def prepare(self, width: int, height: int) -> None:
        self.prepared.append((width, height))


def test_the_variant_opens_on_first_use_and_takes_the_next_frames():
    first, opener = ClosingFake(workers=2), Opener(workers=1)
    variants = VariantBackend(first, ["main", "light"], [opener])
    results = {}
    variants.set_callback(lambda tag, out, error: results.update({tag: (out, error)}))
    variants.submit(indexed_frame(0), 0)
    assert opener.opened == [] and variants.active == "main"
    variants.prepare(80, 64, variant="light")  # opened and compiled, not yet used
    (light,) = opener.opened
    assert light.prepared == [(80, 64)] and variants.active == "main" and light.submitted == 0
    variants.select("light")
    for i in (1, 2):
        variants.submit(indexed_frame(i), i)
    variants.select("main")
    variants.submit(indexed_frame(3), 3)
    variants.wait_all()
    assert (first.submitted, light.submitted) == (2, 2) and len(opener.opened) == 1
    assert {tag: frame_index(255 - out) for tag, (out, _) in results.items()} == {0: 0, 1: 1, 2: 2, 3: 3}
    light.precision = "fp16"
    assert variants.precision is None  # the main model's (a fake: none); the variant's once it runs
    variants.select("light")
    assert variants.precision == "fp16"
    variants.select("main")
    info = variants.describe()
    assert info["backend"] == "fake" and info["model_variants"] == ["main", "light"] and info["model_variant"] == "main"
    variants.close()
    assert first._closed and light._closed


def test_a_closed_backend_opens_no_variant():
    opener = Opener()
    variants = VariantBackend(ClosingFake(), ["a", "b"], [opener])
    variants.close()
    with pytest.raises(EdgesharpError, match="model variant b: the backend is closed"):
        variants.select("b")
    assert opener.opened == []


def test_unknown_and_duplicate_names_are_refused():
    with pytest.raises(EdgesharpError, match="distinct names"):
        VariantBackend(FakeBackend(), ["a", "a"], [Opener()])
    with pytest.raises(EdgesharpError, match="one per model"):
        VariantBackend(FakeBackend(), ["a", "b"], [])
    variants = VariantBackend(FakeBackend(), ["a", "b"], [Opener()])
    with pytest.raises(EdgesharpError, match="unknown model variant 'c'; have a, b"):
        variants.select("c")
    variants.close()


def test_switching_openvino_models_mid_stream_keeps_every_frame_right(tiny_bundle):
    """Two real OpenVINO backends (the tiny bundle twice): frames before, across and after each switch all come
    back, each the reference output of its own input."""
    first = open_backend(tiny_bundle, "openvino", "fp32", requests=2)
    variants = VariantBackend(first, ["a", "b"], [lambda: open_backend(tiny_bundle, "openvino", "fp32", requests=2)])
    frames = {i: indexed_frame(i, 48, 72) for i in range(12)}
    got = {}
    variants.set_callback(lambda tag, out, error: got.update({tag: out}))
    try:
        for i, frame in frames.items():
            if i == 4:
                variants.prepare(72, 48, variant="b")
                variants.select("b")
            if i == 8:
                variants.select("a")
            variants.submit(frame, i)
        variants.wait_all()
    finally:
        variants.close()
    assert sorted(got) == list(frames)
    for i, frame in frames.items():
        assert np.abs(got[i].astype(int) - reference_output(frame, AMOUNT).astype(int)).max() <= 3  # f32 vs numpy
