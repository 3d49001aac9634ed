"""OpenVINO and ONNX Runtime backends on a real tiny IR/ONNX: correctness against a numpy reference, padding of
odd sizes, tags with several requests in flight, precision fallback, backend parity, clear errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fakes import frame_index, indexed_frame
from ir_factory import reference_output

from edgesharp.edge.backends import open_backend, select_precision
from edgesharp.edge.backends.base import pad_to_multiple
from edgesharp.edge.errors import EdgesharpError

AMOUNT = 0.5


def _random_frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_close_to_reference(out, frame, tol):
    ref = reference_output(frame, AMOUNT)
    assert out.shape == frame.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - ref)
    # CPUs with bf16 units run OpenVINO in bf16 by default: a few levels on some pixels, never more
    assert diff.max() <= tol, diff.max()
    assert diff.mean() < 0.5


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("size", [(64, 64), (97, 131), (61, 203), (480, 640)])
def test_output_matches_reference_at_odd_sizes(tiny_bundle, backend, size):
    frame = _random_frame(*size, seed=size[0])
    with open_backend(tiny_bundle, backend, "fp32") as be:
        out = be.infer(frame)
    _assert_close_to_reference(out, frame, tol=3 if backend == "openvino" else 1)


def test_4k_frame(tiny_bundle):
    frame = _random_frame(2160, 3840, seed=4)
    with open_backend(tiny_bundle, "openvino", "fp32") as be:
        out = be.infer(frame)
    assert out.shape == (2160, 3840, 3)
    ref = reference_output(frame, AMOUNT)
    assert np.abs(out.astype(int) - ref).max() <= 3


def test_padding_is_reflect_and_only_when_needed():
    frame = _random_frame(10, 13)
    padded = pad_to_multiple(frame, 8)
    assert padded.shape == (16, 16, 3)
    assert np.array_equal(padded[:10, :13], frame)
    assert np.array_equal(padded[10, :13], frame[8])  # reflect-101: row 10 mirrors row 8
    assert np.array_equal(padded[:10, 13], frame[:, 11])
    aligned = _random_frame(16, 24)
    assert pad_to_multiple(aligned, 8) is aligned


def test_openvino_and_onnxruntime_agree(tiny_bundle):
    frame = _random_frame(120, 160, seed=7)
    with open_backend(tiny_bundle, "openvino", "fp32") as ov_be, open_backend(tiny_bundle, "onnxruntime", "fp32") as ort_be:
        a, b = ov_be.infer(frame), ort_be.infer(frame)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.5


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("requests", [1, 2, 4])
def test_every_tag_comes_back_with_its_own_frame(tiny_bundle, backend, requests):
    with open_backend(tiny_bundle, backend, "fp32", requests=requests) as be:
        assert be.num_requests == requests
        for i in range(12):
            be.submit(indexed_frame(i, 72, 88), tag=i)
        be.wait_all()
        got = dict(be.results(timeout=0.5))
    assert sorted(got) == list(range(12))
    assert all(frame_index(out) == i for i, out in got.items())


def test_frame_size_changes_recompile(tiny_bundle):
    with open_backend(tiny_bundle, "openvino", "fp32", requests=2) as be:
        for i, (h, w) in enumerate([(64, 96), (96, 64), (64, 96), (72, 72)]):
            be.submit(indexed_frame(i, h, w), tag=(i, h, w))
        be.wait_all()
        got = list(be.results(timeout=0.5))
    assert sorted(tag for tag, _ in got) == sorted([(0, 64, 96), (1, 96, 64), (2, 64, 96), (3, 72, 72)])
    assert all(out.shape == (h, w, 3) and frame_index(out) == i for (i, h, w), out in got)


def test_precision_falls_back_with_a_warning(tiny_bundle, caplog):
    with caplog.at_level(logging.WARNING):
        assert select_precision(tiny_bundle, "openvino", "int8") == "fp16"
        assert select_precision(tiny_bundle, "onnxruntime", "int8") == "fp32"
        assert select_precision(tiny_bundle, "onnxruntime", "fp16") == "fp32"
    assert "no int8 model for openvino; using fp16" in caplog.text
    assert select_precision(tiny_bundle, "openvino", "fp32") == "fp32"
    with open_backend(tiny_bundle, "openvino") as be:
        assert be.precision == "fp16" and be.model_path.name == "fp16.xml"
        _assert_close_to_reference(be.infer(_random_frame(64, 64)), _random_frame(64, 64), tol=3)


def test_openvino_options_reach_the_compiled_model(tiny_bundle, tmp_path):
    with open_backend(tiny_bundle, "openvino", "fp32", hint="throughput", streams=1, threads=1,
                      cache_dir=tmp_path / "cache", requests=3) as be:
        be.infer(_random_frame(64, 64))
        info = be.describe()
    assert info["hint"] == "throughput" and info["requests"] == 3
    assert info["num_streams"] == "1" and info["inference_num_threads"] == "1"
    assert any((tmp_path / "cache").iterdir())


def test_a_spare_request_is_added_to_the_optimal_number_only(tiny_bundle):
    with open_backend(tiny_bundle, "openvino", "fp32", hint="throughput", streams=2) as plain:
        optimal = plain.num_requests
    with open_backend(tiny_bundle, "openvino", "fp32", hint="throughput", streams=2, spare_requests=1) as spare:
        assert spare.num_requests == optimal + 1
        assert spare.infer(_random_frame(64, 64)).shape == (64, 64, 3)
    with open_backend(tiny_bundle, "openvino", "fp32", requests=3, spare_requests=1) as fixed:
        assert fixed.num_requests == 3  # an explicit --requests is taken as it is
    with pytest.raises(EdgesharpError, match="spare requests must be >= 0, got -1"):
        open_backend(tiny_bundle, "openvino", "fp32", spare_requests=-1)


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                                 np.zeros((4, 64, 3), np.uint8)])
def test_bad_frames_are_named(tiny_bundle, bad):
    with open_backend(tiny_bundle, "openvino", "fp32") as be, pytest.raises(EdgesharpError, match="frame"):
        be.submit(bad, 0)


def test_unknown_backend_and_precision(tiny_bundle):
    with pytest.raises(EdgesharpError, match="unknown backend 'tensorrt'"):
        select_precision(tiny_bundle, "tensorrt", "fp32")
    with pytest.raises(EdgesharpError, match="unknown precision 'int4'"):
        select_precision(tiny_bundle, "openvino", "int4")


def test_fp32_runs_in_full_precision_on_every_cpu(tiny_bundle):
    """fp32 must not silently run in bf16/fp16 on CPUs that have those units."""
    from edgesharp.edge.backends import open_backend

    backend = open_backend(tiny_bundle, "openvino", "fp32")
    try:
        assert backend._config["INFERENCE_PRECISION_HINT"] == "f32"
    finally:
        backend.close()


def test_backends_closed_out_of_order_leave_signal_handling_intact(tiny_bundle_dir, survives_a_signal):
    # Each OpenVINO Core's CPU plugin swaps the thread's alternate signal stack and puts the previous one back
    # when it goes; released out of order, the stack left behind was unmapped and the next Python signal
    # handler crashed the process (SIGSEGV).
    code = f"""
import gc
import numpy as np
from edgesharp.edge.backends import open_backend
from edgesharp.edge.bundle import load_bundle
bundle = load_bundle({str(tiny_bundle_dir)!r})
frame = np.zeros((32, 32, 3), np.uint8)
first, second = open_backend(bundle, "openvino", "fp32"), open_backend(bundle, "openvino", "fp16")
first.infer(frame); second.infer(frame)
first.close(); del first; gc.collect()
second.close(); del second; gc.collect()
"""
    survives_a_signal(code, timeout=120)


def test_close_delivers_every_frame_in_flight_then_refuses_new_ones(tiny_bundle):
    # Open, fill with frames and close, many times, with frames still in flight when close() starts.
    for i in range(20):
        be = open_backend(tiny_bundle, "openvino", "fp32", requests=3, hint="throughput")
        got = []
        be.set_callback(lambda tag, out, err, got=got: got.append(tag))
        for k in range(6):
            be.submit(_random_frame(40 + 8 * (i % 3), 48, seed=k), k)
        be.close()
        assert sorted(got) == list(range(6))
    with pytest.raises(EdgesharpError, match="closed"):
        be.submit(_random_frame(40, 48), "late")


def test_an_isa_cap_without_reduced_float_runs_every_precision_in_f32(monkeypatch):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 an AMX machine's default bf16 float layers would have no kernel."""
    from edgesharp.edge.backends import openvino_precision_config

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert openvino_precision_config("int8") == {}
    assert openvino_precision_config("fp32") == {"INFERENCE_PRECISION_HINT": "f32"}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert openvino_precision_config("int8") == {"INFERENCE_PRECISION_HINT": "f32"}
    assert openvino_precision_config("fp16") == {"INFERENCE_PRECISION_HINT": "f32"}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert openvino_precision_config("int8") == {}


@pytest.fixture
def compiled_shapes(monkeypatch):
    """The input shape of every model OpenVINO compiles while the test runs (Core.compile_model wrapped)."""
    from edgesharp.edge.backends.openvino_core import shared_core

    core_type = type(shared_core())
    real = core_type.compile_model
    shapes: list[list[int]] = []

    def counting(self, model, *args, **kwargs):
        shapes.append(list(model.input().get_shape()))
        return real(self, model, *args, **kwargs)

    monkeypatch.setattr(core_type, "compile_model", counting)
    return shapes


def test_the_request_count_needs_no_compile(tiny_bundle, compiled_shapes):
    # no throw-away model: before the first frame the count comes from the settings, after it from the model
    with open_backend(tiny_bundle, "openvino", "fp32", self_check=False) as be:
        assert be.num_requests == 1 and be.describe()["requests"] == 1  # the latency hint: one stream
        assert compiled_shapes == []
        be.infer(_random_frame(64, 80))
        be.infer(_random_frame(60, 77))  # the same padded size
        assert compiled_shapes == [[1, 64, 80, 3]]
        assert be.num_requests == int(be._compiled[(64, 80)].model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    with open_backend(tiny_bundle, "openvino", "fp32", self_check=False, hint="throughput", streams=2,
                      spare_requests=1) as be:
        assert be.num_requests == 3 and compiled_shapes == [[1, 64, 80, 3]]
        be.infer(_random_frame(64, 64))
        assert be.num_requests == 3 and len(compiled_shapes) == 2


def test_an_estimate_before_the_first_frame_is_never_below_the_compiled_count(tiny_bundle, compiled_shapes):
    with open_backend(tiny_bundle, "openvino", "fp32", self_check=False, hint="throughput") as be:
        expected = be.num_requests
        assert compiled_shapes == []
        be.infer(_random_frame(64, 64))
        assert 1 <= be.num_requests <= expected and len(be._compiled[(64, 64)].requests) == be.num_requests


def test_opening_a_backend_compiles_once(tmp_path, compiled_shapes):
    """Opening compiles the model once, for the start-up self-check frame; frames of that size compile nothing more."""
    from ir_factory import build_test_bundle

    from edgesharp.edge.bundle import load_bundle

    bundle = load_bundle(build_test_bundle(tmp_path / "checked", self_check=True))
    with open_backend(bundle, "openvino", "fp32") as be:
        assert be.self_check["passed"] and compiled_shapes == [[1, 32, 40, 3]]
        assert be.num_requests >= 1 and be.describe()["requests"] == be.num_requests
        assert be.infer(_random_frame(32, 40)).shape == (32, 40, 3)
    assert compiled_shapes == [[1, 32, 40, 3]]


@pytest.mark.parametrize("options, message", [
    ({"streams": -3}, r"^--streams -3: OpenVINO refused it \(Wrong value for property key NUM_STREAMS"),
    ({"streams": "abc"}, r"^--streams abc: OpenVINO refused it \(Could not read number of streams"),
    ({"threads": -1}, r"^--threads -1: OpenVINO refused it \(Wrong value for property key INFERENCE_NUM_THREADS"),
])
def test_a_compile_refused_for_an_option_names_the_option(tiny_bundle, options, message):
    from edgesharp.edge.errors import UsageError

    with open_backend(tiny_bundle, "openvino", "fp32", **options) as be, \
            pytest.raises(UsageError, match=message) as info:
        be.warmup(64, 64)
    assert "\n" not in str(info.value) and "Exception from" not in str(info.value)


def test_requests_in_flight_are_limited(tiny_bundle):
    from edgesharp.edge.backends.base import MAX_REQUESTS
    from edgesharp.edge.commands.run import MAX_REQUESTS as CLI_MAX_REQUESTS
    from edgesharp.edge.errors import UsageError

    assert MAX_REQUESTS == CLI_MAX_REQUESTS == 64
    with pytest.raises(UsageError, match="--requests 65: must be between 1 and 64"):
        open_backend(tiny_bundle, "openvino", "fp32", requests=65)
    with open_backend(tiny_bundle, "openvino", "fp32", requests=MAX_REQUESTS) as be:
        assert be.num_requests == MAX_REQUESTS


def test_streams_auto_in_any_case_reaches_openvino(tiny_bundle):
    with open_backend(tiny_bundle, "openvino", "fp32", streams="auto") as be:
        assert be.infer(_random_frame(64, 64)).shape == (64, 64, 3)
