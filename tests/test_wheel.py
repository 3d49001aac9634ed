"""The distribution: a wheel built from this tree installs one top-level package, `edgesharp`, and works.

The wheel goes into a clean virtual environment (no system site-packages); its dependencies are
borrowed from this interpreter by a plain path entry, which adds their folders to sys.path without
running this environment's editable-install hooks, so only the wheel can provide `edgesharp`.
"""

import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"edgesharp": "edgesharp", "edge": "edgesharp/edge", "train": "edgesharp/train",
           "calibrate": "edgesharp/calibrate", "benchmarks": "edgesharp/benchmarks"}

pytestmark = pytest.mark.slow


def _venv_bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / (name + (".exe" if sys.platform == "win32" else ""))


def _venv_site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for folder in FOLDERS:
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (found,) = dist.glob("edgesharp-*.whl")
    return found


def test_wheel_holds_every_module_under_edgesharp_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"edgesharp"}, tops
    expected = {f"{FOLDERS[folder]}/{p.relative_to(REPO / folder).as_posix()}"
                for folder in FOLDERS for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts}
    assert expected - set(names) == set(), "modules missing from the wheel (add the package to pyproject.toml)"
    for model in ("default", "default-lighter"):  # the default and the lighter variant its manifest links
        shipped = {f"edgesharp/edge/models/{model}/{p.name}" for p in (REPO / "edge/models" / model).iterdir()}
        assert shipped and shipped <= set(names), f"the {model} model must ship inside the wheel"
    assert any(n.startswith("edgesharp/train/configs/") and n.endswith(".yaml") for n in names)
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "edgesharp = edgesharp.edge.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_wheel_installs_into_a_clean_venv_and_sharpens(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = _venv_bin(venv, "python")
    packages = _venv_site_packages(python)
    before = {p.name for p in packages.iterdir()}
    result = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    added = {p.name for p in packages.iterdir()} - before
    assert {n for n in added if not n.endswith(".dist-info")} == {"edgesharp"}, added
    for name in ("edge", "train", "calibrate", "benchmarks"):
        assert not (packages / name).exists()

    # dependencies from this interpreter, appended after the venv's own packages
    deps = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (packages / "borrowed-deps.pth").write_text("\n".join(deps) + "\n")

    code = ("import importlib.util, edgesharp; edgesharp.Sharpener\n"
            "print(edgesharp.__file__)\n"
            "print(*[importlib.util.find_spec(n) is not None for n in ('edge', 'train', 'calibrate', 'benchmarks')])\n")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    where, found = out.stdout.strip().splitlines()
    assert Path(where).resolve().is_relative_to(packages.resolve())
    assert found == "False False False False"

    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), cv2.GaussianBlur(image, (5, 5), 1.5))
    cmd = [str(_venv_bin(venv, "edgesharp")), "-q", "enhance", str(tmp_path / "in.png"), str(tmp_path / "out.png")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert cv2.imread(str(tmp_path / "out.png")).shape == (48, 64, 3)
