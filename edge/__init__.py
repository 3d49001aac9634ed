"""edgesharp.edge, the runtime: model bundles, inference backends, camera sources and sinks, the async pipeline.

Importing it stays light: numpy, OpenCV and OpenVINO only when used; never torch, nncf or onnx.
"""
