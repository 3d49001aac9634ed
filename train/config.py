"""Typed training configuration: defaults live here, YAML files and `--set key=value` only override them.

    cfg = load_config("train/configs/seed.yaml", overrides=["phases.0.steps=100", "optim.grad_clip=0.5"])

Unknown keys and values of the wrong type are errors naming the key. A list of sections (`phases`,
`data.sources`) given in YAML replaces the default list; each element starts from the section's
defaults. `--set` addresses list elements by index (`phases.1.alpha=0.5`). Path values (`expand_paths`) expand `~`
and environment variables (`$VAR`, `${VAR}`) when loaded; an unset variable is an error naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesharp.edge.errors import EdgesharpError


class ConfigError(EdgesharpError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


BUILTIN_CONTENT = ("all", "photos", "generated")


@dataclass
class DataSource:
    """One training source. kind: folder (sharp images, degraded on the fly), gopro (*/blur + */sharp),
    realblur (list file of `gt blur` lines, paths relative to `root`), builtin (offline photos and
    generated video-call content). `content` narrows a builtin source to `photos` or `generated`, so two
    builtin sources with their own weights set the mix. `split` (train or val: `edgesharp.edge.imaging.splits`) keeps
    one part of a folder or builtin source; `downscale` area-downscales each image of it once, as it is read."""

    kind: str = "builtin"
    path: str = ""
    root: str = ""
    weight: float = 1.0
    content: str = "all"
    split: str = ""
    downscale: float = 1.0


@dataclass
class DataConfig:
    sources: list[DataSource] = field(default_factory=lambda: [DataSource()])
    crop: int = 256
    batch_size: int = 8
    workers: int = 2
    # images are read into memory once when a source has at most this many (0: never)
    cache_images: int = 2000
    builtin_count: int = 200
    # sharp images degraded on the fly: each crop is taken `factor` ~ U(min, max) times larger and
    # area-downscaled to `crop` ([1, 1]: full size)
    rescale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    # the fewest samples an epoch draws (0: the sources' total); larger epochs restart loader workers less often
    epoch_samples: int = 0


@dataclass
class TeacherConfig:
    """kind: none (alpha must be 1 in every phase), spandrel (a released checkpoint spandrel can load),
    student (an edgesharp checkpoint), cache (a folder of teacher outputs matched by stem)."""

    kind: str = "none"
    path: str = ""
    tile: int = 512
    overlap: int = 32
    half: bool = False


@dataclass
class PhaseConfig:
    name: str = "main"
    subsets: list[int] = field(default_factory=lambda: [1, 3, 5, 7])
    alpha: float = 1.0
    steps: int = 1000
    lr: float = 2e-4
    min_lr: float = 1e-6
    warmup_steps: int = 50


@dataclass
class LossConfig:
    kind: str = "charbonnier"
    eps: float = 1e-3
    ssim_weight: float = 0.0
    # gaussian (11x11) or uniform (7x7, the reported metric's window)
    ssim_window: str = "gaussian"
    freq_weight: float = 0.0


@dataclass
class OptimConfig:
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    # the EMA's decay rises as (1 + n) / (10 + n) to ema_decay, so a short run does not average in its start
    ema_warmup: bool = True
    amp: bool = True
    # multiplies every phase's lr and min_lr: a learning-rate sweep without rewriting the phases
    lr_scale: float = 1.0


@dataclass
class ValidationConfig:
    """source: "" (none), a folder of sharp images, or "builtin" (generated images unseen in training);
    `split` and `downscale` as in a data source (the validation part of a training folder: split val)."""

    source: str = ""
    split: str = ""
    downscale: float = 1.0
    every: int = 500
    levels: list[str] = field(default_factory=lambda: ["heavy", "medium", "low"])
    max_images: int = 24
    max_side: int = 512


@dataclass
class TrainConfig:
    arch: str = "nafnet-tiny"
    arch_config: dict = field(default_factory=dict)
    init_from: str = ""
    # load only the tensors of init_from whose names and shapes fit (an architecture with blocks removed or
    # added); the others keep their initialisation, and a new NAFBlock starts as the identity
    init_partial: bool = False
    out_dir: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    phases: list[PhaseConfig] = field(default_factory=lambda: [PhaseConfig()])
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    log_every: int = 10
    save_every: int = 500
    progress: bool = True
    # seconds of training (0: no limit): after `budget_probe_steps` steps the loop measures its rate and scales
    # every phase's steps by one factor so the run ends within the budget (a lent GPU's fixed time)
    time_budget_s: float = 0.0
    budget_probe_steps: int = 60


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check(value: Any, tp: Any, key: str) -> Any:
    """Return `value` converted to type `tp`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _merge(tp(), value, key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check(v, item, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _check(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a {tp}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML (YAML 1.1) reads exponents without a dot, such as 1e-5, as strings
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {tp}")


def _merge(obj: Any, data: dict, prefix: str = "") -> Any:
    """Apply a nested mapping of overrides to dataclass `obj` (in place) and return it."""
    hints = _hints(type(obj))
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in hints:
            raise ConfigError(f"unknown config key {full!r}; {prefix or 'top level'} has: {', '.join(hints)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _merge(current, value, full)
        else:
            setattr(obj, key, _check(value, hints[key], full))
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. phases.0.steps=100")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc.problem})") from exc
    return key.strip().split("."), value


def apply_override(cfg: TrainConfig, text: str) -> None:
    """Apply one `key.path=value` override (value parsed as YAML) with type checking."""
    parts, value = parse_override(text)
    obj: Any = cfg
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(obj, list):
            if not part.isdigit() or int(part) >= len(obj):
                raise ConfigError(f"override {text!r}: {here!r} is not an index of a list of {len(obj)}")
            if last:
                item_type = type(obj[int(part)])
                obj[int(part)] = _check(value, item_type, here)
                return
            obj = obj[int(part)]
            continue
        if isinstance(obj, dict):
            if last:
                obj[part] = value
                return
            obj = obj.setdefault(part, {})
            continue
        hints = _hints(type(obj))
        if part not in hints:
            parent = ".".join(parts[:depth]) or "top level"
            raise ConfigError(f"unknown config key {here!r}; {parent} has: {', '.join(hints)}")
        if last:
            setattr(obj, part, _check(value, hints[part], here))
            return
        obj = getattr(obj, part)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Checks across fields that types alone cannot express."""
    from edgesharp.edge.imaging.degrade import LEVELS, SUBSETS

    if not cfg.phases:
        raise ConfigError("phases: at least one phase is required")
    for i, p in enumerate(cfg.phases):
        if not 0.0 <= p.alpha <= 1.0:
            raise ConfigError(f"phases.{i}.alpha: expected a value in [0, 1], got {p.alpha}")
        if p.alpha < 1.0 and cfg.teacher.kind == "none":
            raise ConfigError(f"phases.{i}.alpha is {p.alpha} but teacher.kind is none: set a teacher or alpha 1")
        bad = [s for s in p.subsets if s not in SUBSETS]
        if bad or not p.subsets:
            raise ConfigError(f"phases.{i}.subsets: {p.subsets} must be a non-empty list of {sorted(SUBSETS)}")
        if p.steps <= 0 or p.lr <= 0:
            raise ConfigError(f"phases.{i}: steps and lr must be positive, got steps={p.steps} lr={p.lr}")
    if cfg.optim.lr_scale <= 0:
        raise ConfigError(f"optim.lr_scale: must be positive, got {cfg.optim.lr_scale}")
    if cfg.loss.kind not in ("charbonnier", "l1"):
        raise ConfigError(f"loss.kind: expected charbonnier or l1, got {cfg.loss.kind!r}")
    if cfg.teacher.kind not in ("none", "spandrel", "student", "cache"):
        raise ConfigError(f"teacher.kind: expected none, spandrel, student or cache, got {cfg.teacher.kind!r}")
    if cfg.teacher.kind != "none" and not cfg.teacher.path:
        raise ConfigError(f"teacher.path: required for teacher.kind {cfg.teacher.kind}")
    for i, s in enumerate(cfg.data.sources):
        if s.kind not in ("folder", "gopro", "realblur", "builtin"):
            raise ConfigError(f"data.sources.{i}.kind: expected folder, gopro, realblur or builtin, got {s.kind!r}")
        if s.kind != "builtin" and not s.path:
            raise ConfigError(f"data.sources.{i}.path: required for kind {s.kind}")
        if s.content not in BUILTIN_CONTENT:
            raise ConfigError(f"data.sources.{i}.content: expected one of {', '.join(BUILTIN_CONTENT)}, got {s.content!r}")
        if s.content != "all" and s.kind != "builtin":
            raise ConfigError(f"data.sources.{i}.content: only a builtin source can be narrowed, not {s.kind}")
        if s.weight <= 0:
            raise ConfigError(f"data.sources.{i}.weight: must be positive, got {s.weight}")
        if s.split and (s.split not in ("train", "val") or s.kind not in ("folder", "builtin")):
            raise ConfigError(f"data.sources.{i}.split: train or val, for a folder or builtin source, got {s.split!r} ({s.kind})")
        if not 1.0 <= s.downscale <= 8.0 or (s.downscale != 1.0 and s.kind not in ("folder", "builtin")):
            raise ConfigError(f"data.sources.{i}.downscale: 1 to 8, for a folder or builtin source, got {s.downscale} ({s.kind})")
    if cfg.validation.split not in ("", "train", "val"):
        raise ConfigError(f"validation.split: train or val, got {cfg.validation.split!r}")
    if not 1.0 <= cfg.validation.downscale <= 8.0:
        raise ConfigError(f"validation.downscale: 1 to 8, got {cfg.validation.downscale}")
    if cfg.time_budget_s < 0 or cfg.budget_probe_steps < 1:
        raise ConfigError(f"time_budget_s must be >= 0 and budget_probe_steps >= 1, got {cfg.time_budget_s}, {cfg.budget_probe_steps}")
    bad_levels = [v for v in cfg.validation.levels if v not in LEVELS]
    if bad_levels:
        raise ConfigError(f"validation.levels: unknown level(s) {bad_levels}; choose from {list(LEVELS)}")
    if cfg.data.crop <= 0 or cfg.data.batch_size <= 0:
        raise ConfigError(f"data: crop and batch_size must be positive, got {cfg.data.crop}, {cfg.data.batch_size}")
    if cfg.loss.ssim_window not in ("gaussian", "uniform"):
        raise ConfigError(f"loss.ssim_window: choose gaussian or uniform, not {cfg.loss.ssim_window!r}")
    r = cfg.data.rescale
    if len(r) != 2 or not 1.0 <= r[0] <= r[1] <= 8.0:
        raise ConfigError(f"data.rescale: need [min, max] with 1 <= min <= max <= 8, got {r}")
    return cfg


def _merge_file(cfg: TrainConfig, path: Path, seen: tuple[Path, ...]) -> None:
    """Merge the YAML file at `path` into `cfg`; a top-level `base: FILE` (relative to `path`) is merged first."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' chain loops back to this file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
        _merge_file(cfg, path.parent / base, (*seen, path.resolve()))
    try:
        _merge(cfg, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


_VARIABLE = re.compile(r"\$(?:(\w+)|\{([^}]*)\})")


def expand_path(value: str, key: str) -> str:
    """`value` with environment variables (`$VAR`, `${VAR}`) and a leading `~` expanded; an unset variable is
    a ConfigError naming `key`."""

    def variable(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise ConfigError(f"{key}: environment variable {name!r} in {value!r} is not set")
        return os.environ[name]

    return os.path.expanduser(_VARIABLE.sub(variable, value)) if value else value


def expand_paths(cfg: TrainConfig) -> TrainConfig:
    """Expand `~` and environment variables (in place) in the config's paths: init_from, out_dir, teacher.path,
    validation.source and each data source's path and root; returns `cfg`."""
    cfg.init_from = expand_path(cfg.init_from, "init_from")
    cfg.out_dir = expand_path(cfg.out_dir, "out_dir")
    cfg.teacher.path = expand_path(cfg.teacher.path, "teacher.path")
    cfg.validation.source = expand_path(cfg.validation.source, "validation.source")
    for i, source in enumerate(cfg.data.sources):
        source.path = expand_path(source.path, f"data.sources.{i}.path")
        source.root = expand_path(source.root, f"data.sources.{i}.root")
    return cfg


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults, then the YAML file at `path` (if any; its `base` file first), then each `key=value` override;
    paths expanded (`expand_paths`), validated."""
    cfg = TrainConfig()
    if path is not None:
        _merge_file(cfg, Path(path), ())
    for text in overrides:
        apply_override(cfg, text)
    return validate(expand_paths(cfg))


def to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(data: dict) -> TrainConfig:
    return validate(_merge(TrainConfig(), data))


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomically)."""
    import yaml

    from edgesharp.edge.imaging.io import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
    return path
