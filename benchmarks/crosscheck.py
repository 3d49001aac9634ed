"""Cross-check the suite's model-only OpenVINO FPS against OpenVINO's own `benchmark_app` on the same IR and shape.

Both are run alternately for a few rounds (so load from other processes hits both alike) and the
medians are compared. `benchmark_app` is the CLI from the openvino wheel; when it is not on PATH
the same tool runs as `python -m openvino.tools.benchmark.main`.

    python -m edgesharp.benchmarks.crosscheck MODEL.xml --size 640x480 [--mode sync|async]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from edgesharp.benchmarks import timing
from edgesharp.edge.errors import EdgesharpError

THROUGHPUT = re.compile(r"Throughput:\s*([0-9.]+)\s*FPS")


def benchmark_app_command() -> list[str] | None:
    """How to start benchmark_app here, or None when it is not available."""
    exe = shutil.which("benchmark_app")
    if exe:
        return [exe]
    if importlib.util.find_spec("openvino.tools.benchmark.main") is not None:
        return [sys.executable, "-m", "openvino.tools.benchmark.main"]
    return None


def benchmark_app_fps(xml: Path, height: int, width: int, mode: str = "sync", seconds: float = 2.0,
                      requests: int | None = None) -> float:
    """benchmark_app's reported throughput for a u8 NHWC IR reshaped to (1, height, width, 3)."""
    cmd = benchmark_app_command()
    if cmd is None:
        raise EdgesharpError("benchmark_app is not available (it ships with the openvino wheel)")
    args = [*cmd, "-m", str(xml), "-d", "CPU", "-shape", f"[1,{height},{width},3]", "-t", str(max(1, round(seconds)))]
    if mode == "sync":
        args += ["-hint", "latency", "-api", "sync"]
    else:
        args += ["-hint", "throughput", "-api", "async"] + (["-nireq", str(requests)] if requests else [])
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120 + 4 * seconds)
    except subprocess.TimeoutExpired:
        raise EdgesharpError(f"benchmark_app on {xml} did not finish in time") from None
    match = THROUGHPUT.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 or match is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EdgesharpError(f"benchmark_app failed on {xml} (exit {proc.returncode}): {tail[0][:200]}")
    return float(match.group(1))


def crosscheck(xml: Path, height: int, width: int, mode: str = "sync", rounds: int = 3, seconds: float = 2.0) -> dict:
    """Alternate our timing and benchmark_app `rounds` times; returns both medians and their ratio."""
    ours, theirs = [], []
    schedule = timing.Schedule(warmup=3, repeats=1, duration=seconds, min_iters=3)
    for _ in range(rounds):
        ours.append(timing.time_openvino(xml, height, width, mode, schedule).fps)
        theirs.append(benchmark_app_fps(xml, height, width, mode, seconds))
    a, b = statistics.median(ours), statistics.median(theirs)
    return {"model": str(xml), "size": f"{width}x{height}", "mode": mode, "ours_fps": round(a, 2),
            "benchmark_app_fps": round(b, 2), "ratio": round(a / b, 3), "ours_runs": ours, "benchmark_app_runs": theirs}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("xml", type=Path)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--mode", choices=["sync", "async"], default="sync")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    w, h = timing.check_size(args.size)
    try:
        r = crosscheck(args.xml, h, w, args.mode, args.rounds, args.seconds)
    except EdgesharpError as exc:
        print(f"crosscheck: error: {exc}", file=sys.stderr)
        return 1
    print(f"{r['size']} {r['mode']}: edgesharp {r['ours_fps']:.2f} FPS, benchmark_app {r['benchmark_app_fps']:.2f} FPS, "
          f"ratio {r['ratio']:.3f}")
    return 0 if abs(r["ratio"] - 1) <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(_main())
