"""Model bundles: the folder `edgesharp calibrate` writes and the runtime loads (docs/contracts.md).

`load_bundle(folder)` reads `manifest.json`, checks its format and fields, verifies the size and
sha256 of every listed file, and returns a `Bundle` that says which file serves a (backend,
precision) pair. Every problem raises `BundleError` naming the file and what is wrong with it.

A bundle may name a lighter variant of itself (optional key `lighter`: the variant's folder relative to the
bundle's, and its measured time per frame as a share of the bundle's), which the frame-rate governor runs when
the machine cannot keep up (`edgesharp.calibrate.lighter` links one). It is loaded and verified only when asked
for (`Bundle.lighter()`), so a broken link never stops the bundle itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesharp.edge.errors import BundleError

FORMAT = "edgesharp-bundle/1"
MANIFEST = "manifest.json"
BACKENDS = ("openvino", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "int8")
ONNX_CONTRACT = {"input": "input", "output": "output", "layout": "NCHW", "dtype": "float32", "color": "RGB", "range": [0, 1]}
IR_CONTRACT = {"layout": "NHWC", "dtype": "uint8", "color": "BGR"}

# key -> expected JSON type(s)
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "name": str,
    "arch": str,
    "arch_config": dict,
    "size_multiple": int,
    "onnx_contract": dict,
    "ir_contract": dict,
    "files": dict,
    "precisions": dict,
    "metrics": dict,
}


LIGHTER = "lighter"  # {"path": folder relative to the bundle's, "cost": share of the time, "measured": {...}}
MAX_SIZE_MULTIPLE = 256  # frames are padded up to a multiple of this; more would pad a 640x360 frame to 768x512
# Numeric fields by key, wherever they sit in the manifest: (low, high), both inclusive. `edgesharp calibrate`
# writes every number finite (allow_nan=False), so any NaN or infinity is refused as well.
_RANGES: dict[str, tuple[float, float]] = {
    "size_multiple": (1, MAX_SIZE_MULTIPLE),
    "bytes": (0, math.inf),
    "ssim": (-1.0, 1.0), "mean_ssim": (-1.0, 1.0), "best_mean_ssim": (-1.0, 1.0),
    "worst_drop": (-1.0, 1.0),  # a drop is FP32's SSIM minus this precision's: negative where it did better
    "max_ssim_drop": (0.0, 1.0), "below_input_tolerance": (0.0, 1.0),
    "psnr": (0.0, math.inf),
    "tolerance": (0.0, 255.0), "self_check_error": (0.0, 255.0),  # mean absolute difference in 8-bit levels
    "seconds": (0.0, math.inf), "samples": (0, math.inf), "params": (0, math.inf), "macs_per_pixel": (0.0, math.inf),
}
# every number under these keys: SSIM drops per degradation level, frames per second per precision
_RANGES_BELOW: dict[str, tuple[float, float]] = {
    "drops": (-1.0, 1.0), "int8_ssim_drop": (-1.0, 1.0), "fps_1280x720": (0.0, math.inf), "arch_config": (0, math.inf),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_numbers(value: Any, path: Path, where: str = "", bounds: tuple[float, float] | None = None) -> None:
    """Every number in the manifest is finite, and those `_RANGES`/`_RANGES_BELOW` name lie in their range."""
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            inner = _RANGES_BELOW.get(key, bounds)
            _check_numbers(item, path, f"{where}.{key}" if where else key, _RANGES.get(key, inner) if
                           _is_number(item) else inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_numbers(item, path, f"{where}[{i}]", bounds)
    elif _is_number(value):
        if not math.isfinite(value):
            raise BundleError(f"{path}: {where} must be a finite number, got {value}")
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            low, high = bounds
            wanted = f">= {low}" if math.isinf(high) else f"between {low} and {high}"
            raise BundleError(f"{path}: {where} must be {wanted}, got {value}")


def default_bundle_path() -> Path:
    """The bundle shipped inside the package, used whenever no model is named."""
    return Path(__file__).resolve().parent / "models" / "default"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest's record of one file: its sha256 and size in bytes."""
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


@dataclass(frozen=True)
class Lighter:
    """A bundle's lighter variant: the variant itself and its time per frame as a share of the bundle's."""

    bundle: Bundle
    cost: float
    measured: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder; `model_path(backend, precision)` gives the file a backend loads."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def arch(self) -> str:
        return self.manifest["arch"]

    @property
    def arch_config(self) -> dict[str, Any]:
        return self.manifest["arch_config"]

    @property
    def size_multiple(self) -> int:
        return self.manifest["size_multiple"]

    @property
    def precisions(self) -> tuple[str, ...]:
        """Precisions with at least one backend file, in PRECISIONS order."""
        return tuple(p for p in PRECISIONS if self.manifest["precisions"].get(p))

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest["metrics"]

    @property
    def int8_ssim_drop(self) -> dict[str, Any]:
        return self.manifest.get("int8_ssim_drop", {})

    def backends(self, precision: str) -> tuple[str, ...]:
        return tuple(self.manifest["precisions"].get(precision, {}))

    def lighter(self) -> Lighter | None:
        """The lighter variant this bundle names, loaded and verified; None when it names none. A variant that
        is missing or broken raises `BundleError` naming both folders."""
        entry = self.manifest.get(LIGHTER)
        if entry is None:
            return None
        folder = self.path / entry["path"]
        try:
            variant = load_bundle(folder)
        except BundleError as exc:
            raise BundleError(f"{self.path / MANIFEST}: its lighter variant {entry['path']!r} cannot be used "
                              f"({exc})") from None
        self.check_lighter(variant)
        return Lighter(variant, float(entry["cost"]), dict(entry.get("measured", {})))

    def check_lighter(self, variant: Bundle) -> None:
        """Refuse a lighter variant the governor cannot switch to at one frame size: the bundle itself, or one
        that pads frames to a larger multiple."""
        if variant.path.resolve() == self.path.resolve():
            raise BundleError(f"{variant.path}: is the bundle itself, not a lighter variant of it")
        if variant.size_multiple > self.size_multiple:
            raise BundleError(f"{self.path / MANIFEST}: its lighter variant {variant.path} needs frames padded to "
                              f"{variant.size_multiple}, more than this bundle's {self.size_multiple}")

    def has(self, backend: str, precision: str) -> bool:
        return backend in self.manifest["precisions"].get(precision, {})

    def model_path(self, backend: str, precision: str) -> Path:
        """The IR (.xml) for openvino or the .onnx for onnxruntime at `precision`."""
        if backend not in BACKENDS:
            raise BundleError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        entry = self.manifest["precisions"].get(precision)
        if not entry:
            have = ", ".join(self.precisions) or "none"
            raise BundleError(f"{self.path / MANIFEST}: no {precision!r} model in this bundle (has {have})")
        if backend not in entry:
            have = ", ".join(entry)
            raise BundleError(f"{self.path / MANIFEST}: no {backend} file for {precision} (has {have})")
        return self.path / entry[backend]


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a model bundle folder (does not exist or is not a folder)")
    if not path.is_file():
        raise BundleError(f"{path}: missing; {folder} is not a model bundle (run 'edgesharp calibrate' to make one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def _check_fields(manifest: dict[str, Any], path: Path) -> None:
    fmt = manifest.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("edgesharp-bundle/"):
            raise BundleError(f"{path}: bundle format {fmt!r} is not supported by this edgesharp (needs {FORMAT!r}); re-run 'edgesharp calibrate'")
        raise BundleError(f"{path}: 'format' must be {FORMAT!r}, got {fmt!r}")
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            raise BundleError(f"{path}: missing field {key!r}")
        value = manifest[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BundleError(f"{path}: field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    _check_numbers(manifest, path)
    for key, expected in (("onnx_contract", ONNX_CONTRACT), ("ir_contract", IR_CONTRACT)):
        if manifest[key] != expected:
            raise BundleError(f"{path}: {key} {manifest[key]} is not the one this runtime speaks ({expected})")
    files = manifest["files"]
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("bytes"), int):
            raise BundleError(f"{path}: files[{name!r}] must be {{'sha256': str, 'bytes': int}}, got {entry!r}")
        if Path(name).name != name:
            raise BundleError(f"{path}: files[{name!r}] must be a plain file name inside the bundle")
    if not manifest["precisions"].get("fp32"):
        raise BundleError(f"{path}: 'precisions' has no fp32 entry")
    if LIGHTER in manifest:
        _check_lighter(manifest[LIGHTER], path)
    for precision, entry in manifest["precisions"].items():
        if precision not in PRECISIONS:
            raise BundleError(f"{path}: unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
        if not isinstance(entry, dict):
            raise BundleError(f"{path}: precisions[{precision!r}] must be an object, got {type(entry).__name__}")
        for backend, name in entry.items():
            if backend not in BACKENDS:
                raise BundleError(f"{path}: precisions[{precision!r}] names unknown backend {backend!r}")
            needed = [name] + ([str(Path(name).with_suffix(".bin"))] if str(name).endswith(".xml") else [])
            for need in needed:
                if need not in files:
                    raise BundleError(f"{path}: {precision}/{backend} file {need!r} is not listed in 'files'")


def _check_lighter(entry: Any, path: Path) -> None:
    """The `lighter` entry: a relative folder that is not the bundle itself, and a cost strictly below 1."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not _is_number(entry.get("cost")):
        raise BundleError(f"{path}: 'lighter' must be {{'path': str, 'cost': number}}, got {entry!r}")
    folder = entry["path"]
    if not folder or Path(folder).is_absolute() or Path(folder) == Path("."):
        raise BundleError(f"{path}: lighter.path {folder!r} must name another bundle folder, relative to this one")
    if not 0.0 < entry["cost"] < 1.0:
        raise BundleError(f"{path}: lighter.cost must be between 0 and 1 (its share of this model's time), "
                          f"got {entry['cost']}")
    if not isinstance(entry.get("measured", {}), dict):
        raise BundleError(f"{path}: lighter.measured must be an object, got {type(entry['measured']).__name__}")


def _verify_files(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle (listed in {MANIFEST})")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise BundleError(f"{path}: size {size} bytes, manifest says {entry['bytes']} (truncated or replaced)")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise BundleError(f"{path}: sha256 {digest[:12]}... does not match the manifest's {entry['sha256'][:12]}... (corrupt or replaced)")


def load_bundle(folder: str | os.PathLike, verify: bool = True) -> Bundle:
    """Read and validate a bundle folder; `verify` also checks every file's size and sha256."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    _check_fields(manifest, folder / MANIFEST)
    if verify:
        _verify_files(folder, manifest["files"])
    return Bundle(path=folder, manifest=manifest)
