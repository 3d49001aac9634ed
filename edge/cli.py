"""The `edgesharp` command: one entry point, subcommands registered from a literal table.

Each subcommand lives in a light module exposing `register(parser)` and `main(args) -> int`; those
modules import their heavy dependencies inside `main`, so `edgesharp --help` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from edgesharp import __version__
from edgesharp.edge.errors import EdgesharpError, MissingExtra, UsageError

# name -> (module with register/main, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("edgesharp.edge.commands.run", "sharpen a live camera or video stream (window, virtual camera, file)"),
    "enhance": ("edgesharp.edge.commands.enhance", "sharpen an image, a folder of images, or a video file"),
    "train": ("edgesharp.train.cli", "distil a student network from a teacher (needs edgesharp[train])"),
    "calibrate": ("edgesharp.calibrate.cli", "export a student to ONNX/OpenVINO and quantize to INT8 (needs edgesharp[calibrate])"),
    "bench": ("edgesharp.benchmarks.cli", "measure FPS and SSIM across backends and precisions (needs edgesharp[bench])"),
    "degrade": ("edgesharp.edge.commands.degrade", "blur a folder of sharp images with the evaluation protocol"),
    "devices": ("edgesharp.edge.commands.devices", "list the cameras that open here and the modes they deliver"),
}

log = logging.getLogger("edgesharp")


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    """-v/-q work before and after the subcommand (`edgesharp -q run` and `edgesharp run -q`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default, help="more log output (-vv for debug)")
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors")


def _selected_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line, found without importing any subcommand module."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only `selected`'s module is imported (all of them when None)."""
    parser = argparse.ArgumentParser(
        prog="edgesharp",
        description="Real-time sharpening of camera video on Intel CPUs.",
        epilog="Run 'edgesharp COMMAND --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"edgesharp {__version__}")
    _add_verbosity(parser, argparse.SUPPRESS)
    parser.set_defaults(verbose=0, quiet=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module_name, summary) in SUBCOMMANDS.items():
        p = sub.add_parser(
            name, help=summary, description=summary, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        _add_verbosity(p, argparse.SUPPRESS)
        if selected is None or selected == name:
            importlib.import_module(module_name).register(p)
        p.set_defaults(_module=module_name)
    return parser


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose < 2:
        for noisy in ("nncf", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
        # FFmpeg's own stderr lines ("moov atom not found" while a broken video is checked) would follow our
        # one-line messages, which already say what is wrong; -vv keeps them. Read once, before the first video.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_selected_command(argv) or "")
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    configure_logging(args.verbose, args.quiet)
    return call_handler(args.command, importlib.import_module(args._module).main, args)


def call_handler(command: str, handler, args: argparse.Namespace) -> int:
    """Run a subcommand's `main(args)`, turning user-facing errors into one line and an exit code."""
    try:
        return int(handler(args) or 0)
    except MissingExtra as exc:
        print(f"edgesharp {command}: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:  # refused before anything was written (an output that is an input, --fps inf)
        print(f"edgesharp {command}: error: {exc}", file=sys.stderr)
        return 2
    except EdgesharpError as exc:
        print(f"edgesharp {command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file problem no check foresaw: still one line (-v adds the traceback)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"edgesharp {command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        if getattr(args, "verbose", 0):
            traceback.print_exc()
        return 1
    except KeyboardInterrupt:
        print(f"edgesharp {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
