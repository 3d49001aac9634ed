"""The degradation protocol: level parameter ranges, repeatability, subsets, and the Kodak24 reference scores."""

from __future__ import annotations

import numpy as np
import pytest

from edgesharp.edge.imaging import degrade
from edgesharp.edge.imaging.metrics import ssim


def test_level_parameters_stay_in_their_ranges():
    for level, spec in degrade.LEVELS.items():
        for i in range(200):
            p = degrade.level_params(f"img{i}", level)
            assert spec.factor[0] <= p["factor"] <= spec.factor[1]
            assert spec.sigma[0] <= p["sigma"] <= spec.sigma[1]
    assert degrade.level_params("x", "medium") == {"factor": 1.5, "sigma": 0.8}
    assert degrade.level_params("x", "low") == {"factor": 1.2, "sigma": 0.4}
    heavy = [degrade.level_params(f"img{i}", "heavy")["factor"] for i in range(200)]
    assert np.std(heavy) > 0.1, "heavy factors should spread over [1.7, 2.2]"


def test_levels_repeat_by_name_and_seed(test_image):
    a, pa = degrade.degrade_level(test_image, "heavy", "kodim01")
    b, pb = degrade.degrade_level(test_image, "heavy", "kodim01")
    assert pa == pb
    np.testing.assert_array_equal(a, b)
    assert degrade.level_params("kodim01", "heavy", seed=1) != pa
    assert degrade.level_params("kodim02", "heavy") != pa


def test_unknown_level():
    with pytest.raises(ValueError, match="unknown blur level 'extreme'"):
        degrade.level_params("x", "extreme")


def test_blur_keeps_size_and_strength_orders(test_image):
    scores = {}
    for level in degrade.LEVELS:
        out, _ = degrade.degrade_level(test_image, level, "sample")
        assert out.shape == test_image.shape and out.dtype == np.uint8
        scores[level] = ssim(test_image, out)
    assert scores["heavy"] < scores["medium"] < scores["low"] < 1.0


def test_bicubic_blur_identity():
    img = np.full((20, 30, 3), 77, np.uint8)
    np.testing.assert_array_equal(degrade.bicubic_blur(img, 1.0, 0.0), img)
    np.testing.assert_array_equal(degrade.bicubic_blur(img, 2.0, 1.0), img)  # flat stays flat


@pytest.mark.parametrize("subset", sorted(degrade.SUBSETS))
def test_every_subset_gives_a_valid_degraded_image(test_image, subset):
    rng = np.random.default_rng(subset)
    for _ in range(5):
        out, params = degrade.degrade_subset(test_image, subset, rng)
        assert out.shape == test_image.shape and out.dtype == np.uint8
        assert params["subset"] == subset and params["steps"][0] in ("blur", "noise", "jpeg", "extra_downscale")
        assert not np.array_equal(out, test_image)
        spec = degrade.SUBSETS[subset]
        assert spec.factor[0] <= params["factor"] <= spec.factor[1]
        if "jpeg" in params["steps"]:
            assert spec.jpeg_quality[0] <= params["jpeg_quality"] <= spec.jpeg_quality[1]


def test_subset_recipes_match_the_seed():
    s = degrade.SUBSETS
    assert s[1].jpeg_quality and not s[1].gaussian_noise and s[1].factor == (1.7, 2.2)
    assert not s[3].jpeg_quality and not s[3].gaussian_noise
    assert s[5].jpeg_quality and s[5].gaussian_noise
    assert s[7].shuffle_order and s[7].extra_downscale


def test_subset_seven_varies_its_order(test_image):
    rng = np.random.default_rng(0)
    orders = {tuple(degrade.degrade_subset(test_image, 7, rng)[1]["steps"]) for _ in range(40)}
    assert len(orders) > 3


def test_subsets_repeat_with_the_same_generator(test_image):
    a = degrade.degrade_subset(test_image, 5, np.random.default_rng(42))
    b = degrade.degrade_subset(test_image, 5, np.random.default_rng(42))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


def test_unknown_subset(test_image):
    with pytest.raises(ValueError, match="unknown training subset 2"):
        degrade.degrade_subset(test_image, 2, np.random.default_rng())


def test_noise_kinds_change_pixels_by_the_requested_amount():
    img = np.full((64, 64, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    g = degrade.add_noise(img, rng, "gaussian", 5.0).astype(float) - 128
    assert 4.5 < g.std() < 5.5
    p = degrade.add_noise(img, rng, "poisson", 100.0).astype(float)
    assert abs(p.mean() - 128) < 2 and p.std() > 5


def test_kodak24_blurred_input_reproduces_the_reference_table(shared_data):
    """The protocol as written gives the blurred-input SSIM of shared/data/README.md within 0.003."""
    from edgesharp.edge.imaging.io import list_images, read_image

    reference = {"heavy": 0.779, "medium": 0.881, "low": 0.970}
    images = [(p.stem, read_image(p)) for p in list_images(shared_data / "kodak24")]
    assert len(images) == 24
    for level, expected in reference.items():
        mean = np.mean([ssim(img, degrade.degrade_level(img, level, name)[0]) for name, img in images])
        assert abs(mean - expected) <= 0.003, f"{level}: {mean:.4f} vs {expected}"


def test_mixed_subsets_draw_mild_and_heavy_blur_alike():
    """Subsets 3 and 5 couple factor and sigma: a low-level-like input (both mild) is as common as a heavy one."""
    img = np.full((24, 24, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    params = [degrade.degrade_subset(img, 3, rng)[1] for _ in range(400)]
    f = np.array([p["factor"] for p in params])
    s = np.array([p["sigma"] for p in params])
    assert np.corrcoef(f, s)[0, 1] > 0.9
    mild = np.mean((f <= 1.3) & (s <= 0.5))  # around the low level (1.2, 0.4)
    heavy = np.mean((f >= 1.7) & (s >= 1.2))  # the heavy level's box
    assert 0.1 < mild < 0.3 and 0.1 < heavy < 0.4
    spec = degrade.SUBSETS[3]
    assert spec.factor[0] <= f.min() and f.max() <= spec.factor[1] and spec.sigma[0] <= s.min() and s.max() <= spec.sigma[1]


def test_nearly_sharp_subset_spans_untouched_frames_to_the_low_level(test_image):
    spec, low = degrade.SUBSETS[9], degrade.LEVELS["low"]
    assert spec.factor[0] == 1.0 and spec.sigma[0] == 0.0
    assert spec.factor[1] >= low.factor[1] and spec.sigma[1] >= low.sigma[1]
    assert spec.jpeg_quality is None and spec.gaussian_noise is None and spec.poisson_scale is None
    rng = np.random.default_rng(0)
    outs = [degrade.degrade_subset(test_image, 9, rng)[0] for _ in range(20)]
    # mild: every draw stays close to the sharp frame, far closer than the heavy evaluation level
    heavy, _ = degrade.degrade_level(test_image, "heavy", "t")
    worst = max(np.abs(o.astype(int) - test_image).mean() for o in outs)
    assert worst < np.abs(heavy.astype(int) - test_image).mean()


def test_exposure_and_contrast_are_named_seeded_photometric_changes():
    from edgesharp.edge.imaging.degrade import DIM_EXPOSURE, LOW_CONTRAST, contrast, exposure, photometric

    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    dark = exposure(img, 0.5)
    assert dark.dtype == np.uint8 and dark.shape == img.shape
    assert np.array_equal(dark, np.round(img * 0.5).astype(np.uint8))
    flat = contrast(img, 0.5)
    assert abs(float(flat.mean()) - float(img.mean())) < 1.0 and flat.std() < 0.55 * img.std()
    a, pa = photometric(img, np.random.default_rng(3))
    b, pb = photometric(img, np.random.default_rng(3))
    assert np.array_equal(a, b) and pa == pb
    for seed in range(20):
        _, p = photometric(img, np.random.default_rng(seed))
        lo, hi = DIM_EXPOSURE if "exposure" in p else LOW_CONTRAST
        assert lo <= next(iter(p.values())) <= hi
    with pytest.raises(ValueError):
        exposure(img, 0)


def test_gamma_is_a_tone_curve_that_darkens_mid_tones_above_one():
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (4, 1, 3))
    np.testing.assert_array_equal(degrade.gamma(ramp, 1.0), ramp)
    dark, light = degrade.gamma(ramp, 1.6), degrade.gamma(ramp, 0.8)
    assert dark.dtype == np.uint8 and dark.shape == ramp.shape
    assert (dark <= ramp).all() and (light >= ramp).all()
    assert dark[0, 128, 0] == round(255 * (128 / 255) ** 1.6) < 128 - 30
    assert (dark[0, [0, 255], 0] == [0, 255]).all(), "black and white stay where they are"
    assert (np.diff(dark[0, :, 0].astype(int)) >= 0).all(), "the curve is monotonic"
    for g in (0, -1.0):
        with pytest.raises(ValueError, match="gamma must be > 0"):
            degrade.gamma(ramp, g)


def test_sensor_noise_has_the_signal_dependent_std_and_repeats_by_seed(test_image):
    np.testing.assert_array_equal(degrade.sensor_noise(test_image, np.random.default_rng(0), 0.0, 0.0), test_image)
    for level, shot, read in ((128, 0.2, 2.0), (40, 0.4, 0.5), (200, 0.0, 2.5)):
        flat = np.full((128, 128, 3), level, np.uint8)
        noisy = degrade.sensor_noise(flat, np.random.default_rng(1), shot, read)
        assert noisy.dtype == np.uint8 and noisy.shape == flat.shape
        expected = np.sqrt(shot * level + read**2)
        measured = noisy.astype(float).std()
        assert abs(measured - expected) < 0.05 * expected + 0.1, (level, shot, read, measured, expected)
        assert abs(noisy.astype(float).mean() - level) < 0.2
    # brighter pixels are noisier with shot noise
    ramp = np.concatenate([np.full((64, 64, 3), 30, np.uint8), np.full((64, 64, 3), 220, np.uint8)], axis=1)
    noisy = degrade.sensor_noise(ramp, np.random.default_rng(2), 0.4, 0.5).astype(float)
    assert noisy[:, 64:].std() > 2 * noisy[:, :64].std()
    a = degrade.sensor_noise(test_image, np.random.default_rng(5), 0.1, 1.0)
    b = degrade.sensor_noise(test_image, np.random.default_rng(5), 0.1, 1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, degrade.sensor_noise(test_image, np.random.default_rng(6), 0.1, 1.0))
    with pytest.raises(ValueError, match="shot >= 0 and read >= 0"):
        degrade.sensor_noise(test_image, np.random.default_rng(0), -0.1, 1.0)
    with pytest.raises(ValueError, match="shot >= 0 and read >= 0"):
        degrade.sensor_noise(test_image, np.random.default_rng(0), 0.1, -1.0)


def _ycc(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(float)


def test_chroma_420_keeps_luma_and_removes_fine_colour_detail(test_image):
    out = degrade.chroma_420(test_image)
    assert out.shape == test_image.shape and out.dtype == np.uint8
    assert np.abs(_ycc(out)[..., 0] - _ycc(test_image)[..., 0]).mean() < 1.5
    # a one-pixel checkerboard of two colours of equal luma: the colour detail goes, the luma stays
    board = np.zeros((16, 18, 3), np.uint8)
    yy, xx = np.mgrid[0:16, 0:18]
    board[(yy + xx) % 2 == 0] = (200, 60, 60)
    board[(yy + xx) % 2 == 1] = (60, 90, 200)
    flat = degrade.chroma_420(board)
    before, after = _ycc(board)[..., 1:].std(axis=(0, 1)), _ycc(flat)[..., 1:].std(axis=(0, 1))
    assert (before > 30).all() and (after < 0.1 * before).all()
    # area, not a pick: the chroma left is the mean of the two colours'
    two = _ycc(np.array([[(200, 60, 60), (60, 90, 200)]], np.uint8))[0, :, 1:].mean(axis=0)
    assert np.abs(_ycc(flat)[..., 1:].mean(axis=(0, 1)) - two).max() < 2
    assert np.abs(_ycc(flat)[..., 0] - _ycc(board)[..., 0]).max() <= 2
    # a flat colour is left alone, odd sizes keep their shape
    plain = np.full((7, 9, 3), (30, 140, 220), np.uint8)
    assert np.abs(degrade.chroma_420(plain).astype(int) - plain).max() <= 1


@pytest.mark.parametrize("length", [2.0, 3.0, 3.5, 5.0, 8.0])
def test_motion_kernel_is_a_normalised_symmetric_line_of_the_given_length(length):
    k0, k90, k45 = (degrade.motion_kernel(length, a) for a in (0.0, 90.0, 45.0))
    half = int(np.ceil((length - 1) / 2))
    for k in (k0, k90, k45):
        assert k.shape == (2 * half + 1, 2 * half + 1) and (k >= 0).all()
        assert k.sum() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-6)  # point-symmetric about the centre
    # 0 degrees: one row, horizontal; 90 degrees: the same line, vertical
    assert k0[half].sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(k90, k0.T, atol=1e-6)
    # 45 degrees: weight along the rising diagonal (upper right to lower left), none on the other one
    anti = np.fliplr(k45)
    assert np.trace(anti) > 0.5 and np.trace(k45) == pytest.approx(k45[half, half], abs=1e-6)
    # the spread along the line grows with the length: a segment of length - 1 between end-pixel centres
    pos = np.arange(k0.shape[1]) - half
    std = np.sqrt((k0[half] * pos**2).sum())
    assert std == pytest.approx(np.sqrt((length - 1) ** 2 / 12 + 1 / 6), rel=0.15)


def test_motion_kernel_and_blur_edge_cases(test_image):
    np.testing.assert_array_equal(degrade.motion_kernel(1.0, 30.0), [[1.0]])
    for bad in (0.5, 0.0, -2.0):
        with pytest.raises(ValueError, match="length must be >= 1"):
            degrade.motion_kernel(bad, 0.0)
    for short in (1.0, 0.5, 0.0):
        copy = degrade.motion_blur(test_image, short, 10.0)
        assert copy is not test_image
        np.testing.assert_array_equal(copy, test_image)
    blurred = degrade.motion_blur(test_image, 5.0, 0.0)
    assert blurred.shape == test_image.shape and blurred.dtype == np.uint8
    # horizontal motion leaves horizontal stripes alone and smears vertical ones; 90 degrees the other way round
    stripes = np.zeros((24, 24, 3), np.uint8)
    stripes[::4] = 250
    np.testing.assert_array_equal(degrade.motion_blur(stripes, 5.0, 0.0), stripes)
    assert degrade.motion_blur(stripes, 5.0, 90.0).std() < 0.5 * stripes.std()
    columns = np.ascontiguousarray(stripes.transpose(1, 0, 2))
    np.testing.assert_array_equal(degrade.motion_blur(columns, 5.0, 90.0), columns)
    assert degrade.motion_blur(columns, 5.0, 0.0).std() < 0.5 * columns.std()
    flat = np.full((20, 24, 3), 99, np.uint8)
    np.testing.assert_array_equal(degrade.motion_blur(flat, 3.7, 33.0), flat)


def test_webcam_subset_draws_its_steps_within_its_ranges(test_image):
    spec = degrade.SUBSETS[11]
    assert spec.name == "webcam" and spec.coupled and spec.scene_prob > 0
    img = test_image[:32, :32]
    rng = np.random.default_rng(11)
    seen: dict[str, int] = {}
    scenes = []
    for _ in range(150):
        target, out, params = degrade.degrade_pair(img, 11, rng)
        assert out.shape == img.shape == target.shape and out.dtype == target.dtype == np.uint8
        steps = params["steps"]
        assert steps[0] == "blur" and len(set(steps)) == len(steps)
        assert set(steps) <= {"blur", "motion", "sensor_noise", "chroma_420", "jpeg"}, "no Gaussian/Poisson noise"
        for s in steps:
            seen[s] = seen.get(s, 0) + 1
        assert spec.factor[0] <= params["factor"] <= spec.factor[1] and spec.sigma[0] <= params["sigma"] <= spec.sigma[1]
        if "motion" in steps:
            assert spec.motion_length[0] <= params["motion"]["length"] <= spec.motion_length[1]
            assert 0.0 <= params["motion"]["angle"] < 180.0
        if "sensor_noise" in steps:
            assert spec.sensor_shot[0] <= params["sensor_noise"]["shot"] <= spec.sensor_shot[1]
            assert spec.sensor_read[0] <= params["sensor_noise"]["read"] <= spec.sensor_read[1]
        if "jpeg" in steps:
            assert spec.jpeg_quality[0] <= params["jpeg_quality"] <= spec.jpeg_quality[1]
        if "scene" in params:
            scenes.append(params["scene"])
            (kind, value), = params["scene"].items()
            lo, hi = spec.scene_exposure if kind == "exposure" else spec.scene_gamma
            assert kind in ("exposure", "gamma") and lo <= value <= hi
        else:
            assert target is img
    # every optional step and both scene changes come up, none always (probabilities 0.3 to 0.8)
    assert seen["blur"] == 150
    for step, prob in (("motion", spec.motion_prob), ("sensor_noise", spec.sensor_prob),
                       ("chroma_420", spec.chroma_prob), ("jpeg", spec.jpeg_prob)):
        assert abs(seen.get(step, 0) / 150 - prob) < 0.15, (step, seen.get(step, 0))
    assert abs(len(scenes) / 150 - spec.scene_prob) < 0.15
    assert {next(iter(s)) for s in scenes} == {"exposure", "gamma"}


def test_webcam_pairs_repeat_with_the_same_generator(test_image):
    for seed in range(6):
        a = degrade.degrade_pair(test_image, 11, np.random.default_rng(seed))
        b = degrade.degrade_pair(test_image, 11, np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == b[2]
    c = degrade.degrade_subset(test_image, 11, np.random.default_rng(3), color="bgr")
    assert c[0].shape == test_image.shape and c[0].dtype == np.uint8


@pytest.mark.parametrize("subset", sorted(s for s in degrade.SUBSETS if not degrade.SUBSETS[s].scene_prob))
def test_pairs_without_a_scene_change_are_degrade_subset(test_image, subset):
    for seed in range(3):
        rng_pair, rng_subset = np.random.default_rng(seed), np.random.default_rng(seed)
        target, lq, params = degrade.degrade_pair(test_image, subset, rng_pair)
        expected, expected_params = degrade.degrade_subset(test_image, subset, rng_subset)
        assert target is test_image
        np.testing.assert_array_equal(lq, expected)
        assert params == expected_params and "scene" not in params
        # exactly the same random numbers were drawn: the generators are in the same state after
        assert rng_pair.bit_generator.state == rng_subset.bit_generator.state


def test_webcam_scene_change_applies_to_the_target_and_the_input(test_image):
    spec = degrade.SUBSETS[11]
    kinds = set()
    for seed in range(60):
        target, lq, params = degrade.degrade_pair(test_image, 11, np.random.default_rng(seed))
        if "scene" not in params:
            continue
        (kind, value), = params["scene"].items()
        kinds.add(kind)
        assert target is not test_image and target.shape == test_image.shape and target.dtype == np.uint8
        if kind == "exposure":
            np.testing.assert_array_equal(target, degrade.exposure(test_image, value))
            assert value <= spec.scene_exposure[1] <= 1.0
            assert (target <= test_image).all(), "an exposure gain <= 1 never brightens"
        else:
            np.testing.assert_array_equal(target, degrade.gamma(test_image, value))
            assert (target <= test_image).all() if value >= 1 else (target >= test_image).all()
        if abs(float(target.mean()) - float(test_image.mean())) > 10:
            assert not np.array_equal(target, test_image)
            # the input is degraded from the changed scene, not from the original: its brightness follows the target
            assert abs(float(lq.mean()) - float(target.mean())) < abs(float(lq.mean()) - float(test_image.mean()))
    assert kinds == {"exposure", "gamma"}


def test_degrade_pair_rejects_unknown_subsets(test_image):
    with pytest.raises(ValueError, match="unknown training subset 12"):
        degrade.degrade_pair(test_image, 12, np.random.default_rng())
