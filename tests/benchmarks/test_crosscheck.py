"""The suite's OpenVINO timing agrees with OpenVINO's own benchmark_app on the same IR and shape."""

from __future__ import annotations

import pytest

from benchmarks import crosscheck
from edge.errors import EdgesharpError


@pytest.mark.slow
def test_model_only_fps_matches_benchmark_app_within_15_percent(tiny_bundle):
    if crosscheck.benchmark_app_command() is None:
        pytest.skip("benchmark_app is not available (neither on PATH nor as openvino.tools.benchmark)")
    xml = tiny_bundle / "fp32.xml"
    try:
        crosscheck.benchmark_app_fps(xml, 96, 128, "sync", 1)
    except EdgesharpError as exc:
        pytest.skip(f"benchmark_app is not runnable here: {exc}")
    # at 96x128 the tiny model runs ~570 FPS and the ratio fell to 0.84 once (per-call cost); at
    # 192x256 a frame is long enough for the comparison to be about the timing method, not the overhead
    result = crosscheck.crosscheck(xml, 192, 256, "sync", rounds=3, seconds=1.5)
    assert abs(result["ratio"] - 1.0) <= 0.15, result


def test_benchmark_app_output_is_parsed():
    text = "[ INFO ] Count: 314 iterations\n[ INFO ] Throughput:   104.51 FPS\n"
    assert float(crosscheck.THROUGHPUT.search(text).group(1)) == 104.51
