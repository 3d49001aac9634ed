"""`--device`: CPU is the default, AUTO runs on a CPU-only machine, an absent GPU/NPU fails at open with one line,
and off the CPU the compiled-model cache is on and `auto` takes the float model (a fake core stands in for a GPU)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from ir_factory import build_test_bundle, reference_output

from edgesharp.edge.backends import devices_besides_cpu, open_backend, openvino_precision_config
from edgesharp.edge.backends import openvino_backend as ovb
from edgesharp.edge.backends.openvino_core import shared_core
from edgesharp.edge.bundle import load_bundle
from edgesharp.edge.errors import UsageError

AVAILABLE = list(shared_core().available_devices)


def _frame(h=32, w=40):
    return np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGESHARP_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


@pytest.fixture(scope="module")
def checked_bundle(tmp_path_factory):
    return load_bundle(build_test_bundle(tmp_path_factory.mktemp("dev") / "b", precisions=("fp32", "fp16", "int8"),
                                         self_check=True))


@pytest.mark.parametrize("device, driver", [
    ("GPU", "install the Intel graphics driver with its OpenCL runtime"),
    ("gpu.1", "install the Intel graphics driver with its OpenCL runtime"),
    ("NPU", "install the Intel NPU driver"),
    ("AUTO:GPU,CPU", "install the Intel graphics driver"),
])
def test_an_absent_device_fails_at_open_with_one_line(tiny_bundle, device, driver):
    if ovb.device_base(device.split(":")[-1]) in {ovb.device_base(d) for d in AVAILABLE}:
        pytest.skip(f"{device} is present on this machine")
    with pytest.raises(UsageError) as info:
        open_backend(tiny_bundle, "openvino", device=device)
    message = str(info.value)
    assert message.startswith(f"--device {device.upper()}: OpenVINO finds no ")
    assert f"(available: {', '.join(AVAILABLE)})" in message and driver in message
    assert message.endswith("or use --device CPU") and "\n" not in message and "Exception from" not in message


def test_an_unknown_device_name_lists_the_choices(tiny_bundle):
    with pytest.raises(UsageError, match=r"^--device NOPE: OpenVINO has no device named NOPE \(available here: "
                                         r".*CPU.*\); choose CPU, GPU, NPU or AUTO$"):
        open_backend(tiny_bundle, "openvino", "fp32", device="nope")


def test_the_cli_error_for_an_absent_gpu_is_one_line_and_exit_2(capsys):
    if "GPU" in {ovb.device_base(d) for d in AVAILABLE}:
        pytest.skip("a GPU is present on this machine")
    from edgesharp.edge.cli import main

    assert main(["run", "--source", "synthetic", "--size", "64x64", "--frames", "1", "--sink", "null",
                 "--device", "GPU", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgesharp run: error: --device GPU: OpenVINO finds no GPU here (available: CPU")


def test_device_cpu_is_the_default(checked_bundle):
    from edgesharp.edge.commands.run import add_model_options

    parser = argparse.ArgumentParser()
    add_model_options(parser)
    assert parser.parse_args([]) == parser.parse_args(["--device", "CPU"])
    with open_backend(checked_bundle, "openvino") as default, open_backend(checked_bundle, "openvino",
                                                                           device="CPU") as cpu:
        assert default.device == cpu.device == "CPU"
        assert (default.precision, default.precision_reason, default.cpu_class) == \
               (cpu.precision, cpu.precision_reason, cpu.cpu_class)
        assert default.describe()["config"] == cpu.describe()["config"] and "CACHE_DIR" not in cpu.describe()["config"]
        assert np.array_equal(default.infer(_frame()), cpu.infer(_frame()))


@pytest.mark.skipif(any(ovb.device_base(d) != "CPU" for d in AVAILABLE), reason="AUTO may pick another device here")
def test_auto_runs_on_this_cpu_only_machine_with_the_cache_on(checked_bundle, tmp_path):
    with open_backend(checked_bundle, "openvino", device="auto") as be:
        out = be.infer(_frame())
        info = be.describe()
        # AUTO with only the CPU to pick is the CPU: the kernel-class choice and the self-check apply
        assert be.cpu_class is not None and be.self_check["passed"]
    assert info["device"] == "AUTO" and info["execution_devices"] == "CPU"
    cache = tmp_path / "user-cache" / "openvino"
    assert info["config"]["CACHE_DIR"] == str(cache) and any(cache.glob("*.blob"))
    assert np.abs(out.astype(int) - reference_output(_frame(), 0.5).astype(int)).mean() < 3
    assert devices_besides_cpu("AUTO") == []


class FakeGPUCore:
    """The real core, except that it reports a GPU and compiles "GPU" on the CPU, recording what it was asked."""

    def __init__(self):
        self.real = shared_core()
        self.available_devices = ["CPU", "GPU"]
        self.compiled: list[tuple[str, dict]] = []

    def read_model(self, path):
        return self.real.read_model(path)

    def compile_model(self, model, device, config):
        self.compiled.append((device, dict(config)))
        return self.real.compile_model(model, "CPU", {k: v for k, v in config.items() if k != "CACHE_DIR"})

    def get_property(self, device, name):
        return self.real.get_property("CPU", name)


@pytest.fixture
def fake_gpu(monkeypatch):
    core = FakeGPUCore()
    monkeypatch.setattr(ovb, "shared_core", lambda: core)
    monkeypatch.setattr("edgesharp.edge.backends.openvino_core.shared_core", lambda: core)
    return core


def test_a_gpu_gets_the_float_model_the_cache_and_the_self_check(checked_bundle, fake_gpu, tmp_path):
    with open_backend(checked_bundle, "openvino", device="GPU") as be:
        assert be.precision == "fp16" and be.cpu_class is None
        assert be.precision_reason.startswith("--device GPU: the bundle's float model")
        assert be.self_check is not None and be.self_check["precision"] == "fp16"  # the check still runs
    device, config = fake_gpu.compiled[0]
    assert device == "GPU" and config["CACHE_DIR"] == str(tmp_path / "user-cache" / "openvino")
    assert "INFERENCE_PRECISION_HINT" not in config  # fp16: the GPU's own default
    assert (tmp_path / "user-cache" / "openvino").is_dir()


def test_auto_with_a_gpu_there_takes_the_float_model(checked_bundle, fake_gpu):
    assert devices_besides_cpu("AUTO") == ["GPU"] and devices_besides_cpu("AUTO:CPU") == []
    with open_backend(checked_bundle, "openvino", device="AUTO") as be:
        assert be.precision == "fp16" and be.precision_reason.startswith("--device AUTO may run on GPU: ")


def test_a_forced_precision_and_cache_folder_are_kept_off_the_cpu(checked_bundle, fake_gpu, tmp_path):
    with open_backend(checked_bundle, "openvino", "fp32", device="GPU", cache_dir=tmp_path / "mine") as be:
        assert be.precision == "fp32" and be.precision_reason == "forced by --precision fp32"
    with open_backend(checked_bundle, "openvino", "int8", device="GPU", cache_dir="") as be:
        assert be.precision == "int8"
    (_, fp32_config), (_, int8_config) = fake_gpu.compiled
    assert fp32_config["CACHE_DIR"] == str(tmp_path / "mine") and fp32_config["INFERENCE_PRECISION_HINT"] == "f32"
    assert "CACHE_DIR" not in int8_config


def test_precision_hints_follow_the_device(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a CPU capped below bf16 runs f32 ...
    assert openvino_precision_config("fp16", "CPU") == {"INFERENCE_PRECISION_HINT": "f32"}
    assert openvino_precision_config("fp16", "AUTO") == {"INFERENCE_PRECISION_HINT": "f32"}
    assert openvino_precision_config("fp16", "GPU") == {}  # ... which says nothing about a GPU
    assert openvino_precision_config("fp32", "GPU.1") == {"INFERENCE_PRECISION_HINT": "f32"}
    assert openvino_precision_config("fp32", "NPU") == {}  # the NPU computes in FP16 whatever the hint


@pytest.mark.parametrize("device, named", [
    ("GPU.1", ["GPU.1"]), ("AUTO", []), ("AUTO:GPU,CPU", ["GPU", "CPU"]), ("AUTO:-CPU", []),
    ("MULTI:CPU(4),GPU(2)", ["CPU", "GPU"]), ("HETERO:NPU,CPU", ["NPU", "CPU"]),
])
def test_the_devices_a_device_string_names(device, named):
    assert ovb.named_devices(device) == named
    assert ovb.missing_device_error(device, ["CPU", "GPU.0", "GPU.1", "NPU"]) is None


def test_the_default_cache_folder_follows_edgesharp_cache(monkeypatch, tmp_path):
    assert ovb.default_cache_dir() == tmp_path / "user-cache" / "openvino"
    monkeypatch.delenv("EDGESHARP_CACHE")
    assert ovb.default_cache_dir().parts[-3:] == (".cache", "edgesharp", "openvino")
