"""`edgesharp bench fps | quality | all | temporal | governor`: run the suites, write results.json, report.md and charts to --out."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgesharp.benchmarks.machine import ISA_CAPS
from edgesharp.benchmarks.readme_tables import RESULTS_ROOT

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  edgesharp bench all --quick --out out/bench-quick
  edgesharp bench fps --model edge/models/default --sizes 640x480,1280x720 --checkpoint runs/student.pt
  edgesharp bench quality --images ../shared/data/kodak24 --pairs ../shared/data/gopro_pairs
  edgesharp bench all --model bundles/a --model bundles/b --store --compare benchmarks/results/amd-epyc-2c/results.json
  edgesharp bench temporal --out out/temporal-default
  edgesharp bench temporal --model bundles/a --videos clip.mp4 --frames 30 --precisions fp32,int8
  edgesharp bench governor --seconds 30 --out out/governor     # governed vs un-governed with a CPU hog on one core
"""


def _csv(kind):
    def parse(text: str) -> list:
        return [kind(v.strip()) for v in text.split(",") if v.strip()]

    return parse


def _add_common(p: argparse.ArgumentParser, backends: tuple[str, ...] = ("openvino", "onnxruntime", "pytorch"),
                precisions: tuple[str, ...] = ("fp32", "fp16", "int8")) -> None:
    p.add_argument("--model", action="append", type=Path, default=[], metavar="BUNDLE",
                   help="model bundle folder (repeatable; default: the shipped default bundle)")
    p.add_argument("--out", type=Path, default=Path("out/bench"), help="report folder (default out/bench)")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test in well under a minute per model")
    p.add_argument("--compare", type=Path, metavar="OLD.json", help="print ratios against an earlier results.json")
    p.add_argument("--store", action="store_true",
                   help=f"also copy the report to {RESULTS_ROOT.name}/<machine>/ in the source tree (the README tables' source)")
    p.add_argument("--store-as", metavar="NAME",
                   help=f"like --store, into {RESULTS_ROOT.name}/NAME/ (e.g. <machine>-quality, beside the machine's speed run)")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--backends", type=_csv(str), default=list(backends),
                   help=f"comma list of {','.join(backends)} (default {','.join(backends)})"
                        if len(backends) > 1 else "comma list of openvino,onnxruntime (default openvino)")
    p.add_argument("--isa-cap", choices=tuple(ISA_CAPS),
                   help="run OpenVINO and PyTorch as on a CPU of this kernel class (caps oneDNN and PyTorch's kernels; "
                        "not ONNX Runtime); the runtime's --precision auto follows the cap")
    p.add_argument("--precisions", type=_csv(str), default=list(precisions),
                   help=f"comma list of auto,fp32,fp16,int8 (default {','.join(precisions)}; auto: what the runtime "
                        "picks here)")


def _add_fps(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speed")
    g.add_argument("--sizes", type=_csv(str), default=["640x480", "1280x720"], help="comma list of WxH")
    g.add_argument("--modes", type=_csv(str), default=["sync", "async"], help="sync,async (default both)")
    g.add_argument("--requests", type=int, help="async requests in flight (default: OpenVINO's optimal number; ORT 2)")
    g.add_argument("--threads", type=int, help="inference threads (default: the runtime's choice)")
    g.add_argument("--repeats", type=int, default=3, help="timed windows per measurement (default 3)")
    g.add_argument("--duration", type=float, default=2.0, help="seconds per timed window (default 2)")
    g.add_argument("--warmup", type=int, default=3, help="untimed inferences first (default 3)")
    g.add_argument("--checkpoint", action="append", type=Path, default=[],
                   help="student checkpoint for the PyTorch eager rows (repeatable; needs edgesharp[train])")
    g.add_argument("--no-e2e", action="store_true", help="model-only timing, no pipeline runs")
    g.add_argument("--e2e-seconds", type=float, default=6.0, help="length of each end-to-end run (default 6)")
    g.add_argument("--source", default="camera",
                   help="end-to-end source: 'camera' (synthetic frames paced like a webcam) or a video file")
    g.add_argument("--camera-fps", type=float, default=30.0, help="pace of the camera-like source (default 30)")
    g.add_argument("--target-fps", type=float, default=15.0, help="real-time target (default 15)")
    g.add_argument("--target-size", default="640x480", help="size the verdict is given at (default 640x480)")
    g.add_argument("--no-search", action="store_true", help="skip the search for the largest size at 15/20 FPS")
    g.add_argument("--crosscheck", action="store_true",
                   help="also time each bundle's OpenVINO FP32 IR with OpenVINO's benchmark_app at --target-size")


def _add_quality(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quality")
    g.add_argument("--images", type=Path, help="folder of sharp images (default: photographs shipped by scikit-image/scikit-learn)")
    g.add_argument("--pairs", type=Path, help="folder of real *_blur/*_sharp pairs (e.g. ../shared/data/gopro_pairs)")
    g.add_argument("--quality-models", type=_csv(str), metavar="BUNDLES",
                   help="comma list of bundles to score, or 'none' for baselines only (default: the --model bundles)")
    g.add_argument("--teacher", type=Path, help="teacher checkpoint (edgesharp or spandrel-loadable; needs edgesharp[train])")
    g.add_argument("--levels", type=_csv(str), default=["heavy", "medium", "low"], help="comma list of blur levels")
    g.add_argument("--limit", type=int, help="use only the first N images")
    g.add_argument("--max-side", type=int, help="centre-crop images to at most N x N pixels")
    g.add_argument("--seed", type=int, default=0, help="degradation seed (default 0)")
    g.add_argument("--exposure", type=float, default=1.0,
                   help="multiply the sharp images' 8-bit values by this before blurring (0.5: a dim room; default 1)")
    g.add_argument("--split", choices=("train", "val"),
                   help="score only this part of --images (edge/imaging/splits.py; the validation split of train_photos: val)")
    g.add_argument("--downscale", type=float, default=1.0,
                   help="area-downscale each image by this first (train_photos are used at 2; default 1)")
    g.add_argument("--no-sheet", action="store_true", help="skip the comparison sheet PNG")


def _add_temporal(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("temporal")
    g.add_argument("--videos", type=Path, nargs="+", metavar="VIDEO_OR_DIR",
                   help="video files or folders of videos (default: shared/data/video beside the checkout, where it "
                        "exists; $EDGESHARP_SHARED_DATA/video when set)")
    g.add_argument("--frames", type=int, default=60, help="frames per clip (default 60; --quick: 8)")
    g.add_argument("--size", help="resize every clip to WxH (default: videos as they are, synthetic scenes 640x480)")
    g.add_argument("--image", type=Path, help="photograph of the synthetic scenes (default: the first package photograph)")
    g.add_argument("--static-threshold", type=float, default=4.0,
                   help="static pixels: grey input change below this many 8-bit levels, averaged over 15x15 (default 4)")
    g.add_argument("--pan-step", type=int, default=1, help="pixels the synthetic pan moves per frame (default 1)")
    g.add_argument("--seed", type=int, default=0, help="sensor noise seed of the synthetic scenes (default 0)")
    g.add_argument("--bound", type=float, default=10.0, help="added flicker allowed per clip, in %% (default 10)")
    g.add_argument("--no-baseline", action="store_true", help="skip the unsharp mask rows")


def _add_governor(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("governor")
    g.add_argument("--size", default="640x480", help="camera-like source size WxH (default 640x480)")
    g.add_argument("--camera-fps", type=float, default=30.0, help="pace of the camera-like source (default 30)")
    g.add_argument("--target-fps", type=float, help="rate the governor holds (default: --camera-fps)")
    g.add_argument("--seconds", type=float, default=30.0, help="length of each of the two runs (default 30; --quick: 3)")
    g.add_argument("--no-hog", action="store_true", help="run without the CPU hog")


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    sub = parser.add_subparsers(dest="bench_command", metavar="SUITE", required=True)
    for name, help_text, adders in (
        ("fps", "model-only and end-to-end speed per backend, precision, size and mode", (_add_fps,)),
        ("quality", "SSIM/PSNR of baselines, students and a teacher at each blur level", (_add_quality,)),
        ("all", "both suites into one report", (_add_fps, _add_quality)),
        ("temporal", "the flicker a model adds to video: static regions and flow-compensated warping error",
         (_add_temporal,)),
        ("governor", "the governed and the un-governed pipeline while a CPU hog started here takes one core",
         (_add_governor,)),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        # temporal, governor: the runtime's own choice, as a user runs it
        _add_common(p, *((("openvino",), ("auto",)) if name in ("temporal", "governor") else ()))
        for add in adders:
            add(p)


def _models(args) -> list[Path]:
    if args.model:
        return list(args.model)
    from edgesharp.edge.bundle import default_bundle_path

    default = default_bundle_path()
    return [default] if (default / "manifest.json").is_file() else []


def fps_config(args, models: list[Path]):
    from edgesharp.benchmarks.fps import FpsConfig
    from edgesharp.benchmarks.timing import Schedule, check_size
    from edgesharp.edge.errors import EdgesharpError

    for value, allowed, what in ((args.backends, ("openvino", "onnxruntime", "pytorch"), "--backends"),
                                 (args.precisions, ("auto", "fp32", "fp16", "int8"), "--precisions"),
                                 (args.modes, ("sync", "async"), "--modes")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise EdgesharpError(f"{what}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    if getattr(args, "isa_cap", None) and "onnxruntime" in args.backends:
        raise EdgesharpError(f"--isa-cap {args.isa_cap} caps OpenVINO's and PyTorch's kernels only; ONNX Runtime would "
                             "run with the machine's full instruction set: pass --backends openvino or openvino,pytorch")
    if args.requests is not None and args.requests < 1:
        raise EdgesharpError(f"--requests must be >= 1, got {args.requests}")
    if args.source != "camera" and not Path(args.source).is_file():
        raise EdgesharpError(f"--source {args.source}: not 'camera' and not a video file")
    cfg = FpsConfig(
        models=models, backends=args.backends, precisions=args.precisions,
        sizes=[check_size(s) for s in args.sizes], modes=args.modes, requests=args.requests,
        schedule=Schedule(args.warmup, args.repeats, args.duration), checkpoints=args.checkpoint,
        e2e=not args.no_e2e, e2e_seconds=args.e2e_seconds, e2e_source=args.source, camera_fps=args.camera_fps,
        target_fps=args.target_fps, target_size=check_size(args.target_size), search=not args.no_search,
        threads=args.threads,
    )
    if args.quick:
        cfg.sizes = [(128, 96)]
        cfg.target_size = (128, 96)
        cfg.schedule = Schedule(warmup=1, repeats=2, duration=0.25, min_iters=2)
        cfg.e2e_seconds = 1.0
        cfg.search_seconds = 0.6
        cfg.search_targets = (cfg.target_fps, 20.0) if cfg.target_fps != 20.0 else (20.0,)
    return cfg


def quality_config(args, models: list[Path], out: Path):
    from edgesharp.benchmarks.quality import QualityConfig

    if args.quality_models is not None:
        models = [] if args.quality_models == ["none"] else [Path(m) for m in args.quality_models]
    cfg = QualityConfig(
        models=models, images=args.images, pairs=args.pairs, teacher=args.teacher, levels=args.levels,
        backends=[b for b in args.backends if b != "pytorch"], precisions=args.precisions, limit=args.limit,
        max_side=args.max_side, seed=args.seed, exposure=args.exposure, split=args.split, downscale=args.downscale,
        sheet=None if args.no_sheet else out / "comparison_sheet.png",
    )
    if args.quick:
        cfg.limit = min(cfg.limit or 2, 2)
        cfg.max_side = min(cfg.max_side or 96, 96)
    return cfg


def temporal_config(args, models: list[Path]):
    from edgesharp.benchmarks.temporal import TemporalConfig
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.sources import parse_size

    if args.frames < 2:
        raise EdgesharpError(f"--frames {args.frames}: a clip needs at least 2 frames")
    for value, allowed, what in ((args.backends, ("openvino", "onnxruntime"), "--backends"),
                                 (args.precisions, ("auto", "fp32", "fp16", "int8"), "--precisions")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise EdgesharpError(f"{what}: {', '.join(bad)} not for the temporal suite; choose from {', '.join(allowed)}")
    if not args.static_threshold > 0:
        raise EdgesharpError(f"--static-threshold {args.static_threshold}: must be above 0")
    if args.image is not None and not args.image.is_file():
        raise EdgesharpError(f"--image {args.image}: no such file")
    cfg = TemporalConfig(models=models, backends=args.backends, precisions=args.precisions, videos=args.videos,
                         frames=args.frames, size=parse_size(args.size), image=args.image,
                         static_threshold=args.static_threshold, pan_step=args.pan_step, seed=args.seed,
                         bound_pct=args.bound, baseline=not args.no_baseline)
    if args.quick:
        cfg.frames = min(cfg.frames, 8)
        cfg.size = cfg.size or (160, 120)
    return cfg


def governor_config(args, models: list[Path]):
    from edgesharp.benchmarks.governor import GovernorBenchConfig
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.sources import check_fps, parse_size

    if len(models) > 1:
        raise EdgesharpError("bench governor times one model: pass --model once")
    if args.backends != ["openvino"] or len(args.precisions) != 1:
        raise EdgesharpError("bench governor runs the openvino backend at one precision: --backends openvino, "
                             "--precisions one of auto,fp32,fp16,int8")
    if args.precisions[0] not in ("auto", "fp32", "fp16", "int8"):
        raise EdgesharpError(f"--precisions {args.precisions[0]}: choose one of auto,fp32,fp16,int8")
    if not args.seconds > 0:
        raise EdgesharpError(f"--seconds {args.seconds}: must be above 0")
    camera_fps = check_fps(args.camera_fps, "--camera-fps")
    target = check_fps(args.target_fps, "--target-fps") if args.target_fps is not None else None
    cfg = GovernorBenchConfig(model=models[0] if models else None, size=parse_size(args.size), camera_fps=camera_fps,
                              target_fps=target, seconds=args.seconds, precision=args.precisions[0], hog=not args.no_hog)
    if args.quick:
        cfg.seconds = min(cfg.seconds, 3.0)
    return cfg


def _command_line() -> str:
    return " ".join(["edgesharp", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("edgesharp") else ""


def run(args) -> dict:
    """Run the selected suites; returns the results dict (also written to args.out)."""
    import datetime as dt

    from edgesharp.benchmarks import machine, report
    from edgesharp.edge.errors import EdgesharpError

    if getattr(args, "isa_cap", None):
        if "onnxruntime" in args.backends:
            raise EdgesharpError(f"--isa-cap {args.isa_cap} caps OpenVINO's and PyTorch's kernels only; ONNX Runtime would "
                                 "run with the machine's full instruction set: pass --backends openvino or openvino,pytorch")
        if args.bench_command in ("fps", "all"):
            fps_config(args, _models(args))  # its argument errors before anything is capped
        machine.apply_isa_cap(args.isa_cap)
    info = machine.collect()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    models = _models(args)
    results: dict = {"format": report.FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "command": _command_line(), "machine": info.to_dict(), "quick": bool(args.quick),
                     "models": [str(m) for m in models], "fps": [], "quality": None}

    def progress(text: str) -> None:
        print(f"  {text}", flush=True)

    if args.bench_command in ("fps", "all"):
        if not models:
            msg = "no model bundle to time: pass --model BUNDLE (no default bundle is installed)"
            if args.bench_command == "fps":
                raise EdgesharpError(msg)
            log.warning("%s; skipping the speed suite", msg)
        else:
            from edgesharp.benchmarks.fps import run_fps

            cfg = fps_config(args, models)
            results["config_fps"] = {"sizes": [f"{w}x{h}" for w, h in cfg.sizes], "modes": cfg.modes,
                                     "schedule": vars(cfg.schedule), "e2e_seconds": cfg.e2e_seconds,
                                     "source": cfg.e2e_source, "camera_fps": cfg.camera_fps,
                                     "target_fps": cfg.target_fps, "target_size": "x".join(map(str, cfg.target_size))}
            print("speed:", flush=True)
            results["fps"] = run_fps(cfg, info.peak, progress)
            if args.crosscheck:
                results["fps"] += crosscheck_rows(cfg, progress)
    if args.bench_command in ("quality", "all"):
        from edgesharp.benchmarks.quality import run_quality

        print("quality:", flush=True)
        results["quality"] = run_quality(quality_config(args, models, out), progress)
    if args.bench_command == "temporal":
        from edgesharp.benchmarks.temporal import run_temporal

        cfg = temporal_config(args, models)
        if not models:
            raise EdgesharpError("no model bundle to score: pass --model BUNDLE (no default bundle is installed)")
        print("temporal:", flush=True)
        results["temporal"] = run_temporal(cfg, progress)
    if args.bench_command == "governor":
        from edgesharp.benchmarks.governor import run_governor

        cfg = governor_config(args, models)
        print("governor:", flush=True)
        results["governor"] = run_governor(cfg, progress)
    if not args.no_charts:
        results["charts"] = report.draw_charts(out, results)
    report.write_results(out, results)
    write_markdown(out, results)
    if args.store or args.store_as:
        # a governor or temporal run never replaces the machine's speed and quality results
        suffix = f"-{args.bench_command}" if args.bench_command in ("governor", "temporal") else ""
        store(out, args.store_as or info.slug + suffix)
    return results


def write_markdown(out: Path, results: dict) -> Path:
    """report.md: the temporal or governor suite's own report, else the speed/quality one."""
    from edgesharp.benchmarks import governor, report, temporal

    if results.get("governor") and not results.get("fps") and not results.get("quality"):
        return governor.write_markdown(out, results)
    if results.get("temporal") and not results.get("fps") and not results.get("quality"):
        return temporal.write_markdown(out, results)
    return report.write_markdown(out, results)


def crosscheck_rows(cfg, progress) -> list[dict]:
    """Our sync OpenVINO FPS next to benchmark_app's for each bundle's FP32 IR at the target size."""
    from edgesharp.benchmarks import crosscheck, timing
    from edgesharp.edge.bundle import load_bundle
    from edgesharp.edge.errors import EdgesharpError

    rows = []
    w, h = cfg.target_size
    for path in cfg.models:
        bundle = load_bundle(path)
        ph, pw = timing.padded(h, w, bundle.size_multiple)
        progress(f"cross-check {bundle.name} openvino fp32 {w}x{h} against benchmark_app")
        row = {"suite": "fps", "kind": "crosscheck", "model": bundle.name, "backend": "openvino", "precision": "fp32",
               "size": f"{w}x{h}", "mode": "sync"}
        try:
            r = crosscheck.crosscheck(bundle.model_path("openvino", "fp32"), ph, pw, "sync", rounds=3,
                                      seconds=max(2.0, cfg.schedule.duration))
            row.update(fps=r["ours_fps"], benchmark_app_fps=r["benchmark_app_fps"], ratio=r["ratio"],
                       within_15pct=abs(r["ratio"] - 1) <= 0.15)
        except EdgesharpError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def store(out: Path, slug: str) -> Path:
    """Copy results.json, report.md and the charts to benchmarks/results/<slug>/ (replacing the previous run).

    The comparison sheet stays out: it holds crops of the test images, which may not be redistributable.
    """
    import shutil

    from edgesharp.benchmarks import report

    dest = RESULTS_ROOT / slug
    dest.mkdir(parents=True, exist_ok=True)
    for f in dest.iterdir():
        if f.is_file():
            f.unlink()
    results = report.read_results(out / "results.json")
    if results.get("quality"):
        results["quality"].pop("sheet", None)
    for chart in results.get("charts", []):
        shutil.copy2(chart, dest / Path(chart).name)
    results["charts"] = [Path(c).name for c in results.get("charts", [])]
    report.write_results(dest, results)
    write_markdown(dest, results)
    return dest


def _summary(results: dict) -> list[str]:
    from edgesharp.benchmarks import governor, report, temporal

    lines = []
    for r in report.fps_rows(results, "verdict"):
        sizes = ", ".join(f"{k.removeprefix('max_size_')}: {r[k] or 'none'}" for k in r if k.startswith("max_size_"))
        lines.append(f"{r['model']} {r['backend']} {r['precision']} at {r['size']}: {r['fps'] or 0:.1f} FPS end to end "
                     f"-> {'meets' if r['meets'] else 'misses'} {r['target_fps']:g} FPS" + (f" (largest size {sizes})" if sizes else ""))
    for r in report.quality_rows(results):
        lines.append(f"{r['method']:<40} {r['level']:<7} SSIM {r['ssim']:.4f}  PSNR {r['psnr']:.2f} dB")
    return lines + temporal.summary_lines(results) + governor.summary_lines(results)


def main(args: argparse.Namespace) -> int:
    from edgesharp.benchmarks import report

    old = report.read_results(args.compare) if args.compare else None
    results = run(args)
    for line in _summary(results):
        print(line)
    print(f"report: {args.out / 'report.md'}")
    if old is not None:
        print(f"compared with {args.compare}:")
        for line in report.format_comparison(report.compare(results, old)):
            print(f"  {line}")
    return 0
