"""Step 3: NNCF INT8 of the float OpenVINO model under an SSIM guard.

With accuracy control, `nncf.quantize_with_accuracy_control` reverts the layers that cost the most
SSIM until the drop (FP32 mean SSIM - INT8 mean SSIM over the validation set) is within
`max_ssim_drop`; without it, plain `nncf.quantize`. Either way the drop is measured again here and
the guard decides: a model that misses it, or that has no quantized layer left, is refused.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from edgesharp.calibrate.data import Sample, to_model_input
from edgesharp.calibrate.evaluate import sample_ssim, score
from edgesharp.calibrate.overflow import integer_weights, overflow_report
from edgesharp.calibrate.runners import bgr_as_rgb, openvino_runner
from edgesharp.edge.backends.openvino_core import off_main_thread
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

PRESETS = ("performance", "mixed")
# "mean": the drop of the mean SSIM over every validation image; "worst-level": the largest drop of one
# level's mean (a mean over levels can hide a heavy-blur loss behind a medium-blur gain)
GUARDS = ("mean", "worst-level")


class GuardError(EdgesharpError):
    """INT8 lost more SSIM than allowed; carries the report of what was tried."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclass
class QuantizeOptions:
    max_ssim_drop: float = 0.005
    subset_size: int = 300
    preset: str | None = None
    ignored_scope: list[str] = field(default_factory=list)
    accuracy_control: bool = True
    max_reverted: int | None = None  # accuracy control: most layers NNCF may revert to float (None: all)
    guard: str = "mean"  # one of GUARDS
    activation_range: str = "mean_minmax"  # one of ACTIVATION_RANGES
    overflow_fix: str = "enable"  # one of OVERFLOW_FIXES


# NNCF's overflow fix (calibrate.overflow): "enable" gives every dense convolution 7-bit weights, so the model
# computes the same on CPUs without VNNI (AVX2 laptops) as with it; "first_layer" (NNCF's default) and "disable"
# leave 8-bit weights that saturate there.
OVERFLOW_FIXES = ("enable", "first_layer", "disable")

# How NNCF sets a per-tensor activation range from the calibration crops: "mean_minmax" (its default) averages
# each crop's min and max, which clips the largest activations when a few crops (heavy blur) drive them;
# "minmax" takes the global min and max over all crops.
ACTIVATION_RANGES = ("mean_minmax", "minmax")


def advanced_parameters(activation_range: str, overflow_fix: str = "enable"):
    """NNCF's AdvancedQuantizationParameters for `activation_range` and `overflow_fix`."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if activation_range not in ACTIVATION_RANGES:
        raise EdgesharpError(f"unknown activation range {activation_range!r}; choose one of {', '.join(ACTIVATION_RANGES)}")
    if overflow_fix not in OVERFLOW_FIXES:
        raise EdgesharpError(f"unknown overflow fix {overflow_fix!r}; choose one of {', '.join(OVERFLOW_FIXES)}")
    fixes = {"enable": OverflowFix.ENABLE, "first_layer": OverflowFix.FIRST_LAYER, "disable": OverflowFix.DISABLE}
    params = AdvancedQuantizationParameters(overflow_fix=fixes[overflow_fix])
    if activation_range == "minmax":
        params.activations_range_estimator_params = RangeEstimatorParametersSet.MINMAX
    return params


def ignored_scope(entries: list[str], validate: bool = True):
    """'type:Multiply' -> types, 're:.*conv.*' -> patterns, anything else -> node names; with `validate`, NNCF
    refuses an entry that matches no node."""
    import nncf

    if not entries:
        return None
    names = [e for e in entries if not e.startswith(("type:", "re:"))]
    types = [e[5:] for e in entries if e.startswith("type:")]
    patterns = [e[3:] for e in entries if e.startswith("re:")]
    return nncf.IgnoredScope(names=names, types=types, patterns=patterns, validate=validate)


def count_quantizers(model) -> int:
    return sum(1 for op in model.get_ordered_ops() if op.get_type_name() in ("FakeQuantize", "FakeConvert"))


_KEY_LINES = ("Accuracy drop", "Reverted", "were reverted", "could not achieve", "Algorithm completed",
              "Validation of", "Changing the scope", "Calculating ranking", "Re-calculating ranking",
              "Total number of quantized", "Maximum number of iteration")


class _Progress(logging.Handler):
    """Passes NNCF's INFO lines that show progress (accuracy drops, reverts) on to our log as they come;
    nothing is read from them (the report reads the graph: `float_layers`)."""

    def __init__(self):
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if any(key in line for key in _KEY_LINES):
            log.info("  nncf: %s", line.splitlines()[0])


def _run_nncf(fn, *args, **kwargs):
    """Call an NNCF entry point with its INFO progress shown in our log, on a worker
    thread (`edgesharp.edge.backends.openvino_core.off_main_thread`)."""
    nncf_log = logging.getLogger("nncf")
    saved = (nncf_log.level, nncf_log.propagate, list(nncf_log.handlers))
    nncf_log.handlers[:] = [_Progress()]
    nncf_log.setLevel(logging.INFO)
    nncf_log.propagate = False
    try:
        result = off_main_thread(fn, *args, **kwargs)  # NNCF makes OpenVINO Cores of its own
    finally:
        nncf_log.setLevel(saved[0])
        nncf_log.propagate = saved[1]
        nncf_log.handlers[:] = saved[2]
    return result


_COMPUTE_TYPES = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
_LAYOUT = ("Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze")


def _quantized_activation(port) -> bool:
    node = port.get_source_output().get_node()
    while node.get_type_name() in _LAYOUT:
        node = node.input(0).get_source_output().get_node()
    return node.get_type_name() in ("FakeQuantize", "FakeConvert")


def float_layers(model) -> list[str]:
    """Names of the compute layers (convolutions, matrix products) of a quantized ov.Model that run in float:
    their activation comes from no quantizer or their weights are not integers (`overflow.integer_weights`, both
    forms a weight takes). Read from the graph, so it does not depend on what NNCF logs."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() in _COMPUTE_TYPES
            and not (_quantized_activation(op.input(0))
                     and integer_weights(op.input(1).get_source_output().get_node()) is not None)]


def reverted_layers(model, entries: list[str]) -> list[str]:
    """The float compute layers of `model` that the ignored scope `entries` did not ask for: with accuracy
    control, the layers NNCF reverted; after plain quantization, those its patterns leave in float."""
    names = {e for e in entries if not e.startswith(("type:", "re:"))}
    types = {e[5:] for e in entries if e.startswith("type:")}
    patterns = [re.compile(e[3:]) for e in entries if e.startswith("re:")]
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    return [name for name in float_layers(model)
            if name not in names and kinds[name] not in types and not any(p.fullmatch(name) for p in patterns)]


def sample_ssims(run, samples: list[Sample], multiple: int) -> list[float]:
    return [sample_ssim(run, s, multiple) for s in samples]


def worst_level_drop(samples: list[Sample], reference: list[float], values: list[float]) -> float:
    """The largest drop of a level's mean SSIM from `reference` to `values` (one entry per sample)."""
    drops = []
    for level in sorted({s.level for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.level == level]
        drops.append(float(np.mean([reference[i] for i in idx]) - np.mean([values[i] for i in idx])))
    return max(drops)


def float_runner(bgr: bool = False):
    """model -> an RGB float runner of it on OpenVINO in f32 (`bgr`: the model takes and returns BGR)."""

    def runner(model):
        run = openvino_runner(model, fp32_only=True)
        return bgr_as_rgb(run) if bgr else run

    return runner


def settings_error(exc: Exception) -> EdgesharpError:
    """NNCF's ValidationError (a bad ignored scope, preset or subset) as our one-line error."""
    return EdgesharpError(f"NNCF rejected the settings: {str(exc).strip().splitlines()[0]}")


def quantize_openvino(model, calib: list[np.ndarray], val: list[Sample], multiple: int, opts: QuantizeOptions,
                      bgr: bool = False):
    """INT8 ov.Model of the float `model`, plus a report; GuardError when the guard is not met.

    `bgr`: the model takes and returns BGR (`edgesharp.train.models.export_form.bgr_native`); calibration crops
    and validation runs are converted to match, so scores stay comparable with the RGB runners."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    runner = float_runner(bgr)
    preset = nncf.QuantizationPreset(opts.preset) if opts.preset else None
    scope = ignored_scope(opts.ignored_scope)
    subset = min(opts.subset_size, len(calib))
    calib_ds = nncf.Dataset(calib, (lambda rgb: to_model_input(rgb[..., ::-1])) if bgr else to_model_input)
    t0 = time.perf_counter()
    fp32 = score(runner(model), val, multiple)
    method = "accuracy_control" if opts.accuracy_control else "plain"
    attempt = {"method": method, "preset": opts.preset or "default", "subset_size": subset,
               "ignored_scope": list(opts.ignored_scope), "max_ssim_drop": opts.max_ssim_drop,
               "max_reverted": opts.max_reverted, "activation_range": opts.activation_range,
               "overflow_fix": opts.overflow_fix}
    advanced = advanced_parameters(opts.activation_range, opts.overflow_fix)
    try:
        if opts.accuracy_control:
            passes = []

            reference = {id(s): v for s, v in zip(val, sample_ssims(runner(model), val, multiple), strict=True)}

            def validate(compiled, items) -> tuple[float, list[float]]:
                run = runner(compiled)
                values = sample_ssims(run, items, multiple)
                if opts.guard == "worst-level":  # NNCF's absolute drop then equals the worst level's drop
                    metric = fp32["mean_ssim"] - worst_level_drop(items, [reference[id(s)] for s in items], values)
                else:
                    metric = float(np.mean(values))
                passes.append(metric)
                # NNCF's ranking validates the model once per quantizer group: every tenth pass is enough to show progress
                level = logging.INFO if len(passes) <= 2 or len(passes) % 10 == 0 else logging.DEBUG
                log.log(level, "  accuracy control: validation pass %d on %d images, mean SSIM %.4f (%.0f s)",
                        len(passes), len(values), passes[-1], time.perf_counter() - t0)
                return passes[-1], values

            int8 = _run_nncf(
                nncf.quantize_with_accuracy_control, model, calib_ds, nncf.Dataset(val), validate,
                max_drop=max(opts.max_ssim_drop, 0.0), drop_type=nncf.DropType.ABSOLUTE,
                preset=preset, subset_size=subset, ignored_scope=scope, advanced_quantization_parameters=advanced,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    max_num_iterations=opts.max_reverted if opts.max_reverted is not None else sys.maxsize),
            )
        else:
            int8 = _run_nncf(nncf.quantize, model, calib_ds, preset=preset, subset_size=subset, ignored_scope=scope,
                                    advanced_parameters=advanced)
    except nncf.ValidationError as exc:
        raise settings_error(exc) from exc
    return int8, judge(int8, runner, fp32, val, multiple, opts, attempt, reverted_layers(int8, opts.ignored_scope), time.perf_counter() - t0)


def judge(int8, runner, fp32: dict, val: list[Sample], multiple: int, opts: QuantizeOptions, attempt: dict,
          reverted: list[str], seconds: float) -> dict:
    """Score `int8` against the FP32 scores and apply the guard: the report, or GuardError carrying it.

    `runner(model)` wraps a model as a float runner; `attempt` describes how `int8` was made (its method
    names it in the messages) and gets the reached drop, quantizer count and reverted layers added."""
    method = attempt["method"]
    int8_score = score(runner(int8), val, multiple)
    per_level = {lv: fp32["levels"][lv]["ssim"] - int8_score["levels"][lv]["ssim"] for lv in fp32["levels"]}
    drop = max(per_level.values()) if opts.guard == "worst-level" else fp32["mean_ssim"] - int8_score["mean_ssim"]
    quantizers = count_quantizers(int8)
    attempt.update(reached_drop=drop, quantizers=quantizers, reverted=list(reverted))
    overflow = overflow_report(int8)
    report = {"overflow": overflow,
        "fp32": fp32, "int8": int8_score, "ssim_drop": drop,
        "ssim_drop_per_level": per_level, "guard": opts.guard,
        "max_ssim_drop": opts.max_ssim_drop, "quantizers": quantizers, "reverted_layers": attempt["reverted"],
        "attempts": [attempt], "seconds": seconds, "passed": False,
    }
    log.info("  overflow: %d quantized dense convolutions, largest |weight| %d (%s without VNNI)",
             overflow["quantized_dense_convolutions"], overflow["max_abs_weight"],
             "safe" if overflow["safe"] else f"{len(overflow['unsafe'])} may saturate")
    log.info("  openvino int8: mean SSIM %.4f vs fp32 %.4f, %s drop %.5f (limit %g), %d quantizers, %d layers reverted",
             int8_score["mean_ssim"], fp32["mean_ssim"], opts.guard, drop, opts.max_ssim_drop, quantizers, len(attempt["reverted"]))
    if quantizers == 0:
        raise GuardError(f"OpenVINO INT8 refused: no quantized layer is left after {method} quantization "
                         f"(reached SSIM drop {drop:.5f}, limit {opts.max_ssim_drop:g}); the model would run as FP32", report)
    if not drop <= opts.max_ssim_drop:
        raise GuardError(f"OpenVINO INT8 refused: {opts.guard} SSIM drop {drop:.5f} exceeds --max-ssim-drop {opts.max_ssim_drop:g} "
                         f"(tried {method} quantization, preset {attempt['preset']}, subset {attempt['subset_size']}, "
                         f"{len(attempt['reverted'])} layers reverted)", report)
    report["passed"] = True
    return report
