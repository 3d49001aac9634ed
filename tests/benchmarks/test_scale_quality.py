"""benchmarks.scale_quality: the governor's two ways of scaling told apart."""


def test_scale_quality_detail_keeps_the_input_where_a_plain_upscale_loses_it():
    """With a model that changes nothing, adding its (zero) detail back gives the input exactly at every scale,
    while upscaling its downscaled output loses detail: the two ways the governor could scale, told apart."""
    from types import SimpleNamespace

    import numpy as np

    from edgesharp.benchmarks.images import Sample
    from edgesharp.benchmarks.scale_quality import score_scales

    rng = np.random.default_rng(0)
    samples = [Sample(f"s{i}", rng.integers(0, 256, (96, 128, 3), np.uint8)) for i in range(2)]
    identity = SimpleNamespace(enhance=lambda frame: frame, backend=SimpleNamespace(size_multiple=8))
    scores = score_scales(identity, samples, [1.0, 0.5], "medium")
    assert scores["detail 1"] == scores["upscale 1"] == scores["input"]
    assert scores["detail 0.5"] == scores["input"] > scores["upscale 0.5"]


def test_downscale_methods_give_the_size_asked_and_are_timed():
    import numpy as np

    from edgesharp.benchmarks.scale_quality import time_downscale
    from edgesharp.edge.pipeline import DOWNSCALE, DOWNSCALE_METHOD, downscale

    frame = np.random.default_rng(1).integers(0, 256, (64, 96, 3), np.uint8)
    for method in DOWNSCALE:
        small = downscale(frame, (72, 48), method)
        assert small.shape == (48, 72, 3) and small.dtype == np.uint8
    flat = np.full((64, 96, 3), 77, np.uint8)
    assert (downscale(flat, (48, 32)) == 77).all() and DOWNSCALE_METHOD in DOWNSCALE
    times = time_downscale("linear", [1.0, 0.75, 0.5], 32, size=(320, 240), repeats=5)
    assert sorted(times) == [0.5, 0.75] and all(ms > 0 for ms in times.values())
