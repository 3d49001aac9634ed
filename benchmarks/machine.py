"""What machine a benchmark ran on: CPU model, cores, frequency, ISA flags, OS, library versions, peak compute.

Theoretical fp32 peak (multiply-accumulates per second, one FMA = one MAC):

    peak GMAC/s = physical cores x frequency (GHz) x FMA units per core x fp32 lanes per FMA

- lanes: 16 with AVX-512 on a full 512-bit datapath, 8 with AVX2+FMA (256 bit), 4 with SSE only
  (no FMA instruction: a multiply and an add pipe, counted as one MAC per lane per cycle).
- AMD Zen 4 (family 0x19 with avx512f) executes AVX-512 on 256-bit pipes: 8 lanes x 2 units.
- FMA units: 2 on every core since Haswell / Zen 2 (the common laptop and server case). Some Intel
  client chips with AVX-512 (Ice Lake, Tiger Lake) have one 512-bit unit; the flags cannot tell, so
  the figure is an upper bound there, and the formula and its inputs are stored next to the number.
- frequency: the maximum frequency the OS reports (cpufreq), else the current one (/proc/cpuinfo,
  psutil); turbo and AVX-512 down-clocking are not modelled.

INT8 peak (VNNI: 4 int8 MACs per 32-bit lane) is reported beside it for the INT8 rows.

A run under an instruction-set cap (`apply_isa_cap`, oneDNN's `ONEDNN_MAX_CPU_ISA`) describes the capped
machine: the flags and the peak are those of the CPU class it stands in for, and `flags_full` keeps the
real ones. The cap reaches oneDNN's kernels (OpenVINO's convolutions and elementwise ops, PyTorch's
convolutions) and PyTorch's own vectorised kernels (`ATEN_CPU_CAPABILITY`), both read when the library
loads; OpenVINO's own JIT kernels (reductions, FakeQuantize, depth-to-space) still see the full ISA, and
ONNX Runtime has no such switch.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import logging
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgesharp.edge.backends.cpu_classes import KERNEL_CLASSES

log = logging.getLogger(__name__)

FLAGS_OF_INTEREST = (
    "sse4_2", "avx", "fma", "f16c", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
)
# CLI name -> (oneDNN's ISA level, the flags a CPU of that class has): the runtime's CPU kernel classes
ISA_CAPS = {k.name: (k.onednn_isa, ("sse4_2", "avx", "f16c") + k.flags) for k in KERNEL_CLASSES}
# oneDNN level -> PyTorch's kernel capability (ATEN_CPU_CAPABILITY: default, avx2, avx512)
ATEN_CAPABILITY = {k.onednn_isa: "avx2" if k.name.startswith("avx2") else "avx512" for k in KERNEL_CLASSES}
ATEN_VARIABLE = "ATEN_CPU_CAPABILITY"
LIBRARIES = ("edgesharp", "openvino", "onnxruntime", "nncf", "torch", "numpy", "opencv-python",
             "scikit-image", "psutil", "matplotlib")


@dataclass
class Machine:
    cpu_model: str
    vendor: str
    cpu_family: int | None
    physical_cores: int
    logical_cores: int
    frequency_ghz: float
    frequency_source: str
    flags: list[str]
    os: str
    python: str
    libraries: dict[str, str]
    date: str
    load_average: list[float] | None
    peak: dict = field(default_factory=dict)
    isa_cap: str | None = None
    flags_full: list[str] | None = None

    @property
    def slug(self) -> str:
        slug = machine_slug(self.cpu_model, self.physical_cores)
        return f"{slug}-as-{self.isa_cap.lower().replace('_', '-')}" if self.isa_cap else slug

    def to_dict(self) -> dict:
        d = asdict(self)
        d["slug"] = self.slug
        return d


def machine_slug(cpu_model: str, cores: int) -> str:
    """A folder name for stored results: `amd-epyc-2c`, `intel-core-i7-1165g7-4c`."""
    text = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$", " ", cpu_model.lower())
    text = re.sub(r"\b\d+(th|rd|nd|st) gen\b", " ", text)
    words = re.findall(r"[a-z0-9]+", text)
    return "-".join(words[:5] + [f"{cores}c"]) if words else f"unknown-cpu-{cores}c"


def apply_isa_cap(name: str) -> str:
    """Cap oneDNN and PyTorch at the ISA of CPU class `name` (a key of ISA_CAPS) for this process and its
    children; call before OpenVINO compiles its first model and before torch is imported (both read the cap
    once). Returns oneDNN's level name."""
    from edgesharp.edge.backends.openvino_core import ISA_CAP_VARIABLE, isa_cap
    from edgesharp.edge.errors import EdgesharpError

    if name not in ISA_CAPS:
        raise EdgesharpError(f"unknown ISA cap {name!r}; choose one of {', '.join(ISA_CAPS)}")
    level = ISA_CAPS[name][0]
    if isa_cap() not in (None, level):
        raise EdgesharpError(f"{ISA_CAP_VARIABLE} is already {isa_cap()}; unset it to cap at {level}")
    os.environ[ISA_CAP_VARIABLE] = level
    os.environ[ATEN_VARIABLE] = ATEN_CAPABILITY[level]
    if "torch" in sys.modules:
        log.warning("torch was imported before the ISA cap: its kernels keep the full ISA")
    return level


def _max_frequency_mhz() -> float | None:
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text().strip()
        return float(khz) / 1000.0
    except (OSError, ValueError):
        return None


def _frequency(cpuinfo: dict[str, str]) -> tuple[float, str]:
    mhz = _max_frequency_mhz()
    if mhz:
        return mhz / 1000.0, "cpufreq max"
    try:
        import psutil

        f = psutil.cpu_freq()
        if f and f.max:
            return f.max / 1000.0, "psutil max"
        if f and f.current:
            return f.current / 1000.0, "psutil current"
    except Exception:  # psutil may fail on exotic platforms; fall through to cpuinfo
        pass
    if "cpu MHz" in cpuinfo:
        return float(cpuinfo["cpu MHz"]) / 1000.0, "/proc/cpuinfo current"
    return 0.0, "unknown"


def _core_counts() -> tuple[int, int]:
    logical = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or logical
    except Exception:
        physical = logical
    # Containers limit the CPUs a process may use; count only those.
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
        if usable < logical:
            physical = max(1, round(physical * usable / logical))
            logical = usable
    return physical, logical


def simd_profile(flags: set[str], vendor: str, family: int | None) -> dict:
    """fp32 lanes per FMA, FMA units per core and int8 MACs per lane, with the reason, from the ISA flags."""
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == 0x19:
            lanes, note = 8, "AVX-512 on Zen 4's 256-bit datapath"
        else:
            lanes, note = 16, "AVX-512 (512-bit FMA)"
    elif "avx2" in flags and "fma" in flags:
        lanes, note = 8, "AVX2 + FMA (256-bit)"
    elif "avx" in flags:
        lanes, note = 8, "AVX without FMA (separate multiply and add pipes)"
    else:
        lanes, note = 4, "SSE (128-bit)"
    vnni = bool({"avx512_vnni", "avx_vnni"} & flags)
    return {"fp32_lanes": lanes, "fma_units": 2, "int8_macs_per_lane": 4 if vnni else 2, "simd": note, "vnni": vnni}


def theoretical_peak(physical_cores: int, frequency_ghz: float, profile: dict) -> dict:
    """Peak GMAC/s in fp32 and int8 from the documented formula, with its inputs."""
    fp32 = physical_cores * frequency_ghz * profile["fma_units"] * profile["fp32_lanes"]
    return {
        "fp32_gmacs": round(fp32, 1),
        "int8_gmacs": round(fp32 * profile["int8_macs_per_lane"], 1),
        "formula": "cores x GHz x FMA units x fp32 lanes (int8: x int8 MACs per 32-bit lane)",
        **profile,
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str]:
    return {name: v for name in LIBRARIES if (v := _version(name))}


def _load_average() -> list[float] | None:
    """1/5/15-minute load: other processes competing for the cores make every number here lower."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def collect() -> Machine:
    """Describe this machine (cheap: reads /proc and package metadata, imports nothing heavy)."""
    # numpy and OpenCV come with it: not at CLI start-up
    from edgesharp.edge.backends.openvino_core import cpuinfo, isa_cap

    info = cpuinfo()
    model = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    vendor = info.get("vendor_id", "")
    try:
        family = int(info["cpu family"]) if "cpu family" in info else None
    except ValueError:
        family = None
    all_flags = set(info.get("flags", "").split())
    full_flags = [f for f in FLAGS_OF_INTEREST if f in all_flags]
    cap = isa_cap()
    capped = next((set(kept) for level, kept in ISA_CAPS.values() if level == cap), None)
    if capped is not None:
        all_flags &= capped
    physical, logical = _core_counts()
    ghz, source = _frequency(info)
    profile = simd_profile(all_flags, vendor, family)
    return Machine(
        cpu_model=model,
        vendor=vendor,
        cpu_family=family,
        physical_cores=physical,
        logical_cores=logical,
        frequency_ghz=round(ghz, 3),
        frequency_source=source,
        flags=[f for f in FLAGS_OF_INTEREST if f in all_flags],
        os=platform.platform(),
        python=platform.python_version(),
        libraries=library_versions(),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        load_average=_load_average(),
        peak=theoretical_peak(physical, ghz, profile),
        isa_cap=cap,
        flags_full=full_flags if cap else None,
    )
