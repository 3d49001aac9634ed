"""The `builtin` image source: offline training images that need no download.

Photographs shipped inside installed packages (scikit-image's `skimage.data`, scikit-learn's sample
images, matplotlib's sample data) plus generated images of video-call content: text rendered with
matplotlib's TrueType fonts at many sizes, slides, UI-like layouts, charts and fine patterns.
Never Kodak24 or the GoPro pairs: those are test sets.

Images are written once as PNG under a cache folder (`$EDGESHARP_CACHE` or `~/.cache/edgesharp`)
and then read like any folder source. Generation is deterministic per (split, index).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgesharp.edge.imaging.samples import package_photographs

log = logging.getLogger(__name__)

VERSION = "v1"
GENERATED_KINDS = ("text", "slide", "ui", "chart", "pattern")
_WORDS_TEXT = (
    "meeting agenda quarterly review roadmap budget design sprint notes action items deadline camera "
    "sharpen network latency frame video call screen share slide chart revenue team update question "
    "answer Monday Tuesday 2025 Q3 +12.5% 1080p 30fps OpenVINO INT8 ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"
)
WORDS = tuple(_WORDS_TEXT.split())


def cache_root() -> Path:
    return Path(os.environ.get("EDGESHARP_CACHE", Path.home() / ".cache" / "edgesharp")) / "builtin" / VERSION


def photographs() -> dict[str, np.ndarray]:
    """Every shipped photograph that can be loaded offline, as uint8 RGB, by name."""
    return package_photographs()


def _font_files() -> list[str]:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(str(p) for p in ttf.glob("*.ttf") if p.stem.startswith(("DejaVu", "STIXGeneral", "cmr10", "cmss10", "cmtt10")) and "Display" not in p.stem)


def _sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def _colour(rng: np.random.Generator, dark: bool) -> tuple[float, float, float]:
    base = rng.uniform(0.0, 0.35, 3) if dark else rng.uniform(0.75, 1.0, 3)
    return tuple(float(c) for c in base)


def generate(kind: str, seed: int, width: int = 512, height: int = 384) -> np.ndarray:
    """One generated image of video-call content (uint8 RGB, height x width), deterministic in `seed`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import FancyBboxPatch, Rectangle

    rng = np.random.default_rng([seed, GENERATED_KINDS.index(kind)])
    fonts = _font_files()

    chosen: list[str] = []

    def font() -> FontProperties:
        if not fonts:
            return FontProperties()
        chosen.append(fonts[int(rng.integers(len(fonts)))])
        return FontProperties(fname=chosen[-1])

    def bullet() -> str:
        return "\u2022 " if chosen and "DejaVu" in chosen[-1] else "- "

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    dark_bg = rng.random() < 0.3
    bg, fg = _colour(rng, dark_bg), _colour(rng, not dark_bg)
    fig.patch.set_facecolor(bg)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    if kind == "text":
        y = float(rng.uniform(5, 20))
        while y < height:
            size = float(rng.choice([6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 22, 28, 36]))
            ax.text(float(rng.uniform(2, 40)), y, _sentence(rng, int(rng.integers(3, 12))), fontproperties=font(),
                    fontsize=size, color=fg, va="top")
            y += size * 1.4 + float(rng.uniform(0, 8))
    elif kind == "slide":
        ax.add_patch(Rectangle((0, 0), width, height * 0.18, color=_colour(rng, True)))
        ax.text(20, height * 0.09, _sentence(rng, 4).title(), fontproperties=font(), fontsize=float(rng.uniform(18, 30)),
                color=_colour(rng, False), va="center")
        for i in range(int(rng.integers(3, 7))):
            f = font()
            ax.text(40, height * 0.25 + i * float(rng.uniform(26, 40)), bullet() + _sentence(rng, int(rng.integers(3, 8))),
                    fontproperties=f, fontsize=float(rng.uniform(10, 18)), color=fg, va="top")
        if rng.random() < 0.6:
            x0 = width * 0.62
            ax.add_patch(FancyBboxPatch((x0, height * 0.3), width * 0.33, height * 0.55, boxstyle="round,pad=4",
                                        facecolor=_colour(rng, rng.random() < 0.5), edgecolor=fg, linewidth=1.5))
    elif kind == "ui":
        ax.add_patch(Rectangle((0, 0), width, 28, color=_colour(rng, True)))
        ax.add_patch(Rectangle((0, 28), width * 0.22, height, color=_colour(rng, rng.random() < 0.5)))
        for i in range(int(rng.integers(6, 14))):
            ax.text(8, 44 + i * 22, _sentence(rng, 2), fontproperties=font(), fontsize=9, color=fg, va="top")
        for _ in range(int(rng.integers(4, 10))):
            x, y = float(rng.uniform(width * 0.25, width * 0.85)), float(rng.uniform(min(40, height / 3), max(height / 3 + 1, height - 40)))
            w, h = float(rng.uniform(60, 160)), float(rng.uniform(18, 36))
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=2", facecolor=_colour(rng, rng.random() < 0.5),
                                        edgecolor=_colour(rng, True), linewidth=1))
            ax.text(x + 6, y + h / 2, _sentence(rng, 2), fontproperties=font(), fontsize=float(rng.uniform(7, 12)),
                    color=fg, va="center")
    elif kind == "chart":
        inner = fig.add_axes((0.1, 0.12, 0.85, 0.78))
        inner.set_facecolor(bg)
        x = np.arange(int(rng.integers(5, 25)))
        for _ in range(int(rng.integers(1, 4))):
            y = np.cumsum(rng.normal(0, 1, x.size))
            if rng.random() < 0.4:
                inner.bar(x + rng.uniform(-0.3, 0.3), y, width=0.3)
            else:
                inner.plot(x, y, lw=rng.uniform(0.8, 2.5), marker="o", ms=3)
        if rng.random() < 0.7:
            inner.grid(True, lw=0.5)
        inner.set_title(_sentence(rng, 3), fontproperties=font(), color=fg)
        inner.tick_params(colors=fg, labelsize=float(rng.uniform(6, 11)))
    elif kind == "pattern":
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        f1, f2 = rng.uniform(0.05, 0.9, 2)
        theta = rng.uniform(0, np.pi)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        r = np.hypot(xx - width / 2, yy - height / 2)
        choice = int(rng.integers(4))
        if choice == 0:
            field_ = np.sin(u * f1)
        elif choice == 1:
            field_ = np.sign(np.sin(xx * f1)) * np.sign(np.sin(yy * f2))
        elif choice == 2:
            field_ = np.sin(r * r * f1 * 0.002)
        else:
            field_ = np.sin(u * f1) + np.sin(r * f2)
        t = (field_ - field_.min()) / (np.ptp(field_) + 1e-6)
        c0, c1 = np.array(_colour(rng, True)), np.array(_colour(rng, False))
        return np.clip((c0 + t[..., None] * (c1 - c0)) * 255, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unknown generated kind {kind!r}; choose one of {GENERATED_KINDS}")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def ensure_builtin(split: str = "train", count: int = 200, root: str | os.PathLike | None = None) -> Path:
    """Write the builtin images for `split` (train: photographs + `count` generated; val: `count`
    generated with seeds unseen in training) once; returns the folder."""
    from edgesharp.edge.imaging.io import write_image

    folder = Path(root) if root else cache_root() / f"{split}-{count}"
    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if split == "train":
        for name, img in photographs().items():
            write_image(folder / f"{name}.png", img)
        offset = 0
    elif split == "val":
        offset = 1_000_000
    else:
        raise ValueError(f"unknown builtin split {split!r}; choose train or val")
    for i in range(count):
        kind = GENERATED_KINDS[i % len(GENERATED_KINDS)]
        path = folder / f"gen_{kind}_{i:05d}.png"
        if not path.is_file():
            write_image(path, generate(kind, offset + i))
    done.write_text("ok\n")
    log.info("builtin %s images ready in %s", split, folder)
    return folder
