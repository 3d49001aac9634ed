"""Step 5: write a model bundle atomically: build it in a hidden staging folder beside the target, verify, swap.

An interrupted or failed calibrate leaves neither a half bundle nor a damaged previous one: the old
bundle is renamed aside only after the new one is complete and verified, and removed after the swap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from edgesharp.edge.bundle import FORMAT, IR_CONTRACT, MANIFEST, ONNX_CONTRACT, file_entry, load_bundle
from edgesharp.edge.errors import BundleError

log = logging.getLogger(__name__)

REPORT = "calibration_report.json"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("edgesharp", "torch", "onnx", "onnxruntime", "openvino", "nncf", "numpy", "opencv-python", "scikit-image"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def dump_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")


class BundleStaging:
    """`with BundleStaging(out) as stage:` write files into `stage.path`, then `stage.commit(manifest, report)`.

    Leaving the block without commit (an exception, Ctrl-C) deletes the staging folder and keeps `out` as it was.
    """

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out).resolve()
        self.path = self.out.parent / f".{self.out.name}.staging-{uuid.uuid4().hex[:8]}"
        self.committed = False

    def __enter__(self) -> BundleStaging:
        if self.out.exists() and not self.out.is_dir():
            raise BundleError(f"{self.out}: exists and is not a folder; choose another --out")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, manifest: dict, report: dict) -> Path:
        """Hash the files, write manifest and report, verify the staged bundle, and swap it into place."""
        dump_json(self.path / REPORT, report)
        names = sorted(p.name for p in self.path.iterdir() if p.is_file() and p.name != MANIFEST)
        full = {
            "format": FORMAT,
            **manifest,
            "onnx_contract": ONNX_CONTRACT,
            "ir_contract": IR_CONTRACT,
            "files": {name: file_entry(self.path / name) for name in names},
            "versions": library_versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        dump_json(self.path / MANIFEST, full)
        load_bundle(self.path)  # the runtime's own check, before anything replaces the old bundle
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, old)
        try:
            os.replace(self.path, self.out)
        except BaseException:  # put the previous bundle back, whatever stopped the swap
            if old is not None:
                os.replace(old, self.out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        log.info("bundle written: %s (%d files)", self.out, len(names) + 1)
        return self.out
