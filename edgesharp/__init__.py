"""edgesharp: real-time sharpening of camera video on Intel laptop CPUs.

The public API is `edgesharp.Sharpener`. The subpackages are the repository's folders:
`edgesharp.edge` (runtime: bundles, backends, sources, sinks, pipeline, CLI), `edgesharp.train`
(distillation), `edgesharp.calibrate` (ONNX, OpenVINO IR, INT8) and `edgesharp.benchmarks`.
Importing this package stays light: the runtime's dependencies load on first use.
"""

__version__ = "0.2.0"

__all__ = ["__version__", "Sharpener"]


def __getattr__(name: str):
    if name == "Sharpener":
        from edgesharp.edge.sharpener import Sharpener

        return Sharpener
    raise AttributeError(f"module 'edgesharp' has no attribute {name!r}")
