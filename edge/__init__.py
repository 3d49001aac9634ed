"""edgesharp runtime: model bundles, inference backends, camera sources and sinks, the async pipeline.

Importing this package stays light: numpy, OpenCV and OpenVINO only when used; never torch, nncf or onnx.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "Sharpener"]


def __getattr__(name: str):
    if name == "Sharpener":
        from edge.sharpener import Sharpener

        return Sharpener
    raise AttributeError(f"module 'edge' has no attribute {name!r}")
