"""Step 6: every precision of a bundle scored under every CPU kernel class this machine can run.

The guard of step 5 scores INT8 on this machine's own kernels. Users run other ones: oneDNN's INT8
convolutions saturate without VNNI (`edgesharp.calibrate.overflow`), and CPUs with AVX512_BF16 or AMX run float layers in
bfloat16. Here each class (`edgesharp.edge.backends.cpu_classes`) runs in a child process with oneDNN capped at its
instruction set (the cap is read once, when the library loads), through the runtime's own `open_backend`, on the
guard set: validation images at the three blur levels, darkened (8-bit values x0.5) and low-contrast (x0.5
around the mean) copies, and full-size frames. A precision passes a class when

- no group of the guard set (level x variant) loses more than `max_ssim_drop` mean SSIM against FP32, and
- no image falls below its blurred input (by more than `below_input_tolerance`) where FP32 does not (FP32 at or
  above the input).

Each child also times the precisions at 1280x720 (model only, every request busy), so that `--precision auto`
(`edgesharp.edge.backends.precision_choice`) can take the fastest precision that passed, and runs the bundle's
self-check frame, whose error the runtime's start-up check is bounded by.

    python -m edgesharp.calibrate.classes BUNDLE --images ../shared/data/train_photos --write
                                    # score a bundle on this machine's classes, merge them into its manifest
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesharp.edge.backends.cpu_classes import BY_NAME, KERNEL_CLASSES, detect, runnable_classes
from edgesharp.edge.backends.openvino_core import ISA_CAP_VARIABLE
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.imaging.degrade import LEVELS, contrast, degrade_level, exposure

log = logging.getLogger(__name__)

GUARD_CROP = 256
LARGE_SIZE = (720, 1280)  # height, width of the full-size frames
LARGE_COUNT = 4
TIMING_SIZE = (720, 1280)
CHILD_TIMEOUT_S = 900
PRECISION_ORDER = ("int8", "fp16", "fp32")  # fastest-looking first; ties in speed go to the later (more exact) one
SPEED_TIE = 0.03  # precisions within 3 % of the fastest count as equally fast
# SSIM by which a precision may fall below an image's blurred input where FP32 does not (where FP32 is at or above
# it): a stated margin for the rounding of a few 8-bit levels, not a loss of sharpening
BELOW_INPUT_TOLERANCE = 0.0005


@dataclass(frozen=True)
class GuardSample:
    name: str
    group: str  # "heavy", "dark-heavy", "low-contrast-heavy", "large-heavy", ...
    blurred: np.ndarray  # RGB uint8
    sharp: np.ndarray


def _center(img: np.ndarray, h: int, w: int) -> np.ndarray:
    y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def guard_samples(images: list[tuple[str, np.ndarray]], large: list[tuple[str, np.ndarray]] | None = None,
                  crop: int = GUARD_CROP) -> list[GuardSample]:
    """The guard set: each image's central square (`crop`, or the smallest image's side if less: one size, one
    compiled model) at every level, darkened at every level, low-contrast at heavy; and up to LARGE_COUNT of
    `large` (full-size photos) as 1280x720 frames at heavy."""
    out: list[GuardSample] = []
    crop = min([crop] + [min(img.shape[:2]) for _, img in images])
    for name, img in images:
        sharp = _center(img, crop, crop)
        for variant, fn, levels in (("", None, LEVELS), ("dark-", lambda x: exposure(x, 0.5), LEVELS),
                                   ("low-contrast-", lambda x: contrast(x, 0.5), ("heavy",))):
            base = fn(sharp) if fn else sharp
            for level in levels:
                blurred, _ = degrade_level(base, level, name)
                out.append(GuardSample(name, f"{variant}{level}", blurred, base))
    big = [(n, img) for n, img in (large or []) if img.shape[0] >= LARGE_SIZE[0] and img.shape[1] >= LARGE_SIZE[1]]
    for name, img in big[:LARGE_COUNT]:
        sharp = _center(img, *LARGE_SIZE)
        blurred, _ = degrade_level(sharp, "heavy", name)
        out.append(GuardSample(name, "large-heavy", blurred, sharp))
    if not out:
        raise EdgesharpError("no guard samples: no validation images")
    return out


def save_samples(samples: list[GuardSample], path: Path) -> None:
    arrays = {}
    for i, s in enumerate(samples):
        arrays[f"b{i}"], arrays[f"s{i}"] = s.blurred, s.sharp
    meta = json.dumps([[s.name, s.group] for s in samples])
    np.savez(path, meta=np.array(meta), **arrays)


def load_samples(path: Path) -> list[GuardSample]:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        return [GuardSample(n, g, data[f"b{i}"], data[f"s{i}"]) for i, (n, g) in enumerate(meta)]


# -- the child: one class, in a process of its own -----------------------------------------------------------

def _bundle_view(folder: Path, manifest: dict):
    from edgesharp.edge.bundle import Bundle

    return Bundle(path=folder, manifest=manifest)


def _outputs_ssim(backend, samples: list[GuardSample]) -> list[float]:
    from edgesharp.edge.imaging.metrics import ssim

    scores = []
    for s in samples:
        out = backend.infer(np.ascontiguousarray(s.blurred[..., ::-1]))
        scores.append(ssim(s.sharp, np.ascontiguousarray(out[..., ::-1])))
    return scores


def _throughput(bundle, precisions: list[str], seconds: float, rounds: int) -> dict[str, float]:
    """Frames per second of each precision at TIMING_SIZE, every request busy; rounds alternate precisions."""
    from edgesharp.edge.backends import open_backend

    frame = np.random.default_rng(0).integers(0, 256, (*TIMING_SIZE, 3), dtype=np.uint8)
    backends = {p: open_backend(bundle, "openvino", p, self_check=False, hint="throughput") for p in precisions}
    fps: dict[str, list[float]] = {p: [] for p in precisions}
    try:
        for b in backends.values():
            b.warmup(TIMING_SIZE[1], TIMING_SIZE[0])
            for _ in range(b.num_requests):
                b.submit(frame, None)
            b.wait_all()
            list(b.results(timeout=0))
        for _ in range(rounds):
            for p, b in backends.items():
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    b.submit(frame, n)
                    n += 1
                b.wait_all()
                fps[p].append(n / (time.perf_counter() - t0))
                list(b.results(timeout=0))
    finally:
        for b in backends.values():
            b.close()
    return {p: float(statistics.median(v)) for p, v in fps.items()}


def child(spec_path: Path) -> dict:
    """Run one class (this process's cap) and return what it measured."""
    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.backends.self_check import reference_error

    spec = json.loads(spec_path.read_text())
    folder = Path(spec["folder"])
    bundle = _bundle_view(folder, spec["manifest"])
    samples = load_samples(Path(spec["samples"]))
    result: dict = {"detected": detect().name, "precisions": {}}
    for p in spec["precisions"]:
        backend = open_backend(bundle, "openvino", p, self_check=False, hint="latency", requests=1)
        try:
            entry = {"ssim": _outputs_ssim(backend, samples)}
            entry["inference_precision"] = backend.describe().get("inference_precision_hint")
            if spec.get("self_check"):
                entry["self_check_error"] = reference_error(backend, folder, spec["self_check"])
        finally:
            backend.close()
        result["precisions"][p] = entry
    if spec.get("timing_seconds"):
        result["fps"] = _throughput(bundle, spec["precisions"], spec["timing_seconds"], spec.get("timing_rounds", 3))
    return result


# -- the parent -------------------------------------------------------------------------------------------------

def _run_child(cls_name: str, cap: str | None, spec: dict, scratch: Path) -> dict:
    spec_path = scratch / f"spec-{cls_name}.json"
    out_path = scratch / f"result-{cls_name}.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.pop(ISA_CAP_VARIABLE, None)
    if cap:
        env[ISA_CAP_VARIABLE] = cap
    cmd = [sys.executable, "-m", "edgesharp.calibrate.classes", "--child", str(spec_path), str(out_path)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if proc.returncode != 0 or not out_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"error": f"the class's process failed (exit code {proc.returncode}): {tail[0]}"}
    return json.loads(out_path.read_text())


def judge_class(samples: list[GuardSample], reference: list[float], inputs: list[float], scores: list[float],
                max_drop: float, below_tolerance: float) -> dict:
    """The two criteria for one precision on one class (see the module docstring)."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.group, []).append(i)
    drops = {g: float(np.mean([reference[i] for i in idx]) - np.mean([scores[i] for i in idx])) for g, idx in groups.items()}
    # FP32 at or above the input, the precision more than `below_tolerance` under it
    below = [f"{samples[i].name} {samples[i].group} ({scores[i] - inputs[i]:+.4f}; FP32 {reference[i] - inputs[i]:+.4f})"
             for i in range(len(samples)) if scores[i] < inputs[i] - below_tolerance and reference[i] >= inputs[i]]
    worst = max(drops, key=drops.get)
    failures = []
    if drops[worst] > max_drop:
        failures.append(f"{worst} loses {drops[worst]:.4f} SSIM (limit {max_drop:g})")
    if below:
        failures.append(f"{len(below)} image(s) below their blurred input where FP32 is not ({', '.join(below[:3])})")
    return {"passed": not failures, "failures": failures, "worst_group": worst, "worst_drop": drops[worst],
            "drops": drops, "below_input": below}


def choose_auto(entry: dict) -> str | None:
    """The precision `auto` takes on a class: the fastest that passed; within SPEED_TIE of it, the more exact."""
    passed = [p for p in PRECISION_ORDER if entry["precisions"].get(p, {}).get("passed")]
    if not passed:
        return None
    fps = entry.get("fps") or {}
    timed = [p for p in passed if fps.get(p)]
    if not timed:
        return passed[-1]  # no timing: the most exact that passed
    best = max(fps[p] for p in timed)
    fast_enough = [p for p in timed if fps[p] >= best * (1 - SPEED_TIE)]
    return fast_enough[-1]


def check_classes(folder: Path, manifest: dict, samples: list[GuardSample], reference: list[float], inputs: list[float],
                  max_drop: float, below_tolerance: float = BELOW_INPUT_TOLERANCE, classes: list[str] | None = None,
                  self_check: dict | None = None, timing_seconds: float = 1.5) -> dict:
    """Score `manifest`'s OpenVINO precisions (the folder's files) under each class: {"classes": {...}, ...}.

    `reference` and `inputs` are the FP32 and blurred-input SSIM of each sample. Classes this CPU cannot run are
    left out; a class whose process fails or whose cap does not take is recorded as not checked."""
    runnable = [k.name for k in runnable_classes()]
    wanted = classes or runnable
    unknown = [c for c in wanted if c not in BY_NAME]
    if unknown:
        raise EdgesharpError(f"unknown CPU class {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    top = runnable[-1] if runnable else None
    precisions = [p for p in PRECISION_ORDER if "openvino" in manifest["precisions"].get(p, {})]
    # an FP32 request on a slim bundle runs the FP16 IR in f32: worth scoring only where float runs in bf16
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgesharp-classes-") as scratch_dir:
        scratch = Path(scratch_dir)
        samples_path = scratch / "samples.npz"
        save_samples(samples, samples_path)
        for name in wanted:
            cls = BY_NAME[name]
            if name not in runnable:
                log.info("  class %s: not runnable on this CPU (needs %s)", name, ", ".join(cls.flags))
                continue
            ps = list(precisions) + (["fp32"] if cls.bf16 and "fp32" not in precisions else [])
            spec = {"folder": str(folder), "manifest": manifest, "samples": str(samples_path), "precisions": ps,
                    "self_check": self_check, "timing_seconds": timing_seconds}
            t0 = time.perf_counter()
            result = _run_child(name, None if name == top else cls.onednn_isa, spec, scratch)
            seconds = time.perf_counter() - t0
            if "error" in result or result.get("detected") != name:
                why = result.get("error") or f"the cap gave class {result.get('detected')}, not {name}"
                log.warning("  class %s: not checked: %s", name, why)
                report[name] = {"checked": False, "why": why}
                continue
            entry = {"checked": True, "cap": None if name == top else cls.onednn_isa, "seconds": round(seconds, 1),
                     "precisions": {}, "fps_1280x720": result.get("fps")}
            for p, r in result["precisions"].items():
                verdict = judge_class(samples, reference, inputs, r["ssim"], max_drop, below_tolerance)
                verdict["inference_precision"] = r.get("inference_precision")
                if "self_check_error" in r:
                    verdict["self_check_error"] = r["self_check_error"]
                entry["precisions"][p] = verdict
            entry["auto"] = choose_auto({"precisions": entry["precisions"], "fps": entry["fps_1280x720"]})
            report[name] = entry
            log.info("  class %s: %s; auto -> %s (%.0f s)", name, "; ".join(
                f"{p} {'pass' if v['passed'] else 'FAIL'} (worst {v['worst_group']} {v['worst_drop']:+.4f}, "
                f"{len(v['below_input'])} below input"
                + (f", {entry['fps_1280x720'][p]:.1f} fps" if entry.get('fps_1280x720') else "") + ")"
                for p, v in entry["precisions"].items()), entry["auto"], seconds)
    return {"classes": report, "max_ssim_drop": max_drop, "below_input_tolerance": below_tolerance,
            "checked_on": {"cpu": _cpu_model(), "native_class": top,
                           "date": time.strftime("%Y-%m-%d")},
            "samples": len(samples), "groups": sorted({s.group for s in samples})}


def _cpu_model() -> str:
    """The CPU's name as OpenVINO reports it (every OS), else the machine type."""
    from edgesharp.edge.backends.openvino_core import shared_core

    try:
        return str(shared_core().get_property("CPU", "FULL_DEVICE_NAME")) or platform.machine()
    except RuntimeError:
        return platform.machine()


def reference_scores(folder: Path, manifest: dict, samples: list[GuardSample]) -> tuple[list[float], list[float]]:
    """(FP32, blurred input) SSIM of each sample, FP32 computed natively in f32 through the runtime."""
    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.imaging.metrics import ssim

    backend = open_backend(_bundle_view(folder, manifest), "openvino", "fp32", self_check=False, hint="latency", requests=1)
    try:
        reference = _outputs_ssim(backend, samples)
    finally:
        backend.close()
    return reference, [ssim(s.sharp, s.blurred) for s in samples]


def self_check_frame(samples: list[GuardSample], tile: int = 128) -> np.ndarray:
    """A 2x2 mosaic (BGR) of the `tile`-square centres of four images' heavy samples (heavy blur drives the
    activations that INT8 gets wrong first; docs/int8-on-every-cpu.md has the errors seen on such a frame)."""
    picks, used = [], set()
    for s in samples:
        if len(picks) < 4 and s.group == "heavy" and s.name not in used and min(s.blurred.shape[:2]) >= tile:
            picks.append(_center(s.blurred, tile, tile))
            used.add(s.name)
    while len(picks) < 4:
        picks.append(picks[-1] if picks else np.full((tile, tile, 3), 128, np.uint8))
    mosaic = np.vstack([np.hstack(picks[:2]), np.hstack(picks[2:])])
    return np.ascontiguousarray(mosaic[..., ::-1])


def write_self_check(folder: Path, manifest: dict, samples: list[GuardSample]) -> dict:
    """Write the self-check frame and its FP32 output into `folder`; the manifest's `self_check` entry (the
    tolerance is set from the class results by `self_check_tolerance`)."""
    import cv2

    from edgesharp.edge.backends import open_backend
    from edgesharp.edge.backends.self_check import INPUT_FILE, OUTPUT_FILE

    frame = self_check_frame(samples)
    backend = open_backend(_bundle_view(folder, manifest), "openvino", "fp32", self_check=False, hint="latency", requests=1)
    try:
        out = backend.infer(frame)
    finally:
        backend.close()
    for name, img in ((INPUT_FILE, frame), (OUTPUT_FILE, out)):
        if not cv2.imwrite(str(folder / name), img):
            raise EdgesharpError(f"{folder / name}: cannot write the self-check frame")
    return {"input": INPUT_FILE, "output": OUTPUT_FILE, "metric": "mean absolute difference, 8-bit levels"}


def self_check_tolerance(result: dict, factor: float = 2.0) -> float:
    """`factor` times the largest self-check error of a precision that passed on a checked class (at least the
    runtime's floor)."""
    from edgesharp.edge.backends.self_check import MIN_TOLERANCE

    errors = [v["self_check_error"] for e in result["classes"].values() if e.get("checked")
              for v in e["precisions"].values() if v.get("passed") and "self_check_error" in v]
    return round(max([MIN_TOLERANCE] + [factor * e for e in errors]), 3)


def score_bundle_classes(bundle_path: Path, images: Path, downscale_by: float = 2.0, classes: list[str] | None = None,
                         max_drop: float | None = None, write: bool = False) -> dict:
    """Check an existing bundle on this machine's classes (guard set: the validation split of `images`); with
    `write`, merge the result into its manifest (and add a self-check frame if it has none)."""
    from edgesharp.calibrate.bundle_writer import dump_json
    from edgesharp.calibrate.data import folder_images
    from edgesharp.edge.bundle import MANIFEST, file_entry, load_bundle

    bundle = load_bundle(bundle_path)
    manifest = dict(bundle.manifest)
    limit = max_drop if max_drop is not None else float(manifest.get("max_ssim_drop", 0.006))
    samples = guard_samples(folder_images(images, None, "val", downscale_by), folder_images(images, None, "val", 1.0))
    reference, inputs = reference_scores(bundle.path, manifest, samples)
    spec = manifest.get("self_check")
    if spec is None and write:
        spec = write_self_check(bundle.path, manifest, samples)
    result = check_classes(bundle.path, manifest, samples, reference, inputs, limit, classes=classes, self_check=spec)
    if write:
        merged = merge(manifest.get("kernel_classes"), result)
        manifest["kernel_classes"] = merged
        manifest["self_check"] = {**spec, "tolerance": self_check_tolerance(merged)}
        for name in (spec["input"], spec["output"]):
            manifest["files"][name] = file_entry(bundle.path / name)
        dump_json(bundle.path / MANIFEST, manifest)
        load_bundle(bundle.path)
    return result


def failed_classes(result: dict, precision: str = "int8") -> list[str]:
    """The checked classes on which `precision` failed."""
    return [n for n, e in result["classes"].items() if e.get("checked") and not e["precisions"].get(precision, {}).get("passed", True)]


def merge(old: dict | None, new: dict) -> dict:
    """Class results of an earlier check, updated by a later one (another machine adds the classes it can run)."""
    if not old:
        return new
    merged = dict(new)
    merged["classes"] = {**old.get("classes", {}), **{n: e for n, e in new["classes"].items() if e.get("checked")}}
    merged["checked_on"] = [*(old["checked_on"] if isinstance(old.get("checked_on"), list) else [old.get("checked_on")]),
                            new["checked_on"]]
    return merged


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        result = child(Path(argv[1]))
        Path(argv[2]).write_text(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(prog="python -m edgesharp.calibrate.classes", description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--images", type=Path, required=True, help="photo folder whose validation split is the guard set")
    p.add_argument("--downscale", type=float, default=2.0, help="area-downscale factor of the photos (default 2)")
    p.add_argument("--classes", nargs="+", choices=[k.name for k in KERNEL_CLASSES], help="default: every runnable class")
    p.add_argument("--write", action="store_true", help="merge the result into the bundle's manifest")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    result = score_bundle_classes(args.bundle, args.images, args.downscale, args.classes, write=args.write)
    print(json.dumps({n: e.get("auto") if e.get("checked") else "not checked" for n, e in result["classes"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
