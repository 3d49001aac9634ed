"""Which OpenVINO settings serve a live camera best: end-to-end FPS and latency per hint and request count.

Each setting runs the real pipeline (`edgesharp.benchmarks.fps.run_pipeline`) from the camera-like source paced at
--camera-fps into a null sink, for every size, in one process and one after another, so the rows compare.
"optimal + k" is OpenVINO's optimal number of requests for the hint plus k spare ones.

    python -m edgesharp.benchmarks.live_settings --model edge/models/default --sizes 640x480,1280x720 --isa-cap avx2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgesharp.benchmarks.machine import ISA_CAPS, apply_isa_cap
from edgesharp.benchmarks.report import machine_line, markdown_table
from edgesharp.edge.errors import EdgesharpError

# (hint, explicit requests or None, spare requests)
SETTINGS: tuple[tuple[str, int | None, int], ...] = (
    ("latency", None, 0),
    ("latency", None, 1),
    ("throughput", None, 0),
    ("throughput", None, 1),
    ("throughput", None, 2),
)


def setting_label(hint: str, requests: int | None, spare: int) -> str:
    return f"{hint}, {requests} requests" if requests else f"{hint}, optimal + {spare}"


def measure(bundle_path: Path, sizes: list[tuple[int, int]], seconds: float, camera_fps: float, precision: str,
            settings=SETTINGS, progress=None) -> list[dict]:
    """One end-to-end row per (size, setting)."""
    from edgesharp.benchmarks.fps import FpsConfig, run_pipeline
    from edgesharp.edge.bundle import load_bundle

    bundle = load_bundle(bundle_path)
    rows = []
    for size in sizes:
        for hint, requests, spare in settings:
            label = setting_label(hint, requests, spare)
            if progress:
                progress(f"{bundle.name} {size[0]}x{size[1]} {label}")
            cfg = FpsConfig(models=[bundle_path], requests=requests, camera_fps=camera_fps, hint=hint,
                            spare_requests=spare)
            r = run_pipeline(bundle, "openvino", precision, size, cfg, seconds, paced=True)
            rows.append({"model": bundle.name, "size": f"{size[0]}x{size[1]}", "setting": label, "hint": hint,
                         **{k: r[k] for k in ("fps", "frames_dropped", "drop_pct", "latency_ms", "cpu_percent",
                                              "requests")}})
    return rows


def render(results: dict) -> str:
    lines = ["# Live pipeline settings", "", f"Command: `{results['command']}`", "", machine_line(results["machine"]), "",
             f"End to end from a camera-like source paced at {results['camera_fps']:g} FPS, {results['seconds']:g} s "
             f"per row, OpenVINO {results['precision']}; latency from capture to the sink.", ""]
    body = [[r["model"], r["size"], r["setting"], str(r["requests"]), f"{r['fps']:.1f}",
             f"{r['latency_ms']['p50'] or 0:.0f} / {r['latency_ms']['p95'] or 0:.0f}", f"{r['drop_pct']:.0f}",
             f"{r['cpu_percent']:.0f}"] for r in results["rows"]]
    lines += markdown_table(["model", "size", "setting", "requests", "e2e FPS", "latency p50 / p95 ms", "dropped %",
                             "CPU %"], body)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.live_settings", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, action="append", required=True, help="bundle folder (repeatable)")
    p.add_argument("--sizes", default="640x480,1280x720", help="comma list of WxH")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each run (default 5)")
    p.add_argument("--camera-fps", type=float, default=30.0)
    p.add_argument("--precision", choices=("int8", "fp16", "fp32"), default="int8")
    p.add_argument("--isa-cap", choices=tuple(ISA_CAPS), help="time as on a CPU with only this instruction set")
    p.add_argument("--out", type=Path, default=Path("out/live-settings"))
    args = p.parse_args(argv)
    from edgesharp.benchmarks import machine
    from edgesharp.benchmarks.timing import check_size

    try:
        sizes = [check_size(s) for s in args.sizes.split(",") if s.strip()]
        if args.isa_cap:
            apply_isa_cap(args.isa_cap)
        rows = []
        for model in args.model:
            rows += measure(model, sizes, args.seconds, args.camera_fps, args.precision,
                            progress=lambda t: print(f"  {t}", flush=True))
    except (EdgesharpError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python -m edgesharp.benchmarks.live_settings " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {"command": command, "machine": machine.collect().to_dict(), "camera_fps": args.camera_fps,
               "seconds": args.seconds, "precision": args.precision, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live-settings.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "live-settings.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
