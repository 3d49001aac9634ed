"""README tables are generated between marker comments from stored results."""

from __future__ import annotations

import json

import pytest

from edgesharp.benchmarks import readme_tables, report
from edgesharp.edge.errors import EdgesharpError

RESULTS = {
    "format": report.FORMAT, "created": "2026-01-02T03:04:05+00:00",
    "machine": {"cpu_model": "Test CPU", "physical_cores": 4, "frequency_ghz": 3.0, "peak": {"fp32_gmacs": 192.0},
                "libraries": {"openvino": "2026.4"}},
    "fps": [
        {"suite": "fps", "kind": "model", "model": "nafnet-tiny", "backend": "pytorch", "precision": "fp32",
         "size": "640x480", "mode": "sync", "fps": 0.5, "requests": 1},
        {"suite": "fps", "kind": "model", "model": "nafnet-tiny", "backend": "openvino", "precision": "int8",
         "size": "640x480", "mode": "sync", "fps": 2.0, "requests": 1},
    ],
    "quality": {"source": "kodak24", "seed": 0, "rows": [
        {"suite": "quality", "method": "unsharp mask", "level": "heavy", "ssim": 0.835, "psnr": 28.12}]},
}


def test_sections_are_replaced_and_the_rest_is_kept(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    readme = tmp_path / "README.md"
    s, e = readme_tables.markers("performance")
    qs, qe = readme_tables.markers("quality")
    readme.write_text(f"# Title\nintro\n{s}\nold table\n{e}\nmiddle\n{qs}\n{qe}\nend\n")
    assert readme_tables._main([str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\nintro\n") and "\nmiddle\n" in text and text.endswith("end\n")
    assert "old table" not in text
    assert "| nafnet-tiny | openvino | int8 | 640x480 | sync x1 | 2.00 | 4.00x |" in text
    assert "| unsharp mask | 0.835 / 28.12 |" in text
    assert readme_tables._main([str(readme), "--results", str(results)]) == 0
    assert readme.read_text() == text  # idempotent


def test_missing_markers_name_the_file(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(EdgesharpError, match="README.md: markers <!-- bench:performance:start -->"):
        readme_tables.update_file(readme, results)


def test_a_capped_run_says_so_in_its_machine_line(tmp_path):
    capped = json.loads(json.dumps(RESULTS))
    capped["machine"]["isa_cap"] = "AVX2"
    results = tmp_path / "results.json"
    results.write_text(json.dumps(capped))
    readme = tmp_path / "README.md"
    s, e = readme_tables.markers("performance")
    readme.write_text(f"{s}\n{e}\n")
    readme_tables.update_file(readme, results, sections=["performance"])
    assert "Measured on Test CPU, 4 cores at 3.0 GHz, oneDNN and PyTorch capped at AVX2 (`--isa-cap`)" in readme.read_text()


def test_models_keeps_the_speed_rows_of_the_named_models_only():
    from edgesharp.benchmarks.readme_tables import only_models

    results = {"fps": [{"model": "a", "kind": "model"}, {"model": "b", "kind": "model"}, {"model": "b", "kind": "verdict"}]}
    assert [r["model"] for r in only_models(results, ["b"])["fps"]] == ["b", "b"]
    assert only_models(results, []) is results
    with pytest.raises(EdgesharpError, match="--models: no speed rows for c"):
        only_models(results, ["c"])
