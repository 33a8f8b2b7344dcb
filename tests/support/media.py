"""Real, tiny, synthetic videos for tests, encoded with PyAV.

Every picture has

* a dark grey background,
* a coloured square in the middle, visible exactly for the frames whose presentation time
  (relative to the first frame) lies inside one of the ``intervals`` (``[start, end)``),
* the frame number painted as a 16-bit binary code: a row of black/white blocks along the
  top edge (most significant bit first), big enough to survive lossy compression and 4:2:0
  chroma subsampling. :func:`read_painted_index` reads it back.

Bad inputs (audio only, empty, truncated, text named ``.mp4``) have helpers too.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidground.video.plan import TIME_SLACK

INDEX_BITS = 16
BACKGROUND = (48, 48, 48)
ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "mpeg4": "mpeg4",
            "mpeg2": "mpeg2video", "mjpeg": "mjpeg", "prores": "prores_ks", "av1": "libsvtav1"}
#: Pixel formats other than yuv420p: what cameras (MJPEG) and editors (ProRes 422) write.
PIXEL_FORMATS = {"mjpeg": "yuvj420p", "prores": "yuv422p10le"}
CONTAINER_FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi",
                     "ts": "mpegts", "flv": "flv", "mpg": "mpeg"}


def encoder_available(codec: str) -> bool:
    """Whether PyAV's FFmpeg build can encode ``codec`` (``h264``, ``hevc``, ``vp9``, ``mpeg4``)."""
    return ENCODERS.get(codec, codec) in av.codecs_available


@dataclass(frozen=True)
class MadeVideo:
    """What was encoded: the file and the true presentation times of its frames (seconds from
    the first frame; frame ``i`` is displayed from ``times[i]`` until ``times[i + 1]``)."""

    path: Path
    times: tuple[float, ...]
    start_time: float
    fps: float

    def frame_at(self, t: float) -> int:
        """Index of the frame displayed at ``t`` (the last frame whose time is <= t), with the
        decoder's slack: a time within ``TIME_SLACK`` (1 µs) below a frame's start names it."""
        idx = int(np.searchsorted(np.asarray(self.times), t + TIME_SLACK, side="right")) - 1
        return max(idx, 0)


def _frame_durations(n: int, fps: float, vfr: bool, seed: int) -> list[float]:
    if not vfr:
        return [1.0 / fps] * n
    rng = random.Random(seed)
    # irregular: between 0.4x and 2.2x the nominal duration, in whole milliseconds
    return [round(rng.uniform(0.4, 2.2) / fps, 3) for _ in range(n)]


def paint_index(image: np.ndarray, index: int) -> None:
    """Paint ``index`` as a row of ``INDEX_BITS`` black/white blocks along the top of ``image``."""
    h, w = image.shape[:2]
    block_w = w // INDEX_BITS
    block_h = max(8, h // 10)
    for bit in range(INDEX_BITS):
        on = (index >> (INDEX_BITS - 1 - bit)) & 1
        image[:block_h, bit * block_w:(bit + 1) * block_w] = 255 if on else 0


def read_painted_index(image: np.ndarray) -> int:
    """Read back the frame number painted by :func:`paint_index` (works on resized frames)."""
    h, w = image.shape[:2]
    block_w = w / INDEX_BITS
    block_h = max(8, h // 10) if h >= 80 else max(2, h // 10)
    gray = image[..., :3].astype(np.float32).mean(axis=2) if image.ndim == 3 else image
    value = 0
    for bit in range(INDEX_BITS):
        x0 = int(bit * block_w + block_w * 0.3)
        x1 = max(x0 + 1, int(bit * block_w + block_w * 0.7))
        y1 = max(1, int(block_h * 0.7))
        y0 = min(int(block_h * 0.2), y1 - 1)
        value = (value << 1) | int(gray[y0:y1, x0:x1].mean() > 128)
    return value


def _square_box(h: int, w: int) -> tuple[int, int, int, int]:
    side = min(h, w) // 3
    y0 = h // 2 - side // 2 + h // 20
    x0 = w // 2 - side // 2
    return y0, y0 + side, x0, x0 + side


def object_visible(image: np.ndarray, color: Sequence[int] = (255, 0, 0)) -> bool:
    """Whether the coloured square of :func:`make_video` is in ``image``."""
    h, w = image.shape[:2]
    y0, y1, x0, x1 = _square_box(h, w)
    pad_y, pad_x = (y1 - y0) // 4, (x1 - x0) // 4
    centre = image[y0 + pad_y:y1 - pad_y, x0 + pad_x:x1 - pad_x, :3].astype(np.float32)
    mean = centre.reshape(-1, 3).mean(axis=0)
    return float(np.abs(mean - np.asarray(color, dtype=np.float32)).max()) < 60.0


def draw_frame(size: tuple[int, int], index: int, show: bool, color: Sequence[int],
               paint: bool = True, motion: bool = False, noise: int = 0,
               seed: int = 0) -> np.ndarray:
    """One RGB picture of ``size`` (width, height). ``noise`` > 0 adds camera-like content
    that compresses badly: a fixed texture plus fresh sensor noise in every frame, both of up
    to ``noise`` grey levels (the square stays recognisable: keep ``noise`` <= 60)."""
    w, h = size
    image = np.empty((h, w, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    if motion:  # a slowly moving gradient band, so the encoder has real work to do
        x = (np.arange(w) + index * 4) % w
        image[h // 5:, :, 1] = (60 + (x * 120 // max(w, 1))).astype(np.uint8)[None, :]
    if show:
        y0, y1, x0, x1 = _square_box(h, w)
        image[y0:y1, x0:x1] = color
    if noise:
        texture = np.random.default_rng(seed).integers(-noise, noise + 1, (h, w, 3))
        grain = np.random.default_rng((seed, index)).integers(-noise, noise + 1, (h, w, 3))
        image[:] = np.clip(image.astype(np.int16) + (texture + grain) // 2, 0, 255)
    if paint:
        paint_index(image, index)
    return image


def _in_intervals(t: float, intervals: Iterable[tuple[float, float]]) -> bool:
    return any(start <= t < end for start, end in intervals)


def _encoder_options(codec: str, gop: int | None, bframes: bool, fast: bool) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec == "h264":
        # libx264 takes the B-frame count through x264-params only (a "bframes" option is
        # silently ignored, leaving the preset's 3)
        params = "bframes=3" if bframes else "bframes=0"
        if gop:
            params += f":keyint={gop}:min-keyint={gop}:scenecut=0"
        opts = {"preset": "ultrafast" if fast and not bframes else "veryfast", "crf": "23",
                "x264-params": params}
    elif codec == "hevc":
        params = "log-level=none"
        params += ":bframes=3" if bframes else ":bframes=0"
        if gop:
            params += f":keyint={gop}:min-keyint={gop}:scenecut=0"
        opts = {"preset": "ultrafast", "x265-params": params}
    elif codec == "av1":
        opts = {"preset": "12"}
    elif codec == "vp9":
        opts = {"deadline": "realtime", "cpu-used": "8", "crf": "40", "b": "0",
                "lag-in-frames": "0"}
    return opts


def make_video(path: str | Path, *, duration: float = 4.0, fps: float = 25,
               size: tuple[int, int] = (160, 120), codec: str = "h264",
               container: str | None = None,
               intervals: Sequence[tuple[float, float]] = ((1.0, 2.0),),
               color: Sequence[int] = (255, 0, 0), start_time: float = 0.0, vfr: bool = False,
               gop: int | None = None, bframes: bool = False, paint_index: bool = True,
               rotation: int = 0, audio: bool = False, motion: bool = False, fast: bool = True,
               seed: int = 0, noise: int = 0) -> MadeVideo:
    """Encode a synthetic test video and return what was written (see the module docstring).

    ``container`` defaults to the file suffix. ``vfr`` gives irregular frame durations on a
    millisecond time base; ``start_time`` offsets the first pts (seconds); ``gop`` forces a fixed
    keyframe interval (frames); ``bframes`` turns on B-frames (H.264/HEVC/MPEG-4); ``rotation``
    writes a display-matrix rotation (counter-clockwise degrees); ``noise`` adds texture and
    sensor noise of that many grey levels (camera-like frames that compress badly, see
    :func:`draw_frame`).
    """
    path = Path(path)
    container = container or path.suffix.lstrip(".")
    fmt = CONTAINER_FORMATS.get(container, container)
    encoder = ENCODERS.get(codec, codec)
    fps_frac = Fraction(fps).limit_denominator(1001)
    n = max(1, int(round(duration * fps)))
    durations = _frame_durations(n, fps, vfr, seed)
    time_base = Fraction(1, 1000) if vfr or fmt in ("matroska", "webm") else 1 / fps_frac
    if vfr and fmt == "avi":
        raise ValueError("AVI cannot hold variable frame rate video")

    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(encoder, rate=fps_frac, options=_encoder_options(
            codec, gop, bframes, fast))
        stream.width, stream.height = size
        stream.pix_fmt = PIXEL_FORMATS.get(codec, "yuv420p")
        stream.codec_context.time_base = time_base
        if gop:
            stream.codec_context.gop_size = gop
        if codec in ("mpeg4", "mpeg2"):
            stream.codec_context.max_b_frames = 2 if bframes else 0
            stream.codec_context.bit_rate = 2_000_000
        if rotation:
            stream.set_display_rotation(rotation)
        a_stream = out.add_stream("aac", rate=16000) if audio else None

        times: list[float] = []
        t = 0.0
        for i in range(n):
            times.append(round(t, 6))
            image = draw_frame(size, i, _in_intervals(t, intervals), color, paint_index, motion,
                               noise, seed)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = int(round((t + start_time) / time_base))
            frame.time_base = time_base
            out.mux(stream.encode(frame))
            t += durations[i]
        out.mux(stream.encode())
        if a_stream is not None:
            _write_silence(out, a_stream, t)
    return MadeVideo(path=path, times=tuple(times), start_time=start_time, fps=float(fps))


def _write_silence(out: av.container.OutputContainer, stream: av.AudioStream,
                   seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    frame_size = stream.codec_context.frame_size or 1024
    total = int(seconds * rate)
    pts = 0
    while pts < total:
        samples = np.zeros((1, frame_size), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        out.mux(stream.encode(frame))
        pts += frame_size
    out.mux(stream.encode())


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An audio-only file (.m4a: AAC, .wav: PCM, .mp3: MP3) with a second of silence."""
    path = Path(path)
    codec = {".wav": "pcm_s16le", ".mp3": "libmp3lame"}.get(path.suffix, "aac")
    fmt = {".m4a": "mp4", ".wav": "wav", ".mp3": "mp3"}.get(path.suffix)
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=16000)
        rate = 16000
        step = stream.codec_context.frame_size or 1024
        fmt_name = stream.codec_context.format.name
        for pts in range(0, int(seconds * rate), step):
            dtype = {"s16": np.int16, "s32": np.int32}.get(fmt_name[:3], np.float32)
            samples = np.zeros((1, step), dtype=dtype)
            frame = av.AudioFrame.from_ndarray(samples, format=fmt_name, layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def make_empty(path: str | Path) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_text_file(path: str | Path) -> Path:
    """A text file (named like a video by the caller, e.g. ``notes.mp4``)."""
    path = Path(path)
    path.write_text("this is not a video, just some text\n" * 20)
    return path


def make_truncated(source: str | Path, path: str | Path, keep: float = 0.3) -> Path:
    """A copy of ``source`` cut after ``keep`` (a fraction) of its bytes."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def make_garbage(path: str | Path, size: int = 4096, seed: int = 0) -> Path:
    """Random bytes named like a video."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


# -- hostile files (issue 21) ------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def png_image(width: int, height: int, *, grey: int = 0) -> bytes:
    """A valid PNG of ``width`` x ``height`` RGB pixels, all ``grey``, made row by row (a
    16000 x 16000 picture compresses to about 750 kB and never exists uncompressed here)."""
    row = b"\x00" + bytes([grey]) * (3 * width)  # filter type 0, then the row's pixels
    packer = zlib.compressobj(6)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG (16 x 16) whose start-of-frame header claims ``width`` x ``height``:
    a decoder that believes it allocates the claimed picture before reading the data."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def make_png_mov(path: str | Path, sizes: Sequence[tuple[int, int]], *, fps: int = 1,
                 declared: tuple[int, int] | None = None) -> Path:
    """A MOV of PNG pictures, one per entry of ``sizes`` (width, height), shown ``1/fps`` s
    each; the stream declares ``declared`` (default: the first picture's size). A picture
    may be far larger than what the stream declares: each PNG carries its own size."""
    pictures = [png_image(w, h, grey=40 + 40 * (i % 2)) for i, (w, h) in enumerate(sizes)]
    return make_picture_mov(path, pictures, declared or sizes[0], codec="png", fps=fps)


def make_picture_mov(path: str | Path, pictures: Sequence[bytes], declared: tuple[int, int],
                     *, codec: str = "png", fps: int = 1) -> Path:
    """A MOV whose ``codec`` stream (``png``, ``mjpeg``) declares ``declared`` (width, height)
    and holds ``pictures`` (encoded images, taken as they are), one per ``1/fps`` s."""
    path = Path(path)
    width, height = declared
    with av.open(str(path), mode="w", format="mov") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i, picture in enumerate(pictures):
            packet = av.Packet(picture)
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.duration = 1
            packet.time_base = Fraction(1, fps)
            packet.is_keyframe = True
            out.mux(packet)
    return path


def make_size_change(path: str | Path, sizes: Sequence[tuple[int, int]], *,
                     seconds: float = 1.0, fps: float = 10) -> Path:
    """A raw H.264 stream (``.h264``) whose picture size changes: ``seconds`` of video at each
    of ``sizes`` in turn, each part with its own parameter sets (what a camera or a splice
    writes). Only the first part's size is seen by opening the file."""
    path = Path(path)
    parts = []
    for i, size in enumerate(sizes):
        part = path.with_name(f".{path.stem}.part{i}.h264")
        make_video(part, duration=seconds, fps=fps, size=size, container="h264")
        parts.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(parts))
    return path


def make_patched(source: str | Path, path: str | Path, old: bytes, new: bytes, *,
                 last: bool = False) -> Path:
    """A copy of ``source`` with the first (or ``last``) ``old`` bytes replaced by ``new`` (as
    long): a damaged box name, an invalid byte in a name, as a fuzzer makes them."""
    if len(old) != len(new):
        raise ValueError("a patch keeps the file's layout: old and new must be as long")
    data = Path(source).read_bytes()
    at = data.rfind(old) if last else data.find(old)
    if at < 0:
        raise ValueError(f"{old!r} is not in {source}")
    path = Path(path)
    path.write_bytes(data[:at] + new + data[at + len(old):])
    return path


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The ISO-BMFF boxes of ``data`` as (type, body), in order (32-bit sizes only)."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size < 8:
            raise ValueError("only plain 32-bit box sizes are handled here")
        boxes.append((kind, data[at + 8:at + size]))
        at += size
    return boxes


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _rewrite_tables(body: bytes, count: int, first: int, sample_bytes: int) -> bytes:
    """A ``moov`` (or a box inside it) whose video sample tables hold ``count`` samples of
    ``sample_bytes`` each, one chunk per sample, every chunk at offset ``first``."""
    out = b""
    for kind, inner in _boxes(body):
        if kind in (b"trak", b"mdia", b"minf", b"stbl"):
            inner = _rewrite_tables(inner, count, first, sample_bytes)
        elif kind == b"stsz":
            inner = inner[:4] + struct.pack(">II", sample_bytes, count)
        elif kind == b"stco":
            inner = inner[:4] + struct.pack(">I", count) + struct.pack(">I", first) * count
        elif kind == b"stsc":
            inner = inner[:4] + struct.pack(">IIII", 1, 1, 1, 1)
        out += _box(kind, inner)
    return out


def make_repeated_samples(source: str | Path, path: str | Path) -> Path:
    """A copy of the video-only MP4 ``source`` (``moov`` after ``mdat``) whose sample tables
    name all of ``mdat``'s frames as every sample: a demuxer reads the file's bytes once per
    frame, so a stream copy of it writes N times the file (damaged or hostile tables)."""
    data = Path(source).read_bytes()
    top = _boxes(data)
    kinds = [kind for kind, _ in top]
    if kinds.index(b"moov") < kinds.index(b"mdat"):
        raise ValueError("moov must follow mdat (so the sample offsets stay valid)")
    mdat_end = sum(8 + len(body) for body in (b for _, b in top[:kinds.index(b"mdat") + 1]))
    stsz, stco = data.index(b"stsz"), data.index(b"stco")
    count = struct.unpack(">I", data[stsz + 12:stsz + 16])[0]
    first = struct.unpack(">I", data[stco + 12:stco + 16])[0]
    rebuilt = b"".join(
        _box(kind, _rewrite_tables(body, count, first, mdat_end - first) if kind == b"moov"
             else body) for kind, body in top)
    path = Path(path)
    path.write_bytes(rebuilt)
    return path
