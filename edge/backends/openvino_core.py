"""The process's one OpenVINO Core, and a way to run libraries that make Cores of their own.

`isa_cap()` reads oneDNN's instruction-set cap (`ONEDNN_MAX_CPU_ISA`), which benchmarks set to time a
smaller CPU class (an AVX2-only laptop) on a bigger machine.

On CPUs with AMX, the CPU plugin of each `ov.Core` installs an alternate signal stack on the thread that creates
it and puts back the previous one when the Core goes. Two Cores released out of order leave the thread's signal
stack pointing at unmapped memory, and the next Python signal handler (Ctrl-C, a DataLoader's SIGCHLD) then
kills the process with SIGSEGV. So every Core of ours is `shared_core()`, and NNCF, which makes and drops
Cores internally, runs through `off_main_thread`: only a short-lived thread's stack is swapped.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"
# oneDNN ISA levels without bf16 or fp16 arithmetic: under one of these, the CPU plugin (which reads the real
# CPU's features) still picks bf16 for float layers on an AMX machine and finds no kernel for them
NO_REDUCED_FLOAT_ISAS = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"})


# OpenVINO 2026.4's CPU plugin segfaults on AMX CPUs when an INT8 model with dynamic height and width runs some
# sizes (1x3x608x512 reproduced; the same model reshaped to that static size, or oneDNN capped below AMX, runs).
# Calibration scores such models, so `edgesharp calibrate` caps oneDNN at this level on an AMX CPU.
AMX_SAFE_CAP = "AVX512_CORE_VNNI"


def cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (or of `text`) as a dict; empty where the file is absent."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def cpu_has_amx(info: dict[str, str] | None = None) -> bool:
    """Whether the CPU has AMX tiles (`amx_tile` among this CPU's flags, on every OS; or among `info`'s, a
    /proc/cpuinfo block)."""
    if info is not None:
        return "amx_tile" in info.get("flags", "").split()
    from edgesharp.edge.backends.cpu_classes import cpu_flags

    return "amx_tile" in cpu_flags()[0]


def isa_cap() -> str | None:
    """The instruction-set level oneDNN is capped at (`ONEDNN_MAX_CPU_ISA`, upper case), or None."""
    value = os.environ.get(ISA_CAP_VARIABLE, "").strip().upper()
    return value if value and value != "ALL" else None


@functools.cache
def shared_core():
    """The process's one `openvino.Core`, created on first use and kept."""
    import openvino as ov

    return ov.Core()


def off_main_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` on a short-lived daemon thread; exceptions re-raised here. Ctrl-C still reaches the
    caller, which stops waiting."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"edgesharp-{getattr(fn, '__name__', 'openvino')}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if "error" in box:
        raise box["error"]
    return box["result"]
