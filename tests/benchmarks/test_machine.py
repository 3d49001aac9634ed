"""Machine description and the theoretical peak formula."""

from __future__ import annotations

from benchmarks import machine


def test_collect_describes_this_machine():
    m = machine.collect()
    d = m.to_dict()
    for key in ("cpu_model", "physical_cores", "logical_cores", "frequency_ghz", "flags", "os", "python",
                "libraries", "date", "peak", "slug"):
        assert key in d, key
    assert 1 <= m.physical_cores <= m.logical_cores
    assert m.frequency_ghz > 0
    assert set(m.flags) <= set(machine.FLAGS_OF_INTEREST)
    assert "openvino" in m.libraries and "numpy" in m.libraries
    assert m.peak["fp32_gmacs"] > 0 and m.peak["int8_gmacs"] >= m.peak["fp32_gmacs"]
    assert m.slug.endswith(f"-{m.physical_cores}c")


def test_peak_follows_the_documented_formula():
    avx2 = machine.simd_profile({"avx", "avx2", "fma"}, "GenuineIntel", 6)
    assert machine.theoretical_peak(4, 3.0, avx2)["fp32_gmacs"] == 4 * 3.0 * 2 * 8
    avx512 = machine.simd_profile({"avx2", "fma", "avx512f", "avx512_vnni"}, "GenuineIntel", 6)
    peak = machine.theoretical_peak(2, 2.5, avx512)
    assert peak["fp32_gmacs"] == 2 * 2.5 * 2 * 16
    assert peak["int8_gmacs"] == peak["fp32_gmacs"] * 4
    zen4 = machine.simd_profile({"avx2", "fma", "avx512f"}, "AuthenticAMD", 0x19)
    assert zen4["fp32_lanes"] == 8 and zen4["int8_macs_per_lane"] == 2
    assert machine.simd_profile({"sse4_2"}, "GenuineIntel", 6)["fp32_lanes"] == 4


def test_slug_is_a_clean_folder_name():
    assert machine.machine_slug("Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", 4) == "intel-core-i7-1165g7-4c"
    assert machine.machine_slug("AMD EPYC", 2) == "amd-epyc-2c"
    assert machine.machine_slug("", 8) == "unknown-cpu-8c"
