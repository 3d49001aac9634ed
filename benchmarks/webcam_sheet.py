"""A before/after sheet of real webcam frames: one frame of each video, a crop of it (centred across, a third
of the way down, where a webcam frames a face) zoomed ×2 with nearest-neighbour pixels, the input on the left and the model's output on the right.

    python -m edgesharp.benchmarks.webcam_sheet --out docs/webcam-v12.jpg                 # the shipped default model
    python -m edgesharp.benchmarks.webcam_sheet --model out/v12 --videos ../shared/data/video --frame 59 --out sheet.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm")


def read_frame(path: Path, index: int) -> np.ndarray:
    """Frame `index` of a video (BGR), or its last frame when it has fewer."""
    cap = cv2.VideoCapture(str(path))
    frame = None
    try:
        for _ in range(index + 1):
            ok, img = cap.read()
            if not ok:
                break
            frame = img
    finally:
        cap.release()
    if frame is None:
        raise EdgesharpError(f"{path}: no frame could be decoded")
    return frame


def pair_row(before: np.ndarray, after: np.ndarray, crop: tuple[int, int], zoom: int, gap: int = 8) -> np.ndarray:
    """A `crop` (width, height) of both frames, centred across and a third of the way down, zoomed, side by side
    with a white gap."""
    h, w = before.shape[:2]
    cw, ch = min(crop[0], w), min(crop[1], h)
    x, y = (w - cw) // 2, (h - ch) // 3

    def zoomed(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img[y : y + ch, x : x + cw], (cw * zoom, ch * zoom), interpolation=cv2.INTER_NEAREST)

    return np.hstack([zoomed(before), np.full((ch * zoom, gap, 3), 255, np.uint8), zoomed(after)])


def webcam_sheet(videos: list[Path], model: str | None = None, frame: int = 59, crop: tuple[int, int] = (320, 240),
                 zoom: int = 2) -> np.ndarray:
    """The sheet (BGR) for `videos`, one row each, through the runtime's default path (`Sharpener`)."""
    from edgesharp import Sharpener

    if not videos:
        raise EdgesharpError("no videos for the sheet")
    rows = []
    with Sharpener(model) as sharpener:
        for path in videos:
            before = read_frame(path, frame)
            rows.append(pair_row(before, sharpener.enhance(before), crop, zoom))
            log.info("%s: frame %d, %dx%d", path.name, frame, before.shape[1], before.shape[0])
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    gaps = [np.full((8, width, 3), 255, np.uint8)] * len(padded)
    return np.vstack([part for pair in zip(padded, gaps, strict=True) for part in pair][:-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.webcam_sheet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model bundle (default: the shipped default model)")
    p.add_argument("--videos", type=Path, default=Path("../shared/data/video"), help="a folder of videos or one video")
    p.add_argument("--frame", type=int, default=59, help="frame index in each video (default 59; the last if shorter)")
    p.add_argument("--out", type=Path, required=True, help="the sheet (.jpg or .png)")
    a = p.parse_args(argv)
    from edgesharp.edge.imaging.io import write_image

    try:
        videos = [a.videos] if a.videos.is_file() else sorted(
            f for f in a.videos.glob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
        sheet = webcam_sheet(videos, a.model, a.frame)
        write_image(a.out, sheet, color="bgr")
    except EdgesharpError as exc:
        print(f"webcam_sheet: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} ({sheet.shape[1]}x{sheet.shape[0]}, {len(videos)} videos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
