"""PNGs of training curves from `log.jsonl` files (matplotlib imported lazily): one run's loss and validation
SSIM, or several runs' validation SSIM side by side, one panel a level.

    python -m edgesharp.train.curves --out docs/quality-ceiling.png "v12 on CPU=runs/cpu-nearsharp/log.jsonl" ...
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def read_log(path: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    train, val = [], []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            (val if "val" in rec else train).append(rec)
    return train, val


def plot_curves(log_path: str | os.PathLike, png_path: str | os.PathLike) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train, val = read_log(log_path)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 1)
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
    ax.set(xlabel="step", ylabel="loss", title="training loss", yscale="log")
    ax.grid(True, alpha=0.3)
    ax2 = fig.add_subplot(1, 2, 2)
    if val:
        levels = [k for k in val[0]["val"] if k != "mean_ssim"]
        for lv in levels:
            ax2.plot([r["step"] for r in val], [r["val"][lv]["ssim"] for r in val], marker="o", label=lv)
        ax2.legend()
    ax2.set(xlabel="step", ylabel="SSIM", title="validation SSIM")
    ax2.grid(True, alpha=0.3)
    return _save(fig, png_path)


def _save(fig, png_path: str | os.PathLike) -> Path:
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    return png_path


def compare_curves(runs: dict[str, str | os.PathLike], png_path: str | os.PathLike,
                   marks: dict[str, dict[str, float]] | None = None) -> Path:
    """Validation SSIM of several runs (label -> log.jsonl) against step, one panel a level; `marks` draws
    horizontal reference lines (label -> {level: SSIM}), e.g. the shipped model's scores."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    vals = {label: read_log(path)[1] for label, path in runs.items()}
    empty = [str(runs[label]) for label, val in vals.items() if not val]
    if empty:
        raise ValueError(f"no validation records in {', '.join(empty)}")
    levels = [k for k in next(iter(vals.values()))[0]["val"] if k != "mean_ssim"]
    fig = Figure(figsize=(5 * len(levels), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    for i, lv in enumerate(levels):
        ax = fig.add_subplot(1, len(levels), i + 1)
        for label, val in vals.items():
            ax.plot([r["step"] for r in val], [r["val"][lv]["ssim"] for r in val], marker="o", ms=3, label=label)
        for j, (label, scores) in enumerate((marks or {}).items()):
            if lv in scores:
                ax.axhline(scores[lv], color="k", lw=1, ls=("--", ":", "-.")[j % 3], label=label)
        ax.set(xlabel="step", ylabel="SSIM", title=f"validation SSIM, {lv} blur")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    return _save(fig, png_path)


def _pair(text: str, what: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label or not value:
        raise argparse.ArgumentTypeError(f"{what} must be LABEL=VALUE, got {text!r}")
    return label, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgesharp.train.curves",
                                     description="Several runs' validation SSIM in one PNG, a panel a level.")
    parser.add_argument("runs", nargs="+", type=lambda t: _pair(t, "a run"), help="LABEL=path/to/log.jsonl")
    parser.add_argument("--mark", action="append", default=[], type=lambda t: _pair(t, "--mark"),
                        help="LABEL=HEAVY,MEDIUM,LOW: a reference line per level (repeatable)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    marks = {}
    for label, text in args.mark:
        try:
            marks[label] = dict(zip(("heavy", "medium", "low"), (float(v) for v in text.split(",")), strict=True))
        except ValueError:
            parser.error(f"--mark {label}: expected three comma-separated SSIMs, got {text!r}")
    for label, path in args.runs:
        if not Path(path).is_file():
            parser.error(f"{path}: no such log (run {label!r})")
    try:
        print(compare_curves(dict(args.runs), args.out, marks))
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
