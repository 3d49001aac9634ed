"""Machine description and the theoretical peak formula."""

from __future__ import annotations

from edgesharp.benchmarks import machine


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


def test_an_isa_cap_describes_the_capped_cpu_class(monkeypatch):
    import os

    # a private environment: the cap this test sets must not reach the rest of the session
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"})
    full = machine.collect()
    assert full.isa_cap is None and full.flags_full is None
    assert machine.apply_isa_cap("avx2") == "AVX2"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    capped = machine.collect()
    assert capped.isa_cap == "AVX2" and capped.flags_full == full.flags
    assert set(capped.flags) == set(full.flags) & set(machine.ISA_CAPS["avx2"][1])
    assert capped.peak["int8_macs_per_lane"] == 2 and capped.peak["fp32_lanes"] <= 8  # no VNNI, 256-bit
    assert capped.slug == f"{full.slug}-as-avx2"


def test_an_isa_cap_refuses_an_unknown_class_and_a_conflicting_cap(monkeypatch):
    import pytest

    from edgesharp.edge.errors import EdgesharpError

    with pytest.raises(EdgesharpError, match="unknown ISA cap 'sse'; choose one of avx2"):
        machine.apply_isa_cap("sse")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")
    with pytest.raises(EdgesharpError, match="already AVX512_CORE_VNNI; unset it to cap at AVX2"):
        machine.apply_isa_cap("avx2")


def test_openvino_under_the_avx2_cap_compiles_no_avx512_convolution(tmp_path):
    """oneDNN reads the cap once per process, so the check compiles in a fresh interpreter."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("torch", reason="the test network is exported from torch (edgesharp[train])")
    from edgesharp.calibrate.export import export_onnx
    from edgesharp.train import models

    onnx_path = export_onnx(models.create("nafnet-test").eval(), tmp_path / "m.onnx")
    code = (
        "import sys, openvino as ov\n"
        "c = ov.Core().compile_model(sys.argv[1], 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})\n"
        "kinds = [op.get_rt_info()['primitiveType'].astype(str) for op in c.get_runtime_model().get_ordered_ops()\n"
        "         if op.get_rt_info()['layerType'].astype(str) == 'Convolution']\n"
        "print(' '.join(kinds))\n"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code, str(onnx_path)], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out and all("avx512" not in k and "amx" not in k for k in out), out


def test_pytorch_under_the_avx2_cap_runs_avx2_kernels():
    """PyTorch reads both switches when it loads, so the check imports it in a fresh interpreter."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("torch", reason="PyTorch rows need edgesharp[train]")
    code = (
        "from benchmarks import machine\n"
        "machine.apply_isa_cap('avx2')\n"
        "import torch\n"
        "print(torch.backends.cpu.get_cpu_capability())\n"
        "with torch.no_grad():\n"
        "    torch.nn.Conv2d(16, 16, 3, padding=1)(torch.randn(1, 16, 64, 64))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    run = subprocess.run([sys.executable, "-c", code], env={**env, "ONEDNN_VERBOSE": "1", "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, check=True, timeout=120)
    lines = run.stdout.splitlines()
    assert lines[0] == "AVX2", lines[0]
    convs = [line for line in lines if ",exec,cpu,convolution," in line]
    assert convs and all("avx512" not in c and "amx" not in c for c in convs), convs
