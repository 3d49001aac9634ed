"""`edgesharp degrade`: blur a folder of sharp images with the evaluation protocol (or a training subset)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  edgesharp degrade ../shared/data/kodak24 blurred --level all --score
  edgesharp degrade photos/ blurred-heavy --level heavy --seed 3
  edgesharp degrade photos/ train-like --subset 7
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("input_dir", type=Path, help="folder of sharp images")
    parser.add_argument("output_dir", type=Path, help="where the blurred PNGs go (same stems)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--level", choices=["heavy", "medium", "low", "all"], default="all",
                      help="evaluation blur level; 'all' writes one subfolder per level (default: all)")
    what.add_argument("--subset", type=int, choices=[1, 3, 5, 7, 9],
                      help="a training degradation subset instead of an evaluation level")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-image parameters (default 0)")
    parser.add_argument("--score", action="store_true",
                        help="print mean SSIM/PSNR of the blurred images against the sharp ones")


def degrade_folder(input_dir: Path, output_dir: Path, level: str | None, subset: int | None, seed: int) -> dict:
    """Write degraded PNGs and `degradation.json`; unreadable inputs are skipped and listed."""
    from edgesharp.edge.errors import EdgesharpError, ImageReadError
    from edgesharp.edge.imaging.degrade import degrade_level, degrade_subset, level_rng
    from edgesharp.edge.imaging.io import list_images, read_image, write_image

    images = list_images(input_dir)
    if not images:
        raise EdgesharpError(f"{input_dir}: no images found ({', '.join(('.png', '.jpg', '...'))})")
    record: dict = {"input_dir": str(input_dir), "seed": seed, "images": {}, "skipped": {}}
    if subset is not None:
        record["subset"] = subset
    else:
        record["level"] = level
    output_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(images, 1):
        try:
            img = read_image(path)
        except ImageReadError as exc:
            log.warning("skipping %s", exc)
            record["skipped"][path.name] = str(exc)
            continue
        if subset is not None:
            rng = level_rng(path.stem, f"subset{subset}", seed)
            out, params = degrade_subset(img, subset, rng)
        else:
            out, params = degrade_level(img, level, path.stem, seed)
        write_image(output_dir / f"{path.stem}.png", out)
        record["images"][path.stem] = params
        log.info("[%d/%d] %s %s", i, len(images), path.name, {k: v for k, v in params.items() if k != "steps"})
    (output_dir / "degradation.json").write_text(json.dumps(record, indent=2))
    return record


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.imaging.metrics import score_folders

    if args.subset is not None:
        targets = [(None, args.output_dir)]
    elif args.level == "all":
        targets = [(lv, args.output_dir / lv) for lv in ("heavy", "medium", "low")]
    else:
        targets = [(args.level, args.output_dir)]
    for level, out_dir in targets:
        record = degrade_folder(args.input_dir, out_dir, level, args.subset, args.seed)
        label = level or f"subset {args.subset}"
        line = f"{label}: {len(record['images'])} images -> {out_dir}"
        if record["skipped"]:
            line += f" ({len(record['skipped'])} unreadable, skipped)"
        if args.score and record["skipped"]:
            line += "  (not scored: some inputs were unreadable)"
        elif args.score:
            score = score_folders(out_dir, args.input_dir)
            line += f"  SSIM {score.mean_ssim:.4f}  PSNR {score.mean_psnr:.2f} dB"
        print(line)
    return 0
