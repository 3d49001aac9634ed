"""Where INT8 loses SSIM: each NNCF quantizer of a quantized PyTorch student switched off in turn.

The gain of a quantizer is the mean SSIM at one blur level with that quantizer off (its tensor left float)
minus the SSIM with every quantizer on, over the validation samples of that level. After quantization-aware
fine-tuning the weights have adapted to every quantizer, so a gain can be negative; the ones that give back
the most are the candidates for `--ignored-scope`. An input quantizer ("input N") is kept float by naming its
node; an output quantizer by naming the nodes that consume the tensor (NNCF places the quantizer where the
consumers read it).
"""

from __future__ import annotations

import logging
import re
import time

import numpy as np

from edgesharp.calibrate.data import Sample
from edgesharp.calibrate.evaluate import score
from edgesharp.calibrate.runners import bgr_as_rgb, torch_runner

log = logging.getLogger(__name__)

_HOOK = re.compile(r"__nncf_hooks\.(pre|post)_hooks\.(.+)__(\d+)\.\d+$")


def quantizers(model) -> list[tuple[str, object]]:
    """(module name, NNCF quantizer) of every quantizer in the model, in registration order."""
    from nncf.torch.quantization.layers import BaseQuantizer

    return [(name, m) for name, m in model.named_modules() if isinstance(m, BaseQuantizer)]


def describe(name: str) -> dict:
    """{"node", "position"} of a quantizer's module name: the NNCF graph node and "output" or "input N"."""
    m = _HOOK.search(name)
    if not m:
        return {"node": name, "position": "?"}
    kind, node, port = m.groups()
    return {"node": node, "position": "output" if kind == "post" else f"input {port}"}


def level_ssim(model, samples: list[Sample], multiple: int, level: str, bgr: bool = False) -> float:
    """Mean SSIM of a PyTorch model (RGB in and out, or BGR with `bgr`) over the samples at `level`."""
    chosen = [s for s in samples if s.level == level]
    run = bgr_as_rgb(torch_runner(model)) if bgr else torch_runner(model)
    return score(run, chosen, multiple)["levels"][level]["ssim"]


def quantizer_sensitivity(model, samples: list[Sample], multiple: int, level: str, bgr: bool = False) -> dict:
    """{"level", "int8_ssim", "quantizers": [{"node", "position", "module", "ssim_gain"}, ...] by gain, largest
    first}. Every quantizer is enabled again afterwards (those already disabled stay so and are skipped)."""
    if not any(s.level == level for s in samples):
        raise ValueError(f"no validation samples at level {level!r}")
    model.eval()
    base = level_ssim(model, samples, multiple, level, bgr)
    active = [(n, q) for n, q in quantizers(model) if q.is_enabled_quantization()]
    rows, t0 = [], time.perf_counter()
    for i, (name, q) in enumerate(active, 1):
        q.disable_quantization()
        try:
            gain = level_ssim(model, samples, multiple, level, bgr) - base
        finally:
            q.enable_quantization()
        rows.append({**describe(name), "module": name, "ssim_gain": float(gain)})
        if i % 20 == 0 or i == len(active):
            log.info("  sensitivity at %s blur: %d/%d quantizers, %.0f s", level, i, len(active), time.perf_counter() - t0)
    rows.sort(key=lambda r: -r["ssim_gain"])
    for r in rows[:8]:
        log.info("  sensitivity: %+.5f %s (%s)", r["ssim_gain"], r["node"], r["position"])
    return {"level": level, "int8_ssim": float(base), "quantizers": rows,
            "positive_total": float(np.sum([r["ssim_gain"] for r in rows if r["ssim_gain"] > 0]))}
