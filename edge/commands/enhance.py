"""`edgesharp enhance INPUT OUTPUT`: sharpen one image, a folder of images (same stems, PNG by default)
or a video (same frame count and rate, its sound kept, H.264 where this machine's FFmpeg has an encoder), with
the same model options as `edgesharp run`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgesharp.edge.commands.run import add_model_options

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


def _image_output(args: argparse.Namespace) -> Path:
    """The file an image input is written to: OUTPUT, or OUTPUT/STEM.EXT when OUTPUT is a folder."""
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS

    out = args.output
    if out.is_dir() or not out.suffix:
        return out / f"{args.input.stem}.{args.ext.lstrip('.')}"
    if out.suffix.lower() not in IMAGE_EXTENSIONS:
        raise EdgesharpError(f"{out}: an image input needs an image output ({', '.join(IMAGE_EXTENSIONS)})")
    return out


def _check_image_size(path: Path) -> None:
    """Refuse an image over the pixel limit from its header, before decoding it (`edgesharp.edge.backends.base.MAX_PIXELS`)."""
    from PIL import Image, UnidentifiedImageError

    from edgesharp.edge.backends.base import check_pixel_count

    Image.MAX_IMAGE_PIXELS = None  # the limit is ours, with our message; PIL's own warns or raises at its own
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, UnidentifiedImageError, ValueError):
        return  # not readable by PIL: the decoder's own check names the problem
    check_pixel_count(width, height, str(path))


def _folder_source(folder: Path):
    """The folder's images, each over the pixel limit skipped (named in a warning, counted) before it is decoded."""
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.imaging.io import read_image
    from edgesharp.edge.sources import ImageFolderSource, SourceFrame

    class SizeCheckedFolderSource(ImageFolderSource):
        def _read(self) -> SourceFrame | None:
            while self._next < len(self._paths):
                path = self._paths[self._next]
                self._next += 1
                try:
                    _check_image_size(path)
                    return SourceFrame(read_image(path, color="bgr"), name=path.stem, origin=str(path))
                except EdgesharpError as exc:  # unreadable (ImageReadError) or over the pixel limit
                    log.warning("skipping %s", exc)
                self.skipped.append(str(path))
            return None

    return SizeCheckedFolderSource(folder)


def _enhance_image(args: argparse.Namespace, backend, out: Path) -> Path:
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.imaging.io import read_image_alpha, write_image
    from edgesharp.edge.pipeline import blend

    image, alpha = read_image_alpha(args.input, color="bgr")
    try:
        sharp = backend.infer(image)
    except EdgesharpError as exc:
        raise EdgesharpError(f"{args.input}: {exc}") from None
    write_image(out, blend(image, sharp, args.strength), color="bgr", alpha=alpha)
    return out


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.commands.run import (
        check_model_options,
        open_backend_from_args,
        run_pipeline,
        stats_output,
    )
    from edgesharp.edge.errors import EdgesharpError
    from edgesharp.edge.imaging.io import IMAGE_EXTENSIONS, check_outputs
    from edgesharp.edge.sinks import VIDEO_CODECS, ImageFolderSink, VideoFileSink, prepare_sinks
    from edgesharp.edge.sources import VIDEO_EXTENSIONS, VideoFileSource

    check_model_options(args)
    src = args.input
    suffix = src.suffix.lower()
    if not src.exists():
        raise EdgesharpError(f"{src}: no such file or folder")
    if src.is_dir():
        if args.output.suffix.lower() in VIDEO_CODECS:
            raise EdgesharpError(f"{args.output}: a folder input writes a folder; give a folder name")
        source, sinks = _folder_source(src), [ImageFolderSink(args.output, ext=args.ext)]
    elif suffix in IMAGE_EXTENSIONS:
        source, sinks = None, []
    elif suffix in VIDEO_EXTENSIONS:
        if args.output.suffix.lower() not in VIDEO_CODECS:
            raise EdgesharpError(f"{args.output}: a video input needs a video output ({', '.join(VIDEO_CODECS)})")
        source, sinks = VideoFileSource(src), [VideoFileSink(args.output, audio_from=src)]
    else:
        raise EdgesharpError(f"{src}: not an image ({', '.join(IMAGE_EXTENSIONS)}), video or folder")
    # the output rule: no file this run writes may be one of its inputs (real paths compared)
    if source is None:
        out = _image_output(args)
        check_outputs([("output", out), *stats_output(args)], [src])
        _check_image_size(src)  # before the model opens
    else:
        prepare_sinks(sinks, source.input_files(), stats_output(args))

    _, backend = open_backend_from_args(args)
    try:
        if source is None:
            print(f"wrote {_enhance_image(args, backend, out)}")
            return 0
        summary = run_pipeline(source, backend, sinks, args, skip_failed_frames=src.is_dir())
    finally:
        backend.close()
    skipped = [*getattr(source, "skipped", []), *summary["skipped"]]
    print(f"{summary['frames_written']} frames -> {args.output} in {summary['elapsed_s']:.1f} s "
          f"({summary['mean_output_fps']:.1f} fps)")
    code = 0
    if skipped:  # each one was named in a warning as it was skipped
        print(f"edgesharp enhance: {len(skipped)} input{'s' * (len(skipped) > 1)} skipped "
              f"(unreadable or failed): {', '.join(Path(p).name for p in skipped[:5])}"
              f"{', ...' if len(skipped) > 5 else ''}; every other output was written", file=sys.stderr)
        code = 1
    shortfall = getattr(source, "shortfall", None)
    if shortfall:
        print(f"edgesharp enhance: {src} is truncated or damaged: its header promised {shortfall[0]} frames, "
              f"it gave {shortfall[1]}; {args.output} has those {shortfall[1]}", file=sys.stderr)
        code = 1
    if summary["stop_reason"] and summary["stop_reason"] != "end of source":
        print(f"stopped early: {summary['stop_reason']}")
        return 130
    return code
