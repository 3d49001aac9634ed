"""`python -m edgesharp.train ...` and `torchrun --nproc_per_node N -m edgesharp.train CONFIG.yaml`: the same as `edgesharp train`."""

from __future__ import annotations

import argparse
import sys

from edgesharp.edge.cli import call_handler, configure_logging
from edgesharp.train import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgesharp.train", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    cli.register(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose, args.quiet)
    return call_handler("train", cli.main, args)


if __name__ == "__main__":
    sys.exit(main())
