"""Step 5, quantization-aware: NNCF quantizers on the PyTorch student, fine-tuning toward its FP32 output,
conversion to an OpenVINO INT8 IR, and the guard; directly and through the CLI flags (the bundle test is in test_calibrate_cli.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesharp.calibrate.data import calibration_inputs, validation_samples
from edgesharp.calibrate.qat import (
    QATError,
    QATOptions,
    _lr_factor,
    fine_tune,
    fine_tune_batch,
    quantize_aware,
    quantized_student,
    to_openvino,
)
from edgesharp.calibrate.quantize import GuardError, QuantizeOptions, count_quantizers
from edgesharp.calibrate.untrained import synthetic_images
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.errors import EdgesharpError
from edgesharp.train.models.export_form import inference_form


@pytest.fixture(scope="module")
def images():
    return synthetic_images(3, 48, 56, seed=7)


@pytest.fixture(scope="module")
def calib(images):
    return calibration_inputs(images, 32, 4, seed=0)


def test_fine_tune_batch_is_seeded_degraded_crops_at_the_size_multiple(images):
    a = fine_tune_batch(images, 5, 30, 8, np.random.default_rng(3))
    b = fine_tune_batch(images, 5, 30, 8, np.random.default_rng(3))
    assert a.shape == (5, 24, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, fine_tune_batch(images, 5, 30, 8, np.random.default_rng(4)))
    assert len({x.tobytes() for x in a}) == 5
    with pytest.raises(QATError, match="crops of 6 px are smaller than the model's size multiple 8"):
        fine_tune_batch(images, 1, 6, 8, np.random.default_rng(0))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_fine_tuning_pulls_the_int8_model_toward_fp32_and_the_ir_runs_what_pytorch_trained(tiny_model, calib, images, schedule):
    reference = inference_form(tiny_model).eval()
    model = quantized_student(reference, calib, QuantizeOptions(subset_size=4))
    # crops the fine-tuning does not draw (another seed)
    x = torch.from_numpy(fine_tune_batch(images, 16, 40, 8, np.random.default_rng(99)).transpose(0, 3, 1, 2).astype(np.float32) / 255)
    with torch.no_grad():
        before = (model.eval()(x) - reference(x)).abs().mean().item()
    losses = fine_tune(model, reference, images, tiny_model.size_multiple, QATOptions(steps=40, lr=5e-4, batch_size=4, crop=32, log_every=10, schedule=schedule), bgr=False)
    with torch.no_grad():
        qat_out = model.eval()(x)
        after = (qat_out - reference(x)).abs().mean().item()
    assert losses["last"] < losses["first"] and after < before
    int8 = to_openvino(model, tiny_model.size_multiple)
    assert count_quantizers(int8) > 0
    # OpenVINO runs the quantized graph in INT8 kernels; PyTorch emulates it in float: equal up to rounding
    ov_out = np.concatenate([shared_core().compile_model(int8, "CPU")({0: x[i : i + 1].numpy()})[0] for i in range(16)])
    assert ov_out.shape == (16, 3, 40, 40)
    assert np.abs(ov_out - qat_out.numpy()).mean() < 0.1 * np.abs(qat_out.numpy() - x.numpy()).mean() + 2e-3


def test_cosine_schedule_decays_from_the_full_rate_to_zero():
    factors = [_lr_factor("cosine", i, 100) for i in range(101)]
    assert factors[0] == 1.0 and factors[50] == pytest.approx(0.5) and factors[100] == pytest.approx(0.0, abs=1e-12)
    assert (np.diff(factors) < 0).all()
    assert {_lr_factor("constant", i, 100) for i in (0, 50, 100)} == {1.0}


def test_quantize_aware_reports_its_attempt_and_the_guard_refuses_a_loss(tiny_model, float_ir, calib, images):
    _, float_model = float_ir
    val = validation_samples(images[:2], None)
    multiple = tiny_model.size_multiple
    qat = QATOptions(steps=3, batch_size=2, crop=32)
    int8, report = quantize_aware(tiny_model, float_model, calib, images, val, multiple,
                                  QuantizeOptions(max_ssim_drop=1.0, subset_size=4, guard="worst-level"), qat)
    attempt = report["attempts"][0]
    assert report["passed"] and attempt["method"] == "quantization_aware" and attempt["steps"] == 3
    assert count_quantizers(int8) > 0 and set(attempt["losses"]) == {"first", "last"}
    assert report["ssim_drop"] == pytest.approx(max(report["ssim_drop_per_level"].values()))
    with pytest.raises(GuardError, match=r"worst-level SSIM drop -?[0-9.]+ exceeds --max-ssim-drop -1 \(tried quantization_aware"):
        quantize_aware(tiny_model, float_model, calib, images, val, multiple,
                       QuantizeOptions(max_ssim_drop=-1.0, subset_size=4, guard="worst-level"), qat)


def test_divergence_and_bad_settings_are_one_clear_line(tiny_model, float_ir, calib, images):
    _, float_model = float_ir
    val = validation_samples(images[:1], None)
    with pytest.raises(QATError, match=r"diverged at step \d+ .*lower --qat-lr"):
        quantize_aware(tiny_model, float_model, calib, images, val, tiny_model.size_multiple,
                       QuantizeOptions(max_ssim_drop=1.0, subset_size=4), QATOptions(steps=5, lr=float("inf"), batch_size=2, crop=32))
    with pytest.raises(QATError, match="needs steps >= 1, lr > 0"):
        quantize_aware(tiny_model, float_model, calib, images, val, tiny_model.size_multiple,
                       QuantizeOptions(), QATOptions(steps=0))
    with pytest.raises(QATError, match="schedule in constant, cosine .*'linear'"):
        quantize_aware(tiny_model, float_model, calib, images, val, tiny_model.size_multiple,
                       QuantizeOptions(), QATOptions(steps=5, schedule="linear"))


def test_cli_rejects_negative_qat_steps(capsys):
    from edgesharp.edge.cli import main

    with pytest.raises(SystemExit):
        main(["calibrate", "x.pt", "--out", "o", "--qat-steps", "-1"])
    assert "expected 0 or a positive integer, got '-1'" in capsys.readouterr().err


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_norm_internals_and_the_global_residual_stay_float(calib, norm):
    """NNCF's PyTorch placement would quantize a norm's `+ eps` sum (NaN on flat patches once it rounds to 0) and both
    inputs of `input + network(input)` (clipping highlights); the OpenVINO placement leaves both float, so does QAT."""
    from edgesharp.train import models

    torch.manual_seed(0)
    student = models.create("nafnet-test", norm=norm).eval()
    int8 = to_openvino(quantized_student(inference_form(student).eval(), calib, QuantizeOptions(subset_size=4)), student.size_multiple)
    consumers = {t.get_node().get_type_name() for op in int8.get_ordered_ops() if op.get_type_name() == "FakeQuantize"
                 for t in op.output(0).get_target_inputs()}
    assert "Convolution" in consumers and not consumers & {"Sqrt", "Divide", "Power"}
    (result,) = int8.get_results()
    final = result.input_value(0).get_node()
    assert final.get_type_name() == "Add"
    assert all(final.input_value(i).get_node().get_type_name() != "FakeQuantize" for i in range(2))
    x = np.full((1, 3, 32, 32), 0.5, np.float32)  # a flat frame: the case that turned the quantized norm into NaN
    assert np.isfinite(shared_core().compile_model(int8, "CPU")({0: x})[0]).all()


def test_sensitivity_ranks_every_quantizer_by_the_ssim_it_gives_back_and_leaves_them_on(tiny_model, calib, images):
    from edgesharp.calibrate.sensitivity import describe, level_ssim, quantizer_sensitivity, quantizers

    val = validation_samples(images[:2], None)
    model = quantized_student(inference_form(tiny_model).eval(), calib, QuantizeOptions(subset_size=4))
    multiple = tiny_model.size_multiple
    before = level_ssim(model, val, multiple, "heavy")
    result = quantizer_sensitivity(model, val, multiple, "heavy")
    rows = result["quantizers"]
    assert result["level"] == "heavy" and result["int8_ssim"] == pytest.approx(before, abs=1e-12)
    assert sorted(r["module"] for r in rows) == sorted(n for n, _ in quantizers(model))
    gains = [r["ssim_gain"] for r in rows]
    assert gains == sorted(gains, reverse=True) and max(gains) > 0
    assert all(q.is_enabled_quantization() for _, q in quantizers(model))
    assert level_ssim(model, val, multiple, "heavy") == pytest.approx(before, abs=1e-12)
    # the top gain is what switching that one quantizer off measures
    top = dict(quantizers(model))[rows[0]["module"]]
    top.disable_quantization()
    assert level_ssim(model, val, multiple, "heavy") - before == pytest.approx(rows[0]["ssim_gain"], abs=1e-12)
    top.enable_quantization()
    # a quantizer already off is neither measured nor switched back on
    top.disable_quantization()
    assert rows[0]["module"] not in {r["module"] for r in quantizer_sensitivity(model, val, multiple, "heavy")["quantizers"]}
    assert not top.is_enabled_quantization()
    assert describe("__nncf_hooks.post_hooks.0/add/9__0.0") == {"node": "0/add/9", "position": "output"}
    assert describe("__nncf_hooks.pre_hooks.ending/conv2d/0__1.0") == {"node": "ending/conv2d/0", "position": "input 1"}


def test_quantize_aware_reports_the_sensitivity_and_refuses_an_unknown_level(tiny_model, float_ir, calib, images):
    _, float_model = float_ir
    val = validation_samples(images[:1], None, levels=("heavy", "low"))
    opts = QuantizeOptions(max_ssim_drop=1.0, subset_size=4)
    _, report = quantize_aware(tiny_model, float_model, calib, images, val, tiny_model.size_multiple, opts,
                               QATOptions(steps=2, batch_size=2, crop=32, sensitivity="low"))
    sens = report["attempts"][0]["sensitivity"]
    assert sens["level"] == "low" and len(sens["quantizers"]) > 0 and {"node", "position", "ssim_gain"} <= set(sens["quantizers"][0])
    with pytest.raises(QATError, match=r"--qat-sensitivity 'medium': no validation samples at that level \(levels: heavy, low\)"):
        quantize_aware(tiny_model, float_model, calib, images, val, tiny_model.size_multiple, opts,
                       QATOptions(steps=2, batch_size=2, crop=32, sensitivity="medium"))


def test_the_default_recipes_float_nodes_name_nodes_of_its_graph():
    """`make default-model` keeps tensors float by NNCF node name; a renamed node (another NNCF, another graph) would
    silently quantize them again, since QAT's ignored scope does not insist on a match."""
    import re
    from pathlib import Path

    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    from edgesharp.train import models

    makefile = Path(__file__).resolve().parents[2] / "Makefile"
    nodes = re.search(r"^DEFAULT_FLOAT_NODES = (.+)$", makefile.read_text(), re.M).group(1).split()
    assert len(nodes) == 7 and "--ignored-scope $(DEFAULT_FLOAT_NODES)" in makefile.read_text()
    torch.manual_seed(0)
    student = inference_form(models.create("nafnet-rt-s2")).eval()
    graph = {n.node_name for n in build_nncf_graph(student, torch.rand(1, 3, 64, 64)).get_all_nodes()}
    assert set(nodes) <= graph, sorted(set(nodes) - graph)
    crops = calibration_inputs([("flat", np.full((64, 64, 3), 128, np.uint8)), ("noise", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))], 64, 2, multiple=32)
    every = count_quantizers(to_openvino(quantized_student(student, crops, QuantizeOptions(subset_size=2)), 32))
    kept = count_quantizers(to_openvino(quantized_student(student, crops, QuantizeOptions(subset_size=2, ignored_scope=nodes)), 32))
    assert 0 < kept < every


def test_cli_offers_the_sensitivity_at_the_three_levels(capsys):
    from edgesharp.edge.cli import main

    with pytest.raises(SystemExit):
        main(["calibrate", "x.pt", "--out", "o", "--qat-steps", "10", "--qat-sensitivity", "extreme"])
    err = capsys.readouterr().err.replace("'", "")
    assert "argument --qat-sensitivity: invalid choice: extreme (choose from heavy, medium, low)" in err



def test_sensitivity_without_fine_tuning_is_refused_before_any_work(tiny_model, tmp_path):
    from edgesharp.calibrate.pipeline import CalibrateOptions, calibrate_model

    with pytest.raises(EdgesharpError, match="--qat-sensitivity ranks the quantizers of quantization-aware fine-tuning; add --qat-steps N"):
        calibrate_model(tiny_model, {}, tmp_path / "out", CalibrateOptions(qat_sensitivity="heavy"))
    assert not (tmp_path / "out").exists()


def test_fine_tuning_keeps_the_overflow_fix(tiny_model, calib, images):
    """NNCF's overflow fix starts every dense convolution at 7-bit weights; training must not grow them back past
    |64| (where CPUs without VNNI saturate): the projection after each step holds them, whatever the rate."""
    from edgesharp.calibrate.overflow import overflow_report
    from edgesharp.calibrate.qat import half_range_limits

    reference = inference_form(tiny_model).eval()
    multiple = tiny_model.size_multiple
    opts = QATOptions(steps=12, lr=4e-2, batch_size=2, crop=32, log_every=12)
    results = {}
    for project in (True, False):
        model = quantized_student(reference, calib, QuantizeOptions(subset_size=4))
        limits = half_range_limits(model, multiple)
        assert len(limits) == overflow_report(to_openvino(model, multiple))["quantized_dense_convolutions"] > 0
        fine_tune(model, reference, images, multiple, opts, bgr=False, limits=limits if project else None)
        results[project] = overflow_report(to_openvino(model, multiple))
    assert results[True]["safe"] and results[True]["max_abs_weight"] <= 64
    assert not results[False]["safe"]  # the same steps without the projection leave the half range


def test_fine_tune_batch_photometric_share_makes_dim_and_flat_crops(images):
    plain = fine_tune_batch(images, 32, 32, 8, np.random.default_rng(5))
    dim = fine_tune_batch(images, 32, 32, 8, np.random.default_rng(5), photometric_share=1.0)
    assert dim.shape == plain.shape and dim.mean() < plain.mean()
    assert np.array_equal(dim, fine_tune_batch(images, 32, 32, 8, np.random.default_rng(5), photometric_share=1.0))
