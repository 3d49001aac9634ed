"""A PNG of the training loss and validation SSIM curves from `log.jsonl` (matplotlib imported lazily)."""

from __future__ import annotations

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
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    return png_path
