"""The async pipeline: capture order kept with 1..4 requests and out-of-order backends, no drops for files,
bounded drops for a live source faster than inference, strength blend, stop flushing, errors raised."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import FakeBackend, frame_index, indexed_frame, two_signals_while_stuck
from ir_factory import reference_output

from edgesharp.edge.backends import open_backend
from edgesharp.edge.errors import EdgesharpError
from edgesharp.edge.pipeline import Pipeline, blend
from edgesharp.edge.sinks import Sink
from edgesharp.edge.sources import IterableSource, Source, SourceFrame


class RecordingSink(Sink):
    description = "recording"

    def __init__(self, stop_after: int | None = None, delay: float = 0.0):
        super().__init__()
        self.records: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.opened_with = None
        self.closed = False
        self.stop_after = stop_after
        self.delay = delay

    def open(self, width, height, fps):
        self.opened_with = (width, height, fps)

    def write(self, original, output, name, index):
        time.sleep(self.delay)
        self.records.append((index, frame_index(original), original, output))
        if self.stop_after and len(self.records) >= self.stop_after:
            self.should_stop = True

    def close(self):
        self.closed = True


class LiveSource(Source):
    """A camera-like source that produces `count` indexed frames at `fps` whether or not anyone keeps up."""

    live = True

    def __init__(self, count, fps):
        super().__init__(fps=fps)
        self.count = count
        self.produced = 0
        self.description = "live test source"

    def _read(self):
        if self.produced >= self.count:
            return None
        time.sleep(1.0 / self.fps)
        self.produced += 1
        return SourceFrame(indexed_frame(self.produced - 1))


def _frames(n, h=64, w=80):
    return [indexed_frame(i, h, w) for i in range(n)]


@pytest.mark.parametrize("requests", [1, 2, 3, 4])
def test_capture_order_with_openvino_requests(tiny_bundle, requests):
    sink = RecordingSink()
    with open_backend(tiny_bundle, "openvino", "fp32", requests=requests) as be:
        summary = Pipeline(IterableSource(_frames(20, 61, 83)), be, [sink]).run()
    assert [r[0] for r in sink.records] == list(range(20))
    assert [frame_index(r[3]) for r in sink.records] == list(range(20))  # flat index blocks survive the model
    assert summary["frames_written"] == 20 and summary["frames_dropped"] == 0
    assert sink.opened_with == (83, 61, 30.0) and sink.closed
    ref = reference_output(sink.records[5][2], 0.5)
    assert np.abs(sink.records[5][3].astype(int) - ref).max() <= 3


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_order_restored_when_backend_finishes_out_of_order(workers):
    backend = FakeBackend(workers=workers, delay=(0.0, 0.01))
    sink = RecordingSink()
    Pipeline(IterableSource(_frames(60)), backend, [sink]).run()
    backend.close()
    assert [r[1] for r in sink.records] == list(range(60))
    assert all(np.array_equal(out, 255 - orig) for _, _, orig, out in sink.records)
    if workers > 1:
        assert backend.completion_order != sorted(backend.completion_order)  # the reorder buffer had work to do


def test_file_sources_never_drop_even_with_a_slow_sink():
    backend = FakeBackend(workers=2, delay=(0.0, 0.002))
    sink = RecordingSink(delay=0.01)
    summary = Pipeline(IterableSource(_frames(40)), backend, [sink]).run()
    backend.close()
    assert [r[1] for r in sink.records] == list(range(40))
    assert summary["frames_dropped"] == 0 and summary["frames_captured"] == 40


def test_live_source_faster_than_inference_drops_oldest_and_keeps_latency_bounded():
    backend = FakeBackend(workers=1, delay=(0.04, 0.04))  # 25 fps inference, 100 fps camera
    sink = RecordingSink()
    source = LiveSource(count=120, fps=100)
    summary = Pipeline(source, backend, [sink]).run()
    backend.close()
    written = [r[1] for r in sink.records]
    assert written == sorted(written) and len(set(written)) == len(written)  # order kept, no duplicates
    assert summary["frames_captured"] == 120
    assert summary["frames_written"] + summary["frames_dropped"] == 120
    assert 40 <= summary["frames_dropped"] <= 105  # dropped, but frames kept flowing
    # bounded latency: the frame sent is the newest one, so it waits at most ~one inference before its own
    assert summary["latency_ms"]["p50"] < 100 and summary["latency_ms"]["max"] < 250


def test_strength_blends_output_with_input():
    frames = _frames(3)
    for strength in (0.0, 0.3, 1.0):
        backend = FakeBackend(workers=2)
        sink = RecordingSink()
        Pipeline(IterableSource(frames), backend, [sink], strength=strength).run()
        backend.close()
        for _, _, orig, out in sink.records:
            expected = np.round((255 - orig.astype(np.float64)) * strength + orig * (1 - strength))
            assert np.abs(out.astype(int) - expected).max() <= 1
    a, b = indexed_frame(1), indexed_frame(2)
    assert blend(a, b, 1.0) is b and blend(a, b, 0.0) is a


def test_strength_out_of_range():
    with pytest.raises(EdgesharpError, match="--strength must be between 0 and 1"):
        Pipeline(IterableSource([]), FakeBackend(), [], strength=1.5)


def test_stop_flushes_every_captured_frame():
    backend = FakeBackend(workers=3, delay=(0.005, 0.02))
    sink = RecordingSink()
    pipeline = Pipeline(IterableSource(_frames(2000)), backend, [sink])
    threading.Timer(0.3, pipeline.stop, args=("test stop",)).start()
    summary = pipeline.run()
    backend.close()
    assert pipeline.stop_reason == "test stop"
    assert 0 < summary["frames_written"] < 2000
    assert summary["frames_written"] == summary["frames_captured"]  # nothing captured was lost
    assert [r[1] for r in sink.records] == list(range(summary["frames_written"]))


def test_sink_can_stop_the_run_like_the_preview_q_key():
    backend = FakeBackend(workers=2)
    sink = RecordingSink(stop_after=10)
    summary = Pipeline(IterableSource(_frames(500)), backend, [sink]).run()
    backend.close()
    assert 10 <= summary["frames_written"] < 30 and summary["frames_written"] == summary["frames_captured"]


def test_max_frames_and_several_sinks():
    backend = FakeBackend(workers=2)
    sinks = [RecordingSink(), RecordingSink()]
    summary = Pipeline(IterableSource(_frames(50)), backend, sinks, max_frames=17).run()
    backend.close()
    assert summary["frames_written"] == 17
    for sink in sinks:
        assert [r[1] for r in sink.records] == list(range(17)) and sink.closed


def test_backend_error_is_raised_and_sinks_closed():
    backend = FakeBackend(workers=2, fail_at=5)
    sink = RecordingSink()
    with pytest.raises(EdgesharpError, match="inference of frame 5 failed: device lost"):
        Pipeline(IterableSource(_frames(50)), backend, [sink]).run()
    backend.close()
    assert sink.closed and [r[1] for r in sink.records] == list(range(5))


def test_source_error_is_raised():
    class Broken(Source):
        description = "broken"

        def __init__(self):
            super().__init__(fps=30)
            self.n = 0

        def _read(self):
            self.n += 1
            if self.n > 3:
                raise EdgesharpError("broken source: cable pulled")
            return SourceFrame(indexed_frame(self.n))

    backend = FakeBackend()
    sink = RecordingSink()
    with pytest.raises(EdgesharpError, match="cable pulled"):
        Pipeline(Broken(), backend, [sink]).run()
    backend.close()


def test_status_callback_runs_once_per_interval():
    backend = FakeBackend(workers=1, delay=(0.01, 0.01))
    lines = []
    Pipeline(IterableSource(_frames(40)), backend, [RecordingSink()]).run(
        on_status=lambda s: lines.append(s.status_line()), status_every=0.1)
    backend.close()
    assert 2 <= len(lines) <= 8
    assert lines[-1].startswith("frames ") and "fps" in lines[-1] and "rss" in lines[-1]


@pytest.mark.parametrize("with_status", [False, True])
def test_the_main_thread_waits_without_spinning(with_status):
    """The main thread only watches the writer: its CPU time stays a small part of the run's wall time (it spun
    at 100 % of a core without a status callback, taking that core from inference)."""
    backend = FakeBackend(workers=1, delay=(0.02, 0.02))
    kwargs = {"on_status": (lambda s: None) if with_status else None, "status_every": 0.05}
    wall, cpu = time.perf_counter(), time.thread_time()
    Pipeline(IterableSource(_frames(40)), backend, [RecordingSink()]).run(**kwargs)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    backend.close()
    assert wall > 0.7 and cpu < 0.25 * wall, (cpu, wall)


class SmallFrameBackend(FakeBackend):
    """Refuses frames narrower than 16 pixels at submit, as the real backends refuse too small a frame."""

    def submit(self, frame, tag) -> None:
        if frame.shape[1] < 16:
            raise EdgesharpError(f"frame: {frame.shape[1]}x{frame.shape[0]} is too small (at least 16x16)")
        super().submit(frame, tag)


class NamedSource(Source):
    def __init__(self, frames):
        super().__init__(fps=30)
        self.frames = list(frames)

    def _read(self):
        if not self.frames:
            return None
        name, image = self.frames.pop(0)
        return SourceFrame(image, name=name, origin=f"dir/{name}.png")


def test_skip_failed_frames_names_each_and_keeps_the_rest():
    frames = [(f"f{i}", indexed_frame(i) if i not in (2, 5) else indexed_frame(i, 8, 8)) for i in range(8)]
    backend = SmallFrameBackend(workers=2, fail_at=6)  # frames 2 and 5 refused at submit, 6 fails in inference
    sink = RecordingSink()
    pipeline = Pipeline(NamedSource(frames), backend, [sink], skip_failed_frames=True)
    summary = pipeline.run()
    backend.close()
    assert pipeline.skipped == ["dir/f2.png", "dir/f5.png", "dir/f6.png"]
    assert [r[1] for r in sink.records] == [0, 1, 3, 4, 7] and summary["frames_written"] == 5
    with pytest.raises(EdgesharpError, match="too small"):  # without the option the first one still stops the run
        Pipeline(NamedSource(frames[:4]), SmallFrameBackend(), [RecordingSink()]).run()


class FailingSink(RecordingSink):
    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at
        self.aborted = False

    def write(self, original, output, name, index):
        if index == self.fail_at:
            raise EdgesharpError("sink: disk full")
        super().write(original, output, name, index)

    def abort(self):
        self.aborted = True


def test_a_sink_that_fails_publishes_nothing_the_others_keep_their_frames():
    backend = FakeBackend(workers=2)
    bad, good = FailingSink(fail_at=4), RecordingSink()
    with pytest.raises(EdgesharpError, match="disk full"):
        Pipeline(IterableSource(_frames(20)), backend, [good, bad]).run()
    backend.close()
    assert bad.aborted and not bad.closed
    assert good.closed and [r[1] for r in good.records] == list(range(5))


def test_run_refuses_a_sink_that_would_replace_its_input(tmp_path):
    from edgesharp.edge.sinks import VideoFileSink
    from edgesharp.edge.sources import VideoFileSource

    video = tmp_path / "s.avi"
    sink = VideoFileSink(video)
    sink.open(80, 64, 10)
    for i in range(3):
        sink.write(indexed_frame(i), indexed_frame(i), None, i)
    sink.close()
    before = video.read_bytes()
    with pytest.raises(EdgesharpError, match="would overwrite the input"):
        Pipeline(VideoFileSource(video), FakeBackend(), [VideoFileSink(video)]).run()
    assert video.read_bytes() == before


STUCK_MAIN_THREAD = """
import ctypes, logging, pathlib, sys
sys.path.insert(0, sys.argv[2])
from fakes import FakeBackend, indexed_frame
from edgesharp.edge.pipeline import Pipeline
from edgesharp.edge.sinks import NullSink
from edgesharp.edge.sources import IterableSource

class StuckBackend(FakeBackend):
    def wait_all(self):  # the main thread blocks here, in a native call no signal interrupts
        pathlib.Path(sys.argv[1]).write_text("stuck")
        mutex, libc = ctypes.create_string_buffer(64), ctypes.CDLL(None)
        libc.pthread_mutex_lock(mutex)
        libc.pthread_mutex_lock(mutex)

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
Pipeline(IterableSource([indexed_frame(i) for i in range(3)]), StuckBackend(), [NullSink()]).run(handle_signals=True)
"""


def test_second_signal_ends_the_process_even_with_the_main_thread_stuck(tmp_path):
    """Python runs signal handlers only in the main thread between bytecodes: the wakeup-pipe watchdog must end
    the process on the second signal while the main thread is blocked in native code."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "stuck"
    proc = subprocess.Popen([sys.executable, "-c", STUCK_MAIN_THREAD, str(marker), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    elapsed, err = two_signals_while_stuck(proc, marker, signal.SIGINT, signal.SIGINT)
    assert proc.returncode == 130 and elapsed < 1.5, (proc.returncode, elapsed, err[-2000:])
    assert err.strip().splitlines() == ["WARNING second SIGINT: exiting now without flushing; unfinished output "
                                        "files are removed"]
