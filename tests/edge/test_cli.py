"""The `edgesharp` command frame: help of every subcommand, version, verbosity, missing extras, degrade."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from edgesharp import __version__
from edgesharp.edge.cli import SUBCOMMANDS, main
from edgesharp.edge.errors import MissingExtra
from edgesharp.edge.extras import require
from edgesharp.edge.imaging.io import read_image, write_image


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("run", "enhance", "train", "calibrate", "bench", "degrade", "devices"):
        assert name in out
    assert set(SUBCOMMANDS) == {"run", "enhance", "train", "calibrate", "bench", "degrade", "devices"}


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_each_subcommand_has_help_with_examples(capsys, name):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: edgesharp {name}" in out
    assert "example" in out.lower()


def test_help_loads_no_heavy_library():
    code = (
        "import sys\n"
        "from edge.cli import main\n"
        "for name in ['run', 'enhance', 'train', 'calibrate', 'bench', 'degrade', 'devices']:\n"
        "    try:\n"
        "        main([name, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'nncf', 'onnx', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"edgesharp {__version__}"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_require_names_the_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(MissingExtra) as info:
        require("torch", "edgesharp train")
    assert str(info.value) == "edgesharp train needs torch, which is not installed: pip install 'edgesharp[train]'"


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    for module in ("torch", "onnx", "nncf", "spandrel"):
        monkeypatch.setitem(sys.modules, module, None)
    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'edgesharp[train]'" in err[0]


def test_degrade_command_writes_levels_and_parameters(tmp_path, test_image, capsys):
    src = tmp_path / "sharp"
    write_image(src / "one.png", test_image)
    write_image(src / "two.jpg", 255 - test_image)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert main(["-q", "degrade", str(src), str(tmp_path / "out"), "--level", "all"]) == 0
    out = capsys.readouterr().out
    assert "1 unreadable, skipped" in out
    for level in ("heavy", "medium", "low"):
        folder = tmp_path / "out" / level
        assert sorted(p.name for p in folder.glob("*.png")) == ["one.png", "two.png"]
        record = json.loads((folder / "degradation.json").read_text())
        assert record["level"] == level and set(record["images"]) == {"one", "two"}
        assert "broken.png" in record["skipped"]
        assert read_image(folder / "one.png").shape == test_image.shape


def test_degrade_score_and_subset(tmp_path, test_image, capsys):
    src = tmp_path / "sharp"
    write_image(src / "one.png", test_image)
    assert main(["degrade", str(src), str(tmp_path / "h"), "--level", "heavy", "--score", "-q"]) == 0
    assert "SSIM 0." in capsys.readouterr().out
    assert main(["degrade", str(src), str(tmp_path / "s7"), "--subset", "7", "-q"]) == 0
    record = json.loads((tmp_path / "s7" / "degradation.json").read_text())
    assert record["subset"] == 7 and record["images"]["one"]["subset"] == 7


def test_degrade_missing_folder_is_one_line_error(tmp_path, capsys):
    assert main(["degrade", str(tmp_path / "nothing"), str(tmp_path / "o"), "--level", "low"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("nothing: not a folder of images") and len(err.splitlines()) == 1


def test_unforeseen_os_errors_are_one_line_with_the_traceback_under_v(capsys):
    from edgesharp.edge.cli import call_handler

    def handler(args):
        raise PermissionError(13, "Permission denied", "/some/file")

    args = argparse.Namespace(verbose=0)
    assert call_handler("run", handler, args) == 1
    assert capsys.readouterr().err == "edgesharp run: error: /some/file: Permission denied\n"
    args.verbose = 1
    assert call_handler("run", handler, args) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgesharp run: error: /some/file: Permission denied\n") and "Traceback" in err


def test_usage_errors_exit_2(capsys):
    from edgesharp.edge.cli import call_handler
    from edgesharp.edge.errors import UsageError

    def handler(args):
        raise UsageError("--fps inf: the frame rate must be a finite number above 0")

    assert call_handler("run", handler, argparse.Namespace(verbose=0)) == 2
    assert capsys.readouterr().err == "edgesharp run: error: --fps inf: the frame rate must be a finite number above 0\n"


@pytest.mark.parametrize("option, value, message", [
    ("--device", "NOPE", "edgesharp run: error: --device NOPE: OpenVINO has no device named NOPE"),
    ("--streams", "-3", "edgesharp run: error: --streams -3: must be a whole number of at least 1, or AUTO"),
    ("--streams", "abc", "edgesharp run: error: --streams abc: must be a whole number of at least 1, or AUTO"),
    ("--requests", "65", "edgesharp run: error: --requests 65: at most 64 frames in flight"),
])
def test_bad_backend_options_are_one_line_naming_the_option(tiny_bundle_dir, capsys, option, value, message):
    assert main(["-q", "run", "--model", str(tiny_bundle_dir), "--precision", "fp32", "--source", "synthetic:fast",
                 "--size", "96x64", "--frames", "2", "--sink", "null", option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
