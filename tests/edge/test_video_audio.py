"""`edgesharp enhance` on clips with sound (issue 26): the audio survives (copied packet for packet, or encoded
again where the container refuses its codec) and stays in step with the frames, the video is H.264 at the
source's exact rate and frame count, a run stopped early keeps only the sound of its frames, a failed write
leaves nothing, and without PyAV OpenCV writes the video with one warning. Clips are made here with PyAV."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fakes import indexed_frame

from edgesharp.edge.cli import main
from edgesharp.edge.imaging import video_out
from edgesharp.edge.sinks import VideoFileSink, decodable_frames

W, H, FRAMES, FPS, SAMPLE_RATE = 64, 48, 12, 10, 48000
ONSET = 0.5  # the tone starts here, with frame 5: silence before it


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return np.where(t >= ONSET, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)


def make_clip(path: Path, audio: str | None = "aac", frames: int = FRAMES, rate=FPS, video_start: int = 0,
              audio_start: float = 0.0) -> Path:
    """A small H.264 clip (smooth frames) with a mono 440 Hz tone from ONSET in `audio` (None: no sound); the
    first frame at `video_start` frames, the sound from `audio_start` seconds."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264" if video_out.h264_encoder(av) else "mpeg4", rate=rate)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=SAMPLE_RATE)
            sound.layout = "mono"
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(cv2.GaussianBlur(indexed_frame(i, H, W), (0, 0), 2), format="bgr24")
            picture.pts = video_start + i
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = _tone(frames / float(rate))
            fmt, size = sound.codec_context.format.name, sound.codec_context.frame_size or 1024
            for start in range(0, len(samples), size):
                chunk = samples[None, start:start + size]
                if fmt.startswith("s16"):
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, start + int(audio_start * SAMPLE_RATE)
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def probe(path: Path) -> dict:
    """What a player sees: codecs, rate, frames, and the sound's onset measured from the first frame's time."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {"video": video.codec_context.name, "rate": video.average_rate, "audio": None}
        times = [frame.time for frame in container.decode(video=0)]
        info["frames"] = len(times)
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            info["audio"] = stream.codec_context.name
            info["packets"] = [bytes(p) for p in container.demux(stream) if p.size]
    if info["audio"]:
        with av.open(str(path)) as container:
            frames = list(container.decode(audio=0))
        samples = np.concatenate([f.to_ndarray().astype(np.float64).reshape(-1) for f in frames])
        if frames[0].format.name.startswith("s16"):
            samples /= 32767
        info["samples"] = samples
        info["duration"] = len(samples) / frames[0].sample_rate
        info["start"] = frames[0].time - times[0]  # the first sample's time, from the first frame's
        loud = np.flatnonzero(np.abs(samples) > 0.2)
        info["onset"] = info["start"] + loud[0] / frames[0].sample_rate
    return info


def enhance(src: Path, out: Path, bundle: Path) -> int:
    return main(["-q", "enhance", str(src), str(out), "--model", str(bundle), "--backend", "onnxruntime"])


def _similar(a: dict, b: dict, lag: float = 0.0, start: float = ONSET + 0.05, end: float = 1.1) -> float:
    """Correlation of two probes' sound from `start` to `end` seconds after their first frame, the best over
    shifts of up to `lag` seconds: 1.0 when the same tone plays at the same time in both; a shift of a quarter
    period (0.57 ms) already brings it to 0."""
    def window(info, shift=0):
        first = int(round((start - info["start"]) * SAMPLE_RATE)) + shift
        return info["samples"][first:first + int((end - start) * SAMPLE_RATE)]

    steps = int(round(lag * SAMPLE_RATE))
    return max(float(np.corrcoef(window(a, k), window(b))[0, 1]) for k in range(-steps, steps + 1))


def test_enhance_keeps_the_sound_packet_for_packet_and_writes_h264(tmp_path, tiny_bundle_dir):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    assert enhance(src, out, tiny_bundle_dir) == 0
    before, after = probe(src), probe(out)
    expected = "h264" if video_out.h264_encoder(av) else "mpeg4"
    assert after["video"] == expected and after["rate"] == FPS and after["frames"] == FRAMES == decodable_frames(out)
    assert after["audio"] == "aac" and after["packets"] == before["packets"]  # copied, not encoded again
    assert after["onset"] == pytest.approx(ONSET, abs=0.003) and before["onset"] == pytest.approx(ONSET, abs=0.003)
    assert after["duration"] == pytest.approx(before["duration"], abs=1e-6) and _similar(after, before) > 0.999
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


@pytest.mark.parametrize(("ext", "codec", "step"), [
    (".mkv", "h264", 0.0005),  # Matroska counts time in milliseconds: the sound may move by half of one
    (".mov", "h264", 0.0),
    # AVI holds Motion JPEG, and no edit list: AAC's 1024 priming samples play before the sound
    (".avi", "mjpeg", 1024 / SAMPLE_RATE),
])
def test_other_containers_keep_the_sound_in_step(tmp_path, tiny_bundle_dir, ext, codec, step):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / f"out{ext}"
    assert enhance(src, out, tiny_bundle_dir) == 0
    before, after = probe(src), probe(out)
    if codec == "h264" and not video_out.h264_encoder(av):
        codec = "mpeg4"
    assert after["video"] == codec and after["rate"] == FPS and after["frames"] == FRAMES == decodable_frames(out)
    assert after["audio"] == "aac" and after["packets"] == before["packets"]
    assert after["onset"] == pytest.approx(before["onset"], abs=step + 0.001)
    assert after["duration"] == pytest.approx(before["duration"], abs=1025 / SAMPLE_RATE)
    assert _similar(after, before, lag=step) > 0.99


def test_sound_mp4_cannot_hold_is_encoded_as_aac_in_step(tmp_path, tiny_bundle_dir, caplog):
    src = make_clip(tmp_path / "in.mkv", audio="pcm_s16le")
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="edgesharp.edge.imaging.video_out"):
        assert enhance(src, out, tiny_bundle_dir) == 0
    assert f"{out}: pcm_s16le audio is encoded as aac for mp4" in caplog.text
    before, after = probe(src), probe(out)
    assert before["audio"] == "pcm_s16le" and after["audio"] == "aac"
    assert after["frames"] == FRAMES and after["rate"] == FPS
    assert after["onset"] == pytest.approx(ONSET, abs=0.003)
    assert after["duration"] == pytest.approx(before["duration"], abs=1024 / SAMPLE_RATE)
    assert _similar(after, before) > 0.99


@pytest.mark.parametrize(("video_start", "audio_start"), [(5, 0.0), (0, 0.3)])
def test_sound_and_frames_keep_their_offset(tmp_path, tiny_bundle_dir, video_start, audio_start):
    """A clip whose frames start after its sound (or its sound after its frames) keeps that gap."""
    src = make_clip(tmp_path / "in.mp4", video_start=video_start, audio_start=audio_start)
    out = tmp_path / "out.mp4"
    assert enhance(src, out, tiny_bundle_dir) == 0
    before, after = probe(src), probe(out)
    assert before["onset"] == pytest.approx(ONSET + audio_start - video_start / FPS, abs=0.003)
    assert after["onset"] == pytest.approx(before["onset"], abs=0.001) and after["frames"] == FRAMES
    assert _similar(after, before) > 0.99


def test_a_clip_without_sound_keeps_its_exact_rate(tmp_path, tiny_bundle_dir):
    src = make_clip(tmp_path / "in.mkv", audio=None, frames=7, rate=Fraction(30000, 1001))
    out = tmp_path / "out.mp4"
    assert enhance(src, out, tiny_bundle_dir) == 0
    after = probe(out)
    assert after["audio"] is None and after["frames"] == 7
    assert after["rate"] == Fraction(30000, 1001)  # not 29.97, not 30


def write_frames(sink, n):
    """Open `sink` at the clips' size and rate and write `n` numbered frames (not closed)."""
    sink.open(W, H, FPS)
    for i in range(n):
        frame = indexed_frame(i, H, W)
        sink.write(frame, frame, None, i)


def test_a_run_stopped_early_keeps_the_sound_of_its_frames_only(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    write_frames(sink := VideoFileSink(tmp_path / "half.mp4", audio_from=src), 6)
    sink.close()
    after = probe(tmp_path / "half.mp4")
    assert after["frames"] == 6
    assert 0.6 <= after["duration"] <= 0.6 + 1024 / SAMPLE_RATE  # cut at the last frame's end, to a packet


def test_abort_leaves_nothing(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    write_frames(sink := VideoFileSink(tmp_path / "out.mkv", audio_from=src), 4)
    sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_failing_write_leaves_no_file(tmp_path, tiny_bundle_dir, monkeypatch, capsys):
    from test_sinks import FaultyOutput

    src = make_clip(tmp_path / "in.mp4")
    monkeypatch.setattr(av, "open", FaultyOutput("nospace"))
    assert enhance(src, tmp_path / "out.mp4", tiny_bundle_dir) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"edgesharp enhance: error: {tmp_path / 'out.mp4'}: ")
    assert err[-1].endswith("failed ([Errno 28] No space left on device)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_without_pyav_opencv_writes_the_video_with_one_warning(tmp_path, tiny_bundle_dir, monkeypatch, caplog):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(video_out, "load_av", lambda: None)  # as if `import av` failed
    with caplog.at_level(logging.WARNING):
        assert enhance(src, out, tiny_bundle_dir) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "PyAV is not installed" in warnings[0] and "pip install av" in warnings[0]
    assert f"without the sound of {src}" in warnings[0]
    after = probe(out)
    assert after["video"] == "mpeg4" and after["audio"] is None and after["frames"] == FRAMES


def test_run_sink_writes_h264_without_sound(tmp_path, tiny_bundle_dir):
    out = tmp_path / "live.mp4"
    assert main(["-q", "run", "--model", str(tiny_bundle_dir), "--source", "synthetic:fast", "--size", "64x48",
                 "--frames", "9", "--sink", str(out), "--backend", "onnxruntime"]) == 0
    after = probe(out)
    assert after["video"] == ("h264" if video_out.h264_encoder(av) else "mpeg4")
    assert after["frames"] == 9 and after["audio"] is None


def test_a_live_run_encodes_cheaply_and_a_file_run_for_quality(tmp_path, monkeypatch):
    """x264 at the fast preset cost more CPU than the model at 1280x720: a live source gets the ultrafast one."""
    from fakes import FakeBackend

    from edgesharp.edge.imaging import video_out
    from edgesharp.edge.pipeline import Pipeline
    from edgesharp.edge.sinks import CompareSink, VideoFileSink
    from edgesharp.edge.sources import SyntheticSource

    used = []
    real = video_out.AvVideoWriter._add_video

    def spy(self, suffix):
        used.append(self.live)
        return real(self, suffix)

    monkeypatch.setattr(video_out.AvVideoWriter, "_add_video", spy)
    for live in (True, False):
        sinks = [VideoFileSink(tmp_path / f"{live}.mp4"), CompareSink(tmp_path / f"compare-{live}")]
        source = SyntheticSource((64, 48), fps=30.0, paced=live, level="none")
        assert source.live == live
        Pipeline(source, FakeBackend(), sinks, max_frames=4).run()
    assert used == [True, True, False, False]
    assert video_out.X264_LIVE_OPTIONS["preset"] == "ultrafast" and video_out.X264_OPTIONS["preset"] == "fast"
