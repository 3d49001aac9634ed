"""CPU kernel classes: flags to class, the oneDNN cap, and the sources the flags come from."""

from __future__ import annotations

import pytest

from edgesharp.edge.backends import cpu_classes
from edgesharp.edge.backends.cpu_classes import BY_NAME, capped, class_of_flags, detect, runnable_classes

# /proc/cpuinfo flags (the parts that matter) of real CPUs
SKYLAKE_LAPTOP = {"sse4_2", "avx", "fma", "f16c", "avx2"}
ALDER_LAKE = SKYLAKE_LAPTOP | {"avx_vnni"}
SKYLAKE_X = SKYLAKE_LAPTOP | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
ICE_LAKE = SKYLAKE_X | {"avx512_vnni", "avx512vbmi"}
ZEN4 = ICE_LAKE | {"avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "avx512_fp16"}


@pytest.mark.parametrize("flags, name", [(SKYLAKE_LAPTOP, "avx2"), (ALDER_LAKE, "avx2-vnni"), (SKYLAKE_X, "avx512"),
                                         (ICE_LAKE, "avx512-vnni"), (ZEN4, "avx512-bf16"), (SAPPHIRE_RAPIDS, "amx")])
def test_each_cpu_gets_its_class(flags, name):
    assert class_of_flags(flags).name == name
    assert detect(flags=flags, cap=None).name == name


def test_no_avx2_is_no_class():
    assert class_of_flags({"sse4_2", "avx"}) is None


@pytest.mark.parametrize("flags, cap, name", [
    (SAPPHIRE_RAPIDS, "AVX2", "avx2"), (SAPPHIRE_RAPIDS, "AVX2_VNNI", "avx2-vnni"),
    (SAPPHIRE_RAPIDS, "AVX512_CORE", "avx512"), (SAPPHIRE_RAPIDS, "AVX512_CORE_VNNI", "avx512-vnni"),
    (ZEN4, "AVX2_VNNI", "avx2"),  # no AVX-VNNI on Zen 4: oneDNN runs plain AVX2 there
    (ZEN4, "AVX512_CORE_AMX", "avx512-bf16"), (ICE_LAKE, "ALL", "avx512-vnni"),
])
def test_the_cap_lowers_the_class_as_onednn_lowers_its_kernels(flags, cap, name):
    assert capped(class_of_flags(flags), flags, None if cap == "ALL" else cap).name == name


def test_the_cap_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    found = detect(flags=SAPPHIRE_RAPIDS)
    assert found.name == "avx2" and found.cpu_class.name == "amx"
    assert "capped from amx by ONEDNN_MAX_CPU_ISA=AVX2" in found.describe()


def test_runnable_classes_are_the_ones_a_cap_reaches():
    assert [k.name for k in runnable_classes(ZEN4)] == ["avx2", "avx512", "avx512-vnni", "avx512-bf16"]
    assert [k.name for k in runnable_classes(SAPPHIRE_RAPIDS)] == [k.name for k in cpu_classes.KERNEL_CLASSES]
    assert [k.name for k in runnable_classes(SKYLAKE_LAPTOP)] == ["avx2"]


def test_without_proc_cpuinfo_the_flags_come_from_numpy(monkeypatch):
    monkeypatch.setattr(cpu_classes, "cpuinfo", lambda: {})
    flags, source = cpu_classes.cpu_flags()
    assert source == "NumPy's CPU feature detection"
    assert "avx2" in flags  # every machine this project runs on has AVX2
    assert detect().kernel_class is not None


def test_classes_name_their_arithmetic():
    assert not BY_NAME["avx2"].int8_vnni and BY_NAME["avx2-vnni"].int8_vnni
    assert BY_NAME["amx"].bf16 and not BY_NAME["avx512-vnni"].bf16
