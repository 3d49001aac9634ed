"""The frame-rate governor: steps down after its hold period and not before, up only after a longer calm stretch
with headroom, never oscillates (a signal hovering at the threshold, a load estimate that is wrong), logs absent
levers once and each change in one line; the pipeline applies its decisions (fake backend whose speed changes)."""

from __future__ import annotations

import logging
import random
import threading
import time

import numpy as np
import pytest
from fakes import FakeBackend, ScaledCostBackend

from edgesharp.edge import governor as gov_module
from edgesharp.edge import pipeline as pipeline_module
from edgesharp.edge.backends.variants import VariantBackend
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.governor import (
    COOLDOWN_S,
    MAX_STEP_UP_HOLD_S,
    STEP_DOWN_HOLD_S,
    STEP_UP_HOLD_S,
    Governor,
    absent_lever,
    model_lever,
    scale_lever,
    scaled_size,
)
from edgesharp.edge.pipeline import Pipeline, add_detail
from edgesharp.edge.sinks import NullSink
from edgesharp.edge.sources import IterableSource, SyntheticSource

DT = 0.5  # the pipeline feeds the governor twice a second
S = "processing scale"
M = "lighter model"


def drive(gov: Governor, measure, start: float, end: float) -> list:
    """Observe `measure(t, scale) -> (fps, input_fps, load)` every DT from `start` to `end`; the changes made."""
    made = []
    steps = int(round((end - start) / DT))
    for k in range(steps + 1):
        t = start + k * DT
        change = gov.observe(*measure(t, gov.value("processing scale") or 1.0), now=t)
        if change is not None:
            made.append(change)
    return made


def plant(capacity, noise: float = 0.0, seed: int = 0, source_fps: float = 30.0, load_bias: float = 1.0):
    """A machine that runs `capacity(t)` frames/s at full scale, cost going with the pixels (scale^2); the delivered
    rate is what the source gives or what the machine can, whichever is lower, plus noise."""
    rng = random.Random(seed)

    def measure(t: float, scale: float):
        fps_possible = capacity(t) / (scale * scale)
        fps = min(source_fps, fps_possible) + rng.gauss(0.0, noise)
        load = 1.2 if fps_possible < source_fps else source_fps / fps_possible
        return fps, source_fps, load * load_bias

    return measure


def test_steps_down_after_the_hold_period_not_before():
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    assert drive(gov, plant(lambda t: 45.0), 0.0, 10.0) == []
    # from t = 10 the machine delivers 20 fps: below 27 for 3 s -> the step, at 13.0 and not at 12.5
    slow = plant(lambda t: 20.0)
    assert drive(gov, slow, 10.0, 12.5) == []
    (change,) = drive(gov, slow, 13.0, 13.0)
    assert (change.before, change.after, change.direction) == ({S: 1.0}, {S: 0.75}, "down")
    assert change.t == 13.0 and STEP_DOWN_HOLD_S == 3.0
    assert gov.value("processing scale") == 0.75 and gov.describe() == "governor: processing scale 0.75"


def test_a_short_dip_costs_nothing():
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    dips = plant(lambda t: 20.0 if 10.0 <= t % 20.0 < 12.5 else 45.0)  # 2.5 s of 20 fps every 20 s
    assert drive(gov, dips, 0.0, 600.0) == []


def test_nothing_changes_during_the_cool_down_after_the_start():
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    slow = plant(lambda t: 20.0)
    assert drive(gov, slow, 0.0, COOLDOWN_S - DT) == []
    assert len(drive(gov, slow, COOLDOWN_S, COOLDOWN_S)) == 1


def test_steps_up_only_after_the_longer_period_with_headroom():
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    busy = {"capacity": 20.0}
    measure = plant(lambda t: busy["capacity"])
    (down,) = drive(gov, measure, 0.0, 5.0)
    assert down.after == {S: 0.75}
    # at 0.75 the machine (45 fps there) holds 30: load 0.67, predicted 1.19 at 1.0: it stays down, for ever
    busy["capacity"] = 25.3
    assert drive(gov, measure, 5.5, 600.0) == []
    # the load goes away: full scale would use 30/60 = 0.5 <= 0.75; the step waits STEP_UP_HOLD_S of calm
    busy["capacity"] = 60.0
    assert drive(gov, measure, 600.5, 600.5 + STEP_UP_HOLD_S - DT) == []
    (up,) = drive(gov, measure, 600.5 + STEP_UP_HOLD_S, 600.5 + STEP_UP_HOLD_S)
    assert (up.before, up.after, up.direction) == ({S: 0.75}, {S: 1.0}, "up")
    assert "load 0.28 predicts 0.50 <= 0.75 one step up for 10 s" in up.reason
    assert drive(gov, measure, 611.0, 1200.0) == []


def test_a_step_down_goes_to_the_best_level_predicted_to_reach_the_target():
    """20 fps at full size: 0.75 (35.6 predicted) is enough. Later 8 fps at full size, 14.2 at 0.75: 0.5 (32)."""
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    changes = drive(gov, plant(lambda t: 20.0 if t < 30.0 else 8.0), 0.0, 120.0)
    assert [(c.before[S], c.after[S]) for c in changes] == [(1.0, 0.75), (0.75, 0.5)]
    assert changes[1].t == 33.0


def test_goes_straight_to_the_cheapest_and_logs_the_floor_once(caplog):
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.governor"):
        changes = drive(gov, plant(lambda t: 5.0), 0.0, 120.0)
    assert [(c.before[S], c.after[S]) for c in changes] == [(1.0, 0.5)]  # 0.75 would give 8.9, 0.5 20: the least
    floor = [r for r in caplog.records if "cheapest" in r.getMessage()]
    assert len(floor) == 1 and floor[0].levelno == logging.WARNING


def test_never_oscillates_on_a_rate_hovering_at_the_threshold():
    """Full scale delivers 27 +- 1.5 fps (the threshold) for two hours: one step down, then it stays."""
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    changes = drive(gov, plant(lambda t: 27.0, noise=1.5, seed=3), 0.0, 7200.0)
    assert len(changes) <= 1 and all(c.direction == "down" for c in changes)


def test_a_wrong_load_estimate_is_retried_ever_more_rarely():
    """The load reads half what it is, so every step up fails: the calm stretch doubles each time up to its cap."""
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    changes = drive(gov, plant(lambda t: 24.0, load_bias=0.5), 0.0, 7200.0)
    ups = [c.t for c in changes if c.direction == "up"]
    gaps = np.diff(ups)
    assert len(ups) >= 5 and all(b >= a for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] >= MAX_STEP_UP_HOLD_S
    # a failed probe (two changes) per doubling, then one per MAX_STEP_UP_HOLD_S; without the back-off: a change
    # every ~8 s, about 900 in two hours
    assert len(changes) <= 2 * (7 + 7200.0 / MAX_STEP_UP_HOLD_S)
    assert len([c for c in changes if c.t > 3600.0]) <= 2 * (3600.0 / MAX_STEP_UP_HOLD_S) + 2


def test_model_and_scale_form_one_ladder_by_cost():
    """A model whose lighter variant costs 0.6 of its time: the ladder is v12, lean, v12 at 0.75, lean at 0.75,
    ... The governor takes the lighter model first, lowers the scale when that is not enough, climbs back one level
    at a time, and predicts the step back to the full model from the variant's cost. `ahead` names the next levels
    before they are needed (what the pipeline prepares)."""
    costs = {"v12": 1.0, "lean": 0.6}
    gov = Governor(30.0, [absent_lever("precision", "forced"), model_lever(("v12", "lean"), (1.0, 0.6)), scale_lever()])
    gov.start(0.0)
    machine = {"capacity": 25.0}  # frames/s of the full model at full scale

    def run(start: float, end: float) -> list:
        made = []
        for k in range(int(round((end - start) / DT)) + 1):
            t = start + k * DT
            possible = machine["capacity"] / (costs[gov.value("lighter model")] * gov.value("processing scale") ** 2)
            load = 1.2 if possible < 30.0 else 30.0 / possible
            change = gov.observe(min(30.0, possible), 30.0, load, now=t)
            made.append(change) if change is not None else None
        return made

    assert gov.ahead() == [{M: "lean", S: 1.0}, {M: "v12", S: 0.75}]
    (first,) = run(0.0, 60.0)  # 25 / 0.6 = 41.7 fps with the lighter model: enough
    assert (first.before, first.after) == ({"lighter model": "v12"}, {"lighter model": "lean"})
    assert gov.ahead(1) == [{M: "v12", S: 0.75}]
    machine["capacity"] = 15.0  # 25 fps with the lighter model: now the scale goes too
    (second,) = run(60.5, 120.0)
    assert second.after == {S: 0.75}  # v12 at 0.75 would give 26.7: lean stays, the scale goes
    assert gov.describe() == "governor: lighter model lean, processing scale 0.75"
    machine["capacity"] = 60.0
    ups = run(120.5, 400.0)
    # one level dearer at a time: v12 at 0.75 (0.5625 of the cost), lean at full size (0.6), then v12
    assert [c.after for c in ups] == [{"lighter model": "v12"}, {"lighter model": "lean", S: 1.0},
                                      {"lighter model": "v12"}]
    # lean at full scale: 30 / 100 = 0.30 busy; v12 predicted 0.30 / 0.6 = 0.50
    assert "load 0.30 predicts 0.50" in ups[2].reason
    assert gov.level == {"lighter model": "v12", "processing scale": 1.0}
    machine["capacity"] = 1.0
    run(400.5, 500.0)
    assert gov.ahead() == [] and gov.level == {M: "lean", S: 0.5}


def test_a_lighter_model_that_would_not_be_enough_is_skipped():
    """A CPU hog leaves the model 21 fps: the lighter model (0.82 of its time) would give 25.6, short of 30, so
    the step goes to the model at 0.75 of the size (37), as if there were no lighter model."""
    gov = Governor(30.0, [model_lever(("v12", "lean"), (1.0, 0.82)), scale_lever()])
    gov.start(0.0)
    (change,) = drive(gov, lambda t, scale: (21.0, 30.0, 1.2), 0.0, 5.0)
    assert (change.before, change.after) == ({S: 1.0}, {S: 0.75})
    assert gov.level == {M: "v12", S: 0.75}


def test_a_slow_source_is_not_a_reason_to_lower_the_quality():
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    dim_camera = plant(lambda t: 60.0, source_fps=15.0)  # the camera gives 15 fps; all of them are delivered
    assert drive(gov, dim_camera, 0.0, 300.0) == []


def test_absent_levers_are_skipped_with_one_log_line(caplog):
    levers = [absent_lever("precision", "auto already runs fp16"), absent_lever("lighter model", "none shipped"),
              scale_lever()]
    gov = Governor(30.0, levers)
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.governor"):
        gov.start(0.0)
        changes = drive(gov, plant(lambda t: 20.0), 0.0, 60.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["governor: precision: not a lever here (auto already runs fp16)",
                         "governor: lighter model: not a lever here (none shipped)"]
    assert sum("not a lever" in line for line in lines) == 2
    assert all(set(c.after) == {S} for c in changes)
    assert gov.info() == {"target_fps": 30.0, "levers": ["processing scale"],
                          "absent": {"precision": "auto already runs fp16", "lighter model": "none shipped"}}


def test_only_absent_levers_change_nothing(caplog):
    gov = Governor(30.0, [absent_lever("precision", "forced")])
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.governor"):
        gov.start(0.0)
        assert drive(gov, plant(lambda t: 5.0), 0.0, 60.0) == []
    assert any("no lever can act here" in r.getMessage() for r in caplog.records)
    assert gov.describe() == "governor: full quality"


def test_the_log_line_and_the_stats_record(caplog):
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    drive(gov, plant(lambda t: 45.0), 0.0, 10.0)
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.governor"):
        (change,) = drive(gov, lambda t, s: (24.1, 30.0, 1.2), 10.0, 13.0)
    assert [r.getMessage() for r in caplog.records] == [
        "governor: 24.1 fps < 27.0 target for 3 s: processing scale 1.0 -> 0.75"]
    assert change.to_dict() == {"t": 13.0, "from": {S: 1.0}, "to": {S: 0.75},
                                "reason": "24.1 fps < 27.0 target for 3 s", "fps": 24.1, "direction": "down"}


def test_bad_target_is_refused():
    with pytest.raises(ValueError, match="target fps"):
        Governor(0.0, [scale_lever()])


@pytest.mark.parametrize(("size", "scale", "multiple", "expected"), [
    ((640, 480), 1.0, 32, (640, 480)),
    ((640, 480), 0.75, 32, (480, 352)),
    ((640, 480), 0.5, 32, (320, 256)),
    ((1280, 720), 0.75, 8, (960, 544)),
    ((40, 30), 0.5, 32, (32, 30)),  # never below one multiple, never above the frame
])
def test_scaled_size_rounds_to_the_size_multiple(size, scale, multiple, expected):
    assert scaled_size(*size, scale, multiple) == expected


def test_add_detail_adds_what_the_model_added_at_full_resolution():
    rng = np.random.default_rng(0)
    original = rng.integers(20, 230, (48, 64, 3), dtype=np.uint8)
    small = original[::2, ::2].copy()
    assert np.array_equal(add_detail(original, small, small), original)  # the model changed nothing: nor does this
    brighter = (small.astype(np.int16) + 10).astype(np.uint8)
    assert np.array_equal(add_detail(original, small, brighter), original + 10)
    assert add_detail(np.full((8, 8, 3), 250, np.uint8), np.zeros((4, 4, 3), np.uint8),
                      np.full((4, 4, 3), 20, np.uint8)).max() == 255  # saturates


def test_without_a_governor_the_stats_have_no_governor():
    frames = [np.full((32, 32, 3), i, np.uint8) for i in range(5)]
    snap = Pipeline(IterableSource(frames), FakeBackend(), [NullSink()]).run()
    assert "governor" not in snap and "governor" not in snap["run"] and snap["frames_written"] == 5


def test_pipeline_applies_the_decisions_of_a_backend_whose_speed_changes(monkeypatch):
    """A 96x64 camera at 30 fps; the backend does 60 fps at full size, then 20 (slowed down 3x): the governor
    steps to 0.75 (35 fps there); back at full speed it steps up again. Decisions, not times, are checked."""
    monkeypatch.setattr(gov_module, "STEP_DOWN_HOLD_S", 0.5)
    monkeypatch.setattr(gov_module, "STEP_UP_HOLD_S", 1.0)
    monkeypatch.setattr(gov_module, "COOLDOWN_S", 1.2)  # longer than the 1 s rate window
    monkeypatch.setattr(pipeline_module, "GOVERN_EVERY_S", 0.1)
    backend = ScaledCostBackend(frame_s=1 / 60, full_pixels=96 * 64, slowdown=3.0)
    governor = Governor(30.0, [absent_lever("precision", "forced"), scale_lever()])
    pipeline = Pipeline(SyntheticSource((96, 64), fps=30.0, level="none"), backend, [NullSink()], governor=governor)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(pipeline.run()))
    runner.start()
    try:
        assert _wait_for(lambda: len(governor.changes) >= 1 and backend.sizes[-1] == (72, 48))
        backend.slowdown = 1.0
        assert _wait_for(lambda: len(governor.changes) >= 2)
    finally:
        pipeline.stop("test over")
        runner.join(30)
    recorded = [(c["from"], c["to"], c["direction"]) for c in result["governor"]]
    assert recorded == [({S: 1.0}, {S: 0.75}, "down"), ({S: 0.75}, {S: 1.0}, "up")]
    # the two cheaper scales compiled ahead of need, nearest first; the step up asks for full size again
    assert backend.prepared[0] == (72, 48) and (48, 32) in backend.prepared and backend.prepared[-1] == (96, 64)
    assert backend.sizes[:2] == [(96, 64), (72, 48)]
    assert result["run"]["governor"]["absent"] == {"precision": "forced"}
    assert result["frames_written"] + result["frames_dropped"] == result["frames_captured"]
    assert pipeline.stats.status_line().endswith("governor: full quality")


def test_pipeline_switches_to_the_lighter_model_and_back(monkeypatch):
    """The model at 20 fps (slowed 3x), its lighter variant at 0.6 of its time (33 fps): the governor switches models
    and keeps the full scale; back at full speed it returns to the model. The variant opens on first use, in the
    background, ahead of need, and is prepared for the frame size before any frame goes to it."""
    monkeypatch.setattr(gov_module, "STEP_DOWN_HOLD_S", 0.5)
    monkeypatch.setattr(gov_module, "STEP_UP_HOLD_S", 1.0)
    monkeypatch.setattr(gov_module, "COOLDOWN_S", 1.2)
    monkeypatch.setattr(pipeline_module, "GOVERN_EVERY_S", 0.1)
    model = ScaledCostBackend(frame_s=1 / 60, full_pixels=96 * 64, slowdown=3.0)
    opened: list[ScaledCostBackend] = []

    def open_lighter() -> ScaledCostBackend:
        opened.append(ScaledCostBackend(frame_s=0.6 / 60, full_pixels=96 * 64, slowdown=3.0))
        return opened[-1]

    backend = VariantBackend(model, ["v12", "lean"], [open_lighter])
    governor = Governor(30.0, [model_lever(backend.names, (1.0, 0.6)), scale_lever()])
    pipeline = Pipeline(SyntheticSource((96, 64), fps=30.0, level="none"), backend, [NullSink()], governor=governor)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(pipeline.run()))
    runner.start()
    try:
        assert _wait_for(lambda: len(governor.changes) >= 1 and opened and opened[0].sizes)
        model.slowdown = opened[0].slowdown = 1.0
        assert _wait_for(lambda: len(governor.changes) >= 2)
    finally:
        pipeline.stop("test over")
        runner.join(30)
        backend.close()
    (lean,) = opened
    recorded = [(c["from"], c["to"], c["direction"]) for c in result["governor"]]
    assert recorded[:2] == [({M: "v12"}, {M: "lean"}, "down"), ({M: "lean"}, {M: "v12"}, "up")]
    assert lean.prepared[0] == (96, 64) and lean.sizes == [(96, 64)]  # prepared ahead; frames at full scale
    assert (72, 48) in lean.prepared  # once on the lighter model, its next step (0.75) was prepared ahead too
    assert model.submitted > 0 and lean.submitted > 0 and lean._closed
    assert result["run"]["model_variants"] == ["v12", "lean"]
    assert result["frames_written"] + result["frames_dropped"] == result["frames_captured"]


@pytest.mark.parametrize("ahead", [True, False])
def test_a_lighter_model_that_fails_to_open_is_dropped_and_the_run_goes_on(monkeypatch, caplog, ahead):
    """The lighter model's opener raises (a broken variant), found while preparing ahead of need or only at the
    switch: one warning, the governor drops the lever and lowers the processing scale instead, and the run ends
    normally."""
    monkeypatch.setattr(gov_module, "STEP_DOWN_HOLD_S", 0.5)
    monkeypatch.setattr(gov_module, "COOLDOWN_S", 1.2)
    monkeypatch.setattr(pipeline_module, "GOVERN_EVERY_S", 0.1)
    model = ScaledCostBackend(frame_s=1 / 60, full_pixels=96 * 64, slowdown=3.0)

    def broken() -> ScaledCostBackend:
        raise EdgesharpError("lean/fp16.xml: OpenVINO cannot read this model")

    backend = VariantBackend(model, ["v12", "lean"], [broken])
    governor = Governor(30.0, [model_lever(backend.names, (1.0, 0.6)), scale_lever()])
    if not ahead:
        monkeypatch.setattr(governor, "ahead", lambda n=2: [])
    pipeline = Pipeline(SyntheticSource((96, 64), fps=30.0, level="none"), backend, [NullSink()], governor=governor)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(pipeline.run()))
    with caplog.at_level(logging.WARNING):
        runner.start()
        try:
            assert _wait_for(lambda: governor.changes and model.sizes[-1] == (72, 48))
        finally:
            pipeline.stop("test over")
            runner.join(30)
            backend.close()
    assert result["frames_written"] > 0 and pipeline._error is None
    # v12 at 0.75 (35.6 predicted); found only at the switch, the step to the lighter model came first and the
    # record of the step back to v12 follows it, so the recorded changes add up to what ran
    recorded = [(c["to"], c["reason"]) for c in result["governor"]]
    back = [] if ahead else [({M: "lean"}, recorded[0][1]), ({M: "v12"}, "no longer a lever")]
    assert recorded == back + [({S: 0.75}, recorded[-1][1])]
    assert governor.info()["absent"] == {M: "lean failed: lean/fp16.xml: OpenVINO cannot read this model"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("lighter model lean failed" in w for w in warnings) == 1
    assert any("lighter model: no longer a lever" in w for w in warnings)


def test_dropping_a_lever_keeps_the_others_where_they_are():
    gov = Governor(30.0, [model_lever(("v12", "lean"), (1.0, 0.82)), scale_lever()])
    gov.start(0.0)
    drive(gov, lambda t, scale: (21.0, 30.0, 1.2), 0.0, 5.0)  # to v12 at 0.75
    assert gov.drop(M, "failed") is None, "the model had not moved: nothing to switch back"
    assert gov.level == {S: 0.75} and gov.ahead() == [{S: 0.5}] and gov.info()["absent"] == {M: "failed"}
    assert gov.drop(M, "again") is None  # already gone: nothing changes
    assert gov.info()["absent"] == {M: "failed"}


def test_dropping_the_lever_in_use_returns_the_change_back_to_its_first_value():
    gov = Governor(30.0, [model_lever(("v12", "lean"), (1.0, 0.82)), scale_lever()])
    gov.start(0.0)
    drive(gov, lambda t, scale: (25.5, 30.0, 1.2), 0.0, 5.0)  # short by 15 %: to the lighter model (31.1 predicted)
    assert gov.level == {M: "lean", S: 1.0}
    change = gov.drop(M, "lean failed", now=6.0, fps=26.5)
    assert change is not None and change.direction == "up" and change.t == pytest.approx(6.0)
    assert change.to_dict()["from"] == {M: "lean"} and change.to_dict()["to"] == {M: "v12"}
    assert gov.changes[-1] is change and gov.level == {S: 1.0} and gov.ahead() == [{S: 0.75}, {S: 0.5}]


def _wait_for(condition, limit: float = 60.0) -> bool:
    """Poll `condition` until it holds (a guard against a hang, not a timing assertion)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_governor_constants_keep_their_order():
    assert STEP_UP_HOLD_S > STEP_DOWN_HOLD_S and COOLDOWN_S > 1.0  # 1.0: the rate window


def test_holds_count_from_when_a_change_took_effect():
    """A change applied 4 s after the decision (a compile ahead of it): no new decision within COOLDOWN_S of then."""
    gov = Governor(30.0, [scale_lever()])
    gov.start(0.0)
    slow = plant(lambda t: 20.0 if t <= COOLDOWN_S else 8.0)  # 0.75 first, then still short there
    (first,) = drive(gov, slow, 0.0, COOLDOWN_S)
    gov.applied(COOLDOWN_S + 4.0)
    assert drive(gov, slow, COOLDOWN_S + 4.0, 2 * COOLDOWN_S + 4.0 - DT) == []
    assert len(drive(gov, slow, 2 * COOLDOWN_S + 4.0, 2 * COOLDOWN_S + 4.0)) == 1
