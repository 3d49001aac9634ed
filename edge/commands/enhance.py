"""`edgesharp enhance INPUT OUTPUT`: sharpen one image, a folder of images (same stems, PNG by default)
or a video (same frame count and rate), with the same model options as `edgesharp run`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edge.commands.run import add_model_options

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  edgesharp enhance photo.jpg photo-sharp.png
  edgesharp enhance ../shared/data/kodak24 out/kodak-sharp            # same stems, .png
  edgesharp enhance blurred/ sharp/ --ext jpg --strength 0.7
  edgesharp enhance clip.mkv clip-sharp.mp4 --backend onnxruntime --precision fp32
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("input", type=Path, help="an image, a folder of images, or a video file")
    parser.add_argument("output", type=Path,
                        help="an image file (or folder) for an image, a folder for a folder, a video file for a video")
    parser.add_argument("--ext", default="png", help="image format written for folders (default: png)")
    parser.add_argument("--stats-json", type=Path, default=None, help="write the run's statistics to this JSON file")
    add_model_options(parser)


def _enhance_image(args: argparse.Namespace, backend) -> Path:
    from edge.imaging.io import IMAGE_EXTENSIONS, read_image_alpha, write_image
    from edge.pipeline import blend

    out = args.output
    if out.is_dir() or not out.suffix:
        out = out / f"{args.input.stem}.{args.ext.lstrip('.')}"
    elif out.suffix.lower() not in IMAGE_EXTENSIONS:
        from edge.errors import EdgesharpError

        raise EdgesharpError(f"{out}: an image input needs an image output ({', '.join(IMAGE_EXTENSIONS)})")
    image, alpha = read_image_alpha(args.input, color="bgr")
    result = blend(image, backend.infer(image), args.strength)
    write_image(out, result, color="bgr", alpha=alpha)
    return out


def main(args: argparse.Namespace) -> int:
    from edge.commands.run import open_backend_from_args, run_pipeline
    from edge.errors import EdgesharpError
    from edge.imaging.io import IMAGE_EXTENSIONS
    from edge.sinks import VIDEO_CODECS, ImageFolderSink, VideoFileSink
    from edge.sources import VIDEO_EXTENSIONS, ImageFolderSource, VideoFileSource

    src = args.input
    suffix = src.suffix.lower()
    if not src.exists():
        raise EdgesharpError(f"{src}: no such file or folder")
    if src.is_dir():
        if args.output.suffix.lower() in VIDEO_CODECS:
            raise EdgesharpError(f"{args.output}: a folder input writes a folder; give a folder name")
        source, sinks = ImageFolderSource(src), [ImageFolderSink(args.output, ext=args.ext)]
    elif suffix in IMAGE_EXTENSIONS:
        source, sinks = None, []
    elif suffix in VIDEO_EXTENSIONS:
        if args.output.suffix.lower() not in VIDEO_CODECS:
            raise EdgesharpError(f"{args.output}: a video input needs a video output ({', '.join(VIDEO_CODECS)})")
        source, sinks = VideoFileSource(src), [VideoFileSink(args.output)]
    else:
        raise EdgesharpError(f"{src}: not an image ({', '.join(IMAGE_EXTENSIONS)}), video or folder")
    if src.resolve() == args.output.resolve():
        raise EdgesharpError(f"{args.output}: output would overwrite the input")

    _, backend = open_backend_from_args(args)
    try:
        if source is None:
            print(f"wrote {_enhance_image(args, backend)}")
            return 0
        summary = run_pipeline(source, backend, sinks, args)
    finally:
        backend.close()
    skipped = getattr(source, "skipped", [])
    print(f"{summary['frames_written']} frames -> {args.output} in {summary['elapsed_s']:.1f} s "
          f"({summary['mean_output_fps']:.1f} fps)" + (f"; {len(skipped)} unreadable inputs skipped" if skipped else ""))
    if summary["stop_reason"] and summary["stop_reason"] != "end of source":
        print(f"stopped early: {summary['stop_reason']}")
        return 130
    return 0
