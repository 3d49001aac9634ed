"""The live-settings study: one end-to-end row per setting, with the request counts the settings ask for."""

from __future__ import annotations

import json

from edgesharp.benchmarks import live_settings


def test_each_setting_runs_the_pipeline_with_its_requests(tiny_bundle, tmp_path, capsys):
    rc = live_settings.main(["--model", str(tiny_bundle), "--sizes", "96x64", "--seconds", "0.6", "--camera-fps", "60",
                             "--out", str(tmp_path)])
    assert rc == 0
    results = json.loads((tmp_path / "live-settings.json").read_text())
    rows = {r["setting"]: r for r in results["rows"]}
    assert set(rows) == {live_settings.setting_label(*s) for s in live_settings.SETTINGS}
    for r in rows.values():
        assert r["fps"] > 0 and r["size"] == "96x64", r
    base = rows["throughput, optimal + 0"]["requests"]
    assert rows["throughput, optimal + 1"]["requests"] == base + 1
    assert rows["throughput, optimal + 2"]["requests"] == base + 2
    assert rows["latency, optimal + 1"]["requests"] == rows["latency, optimal + 0"]["requests"] + 1
    md = (tmp_path / "live-settings.md").read_text()
    assert "| throughput, optimal + 1 |" in md and "Machine:" in md


def test_a_bad_size_is_a_one_line_error(tiny_bundle, tmp_path, capsys):
    assert live_settings.main(["--model", str(tiny_bundle), "--sizes", "big", "--out", str(tmp_path)]) == 2
    assert "size 'big': expected WIDTHxHEIGHT" in capsys.readouterr().err
