"""Live controls of a running pipeline: one key table for the preview window and the terminal.

    +  or =   strength up by 0.1        -  or _   strength down by 0.1
    b         bypass on/off (the original frames)
    q         quit (the run flushes and ends)

`controls` is anything with `strength` (0..1), `bypass` (bool) and `stop(reason)`: a `Pipeline`.
`StrengthSetting` is the checked strength attribute of `Pipeline` and `Sharpener`.
"""

from __future__ import annotations

import logging
import threading
from typing import TextIO

from edgesharp.edge.errors import UsageError

log = logging.getLogger(__name__)

def check_strength(value: float, label: str = "strength") -> float:
    """`value` as a float in [0, 1], else a `UsageError` naming `label` (NaN fails too)."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{label} must be between 0 and 1, got {value}")
    return float(value)


class StrengthSetting:
    """A class attribute holding a strength in [0, 1], checked on every assignment: it may change between frames
    (the preview's keys, `Sharpener.strength = ...` while streaming); `label` names it in the error."""

    def __init__(self, label: str):
        self.label = label

    def __set_name__(self, owner, name: str) -> None:
        self.attr = f"_{name}"

    def __get__(self, obj, objtype=None):
        return self if obj is None else getattr(obj, self.attr)

    def __set__(self, obj, value: float) -> None:
        setattr(obj, self.attr, check_strength(value, self.label))


STEP = 0.1
HELP = "keys: + / - strength, b bypass, q quit"


def apply_key(controls, key: str) -> str | None:
    """Act on one key; returns what changed as a short text ('quit' for q), or None for a key that means nothing."""
    if key in ("+", "=", "-", "_"):
        step = STEP if key in ("+", "=") else -STEP
        controls.strength = round(min(1.0, max(0.0, controls.strength + step)), 2)
        return f"strength {controls.strength:.1f}"
    if key in ("b", "B"):
        controls.bypass = not controls.bypass
        return f"bypass {'on' if controls.bypass else 'off'}"
    if key in ("q", "Q"):
        return "quit"
    return None


def read_terminal_keys(controls, stream: TextIO) -> None:
    """Apply the keys of each line read from `stream` (a terminal: type the key, then Enter) until it ends or q."""
    for line in stream:
        for key in line.strip():
            change = apply_key(controls, key)
            if change == "quit":
                controls.stop("quit from the terminal")
                return
            if change:
                log.info("terminal: %s", change)


def start_terminal_keys(controls, stream: TextIO) -> threading.Thread:
    """`read_terminal_keys` on a daemon thread (it never blocks the run's end)."""
    thread = threading.Thread(target=read_terminal_keys, args=(controls, stream), name="edgesharp-keys", daemon=True)
    thread.start()
    return thread
