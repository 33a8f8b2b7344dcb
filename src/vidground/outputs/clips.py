"""Clips of a video: the frames of a span, with their audio, as a playable file.

* ``exact`` (default): decode and re-encode, so the clip's first frame is the frame shown at
  the span's start and its last frame the one shown just before the span's end; frame times
  keep their spacing (variable frame rate stays variable); the audio is cut to the same
  instants, sample-exact, and re-encoded (AAC; Opus in WebM).
* ``fast``: copy packets, no re-encode. A clip must start at a keyframe, so it starts at the
  keyframe at or before the span's start (:attr:`Clip.starts_earlier_s` says how much
  earlier) and may end a few frames late (packets needed to show the last frames). What
  cannot be stream-copied (no keyframe index, a codec the output container cannot hold, a
  failing mux) is re-encoded instead, with a :attr:`Clip.note` saying why; so is a span whose
  keyframe lies more than :data:`MAX_COPY_LEAD_S` (or the span's length) before it, and a copy
  that would write more bytes than the source holds (damaged packet tables): a fast clip never
  amplifies what is on disk. ``start``/``end`` state what the file holds.

>>> clip = cut("match.mp4", Span(12.345, 13.12), "shot.mp4", pad=0.5)  # doctest: +SKIP
>>> clip.start, clip.end, clip.mode  # doctest: +SKIP
(11.84, 13.64, 'exact')
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, cast

import av
import numpy as np

from ..errors import OptionsError, VideoError
from ..timecode import Span, format_time
from ..video.index import cached_index
from ..video.probe import (
    VideoInfo,
    check_frame,
    open_input,
    open_video,
    oversized,
    probe,
    usable_audio,
    video_stream,
)

Mode = Literal["exact", "fast"]
log = logging.getLogger(__name__)

SLACK_S = 1e-6
#: Most seconds one clip may last (a guard against cutting a whole film by mistake).
MAX_CLIP_S = 3600.0
#: A fast clip starting more than this (or the span's length, when longer) before the span
#: is re-encoded instead: copying from a keyframe far back writes mostly what was not asked.
MAX_COPY_LEAD_S = 10.0
#: Bytes a stream copy may write beyond the source's size (container overhead).
COPY_SLACK_BYTES = 1 << 20
#: Times a seek that landed after the wanted frame is retried further back.
SEEK_RETRIES = 4
VIDEO_ENCODERS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}
AUDIO_ENCODERS = {".webm": "libopus", ".avi": "libmp3lame"}
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
              ".webm": "webm", ".avi": "avi", ".ts": "mpegts", ".flv": "flv"}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Samples handed to the audio resampler at a time (it re-cuts them to the encoder's frames).
AUDIO_CHUNK = 4096
#: PyAV 18 takes an enum member here (a string raises); older versions take the string.
DISCARD_ALL: Any = getattr(getattr(av.stream, "Discard", None), "all", "all")


@dataclass(frozen=True)
class Clip:
    """A clip written to ``path``. ``start``/``end``: the part of the source it shows (seconds
    from the source's first frame; ``end`` exclusive); ``span``: what was asked (padded)."""

    path: Path
    mode: Mode
    span: Span
    start: float
    end: float
    frames: int
    has_audio: bool
    starts_earlier_s: float = 0.0
    note: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "mode": self.mode, "span_start": self.span.start,
                "span_end": self.span.end, "start": round(self.start, 6),
                "end": round(self.end, 6), "start_text": format_time(self.start),
                "end_text": format_time(self.end), "frames": self.frames,
                "has_audio": self.has_audio, "starts_earlier_s": round(self.starts_earlier_s, 6),
                "note": self.note}


def padded(span: Span, pad: float, info: VideoInfo) -> Span:
    """``span`` widened by ``pad`` seconds each side, kept inside the video."""
    if not math.isfinite(pad) or pad < 0:
        raise OptionsError(f"--pad must be a number of seconds, 0 or more, got {pad!r}")
    if span.start >= info.duration and info.duration > 0:
        raise OptionsError(f"the span starts at {format_time(span.start)}, after the end of "
                           f"the video ({format_time(info.duration)})")
    wide = span.with_(start=max(0.0, span.start - pad), end=min(info.duration, span.end + pad))
    if wide.duration > MAX_CLIP_S:
        raise OptionsError(f"a clip may last at most {MAX_CLIP_S:.0f} s; this one would last "
                           f"{wide.duration:.0f} s")
    return wide


def cut(video: str | Path | VideoInfo, span: Span, out: str | Path, *, pad: float = 0.0,
        mode: Mode = "exact") -> Clip:
    """Write the clip of ``span`` (widened by ``pad`` s each side) of ``video`` to ``out``
    (container from its suffix: .mp4, .mov, .mkv, .webm, .avi, .ts). See the module doc."""
    info = video if isinstance(video, VideoInfo) else probe(video)
    if mode not in ("exact", "fast"):
        raise OptionsError(f"clip mode must be 'exact' or 'fast', got {mode!r}")
    path = Path(out)
    if path.suffix.lower() not in CONTAINERS:
        raise OptionsError(f"cannot write a clip as {path.suffix or 'a file without suffix'}; "
                           f"use one of {', '.join(CONTAINERS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = padded(span, pad, info)
    if mode == "fast":
        reason = _copy_problem(info, path)
        if reason is None:
            try:
                return _copy(info, wanted, path)
            except (av.FFmpegError, ValueError, OSError, VideoError) as exc:
                reason = f"stream copy failed ({exc})"
                path.unlink(missing_ok=True)
        clip = _reencode(info, wanted, path)
        log.info("%s: re-encoded instead of copied: %s", path.name, reason)
        return _with_note(clip, f"re-encoded instead of copied: {reason}")
    return _reencode(info, wanted, path)


def cut_many(video: str | Path | VideoInfo, spans: Sequence[Span], out_dir: str | Path, *,
             pad: float = 0.0, mode: Mode = "exact", suffix: str | None = None,
             stem: str | None = None) -> list[Clip]:
    """One clip per span in ``out_dir``, named ``<stem>_clip01_00-00-12.345.mp4`` ..."""
    info = video if isinstance(video, VideoInfo) else probe(video)
    ext = suffix or (Path(info.path).suffix.lower() if mode == "fast" else ".mp4")
    if ext not in CONTAINERS:
        ext = ".mp4"
    base = stem or Path(info.path).stem
    return [cut(info, span, Path(out_dir) / clip_name(base, i, span, ext), pad=pad, mode=mode)
            for i, span in enumerate(spans, 1)]


def clip_name(stem: str, number: int, span: Span, ext: str) -> str:
    when = format_time(span.start).replace(":", "-")
    return f"{stem}_clip{number:02d}_{when}{ext}"


def _with_note(clip: Clip, note: str) -> Clip:
    return Clip(clip.path, clip.mode, clip.span, clip.start, clip.end, clip.frames,
                clip.has_audio, clip.starts_earlier_s, note)


# -- decoding with true times ---------------------------------------------------------------

class _Source:
    """One open file: the video stream (and audio, when wanted) with times in seconds from
    the first displayed frame."""

    def __init__(self, info: VideoInfo, *, audio: bool) -> None:
        self.info = info
        self.want_audio = audio
        self._open()
        self.time_base: Fraction = self.video.time_base or Fraction(1, 1_000_000)
        self.start_pts = round(info.start_time / self.time_base)
        self.counted = (self.container.format.name == "avi"
                        and info.codec in ("h264", "hevc"))

    def _open(self) -> None:
        self.container = open_input(self.info.path, self.info.max_pixels)
        self.video = video_stream(self.container, Path(self.info.path))
        self.audio = usable_audio(self.container) if self.want_audio else None
        for other in self.container.streams:
            if other is not self.video and other is not self.audio:
                other.discard = DISCARD_ALL
        self.video.thread_type = "AUTO"

    def close(self) -> None:
        self.container.close()

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def pts_at(self, t: float) -> int:
        return self.start_pts + int(math.floor((t + SLACK_S) / self.time_base))

    def seek(self, t: float) -> None:
        """Seek to the keyframe at or before ``t`` (or the start)."""
        if t <= 0:
            self.container.seek(0, stream=self.video, backward=True, any_frame=False)
        else:
            self.container.seek(self.pts_at(t), stream=self.video, backward=True)

    def frames_from(self, t: float) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames in display order with their times, starting no later than the frame
        shown at ``t`` (a seek that lands late is retried further back, then from the start).
        Frames without timestamps (raw streams), and H.264/HEVC in AVI (whose timestamps
        FFmpeg guesses, wrongly with B-frames), are numbered in output order at the stream's
        rate, from the start."""
        back = 0.0
        for _ in range(SEEK_RETRIES if t > 0 and not self.counted else 0):
            try:
                self.seek(max(0.0, t - back))
            except av.FFmpegError:  # a raw stream cannot seek
                break
            frames = self._timed(self._decoded())
            first = next(frames, None)
            if first is None or first[0] is None:
                break  # nothing there, or no timestamps (a raw stream): read from the start
            if first[0] <= t + SLACK_S:
                yield first  # type: ignore[misc]
                yield from frames  # type: ignore[misc]
                return
            back = max(1.0, back * 4)
        self.container.close()  # from the start: a fresh open, no seek (raw streams have none)
        self._open()
        fps = self.info.safe_fps
        for number, (when, frame) in enumerate(self._timed(self._decoded())):
            yield (number / fps if when is None or self.counted else when), frame

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The video's frames, each held to the file's pixel limit (a picture over it is
        refused by the decoder before it is allocated)."""
        name, limit = Path(self.info.path).name, self.info.max_pixels
        ctx = self.video.codec_context
        try:
            for frame in self.container.decode(self.video):
                yield check_frame(frame, name, limit)
        except av.ArgumentError as exc:
            raise oversized(name, limit) from exc
        except av.InvalidDataError as exc:  # some decoders say so for a refused size
            if ctx.width * ctx.height > limit:
                raise oversized(name, limit) from exc
            raise

    def _timed(self, frames: Iterator[av.VideoFrame]
               ) -> Iterator[tuple[float | None, av.VideoFrame]]:
        for frame in frames:
            yield (None if frame.pts is None else self.seconds(int(frame.pts))), frame


@dataclass
class _Cut:
    """What :func:`_span_frames` found: frames given out, the clip's end (exclusive)."""

    frames: int = 0
    end: float | None = None


def _span_frames(source: _Source, span: Span, cut: _Cut
                 ) -> Iterator[tuple[float, av.VideoFrame]]:
    """The frames a clip of ``span`` shows, one at a time (the one on screen at its start up to
    the last one shown before its end; at least one); ``cut.end`` is then the next frame's
    time."""
    pending: tuple[float, av.VideoFrame] | None = None
    for t, frame in source.frames_from(span.start):
        if pending is None or t <= span.start + SLACK_S:
            pending = (t, frame)  # a later frame still shown at the start replaces it
            continue
        if t >= span.end - SLACK_S:
            cut.end = t
            break
        cut.frames += 1
        yield pending
        pending = (t, frame)
    if pending is None:
        raise VideoError(f"{Path(source.info.path).name}: no frame could be decoded at "
                         f"{format_time(span.start)}")
    cut.frames += 1
    yield pending
    if cut.end is None:
        step = source.info.frame_s
        cut.end = max(pending[0] + step, min(source.info.duration, span.end))


# -- exact: re-encode ----------------------------------------------------------------------

def _reencode(info: VideoInfo, span: Span, path: Path) -> Clip:
    """Decode and encode frame by frame (memory stays a few frames), then the audio."""
    ext = path.suffix.lower()
    audio_format = _audio_format(info) if info.has_audio else None
    source = _Source(info, audio=False)
    cut = _Cut()
    try:
        frames = _span_frames(source, span, cut)
        start, first = next(frames)
        time_base = source.time_base
        with av.open(str(path), mode="w", format=CONTAINERS[ext]) as out:
            vstream = _video_encoder(out, ext, first, info, time_base)
            astream = (_audio_encoder(out, ext, *audio_format) if audio_format is not None
                       else None)
            for t, frame in itertools.chain([(start, first)], frames):
                picture = frame.reformat(width=vstream.width, height=vstream.height,
                                         format=vstream.pix_fmt)
                picture.pts = int(round((t - start) / time_base))
                picture.time_base = time_base
                out.mux(vstream.encode(picture))
            out.mux(vstream.encode())
            end = cut.end if cut.end is not None else start
            if astream is not None and audio_format is not None:
                audio = _audio_samples(info, start, end) or _silence(start, end, *audio_format)
                _encode_audio(out, astream, audio)
    except av.FFmpegError as exc:
        path.unlink(missing_ok=True)
        raise VideoError(f"writing the clip {path.name} failed: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return Clip(path, "exact", span, start, end, cut.frames, astream is not None)


def _video_encoder(out: av.container.OutputContainer, ext: str, first: av.VideoFrame,
                   info: VideoInfo, time_base: Fraction) -> av.VideoStream:
    name = VIDEO_ENCODERS.get(ext, "libx264")
    if name not in av.codecs_available:
        name = "mpeg4"
    rate = Fraction(info.safe_fps).limit_denominator(1001)
    options = {"libx264": {"crf": "18", "preset": "veryfast"},
               "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"},
               }.get(name, {})
    # a video encoder's name (add_stream's overloads type only literal names)
    stream = cast(av.VideoStream, out.add_stream(name, rate=rate, options=options))
    stream.width = max(2, first.width - first.width % 2)
    stream.height = max(2, first.height - first.height % 2)
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = time_base
    if name == "mpeg4":
        stream.codec_context.bit_rate = 4_000_000
    if info.rotation:
        stream.set_display_rotation(info.rotation)
    return stream


@dataclass
class _Audio:
    samples: np.ndarray  # (channels, n) float32
    rate: int
    layout: str


def _audio_samples(info: VideoInfo, start: float, end: float) -> _Audio | None:
    """The source's audio from ``start`` to ``end`` (video times), sample-exact; silence
    where the audio track does not reach."""
    source = _Source(info, audio=True)
    try:
        stream = source.audio
        if stream is None:
            return None
        rate = int(stream.codec_context.sample_rate or stream.rate or 48000)
        layout = "mono" if (stream.codec_context.channels or 1) == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        lo, hi = info.start_time + start, info.start_time + end  # absolute times
        atb = stream.time_base or Fraction(1, rate)
        source.container.seek(max(0, int((lo - 0.5) / atb)), stream=stream, backward=True)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        count = 0
        for frame in source.container.decode(stream):
            if first_time is None:
                if frame.pts is None:
                    return None
                first_time = float(frame.pts * atb)
            for out in resampler.resample(frame):
                array = out.to_ndarray().reshape(len(out.layout.channels), -1)
                chunks.append(array.astype(np.float32))
                count += array.shape[1]
            if first_time + count / rate >= hi:
                break
    except av.FFmpegError as exc:
        log.warning("%s: audio could not be read (%s); the clip has none",
                    Path(info.path).name, exc)
        return None
    finally:
        source.close()
    channels = 1 if layout == "mono" else 2
    if first_time is None or not chunks:
        return None
    allsamples = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0))
    begin = int(round((lo - first_time) * rate))
    length = int(round((hi - lo) * rate))
    if begin < 0:  # audio starts after the clip does: silence first
        allsamples = np.concatenate([np.zeros((channels, -begin), np.float32), allsamples], 1)
        begin = 0
    piece = allsamples[:, begin:begin + length]
    if piece.shape[1] < length:
        piece = np.concatenate([piece, np.zeros((channels, length - piece.shape[1]),
                                                np.float32)], axis=1)
    return _Audio(np.ascontiguousarray(piece, dtype=np.float32), rate, layout)


def _audio_format(info: VideoInfo) -> tuple[int, str] | None:
    """The source audio's sample rate and layout (mono or stereo), or None."""
    try:
        with open_video(info.path, info.max_pixels) as container:
            stream = usable_audio(container)
            if stream is None:
                return None
            ctx = stream.codec_context
            rate = int(ctx.sample_rate or 48000)
            return rate, "mono" if (ctx.channels or 1) == 1 else "stereo"
    except (av.FFmpegError, VideoError):
        return None


def _silence(start: float, end: float, rate: int, layout: str) -> _Audio:
    channels = 1 if layout == "mono" else 2
    n = max(1, int(round((end - start) * rate)))
    return _Audio(np.zeros((channels, n), np.float32), rate, layout)


def _audio_encoder(out: av.container.OutputContainer, ext: str, rate: int, layout: str
                   ) -> av.AudioStream:
    name = AUDIO_ENCODERS.get(ext, "aac")
    if name not in av.codecs_available:
        name = "aac"
    if name == "libopus" and rate not in OPUS_RATES:
        rate = 48000
    # an audio encoder's name (add_stream's overloads type only literal names)
    stream = cast(av.AudioStream, out.add_stream(name, rate=rate))
    stream.codec_context.layout = layout
    return stream


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream,
                  audio: _Audio) -> None:
    """Encode ``audio`` into ``stream``: PyAV's resampler (libswresample) converts it to the
    encoder's rate and sample format (Opus takes 48 kHz, not 44.1) and hands it on in the
    encoder's frame size (AAC: 1024 samples), so every frame but the last is full."""
    ctx = stream.codec_context
    fmt = ctx.format.name if ctx.format is not None else "fltp"
    resampler = av.AudioResampler(format=fmt, layout=audio.layout,
                                  rate=ctx.sample_rate or audio.rate,
                                  frame_size=ctx.frame_size or None)
    total = audio.samples.shape[1]
    for begin in range(0, total, AUDIO_CHUNK):
        chunk = np.ascontiguousarray(audio.samples[:, begin:begin + AUDIO_CHUNK])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio.layout)
        frame.sample_rate = audio.rate
        frame.pts = begin
        frame.time_base = Fraction(1, audio.rate)
        for converted in resampler.resample(frame):
            out.mux(stream.encode(converted))
    for converted in resampler.resample(None):
        out.mux(stream.encode(converted))
    out.mux(stream.encode())


# -- fast: copy packets ----------------------------------------------------------------------

def _copy_problem(info: VideoInfo, path: Path) -> str | None:
    """Why ``info`` cannot be stream-copied into ``path``, or None."""
    if path.suffix.lower() == ".webm" and info.codec not in ("vp8", "vp9", "av1"):
        return f"WebM cannot hold {info.codec} video"
    return None


def _copy(info: VideoInfo, span: Span, path: Path) -> Clip:
    source = _Source(info, audio=True)
    try:
        if source.container.format.name == "avi" and info.codec in ("h264", "hevc"):
            raise ValueError("AVI stores no presentation times for H.264/HEVC")
        index = cached_index(source.container, source.video, info.path, False)
        if not index.complete or not index.keyframes:
            raise ValueError("the file's keyframes are not known (it has no timestamps)")
        keys = [source.seconds(p) for p in index.keyframes]
        key = max((k for k in keys if k <= span.start + SLACK_S), default=keys[0])
        lead = span.start - key
        if lead > max(MAX_COPY_LEAD_S, span.duration):
            raise ValueError(f"the keyframe before the span is {lead:.1f} s earlier; a copy "
                             "would hold mostly what was not asked for")
        key_pts = source.start_pts + int(round(key / source.time_base))
        seek_pts = _seek_before(source, key_pts)
        return _copy_packets(source, info, span, key, key_pts, seek_pts, path)
    finally:
        source.close()


def _seek_before(source: _Source, key_pts: int) -> int:
    """A seek target from which demuxing reaches the keyframe ``key_pts`` (a seek in MPEG-TS
    may land after it: step back, at worst to the start)."""
    step = max(1, int(round(1.0 / source.time_base)))  # one second
    back = step // 2  # a little before: audio stored just ahead of the keyframe comes too
    for _ in range(SEEK_RETRIES):
        target = key_pts - back
        source.container.seek(target, stream=source.video, backward=True)
        for packet in source.container.demux(source.video):
            if packet.size and packet.pts is not None and packet.is_keyframe:
                if packet.pts <= key_pts:
                    return target
                break
        back = max(step, back * 4)
    return source.start_pts - step * 3600 * 24  # as far back as it goes: the start


def _copy_packets(source: _Source, info: VideoInfo, span: Span, key: float, key_pts: int,
                  seek_pts: int, path: Path) -> Clip:
    vin, ain = source.video, source.audio
    # the first pts at or after the span's end (every frame that starts before it is shown),
    # and at least just past the frame shown at the span's start (a span of one instant)
    end_pts = max(source.start_pts + math.ceil((span.end - SLACK_S) / source.time_base),
                  source.pts_at(span.start) + 1)
    budget = _copy_budget(info)
    written = 0
    offset_abs = info.start_time + key
    frames = 0
    last_pts = key_pts
    last_duration = 0
    with av.open(str(path), mode="w", format=CONTAINERS[path.suffix.lower()]) as out:
        try:
            vout = out.add_stream_from_template(vin)
            aout = out.add_stream_from_template(ain) if ain is not None else None
        except av.codec.codec.UnknownCodecError as exc:  # e.g. AV1 decoded by libdav1d
            raise ValueError(f"PyAV cannot stream-copy what its {exc} decoder reads") from exc
        a_offset, a_end = 0, 0.0
        if ain is not None:
            assert ain.time_base is not None  # FFmpeg gives every demuxed stream a time base
            a_offset = int(round(offset_abs / ain.time_base))
            a_end = (info.start_time + span.end) / ain.time_base
        source.container.seek(seek_pts, stream=vin, backward=True)
        started = video_done = False
        audio_done = ain is None
        streams = [s for s in (vin, ain) if s is not None]
        for packet in source.container.demux(*streams):
            if packet.size == 0 or packet.pts is None:
                continue
            if packet.stream is vin:
                if video_done:
                    continue
                if not started:
                    if not packet.is_keyframe or packet.pts < key_pts:
                        continue
                    started = True
                stamp = packet.dts if packet.dts is not None else packet.pts
                if stamp >= end_pts and frames:
                    video_done = True
                else:
                    frames += 1
                    if packet.pts >= last_pts:
                        last_pts, last_duration = packet.pts, packet.duration or 0
                    written = _charge(written, packet.size, budget)
                    packet.pts -= key_pts
                    if packet.dts is not None:
                        packet.dts -= key_pts
                    packet.stream = vout
                    out.mux(packet)
            elif aout is not None and not audio_done:
                if packet.pts >= a_end:
                    audio_done = True
                elif packet.pts >= a_offset:
                    written = _charge(written, packet.size, budget)
                    packet.pts -= a_offset
                    if packet.dts is not None:
                        packet.dts -= a_offset
                    packet.stream = aout
                    out.mux(packet)
            if video_done and audio_done:
                break
    if not frames:
        raise ValueError("no video packet was copied")
    # what the file holds: from the keyframe to the end of the last frame copied
    step = float(last_duration * source.time_base) if last_duration else info.frame_s
    end = min(source.seconds(last_pts) + step, info.duration + info.frame_s)
    probe(path, max_pixels=info.max_pixels)  # must be readable: a failure falls back to re-encoding
    return Clip(path, "fast", span, key, end, frames, ain is not None,
                starts_earlier_s=max(0.0, span.start - key))


def _charge(written: int, size: int, budget: int) -> int:
    """Bytes written after one more packet of ``size``; ValueError past ``budget``."""
    if written + size > budget:
        raise ValueError(f"the copy grew past the source's own size ({budget} bytes); "
                         "its packet tables are damaged")
    return written + size


def _copy_budget(info: VideoInfo) -> int:
    """Most packet bytes one stream copy may write: the source's own size (a copy holds a part
    of it; a demuxer that reads more follows damaged tables that name the same bytes again)."""
    try:
        size = Path(info.path).stat().st_size
    except OSError:
        size = 0
    return size + COPY_SLACK_BYTES
