"""Decoded, resized frames of a sampling plan, kept in the disk cache, and the encodings of them
that a backend sends (the JPEG bytes of the remote backend), so a repeat question neither
decodes nor encodes again.

The key is what determines the pictures: the video file's identity (not its path), the requested
times, the output size, the decoder's version and PyAV's. The entry holds every distinct frame's
pixels compressed losslessly (WebP lossless, fastest method: about 3x smaller than raw RGB on
noisy 1056x576 frames and far more on flat ones, and exactly the decoded pixels, so a backend
that needs pixels answers as it does uncached) and, in its meta, each frame's true time,
display index, shape and compressed length, so a hit returns exactly what
:func:`~vidground.video.decode.decode_frames` returned. A hit's pixels are decompressed on
first use of ``frame.image`` only: a backend whose encodings are cached never needs them.

Encodings: every frame handed out carries ``frame.encodings`` (:class:`FrameEncodings`); a
backend asks it for the bytes of an encoding ``spec`` (JSON values naming the format and every
parameter and library version that shapes the bytes) and gives it what it encoded. Once every
frame of a window has been given one spec's bytes they are stored as one ``encoded`` entry
(keyed by the frames' key and the spec), read back whole by the next question. Every entry of a
video belongs to its eviction group (:mod:`.store`), and so does what a backend derives from its
frames (the local backend's visual features): :func:`eviction_group` names it, read from the
frames' ``encodings`` (``encodings.group``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..video.decode import DECODER_VERSION, Frame, ProgressFn, decode_frames
from ..video.probe import VideoInfo
from .identity import file_identity
from .store import CorruptEntryError, DiskCache, Entry, make_key

KIND = "frames"
ENCODED_KIND = "encoded"
#: Part of the key: 2 = lossless WebP per frame (1 was raw RGB).
FORMAT = 2
CODEC = "webp-lossless"


def frames_key_parts(info: VideoInfo, times: Sequence[float],
                     size: tuple[int, int] | None) -> dict[str, Any]:
    """What the frames at ``times`` of ``info``'s file at ``size`` depend on."""
    import av

    return {"video": file_identity(info.path), "times": [float(t) for t in times],
            "size": list(size) if size else None, "decoder": DECODER_VERSION,
            "av": av.__version__, "format": FORMAT}


def cached_decode(cache: DiskCache | None, info: VideoInfo, times: Sequence[float], *,
                  size: tuple[int, int] | None = None,
                  progress: ProgressFn | None = None, pixels: bool = True) -> list[Frame]:
    """:func:`~vidground.video.decode.decode_frames` (``unique=True``) through ``cache``; a
    hit reports its progress at once (all frames done). ``cache=None`` just decodes.

    ``pixels=False`` (a consumer that only sends the frames' cached encodings, like the remote
    backend): a miss stores the frames' times and shapes without their pixels (no compression
    on the first question; the encodings are stored as they are made). A hit of such an entry
    decodes the video again only if something then reads ``frame.image`` (a request refitted
    at a lower quality, a backend that needs pixels), and then stores the pixels too."""
    if cache is None or not times:
        return decode_frames(info, times, size=size, progress=progress)
    parts = frames_key_parts(info, times, size)
    group = str(parts["video"])
    key = make_key(KIND, parts, group)

    def reload() -> list[Frame]:
        if file_identity(info.path) != group:
            from ..errors import VideoError

            raise VideoError(f"{info.path} changed while its frames were in use; ask again.")
        fresh = decode_frames(info, times, size=size)
        cache.put(KIND, key, *encode_frames(fresh))  # the pixels, now that they are wanted
        return fresh

    frames, hit = cache.get_or_create(
        KIND, parts, lambda: decode_frames(info, times, size=size, progress=progress),
        encode_frames if pixels else encode_without_pixels,
        lambda entry: decode_entry(entry, _Reloader(reload)), group=group)
    if hit and progress is not None and frames:
        progress(len(frames), len(frames))
    window = WindowEncodings(cache, key, group, len(frames))
    return [_with_encodings(f, FrameEncodings(window, i)) for i, f in enumerate(frames)]


def eviction_group(frames: Sequence[Frame]) -> str | None:
    """The eviction group of the one video ``frames`` were decoded from through
    :func:`cached_decode` (read from each frame's ``encodings.group``: a wrapper that keeps a
    frame's encodings passes it on), for an entry derived from them to join; None when a frame
    did not come from the cache or they come from several videos."""
    groups = {getattr(getattr(frame, "encodings", None), "group", None) for frame in frames}
    if len(groups) != 1:
        return None
    group = groups.pop()
    return group if isinstance(group, str) and group else None


def _with_encodings(frame: Frame, encodings: FrameEncodings) -> StoredFrame:
    if isinstance(frame, StoredFrame):  # a hit: pixels still compressed (or not stored)
        return StoredFrame(frame.time, frame.index, frame.shape, blob=frame.blob,
                           reload=frame.reload, encodings=encodings)
    return StoredFrame(frame.time, frame.index, tuple(frame.image.shape), image=frame.image,
                       encodings=encodings)


class _Reloader:
    """The pixels of an entry stored without them: the window decoded again, once, on the first
    frame's ask (checked against the entry's times and shapes)."""

    def __init__(self, reload: Callable[[], list[Frame]]) -> None:
        self._reload = reload
        self._lock = threading.Lock()
        self._frames: list[Frame] | None = None
        self.expected: list[tuple[float, int | None, tuple[int, ...]]] = []

    def __call__(self, position: int) -> np.ndarray:
        with self._lock:
            if self._frames is None:
                fresh = self._reload()
                got = [(float(f.time), f.index, tuple(f.image.shape)) for f in fresh]
                if got != self.expected:
                    raise CorruptEntryError("the video decoded again does not match the entry")
                self._frames = fresh
        return self._frames[position].image


class StoredFrame(Frame):
    """A :class:`~vidground.frame.Frame` from the cache: its pixels are decompressed on first
    use of :attr:`image` (never, when only its encodings are used), and it carries
    :attr:`encodings`."""

    shape: tuple[int, ...]
    blob: memoryview | None
    reload: tuple[_Reloader, int] | None
    encodings: FrameEncodings | None

    def __init__(self, time: float, index: int | None, shape: tuple[int, ...], *,
                 image: np.ndarray | None = None, blob: memoryview | None = None,
                 reload: tuple[_Reloader, int] | None = None,
                 encodings: FrameEncodings | None = None) -> None:
        if image is None and blob is None and reload is None:
            raise ValueError("a stored frame needs its pixels or a way to them")
        object.__setattr__(self, "time", float(time))
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "shape", tuple(int(v) for v in shape))
        object.__setattr__(self, "blob", blob)
        object.__setattr__(self, "reload", reload)
        object.__setattr__(self, "encodings", encodings)
        object.__setattr__(self, "_pixels", image)

    @property  # type: ignore[override]
    def image(self) -> np.ndarray:  # noqa: D102 - Frame.image, decompressed on first use
        pixels = self.__dict__["_pixels"]
        if pixels is None:
            if self.blob is not None:
                pixels = _decompress(self.blob, self.shape)
            else:
                assert self.reload is not None
                reloader, position = self.reload
                pixels = reloader(position)
            object.__setattr__(self, "_pixels", pixels)
        return pixels

    @property
    def size(self) -> tuple[int, int]:
        return int(self.shape[1]), int(self.shape[0])

    def __repr__(self) -> str:
        return f"StoredFrame(time={self.time!r}, index={self.index!r}, shape={self.shape!r})"


class WindowEncodings:
    """The encodings of one window's frames (one cached frames entry), per spec: read from the
    cache on first ask, stored once every frame has been given its bytes."""

    def __init__(self, cache: DiskCache, frames_key: str, group: str, count: int) -> None:
        self.cache, self.frames_key, self.group, self.count = cache, frames_key, group, count
        self._lock = threading.Lock()
        self._stored: dict[str, list[bytes] | None] = {}
        self._pending: dict[str, dict[int, bytes]] = {}

    def _key(self, spec: dict[str, Any]) -> tuple[str, str]:
        import json

        text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return text, make_key(ENCODED_KIND, {"frames": self.frames_key, "spec": spec},
                              self.group)

    def get(self, position: int, spec: dict[str, Any]) -> bytes | None:
        text, key = self._key(spec)
        with self._lock:
            if text not in self._stored:
                self._stored[text] = self._read(key)
            stored = self._stored[text]
        return stored[position] if stored is not None else None

    def _read(self, key: str) -> list[bytes] | None:
        entry = self.cache.get(ENCODED_KIND, key)
        if entry is None:
            return None
        try:
            lengths = [int(n) for n in entry.meta["lengths"]]
            if len(lengths) != self.count or sum(lengths) != len(entry.payload) or min(
                    lengths, default=1) < 1:
                raise CorruptEntryError("encoded lengths do not match the payload")
        except (CorruptEntryError, KeyError, TypeError, ValueError) as exc:
            self.cache.drop(ENCODED_KIND, key, reason=f"unreadable: {exc}")
            return None
        out, offset = [], 0
        for n in lengths:
            out.append(bytes(entry.payload[offset:offset + n]))
            offset += n
        return out

    def put(self, position: int, spec: dict[str, Any], data: bytes) -> None:
        text, key = self._key(spec)
        with self._lock:
            if self._stored.get(text) is not None:
                return
            pending = self._pending.setdefault(text, {})
            pending[position] = bytes(data)
            if len(pending) < self.count:
                return
            ordered = [pending[i] for i in range(self.count)]
            self._stored[text] = ordered
            del self._pending[text]
        self.cache.put(ENCODED_KIND, key, {"lengths": [len(b) for b in ordered], "spec": spec},
                       b"".join(ordered))


class FrameEncodings:
    """One frame's view of its window's :class:`WindowEncodings` (what backends call)."""

    def __init__(self, window: WindowEncodings, position: int) -> None:
        self.window, self.position = window, position

    @property
    def group(self) -> str:
        """The eviction group of the video the frame was decoded from."""
        return self.window.group

    def get(self, spec: dict[str, Any]) -> bytes | None:
        """The stored bytes of this frame's encoding ``spec``, or None."""
        return self.window.get(self.position, spec)

    def put(self, spec: dict[str, Any], data: bytes) -> None:
        """Keep this frame's bytes for ``spec`` (stored when the whole window has them)."""
        self.window.put(self.position, spec, data)


def _compress(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(
        buffer, format="WEBP", lossless=True, quality=0, method=0)
    return buffer.getvalue()


def _decompress(blob: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as picture:
        if picture.format != "WEBP":
            raise CorruptEntryError("not a WebP frame")
        pixels = np.asarray(picture.convert("RGB"))
    if pixels.shape != tuple(shape):
        raise CorruptEntryError(f"frame of shape {pixels.shape}, expected {tuple(shape)}")
    return pixels


def encode_frames(frames: Sequence[Frame]) -> tuple[dict[str, Any], bytes]:
    """Meta and payload of an entry holding ``frames`` (each losslessly compressed)."""
    blobs, shapes = [], []
    for f in frames:
        image = np.asarray(f.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected RGB uint8 frames, got {image.shape} {image.dtype}")
        blobs.append(_compress(image))
        shapes.append(list(image.shape))
    meta = {"times": [float(f.time) for f in frames],
            "indices": [f.index for f in frames],
            "shapes": shapes, "lengths": [len(b) for b in blobs], "codec": CODEC}
    return meta, b"".join(blobs)


def encode_without_pixels(frames: Sequence[Frame]) -> tuple[dict[str, Any], bytes]:
    """Meta of an entry holding ``frames``' times and shapes only (``pixels=False``)."""
    meta = {"times": [float(f.time) for f in frames],
            "indices": [f.index for f in frames],
            "shapes": [list(np.shape(f.image)) for f in frames], "codec": "none"}
    return meta, b""


def decode_entry(entry: Entry, reloader: _Reloader | None = None) -> list[Frame]:
    """The frames of an entry (pixels decompressed on first use; a frame that then fails to
    decompress raises :class:`CorruptEntryError`); an entry stored without pixels gets them
    from ``reloader`` (without one it is unreadable)."""
    meta = entry.meta
    if meta.get("codec") == "none" and reloader is not None:
        if len(entry.payload):
            raise CorruptEntryError("an entry without pixels has a payload")
        reloader.expected = [
            (float(t), None if i is None else int(i), tuple(int(v) for v in shape))
            for t, i, shape in zip(meta["times"], meta["indices"], meta["shapes"], strict=True)]
        return [StoredFrame(t, i, shape, reload=(reloader, n))
                for n, (t, i, shape) in enumerate(reloader.expected)]
    if meta.get("codec") != CODEC:
        raise CorruptEntryError(f"frames stored as {meta.get('codec')!r}, not {CODEC}")
    view = memoryview(entry.payload)
    frames: list[Frame] = []
    offset = 0
    for t, index, shape, length in zip(meta["times"], meta["indices"], meta["shapes"],
                                       meta["lengths"], strict=True):
        if len(shape) != 3 or int(shape[2]) != 3 or int(length) < 1:
            raise CorruptEntryError("frame shapes do not match the payload")
        end = offset + int(length)
        if end > len(view):
            raise CorruptEntryError("frame lengths do not match the payload")
        frames.append(StoredFrame(float(t), None if index is None else int(index),
                                  tuple(int(v) for v in shape), blob=view[offset:end]))
        offset = end
    if offset != len(view):
        raise CorruptEntryError("frame lengths do not match the payload")
    return frames
