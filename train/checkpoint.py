"""Student checkpoints (docs/contracts.md): atomic save, safe load, and loading of foreign weight files.

    {"format": "edgesharp-checkpoint/1", "arch", "arch_config", "model", "ema", "optimizer",
     "scheduler", "step", "phase", "rng", "config", "metrics"}

Everything is loaded with `torch.load(weights_only=True)`: no arbitrary pickle runs, so RNG states are
stored as tensors and plain Python values only.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgesharp.edge.errors import EdgesharpError
from edgesharp.train import models
from edgesharp.train.models.expand import collapse

log = logging.getLogger(__name__)

FORMAT = "edgesharp-checkpoint/1"
REQUIRED = ("format", "arch", "arch_config", "model")
# keys under which official releases (BasicSR, NAFNet, Restormer, ...) keep their weights, in order of preference
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")


class CheckpointError(EdgesharpError):
    """A checkpoint file is missing, unreadable, of the wrong format, or names an unknown architecture."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def rng_state() -> dict:
    """Python, NumPy (legacy global) and torch RNG states as tensors and plain values (weights_only-safe)."""
    np_state = np.random.get_state()
    state = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_checkpoint(
    model: nn.Module,
    *,
    ema: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    step: int = 0,
    phase: int = 0,
    config: dict | None = None,
    metrics: dict | None = None,
    extra: dict | None = None,
) -> dict:
    ckpt = {
        "format": FORMAT,
        "arch": model.arch,
        "arch_config": dict(model.arch_config),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()} if ema is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": int(step),
        "phase": int(phase),
        "rng": rng_state(),
        "config": config or {},
        "metrics": metrics or {},
    }
    if extra:
        ckpt.update(extra)
    return ckpt


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **kwargs) -> Path:
    """Write a student checkpoint atomically; keyword arguments as `build_checkpoint`."""
    return atomic_torch_save(build_checkpoint(model, **kwargs), path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate an edgesharp checkpoint dict (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        hint = ""
        if isinstance(ckpt, dict) and any(k in ckpt for k in WRAPPER_KEYS):
            hint = " (it looks like a released weight file: use it as a teacher or as init_from with an arch)"
        raise CheckpointError(f"{path}: expected format {FORMAT!r}, got {found!r}{hint}")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if ckpt["arch"] not in models.REGISTRY and ckpt["arch"] not in models.RESEARCH:
        raise CheckpointError(f"{path}: unknown architecture {ckpt['arch']!r}; this edgesharp knows "
                              f"{', '.join([*models.REGISTRY, *models.RESEARCH])}")
    return ckpt


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False) -> Path:
    """Write the weights of `src` (EMA when present) with its architecture, config and metrics, without the
    optimizer, scheduler and RNG states that resuming needs: a teacher or student to load, a third of the size
    (a sixth with `half`: float16 weights, loaded back into float32)."""
    ckpt = read_checkpoint(src)
    weights = "ema" if ckpt.get("ema") else "model"
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt[weights].items()}
    slim = {k: ckpt.get(k) for k in ("format", "arch", "arch_config", "step", "phase", "config", "metrics")}
    slim.update(model=sd, ema=None, optimizer=None, scheduler=None, slimmed={"from": str(src), "weights": weights,
                                                                                "dtype": "float16" if half else "float32"})
    return atomic_torch_save(slim, dst)


def load_student(path: str | os.PathLike, use_ema: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the student saved in `path`; EMA weights when present and `use_ema`. Returns (model.eval(), info).

    A student trained with expanded convolutions comes back collapsed (`edgesharp.train.models.expand`): the plain
    architecture computing the same function, which is what export and inference use."""
    ckpt = read_checkpoint(path)
    try:
        model = models.create(ckpt["arch"], **ckpt["arch_config"])
    except EdgesharpError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    weights = "ema" if use_ema and ckpt.get("ema") else "model"
    try:
        model.load_state_dict(ckpt[weights], strict=True)  # float16 weights of a slim checkpoint come back float32
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: {weights} weights do not fit {ckpt['arch']}: {str(exc).splitlines()[0]}") from exc
    model = collapse(model)
    info = {k: ckpt.get(k) for k in ("arch", "arch_config", "step", "phase", "config", "metrics")}
    info.update(path=str(path), weights=weights, size_multiple=model.size_multiple, arch_config=model.arch_config)
    return model.eval(), info


def unwrap_state_dict(obj: Any, path: str | os.PathLike = "<weights>") -> dict[str, torch.Tensor]:
    """The state dict inside a released weight file ({"params": sd}, {"state_dict": sd}, ... or sd itself)."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj["ema"] or obj["model"]
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found (top-level keys: {list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a weight file (an edgesharp checkpoint's EMA weights, else its model's)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weight file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from exc
    return unwrap_state_dict(obj, path)


def load_matching(model: nn.Module, path: str | os.PathLike) -> tuple[list[str], list[str], list[str]]:
    """Load the tensors of a weight file whose names and shapes fit `model` and leave the others; returns the
    names loaded, the file's names not used and the model's names not in the file."""
    sd = read_state_dict(path)
    own = model.state_dict()
    fits = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    if not fits:
        arch = getattr(model, "arch", type(model).__name__)
        raise CheckpointError(f"{path}: no tensor of this file fits {arch}")
    model.load_state_dict(fits, strict=False)
    return sorted(fits), sorted(set(sd) - set(fits)), sorted(set(own) - set(fits))


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a released or project weight file into an existing model (e.g. official NAFNet-width32)."""
    sd = read_state_dict(path)
    try:
        model.load_state_dict(sd, strict=strict)
    except RuntimeError as exc:
        arch = getattr(model, "arch", type(model).__name__)
        raise CheckpointError(f"{path}: weights do not fit {arch}: {str(exc).splitlines()[0]} ...") from exc
    return model
