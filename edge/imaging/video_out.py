"""Video files written with PyAV (FFmpeg): H.264 where this build has an encoder, and the sound of a source clip.

`AvVideoWriter` encodes BGR uint8 frames as H.264 (yuv420p, x264 CRF 18) at an exact rational frame rate and
copies the audio streams of `audio_from` beside them: packets as they are when the container takes the codec,
otherwise decoded and encoded again (AAC in MP4/MOV, the container's usual codec elsewhere). Audio keeps its
offset to the source's video and is written interleaved with the frames. Without an H.264 encoder the frames go
out as MPEG-4 part 2 (OpenCV's mp4v), still with the sound. AVI files hold Motion JPEG (see `AVI_CODEC`).

Colour: frames are converted BGR -> YUV with FFmpeg's default (BT.601) matrix and no colour tags, the same as
OpenCV's reader and writer, so a clip read by OpenCV and written here keeps its colours.
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np

from edgesharp.edge.errors import OutputError

log = logging.getLogger(__name__)

# Software first; the platform encoders need no device: VideoToolbox on macOS, Media Foundation on Windows.
H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_mf")
# `python -m edgesharp.benchmarks.encoders` on the webcam clip (60 frames; 2-core AMD EPYC Zen 4, AVX-512, x264's own
# kernels): at 640x480 fast CRF 18 gives 40.2 dB at 0.9 Mbit/s for 14 ms of CPU a frame, CRF 23 39.2 dB, OpenCV's
# mp4v 38.5 dB at 1.2 Mbit/s. Files and `enhance` are written for quality.
X264_OPTIONS = {"crf": "18", "preset": "fast"}
# A live run encodes beside the model on the same cores: fast CRF 18 costs 37 ms of CPU a 1280x720 frame there,
# more than the model; ultrafast CRF 23 5.3 ms at 38.9 dB and 2.8 Mbit/s, about mp4v's 3.9 ms, 38.9 dB, 2.9 Mbit/s.
X264_LIVE_OPTIONS = {"crf": "23", "preset": "ultrafast"}
BITS_PER_PIXEL = 0.2  # bit rate for encoders without a quality mode: 0.2 bit/pixel is 1.8 Mbit/s at 640x480x30
# without an H.264 encoder: MPEG-4 part 2, the codec of OpenCV's mp4v/XVID writers
FALLBACK_CODEC = "mpeg4"
# AVI keeps Motion JPEG (OpenCV's MJPG): AVI stores no presentation times, and FFmpeg reads H.264 in AVI one frame
# late against its sound (measured: every frame's time +1 frame, B-frames off or on)
AVI_CODEC = "mjpeg"
QSCALE_OPTIONS = {"flags": "+qscale", "global_quality": str(2 * 118)}  # ffmpeg's -q:v 2 (118 = FF_QP2LAMBDA)
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
AUDIO_BIT_RATE = 128_000  # per stereo pair when audio has to be encoded again


def load_av() -> ModuleType | None:
    """PyAV, or None when it is not installed (the caller falls back to OpenCV's writer)."""
    try:
        import av
    except ImportError:
        return None
    return av


def _fraction(value) -> Fraction | None:
    """A PyAV rational (Fraction, or AVRational in newer PyAV) as a Fraction; None when unset or zero."""
    if value is None:
        return None
    num, den = getattr(value, "numerator", None), getattr(value, "denominator", None)
    if not num or not den:
        return None
    return Fraction(int(num), int(den))


def exact_rate(fps: float) -> Fraction:
    """The frame rate as the fraction a container header holds: 29.97002997 -> 30000/1001, 10.0 -> 10."""
    return Fraction(fps).limit_denominator(1001)


@functools.cache
def h264_encoder(av: ModuleType) -> str | None:
    """The first H.264 encoder in `H264_ENCODERS` that this PyAV build has and can open, or None."""
    for name in H264_ENCODERS:
        if name not in av.codecs_available:
            continue
        try:  # a hardware encoder can be compiled in and still fail to open on this machine
            ctx = av.CodecContext.create(name, "w")
            ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 64, "yuv420p", Fraction(1, 30)
            ctx.open()
        except (av.FFmpegError, ValueError) as exc:
            log.debug("H.264 encoder %s does not open here: %s", name, exc)
            continue
        return name
    return None


def _reason(exc: BaseException) -> str:
    """One line: the system's words when a file is named (the temporary name says nothing), else all of it."""
    if getattr(exc, "filename", None) and getattr(exc, "strerror", None):
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


class _AudioCopy:
    """One audio stream of the source on its way to the output: remuxed packets, or decoded and encoded again."""

    def __init__(self, source_stream, output_stream, transcode: bool, shift: float):
        self.source = source_stream
        self.output = output_stream
        self.transcode = transcode
        self.time_base = _fraction(source_stream.time_base) or Fraction(1, 1)
        self.shift = round(Fraction(shift) / self.time_base)  # the source's start, in this stream's ticks
        self.packets = 0

    def output_time(self, packet) -> float | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        return None if ts is None else float((ts - self.shift) * self.time_base)


class AvVideoWriter:
    """H.264 (or the fallback codec) into `path`, the container chosen by `suffix`; audio from `audio_from`.

    `write(frame)` per BGR frame, then `close()` (finishes the file; errors are one-line `OutputError`s naming
    `label`) or `abort()` (releases everything, the caller discards the file)."""

    def __init__(self, av: ModuleType, path: str | Path, suffix: str, size: tuple[int, int], fps: float,
                 audio_from: str | Path | None = None, label: str | Path | None = None, live: bool = False):
        self.av = av
        self.live = live  # frames come as a camera gives them: encode cheaply (X264_LIVE_OPTIONS)
        self.label = str(label or path)
        self.frames = 0
        self.codec = ""
        self.audio_notes: list[str] = []
        self._source = None
        self._copies: list[_AudioCopy] = []
        self._pending = None  # the next source audio packet, read ahead of the video
        self._source_packets = None
        # the source's timeline (seconds): where its video starts and ends (None: not known), and where the first
        # of its streams starts, which is 0 in the output: the frames start at the same distance from the sound
        self._video_start, self._video_end, self._base = 0.0, None, 0.0
        self._first_tick = 0  # the first frame's time in frames of the output
        width, height = size
        self._size = (width - width % 2, height - height % 2)  # 4:2:0 needs even sides, as OpenCV's writer made them
        if min(self._size) < 2:
            raise OutputError(f"{self.label}: frame size {width}x{height} is too small for a video file")
        if self._size != (width, height):
            log.info("%s: %dx%d frames written as %dx%d (4:2:0 video needs even sides)", self.label, width,
                     height, *self._size)
        self._rate = exact_rate(fps)
        try:
            muxer = MUXERS[suffix]
            # AVI has no edit lists: a negative audio start (AAC's priming) would shift the video by a frame
            options = {"avoid_negative_ts": "disabled"} if muxer == "avi" else None
            self._out = av.open(str(path), "w", format=muxer, options=options)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(f"{self.label}: cannot create the video file ({_reason(exc)})") from None
        try:
            if audio_from is not None:
                self._open_source(audio_from)
            self._video = self._add_video(suffix)
            self._add_audio()
        except BaseException:
            self.abort()
            raise

    # -- set-up -----------------------------------------------------------------------------------------
    def _open_source(self, audio_from: str | Path) -> None:
        av = self.av
        try:
            self._source = av.open(str(audio_from))
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.warning("%s: the sound of %s cannot be read (%s); writing the video without it", self.label,
                        audio_from, _reason(exc))
            return
        video = self._source.streams.best("video")
        if video is not None:
            rate = _fraction(video.average_rate) or _fraction(getattr(video, "guessed_rate", None))
            if rate and abs(float(rate) - float(self._rate)) <= 1e-6 * float(rate):
                self._rate = rate  # the header's exact fraction for the rate the frame reader reported
        self._video_start, self._video_end = _video_span(video)

    def _add_video(self, suffix: str):
        av = self.av
        if suffix == ".avi":
            encoder = AVI_CODEC
        else:
            encoder = h264_encoder(av)
            if encoder is None:
                encoder = FALLBACK_CODEC
                log.warning("%s: this PyAV/FFmpeg build has no H.264 encoder (tried %s); writing %s video as "
                            "OpenCV did", self.label, ", ".join(H264_ENCODERS), encoder)
        stream = self._out.add_stream(encoder, rate=self._rate)
        stream.width, stream.height = self._size
        stream.pix_fmt = "yuvj420p" if encoder == "mjpeg" else "yuv420p"  # JPEG's full range, as OpenCV reads it
        if encoder == "libx264":
            stream.codec_context.options = dict(X264_LIVE_OPTIONS if self.live else X264_OPTIONS)
        elif encoder in ("mjpeg", FALLBACK_CODEC):
            stream.codec_context.options = dict(QSCALE_OPTIONS)
        else:
            stream.bit_rate = int(BITS_PER_PIXEL * self._size[0] * self._size[1] * float(self._rate))
        self.codec = f"h264 ({encoder})" if encoder in H264_ENCODERS else encoder
        return stream

    def _add_audio(self) -> None:
        if self._source is None or not self._source.streams.audio:
            return
        starts = [float(s.start_time * (_fraction(s.time_base) or 1)) for s in self._source.streams.audio
                  if s.start_time is not None]
        self._base = min([self._video_start, *starts])
        self._first_tick = round((self._video_start - self._base) * self._rate)
        shift = self._base
        supported = getattr(self._out, "supported_codecs", None)
        for stream in self._source.streams.audio:
            name = stream.codec_context.name if stream.codec_context is not None else None
            if not name:
                log.warning("%s: audio stream %d of %s has an unknown codec; it is left out", self.label,
                            stream.index, self._source.name)
                continue
            if _copies_into(self._out.format.name, name, supported):
                out = self._out.add_stream_from_template(stream)
                self._copies.append(_AudioCopy(stream, out, transcode=False, shift=shift))
                self.audio_notes.append(f"{name} copied")
                continue
            out = self._audio_encoder(stream)
            if out is None:
                continue
            self._copies.append(_AudioCopy(stream, out, transcode=True, shift=shift))
            self.audio_notes.append(f"{name} -> {out.codec_context.name}")
            log.info("%s: %s audio is encoded as %s for %s", self.label, name, out.codec_context.name,
                     self._out.format.name)
        if self._copies:
            self._source_packets = self._source.demux([c.source for c in self._copies])

    def _audio_encoder(self, stream):
        """A new audio stream for a codec the container refuses: its usual codec (AAC for MP4/MOV)."""
        av = self.av
        supported = self._out.supported_codecs
        candidates = [self._out.default_audio_codec, "aac"]
        codec = next((c for c in candidates if c and c in supported and _has_encoder(av, c)), None)
        if codec is None:
            log.warning("%s: %s cannot hold %s audio and no encoder for it is here; the sound is left out",
                        self.label, self._out.format.name, stream.codec_context.name)
            return None
        ctx = stream.codec_context
        rates = av.Codec(codec, "w").audio_rates
        rate = ctx.sample_rate or 48000
        if rates and rate not in rates:
            rate = min(rates, key=lambda r: (r < rate, abs(r - rate)))
        out = self._out.add_stream(codec, rate=rate)
        channels = len(ctx.layout.channels) if ctx.layout is not None else 2
        out.layout = {1: "mono", 2: "stereo"}.get(channels, "5.1" if channels >= 6 else "stereo")
        out.bit_rate = AUDIO_BIT_RATE * max(1, math.ceil(min(channels, 6) / 2))
        return out

    # -- writing ----------------------------------------------------------------------------------------
    def write(self, frame: np.ndarray, index: int | None = None) -> None:
        """Encode one BGR uint8 frame (cropped to the video's even size) after the sound that plays before it."""
        av = self.av
        width, height = self._size
        if frame.shape[1] != width or frame.shape[0] != height:
            frame = np.ascontiguousarray(frame[:height, :width])
        try:
            picture = av.VideoFrame.from_ndarray(frame, format="bgr24")
            picture.pts = self._first_tick + self.frames
            self._mux_audio_until(float((picture.pts + 1) / self._rate))
            for packet in self._video.encode(picture):
                self._out.mux(packet)
        except (av.FFmpegError, OSError, ValueError) as exc:
            number = self.frames if index is None else index
            raise OutputError(f"{self.label}: writing frame {number} failed ({_reason(exc)})") from None
        self.frames += 1

    def _mux_audio_until(self, end: float | None) -> None:
        """Mux the source's audio up to `end` seconds of output (everything when None)."""
        while self._source_packets is not None:
            if self._pending is None:
                self._pending = self._read_source_packet()
                continue
            packet = self._pending
            copy = self._copy_for(packet)
            time = None if copy is None else copy.output_time(packet)
            if copy is None or packet.size == 0 or time is None:
                self._pending = None  # a flush packet, or one without a timestamp: nowhere to place it
                continue
            if end is not None and time >= end:
                return
            self._pending = None
            self._mux_packet(copy, packet)

    def _read_source_packet(self):
        """The source's next audio packet; at its end, or when it cannot be read on, None and no more reading."""
        try:
            packet = next(self._source_packets, None)
        except self.av.FFmpegError as exc:
            log.warning("%s: reading the sound of %s failed (%s); the rest of it is left out", self.label,
                        self._source.name, _reason(exc))
            packet = None
        if packet is None:
            self._source_packets = None
        return packet

    def _copy_for(self, packet) -> _AudioCopy | None:
        return next((c for c in self._copies if c.source.index == packet.stream.index), None)

    def _mux_packet(self, copy: _AudioCopy, packet) -> None:
        if not copy.transcode:
            if packet.pts is None:
                packet.pts = packet.dts
            if packet.dts is None:
                packet.dts = packet.pts
            packet.pts -= copy.shift
            packet.dts -= copy.shift
            packet.stream = copy.output
            self._out.mux(packet)
            copy.packets += 1
            return
        try:
            frames = copy.source.decode(packet)
        except self.av.FFmpegError as exc:  # one damaged packet: FFmpeg's own tools skip it too
            log.warning("%s: an audio packet of %s at %.2f s does not decode (%s); skipped", self.label,
                        self._source.name, copy.output_time(packet), _reason(exc))
            return
        for frame in frames:
            if frame.pts is not None:
                frame.pts -= copy.shift
            for out_packet in copy.output.encode(frame):
                self._out.mux(out_packet)
        copy.packets += 1

    def close(self) -> None:
        """Flush the encoders, add the rest of the sound and write the trailer."""
        av = self.av
        try:
            for packet in self._video.encode():
                self._out.mux(packet)
            written_end = float((self._first_tick + self.frames) / self._rate)
            # the whole clip: all of its sound (some runs past the last frame); a run stopped early: up to its end
            complete = (self._video_end is None
                        or written_end >= self._video_end - self._base - 1.5 / float(self._rate))
            self._mux_audio_until(None if complete else written_end)
            for copy in self._copies:
                if copy.transcode:
                    for packet in copy.output.encode():
                        self._out.mux(packet)
            self._out.close()
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.abort()
            raise OutputError(f"{self.label}: not written: finishing the video failed ({_reason(exc)}); "
                              "the previous file, if any, is unchanged") from None
        finally:
            self._close_source()

    def abort(self) -> None:
        """Release the output and the source without finishing the file (the caller removes it)."""
        out, self._out = getattr(self, "_out", None), None
        if out is not None:
            try:
                out.close()
            except Exception as exc:  # noqa: BLE001 - the file is discarded anyway; the first error is the one raised
                log.debug("%s: closing after a failure: %s", self.label, exc)
        self._close_source()

    def _close_source(self) -> None:
        source, self._source = self._source, None
        self._source_packets = None
        if source is not None:
            source.close()


def _copies_into(muxer: str, codec: str, supported: set[str] | None) -> bool:
    """Whether `codec` packets go into `muxer` unchanged. PCM is encoded again for MP4: FFmpeg can store it
    there ('ipcm'), but few players play it."""
    if muxer == "mp4" and codec.startswith("pcm_"):
        return False
    return supported is None or codec in supported


def _has_encoder(av: ModuleType, codec: str) -> bool:
    try:
        av.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def _video_span(video) -> tuple[float, float | None]:
    """(start, end) of the source's video stream in seconds; the end is None when the container does not say."""
    if video is None:
        return 0.0, None
    base = _fraction(video.time_base) or Fraction(1, 1)
    start = float(video.start_time * base) if video.start_time is not None else 0.0
    if video.duration:
        return start, start + float(video.duration * base)
    text = video.metadata.get("DURATION") or video.metadata.get("duration")  # Matroska keeps it as a tag
    if text:
        try:
            h, m, sec = text.split(":")
            return start, int(h) * 3600 + int(m) * 60 + float(sec)  # the end of the stream, not its length
        except ValueError:
            pass
    return start, None
