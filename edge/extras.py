"""Optional dependencies: import them on demand and say which extra installs them when absent."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgesharp.edge.errors import MissingExtra

# import name -> (pip distribution, edgesharp extra)
KNOWN = {
    "torch": ("torch", "train"),
    "spandrel": ("spandrel", "train"),
    "spandrel_extra_arches": ("spandrel-extra-arches", "train"),
    "yaml": ("pyyaml", "train"),
    "tqdm": ("tqdm", "train"),
    "onnx": ("onnx", "calibrate"),
    "nncf": ("nncf", "calibrate"),
    "skimage": ("scikit-image", "calibrate"),
    "onnxruntime": ("onnxruntime", "ort"),
    "pyvirtualcam": ("pyvirtualcam", "vcam"),
    "matplotlib": ("matplotlib", "bench"),
    "openvino": ("openvino", "all"),
}


def install_hint(module: str, extra: str | None = None) -> str:
    dist, known_extra = KNOWN.get(module, (module, None))
    extra = extra or known_extra
    if extra and extra != "all":
        return f"pip install 'edgesharp[{extra}]'"
    return f"pip install {dist}"


def require(module: str, purpose: str, extra: str | None = None) -> ModuleType:
    """Import `module` or raise MissingExtra naming what to install, e.g. require("torch", "edgesharp train")."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{purpose} needs {module}, which is not installed: {install_hint(module, extra)}") from exc
