"""CPU kernel classes: which family of oneDNN kernels OpenVINO's CPU plugin will run a model with here.

A model that is right on one class can be wrong on another: without VNNI, INT8 convolutions add pairs of
products in 16 bits with saturation (`edgesharp.calibrate.overflow`); with AVX512_BF16 or AMX, OpenVINO runs float
layers in bfloat16 by default. `edgesharp calibrate` scores a bundle under every class it can run here and
records the result per class in the manifest; `detect()` tells the runtime which class this CPU is.

The CPU's features come from archspec (the CPU detection library Spack and conda use), which reads them where each
OS keeps them and names them as Linux does: /proc/cpuinfo on Linux (the kernel's view), the CPUID instruction,
in process, on Windows, sysctl on macOS. All three see AVX2, AVX-512, AVX512-VNNI, AVX-VNNI, AVX512-BF16 and AMX
where the CPU reports them (no Intel Mac has AVX-VNNI or AMX). What it cannot see: raw CPUID (Windows) says what
the CPU has, not whether the OS saves its registers, which oneDNN also checks; an OS that left AVX-512 off would
read one class too high, and the start-up self-check is what catches a precision that is then wrong.
The flags are read once per process. The alternatives were weaker: py-cpuinfo runs CPUID in a child process
(over a second at start here) and its table has no AVX-VNNI, AVX512-BF16 or AMX bits; OpenVINO's
`OPTIMIZATION_CAPABILITIES` listed the same INT8, BF16 and WINOGRAD under every `ONEDNN_MAX_CPU_ISA` cap from
AVX2 to AVX512_CORE_VNNI, so it cannot tell a VNNI class from the others.
If archspec is missing or finds nothing, NumPy's CPUID dispatch table stands in, with one warning: it has no
AVX-VNNI or AMX entry, so an Alder Lake reads as `avx2` (whose choice is correct there too, if not the fastest)
and an AMX Xeon as `avx512-bf16` (the same INT8 and float arithmetic).
oneDNN's instruction-set cap (`ONEDNN_MAX_CPU_ISA`, the benchmarks' `--isa-cap`) lowers the class as it lowers
the kernels.
"""

from __future__ import annotations

import functools
import logging
import platform
import warnings
from dataclasses import dataclass

from edgesharp.edge.backends.openvino_core import isa_cap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KernelClass:
    name: str
    onednn_isa: str  # the ONEDNN_MAX_CPU_ISA level that runs this class on a bigger CPU
    flags: tuple[str, ...]  # the flags (Linux names) a CPU of this class has
    int8_vnni: bool  # INT8 products accumulate in 32 bits (no saturation)
    bf16: bool  # OpenVINO runs float layers in bfloat16 unless asked for f32
    examples: str


_AVX2 = ("avx2", "fma")
_AVX512 = _AVX2 + ("avx512f", "avx512bw", "avx512vl", "avx512dq")

KERNEL_CLASSES: tuple[KernelClass, ...] = (
    KernelClass("avx2", "AVX2", _AVX2, False, False, "Intel Core 4th-10th gen laptops, AMD Zen 1-3"),
    KernelClass("avx2-vnni", "AVX2_VNNI", _AVX2 + ("avx_vnni",), True, False, "Intel Core 12th gen (Alder Lake) and later"),
    KernelClass("avx512", "AVX512_CORE", _AVX512, False, False, "Skylake-SP/X Xeons and desktops"),
    KernelClass("avx512-vnni", "AVX512_CORE_VNNI", _AVX512 + ("avx512_vnni",), True, False,
                "Ice Lake and Tiger Lake laptops, Cascade Lake Xeons"),
    KernelClass("avx512-bf16", "AVX512_CORE_BF16", _AVX512 + ("avx512_vnni", "avx512_bf16"), True, True,
                "AMD Zen 4 and 5, Cooper Lake Xeons"),
    KernelClass("amx", "AVX512_CORE_AMX", _AVX512 + ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"), True, True,
                "Sapphire Rapids and later Xeons"),
)
BY_NAME = {k.name: k for k in KERNEL_CLASSES}
_ALL = frozenset(BY_NAME)
# the classes each oneDNN cap admits (its instruction-set bits include theirs; AVX-VNNI is not part of AVX-512)
_CAP_ADMITS = {
    "SSE41": frozenset(), "AVX": frozenset(), "AVX2": frozenset({"avx2"}),
    "AVX2_VNNI": frozenset({"avx2", "avx2-vnni"}), "AVX2_VNNI_2": frozenset({"avx2", "avx2-vnni"}),
    "AVX512_CORE": frozenset({"avx2", "avx512"}), "AVX512_CORE_VNNI": frozenset({"avx2", "avx512", "avx512-vnni"}),
    "AVX512_CORE_BF16": frozenset({"avx2", "avx512", "avx512-vnni", "avx512-bf16"}),
    "AVX512_CORE_FP16": _ALL - {"amx"}, "AVX10_1_512": _ALL - {"amx"},
    "AVX512_CORE_AMX": _ALL, "AVX512_CORE_AMX_FP16": _ALL, "AVX10_1_512_AMX": _ALL, "AVX10_1_512_AMX_FP16": _ALL,
}
# preference when a CPU qualifies for several (a Sapphire Rapids has AVX-VNNI, AVX512-VNNI and AMX)
_PREFERENCE = ("amx", "avx512-bf16", "avx512-vnni", "avx2-vnni", "avx512", "avx2")

# NumPy's CPU feature names -> Linux flags (AVX512FP16 is not taken for AMX: AVX10 CPUs may have one without the other)
_NUMPY_FLAGS = {"AVX2": ("avx2",), "FMA3": ("fma",), "AVX512F": ("avx512f",), "AVX512BW": ("avx512bw",),
                "AVX512VL": ("avx512vl",), "AVX512DQ": ("avx512dq",), "AVX512VNNI": ("avx512_vnni",),
                "AVX512BF16": ("avx512_bf16",)}
# other spellings of the class flags -> Linux's: macOS sysctl (lower-cased by archspec), py-cpuinfo's CPUID table
_ALIASES = {"avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16", "avxvnni": "avx_vnni", "fma3": "fma",
            "amxtile": "amx_tile", "amxint8": "amx_int8"}
# where archspec reads the flags on each OS
_ARCHSPEC_READER = {"Linux": "/proc/cpuinfo", "Windows": "CPUID", "Darwin": "sysctl"}


@dataclass(frozen=True)
class Detected:
    kernel_class: KernelClass | None  # None: not an x86 CPU oneDNN's x86 kernels run on
    cpu_class: KernelClass | None  # the class without the cap
    source: str  # where the flags came from
    cap: str | None

    @property
    def name(self) -> str:
        return self.kernel_class.name if self.kernel_class else "other"

    def describe(self) -> str:
        if self.kernel_class is None:
            return f"CPU class other ({platform.machine() or 'unknown'}; flags from {self.source})"
        capped = f", capped from {self.cpu_class.name} by ONEDNN_MAX_CPU_ISA={self.cap}" if self.cap and self.cpu_class != self.kernel_class else ""
        return f"CPU class {self.kernel_class.name}{capped} (flags from {self.source})"


def normalize(flags) -> set[str]:
    """`flags` in lower case with the Linux name for each class flag (`avx512vnni` -> `avx512_vnni`)."""
    return {_ALIASES.get(f.lower(), f.lower()) for f in flags}


def _numpy_flags() -> set[str] | None:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return None
    flags: set[str] = set()
    for name, mapped in _NUMPY_FLAGS.items():
        if features.get(name):
            flags.update(mapped)
    return flags


def _archspec_flags() -> tuple[set[str], str]:
    """(flags, source) from archspec; raises RuntimeError naming why it found nothing."""
    try:
        import archspec
        from archspec.cpu.detect import detected_info
    except ImportError as exc:
        raise RuntimeError(f"archspec is not installed ({exc}); pip install archspec") from None
    with warnings.catch_warnings(record=True) as caught:  # archspec turns a failed reader into a warning
        warnings.simplefilter("always")
        features = set(detected_info().features)
    if not features:
        why = "; ".join(str(w.message) for w in caught) or "no flags"
        raise RuntimeError(f"archspec found no CPU flags ({why})")
    reader = _ARCHSPEC_READER.get(platform.system(), platform.system())
    return normalize(features), f"archspec {archspec.__version__}, {reader}"


@functools.cache
def _detected_flags() -> tuple[frozenset[str], str]:
    try:
        flags, source = _archspec_flags()
    except Exception as exc:  # a failed reader (no archspec, CPUID memory refused, no sysctl) must not stop a run
        flags = _numpy_flags()
        if flags is None:
            log.warning("CPU features: %s, and NumPy has no CPU feature table; treating this CPU as class "
                        "'other' (FP32)", exc)
            return frozenset(), "nothing (archspec failed, no NumPy feature table)"
        log.warning("CPU features: %s; using NumPy's CPUID table, which cannot see AVX-VNNI or AMX (a CPU with "
                    "them gets a lower class: correct, possibly slower)", exc)
        return frozenset(flags), "NumPy's CPU feature table (archspec failed)"
    return frozenset(flags), source


def cpu_flags() -> tuple[set[str], str]:
    """(flags, source) of this CPU, Linux names, read once per process: archspec, else NumPy's CPUID table."""
    flags, source = _detected_flags()
    return set(flags), source


def class_of_flags(flags: set[str]) -> KernelClass | None:
    """The best class whose flags `flags` holds; None when not even AVX2 (or not x86)."""
    for name in _PREFERENCE:
        if set(BY_NAME[name].flags) <= flags:
            return BY_NAME[name]
    return None


def capped(cls: KernelClass | None, flags: set[str], cap: str | None) -> KernelClass | None:
    """The class oneDNN runs under the ISA cap `cap` on a CPU with `flags` whose own class is `cls`."""
    if cls is None or cap is None or cap not in _CAP_ADMITS:
        return cls
    for name in _PREFERENCE:
        if name in _CAP_ADMITS[cap] and set(BY_NAME[name].flags) <= flags:
            return BY_NAME[name]
    return None


def detect(flags: set[str] | None = None, source: str | None = None, cap: str | None = "env") -> Detected:
    """This CPU's kernel class (or the one given by `flags`), lowered by the ISA cap (`cap="env"`: from the
    environment)."""
    if flags is None:
        flags, source = cpu_flags()
    flags = normalize(flags)
    if cap == "env":
        cap = isa_cap()
    machine = platform.machine().lower()
    x86 = machine in ("x86_64", "amd64", "i686", "i386", "x86") or bool(flags & {"avx2", "sse4_2"})
    cls = class_of_flags(flags) if x86 else None
    return Detected(capped(cls, flags, cap), cls, source or "given flags", cap)


def runnable_classes(flags: set[str] | None = None) -> list[KernelClass]:
    """The classes this CPU can run, natively or under an ISA cap, in KERNEL_CLASSES order."""
    flags = cpu_flags()[0] if flags is None else normalize(flags)
    top = class_of_flags(flags)
    if top is None:
        return []
    return [k for k in KERNEL_CLASSES if capped(top, flags, k.onednn_isa) == k]
