"""`--precision auto`: the precision that is correct and fastest on this CPU's kernel class, with the reason.

`edgesharp calibrate` records in the bundle, per CPU kernel class it could run (`edgesharp.calibrate.classes`), which
precisions passed the guard there and which of them `auto` takes (the fastest). On a class that was checked,
that is the answer. On one that was not, the answer of a checked class that computes the same way (the same
INT8 accumulation, the same float precision) stands in; failing that, the exact float model. A bundle made
before classes were recorded gets INT8 only where VNNI makes INT8 exact (it was only ever calibrated there).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesharp.edge.backends.cpu_classes import BY_NAME, Detected, detect


@dataclass(frozen=True)
class Choice:
    precision: str
    reason: str
    cpu_class: str


def _same_arithmetic(name: str, checked: dict) -> list[str]:
    """Checked classes whose INT8 accumulation and float precision match class `name`'s."""
    cls = BY_NAME[name]
    return [n for n, e in checked.items() if BY_NAME[n].int8_vnni == cls.int8_vnni and BY_NAME[n].bf16 == cls.bf16]


def _exact_float(cls) -> str:
    return "fp32" if cls is None or cls.bf16 else "fp16"


def choose(bundle, backend: str = "openvino", detected: Detected | None = None) -> Choice:
    """The precision `auto` means for `bundle` on `backend` here (or on the CPU `detected` describes)."""
    detected = detected or detect()
    where = detected.describe()
    if backend != "openvino":
        return Choice("fp32", f"{where}; {backend}: FP32 (INT8 is checked per CPU class for OpenVINO only)", detected.name)
    classes = (bundle.manifest.get("kernel_classes") or {}).get("classes")
    cls = detected.kernel_class
    if cls is None:
        return Choice("fp32", f"{where}: no kernel class of this CPU was checked; FP32 is exact", detected.name)
    if classes is None:
        p = "int8" if cls.int8_vnni else _exact_float(cls)
        why = ("VNNI computes INT8 exactly" if cls.int8_vnni else
               "without VNNI, INT8 made before per-class checks may saturate")
        return Choice(p, f"{where}: bundle has no per-class guard results; {why}", detected.name)
    checked = {n: e for n, e in classes.items() if e.get("checked") and n in BY_NAME}
    entry = checked.get(cls.name)
    if entry and entry.get("auto"):
        fps = entry.get("fps_1280x720") or {}
        passed = [p for p, v in entry["precisions"].items() if v.get("passed")]
        speed = ", ".join(f"{p} {fps[p]:.1f}" for p in passed if p in fps) or "not timed"
        return Choice(entry["auto"], f"{where}: {entry['auto']} passed the bundle's guard on this class "
                                     f"(passed: {', '.join(passed)}; FPS at 1280x720 when checked: {speed})", cls.name)
    if entry:  # checked, nothing passed
        return Choice(_exact_float(cls), f"{where}: no precision passed the bundle's guard on this class; the exact "
                                         f"float model", cls.name)
    for other in _same_arithmetic(cls.name, checked):
        if checked[other].get("auto"):
            return Choice(checked[other]["auto"], f"{where}: not checked on this class; {other} computes INT8 and "
                                                  f"float the same way and its guard chose {checked[other]['auto']}",
                          cls.name)
    return Choice(_exact_float(cls), f"{where}: not checked on this class, nor on one that computes the same way; "
                                     f"the exact float model", cls.name)
