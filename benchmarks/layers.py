"""Where a frame's time goes in OpenVINO: per-layer performance counters, summed by operation type.

Profiles architectures from the registry (random weights; an optional `:key=value,...` overrides the
config, e.g. `nafnet-rt:norm=layernorm`) or IRs of existing bundles, at one frame size and precision,
one request at a time (latency hint), and writes layers.md / layers.json, summed by operation type and by part of
the network (a block such as `decoders.3.0`, a stem convolution, the I/O conversions):

    python -m edgesharp.benchmarks.layers nafnet-rt nafnet-rt:norm=layernorm nafnet-tiny --precision int8 --out out/layers

A registry architecture is built as `edgesharp calibrate` builds a bundle's IR (inference form,
BGR-native); its INT8 is NNCF's plain quantization on random frames: timing needs the quantized
graph, not calibrated ranges. Counter times are the plugin's own per-node measurements;
their sum is below the wall time of a request (scheduling and pre/post-processing outside nodes).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgesharp.benchmarks.machine import ISA_CAPS, apply_isa_cap
from edgesharp.benchmarks.report import markdown_table
from edgesharp.edge.backends.openvino_core import off_main_thread, shared_core
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)


def _spec_value(text: str):
    if "/" in text:
        return [_spec_value(part) for part in text.split("/")]
    return int(text) if text.lstrip("-").isdigit() else text


def parse_spec(spec: str) -> tuple[str, dict]:
    """'nafnet-rt:norm=layernorm,width=24,enc_blk_nums=0/1/2' -> ('nafnet-rt', {..., 'enc_blk_nums': [0, 1, 2]})."""
    arch, _, rest = spec.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgesharpError(f"{spec}: expected key=value after ':', got {item!r}")
        overrides[key] = _spec_value(value)
    return arch, overrides


def registry_ir(spec: str, precision: str, height: int, width: int):
    """The u8 BGR OpenVINO model of a registry architecture (random weights), FP32 or plain-quantized INT8."""
    import tempfile

    import torch

    from edgesharp.calibrate.convert import add_u8_bgr_io, convert_onnx
    from edgesharp.calibrate.export import export_onnx
    from edgesharp.train import models
    from edgesharp.train.models.export_form import bgr_native

    arch, overrides = parse_spec(spec)

    torch.manual_seed(0)
    model = models.create(arch, **overrides).eval()
    bgr = bgr_native(model)  # as calibrate builds a bundle's IR
    with tempfile.TemporaryDirectory() as tmp:
        float_model = convert_onnx(export_onnx(bgr if bgr is not None else model, Path(tmp) / "m.onnx"))
    if precision == "int8":
        import nncf

        rng = np.random.default_rng(0)
        frames = [rng.random((1, 3, height, width), dtype=np.float32) for _ in range(4)]
        float_model = off_main_thread(nncf.quantize, float_model, nncf.Dataset(frames), subset_size=len(frames))
    return add_u8_bgr_io(float_model, bgr_native=bgr is not None), model.size_multiple


BLOCK_LISTS = ("encoders", "decoders", "middle_blks")


def part_of(node: str) -> str:
    """The part of a NAFNet-family network an exported node belongs to, from its name: '/decoders.3/decoders.3.0/
    norm1/ReduceMean' -> 'decoders.3.0', '/intro/Conv' -> 'intro'; nodes without a module path are the u8 BGR
    input/output conversions, top-level ones the skip connections and the global residual. A node the plugin
    fused carries one of its operations' names, so the split is approximate."""
    if not node.startswith("/"):
        return "(I/O conversion)"
    parts = node.strip("/").split("/")
    if len(parts) == 1:
        return "(skips and residual)"
    if parts[0].split(".")[0] in BLOCK_LISTS and parts[1].startswith(parts[0] + "."):
        return parts[1]
    return parts[0]


def profile(model, height: int, width: int, precision: str, iterations: int = 20, warmup: int = 3) -> dict:
    """Median wall ms per frame and per-operation-type counter ms per frame (mean over `iterations`)."""
    import openvino as ov

    from edgesharp.edge.backends import openvino_precision_config

    core = shared_core()
    model = model.clone()
    model.reshape({model.input(): [1, height, width, 3]})
    config = {"PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY", **openvino_precision_config(precision)}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    request.set_input_tensor(ov.Tensor(frame))
    for _ in range(warmup):
        request.infer()
    by_type: dict[str, float] = defaultdict(float)
    by_part: dict[str, float] = defaultdict(float)
    nodes: dict[str, int] = defaultdict(int)
    walls = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        request.infer()
        walls.append((time.perf_counter() - t0) * 1000)
        for p in request.profiling_info:
            if p.status == p.Status.EXECUTED:
                by_type[p.node_type] += p.real_time.total_seconds() * 1000 / iterations
                by_part[part_of(p.node_name)] += p.real_time.total_seconds() * 1000 / iterations
                nodes[p.node_type] += 1
    counted = sum(by_type.values())
    types = {t: {"ms": ms, "share_pct": 100 * ms / counted if counted else 0.0, "nodes": nodes[t] // iterations}
             for t, ms in sorted(by_type.items(), key=lambda kv: -kv[1])}
    parts = {name: {"ms": ms, "share_pct": 100 * ms / counted if counted else 0.0}
             for name, ms in sorted(by_part.items(), key=lambda kv: -kv[1])}
    return {"wall_ms": statistics.median(walls), "counted_ms": counted, "types": types, "parts": parts,
            "precision_hint": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}


def render(profiles: dict[str, dict], size: str, precision: str, command: str, top: int = 10) -> str:
    lines = [f"# OpenVINO per-layer time at {size}, {precision}", "", f"Command: `{command}`", "",
             "ms per frame by operation type (PERF_COUNT, one request, latency hint); share of the counted time in brackets.", ""]
    names = list(profiles)
    types = sorted({t for p in profiles.values() for t in p["types"]},
                   key=lambda t: -max(p["types"].get(t, {}).get("ms", 0.0) for p in profiles.values()))[:top]
    body = [["wall ms / frame (median)", *[f"{profiles[n]['wall_ms']:.1f}" for n in names]],
            ["counted ms / frame", *[f"{profiles[n]['counted_ms']:.1f}" for n in names]]]
    for t in types:
        row = [t]
        for n in names:
            entry = profiles[n]["types"].get(t)
            row.append(f"{entry['ms']:.2f} ({entry['share_pct']:.0f}%, {entry['nodes']})" if entry else "-")
        body.append(row)
    lines += markdown_table(["operation type (nodes)", *names], body)
    parts = sorted({n for p in profiles.values() for n in p["parts"]},
                   key=lambda n: -max(p["parts"].get(n, {}).get("ms", 0.0) for p in profiles.values()))[:top]
    lines += ["", "ms per frame by part of the network (node names' module paths; fused nodes count once).", ""]
    body = [[part, *[f"{profiles[n]['parts'][part]['ms']:.2f} ({profiles[n]['parts'][part]['share_pct']:.0f}%)"
                     if part in profiles[n]["parts"] else "-" for n in names]] for part in parts]
    lines += markdown_table(["part", *names], body)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.layers", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="registry arch (optionally arch:key=value,...) or a bundle folder")
    p.add_argument("--size", default="640x480", help="WxH (default 640x480)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="fp32 (default; what a float-only bundle such as the shipped one runs) or int8")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--out", type=Path, default=Path("out/layers"))
    p.add_argument("--isa-cap", choices=tuple(ISA_CAPS), help="profile as on a CPU with only this instruction set")
    args = p.parse_args(argv)
    from edgesharp.benchmarks.timing import check_size, padded
    from edgesharp.edge.backends import select_precision
    from edgesharp.edge.bundle import load_bundle

    try:
        if args.isa_cap:
            apply_isa_cap(args.isa_cap)
        w, h = check_size(args.size)
        profiles = {}
        for spec in args.models:
            if Path(spec).is_dir():
                bundle = load_bundle(spec)
                # the runtime's choice of file (a slim bundle runs FP32 on its FP16 IR); no other stand-in here
                stored = select_precision(bundle, "openvino", args.precision)
                if stored != args.precision and args.precision != "fp32":
                    raise EdgesharpError(f"{bundle.path}: no OpenVINO {args.precision} model to profile")
                model, multiple = shared_core().read_model(bundle.model_path("openvino", stored)), bundle.size_multiple
            else:
                model, multiple = registry_ir(spec, args.precision, *padded(h, w, 32))
            ph, pw = padded(h, w, multiple)
            print(f"profiling {spec} at {pw}x{ph} {args.precision}", flush=True)
            profiles[spec] = profile(model, ph, pw, args.precision, args.iterations)
    except (EdgesharpError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m edgesharp.benchmarks.layers " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.out / "layers.json").write_text(json.dumps({"size": args.size, "precision": args.precision, "command": command,
                                                      "profiles": profiles}, indent=1) + "\n")
    (args.out / "layers.md").write_text(render(profiles, args.size, args.precision, command))
    print((args.out / "layers.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
