"""Link a lighter variant to a bundle: time both models, record the variant and its cost in the bundle's manifest.

    python -m edgesharp.calibrate.lighter edge/models/default edge/models/default-lighter --isa-cap avx2

The frame-rate governor of `edgesharp run` (`edgesharp.edge.governor`) switches to the variant before it lowers
the processing scale, and predicts from the cost whether switching back fits. The cost is the variant's median
time per frame as a share of the bundle's: OpenVINO, one synchronous request on every thread, at --size, each
model in the precision `auto` picks for it here, in alternating rounds in one process so that the machine's drift
falls on both. The CPU, the cap, the times and this command are recorded beside it. The manifest is rewritten
atomically; its files (and so their checksums) are unchanged. `--unlink` removes the entry.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)


def relative_folder(bundle: Path, variant: Path) -> str:
    """The variant's folder as the manifest stores it: relative to the bundle's folder, with '/'."""
    return Path(os.path.relpath(variant.resolve(), bundle.resolve())).as_posix()


def time_rounds(paths: list[Path], size: tuple[int, int], rounds: int, seconds: float) -> list[list[float]]:
    """Per model, its sync time per frame (ms) in each of `rounds` alternating rounds."""
    from edgesharp.benchmarks.timing import Schedule, padded, time_openvino
    from edgesharp.edge.backends import select_precision
    from edgesharp.edge.backends.precision_choice import choose
    from edgesharp.edge.bundle import load_bundle

    w, h = size
    plans = []
    for path in paths:
        bundle = load_bundle(path)
        precision = choose(bundle, "openvino").precision
        xml = bundle.model_path("openvino", select_precision(bundle, "openvino", precision))
        plans.append((xml, *padded(h, w, bundle.size_multiple), precision))
    times: list[list[float]] = [[] for _ in paths]
    for r in range(rounds):
        for i, (xml, ph, pw, precision) in enumerate(plans):
            t = time_openvino(xml, ph, pw, "sync", Schedule(warmup=3, repeats=1, duration=seconds), precision=precision)
            times[i].append(1e3 / t.fps)
        log.info("round %d/%d: %s ms a frame", r + 1, rounds, " / ".join(f"{t[-1]:.1f}" for t in times))
    return times


def link(bundle_dir: Path, variant_dir: Path, size: tuple[int, int] = (1280, 720), rounds: int = 5,
         seconds: float = 2.0, command: str = "") -> dict:
    """Measure the variant's cost and write the `lighter` entry into the bundle's manifest; returns the entry."""
    from edgesharp.benchmarks.machine import collect
    from edgesharp.edge.backends.openvino_core import isa_cap
    from edgesharp.edge.bundle import LIGHTER, load_bundle

    bundle, variant = load_bundle(bundle_dir), load_bundle(variant_dir)
    bundle.check_lighter(variant)
    times = time_rounds([bundle.path, variant.path], size, rounds, seconds)
    ratios = [v / b for b, v in zip(*times, strict=True)]
    cost = statistics.median(ratios)
    if not cost < 1.0:
        raise EdgesharpError(f"{variant_dir}: takes {cost:.2f}x the time of {bundle_dir} here "
                             f"({statistics.median(times[1]):.1f} against {statistics.median(times[0]):.1f} ms a frame "
                             f"at {size[0]}x{size[1]}); it is not lighter")
    machine = collect()
    entry = {"path": relative_folder(bundle.path, variant.path), "cost": round(cost, 3),
             "measured": {"size": f"{size[0]}x{size[1]}", "ms_per_frame": [round(statistics.median(t), 2) for t in times],
                          "round_ratios": [round(r, 3) for r in ratios], "cpu": machine.cpu_model,
                          "isa_cap": isa_cap() or "none", "command": command}}
    write_manifest(bundle.path, {**bundle.manifest, LIGHTER: entry})
    load_bundle(bundle.path).lighter()  # the link as the runtime will read it
    log.info("%s: lighter variant %s at %.2f of its time (%s)", bundle.path, entry["path"], cost, entry["measured"])
    return entry


def unlink(bundle_dir: Path) -> bool:
    """Remove the `lighter` entry; False when there was none."""
    from edgesharp.edge.bundle import LIGHTER, load_bundle

    bundle = load_bundle(bundle_dir, verify=False)
    if LIGHTER not in bundle.manifest:
        return False
    write_manifest(bundle.path, {k: v for k, v in bundle.manifest.items() if k != LIGHTER})
    return True


def write_manifest(folder: Path, manifest: dict) -> None:
    """Replace a bundle's manifest atomically (its files, and so their checksums, stay as they are)."""
    from edgesharp.edge.bundle import MANIFEST
    from edgesharp.edge.imaging.io import atomic_write_bytes

    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    from edgesharp.benchmarks.machine import ISA_CAPS, apply_isa_cap

    p = argparse.ArgumentParser(prog="python -m edgesharp.calibrate.lighter", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="the bundle folder whose manifest gets the link")
    p.add_argument("variant", type=Path, nargs="?", help="the lighter variant's bundle folder")
    p.add_argument("--size", default="1280x720", help="WxH the two models are timed at (default 1280x720)")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (default 5)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per model per round (default 2)")
    p.add_argument("--isa-cap", choices=tuple(ISA_CAPS), help="time as on a CPU with only this instruction set")
    p.add_argument("--unlink", action="store_true", help="remove the bundle's link instead")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from edgesharp.benchmarks.timing import check_size

    try:
        if args.unlink:
            print(f"{args.bundle}: " + ("link removed" if unlink(args.bundle) else "had no lighter variant"))
            return 0
        if args.variant is None:
            p.error("the lighter variant's folder is needed (or --unlink)")
        if args.rounds < 1 or args.seconds <= 0:
            p.error("--rounds must be at least 1 and --seconds above 0")
        if args.isa_cap:
            apply_isa_cap(args.isa_cap)
        command = "python -m edgesharp.calibrate.lighter " + " ".join(sys.argv[1:] if argv is None else argv)
        entry = link(args.bundle, args.variant, check_size(args.size), args.rounds, args.seconds, command)
    except (EdgesharpError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.bundle}: lighter variant {entry['path']} at {entry['cost']:.2f} of its time per frame "
          f"({entry['measured']['size']}, {entry['measured']['cpu']}, cap {entry['measured']['isa_cap']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
