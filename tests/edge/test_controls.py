"""Live controls: the key table, keys typed in a terminal, and `run` offering them when no window does."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from edgesharp.edge import controls


class Controls(SimpleNamespace):
    def __init__(self):
        super().__init__(strength=1.0, bypass=False, stopped=None)

    def stop(self, reason):
        self.stopped = reason


def test_keys_step_the_strength_within_its_range_and_toggle_bypass():
    c = Controls()
    assert controls.apply_key(c, "+") == "strength 1.0"  # already at the top
    assert [controls.apply_key(c, k) for k in "---"] == ["strength 0.9", "strength 0.8", "strength 0.7"]
    for _ in range(12):
        controls.apply_key(c, "_")
    assert c.strength == 0.0
    assert controls.apply_key(c, "=") == "strength 0.1"
    assert controls.apply_key(c, "b") == "bypass on" and c.bypass
    assert controls.apply_key(c, "B") == "bypass off" and not c.bypass
    assert controls.apply_key(c, "x") is None and controls.apply_key(c, "q") == "quit"


def test_terminal_lines_apply_each_key_and_q_stops_the_run():
    c = Controls()
    controls.read_terminal_keys(c, io.StringIO("--\nb\n\nzz\nq\n+\n"))
    assert c.strength == 0.8 and c.bypass and c.stopped == "quit from the terminal"  # nothing after q


@pytest.mark.parametrize("tty, sink, expected", [(True, "null", True), (False, "null", False), (True, "preview", False)])
def test_run_reads_terminal_keys_only_without_a_window(monkeypatch, tiny_bundle_dir, tty, sink, expected):
    from edgesharp.edge.cli import main

    started = []
    monkeypatch.setattr(controls, "start_terminal_keys", lambda pipeline, stream: started.append(pipeline))
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: tty))
    if sink == "preview":
        import edgesharp.edge.sinks as sinks

        class Headless(sinks.PreviewSink):  # a window that needs no display
            def __init__(self, *a, **k):
                from test_sinks import FakeGui

                super().__init__(gui=FakeGui([]))

        monkeypatch.setattr(sinks, "PreviewSink", Headless)
    rc = main(["run", "--model", str(tiny_bundle_dir), "--source", "synthetic", "--size", "64x48", "--frames", "3",
               "--sink", sink, "-q"])
    assert rc == 0 and bool(started) == expected
