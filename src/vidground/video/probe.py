"""What a video file is: duration, frame rate, size, codec, start time, rotation.

Pictures are held to a pixel limit before they exist: every file is opened with
:func:`open_video`, which sets FFmpeg's ``max_pixels`` on each decoder (FFmpeg's own stream
analysis included). libavcodec checks it in ``ff_set_dimensions`` and ``ff_get_buffer``, before
any picture buffer is allocated, for every codec and every frame, also where a picture is far
larger than its stream declares (each PNG or JPEG packet carries its own size). A refused
picture is a :class:`~vidground.errors.VideoTooLargeError`. FFmpeg counts a picture's rows at
their aligned width (up to 64 bytes more), so decoders get :func:`decoder_pixel_cap` (an eighth
more) and the exact limit is checked on every frame they return (:func:`check_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import VideoError, VideoNotFoundError, VideoTooLargeError

#: Largest picture we accept (width * height), like an 8K x 8K frame.
MAX_PIXELS = 8192 * 8192
#: The frame rate assumed where a stream states none (FFmpeg's own default).
FALLBACK_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    """Facts about one video stream. Times are seconds; ``duration`` is measured from the first
    displayed frame (the stream's ``start_time`` already subtracted)."""

    path: str
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
    container: str
    start_time: float = 0.0
    rotation: int = 0
    has_audio: bool = False
    bit_rate: int | None = None
    #: The pixel limit the file was admitted under: every decoder of it refuses a larger
    #: picture (see :func:`open_video`).
    max_pixels: int = field(default=MAX_PIXELS, compare=False)

    @property
    def safe_fps(self) -> float:
        """``fps``, or :data:`FALLBACK_FPS` where the stream states none."""
        return self.fps if self.fps > 0 else FALLBACK_FPS

    @property
    def frame_s(self) -> float:
        """How long one frame lasts at :attr:`safe_fps`."""
        return 1.0 / self.safe_fps

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after rotation."""
        if self.rotation % 180 == 90:
            return self.height, self.width
        return self.width, self.height

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The small ``video`` object of the API response."""
        return {"duration": round(self.duration, 6), "fps": round(self.fps, 6),
                "width": self.width, "height": self.height}


def probe(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """Read the facts of the first video stream of ``path`` (and decode its first frame, so a file
    that opens but holds no decodable picture is refused here rather than later).

    Raises :class:`VideoNotFoundError` for a missing file, :class:`VideoTooLargeError` for frames
    larger than ``max_pixels`` (the stream's declared size is checked before anything is
    decoded, and no picture larger than that is ever allocated), and :class:`VideoError` for
    anything else unusable (empty, not a video, audio only, truncated or corrupt).
    """
    file = _check_file(Path(path))
    declared = _declared_size(file)
    if declared[0] > 0 and declared[1] > 0:  # before anything is decoded
        _check_size(file, *declared, max_pixels)
    with open_video(file, max_pixels) as container:
        stream = video_stream(container, file)
        if stream.codec_context is None:
            raise VideoError(f"Cannot decode {file.name}: its video codec is unknown or the file "
                             "is corrupt.")
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width <= 0 or height <= 0:  # FFmpeg's analysis refused a picture, or none has a size
            _check_size(file, *declared, max_pixels)
            raise oversized(file.name, max_pixels)
        _check_size(file, width, height, max_pixels)
        time_base = stream.time_base or Fraction(1, 1_000_000)
        first = _first_frame(container, stream, file, max_pixels)
        start = _start_seconds(container, stream, time_base, first)
        duration = _duration(container, stream, time_base, start)
        fps = _fps(stream, duration)
        frames = int(stream.frames) if stream.frames else max(1, round(duration * fps))
        untimed = _untimed_frames(file, max_pixels) if duration <= 0 else None
        if untimed:  # a raw elementary stream: frame i is shown at i / fps
            fps = _fps(stream, 0.0, prefer_codec_rate=True)
            frames, duration = untimed, untimed / fps
        rotation = int(round(first.rotation or 0)) % 360 if hasattr(first, "rotation") else 0
        _check_every_picture(file, stream.codec_context.name, max_pixels)
        return VideoInfo(
            path=str(file), duration=duration, fps=fps, frame_count=frames, width=width,
            height=height, codec=stream.codec_context.name, container=_format_name(container, file),
            start_time=start, rotation=rotation,
            has_audio=usable_audio(container) is not None,
            bit_rate=int(stream.bit_rate or container.bit_rate or 0) or None,
            max_pixels=max_pixels,
        )


def open_input(path: str | Path, max_pixels: int = MAX_PIXELS) -> av.container.InputContainer:
    """``path`` opened for reading (the caller closes it), every decoder of it held to
    ``max_pixels`` (see the module docstring): FFmpeg's stream analysis at open, and the
    decoders of the video streams. Metadata that is not valid UTF-8 is ignored. Raises
    :class:`VideoError` when the file cannot be opened."""
    limit = {"max_pixels": str(decoder_pixel_cap(max_pixels))}
    try:
        container = av.open(str(path), metadata_errors="ignore", options=limit)
    except av.FFmpegError as exc:
        raise VideoError(f"Cannot read {Path(path).name}: it is not a video file or it is "
                         f"corrupt ({_reason(exc)}).") from exc
    for stream in container.streams.video:
        if stream.codec_context is not None:
            stream.codec_context.options = dict(limit)
    return container


@contextmanager
def open_video(path: str | Path, max_pixels: int = MAX_PIXELS
               ) -> Iterator[av.container.InputContainer]:
    """:func:`open_input` as a context manager."""
    with open_input(path, max_pixels) as container:
        yield container


def decoder_pixel_cap(max_pixels: int) -> int:
    """What decoders may allocate for a limit of ``max_pixels``: FFmpeg checks the aligned row
    width times the height, so an exact-limit picture needs a little slack."""
    return int(max_pixels) + int(max_pixels) // 8 + 64 * 64


def check_frame(frame: av.VideoFrame, name: str, max_pixels: int) -> av.VideoFrame:
    """``frame``, or :class:`VideoTooLargeError` when it holds more than ``max_pixels``."""
    if frame.width * frame.height > max_pixels:
        raise oversized(name, max_pixels)
    return frame


def oversized(name: str, max_pixels: int) -> VideoTooLargeError:
    """The error for a picture the decoder refused to allocate (over ``max_pixels``)."""
    return VideoTooLargeError(f"{name} holds a picture larger than the {max_pixels} pixels per "
                              "frame allowed (or one whose size is invalid); downscale it first.")


def _declared_size(file: Path) -> tuple[int, int]:
    """The video stream's size as the container (or the codec's parser) states it, without
    decoding anything: no decoder may be opened (``codec_whitelist``, which FFmpeg's analysis
    applies to every stream, also those it finds only while reading packets, as in MPEG-PS,
    where PyAV cannot pass ``max_pixels``). (0, 0) when unknown."""
    try:
        with av.open(str(file), metadata_errors="ignore",
                     options={"codec_whitelist": "none"}) as container:
            stream = video_stream(container, file)
            ctx = stream.codec_context
            return (int(ctx.width), int(ctx.height)) if ctx is not None else (0, 0)
    except av.FFmpegError:
        return 0, 0


def video_stream(container: av.container.InputContainer, file: Path) -> av.VideoStream:
    """The first real video stream (cover pictures of audio files do not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    if container.streams.audio:
        raise VideoError(f"{file.name} has no video stream (audio only); give a video file.")
    raise VideoError(f"{file.name} has no video stream; give a video file.")


def usable_audio(container: av.container.InputContainer) -> av.AudioStream | None:
    """The first audio stream a decoder can read, or None (a damaged track whose codec or
    sample rate is unknown does not count)."""
    for stream in container.streams.audio:
        ctx = stream.codec_context
        if ctx is not None and (ctx.sample_rate or 0) > 0:
            return stream
    return None


def _check_file(file: Path) -> Path:
    if not file.exists():
        raise VideoNotFoundError(f"No such video file: {file}")
    if file.is_dir():
        raise VideoError(f"{file} is a directory, not a video file.")
    if file.stat().st_size == 0:
        raise VideoError(f"{file.name} is empty (0 bytes); the upload or copy may have failed.")
    return file


def _check_size(file: Path, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise VideoError(f"{file.name} has a video stream with no picture size "
                         f"({width}x{height}); the file is corrupt or unsupported.")
    if width * height > max_pixels:
        raise VideoTooLargeError(f"{file.name} is {width}x{height}, larger than the "
                                 f"{max_pixels} pixels per frame allowed; downscale it first.")


def _check_every_picture(file: Path, codec: str, max_pixels: int) -> None:
    """For codecs whose every packet is a picture stating its own size (PNG, JPEG), read each
    packet's header (demuxing only, nothing decoded): one picture over ``max_pixels`` anywhere
    refuses the file now, not when a later request decodes it."""
    read_size = PICTURE_HEADERS.get(codec)
    if read_size is None:
        return
    with open_video(file, max_pixels) as container:
        stream = video_stream(container, file)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            width, height = read_size(memoryview(packet))
            if width * height > max_pixels:
                raise VideoTooLargeError(
                    f"{file.name} holds a {width}x{height} picture at "
                    f"{float((packet.pts or 0) * (stream.time_base or 0)):.3f}s, larger than "
                    f"the {max_pixels} pixels per frame allowed; downscale it first.")


def png_size(data: memoryview) -> tuple[int, int]:
    """(width, height) a PNG's IHDR states, or (0, 0) when ``data`` is no PNG (left to the
    decoder, which holds it to the limit)."""
    if len(data) < 24 or bytes(data[:8]) != b"\x89PNG\r\n\x1a\n" or bytes(data[12:16]) != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


#: JPEG start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: memoryview) -> tuple[int, int]:
    """(width, height) a JPEG's start-of-frame segment states, or (0, 0) when none is found
    before the image data."""
    i, end = 2, len(data)
    if end < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return 0, 0
    while i + 9 <= end:
        if data[i] != 0xFF:
            return 0, 0
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            return (int.from_bytes(data[i + 7:i + 9], "big"),
                    int.from_bytes(data[i + 5:i + 7], "big"))
        if marker == 0xDA:  # start of scan: no size before the image data
            return 0, 0
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return 0, 0


#: Codecs whose packets each hold one picture with its size in the header.
PICTURE_HEADERS = {"png": png_size, "mjpeg": jpeg_size}


def _format_name(container: av.container.InputContainer, file: Path) -> str:
    """The demuxer's name, narrowed to the file's suffix when it lists several (mov,mp4,...)."""
    names = container.format.name.split(",")
    suffix = file.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__


def _start_seconds(container: av.container.InputContainer, stream: av.VideoStream,
                   time_base: Fraction, first: av.VideoFrame) -> float:
    """Presentation time of the first displayed frame (what a player shows as 0)."""
    guessed = container.format.name == "avi" and stream.codec_context.name in ("h264", "hevc")
    if first.pts is not None and not guessed:  # AVI holds no pts: H.264/HEVC ones are guesses
        return float(first.pts * time_base)
    if stream.start_time is not None:
        return float(stream.start_time * time_base)
    if container.start_time is not None:
        return container.start_time / av.time_base
    return 0.0


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream,
                 file: Path, max_pixels: int) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return check_frame(frame, file.name, max_pixels)
    except av.ArgumentError as exc:  # the decoder refused a picture over max_pixels
        raise oversized(file.name, max_pixels) from exc
    except av.FFmpegError as exc:
        raise VideoError(f"Cannot decode {file.name}: the video is corrupt or truncated "
                         f"({_reason(exc)}).") from exc
    raise VideoError(f"{file.name} holds no decodable video frame (empty or truncated video).")


def _duration(container: av.container.InputContainer, stream: av.VideoStream,
              time_base: Fraction, start: float) -> float:
    """Seconds from the first frame to the end of the last one."""
    # MPEG program/transport streams carry no duration; FFmpeg's estimate there can miss the
    # last B-frames (a 4.0 s MPEG-2 .mpg was reported as 3.8 s): read the tail instead
    estimated = set(container.format.name.split(",")) & ESTIMATED_DURATION_FORMATS
    if stream.duration and not estimated:
        return float(stream.duration * time_base)
    end = _end_from_packets(container, stream, time_base)
    if end is not None and end > start:
        return end - start
    if container.duration:
        container_start = (container.start_time or 0) / av.time_base
        return max(0.0, container.duration / av.time_base - (start - container_start))
    return 0.0


#: Demuxers whose stream duration is an estimate rather than a stored value.
ESTIMATED_DURATION_FORMATS = frozenset({"mpeg", "mpegts", "mpegvideo"})


def _end_from_packets(container: av.container.InputContainer, stream: av.VideoStream,
                      time_base: Fraction) -> float | None:
    """End time (seconds, absolute) of the last packet, read from the tail of the file."""
    try:
        if container.duration:
            tail = container.start_time or 0
            tail += max(0, container.duration - 10 * av.time_base)
            container.seek(int(tail), backward=True)
        else:
            container.seek(0)
        end: int | None = None
        for packet in container.demux(stream):
            if packet.pts is not None:
                last = packet.pts + (packet.duration or 0)
                end = last if end is None else max(end, last)
        return float(end * time_base) if end is not None else None
    except av.FFmpegError:
        return None


def _untimed_frames(file: Path, max_pixels: int) -> int | None:
    """The number of frames of a stream whose packets carry no timestamps at all (raw H.264 /
    HEVC), or None when some packet has one."""
    with open_video(file, max_pixels) as container:
        stream = video_stream(container, file)
        count = 0
        for packet in container.demux(stream):
            if packet.pts is not None or packet.dts is not None:
                return None
            count += bool(packet.size)
    return count or None


def _fps(stream: av.VideoStream, duration: float, *, prefer_codec_rate: bool = False) -> float:
    """Frames per second. ``prefer_codec_rate``: for raw streams, whose demuxer reports a
    default 25 as the average rate, the rate in the bitstream (``guessed_rate``) comes first."""
    rates = (stream.average_rate, stream.guessed_rate, stream.base_rate)
    if prefer_codec_rate:
        rates = (stream.guessed_rate, stream.base_rate, stream.average_rate)
    for rate in rates:
        if rate and math.isfinite(float(rate)) and 0 < float(rate) < 1000:
            return float(rate)
    if stream.frames and duration > 0:
        return stream.frames / duration
    return 25.0
