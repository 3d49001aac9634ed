"""Step 3: NNCF INT8 under the SSIM guard (passing and failing), directly and through the pipeline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesharp.calibrate.convert import convert_onnx
from edgesharp.calibrate.data import calibration_inputs, validation_samples
from edgesharp.calibrate.export import export_onnx
from edgesharp.calibrate.quantize import GuardError, QuantizeOptions, count_quantizers, quantize_openvino
from edgesharp.calibrate.untrained import synthetic_images
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.errors import EdgesharpError


@pytest.fixture(scope="module")
def small_data():
    images = synthetic_images(2, 40, 48, seed=5)
    return calibration_inputs(images, 32, 3, seed=0), validation_samples(images, None)


def test_guard_passes_and_model_is_quantized(float_ir, tiny_model, small_data):
    _, model = float_ir
    calib, val = small_data
    int8, report = quantize_openvino(model, calib, val, tiny_model.size_multiple,
                                     QuantizeOptions(max_ssim_drop=0.5, subset_size=3, accuracy_control=False))
    assert report["passed"] and count_quantizers(int8) > 0 == count_quantizers(model)
    assert report["ssim_drop"] == pytest.approx(report["fp32"]["mean_ssim"] - report["int8"]["mean_ssim"])
    assert set(report["ssim_drop_per_level"]) == {"heavy", "medium", "low"}
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    core = shared_core()
    assert not np.array_equal(core.compile_model(int8, "CPU")({0: x})[0], core.compile_model(model, "CPU")({0: x})[0])


@pytest.fixture(scope="module")
def fitted_ir(tmp_path_factory):
    """(float OpenVINO model, size multiple) of nafnet-test fitted for 30 steps: a sharpener, which INT8 makes
    measurably worse (a random network may even gain)."""
    from edgesharp.calibrate.untrained import fit, perturb
    from edgesharp.train import models

    torch.manual_seed(0)
    student = models.create("nafnet-test")
    perturb(student, 0)
    fit(student, 30, 0)
    return convert_onnx(export_onnx(student.eval(), tmp_path_factory.mktemp("fitted") / "m.onnx")), student.size_multiple


def test_guard_fails_on_impossible_drop(small_data, fitted_ir):
    model, multiple = fitted_ir
    calib, val = small_data
    with pytest.raises(GuardError) as err:
        quantize_openvino(model, calib, val, multiple,
                          QuantizeOptions(max_ssim_drop=1e-9, subset_size=3, accuracy_control=False))
    message = str(err.value)
    assert "exceeds --max-ssim-drop 1e-09" in message and "plain" in message and "\n" not in message
    attempt = err.value.report["attempts"][0]
    assert attempt["reached_drop"] > 1e-9 and attempt["method"] == "plain"


def test_worst_level_drop_is_the_largest_drop_of_one_level_mean():
    from edgesharp.calibrate.data import Sample
    from edgesharp.calibrate.quantize import worst_level_drop

    img = np.zeros((2, 2, 3), np.uint8)
    samples = [Sample(f"s{i}", lv, img, img) for i, lv in enumerate(["heavy", "heavy", "low", "low"])]
    # heavy loses 0.02 and 0.00 (mean 0.01), low gains 0.03: the mean over all four images gains
    assert worst_level_drop(samples, [0.8, 0.8, 0.9, 0.9], [0.78, 0.8, 0.93, 0.93]) == pytest.approx(0.01)


def test_worst_level_guard_refuses_what_the_mean_lets_through(small_data, fitted_ir):
    model, multiple = fitted_ir
    calib, val = small_data
    _, report = quantize_openvino(model, calib, val, multiple,
                                  QuantizeOptions(max_ssim_drop=1.0, subset_size=3, accuracy_control=False))
    mean_drop, worst = report["ssim_drop"], max(report["ssim_drop_per_level"].values())
    assert report["guard"] == "mean" and worst > mean_drop  # plain INT8 is deterministic: the same drops below
    limit = (mean_drop + worst) / 2
    quantize_openvino(model, calib, val, multiple, QuantizeOptions(max_ssim_drop=limit, subset_size=3, accuracy_control=False))
    with pytest.raises(GuardError, match=r"worst-level SSIM drop [\d.]+ exceeds") as err:
        quantize_openvino(model, calib, val, multiple,
                          QuantizeOptions(max_ssim_drop=limit, subset_size=3, accuracy_control=False, guard="worst-level"))
    assert err.value.report["ssim_drop"] == pytest.approx(worst)


class _TwoConv(torch.nn.Module):
    """Two convolutions: few quantizer groups, so NNCF's layer ranking takes a second, not half a minute."""

    size_multiple = 1

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x + 0.3 * self.b(torch.relu(self.a(x)))


def test_accuracy_control_cannot_beat_fp32(small_data, tmp_path, caplog):
    """A negative limit asks INT8 to beat FP32: NNCF reverts a layer, the guard still refuses; progress is
    logged as it happens (validation passes, NNCF's revert steps)."""
    caplog.set_level(logging.INFO, logger="edgesharp.calibrate.quantize")
    model = convert_onnx(export_onnx(_TwoConv().eval(), tmp_path / "two.onnx", sample_hw=(16, 16)))
    calib, val = small_data
    with pytest.raises(GuardError) as err:
        quantize_openvino(model, calib, val, 1,
                          QuantizeOptions(max_ssim_drop=-1.0, subset_size=3, accuracy_control=True, max_reverted=1))
    assert "accuracy_control" in str(err.value)
    attempt = err.value.report["attempts"][0]
    assert attempt["method"] == "accuracy_control" and attempt["max_reverted"] == 1
    assert 1 <= len(attempt["reverted"]) <= 2  # one group; NNCF reverts a quantizer group (an op may pull its partner)
    progress = [r.getMessage() for r in caplog.records if r.name == "edgesharp.calibrate.quantize"]
    passes = [m for m in progress if "accuracy control: validation pass" in m]
    assert len(passes) >= 2 and "validation pass 1 on" in passes[0]
    assert any("nncf: Reverted" in m for m in progress)
    assert progress.index(passes[-1]) < progress.index(next(m for m in progress if "openvino int8: mean SSIM" in m))


def test_accuracy_control_guards_the_worst_level(small_data, tmp_path):
    model = convert_onnx(export_onnx(_TwoConv().eval(), tmp_path / "two.onnx", sample_hw=(16, 16)))
    calib, val = small_data
    _, report = quantize_openvino(model, calib, val, 1, QuantizeOptions(max_ssim_drop=1.0, subset_size=3,
                                                                        accuracy_control=True, guard="worst-level"))
    assert report["passed"] and report["guard"] == "worst-level"
    assert report["ssim_drop"] == pytest.approx(max(report["ssim_drop_per_level"].values()))


def test_tiny_bundle_records_accuracy_control_run(tiny_bundle):
    report = json.loads((tiny_bundle / "calibration_report.json").read_text())
    q = report["openvino_int8"]
    assert q["passed"] and q["attempts"][0]["method"] == "accuracy_control" and q["quantizers"] > 0
    assert "reverted_layers" in q and report["timings"]


def test_unknown_ignored_scope_is_one_clear_line(float_ir, tiny_model, small_data):
    _, model = float_ir
    calib, val = small_data
    with pytest.raises(EdgesharpError, match="no_such_node") as err:
        quantize_openvino(model, calib, val, tiny_model.size_multiple,
                          QuantizeOptions(subset_size=3, accuracy_control=False, ignored_scope=["no_such_node"]))
    assert "\n" not in str(err.value)


def test_signal_handlers_still_run_after_accuracy_control(tmp_path, survives_a_signal):
    # NNCF's accuracy control makes and drops OpenVINO Cores out of order; on the caller's thread that left an
    # unmapped alternate signal stack, and the next Python signal handler crashed the process (SIGSEGV).
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import pytest
from test_quantize import _TwoConv, small_data
from edgesharp.calibrate.convert import convert_onnx
from edgesharp.calibrate.export import export_onnx
from edgesharp.calibrate.quantize import GuardError, QuantizeOptions, quantize_openvino
model = convert_onnx(export_onnx(_TwoConv().eval(), {str(tmp_path / 'two.onnx')!r}, sample_hw=(16, 16)))
calib, val = small_data.__wrapped__()
with pytest.raises(GuardError):
    quantize_openvino(model, calib, val, 1, QuantizeOptions(max_ssim_drop=-1.0, subset_size=3, accuracy_control=True,
                                                           max_reverted=1))
"""
    survives_a_signal(code, timeout=300)


def _activation_ranges(model) -> dict[str, float]:
    """Width (input_high - input_low, summed) of every activation FakeQuantize, by node name."""
    out = {}
    for op in model.get_ops():
        if op.get_type_name() != "FakeQuantize" or op.input_value(0).get_node().get_type_name() == "Constant":
            continue
        low, high = (op.input_value(i).get_node().get_data() for i in (1, 2))
        out[op.get_friendly_name()] = float(np.sum(high - low))
    return out


def test_global_minmax_activation_ranges_contain_the_mean_ones(float_ir, tiny_model, small_data):
    _, model = float_ir
    calib, val = small_data
    ranges = {}
    for kind in ("mean_minmax", "minmax"):
        int8, report = quantize_openvino(model, calib, val, tiny_model.size_multiple, QuantizeOptions(
            max_ssim_drop=1.0, subset_size=3, accuracy_control=False, activation_range=kind))
        assert report["attempts"][0]["activation_range"] == kind
        ranges[kind] = _activation_ranges(int8)
    assert ranges["minmax"].keys() == ranges["mean_minmax"].keys() and ranges["minmax"]
    assert all(ranges["minmax"][k] >= ranges["mean_minmax"][k] - 1e-6 for k in ranges["minmax"])
    assert any(ranges["minmax"][k] > ranges["mean_minmax"][k] * 1.01 for k in ranges["minmax"])
    with pytest.raises(EdgesharpError, match="unknown activation range 'median'; choose one of mean_minmax, minmax"):
        quantize_openvino(model, calib, val, tiny_model.size_multiple,
                          QuantizeOptions(subset_size=3, accuracy_control=False, activation_range="median"))


def test_float_layers_come_from_the_graph(small_data, tmp_path):
    """Plain quantization quantizes both convolutions; an ignored one is float and not called reverted."""
    from edgesharp.calibrate.quantize import float_layers, reverted_layers

    model = convert_onnx(export_onnx(_TwoConv().eval(), tmp_path / "two.onnx", sample_hw=(16, 16)))
    convs = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    assert len(convs) == 2
    calib, val = small_data
    int8, report = quantize_openvino(model, calib, val, 1, QuantizeOptions(max_ssim_drop=1.0, subset_size=3,
                                                                           accuracy_control=False))
    assert float_layers(model) == convs  # the float model: nothing quantized
    assert float_layers(int8) == [] and report["reverted_layers"] == []
    int8, report = quantize_openvino(model, calib, val, 1, QuantizeOptions(
        max_ssim_drop=1.0, subset_size=3, accuracy_control=False, ignored_scope=[convs[1]]))
    assert float_layers(int8) == [convs[1]] and report["reverted_layers"] == []
    assert reverted_layers(int8, []) == [convs[1]] and reverted_layers(int8, ["type:Convolution"]) == []
