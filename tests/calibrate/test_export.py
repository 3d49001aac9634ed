"""Step 1: ONNX export with dynamic H/W and parity with PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgesharp.calibrate.data import pad_to_multiple, to_model_input
from edgesharp.calibrate.export import ExportError, export_onnx, onnx_parity
from edgesharp.calibrate.runners import ort_runner, torch_runner
from edgesharp.calibrate.untrained import sample_frame


def test_export_has_contract_names_dynamic_hw_and_opset(tiny_model, float_ir):
    path, _ = float_ir
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and dims[2].dim_param and dims[3].dim_param
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_parity_random_and_real_at_two_sizes(tiny_model, float_ir):
    path, _ = float_ir
    m = tiny_model.size_multiple
    inputs = {}
    for h, w in ((32, 48), (56, 40)):
        inputs[f"random {h}x{w}"] = np.random.default_rng(1).random((1, 3, h, w), dtype=np.float32)
        inputs[f"real {h}x{w}"] = to_model_input(pad_to_multiple(sample_frame(h, w), m))
    result = onnx_parity(tiny_model, path, inputs)
    assert set(result) == set(inputs)
    assert all(r["max_abs_err"] <= 1e-4 for r in result.values())
    # the check is live: outputs are far from zero and a different model fails it
    assert np.abs(ort_runner(path)(inputs["random 32x48"])).max() > 0.1
    other = type(tiny_model)(**tiny_model.arch_config).eval()
    with pytest.raises(ExportError, match="differs from PyTorch"):
        onnx_parity(other, path, inputs)


def test_export_failure_names_the_op(tmp_path):
    class Unsupported(nn.Module):
        size_multiple = 1

        def forward(self, x):
            return torch.cummax(x, 2)[0]

    with pytest.raises(ExportError) as err:
        export_onnx(Unsupported(), tmp_path / "bad.onnx", sample_hw=(8, 8))
    assert "aten::cummax" in str(err.value) and "\n" not in str(err.value)


def test_export_refuses_old_opset(tiny_model, tmp_path):
    with pytest.raises(ExportError, match="opset 13"):
        export_onnx(tiny_model, tmp_path / "m.onnx", opset=13)


def test_torch_runner_matches_model(tiny_model):
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with torch.no_grad():
        ref = tiny_model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(torch_runner(tiny_model)(x), ref)
