"""`edgesharp train`: distil a student (CONFIG.yaml), prepare patches, cache teacher outputs, list students.

Only argparse is imported here; torch and the training modules load inside `main`.
"""

from __future__ import annotations

import argparse
import os
import sys

COMMANDS = ("prepare", "cache-teacher", "slim", "archs")

EPILOG = """\
usage forms:
  edgesharp train CONFIG.yaml [--resume] [--set KEY=VALUE ...]
  edgesharp train prepare INPUT [INPUT ...] --out DIR [--size 256] [--degrade 1 3 5 7]
  edgesharp train cache-teacher --teacher WEIGHTS --inputs DIR --out DIR [--tile 512]
  edgesharp train slim CHECKPOINT --out FILE [--half]
  edgesharp train archs

examples:
  edgesharp train train/configs/seed.yaml --set out_dir=runs/seed
  edgesharp train train/configs/finetune-cpu.yaml --set data.sources.0.path=~/photos --set init_from=best.pt
  edgesharp train runs/seed/config.yaml --resume
  torchrun --nproc_per_node 4 -m edgesharp.train train/configs/seed.yaml     # DistributedDataParallel
  edgesharp train prepare data/DIV2K_train_HR --out data/patches
  edgesharp train cache-teacher --teacher Restormer_motion_deblurring.pth --inputs data/pairs --out data/teacher
  edgesharp train slim runs/gpu-teacher/last.pt --out teacher.pt --half      # weights only, to copy or ship
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = "Distil a student network from a teacher; prepare training patches; cache teacher outputs."
    parser.epilog = EPILOG
    parser.add_argument("target", metavar="CONFIG.yaml|prepare|cache-teacher|slim|archs",
                        help="a training config (YAML overriding train/config.py defaults) or a helper command")
    parser.add_argument("--resume", action="store_true", help="continue out_dir/last.pt exactly")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set phases.0.steps=1000 (repeatable)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesharp train", description="Run a training config.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML file overriding the defaults in train/config.py")
    p.add_argument("--resume", action="store_true", help="continue out_dir/last.pt exactly")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set optim.ema_decay=0.999")
    p.add_argument("--stop-at-step", type=int, default=None, help="stop (and save last.pt) at this global step")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return p


def _prepare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesharp train prepare",
                                description="Cut images into non-overlapping square PNG patches, as the seed did.")
    p.add_argument("inputs", nargs="+", help="image folders (searched recursively) or files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=256, help="patch side (default 256)")
    p.add_argument("--degrade", type=int, nargs="+", metavar="SUBSET",
                   help="also degrade each patch with one of these training subsets and write out/sharp + out/blur "
                        "(GoPro layout, usable with a cached teacher)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _cache_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesharp train cache-teacher",
                                description="Run a teacher once over fixed inputs and write <key>.png per input (resumable).")
    p.add_argument("--teacher", required=True, help="spandrel-loadable weights (.pth/.safetensors) or an edgesharp checkpoint")
    p.add_argument("--inputs", required=True, help="GoPro-layout folder, RealBlur list file, or folder of degraded images")
    p.add_argument("--out", required=True, help="output folder of teacher outputs")
    p.add_argument("--kind", choices=("spandrel", "student"), default=None, help="teacher kind (default: detected)")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--device", default="auto")
    return p


def _slim_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesharp train slim",
                                description="Keep a checkpoint's weights (EMA when present), architecture, config and "
                                            "metrics; drop the optimizer and RNG states that only resuming needs.")
    p.add_argument("checkpoint", help="an edgesharp checkpoint (last.pt, best.pt)")
    p.add_argument("--out", required=True, help="the slim checkpoint to write")
    p.add_argument("--half", action="store_true", help="store float16 weights (half the size; loaded back as float32)")
    return p


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.extras import require

    require("torch", "edgesharp train")
    require("yaml", "edgesharp train")
    if args.target == "prepare":
        return _prepare(_prepare_parser().parse_args(args.rest))
    if args.target == "cache-teacher":
        return _cache_teacher(_cache_parser().parse_args(args.rest))
    if args.target == "slim":
        a = _slim_parser().parse_args(args.rest)
        from edgesharp.train.checkpoint import slim_checkpoint

        out = slim_checkpoint(a.checkpoint, a.out, a.half)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        return 0
    if args.target == "archs":
        from edgesharp.train.models.__main__ import main as list_archs

        return list_archs()
    run = _run_parser().parse_args([args.target, *args.rest])
    if run.quiet or run.verbose:  # -q/-v given after CONFIG.yaml
        import logging

        logging.getLogger().setLevel(logging.WARNING if run.quiet else logging.DEBUG)
    return _train(run.config, args.resume or run.resume, [*args.overrides, *run.overrides], run.stop_at_step)


def _train(config: str, resume: bool, overrides: list[str], stop_at_step: int | None) -> int:
    from edgesharp.edge.extras import require

    require("tqdm", "edgesharp train")
    from edgesharp.train.config import load_config
    from edgesharp.train.loop import train

    cfg = load_config(config, overrides)
    result = train(cfg, resume=resume, stop_at_step=stop_at_step)
    if int(os.environ.get("RANK", "0")) == 0:
        best = f", best mean SSIM {result.best_ssim:.4f}" if result.best_ssim is not None else ""
        print(f"{result.status} at step {result.step}{best}; checkpoints in {result.out_dir}")
    return 130 if result.status == "interrupted" else 0


def _prepare(a: argparse.Namespace) -> int:
    from edgesharp.train.data import prepare_patches

    stats = prepare_patches(a.inputs, a.out, a.size, a.degrade, a.seed, progress=sys.stderr.isatty())
    print(f"{stats['patches']} patches from {stats['images']} images in {a.out} "
          f"({stats['unreadable']} unreadable, {stats['too_small']} smaller than {a.size}px, "
          f"{stats['skipped_existing']} already there)")
    return 0


def _cache_teacher(a: argparse.Namespace) -> int:
    from edgesharp.edge.extras import require

    require("spandrel", "edgesharp train cache-teacher")
    from edgesharp.train.distributed import pick_device
    from edgesharp.train.teachers import SpandrelTeacher, StudentTeacher, cache_teacher_outputs

    device = pick_device(a.device)
    kind = a.kind or ("student" if _is_edgesharp_checkpoint(a.teacher) else "spandrel")
    if kind == "student":
        teacher = StudentTeacher(a.teacher, device, a.tile, a.overlap)
    else:
        teacher = SpandrelTeacher(a.teacher, device, a.tile, a.overlap)
    stats = cache_teacher_outputs(teacher, a.inputs, a.out, progress=True)
    print(f"{teacher.name}: {stats['written']} outputs written, {stats['skipped']} already cached, in {a.out}")
    return 0


def _is_edgesharp_checkpoint(path: str) -> bool:
    import torch

    from edgesharp.train.checkpoint import FORMAT

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT
