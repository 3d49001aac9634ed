"""benchmarks.encoders: cost, rate and fidelity of the video writers' settings."""


def test_encoders_reports_cost_rate_and_fidelity_per_setting():
    import numpy as np

    from edgesharp.benchmarks.encoders import encode

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (48, 64, 3), np.uint8)
    frames = [np.roll(base, i, axis=1) for i in range(6)]
    fine, coarse = encode(frames, "fast:18"), encode(frames, "ultrafast:30")
    assert fine["size"] == "64x48" and fine["cpu_ms"] > 0 and encode(frames, "mp4v")["psnr_db"] > 10
    assert fine["psnr_db"] > coarse["psnr_db"]
