"""RunStats' CPU figure: measured over an interval, the same number in the status line and in --stats-json."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

from edgesharp.edge.stats import CPU_MIN_INTERVAL, RunStats


class FakeProcess:
    """A process whose CPU seconds and clock the test moves by hand."""

    def __init__(self):
        self.busy = 0.0

    def cpu_times(self):
        return SimpleNamespace(user=self.busy, system=0.0)

    def memory_info(self):
        return SimpleNamespace(rss=100 * 2**20)


def test_cpu_percent_is_measured_over_an_interval_not_between_two_close_calls():
    now = [0.0]
    proc = FakeProcess()
    stats = RunStats(clock=lambda: now[0], process=proc)
    now[0], proc.busy = 1.0, 0.75  # 75 % of one core for a second
    first = stats.snapshot()
    assert first["cpu_percent"] == 75.0
    line = stats.status_line(first)
    now[0] += 0.001  # --stats-json right after the last status line used to say 0.0
    again = stats.snapshot()
    assert again["cpu_percent"] == 75.0 and "cpu 75%" in line
    now[0], proc.busy = 2.0, 0.75 + 1.5  # two cores busy for the next second
    assert stats.snapshot()["cpu_percent"] == 150.0
    assert stats.snapshot()["mean_cpu_percent"] == 112.5


def test_first_sample_covers_the_time_since_the_start():
    now = [0.0]
    proc = FakeProcess()
    stats = RunStats(clock=lambda: now[0], process=proc)
    now[0], proc.busy = CPU_MIN_INTERVAL / 5, CPU_MIN_INTERVAL / 10
    assert stats.sample_process()[0] == 50.0


def test_json_matches_status_line_on_a_real_busy_process(tmp_path):
    stats = RunStats()
    stop = time.perf_counter() + 1.2
    x = 0
    while time.perf_counter() < stop:  # one core busy
        x += 1
    snap = stats.snapshot()
    status_cpu = float(stats.status_line(snap).split("cpu ")[1].split("%")[0])
    written = json.loads(stats.write_json(tmp_path / "stats.json").read_text())
    assert status_cpu > 50  # not 0.0
    assert abs(written["cpu_percent"] - status_cpu) <= 0.1 * status_cpu + 1
    assert written["mean_cpu_percent"] > 50


def test_concurrent_snapshots_keep_a_figure(tmp_path):
    stats = RunStats()
    results = []
    threads = [threading.Thread(target=lambda: results.append(stats.snapshot()["cpu_percent"])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r >= 0 for r in results)


def test_run_stats_json_has_a_cpu_figure(tiny_bundle_dir, tmp_path, capsys):
    from edgesharp.edge.cli import main

    out = tmp_path / "stats.json"
    assert main(["run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--size", "160x120",
                 "--frames", "120", "--sink", "null", "--stats-json", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["cpu_percent"] > 0 and stats["mean_cpu_percent"] > 0
