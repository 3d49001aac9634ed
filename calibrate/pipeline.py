"""The calibrate pipeline, in numbered steps: export, convert, score, INT8 (OpenVINO, ONNX Runtime), bundle.

`calibrate_checkpoint(path, out, options)` loads a student checkpoint (train.checkpoint) and calls
`calibrate_model`, which works for any module following the student contract (float32 NCHW RGB in
[0, 1] -> same; `.size_multiple`, `.arch`, `.arch_config`). The bundle's model.onnx keeps that RGB
contract; the OpenVINO IRs are built from a BGR-native copy where the architecture allows
(`edgesharp.train.models.export_form.bgr_native`), and every check and score compares them in RGB.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgesharp.calibrate import bundle_writer, convert, data, evaluate, export, ort_int8, qat, quantize
from edgesharp.calibrate.runners import ort_runner
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.degrade import LEVELS

log = logging.getLogger(__name__)

FAILED_REPORT_SUFFIX = ".calibration-failed.json"


@dataclass
class CalibrateOptions:
    val_images: Path | None = None
    calib_images: Path | None = None
    val_split: str | None = None  # 'val'/'train': only that part of val_images (edge.imaging.splits)
    calib_split: str | None = None  # likewise for calib_images
    downscale: float = 1.0  # area-downscale every validation and calibration image by this factor
    val_limit: int | None = None
    val_crop: int | None = None
    calib_crop: int = 256
    max_ssim_drop: float = 0.005
    subset_size: int = 300
    preset: str | None = None
    ignored_scope: list[str] = field(default_factory=list)
    accuracy_control: bool = True
    max_reverted: int | None = None
    skip_ort_int8: bool = False
    # leave the OpenVINO FP32 IR out of the bundle (FP32 requests then run the FP16 IR in f32); it is still scored
    slim: bool = False
    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(96, 128), (160, 224)])
    name: str | None = None
    seed: int = 0
    guard: str = "mean"  # quantize.GUARDS: what max_ssim_drop bounds
    activation_range: str = "mean_minmax"  # quantize.ACTIVATION_RANGES
    overflow_fix: str = "enable"  # quantize.OVERFLOW_FIXES
    # quantization-aware fine-tuning (calibrate.qat) instead of post-training INT8 when qat_steps > 0
    qat_steps: int = 0
    qat_lr: float = 5e-5
    qat_range_lr: float = 0.0
    qat_batch: int = 8
    qat_crop: int = 128
    qat_schedule: str = "constant"
    qat_photometric: float = 0.0  # share of fine-tuning crops made dimmer or flatter first (calibrate.qat)
    qat_sensitivity: str | None = None  # a blur level: rank the quantizers after fine-tuning (calibrate.sensitivity)
    # CPU kernel classes to guard (calibrate.classes): None = every class this CPU can run, [] = none
    guard_classes: list[str] | None = None
    below_input_tolerance: float = 0.0005  # calibrate.classes.BELOW_INPUT_TOLERANCE
    class_timing_s: float = 1.5  # seconds per timed round of each precision per class (0: no timing)
    # a refused INT8 leaves the bundle float-only (recorded in the manifest) instead of writing no bundle
    int8_optional: bool = False


@dataclass
class CalibrationResult:
    bundle: Path | None
    report: dict
    failure: str | None = None


class _Steps:
    """Numbered, timed steps in the log; timings go into the report."""

    def __init__(self, total: int):
        self.total, self.n, self.timings = total, 0, {}

    def run(self, title: str, fn, *args, **kwargs):
        self.n += 1
        log.info("[%d/%d] %s", self.n, self.total, title)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[title] = round(time.perf_counter() - t0, 3)
            log.info("[%d/%d] %s: %.1f s", self.n, self.total, title, self.timings[title])


def _parity_inputs(samples: list[data.Sample], sizes: list[tuple[int, int]], multiple: int, seed: int) -> dict[str, np.ndarray]:
    """Random and real (a blurred validation image) float inputs at each size, rounded up to the multiple."""
    rng = np.random.default_rng(seed)
    real = samples[0].blurred
    inputs = {}
    for h, w in sizes:
        h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
        inputs[f"random {h}x{w}"] = rng.random((1, 3, h, w), dtype=np.float32)
        window = data.pad_to_multiple(real[:h, :w], multiple)
        if window.shape[:2] != (h, w):
            window = np.pad(window, ((0, h - window.shape[0]), (0, w - window.shape[1]), (0, 0)), mode="symmetric")
        inputs[f"real {h}x{w}"] = data.to_model_input(window)
    return inputs


def _u8_frames(samples: list[data.Sample], sizes: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """BGR frames for the u8 check: a real image at the first size, and one of odd size (pad and crop)."""
    real_bgr = np.ascontiguousarray(samples[0].blurred[..., ::-1])
    h, w = min(real_bgr.shape[0], sizes[0][0]), min(real_bgr.shape[1], sizes[0][1])
    odd_h, odd_w = h - (h % 2 == 0), w - (w % 2 == 0)
    return {"real": real_bgr[:h, :w], "odd": np.ascontiguousarray(real_bgr[:odd_h, :odd_w])}


def _levels(score: dict) -> dict:
    return {lv: {"ssim": v["ssim"], "psnr": v["psnr"]} for lv, v in score["levels"].items()}


def _sizes_of(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def _write_failed_report(out: Path, report: dict) -> Path:
    path = out.parent / f"{out.name}{FAILED_REPORT_SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle_writer.dump_json(path, report)
    return path


def calibrate_model(model, info: dict, out: str | Path, opts: CalibrateOptions) -> CalibrationResult:
    """Run every step for `model` and write the bundle to `out`; a refused INT8 returns a failure, writes no bundle."""
    if opts.qat_sensitivity and opts.qat_steps < 1:
        raise EdgesharpError("--qat-sensitivity ranks the quantizers of quantization-aware fine-tuning; add --qat-steps N")
    out = Path(out)
    multiple = int(model.size_multiple)
    arch = str(getattr(model, "arch", info.get("arch", type(model).__name__)))
    steps = _Steps((6 if opts.skip_ort_int8 else 7) + (opts.guard_classes != []))
    report: dict = {"arch": arch, "size_multiple": multiple, "options": _jsonable(asdict(opts)), "timings": steps.timings}

    def load_images():
        val_src = (data.folder_images(opts.val_images, opts.val_limit, opts.val_split, opts.downscale) if opts.val_images
                   else data.packaged_images()[: opts.val_limit])
        cal_src = (data.folder_images(opts.calib_images, None, opts.calib_split, opts.downscale) if opts.calib_images
                   else data.packaged_images())
        val = data.validation_samples(val_src, opts.val_crop)
        calib = data.calibration_inputs(cal_src, opts.calib_crop, opts.subset_size, opts.seed, multiple)
        log.info("  validation: %d images x %d levels from %s; calibration: %d crops of %dx%d from %s",
                 len(val_src), len(LEVELS), opts.val_images or "packaged photographs", len(calib),
                 calib[0].shape[1], calib[0].shape[0], opts.calib_images or "packaged photographs")
        # full-size validation images for the class guard's large frames
        large = (data.folder_images(opts.val_images, opts.val_limit, opts.val_split, 1.0)
                 if opts.val_images and opts.downscale != 1 else val_src)
        return val, calib, cal_src, (val_src, large)

    from edgesharp.train.models.export_form import bgr_native

    with tempfile.TemporaryDirectory(prefix="edgesharp-calibrate-") as scratch_dir, bundle_writer.BundleStaging(out) as stage:
        scratch = Path(scratch_dir)
        val, calib, cal_src, guard_images = steps.run("images: validation set and calibration crops", load_images)
        report["data"] = {"validation_images": len(val) // len(LEVELS), "calibration_crops": len(calib),
                          "calibration_crop": list(calib[0].shape[:2]),
                          "validation_source": str(opts.val_images or "packaged"), "calibration_source": str(opts.calib_images or "packaged")}
        parity_in = _parity_inputs(val, opts.sizes, multiple, opts.seed)
        onnx_path = stage.path / "model.onnx"

        bgr_model = bgr_native(model)
        ir_onnx_path = scratch / "model-bgr.onnx" if bgr_model is not None else onnx_path

        def do_export():
            export.export_onnx(model, onnx_path)
            if bgr_model is not None:  # the IR's source: the same weights taking OpenCV's channel order
                export.export_onnx(bgr_model, ir_onnx_path)
            return export.onnx_parity(model, onnx_path, parity_in)

        report["onnx_parity"] = steps.run("export: PyTorch -> ONNX, parity with PyTorch", do_export)
        ort_fp32 = ort_runner(onnx_path)
        facts = {"arch": arch, "size_multiple": multiple, "arch_config": info.get("arch_config") or getattr(model, "arch_config", {}),
                 "float_channels": "bgr" if bgr_model is not None else "rgb"}
        report["ir_float_channels"] = facts["float_channels"]

        def do_convert():
            float_model = convert.convert_onnx(ir_onnx_path)
            parity = convert.ir_parity(float_model, ort_fp32, parity_in, bgr_native=bgr_model is not None)
            u8 = convert.add_u8_bgr_io(float_model, bgr_native=bgr_model is not None)
            convert.set_model_facts(u8, facts)
            u8_check = convert.u8_io_check(u8, ort_fp32, _u8_frames(val, opts.sizes), multiple)
            convert.save_ir(u8, stage.path / "fp32.xml", fp16=False)
            convert.save_ir(u8, stage.path / "fp16.xml", fp16=True)
            return float_model, {"parity": parity, "u8_io": u8_check}

        float_model, report["openvino_checks"] = steps.run("convert: ONNX -> OpenVINO FP32/FP16 IR with u8 BGR I/O", do_convert)

        def do_score():
            scores = {"input": evaluate.baseline(val)}
            for precision in ("fp32", "fp16"):
                scores[precision] = evaluate.score_images(evaluate.u8_ir_image_fn(stage.path / f"{precision}.xml", multiple), val)
            scores["onnxruntime_fp32"] = evaluate.score(ort_fp32, val, multiple)
            for key, s in scores.items():
                log.info("  %-17s %s", key, "  ".join(f"{lv} {v['ssim']:.4f}" for lv, v in s["levels"].items()))
            return scores

        scores = steps.run("score: FP32 and FP16 on the validation set", do_score)
        report["scores"] = scores
        qopts = quantize.QuantizeOptions(opts.max_ssim_drop, opts.subset_size, opts.preset, list(opts.ignored_scope), opts.accuracy_control,
                                        opts.max_reverted, opts.guard, opts.activation_range, opts.overflow_fix)
        try:
            if opts.qat_steps > 0:
                qat_opts = qat.QATOptions(opts.qat_steps, opts.qat_lr, opts.qat_range_lr, opts.qat_batch, opts.qat_crop,
                                          opts.seed, schedule=opts.qat_schedule, sensitivity=opts.qat_sensitivity,
                                          photometric=opts.qat_photometric)
                int8_model, report["openvino_int8"] = steps.run(
                    "quantize: OpenVINO INT8 with NNCF (quantization-aware fine-tuning)", qat.quantize_aware,
                    bgr_model if bgr_model is not None else model, float_model, calib, cal_src, val, multiple, qopts, qat_opts,
                    bgr=bgr_model is not None)
            else:
                int8_model, report["openvino_int8"] = steps.run(
                    f"quantize: OpenVINO INT8 with NNCF ({'accuracy control' if opts.accuracy_control else 'plain'})",
                    quantize.quantize_openvino, float_model, calib, val, multiple, qopts, bgr=bgr_model is not None)
            int8_u8 = convert.add_u8_bgr_io(int8_model, bgr_native=bgr_model is not None)
            convert.set_model_facts(int8_u8, {**facts, "precision": "int8"})
            convert.save_ir(int8_u8, stage.path / "int8.xml")
            scores["int8"] = evaluate.score_images(evaluate.u8_ir_image_fn(stage.path / "int8.xml", multiple), val)
            if not opts.skip_ort_int8:
                report["onnxruntime_int8"] = steps.run(
                    "quantize: ONNX Runtime INT8 (QDQ)", ort_int8.quantize_onnx, onnx_path, stage.path / "int8.onnx",
                    calib, val, multiple, opts.max_ssim_drop, opts.subset_size, scores["onnxruntime_fp32"])
                scores["onnxruntime_int8"] = report["onnxruntime_int8"]["int8"]
        except quantize.GuardError as exc:
            if not opts.int8_optional:
                report.update(failure=str(exc), refused=exc.report)
                path = _write_failed_report(out, report)
                log.error("%s; nothing written to %s, report in %s", exc, out, path)
                return CalibrationResult(None, report, f"{exc} (report: {path})")
            _drop_int8(stage.path, report, str(exc), exc.report)

        manifest_extra: dict = {}
        if opts.guard_classes != []:
            manifest_extra, refusal = steps.run("guard: every precision under every CPU kernel class this machine runs",
                                                _guard_classes, stage.path, opts, multiple, guard_images,
                                                (stage.path / "int8.xml").is_file())
            report["kernel_classes"] = manifest_extra["kernel_classes"]
            if refusal and not opts.int8_optional:
                report.update(failure=refusal, refused={**report["openvino_int8"], "kernel_classes": manifest_extra["kernel_classes"]})
                path = _write_failed_report(out, report)
                log.error("%s; nothing written to %s, report in %s", refusal, out, path)
                return CalibrationResult(None, report, f"{refusal} (report: {path})")
            if refusal:
                _drop_int8(stage.path, report, refusal, report.pop("openvino_int8", None))

        def do_write():
            if opts.slim:
                for name in ("fp32.xml", "fp32.bin"):
                    (stage.path / name).unlink()
            report["file_bytes"] = _sizes_of(stage.path)
            manifest = _manifest(info, arch, multiple, facts["arch_config"], scores, report, opts)
            manifest.update(_complexity(model))
            manifest.update(manifest_extra)
            return stage.commit(manifest, report)

        steps.run("bundle: hash, verify and swap into place", do_write)
    return CalibrationResult(out, report)


def _drop_int8(folder: Path, report: dict, why: str, detail) -> None:
    """--int8-optional: the refused INT8 leaves the staged bundle, the report says why."""
    log.warning("%s; the bundle is written without INT8 (--int8-optional)", why)
    for name in ("int8.xml", "int8.bin", "int8.onnx"):
        (folder / name).unlink(missing_ok=True)
    report["int8_refused"] = {"why": why, "report": detail}
    report.get("scores", {}).pop("int8", None)
    report.get("scores", {}).pop("onnxruntime_int8", None)
    report.pop("onnxruntime_int8", None)


def _guard_classes(folder: Path, opts: CalibrateOptions, multiple: int, guard_images, has_int8: bool) -> tuple[dict, str | None]:
    """Score the staged IRs under each CPU kernel class (calibrate.classes) and write the self-check frame.
    Returns the manifest's `kernel_classes` and `self_check` entries, and why INT8 is refused (None: it is not)."""
    from edgesharp.calibrate import classes

    val_src, large = guard_images
    provisional = {"size_multiple": multiple, "precisions": _precisions(opts, has_int8)}
    samples = classes.guard_samples(val_src, large)
    reference, inputs = classes.reference_scores(folder, provisional, samples)
    spec = classes.write_self_check(folder, provisional, samples)
    result = classes.check_classes(folder, provisional, samples, reference, inputs, opts.max_ssim_drop,
                                   opts.below_input_tolerance, opts.guard_classes, spec, opts.class_timing_s)
    failed = classes.failed_classes(result, "int8")
    refusal = None
    if failed:
        why = "; ".join(f"{n}: {', '.join(result['classes'][n]['precisions']['int8']['failures'])}" for n in failed)
        refusal = f"OpenVINO INT8 refused on CPU class {', '.join(failed)} ({why})"
    return {"kernel_classes": result, "self_check": {**spec, "tolerance": classes.self_check_tolerance(result)}}, refusal


def _precisions(opts: CalibrateOptions, int8: bool = True) -> dict:
    out = {"fp32": {"onnxruntime": "model.onnx"} if opts.slim else {"openvino": "fp32.xml", "onnxruntime": "model.onnx"},
           "fp16": {"openvino": "fp16.xml"}}
    if int8:
        out["int8"] = {"openvino": "int8.xml"}
    return out


def _manifest(info: dict, arch: str, multiple: int, arch_config: dict, scores: dict, report: dict, opts: CalibrateOptions) -> dict:
    has_int8 = "int8" in scores
    precisions = _precisions(opts, has_int8)
    drop = {"openvino": _drops(report["openvino_int8"])} if has_int8 else {}
    ort_metrics = {"fp32": _levels(scores["onnxruntime_fp32"])}
    if "onnxruntime_int8" in report:
        precisions["int8"]["onnxruntime"] = "int8.onnx"
        drop["onnxruntime"] = _drops(report["onnxruntime_int8"])
        ort_metrics["int8"] = _levels(scores["onnxruntime_int8"])
    config = info.get("config") or {}
    recipe = {"checkpoint": info.get("path"), "weights": info.get("weights"), "step": info.get("step"), "phase": info.get("phase"),
              "training_metrics": info.get("metrics") or {}, **{k: config[k] for k in sorted(config) if not isinstance(config[k], dict)}}
    for k in sorted(config):
        if isinstance(config[k], dict):
            recipe[k] = config[k]
    return {
        "name": opts.name or arch, "arch": arch, "arch_config": arch_config, "size_multiple": multiple,
        "precisions": precisions,
        "metrics": {p: _levels(scores[p]) for p in ("fp32", "fp16", "int8") if p in scores},
        "metrics_onnxruntime": ort_metrics,
        "baseline": _levels(scores["input"]),
        "int8_ssim_drop": drop, "max_ssim_drop": opts.max_ssim_drop, "ssim_guard": opts.guard,
        **({"int8_refused": report["int8_refused"]["why"]} if "int8_refused" in report else {}),
        "validation": report["data"],
        "recipe": _jsonable(recipe),
    }


def _drops(engine_report: dict) -> dict:
    """FP32 - INT8 SSIM on the validation set: "mean" over every image, one entry per level, and "guarded", the
    figure the guard compared with max_ssim_drop (the worst level's drop under --guard worst-level, else the mean)."""
    mean = engine_report["fp32"]["mean_ssim"] - engine_report["int8"]["mean_ssim"]
    return {"mean": float(mean), **engine_report["ssim_drop_per_level"], "guarded": float(engine_report["ssim_drop"])}


def _complexity(model) -> dict:
    """Parameters and MACs per pixel, so the runtime and benchmarks know the cost without torch."""
    from edgesharp.train.models.complexity import count_params, macs_per_pixel

    return {"params": int(count_params(model)), "macs_per_pixel": float(macs_per_pixel(model))}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def calibrate_checkpoint(checkpoint: str | Path, out: str | Path, opts: CalibrateOptions) -> CalibrationResult:
    from edgesharp.train.checkpoint import load_student

    model, info = load_student(checkpoint)
    log.info("student %s (%s weights, step %s) from %s", info["arch"], info["weights"], info["step"], checkpoint)
    return calibrate_model(model, info, out, opts)


__all__ = ["CalibrateOptions", "CalibrationResult", "EdgesharpError", "calibrate_checkpoint", "calibrate_model"]
