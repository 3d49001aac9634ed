"""The asynchronous pipeline: capture thread -> bounded queue -> N in-flight requests -> reorder buffer -> sink thread.

Frames leave in capture order whatever order the backend finishes them in. A live source (camera, paced
synthetic scene) never waits: when the queue in front of the backend is full the oldest waiting frame is
dropped and counted, which keeps latency bounded. Files and folders wait instead and never lose a frame.
`stop()` (SIGINT/SIGTERM, the preview's `q`, `max_frames`) stops capturing and flushes every frame already
captured; an error aborts (what is in flight is discarded) and is raised from `run()`: the sinks keep the
frames they completed, except a sink that failed itself, which publishes nothing. With `skip_failed_frames`
(image folders, where frames are independent) a frame whose inference fails is skipped with a warning naming
it instead, and the run goes on. Every buffer is bounded, so memory stays flat however long the run.

With `handle_signals` the first SIGINT/SIGTERM stops as above; a second one ends the process at once
(`os._exit`, status 128 + the signal's number) after one log line and the removal of every temporary file
not yet published, even when a thread, or the main thread itself, is stuck in a native call.

With a `governor` (`edgesharp.edge.governor`) the main thread feeds it the delivered rate and the backend's load
twice a second and applies its decisions. Its levers here: the model (a `VariantBackend` switches to the bundle's
lighter variant, `edgesharp.edge.backends.variants`) and the processing scale (the model runs on the frame
downscaled and its detail is added back at full resolution, `add_detail`). The backend opens and compiles the new
level in the background first (`prepare`, where it has one) so the stream does not stall, and the next cheaper
levels are prepared ahead of need. A lighter model that fails to open or compile ends nothing: one warning, and
the governor goes on without it (`Governor.drop`). Without a governor nothing changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgesharp.edge.backends.base import InferenceBackend
from edgesharp.edge.controls import StrengthSetting
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.governor import MODEL, SCALE, Change, Governor, scaled_size
from edgesharp.edge.sinks import Sink, prepare_sinks
from edgesharp.edge.sources import Source
from edgesharp.edge.stats import RunStats

log = logging.getLogger(__name__)

GOVERN_EVERY_S = 0.5  # how often the governor is fed; its hold periods are seconds long



def blend(original: np.ndarray, output: np.ndarray, strength: float) -> np.ndarray:
    """`strength` 1: the model's output; 0: the input; in between: a linear mix."""
    if strength >= 1.0:
        return output
    if strength <= 0.0:
        return original
    return cv2.addWeighted(output, float(strength), original, 1.0 - float(strength), 0.0)


DOWNSCALE = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}
# Linear: on the validation split (python -m edgesharp.benchmarks.scale_quality --method) the same SSIM as area
# within 0.0002 at 0.75 and 0.5, medium and low blur, in a sixth of the time at 1280x720 on the EPYC's AVX-512
# OpenCV kernels (docs/benchmarks.md)
DOWNSCALE_METHOD = "linear"


def downscale(image: np.ndarray, size: tuple[int, int], method: str = DOWNSCALE_METHOD) -> np.ndarray:
    """The frame at the processing scale: (w, h) `size`, by `method` (DOWNSCALE)."""
    return cv2.resize(image, size, interpolation=DOWNSCALE[method])


def add_detail(original: np.ndarray, model_input: np.ndarray, model_output: np.ndarray) -> np.ndarray:
    """The frame at full resolution plus what the model added to its downscaled copy, upscaled:
    original + up(model_output - model_input). Keeps every input pixel's detail; saturates at 0 and 255."""
    h, w = original.shape[:2]
    detail = cv2.subtract(model_output, model_input, dtype=cv2.CV_16S)
    detail = cv2.resize(detail, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.add(original, detail, dtype=cv2.CV_8U)


@dataclass
class _Frame:
    index: int  # capture order (names image-folder outputs)
    captured_at: float
    image: np.ndarray
    name: str | None
    origin: str | None = None
    submitted_at: float = 0.0
    model_input: np.ndarray | None = None  # the downscaled frame the model ran on (processing scale < 1)


_EXIT_LOCK = threading.Lock()


def exit_now(signum: int) -> None:
    """A second SIGINT/SIGTERM: log one line, remove unpublished temporary files, end the process at once."""
    if not _EXIT_LOCK.acquire(blocking=False):
        return  # the other path (signal handler or watchdog) is already exiting
    try:
        log.warning("second %s: exiting now without flushing; unfinished output files are removed",
                    signal.Signals(signum).name)
        from edgesharp.edge.imaging.io import remove_temporary_files

        remove_temporary_files()
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
    finally:
        os._exit(128 + signum)


class Pipeline:
    strength = StrengthSetting("--strength")

    def __init__(
        self,
        source: Source,
        backend: InferenceBackend,
        sinks: Sequence[Sink],
        strength: float = 1.0,
        max_frames: int | None = None,
        queue_size: int | None = None,
        stats: RunStats | None = None,
        skip_failed_frames: bool = False,
        governor: Governor | None = None,
    ):
        self.bypass = False  # live control: pass the input through unchanged
        if max_frames is not None and max_frames < 1:
            raise EdgesharpError(f"--frames must be >= 1, got {max_frames}")
        self.source = source
        self.backend = backend
        self.sinks = list(sinks)
        self.strength = strength  # live control too: read for every frame as it is written
        self.max_frames = max_frames
        self.skip_failed_frames = skip_failed_frames
        self.skipped: list[str] = []  # frames skipped after a failed inference (their file, or "frame N")
        self.queue_size = queue_size or (1 if source.live else 4)
        self.stats = stats or RunStats()
        self.governor = governor
        self._scale = 1.0  # processing scale, set by the governor
        self._frame_size: tuple[int, int] | None = None  # (w, h) of the latest frame dispatched
        self._parallel: int | None = None  # streams the backend runs at once (for the governor's load)
        self._switch: threading.Thread | None = None  # a level change being prepared
        self._prewarming: threading.Thread | None = None  # the next cheaper level being prepared ahead
        self._prewarmed: set[tuple[str | None, float]] = set()  # (variant, scale)
        self._broken: str | None = None  # why the lighter model failed to open, until the governor drops it
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Condition()  # guards the queue, the reorder buffer and the flags below
        self._pending: deque[_Frame] = deque()
        self._capture_done = False
        self._dispatch_done = False
        self._submitted = 0
        self._in_flight: dict[int, _Frame] = {}
        self._finished: dict[int, tuple[np.ndarray | None, BaseException | None]] = {}
        # frames inside the backend (N) and frames between dispatch and the sinks (N + 2): both bounded
        self._request_slots = threading.Semaphore(0)
        self._buffer_slots = threading.Semaphore(0)

    # -- control ---------------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Stop capturing; frames already captured are still processed and written."""
        if not self._stop.is_set():
            self.stop_reason = reason
            log.info("stopping: %s", reason)
        self._stop.set()
        self.source.interrupt()
        with self._lock:
            self._lock.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
            self._abort.set()
            self._lock.notify_all()
        self.stop(f"error: {exc}")

    # -- threads ---------------------------------------------------------------------------------------
    def _capture(self) -> None:
        try:
            index = 0
            while not self._stop.is_set() and (self.max_frames is None or index < self.max_frames):
                frame = self.source.read()
                if frame is None:
                    break
                item = _Frame(index, time.perf_counter(), frame.image, frame.name, frame.origin)
                index += 1
                self.stats.frame_captured()
                with self._lock:
                    if self.source.live:
                        while len(self._pending) >= self.queue_size:
                            self._pending.popleft()
                            self.stats.frame_dropped()
                    else:
                        self._lock.wait_for(lambda: len(self._pending) < self.queue_size or self._abort.is_set())
                    self._pending.append(item)
                    self._lock.notify_all()
            if self.max_frames is not None and index >= self.max_frames:
                self.stop_reason = self.stop_reason or f"{self.max_frames} frames"
        except BaseException as exc:
            self._fail(exc)
        finally:
            with self._lock:
                self._capture_done = True
                self._lock.notify_all()

    def _on_result(self, seq: int, output: np.ndarray | None, error: BaseException | None) -> None:
        now = time.perf_counter()
        with self._lock:
            self._finished[seq] = (output, error)
            item = self._in_flight.get(seq)
            self._lock.notify_all()
        if item is not None and self.governor is not None:
            self.stats.frame_inferred(now - item.submitted_at)
        self._request_slots.release()

    def _acquire(self, slots: threading.Semaphore) -> bool:
        while not slots.acquire(timeout=0.1):
            if self._abort.is_set():
                return False
        return True

    def _dispatch(self) -> None:
        # Wait for a free request *before* taking a frame, so a live source's newest frame is the one sent.
        try:
            while True:
                if not self._acquire(self._buffer_slots):
                    return
                if not self._acquire(self._request_slots):
                    self._buffer_slots.release()
                    return
                with self._lock:
                    self._lock.wait_for(lambda: self._pending or self._capture_done or self._abort.is_set())
                    if self._abort.is_set() or (not self._pending and self._capture_done):
                        return
                    item = self._pending.popleft()
                    seq = self._submitted
                    self._in_flight[seq] = item
                    self._submitted += 1
                    self._lock.notify_all()
                image = item.image
                if self.governor is not None:
                    image = self._model_input(item)
                    item.submitted_at = time.perf_counter()
                try:
                    self.backend.submit(image, seq)
                except EdgesharpError as exc:  # this frame is refused (too small, ...): skip it or stop
                    if not self.skip_failed_frames:
                        raise
                    self._on_result(seq, None, exc)
        except BaseException as exc:
            self._fail(exc)
        finally:
            with self._lock:
                self._dispatch_done = True
                self._lock.notify_all()

    def _write(self) -> None:
        next_seq = 0
        opened: list[Sink] = []
        current: Sink | None = None  # the sink being opened or written, blamed if that raises
        failed: Sink | None = None
        try:
            while True:
                with self._lock:
                    self._lock.wait_for(lambda n=next_seq: n in self._finished or self._abort.is_set()
                                        or (self._dispatch_done and n >= self._submitted))
                    if self._abort.is_set() or next_seq not in self._finished:
                        return
                    output, error = self._finished.pop(next_seq)
                    item = self._in_flight.pop(next_seq)
                if error is not None:
                    if not self.skip_failed_frames:
                        raise EdgesharpError(f"inference of frame {item.index} failed: {error}") from error
                    what = item.origin or f"frame {item.index}"
                    log.warning("skipping %s: %s", what, error)
                    self.skipped.append(what)
                    self._buffer_slots.release()
                    next_seq += 1
                    continue
                if not opened:
                    h, w = item.image.shape[:2]
                    for sink in self.sinks:
                        current = sink
                        sink.open(w, h, float(self.source.fps or 30.0))
                        opened.append(sink)
                if item.model_input is not None and not self.bypass:
                    output = add_detail(item.image, item.model_input, output)
                result = item.image if self.bypass else blend(item.image, output, self.strength)
                for sink in self.sinks:
                    current = sink
                    sink.write(item.image, result, item.name, item.index)
                current = None
                self.stats.frame_written(item.captured_at)
                self._buffer_slots.release()
                next_seq += 1
                if any(sink.should_stop for sink in self.sinks):
                    self.stop("quit from the preview window")
        except BaseException as exc:
            failed = current
            self._fail(exc)
        finally:
            for sink in opened:
                try:
                    if sink is failed:
                        sink.abort()
                    else:
                        sink.close()
                except Exception as exc:
                    if self._error is None:
                        self._error = exc  # raised from run(): the CLI says it once
                    else:
                        log.error("closing %s failed: %s", sink.description, exc)

    # -- run -------------------------------------------------------------------------------------------
    def run(self, on_status: Callable[[RunStats], None] | None = None, status_every: float = 1.0,
            handle_signals: bool = False) -> dict:
        """Process the source to its end (or until stopped); returns the final statistics."""
        prepare_sinks(self.sinks, self.source.input_files())
        for sink in self.sinks:
            sink.live = self.source.live
        self.source.open()
        restore = self._install_signals() if handle_signals else None
        self._request_slots = threading.Semaphore(self.backend.num_requests)
        self._buffer_slots = threading.Semaphore(self.backend.num_requests + 2)
        self.backend.set_callback(self._on_result)
        self.stats.info = {
            "source": self.source.description,
            "live": self.source.live,
            "sinks": [s.description for s in self.sinks],
            "strength": self.strength,
            "queue_size": self.queue_size,
            **self.backend.describe(),
        }
        if self.governor is not None:
            self.stats.info["governor"] = self.governor.info()
            self.governor.start(time.perf_counter())
            self.stats.governor_state = self.governor.describe()
        threads = [threading.Thread(target=t, name=f"edgesharp-{t.__name__.strip('_')}", daemon=True)
                   for t in (self._capture, self._dispatch, self._write)]
        # windows are driven from this (the caller's, normally the main) thread: HighGUI needs it on macOS
        windows = [s for s in self.sinks if hasattr(s, "pump")]
        for sink in windows:
            sink.drive_from_caller(controls=self)
        try:
            for t in threads:
                t.start()
            writer = threads[2]
            next_status = time.perf_counter() + status_every
            next_govern = time.perf_counter() + GOVERN_EVERY_S
            while writer.is_alive():
                # short waits keep Ctrl-C responsive; never zero: a spinning main thread holds the GIL and a core
                wait = 0.1 if on_status is None else min(0.1, next_status - time.perf_counter())
                writer.join(timeout=max(0.005, min(wait, 0.01) if windows else wait))
                for sink in windows:
                    try:
                        sink.pump()
                    except EdgesharpError as exc:
                        self._fail(exc)
                    if sink.should_stop and not self._stop.is_set():
                        self.stop("quit from the preview window")
                if self.governor is not None and time.perf_counter() >= next_govern:
                    self._govern(time.perf_counter())
                    next_govern += GOVERN_EVERY_S
                if on_status and time.perf_counter() >= next_status:
                    on_status(self.stats)
                    next_status += status_every
            if not self._abort.is_set():
                threads[1].join()
            self.stop(self.stop_reason or "end of source")
            threads[0].join(timeout=10.0)
            if threads[0].is_alive():
                log.warning("%s did not return from a read within 10 s", self.source.description)
        finally:
            for sink in windows:
                with contextlib.suppress(Exception):
                    sink.pump(final=True)
            self.source.interrupt()
            for compiling in (self._switch, self._prewarming):
                if compiling is not None:
                    compiling.join()  # a compile ends by itself; the backend must not close under it
            self.backend.wait_all()
            self.backend.set_callback(None)
            self.source.close()
            self.stats.finish()
            if restore:
                restore()
        if self._error is not None:
            raise self._error
        return self.stats.snapshot()

    # -- governor ----------------------------------------------------------------------------------------
    def _model_input(self, item: _Frame) -> np.ndarray:
        """The frame the backend gets: the captured one, or its copy at the processing scale (kept on `item`)."""
        h, w = item.image.shape[:2]
        self._frame_size = (w, h)
        scale = self._scale
        if scale >= 1.0:
            return item.image
        size = scaled_size(w, h, scale, self.backend.size_multiple)
        if size == (w, h):
            return item.image
        item.model_input = downscale(item.image, size)
        return item.model_input

    def _govern(self, now: float) -> None:
        """Feed the governor one measurement; apply the change it returns."""
        if self._switch is not None:
            if self._switch.is_alive():
                return
            self._switch = None
            self.governor.applied(now)
        input_fps, output_fps = self.stats.rates()
        change = None
        if self._broken is not None:  # the run goes on without it, back on the model when it had switched
            change = self.governor.drop(MODEL, self._broken, now, output_fps)
            self._broken = None
        if change is None:
            change = self.governor.observe(output_fps, input_fps, self._load(), now)
        if change is not None:
            self.stats.governor_changed(change.to_dict())
            self._apply(change)
        elif self._switch is None:
            self._prewarm()
        self.stats.governor_state = self.governor.describe()

    def _load(self) -> float | None:
        """The backend's busy share over the last second (inference time over its parallel streams)."""
        if not self.stats.written:
            return None
        if self._parallel is None:
            self._parallel = _parallelism(self.backend)
        return self.stats.inference_seconds() / self._parallel

    def _target(self, level: dict) -> tuple[str | None, float]:
        """(variant, scale) of a governor level (lever name -> value; a lever left out keeps its value)."""
        unknown = set(level) - {MODEL, SCALE}
        if unknown:
            raise EdgesharpError(f"governor: no way to apply the lever {sorted(unknown)[0]!r}")
        variant = level.get(MODEL, self._variant)
        return (None if variant is None else str(variant)), float(level.get(SCALE, self._scale))

    def _prepare(self, variant: str | None, scale: float) -> None:
        """Open and compile what the level (variant, scale) needs for the current frame size."""
        size = scaled_size(*self._frame_size, scale, self.backend.size_multiple)
        if variant is None:
            self.backend.prepare(*size)
        else:
            self.backend.prepare(*size, variant=variant)

    def _prewarm(self) -> None:
        """Prepare the governor's next cheaper levels in the background ahead of need (one thread, nearest first),
        so that a step down switches at once: compiling while the machine is already short of CPU took many
        seconds here."""
        if getattr(self.backend, "prepare", None) is None or self._frame_size is None:
            return
        if self._prewarming is not None and self._prewarming.is_alive():
            return  # one at a time: the next tick looks again
        levels = [level for level in map(self._target, self.governor.ahead()) if level not in self._prewarmed]
        if not levels:
            return
        self._prewarmed.update(levels)

        def prepare_ahead() -> None:
            for level in levels:
                try:
                    self._prepare(*level)
                except Exception as exc:
                    if self._is_lighter(level[0]):
                        self._lighter_failed(level[0], exc)
                    else:  # the switch itself will prepare again and report a real failure
                        log.debug("preparing %s ahead failed: %s", level, exc)

        self._prewarming = threading.Thread(target=prepare_ahead, name="edgesharp-prewarm", daemon=True)
        self._prewarming.start()

    def _apply(self, change: Change) -> None:
        variant, scale = self._target(change.after)
        if getattr(self.backend, "prepare", None) is None or self._frame_size is None:
            self._select(variant, scale)
            return

        def switch() -> None:
            try:
                if self._prewarming is not None:
                    self._prewarming.join()  # it may be preparing this very level
                try:
                    self._prepare(variant, scale)
                    self._select(variant, scale)
                except Exception as exc:
                    if not (self._is_lighter(variant) and variant != self._variant):
                        raise
                    self._lighter_failed(variant, exc)  # the other levers still move
                    self._prepare(self._variant, scale)
                    self._select(self._variant, scale)
            except BaseException as exc:
                self._fail(exc)

        self._switch = threading.Thread(target=switch, name="edgesharp-prepare", daemon=True)
        self._switch.start()

    @property
    def _variant(self) -> str | None:
        """The model variant running (a `VariantBackend`'s active one; None: the backend has one model)."""
        return getattr(self.backend, "active", None)

    def _is_lighter(self, variant: str | None) -> bool:
        names = getattr(self.backend, "names", ())
        return variant is not None and bool(names) and variant != names[0]

    def _lighter_failed(self, variant: str, exc: Exception) -> None:
        """A lighter model that cannot open or compile is no reason to end the run: the governor drops it."""
        if self._broken is None:
            log.warning("the lighter model %s failed (%s); going on without it", variant, exc)
            self._broken = f"{variant} failed: {exc}"

    def _select(self, variant: str | None, scale: float) -> None:
        if variant is not None:
            self.backend.select(variant)
        self._scale = scale

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = {}
        received = []

        def handler(signum, frame):
            received.append(signum)
            if len(received) == 1:
                self.stop(f"{signal.Signals(signum).name} received")
                log.info("send %s again to exit at once without flushing", signal.Signals(signum).name)
            else:
                exit_now(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        # The handler above runs only when the main thread is back in Python; the C-level handler also writes
        # each signal's number to this pipe at once, so a watchdog thread can end the process on the second
        # one even while the main thread is stuck in a native call.
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        watchdog = threading.Thread(target=_watch_signals, args=(read_fd,), name="edgesharp-signals", daemon=True)
        watchdog.start()

        def restore():
            signal.set_wakeup_fd(previous_wakeup)
            os.close(write_fd)  # the watchdog reads end-of-file, closes its end and returns
            watchdog.join(timeout=1.0)
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


def _parallelism(backend: InferenceBackend) -> int:
    """Frames the backend computes at once: its streams where it says (OpenVINO), else its requests."""
    try:
        streams = int(str(backend.describe().get("num_streams", "")))
    except ValueError:
        streams = 0
    return max(1, streams or backend.num_requests)


def _watch_signals(read_fd: int) -> None:
    """Count SIGINT/SIGTERM as the C-level signal handler writes them to the wakeup pipe; exit on the second."""
    seen = 0
    try:
        while data := os.read(read_fd, 64):
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):
                    seen += 1
                    if seen >= 2:
                        exit_now(signum)
    finally:
        os.close(read_fd)
