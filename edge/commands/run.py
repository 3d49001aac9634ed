"""`edgesharp run`: sharpen a live camera (or a video, a folder, a synthetic scene) into a window, a virtual
camera and/or files, with a status line every second.

Also holds the model/backend options `edgesharp enhance` shares.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MAX_REQUESTS = 64  # = edge.backends.base.MAX_REQUESTS, repeated so that --help imports neither OpenCV nor OpenVINO
# --power-save: one stream on one thread (the latency hint); OpenVINO properties: efficient cores of a hybrid CPU,
# no second logical processor per core (neither has an effect on a CPU with one kind of core and no SMT)
POWER_SAVE = {"--hint": "latency", "--threads": 1}
POWER_SAVE_OPENVINO = {"SCHEDULING_CORE_TYPE": "ECORE_ONLY", "ENABLE_HYPER_THREADING": "NO"}

EXAMPLES = """examples:
  edgesharp run                                        # camera 0 -> preview window (+/- strength, b bypass, q quit)
  edgesharp run --sink vcam --sink preview             # camera 0 -> virtual camera for Zoom/Meet/Teams + window
  edgesharp run --source /dev/video2 --size 1280x720 --fps 30 --sink vcam
  edgesharp run --source synthetic --frames 150 --sink out/demo.mp4 --sink compare:out/demo
  edgesharp run --source clip.mkv --sink sharp.mp4 --stats-json stats.json
  edgesharp run --backend onnxruntime --precision fp32 --source synthetic --sink null --frames 300
  edgesharp run --sink vcam --target-fps 24 --power-save    # a call on battery: one thread, 24 FPS held

sources: camera:N[,fourcc=MJPG|YUYV|default], /dev/videoN, a video file, a folder of images,
         synthetic[:level=heavy|medium|low|none][,fast]
sinks:   preview[:split], vcam[:DEVICE], FILE.mp4|.mkv|.avi|.mov, folder:DIR, compare:DIR, null
"""


HINT_REASONS = {
    "throughput": "a frame per stream keeps every core busy: on 2 AVX2 cores at 1280x720, 20.8 FPS against 18.9 "
                  "with latency (medians of 3 runs; docs/benchmarks.md, Live pipeline settings); latency: less "
                  "delay per frame",
    "latency": "every core on one frame: the shortest time for each image",
}


def add_model_options(parser: argparse.ArgumentParser, default_hint: str = "latency") -> None:
    """--model/--backend/--precision and the backend tuning options (shared with `edgesharp enhance`)."""
    g = parser.add_argument_group("model and backend")
    g.add_argument("--model", type=Path, default=None,
                   help="model bundle folder (default: the shipped model in edge/models/default)")
    g.add_argument("--backend", choices=["openvino", "onnxruntime"], default="openvino",
                   help="inference backend (default: openvino)")
    g.add_argument("--precision", choices=["auto", "int8", "fp16", "fp32"], default="auto",
                   help="model precision (default: auto, the one the bundle's guard found correct and fastest on this "
                        "CPU's kernel class; the choice and its reason are logged once the model opens, after the source's line); int8/fp16/fp32 force one")
    g.add_argument("--requests", type=int, default=None,
                   help="frames in flight (OpenVINO infer requests / ONNX Runtime workers; default: the device's "
                        "optimum, for a live source with one OpenVINO request to spare)")
    g.add_argument("--hint", choices=["latency", "throughput"], default=None,
                   help=f"OpenVINO performance hint (default: {default_hint}: {HINT_REASONS[default_hint]})")
    parser.set_defaults(hint_default=default_hint)
    g.add_argument("--streams", default=None, help="OpenVINO NUM_STREAMS override (a number or AUTO)")
    g.add_argument("--threads", type=int, default=None,
                   help="inference threads (OpenVINO INFERENCE_NUM_THREADS / ONNX Runtime intra-op threads per worker)")
    g.add_argument("--device", default="CPU",
                   help="OpenVINO device: CPU (default), GPU, NPU or AUTO (also GPU.1, AUTO:GPU,CPU). Off the CPU the "
                        "compiled-model cache is on (in --cache-dir, default ~/.cache/edgesharp/openvino) and "
                        "--precision auto runs the float model; GPU and NPU are untested on real hardware")
    g.add_argument("--cache-dir", type=Path, default=None, help="OpenVINO compiled-model cache folder")
    g.add_argument("--strength", type=float, default=1.0,
                   help="blend of output and input, 0 (input unchanged) .. 1 (full model output; default)")
    g.add_argument("--power-save", action="store_true",
                   help="use less CPU: " + ", ".join(f"{k} {v}" for k, v in POWER_SAVE.items()) + " and, on hybrid "
                        "CPUs, the efficient cores only (OpenVINO SCHEDULING_CORE_TYPE ECORE_ONLY, one thread per "
                        "core); --hint/--threads given explicitly win")


def check_model_options(args: argparse.Namespace) -> None:
    """Refuse (`UsageError`, exit 2) model option values that cannot work, before anything opens."""
    from edgesharp.edge.controls import check_strength
    from edgesharp.edge.errors import UsageError

    check_strength(args.strength, "--strength")
    for option in ("requests", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option} {value}: must be at least 1")
    if args.requests is not None and args.requests > MAX_REQUESTS:
        raise UsageError(f"--requests {args.requests}: at most {MAX_REQUESTS} frames in flight")
    streams = getattr(args, "streams", None)
    if streams is not None and not (str(streams).upper() in ("AUTO", "NUMA") or
                                    (str(streams).isdigit() and int(streams) >= 1)):
        raise UsageError(f"--streams {streams}: must be a whole number of at least 1, or AUTO")


def open_backend_from_args(args: argparse.Namespace, live: bool = False):
    """(bundle, backend) for the parsed model options; a `live` source gets one OpenVINO request to spare."""
    from edgesharp.edge.sharpener import load_model_bundle

    check_model_options(args)
    bundle = load_model_bundle(args.model)
    backend = open_bundle_from_args(args, bundle, live)
    log.info("model %s (%s) on %s, %s: %s", bundle.name, bundle.path, args.backend, backend.precision,
             backend.precision_reason)
    return bundle, backend


def open_bundle_from_args(args: argparse.Namespace, bundle, live: bool = False):
    """The backend for a loaded bundle with the parsed model options (the run's model, or its lighter variant)."""
    from edgesharp.edge.backends import open_backend

    power_save = getattr(args, "power_save", False)
    threads = args.threads or (POWER_SAVE["--threads"] if power_save else None)
    hint = args.hint or (POWER_SAVE["--hint"] if power_save else getattr(args, "hint_default", "latency"))
    options = {"requests": args.requests, "threads": threads}
    if args.backend == "openvino":
        options.update(hint=hint, streams=args.streams,
                       device=args.device, cache_dir=args.cache_dir, spare_requests=1 if live else 0)
        if power_save:
            options["config"] = dict(POWER_SAVE_OPENVINO)
    elif args.streams is not None or args.cache_dir is not None or args.hint is not None:
        log.warning("--hint/--streams/--cache-dir apply to the openvino backend only; ignored")
    return open_backend(bundle, args.backend, args.precision, **options)


def stats_output(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """--stats-json as an output of the run, for the output rule (`edgesharp.edge.sinks.prepare_sinks`)."""
    stats_json = getattr(args, "stats_json", None)
    return [("--stats-json", stats_json)] if stats_json else []


def build_governor(args: argparse.Namespace, source, backend, bundle=None):
    """(governor or None, backend) for --target-fps (default: the source's rate; 0: none). A source that is not
    live (a file, a folder) waits for the pipeline and never drops a frame: it is never governed. When the
    bundle names a lighter variant the backend comes back as a `VariantBackend` that can switch to it."""
    from edgesharp.edge.governor import Governor

    target = getattr(args, "target_fps", None)
    if target == 0:
        return None, backend
    if not source.live:
        if target is not None:
            log.warning("--target-fps %g: %s waits for the pipeline and drops nothing; the governor is off",
                        target, source.description)
        return None, backend
    backend, model = with_lighter_variant(backend, bundle, lambda variant: open_bundle_from_args(args, variant, True))
    return Governor(target or source.fps or 30.0, governor_levers(backend, model)), backend


def with_lighter_variant(backend, bundle, open_variant):
    """(backend, the governor's model lever): wrapped in a `VariantBackend` that opens the bundle's lighter variant
    with `open_variant(variant_bundle)` when first asked to, or unchanged with the lever absent and why."""
    from edgesharp.edge.backends.variants import VariantBackend
    from edgesharp.edge.bundle import BundleError
    from edgesharp.edge.governor import MODEL, absent_lever, model_lever

    if bundle is None:
        return backend, absent_lever(MODEL, "no bundle was named")
    try:
        lighter = bundle.lighter()
    except BundleError as exc:
        log.warning("%s; the governor will not switch models", exc)
        return backend, absent_lever(MODEL, "the bundle's lighter variant cannot be used")
    if lighter is None:
        return backend, absent_lever(MODEL, "the bundle ships no lighter variant")
    names = [bundle.name, lighter.bundle.name if lighter.bundle.name != bundle.name else f"{bundle.name} (lighter)"]
    wrapped = VariantBackend(backend, names, [lambda: open_variant(lighter.bundle)])
    return wrapped, model_lever(names, (1.0, lighter.cost))


def governor_levers(backend, model) -> list:
    """The governor's levers for an opened backend, cheapest in quality first (`edgesharp.edge.governor`); `model`
    is the lighter-model lever (`with_lighter_variant`)."""
    from edgesharp.edge.governor import absent_lever, scale_lever

    precision = getattr(backend, "precision", None)
    if getattr(backend, "precision_requested", "auto") != "auto":
        why = f"--precision {backend.precision_requested} was forced"
    elif precision is None:
        why = f"the {backend.name} backend runs one precision"
    else:
        why = f"--precision auto already runs {precision}, the fastest one valid on this CPU"
    return [absent_lever("precision", why), model, scale_lever()]


def run_pipeline(source, backend, sinks, args: argparse.Namespace, max_frames: int | None = None,
                 skip_failed_frames: bool = False, governor=None) -> dict:
    """Run the pipeline with a status line per second on stderr (unless -q) and --stats-json if given.
    The summary adds `stop_reason` and `skipped` (frames skipped after a failed inference)."""
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.pipeline import Pipeline

    pipeline = Pipeline(source, backend, sinks, strength=args.strength, max_frames=max_frames,
                        skip_failed_frames=skip_failed_frames, governor=governor)
    quiet = getattr(args, "quiet", False)
    stats_json = getattr(args, "stats_json", None)

    def status(stats) -> None:
        total = max_frames or source.total
        print(stats.status_line(total=total), file=sys.stderr, flush=True)

    if source.live and not any(hasattr(s, "pump") for s in sinks) and sys.stdin is not None and sys.stdin.isatty():
        from edgesharp.edge.controls import HELP, start_terminal_keys

        start_terminal_keys(pipeline, sys.stdin)  # a vcam or file run from a terminal: the preview's keys, + Enter
        print(f"{HELP} (then Enter)", file=sys.stderr, flush=True)
    try:
        summary = pipeline.run(on_status=None if quiet else status, handle_signals=True)
    except BaseException:
        if stats_json:  # the run's own error is the one to report; a failed stats file only logs
            _add_source_mode(pipeline)
            try:
                pipeline.stats.write_json(stats_json)
            except EdgesharpError as exc:
                log.error("%s", exc)
        raise
    if stats_json:
        _add_source_mode(pipeline)
        pipeline.stats.write_json(stats_json)
    summary["stop_reason"] = pipeline.stop_reason
    summary["skipped"] = list(pipeline.skipped)
    return summary


def _add_source_mode(pipeline) -> None:
    """The mode a camera delivers (format, size, rate read back after the request) into --stats-json's "run"."""
    mode = getattr(pipeline.source, "mode", None)
    if mode is not None and pipeline.stats.info:
        pipeline.stats.info["source_mode"] = {**mode.to_dict(), "requested_fourcc": pipeline.source.fourcc}


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("--source", default="camera:0",
                        help="camera:N, /dev/videoN, a video file, an image folder or synthetic (default: camera:0)")
    parser.add_argument("--sink", action="append", default=None,
                        help="where frames go; repeat for several (default: preview)")
    parser.add_argument("--size", default=None, help="WIDTHxHEIGHT requested from the camera / of the synthetic scene")
    parser.add_argument("--fps", type=float, default=None, help="frame rate requested from the camera / of the scene")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames from the source")
    parser.add_argument("--stats-json", type=Path, default=None, help="write the run's statistics to this JSON file")
    parser.add_argument("--target-fps", type=float, default=None,
                        help="frame rate to hold on a busy machine (a live source only; default: the source's rate; "
                             "0 turns the governor off): when the output stays 10%% below it for 3 s it switches to "
                             "the bundle's lighter model (where it names one) or runs the model on the frame "
                             "downscaled (0.75, then 0.5) with its detail added back at full size, whichever loses "
                             "least quality and is predicted to reach the rate; back up after 10 s with room to spare. Each "
                             "change is logged and in --stats-json's \"governor\"")
    # throughput: measured with a paced camera on 2 cores, every stream busy beat one stream on all cores
    # (README, "Live pipeline settings")
    add_model_options(parser, default_hint="throughput")


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.errors import UsageError
    from edgesharp.edge.sinks import open_sink, prepare_sinks
    from edgesharp.edge.sources import CameraSource, check_fps, open_source, parse_size

    # refused before anything opens: an infinite rate hangs OpenCV's video writer
    check_model_options(args)
    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames {args.frames}: must be at least 1")
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    if args.target_fps is not None and args.target_fps != 0:
        check_fps(args.target_fps, "--target-fps")
    source = open_source(args.source, parse_size(args.size), args.fps)
    sinks = [open_sink(spec, args.fps) for spec in (args.sink or ["preview"])]
    prepare_sinks(sinks, source.input_files(), stats_output(args))  # before the camera and the model open
    if isinstance(source, CameraSource):  # its delivered mode is the run's first line; a missing one fails fast
        source.open()
    try:
        bundle, backend = open_backend_from_args(args, live=source.live)
        try:
            governor, backend = build_governor(args, source, backend, bundle)
            summary = run_pipeline(source, backend, sinks, args, max_frames=args.frames, governor=governor)
        finally:
            backend.close()
    finally:
        source.close()
    lat = summary["latency_ms"]
    print(f"{summary['frames_written']} frames from {source.description} -> {', '.join(s.description for s in sinks)}"
          f" in {summary['elapsed_s']:.1f} s ({summary['mean_output_fps']:.1f} fps, "
          f"{summary['frames_dropped']} dropped, latency p50 {lat['p50'] or 0:.0f} ms); {summary['stop_reason']}")
    return 0
