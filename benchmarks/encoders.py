"""What writing H.264 costs beside the model: CPU milliseconds a frame, bit rate and PSNR against the frames
encoded, for x264 presets and CRFs (`edgesharp.edge.imaging.video_out`'s file and live settings) and OpenCV's
mp4v, on the frames of a clip resized to each size.

    python -m edgesharp.benchmarks.encoders ../shared/data/video/webcam_person_asl_book.mkv --sizes 640x480,1280x720
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgesharp.edge.errors import EdgesharpError

SETTINGS = ("fast:18", "fast:23", "veryfast:18", "ultrafast:23", "mp4v")


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count and (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    cap.release()
    if not frames:
        raise EdgesharpError(f"{video}: no frames could be read")
    return frames


def _decode(path: Path) -> list[np.ndarray]:
    return read_frames(path, 10**6)


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2) for x, y in zip(a, b, strict=True)])
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def encode(frames: list[np.ndarray], setting: str, fps: float = 30.0) -> dict:
    """CPU ms a frame (all threads), Mbit/s and PSNR (dB) of one setting: 'preset:crf' for x264, or 'mp4v'."""
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.mp4"
        t0 = time.process_time()
        if setting == "mp4v":
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            for f in frames:
                writer.write(f)
            writer.release()
        else:
            import av

            preset, crf = setting.split(":")
            with av.open(str(path), "w") as out:
                stream = out.add_stream("libx264", rate=int(fps))
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.codec_context.options = {"preset": preset, "crf": crf}
                for f in frames:
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
                out.mux(stream.encode())
        cpu_ms = (time.process_time() - t0) / len(frames) * 1000
        decoded = _decode(path)
        mbit = path.stat().st_size * 8 / (len(frames) / fps) / 1e6
    return {"setting": setting, "size": f"{w}x{h}", "cpu_ms": cpu_ms, "mbit_s": mbit,
            "psnr_db": _psnr(frames, decoded[:len(frames)])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.encoders", description=__doc__.splitlines()[0])
    p.add_argument("video", type=Path, help="a clip whose frames are encoded")
    p.add_argument("--sizes", default="640x480,1280x720", help="comma list of WxH")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma list of preset:crf (x264) or mp4v")
    p.add_argument("--frames", type=int, default=60)
    a = p.parse_args(argv)
    try:
        source = read_frames(a.video, a.frames)
        print("| size | setting | CPU ms/frame | Mbit/s at 30 FPS | PSNR dB |\n|---|---|---|---|---|")
        for size in a.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in source]
            for setting in a.settings.split(","):
                r = encode(frames, setting)
                print(f"| {r['size']} | {setting} | {r['cpu_ms']:.1f} | {r['mbit_s']:.2f} | {r['psnr_db']:.2f} |")
    except (EdgesharpError, ValueError) as exc:
        print(f"encoders: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
