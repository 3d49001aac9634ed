"""The frame-rate governor: holds `edgesharp run` at a target rate on a machine whose load changes.

`Governor` is a pure decision object. The pipeline feeds it measurements twice a second (`observe`: the
delivered and the captured rate over the last second, and the backend's load, the mean number of frames
inside it per parallel stream) and applies the one level change it may return.

A level is one value of every lever. The levels form a ladder ordered by their relative cost (the product of
their levers' costs), the dearest first, which is also the order of quality: each lever's values go from best
to cheapest, and where two levers combine, the measured costs decide (the lighter model at full size, 0.82 of
the model's time, comes before the model at 0.75 of the size, 0.56; `docs/benchmarks.md`). A step down goes to
the best level predicted to reach the target (the rate now, which is the machine's capacity when it falls
short, times the ratio of the two costs), or the cheapest one; a step up goes one level dearer.

Hysteresis, so that it never oscillates:
- down only after the delivered rate stayed below (1 - TOLERANCE) x target for STEP_DOWN_HOLD_S;
- up only after STEP_UP_HOLD_S at the target with the load predicted for the costlier level (the load now
  times the cost ratio of the two levels) at most HEADROOM_LOAD;
- nothing at all for COOLDOWN_S after a change (and after the start);
- a step up undone within FAILED_PROBE_S doubles the calm stretch every later step up needs (up to
  MAX_STEP_UP_HOLD_S, for the rest of the run), so a wrong prediction is retried ever more rarely.

The target is never above the rate the source delivers: a camera that slows down in a dark room is not a
reason to lower the quality.

Levers considered (`edgesharp.edge.commands.run` builds them): the precision (absent when `auto` already
runs the fastest precision that passed the CPU class's guard, or when --precision forced one), a lighter
model variant (`model_lever`: present when the bundle names one, `edgesharp.edge.bundle`) and the processing
scale (`PROCESSING_SCALES`: the model runs on the frame downscaled and its detail is added back at full
resolution, `edgesharp.edge.pipeline`; its cost in quality: `python -m edgesharp.benchmarks.scale_quality`). The number of frames in flight is not a lever: an
unstored probe under a CPU hog found fewer requests slower and more no faster.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

TOLERANCE = 0.10  # a rate within 10% of the target looks smooth; the bound for a governed run
STEP_DOWN_HOLD_S = 3.0  # a burst (a tab opening, a compile) must not cost quality; 3 s of shortfall is a trend
STEP_UP_HOLD_S = 10.0  # going back up risks a visible stutter: ask for a calm stretch three times as long
COOLDOWN_S = 5.0  # after a change the rate window, the queue and a compile need time to show the new level
HEADROOM_LOAD = 0.75  # the costlier level must fit with a quarter to spare (rate-window noise, load wobble)
FAILED_PROBE_S = 60.0  # a step down this soon after a step up means the prediction was wrong
PROBE_BACKOFF = 2.0  # each failed step up doubles the next one's calm stretch: retries become exponentially rare
MAX_STEP_UP_HOLD_S = 600.0  # but a machine whose load went away is retried within 10 minutes

MODEL = "lighter model"  # the lever names, as logs, stats and the pipeline read them
SCALE = "processing scale"
PROCESSING_SCALES = (1.0, 0.75, 0.5)  # the last lever; below half size the model sees too little detail


@dataclass(frozen=True)
class Lever:
    """One way to make a frame cheaper: its values from best quality (the start) to cheapest, each value's
    relative cost, and, when it cannot act here, why (logged once)."""

    name: str
    values: tuple = ()
    costs: tuple = ()  # relative cost of each value (the first is 1.0); predicts the load one step up
    absent: str | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.absent is None and (len(self.values) < 2 or len(self.costs) != len(self.values)):
            raise ValueError(f"lever {self.name}: needs two or more values, each with a cost")

    def text(self, index: int) -> str:
        return f"{self.values[index]}{self.unit}"


def scale_lever(scales: Sequence[float] = PROCESSING_SCALES) -> Lever:
    """The processing scale: the model's work goes with the pixel count, the square of the scale."""
    return Lever(SCALE, tuple(scales), tuple(s * s for s in scales))


def model_lever(names: Sequence[str], costs: Sequence[float]) -> Lever:
    """The model: the bundle's own, then its lighter variants, each with its measured share of the first's time."""
    return Lever(MODEL, tuple(names), tuple(costs))


def absent_lever(name: str, why: str) -> Lever:
    return Lever(name, absent=why)


def scaled_size(width: int, height: int, scale: float, multiple: int = 1, min_side: int = 8) -> tuple[int, int]:
    """(w, h) of a frame processed at `scale`: rounded to the model's size multiple (so the backend pads
    nothing), at least `min_side` and one multiple."""
    if scale >= 1.0:
        return width, height
    floor = max(min_side, multiple)

    def side(n: int) -> int:
        return min(n, max(floor, int(round(n * scale / multiple)) * multiple))

    return side(width), side(height)


def moves_text(before: dict, after: dict) -> str:
    """'lever old -> new, ...' for the levers of a change (a `Change`, or its `to_dict` record)."""
    return ", ".join(f"{name} {before[name]} -> {value}" for name, value in after.items())


@dataclass(frozen=True)
class Change:
    """One decision: `t` seconds after the start, the levers that move from their `before` to their `after`
    values (name -> value), at a delivered `fps`."""

    t: float
    before: dict
    after: dict
    reason: str
    fps: float
    direction: str  # "down" (cheaper) or "up"

    def line(self) -> str:
        return f"governor: {self.reason}: {moves_text(self.before, self.after)}"

    def to_dict(self) -> dict:
        return {"t": round(self.t, 2), "from": dict(self.before), "to": dict(self.after), "reason": self.reason,
                "fps": round(self.fps, 1), "direction": self.direction}


def ladder(levers: Sequence[Lever]) -> list[tuple[tuple[int, ...], float]]:
    """Every level of the active `levers` (one value index per lever) with its cost, the dearest first; equal
    costs keep the levers' order (the first lever's cheaper value first)."""
    levels = [(idx, math.prod(lever.costs[i] for lever, i in zip(levers, idx, strict=True)))
              for idx in itertools.product(*(range(len(lever.values)) for lever in levers))]
    return sorted(levels, key=lambda level: (-level[1], tuple(-i for i in level[0])))


class Governor:
    """Decides level changes from measurements; `observe` returns a `Change` to apply, or None."""

    def __init__(self, target_fps: float, levers: Sequence[Lever], clock: Callable[[], float] = time.monotonic):
        if not (math.isfinite(target_fps) and target_fps > 0):
            raise ValueError(f"target fps {target_fps!r}: must be a finite number above 0")
        self.target_fps = float(target_fps)
        self.levers = list(levers)
        self.active = [lever for lever in self.levers if lever.absent is None]
        self.ladder = ladder(self.active)
        self._clock = clock
        self._rung = 0  # the current level's place on the ladder
        self.changes: list[Change] = []
        self._started: float | None = None
        self._quiet_until = 0.0
        self._below_since: float | None = None
        self._calm_since: float | None = None
        self._up_hold = STEP_UP_HOLD_S
        self._last_up: float | None = None
        self._floor_logged = False

    # -- state -------------------------------------------------------------------------------------------
    def _values(self, rung: int) -> dict:
        return {lever.name: lever.values[i] for lever, i in zip(self.active, self.ladder[rung][0], strict=True)}

    def value(self, name: str):
        """The current value of lever `name`; None when it is absent or unknown."""
        return self.level.get(name)

    @property
    def level(self) -> dict:
        return self._values(self._rung)

    def describe(self) -> str:
        """The status line's part: the levers away from their start, else 'full quality'."""
        moved = [f"{lever.name} {lever.text(i)}" for lever, i in zip(self.active, self.ladder[self._rung][0],
                                                                      strict=True) if i]
        return "governor: " + (", ".join(moved) if moved else "full quality")

    def info(self) -> dict:
        return {"target_fps": self.target_fps, "levers": [lever.name for lever in self.active],
                "absent": {lever.name: lever.absent for lever in self.levers if lever.absent}}

    def ahead(self, n: int = 2) -> list[dict]:
        """The next `n` cheaper levels (every lever's value), nearest first: what to prepare ahead of need."""
        return [self._values(r) for r in range(self._rung + 1, min(self._rung + 1 + n, len(self.ladder)))]

    def drop(self, name: str, why: str, now: float | None = None, fps: float = 0.0) -> Change | None:
        """Lever `name` cannot act after all (a lighter model that failed to open): it becomes absent, at its first
        value, and the other levers keep theirs. Returns the change back to that first value when the level had
        moved the lever (the caller applies it), else None."""
        lever = next((lever for lever in self.active if lever.name == name), None)
        if lever is None:
            return None
        before = self.level
        keep = {n: v for n, v in before.items() if n != name}
        self.levers[self.levers.index(lever)] = absent_lever(name, why)
        self.active = [lever for lever in self.levers if lever.absent is None]
        self.ladder = ladder(self.active)
        self._rung = next(r for r in range(len(self.ladder)) if self._values(r) == keep)
        log.warning("governor: %s: no longer a lever (%s)", name, why)
        if before[name] == lever.values[0]:
            return None
        return self._record(self._clock() if now is None else now, {name: before[name]}, {name: lever.values[0]},
                            "no longer a lever", fps, "up")

    # -- decisions ---------------------------------------------------------------------------------------
    def start(self, now: float | None = None) -> None:
        """Begin: the first measurements (compile, the first second's rate) are ignored for COOLDOWN_S."""
        now = self._clock() if now is None else now
        self._started = now
        self._quiet_until = now + COOLDOWN_S
        for lever in self.levers:
            if lever.absent:
                log.info("governor: %s: not a lever here (%s)", lever.name, lever.absent)
        if not self.active:
            log.warning("governor: no lever can act here; the rate is measured but nothing changes")

    def observe(self, fps: float, input_fps: float, load: float | None, now: float | None = None) -> Change | None:
        """One measurement: delivered and captured rates (frames/s over the last second) and the backend's load
        (frames inside it per parallel stream, 1 = saturated; None when unknown, which never steps up)."""
        now = self._clock() if now is None else now
        if self._started is None:
            self.start(now)
        target = min(self.target_fps, input_fps) if input_fps > 0 else self.target_fps
        threshold = target * (1.0 - TOLERANCE)
        short = fps < threshold
        self._below_since = (self._below_since if self._below_since is not None else now) if short else None
        cost_up = self._cost(self._rung - 1) / self._cost(self._rung) if self._rung else None
        predicted = None if load is None or cost_up is None else load * cost_up
        calm = not short and predicted is not None and predicted <= HEADROOM_LOAD
        self._calm_since = (self._calm_since if self._calm_since is not None else now) if calm else None
        if now < self._quiet_until:
            return None
        if short and now - self._below_since >= STEP_DOWN_HOLD_S:
            why = f"{fps:.1f} fps < {threshold:.1f} target for {now - self._below_since:.0f} s"
            return self._step_down(now, fps, target, why)
        if calm and now - self._calm_since >= self._up_hold:
            why = (f"{fps:.1f} fps, load {load:.2f} predicts {predicted:.2f} <= {HEADROOM_LOAD} one step up "
                   f"for {now - self._calm_since:.0f} s")
            return self._step_up(now, fps, why)
        return None

    def applied(self, now: float | None = None) -> None:
        """The last change took effect only now (a compile ahead of it took a while): the cool-down and the
        hold periods count from here, not from the decision."""
        now = self._clock() if now is None else now
        self._quiet_until = now + COOLDOWN_S
        self._below_since = self._calm_since = None

    def _cost(self, rung: int) -> float:
        return self.ladder[rung][1]

    def _step_down(self, now: float, fps: float, target: float, why: str) -> Change | None:
        if self._rung == len(self.ladder) - 1:
            if not self._floor_logged:
                log.warning("governor: %s, and every lever is at its cheapest already", why)
                self._floor_logged = True
            self._below_since = None
            return None
        if self._last_up is not None and now - self._last_up <= FAILED_PROBE_S:
            self._up_hold = min(self._up_hold * PROBE_BACKOFF, MAX_STEP_UP_HOLD_S)
        # short of the target, the delivered rate is what the machine manages at this level
        cheaper = range(self._rung + 1, len(self.ladder))
        rung = next((r for r in cheaper if fps * self._cost(self._rung) / self._cost(r) >= target), cheaper[-1])
        return self._move(now, rung, fps, why, "down")

    def _step_up(self, now: float, fps: float, why: str) -> Change:
        self._last_up = now
        self._floor_logged = False
        return self._move(now, self._rung - 1, fps, why, "up")

    def _move(self, now: float, rung: int, fps: float, why: str, direction: str) -> Change:
        before, after = self._values(self._rung), self._values(rung)
        moved = [name for name in after if after[name] != before[name]]
        self._rung = rung
        return self._record(now, {n: before[n] for n in moved}, {n: after[n] for n in moved}, why, fps, direction)

    def _record(self, now: float, before: dict, after: dict, why: str, fps: float, direction: str) -> Change:
        """Log and keep a change, and wait for the rate after it (the cool-down)."""
        started = now if self._started is None else self._started
        change = Change(now - started, before, after, why, fps, direction)
        self.changes.append(change)
        log.info("%s", change.line())
        self._quiet_until = now + COOLDOWN_S
        self._below_since = self._calm_since = None
        return change
