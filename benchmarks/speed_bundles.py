"""Speed-only bundles: registry architectures with random weights, exported and quantized like a real bundle.

Speed depends on the graph, not on the weights, so these bundles answer "does this architecture reach
the real-time target on this machine?" before hours of training:

    python -m edgesharp.benchmarks.speed_bundles nafnet-rt-ln nafnet-rt-lite --out out/speed-bundles
    edgesharp bench fps --model out/speed-bundles/nafnet-rt-ln --model out/speed-bundles/nafnet-rt-lite \
        --precisions int8 --sizes 640x480,1280x720 --no-search

Each bundle is named `<arch>-untrained`; its SSIM figures are meaningless (random weights, open guard).
An `arch:key=value,...` spec overrides the registry config, as in `edgesharp.benchmarks.layers`.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)


def spec_slug(spec: str) -> str:
    """A folder name for an arch spec: 'nafnet-rt:enc_blk_nums=0/1/2' -> 'nafnet-rt-enc_blk_nums=0-1-2'."""
    return re.sub(r"[:,/]", "-", spec)


def build_speed_bundle(spec: str, out: Path, seed: int = 0) -> Path:
    """Write the speed-only bundle of `spec` to `out` (plain INT8, no accuracy control, open guard)."""
    import torch

    from edgesharp.benchmarks.layers import parse_spec
    from edgesharp.calibrate.untrained import build_tiny_result, perturb
    from edgesharp.train import models

    arch, overrides = parse_spec(spec)
    torch.manual_seed(seed)
    model = models.create(arch, **overrides).eval()
    perturb(model, seed, scale=0.1)
    m = model.size_multiple
    result = build_tiny_result(out, model=model, seed=seed, name=f"{spec_slug(spec)}-untrained",
                               sizes=[(m, m), (2 * m, 3 * m)], calib_crop=2 * m,
                               skip_ort_int8=True, slim=True)
    if result.bundle is None:
        raise EdgesharpError(f"{spec}: speed bundle not written ({result.failure})")
    log.info("%s: speed-only bundle in %s", spec, result.bundle)
    return result.bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.speed_bundles", description=__doc__.splitlines()[0])
    p.add_argument("archs", nargs="+", help="registry arch, optionally arch:key=value,...")
    p.add_argument("--out", type=Path, default=Path("out/speed-bundles"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        for spec in args.archs:
            print(build_speed_bundle(spec, args.out / spec_slug(spec)))
    except EdgesharpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
