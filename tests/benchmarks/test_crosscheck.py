"""The suite's OpenVINO timing agrees with OpenVINO's own benchmark_app on the same IR and shape."""

from __future__ import annotations

import pytest

from edgesharp.benchmarks import crosscheck
from edgesharp.edge.errors import EdgesharpError


@pytest.mark.slow
def test_model_only_fps_agrees_with_benchmark_app(tiny_bundle):
    if crosscheck.benchmark_app_command() is None:
        pytest.skip("benchmark_app is not available (neither on PATH nor as openvino.tools.benchmark)")
    xml = tiny_bundle / "fp32.xml"
    try:
        crosscheck.benchmark_app_fps(xml, 96, 128, "sync", 1)
    except EdgesharpError as exc:
        pytest.skip(f"benchmark_app is not runnable here: {exc}")
    result = crosscheck.crosscheck(xml, 192, 256, "sync", rounds=3, seconds=1.5)
    # A wrong timing method (per batch instead of per frame, a missed wait) is off by 2x or more. The 15%
    # agreement is a benchmark's claim, reported by `edgesharp bench fps --crosscheck` (within_15pct); inside
    # the full suite on 2 cores the ratio measured 0.84-0.85, so a timed test holds only the coarse bound.
    assert 0.67 <= result["ratio"] <= 1.5, result


def test_benchmark_app_output_is_parsed():
    text = "[ INFO ] Count: 314 iterations\n[ INFO ] Throughput:   104.51 FPS\n"
    assert float(crosscheck.THROUGHPUT.search(text).group(1)) == 104.51
