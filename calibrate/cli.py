"""`edgesharp calibrate`: student checkpoint -> model bundle (ONNX, OpenVINO FP32/FP16/INT8, ONNX Runtime INT8).

Light at import time; torch, onnx, openvino and nncf are imported inside `main`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EPILOG = """\
steps:
  1 images   validation set (3 blur levels) and calibration crops (training subsets 1/3/5/7)
  2 export   PyTorch -> ONNX (opset 17, dynamic H/W), parity with PyTorch (max abs err <= 1e-4)
  3 convert  ONNX -> OpenVINO FP32 and FP16 IR taking and returning u8 BGR NHWC frames, parity with ONNX Runtime
  4 score    SSIM/PSNR per level of FP32 and FP16
  5 INT8     NNCF with accuracy control: refused (nothing written, exit 1) if mean SSIM drops more than --max-ssim-drop;
             with --qat-steps N, NNCF quantizers on the PyTorch student, N steps of fine-tuning toward its FP32
             output, then the same guard
  6 INT8     ONNX Runtime QDQ (static), same guard (skip with --skip-ort-int8)
  7 bundle   written to a staging folder, verified, then swapped into --out

examples:
  edgesharp calibrate runs/tiny/last.pt --out models/tiny
  edgesharp calibrate runs/tiny/last.pt --out models/tiny --val-images ../shared/data/kodak24 --max-ssim-drop 0.005
  edgesharp calibrate last.pt --out models/tiny --calib-images photos/ --subset-size 100 --preset mixed
  edgesharp calibrate last.pt --out models/tiny --no-accuracy-control --ignored-scope type:Multiply --skip-ort-int8
  edgesharp calibrate last.pt --out models/rt --qat-steps 1500 --guard worst-level --max-ssim-drop 0.003
"""


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW like 96x128, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("checkpoint", type=Path, help="student checkpoint (.pt) written by 'edgesharp train'")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaced only when the new bundle is complete)")
    parser.add_argument("--name", help="bundle name in the manifest (default: the architecture)")
    parser.add_argument("--val-images", type=Path, help="sharp images to validate on, blurred at the 3 levels (default: photographs shipped with scikit-image/scikit-learn)")
    parser.add_argument("--val-limit", type=_positive, help="use only the first N validation images")
    parser.add_argument("--val-crop", type=_positive, help="score the central NxN window of each validation image (default: whole image)")
    parser.add_argument("--calib-images", type=Path, help="sharp images for calibration, degraded by training subsets 1/3/5/7 (default: the packaged photographs)")
    parser.add_argument("--val-split", choices=("train", "val"),
                        help="score only this part of --val-images (the fixed split of edge.imaging.splits; 'val' for the recipe)")
    parser.add_argument("--calib-split", choices=("train", "val"),
                        help="calibrate and fine-tune on only this part of --calib-images ('train' for the recipe)")
    parser.add_argument("--downscale", type=float, default=1.0, metavar="F",
                        help="area-downscale every validation and calibration image by F first (photos softer than their "
                             "pixel grid, such as train_photos, are used at 2; default 1)")
    parser.add_argument("--overflow-fix", choices=("enable", "first_layer", "disable"), default="enable",
                        help="NNCF's overflow fix: 'enable' (default) gives dense convolutions 7-bit weights, which CPUs "
                             "without VNNI (AVX2 laptops) compute without 16-bit saturation")
    parser.add_argument("--calib-crop", type=_positive, default=256, help="side of the square calibration crops (default 256)")
    parser.add_argument("--max-ssim-drop", type=float, default=0.005, help="largest allowed mean SSIM loss of INT8 vs FP32, absolute (default 0.005)")
    parser.add_argument("--guard", choices=("mean", "worst-level"), default="mean",
                        help="what --max-ssim-drop bounds: the drop of the mean over all levels (default) or of the worst level")
    parser.add_argument("--subset-size", type=_positive, default=300, help="number of calibration crops (default 300)")
    parser.add_argument("--preset", choices=("performance", "mixed"), help="NNCF quantization preset (default: NNCF's)")
    parser.add_argument("--activation-range", choices=("mean_minmax", "minmax"), default="mean_minmax",
                        help="activation ranges from the calibration crops: NNCF's mean of per-crop min/max (default) "
                             "or the global min/max (keeps the large activations of heavy blur unclipped)")
    parser.add_argument("--ignored-scope", nargs="+", action="extend", default=[], metavar="NODE",
                        help="keep these nodes in float: names, 'type:Multiply', or 're:PATTERN'")
    parser.add_argument("--no-accuracy-control", dest="accuracy_control", action="store_false",
                        help="plain nncf.quantize (the drop is still measured and guarded)")
    parser.add_argument("--max-reverted", type=int, metavar="N",
                        help="accuracy control: revert at most N layers to float before giving up (default: all)")
    parser.add_argument("--qat-steps", type=_count, default=0, metavar="N",
                        help="quantization-aware INT8: fine-tune the quantized PyTorch student N steps toward its FP32 output "
                             "(crops of --calib-images) instead of post-training quantization (default 0: off)")
    parser.add_argument("--qat-lr", type=float, default=5e-5, help="learning rate of the weights in --qat-steps (default 5e-5)")
    parser.add_argument("--qat-range-lr", type=float, default=0.0,
                        help="learning rate of the quantizer ranges in --qat-steps (default 0: keep the calibrated ranges)")
    parser.add_argument("--qat-batch", type=_positive, default=8, help="crops per fine-tuning step (default 8)")
    parser.add_argument("--qat-crop", type=_positive, default=128, help="side of the fine-tuning crops (default 128)")
    parser.add_argument("--qat-schedule", choices=("constant", "cosine"), default="constant",
                        help="learning rate over --qat-steps: constant, or cosine decay to 0 (default constant)")
    parser.add_argument("--guard-classes", nargs="+", default=["all"], metavar="CLASS",
                        help="CPU kernel classes to guard (calibrate/classes.py): 'all' (default: every class this CPU "
                             "runs), 'none', or names such as avx2 avx512-vnni")
    parser.add_argument("--int8-optional", action="store_true",
                        help="a refused INT8 leaves a float-only bundle (the refusal recorded in its manifest) instead of "
                             "no bundle; --precision auto then runs the float model")
    parser.add_argument("--qat-photometric", type=float, default=0.0, metavar="SHARE",
                        help="share of fine-tuning crops made dimmer (exposure x0.3-1) or flatter (contrast x0.35-1) "
                             "first, so INT8 also holds on dim webcam frames (default 0)")
    parser.add_argument("--qat-sensitivity", choices=("heavy", "medium", "low"), metavar="LEVEL",
                        help="after --qat-steps, switch each quantizer off in turn and rank them by the SSIM they cost at "
                             "this blur level (calibration_report.json, 'sensitivity'; about 4 s per quantizer on the "
                             "packaged photographs, 2 cores): where to look for --ignored-scope")
    parser.add_argument("--skip-ort-int8", action="store_true", help="do not build the ONNX Runtime INT8 model")
    parser.add_argument("--slim", action="store_true",
                        help="leave the OpenVINO FP32 IR out (it is still scored); OpenVINO FP32 requests run the FP16 IR in f32")
    parser.add_argument("--sizes", type=_size, nargs=2, default=[(96, 128), (160, 224)], metavar="HxW",
                        help="the two input sizes of the parity checks (default 96x128 160x224)")
    parser.add_argument("--seed", type=int, default=0, help="seed for calibration crops and degradations")


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.extras import require

    for module in ("torch", "onnx", "onnxruntime", "nncf", "skimage"):
        require(module, "edgesharp calibrate", extra="train" if module == "torch" else "calibrate")
    if cap_below_amx():
        print(f"edgesharp calibrate: note: AMX CPU: oneDNN capped at {os.environ['ONEDNN_MAX_CPU_ISA']} while calibrating "
              "(OpenVINO 2026.4 crashes running dynamic-shape INT8 models with AMX; the bundle written is the same)")
    from edgesharp.calibrate.pipeline import CalibrateOptions, calibrate_checkpoint

    if args.max_ssim_drop < 0:
        print(f"edgesharp calibrate: note: --max-ssim-drop {args.max_ssim_drop:g} asks INT8 to beat FP32")
    opts = CalibrateOptions(
        val_images=args.val_images, calib_images=args.calib_images, val_split=args.val_split,
        calib_split=args.calib_split, downscale=args.downscale, overflow_fix=args.overflow_fix,
        val_limit=args.val_limit, val_crop=args.val_crop, calib_crop=args.calib_crop,
        max_ssim_drop=args.max_ssim_drop, subset_size=args.subset_size, preset=args.preset,
        ignored_scope=list(args.ignored_scope), accuracy_control=args.accuracy_control, max_reverted=args.max_reverted,
        skip_ort_int8=args.skip_ort_int8, slim=args.slim, sizes=list(args.sizes), name=args.name, seed=args.seed,
        guard=args.guard, activation_range=args.activation_range, qat_steps=args.qat_steps, qat_lr=args.qat_lr,
        qat_range_lr=args.qat_range_lr, qat_batch=args.qat_batch, qat_crop=args.qat_crop,
        qat_schedule=args.qat_schedule, qat_sensitivity=args.qat_sensitivity, qat_photometric=args.qat_photometric,
        int8_optional=args.int8_optional, guard_classes=_guard_classes(args.guard_classes),
    )
    result = calibrate_checkpoint(args.checkpoint, args.out, opts)
    print(summary_table(result.report))
    if result.failure:
        print(f"edgesharp calibrate: INT8 refused: {result.failure}")
        print(f"edgesharp calibrate: no bundle written; {args.out} left as it was")
        return 1
    if "int8_refused" in result.report:
        print(f"edgesharp calibrate: {result.report['int8_refused']['why'].splitlines()[0][:300]}; the bundle is float-only "
              "(--int8-optional)")
    print(f"bundle: {result.bundle}")
    return 0


def _guard_classes(names: list[str]) -> list[str] | None:
    from edgesharp.edge.backends.cpu_classes import BY_NAME
    from edgesharp.edge.errors import EdgesharpError

    if names == ["all"]:
        return None
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise EdgesharpError(f"--guard-classes: unknown class {', '.join(unknown)}; choose all, none or from "
                             f"{', '.join(BY_NAME)}")
    return names


def cap_below_amx() -> bool:
    """On an AMX CPU with no cap set, cap oneDNN at `AMX_SAFE_CAP` for this process (before OpenVINO compiles
    anything); True when it did."""
    from edgesharp.edge.backends.openvino_core import AMX_SAFE_CAP, ISA_CAP_VARIABLE, cpu_has_amx, isa_cap

    if isa_cap() is not None or not cpu_has_amx():
        return False
    os.environ[ISA_CAP_VARIABLE] = AMX_SAFE_CAP
    return True


def summary_table(report: dict) -> str:
    """Precision x level SSIM (PSNR) table, then file sizes: the closing lines of a calibrate run."""
    scores = dict(report.get("scores", {}))
    if "refused" in report:
        scores["int8 (refused)"] = report["refused"]["int8"]
    if not scores:
        return "no scores (calibration stopped early)"
    levels = list(next(iter(scores.values()))["levels"])
    lines = [f"{'':18}" + "".join(f"{lv:>18}" for lv in levels) + f"{'mean SSIM':>12}"]
    for key, s in scores.items():
        cells = "".join(f"{s['levels'][lv]['ssim']:>9.4f} {_db(s['levels'][lv]['psnr']):>8}" for lv in levels)
        lines.append(f"{key:18}{cells}{s['mean_ssim']:>12.4f}")
    for key in ("openvino_int8", "onnxruntime_int8", "refused"):
        if key in report:
            r = report[key]
            lines.append(f"{key}: SSIM drop {r['ssim_drop']:.5f} (limit {r['max_ssim_drop']:g}), {r['seconds']:.1f} s")
    if report.get("file_bytes"):
        lines.append("files: " + ", ".join(f"{n} {b / 1024:.0f} KiB" for n, b in report["file_bytes"].items()))
    return "\n".join(lines)


def _db(value) -> str:
    return "inf dB" if value is None else f"{value:.2f}dB"
