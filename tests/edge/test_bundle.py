"""edge.bundle: loading and verifying model bundles, and the one-line errors for broken ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgesharp.edge.bundle import (
    FORMAT,
    IR_CONTRACT,
    ONNX_CONTRACT,
    default_bundle_path,
    file_entry,
    load_bundle,
)
from edgesharp.edge.errors import BundleError

FILES = {"model.onnx": b"onnx", "fp32.xml": b"<xml32/>", "fp32.bin": b"\x00" * 64, "fp16.xml": b"<xml16/>",
         "fp16.bin": b"\x01" * 32, "int8.xml": b"<xml8/>", "int8.bin": b"\x02" * 16, "calibration_report.json": b"{}"}


def make_bundle(folder: Path, **overrides) -> Path:
    """A structurally valid bundle with placeholder model files (the loader does not parse them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    manifest = {
        "format": FORMAT, "name": "fake", "arch": "nafnet-test", "arch_config": {"width": 8}, "size_multiple": 8,
        "onnx_contract": ONNX_CONTRACT, "ir_contract": IR_CONTRACT,
        "files": {name: file_entry(folder / name) for name in FILES},
        "precisions": {"fp32": {"openvino": "fp32.xml", "onnxruntime": "model.onnx"}, "fp16": {"openvino": "fp16.xml"},
                       "int8": {"openvino": "int8.xml"}},
        "metrics": {"fp32": {"heavy": {"ssim": 0.9, "psnr": 30.0}}}, "int8_ssim_drop": {"openvino": {"mean": 0.001}},
    }
    manifest.update(overrides)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_loads_a_valid_bundle(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "b"))
    assert bundle.size_multiple == 8 and bundle.arch == "nafnet-test" and bundle.arch_config == {"width": 8}
    assert bundle.precisions == ("fp32", "fp16", "int8")
    assert bundle.model_path("openvino", "int8") == tmp_path / "b" / "int8.xml"
    assert bundle.model_path("onnxruntime", "fp32").name == "model.onnx"
    assert bundle.has("onnxruntime", "fp32") and not bundle.has("onnxruntime", "int8")
    assert bundle.metrics["fp32"]["heavy"]["ssim"] == 0.9


def test_absent_backend_or_precision_is_named(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "b", precisions={"fp32": {"openvino": "fp32.xml"}}))
    with pytest.raises(BundleError, match="no 'int8' model in this bundle"):
        bundle.model_path("openvino", "int8")
    with pytest.raises(BundleError, match="no onnxruntime file for fp32"):
        bundle.model_path("onnxruntime", "fp32")


def test_missing_file(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "int8.bin").unlink()
    with pytest.raises(BundleError, match=r"int8\.bin: missing from the bundle"):
        load_bundle(folder)


def test_bad_hash_same_size(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "fp32.bin").write_bytes(b"\x07" * 64)
    with pytest.raises(BundleError, match=r"fp32\.bin: sha256 .* does not match"):
        load_bundle(folder)
    assert load_bundle(folder, verify=False).name == "fake"


def test_truncated_file(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "fp16.bin").write_bytes(b"\x01" * 3)
    with pytest.raises(BundleError, match=r"fp16\.bin: size 3 bytes, manifest says 32"):
        load_bundle(folder)


def test_bad_manifest_json(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / "manifest.json").write_text('{"format": "edgesharp-bundle/1",')
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        load_bundle(folder)


def test_missing_manifest_and_folder(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle folder"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        load_bundle(tmp_path / "empty")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"format": "edgesharp-bundle/2"}, "not supported by this edgesharp"),
        ({"format": "something-else"}, "'format' must be"),
        ({"size_multiple": 0}, "size_multiple must be between 1 and 256, got 0"),
        ({"size_multiple": 4096}, "size_multiple must be between 1 and 256, got 4096"),
        ({"max_ssim_drop": 1.5}, "max_ssim_drop must be between 0.0 and 1.0, got 1.5"),
        ({"max_ssim_drop": -0.01}, "max_ssim_drop must be between 0.0 and 1.0, got -0.01"),
        ({"metrics": {"fp32": {"heavy": {"ssim": 2.0, "psnr": 30.0}}}}, r"metrics\.fp32\.heavy\.ssim must be between"),
        ({"metrics": {"fp32": {"heavy": {"ssim": 0.9, "psnr": float("nan")}}}},
         r"metrics\.fp32\.heavy\.psnr must be a finite number, got nan"),
        ({"metrics": {"fp32": {"heavy": {"ssim": 0.9, "psnr": -3}}}}, r"psnr must be >= 0\.0, got -3"),
        ({"int8_ssim_drop": {"openvino": {"mean": 7}}}, r"int8_ssim_drop\.openvino\.mean must be between -1\.0 and 1\.0"),
        ({"self_check": {"input": "a.png", "output": "b.png", "tolerance": -1}}, r"self_check\.tolerance must be between 0\.0 and 255\.0"),
        ({"kernel_classes": {"classes": {"avx2": {"seconds": float("inf")}}}}, r"kernel_classes\.classes\.avx2\.seconds must be a finite"),
        ({"kernel_classes": {"classes": {"avx2": {"fps_1280x720": {"int8": -20.0}}}}}, r"fps_1280x720\.int8 must be >= 0\.0, got -20"),
        ({"kernel_classes": {"classes": {"avx2": {"precisions": {"int8": {"drops": {"heavy": 3.0}}}}}}},
         r"drops\.heavy must be between -1\.0 and 1\.0"),
        ({"arch_config": {"width": -8}}, r"arch_config\.width must be >= 0, got -8"),
        ({"recipe": {"lr": float("-inf")}}, r"recipe\.lr must be a finite number, got -inf"),
        ({"size_multiple": "8"}, "'size_multiple' must be int"),
        ({"ir_contract": {"layout": "NCHW", "dtype": "uint8", "color": "BGR"}}, "ir_contract"),
        ({"precisions": {"fp16": {"openvino": "fp16.xml"}}}, "no fp32 entry"),
        ({"precisions": {"fp32": {"openvino": "other.xml"}}}, "'other.xml' is not listed"),
        ({"precisions": {"fp32": {"tensorrt": "fp32.xml"}}}, "unknown backend 'tensorrt'"),
        ({"files": {"../escape": {"sha256": "0", "bytes": 1}}}, "plain file name"),
    ],
)
def test_invalid_manifest_fields(tmp_path, override, message):
    folder = make_bundle(tmp_path / "b", **override)
    with pytest.raises(BundleError, match=message) as err:
        load_bundle(folder)
    assert "manifest.json" in str(err.value) and "\n" not in str(err.value)


def test_missing_required_field(tmp_path):
    folder = make_bundle(tmp_path / "b")
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["arch"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="missing field 'arch'"):
        load_bundle(folder)


def test_default_bundle_path_is_inside_the_package():
    import edgesharp.edge

    assert default_bundle_path() == Path(edgesharp.edge.__file__).parent / "models" / "default"


def test_edge_bundle_stays_light():
    import subprocess

    code = "import sys, edgesharp.edge.bundle; print(sorted(m for m in ('torch', 'nncf', 'onnx', 'openvino') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_file_sizes_must_not_be_negative(tmp_path):
    folder = make_bundle(tmp_path / "b")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["fp32.xml"]["bytes"] = -1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"files\.fp32\.xml\.bytes must be >= 0, got -1"):
        load_bundle(folder)


def test_the_shipped_bundle_is_in_range():
    load_bundle(default_bundle_path(), verify=False)


def test_a_lighter_variant_is_loaded_only_when_asked_for(tmp_path):
    make_bundle(tmp_path / "lean", name="lean")
    bundle = load_bundle(make_bundle(tmp_path / "main", lighter={"path": "../lean", "cost": 0.8,
                                                                 "measured": {"size": "1280x720"}}))
    lighter = bundle.lighter()
    assert lighter.bundle.name == "lean" and lighter.cost == 0.8 and lighter.measured == {"size": "1280x720"}
    assert load_bundle(make_bundle(tmp_path / "plain")).lighter() is None


def test_a_broken_lighter_variant_names_both_bundles_and_spares_the_bundle(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "main", lighter={"path": "../gone", "cost": 0.8}))  # loads
    with pytest.raises(BundleError, match=r"main/manifest.json: its lighter variant '../gone' cannot be used "
                                          r"\(.*gone: not a model bundle folder") as err:
        bundle.lighter()
    assert "\n" not in str(err.value)
    with pytest.raises(BundleError, match="is the bundle itself"):
        load_bundle(make_bundle(tmp_path / "self", lighter={"path": "../self", "cost": 0.8})).lighter()
    make_bundle(tmp_path / "coarse", size_multiple=64)
    with pytest.raises(BundleError, match="needs frames padded to 64, more than this bundle's 8"):
        load_bundle(make_bundle(tmp_path / "main2", lighter={"path": "../coarse", "cost": 0.8})).lighter()


@pytest.mark.parametrize(("entry", "message"), [
    ("../lean", r"'lighter' must be \{'path': str, 'cost': number\}"),
    ({"path": "../lean"}, r"'lighter' must be"),
    ({"path": "/abs/lean", "cost": 0.5}, "must name another bundle folder, relative to this one"),
    ({"path": ".", "cost": 0.5}, "must name another bundle folder"),
    ({"path": "../lean", "cost": 1.0}, r"lighter.cost must be between 0 and 1 .*got 1.0"),
    ({"path": "../lean", "cost": 0}, "lighter.cost must be between 0 and 1"),
    ({"path": "../lean", "cost": 0.5, "measured": []}, "lighter.measured must be an object"),
])
def test_bad_lighter_entries_are_refused(tmp_path, entry, message):
    with pytest.raises(BundleError, match=message):
        load_bundle(make_bundle(tmp_path / "b", lighter=entry))
