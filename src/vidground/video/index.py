"""The frame index of a video file: every frame's presentation time and the keyframes, read by
demuxing alone (no decoding), and kept for the last few files while they are unchanged (a long
video asked in many windows, refined and verified is scanned once)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import av


@dataclass(frozen=True)
class FrameIndex:
    """What demuxing alone tells about a video stream: the display-order pts of every frame and
    which are keyframes (stream time base)."""

    pts: list[int]
    keyframes: list[int]
    complete: bool  # every packet had a pts
    rank: dict[int, int]  # pts -> position in display order
    key_dts: dict[int, int]  # keyframe pts -> its dts (where the demuxer gave one)
    packets: int  # frames (non-empty packets), stamped or not
    key_positions: list[int]  # decode-order positions of the keyframe packets

    @property
    def untimed(self) -> bool:
        """No packet carries a timestamp (a raw H.264/HEVC elementary stream)."""
        return self.packets > 0 and not self.pts


def scan(container: av.container.InputContainer, stream: av.VideoStream,
         use_dts: bool = False) -> FrameIndex:
    """Read every packet of ``stream`` (no decoding). ``use_dts``: stamp frames by dts (AVI,
    whose pts FFmpeg guesses)."""
    pts: list[int] = []
    keys: list[int] = []
    key_dts: dict[int, int] = {}
    key_positions: list[int] = []
    complete = True
    packets = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        packets += 1
        if packet.is_keyframe:
            key_positions.append(packets - 1)
        stamp = packet.dts if use_dts else packet.pts
        if stamp is None:
            complete = False
            continue
        pts.append(stamp)
        if packet.is_keyframe:
            keys.append(stamp)
            if packet.dts is not None:
                key_dts[stamp] = packet.dts
    pts.sort()
    keys.sort()
    return FrameIndex(pts, keys, complete, {p: i for i, p in enumerate(pts)}, key_dts, packets,
                      key_positions)


def frame_numbers(index: FrameIndex) -> FrameIndex:
    """An untimed stream's index in frame numbers: frame ``i`` is shown at ``i / fps`` (what
    players do with such a stream; a closed GOP's keyframe is shown at its decode position)."""
    numbers = list(range(index.packets))
    return FrameIndex(numbers, index.key_positions or [0], True, {i: i for i in numbers}, {},
                      index.packets, index.key_positions)


#: Indexes kept (the last files decoded): a long video asked in many windows, refined and
#: verified is scanned once, not once per call.
INDEX_CACHE_SIZE = 4
_index_cache: OrderedDict[tuple[str, int, int, bool], FrameIndex] = OrderedDict()
_index_lock = threading.Lock()


def cached_index(container: av.container.InputContainer, stream: av.VideoStream, path: str,
                 use_dts: bool) -> FrameIndex:
    """The index of ``path``, scanned once while the file is unchanged (same size and mtime)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, use_dts)
    with _index_lock:
        if key in _index_cache:
            _index_cache.move_to_end(key)
            return _index_cache[key]
    index = scan(container, stream, use_dts=use_dts)
    with _index_lock:
        _index_cache[key] = index
        while len(_index_cache) > INDEX_CACHE_SIZE:
            _index_cache.popitem(last=False)
    return index


def clear_cache() -> None:
    """Forget every kept index (benchmarks start each method cold)."""
    with _index_lock:
        _index_cache.clear()
