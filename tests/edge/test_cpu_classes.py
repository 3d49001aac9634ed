"""CPU kernel classes: flags to class in each source's spelling, the oneDNN cap, and where the flags come from."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import pytest

from edgesharp.edge.backends import cpu_classes
from edgesharp.edge.backends.cpu_classes import (
    BY_NAME,
    capped,
    class_of_flags,
    detect,
    normalize,
    runnable_classes,
)


def _flag_line(text: str) -> set[str]:
    return set(text.split())


# Linux flag lines of real CPUs, as /proc/cpuinfo shows them and archspec reports them on every OS
# 12th Gen Intel Core i7-1260P (Alder Lake laptop), /proc/cpuinfo posted in a public repository
ALDER_LAKE_I7_1260P = _flag_line("""
    fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht
    tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc
    cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm
    sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch
    cpuid_fault epb ssbd ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust
    bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb intel_pt sha_ni xsaveopt xsavec xgetbv1 xsaves
    split_lock_detect avx_vnni dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp hwp_pkg_req hfi vnmi
    umip pku ospke waitpkg gfni vaes vpclmulqdq rdpid movdiri movdir64b fsrm md_clear serialize arch_lbr ibt
    flush_l1d arch_capabilities""")
# AMD EPYC (Zen 4), the 2-core machine these tests were written on
ZEN4_EPYC = _flag_line("""
    fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall
    nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid
    tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes
    xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw
    topoext cpuid_fault vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx
    smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16
    clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg
    avx512_vpopcntdq rdpid fsrm""")
# Intel Xeon Sapphire Rapids, lscpu output posted in a public repository
SAPPHIRE_RAPIDS_XEON = _flag_line("""
    fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht
    tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc
    cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid
    dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch
    cpuid_fault epb cat_l3 cat_l2 cdp_l3 invpcid_single intel_ppin cdp_l2 ssbd mba ibrs ibpb stibp ibrs_enhanced
    tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm cqm
    rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb intel_pt avx512cd sha_ni avx512bw avx512vl
    xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local split_lock_detect avx_vnni
    avx512_bf16 wbnoinvd dtherm ida arat pln pts avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes
    vpclmulqdq avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid bus_lock_detect cldemote movdiri movdir64b
    enqcmd fsrm uintr md_clear serialize tsxldtrk pconfig arch_lbr amx_bf16 avx512_fp16 amx_tile amx_int8
    flush_l1d arch_capabilities""")
# the class-relevant flags of CPUs without a recorded line here
SKYLAKE_LAPTOP = {"sse4_2", "avx", "fma", "f16c", "avx2"}
SKYLAKE_X = SKYLAKE_LAPTOP | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
ICE_LAKE = SKYLAKE_X | {"avx512_vnni", "avx512vbmi"}

# macOS: archspec lower-cases sysctl's machdep.cpu.features + leaf7_features (an Ice Lake MacBook's spelling)
ICE_LAKE_MAC_SYSCTL = {"fma", "sse4.2", "avx1.0", "avx2", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
                       "avx512ifma", "avx512vbmi", "avx512vnni", "avx512bitalg", "avx512vpopcntdq"}
# py-cpuinfo's CPUID table spells VNNI without the underscore (and has no AVX-VNNI, AVX512-BF16 or AMX bit)
ICE_LAKE_PY_CPUINFO = {"sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni"}


@pytest.fixture(autouse=True)
def _fresh_detection(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    cpu_classes._detected_flags.cache_clear()
    yield
    cpu_classes._detected_flags.cache_clear()


@pytest.mark.parametrize("flags, name", [
    (SKYLAKE_LAPTOP, "avx2"), (ALDER_LAKE_I7_1260P, "avx2-vnni"), (SKYLAKE_X, "avx512"), (ICE_LAKE, "avx512-vnni"),
    (ZEN4_EPYC, "avx512-bf16"), (SAPPHIRE_RAPIDS_XEON, "amx"),
    (ICE_LAKE_MAC_SYSCTL, "avx512-vnni"), (ICE_LAKE_PY_CPUINFO, "avx512-vnni"),
    ({"AVX2", "FMA", "AVXVNNI"}, "avx2-vnni"),  # upper case and the AVXVNNI spelling
])
def test_each_cpu_gets_its_class(flags, name):
    assert detect(flags=flags, cap=None).name == name
    assert class_of_flags(normalize(flags)).name == name


def test_no_avx2_is_no_class():
    assert class_of_flags({"sse4_2", "avx"}) is None
    assert detect(flags={"fp", "asimd", "neon"}, cap=None).name in ("other",)  # an ARM CPU


@pytest.mark.parametrize("flags, cap, name", [
    (SAPPHIRE_RAPIDS_XEON, "AVX2", "avx2"), (SAPPHIRE_RAPIDS_XEON, "AVX2_VNNI", "avx2-vnni"),
    (SAPPHIRE_RAPIDS_XEON, "AVX512_CORE", "avx512"), (SAPPHIRE_RAPIDS_XEON, "AVX512_CORE_VNNI", "avx512-vnni"),
    (ZEN4_EPYC, "AVX2_VNNI", "avx2"),  # no AVX-VNNI on Zen 4: oneDNN runs plain AVX2 there
    (ZEN4_EPYC, "AVX512_CORE_AMX", "avx512-bf16"), (ICE_LAKE, "ALL", "avx512-vnni"),
])
def test_the_cap_lowers_the_class_as_onednn_lowers_its_kernels(flags, cap, name):
    assert capped(class_of_flags(flags), flags, None if cap == "ALL" else cap).name == name


def test_the_cap_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    found = detect(flags=SAPPHIRE_RAPIDS_XEON)
    assert found.name == "avx2" and found.cpu_class.name == "amx"
    assert "capped from amx by ONEDNN_MAX_CPU_ISA=AVX2" in found.describe()


def test_runnable_classes_are_the_ones_a_cap_reaches():
    assert [k.name for k in runnable_classes(ZEN4_EPYC)] == ["avx2", "avx512", "avx512-vnni", "avx512-bf16"]
    assert [k.name for k in runnable_classes(SAPPHIRE_RAPIDS_XEON)] == [k.name for k in cpu_classes.KERNEL_CLASSES]
    assert [k.name for k in runnable_classes(ALDER_LAKE_I7_1260P)] == ["avx2", "avx2-vnni"]
    assert [k.name for k in runnable_classes(SKYLAKE_LAPTOP)] == ["avx2"]


linux_x86 = pytest.mark.skipif(not (Path("/proc/cpuinfo").is_file() and platform.machine() in ("x86_64", "AMD64")),
                               reason="compares with /proc/cpuinfo on an x86 Linux machine")


def _proc_cpuinfo_flags() -> set[str]:
    from edgesharp.edge.backends.openvino_core import cpuinfo

    return set(cpuinfo()["flags"].split())


@linux_x86
def test_this_machine_reads_as_proc_cpuinfo_says():
    found = detect(cap=None)
    assert found.source.startswith("archspec") and "/proc/cpuinfo" in found.source
    assert found.kernel_class is not None
    assert found.name == detect(flags=_proc_cpuinfo_flags(), cap=None).name


@linux_x86
def test_the_cpuid_reader_windows_uses_gives_this_machine_the_same_class():
    """archspec's in-process CPUID reader is what runs on Windows; here it must agree with the kernel's flags."""
    from archspec.cpu.detect import CpuidInfoCollector

    from_cpuid = normalize(CpuidInfoCollector().features)
    assert class_of_flags(from_cpuid) == class_of_flags(_proc_cpuinfo_flags())
    relevant = {f for k in cpu_classes.KERNEL_CLASSES for f in k.flags}
    assert from_cpuid & relevant == _proc_cpuinfo_flags() & relevant


def test_flags_are_read_once_per_process(monkeypatch):
    calls = []

    def reader():
        calls.append(1)
        return set(ALDER_LAKE_I7_1260P), "test reader"

    monkeypatch.setattr(cpu_classes, "_archspec_flags", reader)
    assert detect(cap=None).name == "avx2-vnni" and detect(cap=None).source == "test reader"
    assert cpu_classes.cpu_flags()[0] == ALDER_LAKE_I7_1260P
    assert len(calls) == 1


def _failing_reader():
    raise RuntimeError("archspec found no CPU flags (test)")


def test_a_failed_source_falls_back_to_numpy_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(cpu_classes, "_archspec_flags", _failing_reader)
    with caplog.at_level(logging.WARNING, logger=cpu_classes.__name__):
        first, second = detect(cap=None), detect(cap=None)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "archspec found no CPU flags (test)" in warnings[0].getMessage()
    assert "cannot see AVX-VNNI or AMX" in warnings[0].getMessage()
    assert first.source == second.source == "NumPy's CPU feature table (archspec failed)"
    flags, _ = cpu_classes.cpu_flags()
    assert "avx2" in flags and not flags & {"avx_vnni", "amx_tile", "amx_int8"}  # never more than NumPy can see
    assert first.kernel_class is not None and first.name != "amx"


def test_numpy_fallback_is_never_above_the_real_class(monkeypatch):
    monkeypatch.setattr(cpu_classes, "_archspec_flags", _failing_reader)
    fallback = class_of_flags(cpu_classes.cpu_flags()[0])
    cpu_classes._detected_flags.cache_clear()
    monkeypatch.undo()
    real = class_of_flags(cpu_classes.cpu_flags()[0])
    order = [k.name for k in cpu_classes.KERNEL_CLASSES]
    assert order.index(fallback.name) <= order.index(real.name)
    assert set(fallback.flags) <= set(real.flags)


def test_without_archspec_or_numpy_the_class_is_other(monkeypatch, caplog):
    monkeypatch.setattr(cpu_classes, "_archspec_flags", _failing_reader)
    monkeypatch.setattr(cpu_classes, "_numpy_flags", lambda: None)
    with caplog.at_level(logging.WARNING, logger=cpu_classes.__name__):
        found = detect(cap=None)
    assert found.kernel_class is None and found.name == "other"
    assert "no CPU feature table" in caplog.text and caplog.text.count("CPU features:") == 1


def test_an_uninstalled_archspec_names_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_archspec(name, *args, **kwargs):
        if name == "archspec" or name.startswith("archspec."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_archspec)
    with pytest.raises(RuntimeError, match="archspec is not installed .*; pip install archspec"):
        cpu_classes._archspec_flags()


def test_classes_name_their_arithmetic():
    assert not BY_NAME["avx2"].int8_vnni and BY_NAME["avx2-vnni"].int8_vnni
    assert BY_NAME["amx"].bf16 and not BY_NAME["avx512-vnni"].bf16
