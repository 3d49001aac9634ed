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
