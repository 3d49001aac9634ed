"""Print the architectures (the product's, then the studies'): parameters, MACs per pixel and size multiple."""

from __future__ import annotations

from edgesharp.train.models import REGISTRY, RESEARCH, describe


def main() -> int:
    print(f"{'arch':<22} {'params':>10} {'MACs/px':>10} {'multiple':>8}  summary")
    for group, names in (("", REGISTRY), ("research: ", RESEARCH)):
        for name in names:
            d = describe(name)
            print(f"{name:<22} {d['params']:>10,} {d['macs_per_pixel']:>10,.0f} {d['size_multiple']:>8}  "
                  f"{group}{d['summary']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
