"""One backend over a model and its lighter variants: the governor's "lighter model" lever.

`VariantBackend` runs the frames it is given on one variant at a time (the first, the bundle's own model, at the
start). Another variant is opened on first use by the function it was given (`open_backend` with the run's
options: the same backend, hint, threads and precision rule), in the caller's thread, so the pipeline opens and
compiles it in the background (`prepare(width, height, variant)`) and switches (`select`) only once it is ready.
Frames already submitted finish on the variant they started on; every variant delivers to the one callback, and
the pipeline puts frames back in order by their tags.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgesharp.edge.backends.base import InferenceBackend
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)


def _of_active(attribute: str) -> property:
    """The precision choice `open_backend` set on the backend that runs the frames now."""
    return property(lambda self: getattr(self._backends[self._active], attribute, None))


class VariantBackend(InferenceBackend):
    """`first` (already open) under `names[0]`, and one opener per further name."""

    def __init__(self, first: InferenceBackend, names: Sequence[str], openers: Sequence[Callable[[], InferenceBackend]]):
        if len(names) != len(openers) + 1 or len(set(names)) != len(names):
            raise EdgesharpError(f"model variants {list(names)}: need distinct names, one per model")
        super().__init__(first.size_multiple)
        self.names = tuple(names)
        self._openers = dict(zip(self.names[1:], openers, strict=True))
        self._backends: dict[str, InferenceBackend] = {self.names[0]: first}
        self._active = self.names[0]
        self._open_lock = threading.Lock()
        first.set_callback(self._deliver)

    precision = _of_active("precision")
    precision_requested = _of_active("precision_requested")
    precision_reason = _of_active("precision_reason")
    cpu_class = _of_active("cpu_class")
    self_check = _of_active("self_check")

    @property
    def name(self) -> str:  # what describe() reports: the backend that runs the frames
        return self._backends[self.names[0]].name

    @property
    def active(self) -> str:
        return self._active

    def variant(self, name: str) -> InferenceBackend:
        """The opened backend of variant `name`, opening it first (the caller's thread waits)."""
        if name not in self.names:
            raise EdgesharpError(f"unknown model variant {name!r}; have {', '.join(self.names)}")
        with self._open_lock:
            if name not in self._backends:
                if self._closed:
                    raise EdgesharpError(f"model variant {name}: the backend is closed")
                log.info("opening the lighter model %s", name)
                backend = self._openers[name]()
                backend.set_callback(self._deliver)
                self._backends[name] = backend
            return self._backends[name]

    def prepare(self, width: int, height: int, variant: str | None = None) -> None:
        """Open `variant` (default: the active one) and compile it for frames of `width` x `height`, without
        switching to it."""
        backend = self.variant(variant or self._active)
        prepare = getattr(backend, "prepare", None)
        if prepare is not None:
            prepare(width, height)

    def select(self, name: str) -> None:
        """Run the next frames on variant `name` (opened first if it is not)."""
        self.variant(name)
        if name != self._active:
            log.debug("model variant %s -> %s", self._active, name)
        self._active = name

    # -- interface ---------------------------------------------------------------------------------------
    @property
    def num_requests(self) -> int:
        return self._backends[self.names[0]].num_requests

    def submit(self, frame: np.ndarray, tag: Any) -> None:
        self._backends[self._active].submit(frame, tag)

    def wait_all(self) -> None:
        for backend in list(self._backends.values()):
            backend.wait_all()

    def _close(self) -> None:
        with self._open_lock:
            backends = list(self._backends.values())
        errors = []
        for backend in backends:
            try:
                backend.close()
            except Exception as exc:  # close every variant; report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    def describe(self) -> dict:
        """The first variant's settings (the precision choice, streams) and which variant runs now."""
        info = self._backends[self.names[0]].describe()
        info.update(model_variants=list(self.names), model_variant=self._active)
        return info
