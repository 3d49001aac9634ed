"""Per-layer OpenVINO profile: spec parsing, counters grouped by type, the LayerNorm variant's extra ops."""

from __future__ import annotations

import pytest

from edgesharp.benchmarks import layers
from edgesharp.edge.errors import EdgesharpError


def test_spec_overrides_are_typed_and_checked():
    assert layers.parse_spec("nafnet-rt") == ("nafnet-rt", {})
    assert layers.parse_spec("nafnet-rt:norm=layernorm,width=24") == ("nafnet-rt", {"norm": "layernorm", "width": 24})
    assert layers.parse_spec("nafnet-rt:enc_blk_nums=0/1/2,width=32") == ("nafnet-rt", {"enc_blk_nums": [0, 1, 2], "width": 32})
    with pytest.raises(EdgesharpError, match="expected key=value after ':', got 'width'"):
        layers.parse_spec("nafnet-rt:width")


def test_layernorm_shows_up_as_its_own_reductions(tmp_path, capsys):
    pytest.importorskip("openvino")
    rc = layers.main(["nafnet-test", "nafnet-test:norm=none", "--size", "32x32", "--precision", "fp32",
                      "--iterations", "2", "--out", str(tmp_path)])
    assert rc == 0
    import json

    profiles = json.loads((tmp_path / "layers.json").read_text())["profiles"]
    with_norm, without = profiles["nafnet-test"], profiles["nafnet-test:norm=none"]
    assert with_norm["precision_hint"].endswith("f32") or "float32" in with_norm["precision_hint"]
    assert "Convolution" in with_norm["types"] and with_norm["counted_ms"] > 0
    # every block's LayerNorm adds channel reductions the norm-free network does not have
    assert with_norm["types"]["ReduceMean"]["nodes"] > without["types"].get("ReduceMean", {"nodes": 0})["nodes"]
    assert "| Convolution |" in (tmp_path / "layers.md").read_text()
    assert layers.main(["nafnet-test", "--size", "32"]) == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
