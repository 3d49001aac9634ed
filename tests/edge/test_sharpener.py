"""The Python API: Sharpener.enhance / .stream on the tiny bundle, colour order, strength, several frames in flight,
missing default model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import FakeBackend, frame_index, indexed_frame
from ir_factory import reference_output

from edgesharp import Sharpener
from edgesharp.edge.errors import EdgesharpError


def test_enhance_bgr_and_rgb(tiny_bundle_dir):
    frame = indexed_frame(3, 70, 90)
    ref = reference_output(frame, 0.5)
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener:
        assert np.abs(sharpener.enhance(frame).astype(int) - ref).max() <= 3
    with Sharpener(tiny_bundle_dir, precision="fp32", color="rgb", backend="onnxruntime") as sharpener:
        out = sharpener.enhance(np.ascontiguousarray(frame[:, :, ::-1]))
        assert np.abs(out[:, :, ::-1].astype(int) - ref).max() <= 1


def test_stream_keeps_order_and_strength(tiny_bundle_dir):
    frames = [indexed_frame(i, 64, 64) for i in range(15)]
    with Sharpener(tiny_bundle_dir, precision="fp32", requests=3, strength=0.0) as sharpener:
        assert sharpener.backend.num_requests == 3
        outs = list(sharpener.stream(iter(frames)))
        assert all(np.array_equal(a, b) for a, b in zip(outs, frames, strict=True))  # strength 0: input back
        sharpener.strength = 1.0
        first = []
        for out in sharpener.stream(frames):  # stopping early leaves the backend usable
            first.append(frame_index(out))
            if len(first) == 4:
                break
        assert first == [0, 1, 2, 3]
        assert [frame_index(o) for o in sharpener.stream(frames)] == list(range(15))


def test_bad_input_and_options(tiny_bundle_dir):
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener, pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
        sharpener.enhance(np.zeros((10, 10), np.float32))
    with pytest.raises(EdgesharpError, match="color"):
        Sharpener(tiny_bundle_dir, color="yuv")


def test_missing_default_model_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr("edgesharp.edge.bundle.default_bundle_path", lambda: tmp_path / "default")
    with pytest.raises(EdgesharpError, match="pass --model BUNDLE_DIR, or make one with 'edgesharp calibrate'"):
        Sharpener()


class CountingBackend(FakeBackend):
    """FakeBackend (255 - frame, finished out of order) that records the most frames in inference at once: from a
    submit (which holds one of the `workers` slots) to the end of that frame's delay."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._count = threading.Lock()
        self.running = self.most_in_flight = 0

    def submit(self, frame, tag) -> None:
        super().submit(frame, tag)
        with self._count:
            self.running += 1
            self.most_in_flight = max(self.most_in_flight, self.running)

    def _job(self, frame, tag, wait):
        time.sleep(wait)
        with self._count:
            self.running -= 1
        super()._job(frame, tag, 0.0)


def test_stream_keeps_several_frames_in_flight_and_hands_them_out_in_order(tiny_bundle_dir):
    frames = [indexed_frame(i, 48, 64) for i in range(24)]
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener:
        sharpener._stream_backend = fake = CountingBackend(workers=3, delay=(0.005, 0.06))
        outs = list(sharpener.stream(frames))
    assert fake.most_in_flight == 3 and fake.submitted == 24
    assert fake.completion_order != sorted(fake.completion_order)  # they did finish out of order
    assert [frame_index(255 - out) for out in outs] == list(range(24))


def test_by_default_stream_runs_several_requests_and_enhance_one(tiny_bundle_dir):
    frames = [indexed_frame(i, 64, 64) for i in range(10)]
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener:
        assert sharpener.backend.hint == "latency" and sharpener.backend.num_requests == 1
        assert [frame_index(out) for out in sharpener.stream(frames)] == list(range(10))
        info = sharpener.describe()["stream"]
        assert info["hint"] == "throughput" and info["requests"] >= 2 and info["precision"] == sharpener.precision
        streaming = sharpener._streaming_backend()
        assert len(streaming._compiled[streaming._active].requests) == streaming.num_requests >= 2
        assert [frame_index(out) for out in sharpener.stream(frames[:3])] == [0, 1, 2]  # the same backend again
        assert sharpener._streaming_backend() is streaming
        assert np.abs(sharpener.enhance(frames[0]).astype(int) - reference_output(frames[0], 0.5)).max() <= 3
    assert streaming._closed and sharpener.backend._closed
    with Sharpener(tiny_bundle_dir, precision="fp32", hint="throughput") as sharpener:
        list(sharpener.stream(frames[:2]))
        assert sharpener._streaming_backend() is sharpener.backend and "stream" not in sharpener.describe()


def test_frames_over_the_pixel_limit_are_refused_by_size(tiny_bundle_dir):
    from edgesharp.edge.backends.base import MAX_PIXELS

    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (8200, 8000, 3))  # 65.6 MP without the memory
    assert MAX_PIXELS < 8200 * 8000
    with Sharpener(tiny_bundle_dir, precision="fp32") as sharpener:
        with pytest.raises(EdgesharpError, match=r"^frame: 8000x8200 is 65\.6 megapixels, more than the limit of 64"):
            sharpener.enhance(huge)
        with pytest.raises(EdgesharpError, match="more than the limit"):
            sharpener.backend.submit(huge, 0)  # the backend refuses it too (a folder's image: skipped, named)
        assert sharpener.enhance(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64, 3)


def test_requests_over_the_limit_are_refused(tiny_bundle_dir):
    with pytest.raises(EdgesharpError, match="requests must be between 1 and 64, got 1000"):
        Sharpener(tiny_bundle_dir, precision="fp32", requests=1000)


def test_stream_raises_a_bad_frame_after_the_good_ones_before_it(tiny_bundle_dir):
    frames = [indexed_frame(i, 48, 64) for i in range(5)] + [np.zeros((48, 64), np.uint8)]
    got = []
    with Sharpener(tiny_bundle_dir, precision="fp32", requests=2) as sharpener:
        with pytest.raises(EdgesharpError, match="expected HxWx3 uint8"):
            for out in sharpener.stream(frames):
                got.append(frame_index(out))
        assert [frame_index(out) for out in sharpener.stream(frames[:2])] == [0, 1]  # usable afterwards
    assert got == list(range(len(got))) and len(got) <= 5


def test_leaving_a_stream_early_stops_reading_an_endless_source(tiny_bundle_dir):
    read = []

    def endless():
        i = 0
        while True:
            read.append(i)
            yield indexed_frame(i % 50, 48, 64)
            i += 1

    with Sharpener(tiny_bundle_dir, precision="fp32", requests=2) as sharpener:
        for n, out in enumerate(sharpener.stream(endless())):
            assert frame_index(out) == n
            if n == 9:
                break
        pipeline_threads = ("edgesharp-stream", "edgesharp-capture", "edgesharp-dispatch", "edgesharp-write")
        assert not [t.name for t in threading.enumerate() if t.name in pipeline_threads]
    assert 10 <= len(read) <= 10 + 20  # bounded read-ahead: queue, requests in flight and the hand-off


def test_stream_follows_a_strength_change_between_frames(tiny_bundle_dir):
    frames = [indexed_frame(i, 64, 64) for i in range(6)]
    with Sharpener(tiny_bundle_dir, precision="fp32", requests=2) as sharpener:
        outs = []
        for i, out in enumerate(sharpener.stream(frames)):
            outs.append(out)
            if i == 2:
                sharpener.strength = 0.0
        assert all(np.array_equal(out, frames[i]) for i, out in enumerate(outs) if i > 3)
        assert not np.array_equal(outs[0], frames[0])
