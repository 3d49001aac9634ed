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


def test_nodes_are_assigned_to_the_part_of_the_network_they_come_from():
    assert layers.part_of("/decoders.3/decoders.3.0/norm1/ReduceMean") == "decoders.3.0"
    assert layers.part_of("/middle_blks/middle_blks.0/conv1a/Conv") == "middle_blks.0"
    assert layers.part_of("/intro/Conv/WithoutBiases") == "intro"
    assert layers.part_of("/ups.3/ups.3.1/DepthToSpace") == "ups.3"
    assert layers.part_of("/Add_3") == "(skips and residual)"
    assert layers.part_of("Transpose_18346") == "(I/O conversion)"


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
    # the time split by part: the stem, a block of each list, the u8 I/O conversions
    assert {"intro", "ending", "encoders.0.0", "middle_blks.0", "decoders.0.0", "(I/O conversion)"} <= set(with_norm["parts"])
    assert sum(p["ms"] for p in with_norm["parts"].values()) == pytest.approx(with_norm["counted_ms"])
    assert "| decoders.0.0 |" in (tmp_path / "layers.md").read_text()
    assert layers.main(["nafnet-test", "--size", "32"]) == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
