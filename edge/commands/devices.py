"""`edgesharp devices`: the cameras that open here, with the mode each delivers by default and when asked for MJPG
(what `edgesharp run --source camera:N` asks for) at a few common sizes."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  edgesharp devices                       # cameras 0-9
  edgesharp devices /dev/video2 4         # only these
  edgesharp devices --fourcc YUYV         # the modes without compression
"""


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.add_argument("devices", nargs="*", help="camera indices or device paths (default: indices 0-9)")
    parser.add_argument("--fourcc", default="MJPG",
                        help="format asked for at each probed size (default MJPG, as 'edgesharp run' asks; "
                             "'default': the camera's own)")


def describe(probe, fourcc: str | None) -> str:
    """One line: the camera, its default mode, and the distinct modes it delivers when asked."""
    from edgesharp.edge.sources import PROBE_SIZES

    sizes = ", ".join(f"{w}x{h}" for w, h in PROBE_SIZES)
    return (f"camera:{probe.device}  default {probe.default}; asked for {fourcc or 'its own format'} at {sizes}: "
            + ", ".join(str(m) for m in probe.modes))


def main(args: argparse.Namespace) -> int:
    from edgesharp.edge.sources import check_fourcc, probe_camera

    fourcc = check_fourcc(args.fourcc, "--fourcc")
    devices = [int(d) if d.isdigit() else d for d in args.devices] if args.devices else list(range(10))
    found = 0
    for device in devices:
        probe = probe_camera(device, fourcc)
        if probe is None:
            log.debug("camera %s does not open", device)
            continue
        found += 1
        print(describe(probe, fourcc), flush=True)
    if not found:
        tried = "indices 0-9" if not args.devices else ", ".join(map(str, devices))
        print(f"no camera opened at {tried} (none connected, busy, or no permission)")
    return 0
