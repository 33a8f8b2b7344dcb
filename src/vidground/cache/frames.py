"""Decoded, resized frames of a sampling plan, kept in the disk cache.

The key is what determines the pictures: the video file's identity (not its path), the requested
times, the output size, the decoder's version and PyAV's. The entry holds every distinct frame's
pixels (raw RGB, one after the other) and, in its meta, each frame's true time, display index
and shape, so a hit returns exactly what :func:`~vidground.video.decode.decode_frames` returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..video.decode import DECODER_VERSION, Frame, ProgressFn, decode_frames
from ..video.probe import VideoInfo
from .identity import file_identity
from .store import CorruptEntryError, DiskCache, Entry

KIND = "frames"


def frames_key_parts(info: VideoInfo, times: Sequence[float],
                     size: tuple[int, int] | None) -> dict[str, Any]:
    """What the frames at ``times`` of ``info``'s file at ``size`` depend on."""
    import av

    return {"video": file_identity(info.path), "times": [float(t) for t in times],
            "size": list(size) if size else None, "decoder": DECODER_VERSION,
            "av": av.__version__}


def cached_decode(cache: DiskCache | None, info: VideoInfo, times: Sequence[float], *,
                  size: tuple[int, int] | None = None,
                  progress: ProgressFn | None = None) -> list[Frame]:
    """:func:`~vidground.video.decode.decode_frames` (``unique=True``) through ``cache``; a
    hit reports its progress at once (all frames done). ``cache=None`` just decodes."""
    if cache is None or not times:
        return decode_frames(info, times, size=size, progress=progress)
    frames, hit = cache.get_or_create(
        KIND, frames_key_parts(info, times, size),
        lambda: decode_frames(info, times, size=size, progress=progress),
        encode_frames, decode_entry)
    if hit and progress is not None and frames:
        progress(len(frames), len(frames))
    return frames


def encode_frames(frames: Sequence[Frame]) -> tuple[dict[str, Any], memoryview]:
    """Meta and payload of an entry holding ``frames``."""
    images = [np.ascontiguousarray(f.image, dtype=np.uint8) for f in frames]
    payload = (np.concatenate([im.reshape(-1) for im in images]) if images
               else np.zeros(0, np.uint8))
    meta = {"times": [float(f.time) for f in frames],
            "indices": [f.index for f in frames],
            "shapes": [list(im.shape) for im in images]}
    return meta, payload.data  # the array's buffer, as memoryview(payload) gives it


def decode_entry(entry: Entry) -> list[Frame]:
    """The frames of an entry (each image a view of the entry's buffer)."""
    meta = entry.meta
    flat = np.frombuffer(entry.payload, dtype=np.uint8)
    frames: list[Frame] = []
    offset = 0
    for t, index, shape in zip(meta["times"], meta["indices"], meta["shapes"], strict=True):
        count = int(np.prod(shape))
        if len(shape) != 3 or offset + count > flat.size:
            raise CorruptEntryError("frame shapes do not match the payload")
        frames.append(Frame(time=float(t), image=flat[offset:offset + count].reshape(shape),
                            index=None if index is None else int(index)))
        offset += count
    if offset != flat.size:
        raise CorruptEntryError("frame shapes do not match the payload")
    return frames
