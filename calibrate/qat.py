"""Step 5, quantization-aware: NNCF INT8 of the PyTorch student, fine-tuned to reproduce its own FP32 output.

Post-training INT8 (`edgesharp.calibrate.quantize`) fixes each activation's range from calibration crops and
stops there. Students whose heavy-blur activations reach far beyond what most crops produce lose
SSIM at heavy blur that no choice of ranges recovers. Here the same NNCF quantization is applied to
the student's PyTorch inference form (`edgesharp.train.models.export_form`), and its weights are then trained
for `steps` with the quantizers in the graph (straight-through gradients), so that they settle where
rounding costs least:

    loss = L1(int8_student(x), fp32_student(x))

over fresh degraded crops of the calibration images (training subsets, random crop, flips). The
FP32 student is the only target: no teacher or ground truth is needed, and the INT8 model is pulled
toward the model that FP32/FP16 ship, which is what the guard measures. Quantizer ranges stay as
calibrated unless `range_lr` > 0. The result is converted with `ov.convert_model` into an IR whose
FakeQuantize nodes OpenVINO runs as INT8, and the guard (`edgesharp.calibrate.quantize.judge`) decides. With
`sensitivity` set to a blur level, the fine-tuned quantizers are ranked by the SSIM each costs at that level
(`edgesharp.calibrate.sensitivity`) into the report, before conversion.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from edgesharp.calibrate.data import Sample, crop_side
from edgesharp.calibrate.evaluate import score
from edgesharp.calibrate.quantize import (
    QuantizeOptions,
    advanced_parameters,
    float_runner,
    ignored_scope,
    judge,
    settings_error,
)
from edgesharp.calibrate.sensitivity import quantizer_sensitivity
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.degrade import SUBSETS, degrade_subset, photometric

log = logging.getLogger(__name__)

# Operations NNCF's PyTorch placement would quantize but its OpenVINO placement (the post-training path) leaves
# float; the convolutions they feed still quantize their inputs.
# - Inside a LayerNorm/RMSNorm: the `+ eps` sum is quantized, which rounds small mean squares to 0 and the
#   division to inf/NaN on flat patches.
# - Top-level sums (the global residual `input + network(input)` and a U-Net's skip sums): both inputs are
#   quantized, which clips the image on the skip path (the calibrated input range ends near 0.96, so highlights
#   are cut at every blur level) and the residual's heavy-blur amplitudes.
NORM_INTERNALS = r".*norm\d*/.*"
TOP_LEVEL_SUMS = r"^/add/\d+$"


@dataclass
class QATOptions:
    steps: int = 1000
    lr: float = 5e-5
    range_lr: float = 0.0  # learning rate of NNCF's quantizer ranges; 0 keeps the calibrated ranges
    batch_size: int = 8
    crop: int = 128
    seed: int = 0
    log_every: int = 50
    schedule: str = "constant"  # or "cosine": the learning rates decay to 0 over the steps
    sensitivity: str | None = None  # a blur level: after fine-tuning, rank the quantizers by the SSIM they cost there
    photometric: float = 0.0  # share of crops made dimmer or flatter first (edge.imaging.degrade.photometric)


SCHEDULES = ("constant", "cosine")


class QATError(EdgesharpError):
    """Quantization-aware fine-tuning could not run or diverged."""


def fine_tune_batch(images: list[tuple[str, np.ndarray]], batch_size: int, crop: int, multiple: int,
                    rng: np.random.Generator, photometric_share: float = 0.0) -> np.ndarray:
    """`batch_size` degraded RGB uint8 crops (N x side x side x 3): a random image, position, flip and
    training subset each; side is `crop` rounded down to `multiple`, capped by the smallest image. A share
    `photometric_share` of them is first made dimmer or flatter (a webcam in a dim room), where INT8's fixed
    activation ranges leave the fewest levels to the signal."""
    side = crop_side(images, crop, multiple, "fine-tuning", QATError)
    subsets = sorted(SUBSETS)
    out = np.empty((batch_size, side, side, 3), np.uint8)
    for i in range(batch_size):
        img = images[int(rng.integers(len(images)))][1]
        y, x = int(rng.integers(0, img.shape[0] - side + 1)), int(rng.integers(0, img.shape[1] - side + 1))
        window = img[y : y + side, x : x + side]
        if rng.random() < 0.5:
            window = window[:, ::-1]
        window = np.ascontiguousarray(window)
        if photometric_share and rng.random() < photometric_share:
            window, _ = photometric(window, rng)
        out[i], _ = degrade_subset(window, subsets[int(rng.integers(len(subsets)))], rng)
    return out


def _to_tensor(rgb_batch: np.ndarray, bgr: bool):
    import torch

    x = rgb_batch[..., ::-1] if bgr else rgb_batch
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().div_(255.0)


def quantize_aware(student, float_ir, calib: list[np.ndarray], images: list[tuple[str, np.ndarray]], val: list[Sample],
                   multiple: int, opts: QuantizeOptions, qat: QATOptions, bgr: bool = False):
    """INT8 ov.Model of the PyTorch `student` after quantization-aware fine-tuning, plus the guard's report.

    `float_ir` is the float OpenVINO model the bundle ships (the FP32 reference score); `student` must
    compute the same function in the same channel order (`bgr`: BGR in and out). `calib` are the
    calibration crops (RGB), `images` the sharp RGB images that fine-tuning crops are cut from.
    GuardError when the guard is not met, QATError when fine-tuning diverges."""
    from edgesharp.train.models.export_form import inference_form

    if qat.sensitivity is not None and qat.sensitivity not in {s.level for s in val}:
        raise QATError(f"--qat-sensitivity {qat.sensitivity!r}: no validation samples at that level "
                       f"(levels: {', '.join(sorted({s.level for s in val}))})")
    if qat.steps < 1 or not qat.lr > 0 or qat.range_lr < 0 or qat.batch_size < 1 or qat.schedule not in SCHEDULES:
        raise QATError(f"quantization-aware fine-tuning needs steps >= 1, lr > 0, range lr >= 0, batch >= 1 and a "
                       f"schedule in {', '.join(SCHEDULES)} (got {qat.steps}, {qat.lr:g}, {qat.range_lr:g}, "
                       f"{qat.batch_size}, {qat.schedule!r})")

    runner = float_runner(bgr)
    t0 = time.perf_counter()
    fp32 = score(runner(float_ir), val, multiple)
    reference = inference_form(student).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    subset = min(opts.subset_size, len(calib))
    attempt = {"method": "quantization_aware", "preset": opts.preset or "default", "subset_size": subset,
               "ignored_scope": list(opts.ignored_scope), "max_ssim_drop": opts.max_ssim_drop,
               "activation_range": opts.activation_range, "steps": qat.steps, "lr": qat.lr, "range_lr": qat.range_lr,
               "batch_size": qat.batch_size, "crop": qat.crop, "schedule": qat.schedule, "photometric": qat.photometric}
    model = quantized_student(reference, calib, opts, bgr)
    log.info("  quantization-aware: NNCF quantizers placed in %.0f s; fine-tuning %d steps of %d crops",
             time.perf_counter() - t0, qat.steps, qat.batch_size)
    limits = half_range_limits(model, multiple) if opts.overflow_fix != "disable" else []
    attempt["overflow_fix"] = opts.overflow_fix
    attempt["losses"] = fine_tune(model, reference, images, multiple, qat, bgr, limits)
    if qat.sensitivity:
        attempt["sensitivity"] = quantizer_sensitivity(model, val, multiple, qat.sensitivity, bgr)
    int8 = to_openvino(model, multiple)
    return int8, judge(int8, runner, fp32, val, multiple, opts, attempt, [], time.perf_counter() - t0)


def quantized_student(reference, calib: list[np.ndarray], opts: QuantizeOptions, bgr: bool = False):
    """A copy of the PyTorch `reference` with NNCF's quantizers, ranges set from the calibration crops (RGB)."""
    import nncf

    from edgesharp.train.models.nafnet import LayerNorm2d

    calib_ds = nncf.Dataset(calib, lambda rgb: _to_tensor(rgb[None], bgr))
    scope = list(opts.ignored_scope) + [f"re:{TOP_LEVEL_SUMS}"]
    if any(isinstance(m, LayerNorm2d) for m in reference.modules()):
        scope.append(f"re:{NORM_INTERNALS}")
    try:
        # validate=False: a student without top-level sums is fine (so a user's name that matches nothing is not an error here)
        return nncf.quantize(copy.deepcopy(reference), calib_ds, subset_size=min(opts.subset_size, len(calib)),
                             preset=nncf.QuantizationPreset(opts.preset) if opts.preset else None,
                             ignored_scope=ignored_scope(scope, validate=False),
                             advanced_parameters=advanced_parameters(opts.activation_range, opts.overflow_fix))
    except nncf.ValidationError as exc:
        raise settings_error(exc) from exc


def to_openvino(model, multiple: int):
    """The quantized PyTorch model as an ov.Model with dynamic height and width (FakeQuantize nodes: INT8 on CPU)."""
    import openvino as ov
    import torch

    model.eval()
    return ov.convert_model(model, example_input=torch.rand(1, 3, multiple * 4, multiple * 4), input=[(1, 3, -1, -1)])


def half_range_limits(model, multiple: int) -> list[tuple]:
    """(weight, quantizer) of each dense convolution whose NNCF weight quantizer spans twice its weights' range (the
    overflow fix): fine-tuning must keep such weights in the lower half of the levels, |integer| <= 64
    (`edgesharp.calibrate.overflow`), or the fix is undone by training. Found by feeding the model once: a weight quantizer's
    input is the weight parameter itself."""
    import torch
    from nncf.torch.quantization.layers import SymmetricQuantizer

    params = {p.data_ptr(): p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1}  # dense conv weights
    seen: dict[int, object] = {}

    def note(module, args) -> None:  # a pre-hook that returns something replaces the module's inputs
        if args and torch.is_tensor(args[0]):
            seen.setdefault(args[0].data_ptr(), module)

    handles = [m.register_forward_pre_hook(note) for m in model.modules() if isinstance(m, SymmetricQuantizer)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, multiple, multiple))
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for ptr, quantizer in seen.items():
        weight = params.get(ptr)
        if weight is None:
            continue
        level_high = float(quantizer.level_high)
        # the half range: the weights' calibrated |max| rounds to about level_high / 2
        if float((weight.detach().abs().amax(dim=(1, 2, 3)) / quantizer.scale.detach().flatten() * level_high).max()) <= 65.0:
            pairs.append((weight, quantizer))
    return pairs


def project_half_range(limits: list[tuple]) -> None:
    """Clamp each weight of `half_range_limits` to the scale at which it rounds to |integer| <= 64."""
    import torch

    from edgesharp.calibrate.overflow import SAFE_ABS_WEIGHT

    with torch.no_grad():
        for weight, quantizer in limits:
            bound = quantizer.scale.detach().abs().reshape(-1, 1, 1, 1) * ((SAFE_ABS_WEIGHT + 0.49) / float(quantizer.level_high))
            weight.copy_(torch.maximum(torch.minimum(weight, bound), -bound))


def fine_tune(model, reference, images, multiple: int, qat: QATOptions, bgr: bool, limits: list | None = None) -> dict:
    """Train the quantized `model`'s weights (and ranges with `range_lr`) toward `reference`; the mean loss of
    the first and the last `log_every` steps. `limits` (`half_range_limits`) are projected after every step."""
    import torch

    weights, ranges = [], []
    for name, p in model.named_parameters():
        if p.dtype.is_floating_point:  # NNCF also registers its bit widths and signs (int32) as parameters
            (ranges if "nncf" in name else weights).append(p)
    for p in weights:
        p.requires_grad_(True)
    for p in ranges:
        p.requires_grad_(qat.range_lr > 0)
    groups = [{"params": weights, "lr": qat.lr}] + ([{"params": ranges, "lr": qat.range_lr}] if qat.range_lr > 0 else [])
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: _lr_factor(qat.schedule, i, qat.steps))
    rng = np.random.default_rng(qat.seed)
    torch.manual_seed(qat.seed)
    model.train()
    window = max(1, min(qat.log_every, qat.steps))
    recent, first, t0 = [], None, time.perf_counter()
    for step in range(1, qat.steps + 1):
        x = _to_tensor(fine_tune_batch(images, qat.batch_size, qat.crop, multiple, rng, qat.photometric), bgr)
        with torch.no_grad():
            target = reference(x)
        loss = torch.nn.functional.l1_loss(model(x), target)
        if not torch.isfinite(loss):
            raise QATError(f"quantization-aware fine-tuning diverged at step {step} (loss {loss.item()}); "
                           f"lower --qat-lr (was {qat.lr:g}) or --qat-range-lr (was {qat.range_lr:g})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(weights, 1.0)
        opt.step()
        sched.step()
        if limits:
            project_half_range(limits)
        recent = (recent + [loss.item()])[-window:]
        if step == window:
            first = float(np.mean(recent))
        if step % qat.log_every == 0 or step == qat.steps:
            rate = step / (time.perf_counter() - t0)
            log.info("  quantization-aware: step %d/%d, L1 to FP32 %.5f, %.1f steps/s, %s left", step, qat.steps,
                     float(np.mean(recent)), rate, _duration((qat.steps - step) / rate))
    return {"first": first, "last": float(np.mean(recent))}


def _lr_factor(schedule: str, done: int, steps: int) -> float:
    """Multiplier of the learning rates for the step after `done` steps: training's cosine phase from 1 to 0,
    without warm-up, or 1."""
    if schedule != "cosine":
        return 1.0
    from edgesharp.train.config import PhaseConfig
    from edgesharp.train.schedule import lr_at

    return lr_at(PhaseConfig(steps=steps, lr=1.0, min_lr=0.0, warmup_steps=0), done)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
