"""A student checkpoint rebuilt from a bundle's FP32 ONNX file, for re-calibrating a bundle whose checkpoint is gone.

    python -m edgesharp.calibrate.recover edge/models/default runs/recovered/last.pt
    edgesharp calibrate runs/recovered/last.pt --out ...

The ONNX graph holds every weight: parameters keep their PyTorch names, except those the exporter
folded into constants of the nodes that use them (NAFNet's LayerNorm weight and bias), which are found
by the node's module scope; equal constants shared through Identity nodes are followed. Graphs in the inference form (`edgesharp.train.models.export_form`) are mapped back
to the training layout: split convolutions are concatenated, and `beta`/`gamma` become ones (their
values are already in the convolutions). The rebuilt model is checked against ONNX Runtime on a random
frame; the checkpoint records the bundle's training step and recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

RECOVERY_TOL = 1e-4
_NORM_PARAM = re.compile(r"^(?P<block>.+)\.(?P<norm>norm[12])\.(?P<kind>weight|bias)$")
_SPLIT = {"conv1": ("conv1a", "conv1b"), "conv2": ("conv2a", "conv2b"), "conv4": ("conv4a", "conv4b")}


class RecoverError(EdgesharpError):
    """The bundle's ONNX file does not hold the weights of its manifest's architecture."""


def _scope_constant(nodes_by_scope: dict, block: str, norm: str, op: str, constants: dict, path: Path):
    """The constant input of the `op` node ('Mul' for the weight, 'Add_1' for the bias) of a LayerNorm."""
    parts = block.split(".")
    scope = "/".join(".".join(parts[:i]) for i in range(len(parts) - 1, len(parts) + 1))
    for name, node in nodes_by_scope.items():
        if name.endswith(f"{scope}/{norm}/{op}"):
            for inp in node.input:
                if inp in constants:
                    return constants[inp]
    raise RecoverError(f"{path}: no {op} node with a constant for {block}.{norm}")


def state_dict_from_onnx(onnx_path: str | Path, model) -> dict:
    """Tensors for every entry of `model.state_dict()`, read from the ONNX file (see the module docstring)."""
    import onnx
    import torch
    from onnx import numpy_helper

    onnx_path = Path(onnx_path)
    try:
        proto = onnx.load(str(onnx_path))
    except Exception as exc:
        raise RecoverError(f"{onnx_path}: not a readable ONNX file ({type(exc).__name__})") from exc
    constants = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:  # the exporter shares equal constants through Identity nodes
        if node.op_type == "Identity" and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
    nodes_by_scope = {n.name: n for n in proto.graph.node}
    out = {}
    for key, ref in model.state_dict().items():
        value = constants.get(key)
        if value is None:
            prefix, _, leaf = key.rpartition(".")
            module, _, conv = prefix.rpartition(".")
            if conv in _SPLIT and f"{module}.{_SPLIT[conv][0]}.{leaf}" in constants:
                value = np.concatenate([constants[f"{module}.{half}.{leaf}"] for half in _SPLIT[conv]])
            elif leaf in ("beta", "gamma") and f"{prefix}.conv1a.weight" in constants:
                value = np.ones(tuple(ref.shape), np.float32)
            elif (m := _NORM_PARAM.match(key)) is not None:
                op = "Mul" if m["kind"] == "weight" else "Add_1"
                value = _scope_constant(nodes_by_scope, m["block"], m["norm"], op, constants, onnx_path)
            else:
                raise RecoverError(f"{onnx_path}: no weights for {key} (is this the manifest's architecture?)")
        if value.size != ref.numel():
            raise RecoverError(f"{onnx_path}: {key} has {value.size} values, the architecture needs {ref.numel()}")
        out[key] = torch.from_numpy(np.ascontiguousarray(value).reshape(tuple(ref.shape)).astype(np.float32))
    return out


def recover_checkpoint(bundle_dir: str | Path, out: str | Path) -> Path:
    """Write an edgesharp checkpoint (model = EMA = the bundle's FP32 weights) rebuilt from `bundle_dir`."""
    import torch

    from edgesharp.calibrate.runners import ort_runner
    from edgesharp.edge.bundle import load_bundle
    from edgesharp.train import models
    from edgesharp.train.checkpoint import save_checkpoint

    bundle = load_bundle(bundle_dir)
    onnx_path = bundle.model_path("onnxruntime", "fp32")
    manifest = json.loads((Path(bundle_dir) / "manifest.json").read_text())
    model = models.create(bundle.arch, **bundle.arch_config).eval()
    model.load_state_dict(state_dict_from_onnx(onnx_path, model))
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 2 * bundle.size_multiple, 3 * bundle.size_multiple), dtype=np.float32)
    with torch.no_grad():
        err = float(np.abs(model(torch.from_numpy(x)).numpy() - ort_runner(onnx_path)(x)).max())
    if not err <= RECOVERY_TOL:
        raise RecoverError(f"{onnx_path}: rebuilt {bundle.arch} differs from the ONNX graph by {err:.3g} (limit {RECOVERY_TOL:g})")
    recipe = manifest.get("recipe", {})
    extra = {"recovered_from": {"bundle": str(bundle_dir), "sha256": manifest.get("files", {}).get(onnx_path.name, {}).get("sha256"),
                                "max_abs_err": err, "checkpoint": recipe.get("checkpoint")}}
    path = save_checkpoint(out, model, ema=model, step=int(recipe.get("step") or 0), phase=int(recipe.get("phase") or 0),
                           config={k: v for k, v in recipe.items() if k not in ("checkpoint", "weights", "step", "phase")},
                           metrics=recipe.get("training_metrics") or {}, extra=extra)
    log.info("%s: %s weights rebuilt from %s (max abs err vs ONNX Runtime %.1e)", path, bundle.arch, onnx_path.name, err)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.calibrate.recover", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="bundle folder (manifest.json and model.onnx)")
    p.add_argument("out", type=Path, help="checkpoint to write, e.g. runs/recovered/last.pt")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = recover_checkpoint(args.bundle, args.out)
    except EdgesharpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
