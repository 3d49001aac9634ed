"""Whether an INT8 model is safe from the 16-bit overflow of CPUs without VNNI, read off its integer weights.

Without VNNI (AVX2 and AVX-512 CPUs before Cascade Lake / Ice Lake, which includes most laptops of 2015-2019),
oneDNN multiplies u8 activations by s8 weights with `vpmaddubsw`, which adds each pair of products in 16 bits
with saturation: |w1| * 255 + |w2| * 255 may exceed 32767 once |w| passes 64. VNNI and AMX accumulate in 32
bits, so the same model gives other, correct results there. Depthwise convolutions take another kernel (no
pair sums) and are unaffected. NNCF's overflow fix ("enable") quantizes every dense convolution's weights to
7 bits (|w| <= 64), which no activation can saturate; `overflow_report` checks that an IR holds to it, in either
form a weight takes in an IR: an s8 constant with a scale (QAT's export), or float weights behind a FakeQuantize
(the post-training path).
"""

from __future__ import annotations

import numpy as np

# the largest |weight| whose pair sum with any u8 activation stays within int16: 2 * 64 * 255 = 32640 <= 32767
SAFE_ABS_WEIGHT = 64


def _source(output):
    return output.get_node()


def _constant_through(node, kinds=("Convert", "Reshape", "Unsqueeze", "Squeeze", "Transpose")):
    """The Constant behind `node`, following shape and type operations; None if another op is in the way."""
    while node.get_type_name() in kinds:
        node = _source(node.input_value(0))
    return node if node.get_type_name() == "Constant" else None


def integer_weights(weight_node) -> np.ndarray | None:
    """The integer weights behind a convolution's weight input, or None when they are float (not quantized)."""
    node = weight_node
    while node.get_type_name() in ("Reshape", "Unsqueeze", "Squeeze", "Transpose"):
        node = _source(node.input_value(0))
    kind = node.get_type_name()
    if kind == "Multiply":  # s8 constant -> Convert (-> Subtract zero point) -> Multiply scale
        for i in range(2):
            inner = _source(node.input_value(i))
            zero_point = 0.0
            if inner.get_type_name() == "Subtract":
                zp = _constant_through(_source(inner.input_value(1)))
                zero_point = zp.get_data().astype(np.float64) if zp is not None else 0.0
                inner = _source(inner.input_value(0))
            if inner.get_type_name() == "Convert":
                const = _constant_through(inner)
                if const is not None and const.get_element_type().get_type_name() in ("i8", "u8", "i4", "u4"):
                    return np.rint(const.get_data().astype(np.float64) - zero_point)
        return None
    if kind == "FakeQuantize":
        w = _constant_through(_source(node.input_value(0)))
        lo, hi = (_constant_through(_source(node.input_value(k))) for k in (1, 2))
        if w is None or lo is None or hi is None:
            return None
        levels = int(node.get_attributes()["levels"])
        lo, hi, data = (x.get_data().astype(np.float64) for x in (lo, hi, w))
        step = (hi - lo) / (levels - 1)
        q = np.rint((np.clip(data, lo, hi) - lo) / np.where(step > 0, step, 1.0))
        # symmetric weight quantizers centre their levels on zero: the integer is the level minus the middle one
        return q - (levels - 1) / 2.0 if levels % 2 == 1 else q - levels / 2.0
    return None


def overflow_report(model) -> dict:
    """{"safe", "max_abs_weight", "layers": {name: max |w|}, "unsafe": [names]} over the dense convolutions with
    integer weights (depthwise and float ones are not at risk)."""
    layers: dict[str, int] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        ints = integer_weights(_source(op.input_value(1)))
        if ints is None:
            continue
        layers[op.get_friendly_name()] = int(np.abs(ints).max()) if ints.size else 0
    unsafe = [name for name, m in layers.items() if m > SAFE_ABS_WEIGHT]
    return {"safe": not unsafe, "max_abs_weight": max(layers.values(), default=0), "quantized_dense_convolutions": len(layers),
            "unsafe": unsafe, "safe_abs_weight": SAFE_ABS_WEIGHT}
