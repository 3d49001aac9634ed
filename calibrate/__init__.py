"""Turn a student checkpoint into a model bundle: ONNX export, OpenVINO IR (FP32/FP16), INT8 under an SSIM guard.

Steps live in their own modules (export, convert, quantize, ort_int8, bundle_writer) and are chained by
`edgesharp.calibrate.pipeline`; `edgesharp.calibrate.cli` is the `edgesharp calibrate` command.
"""
