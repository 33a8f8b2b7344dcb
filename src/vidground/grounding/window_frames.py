"""The frames of a plan's windows, each decoded and encoded once (issue 22.7).

Neighbouring windows overlap (:func:`~vidground.grounding.windows.split_windows`: about 10 % of
their times) so an event on a border is seen whole by one of them. :class:`WindowFrames` hands
the frames the previous window already holds on to the next one and decodes (through the frame
cache) only the times that are new, and every frame it hands out remembers its encodings
(:class:`MemoEncodings`): a frame two windows share, a frame sampled to choose a request's
encoding (:func:`~vidground.backends.fitting.fit_request`) and a frame sent again in a smaller
piece of a window are each encoded once per encoding.

What a window gets is what :func:`~vidground.cache.frames.cached_decode` of all its times
returns: the distinct frames on screen at those times, in order. The frame cache's entries are
then each window's new times, as stable from one question to the next as the windows are.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..cache.frames import StoredFrame, cached_decode
from ..cache.store import DiskCache
from ..frame import Frame
from ..video.decode import ProgressFn
from ..video.plan import TIME_SLACK
from ..video.probe import VideoInfo


class MemoEncodings:
    """A frame's encodings kept in memory for the question (in front of the frame cache's
    stored ones, when the frame has them): what :func:`~vidground.backends.images.frame_jpeg`
    reads (``get``; None: encode it and ``put`` the bytes) and gives.

    A frame may be in two requests built at once (overlapping windows or pieces asked
    together): the first ``get`` of an encoding that is missing leaves it to that caller, and
    a second ``get`` meanwhile waits for its ``put`` (at most :data:`ENCODE_WAIT_S`) instead of
    encoding the frame again."""

    def __init__(self, stored: Any = None) -> None:
        self._stored = stored  # the cache's FrameEncodings, or None
        self._memo: dict[str, bytes] = {}
        self._making: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, spec: dict[str, Any]) -> bytes | None:
        key = _spec_key(spec)
        with self._lock:
            data = self._memo.get(key)
            making = self._making.get(key) if data is None else None
            if data is None and making is None:
                self._making[key] = threading.Event()
        if data is not None:
            return data
        if making is not None:  # another request is encoding this frame now
            making.wait(ENCODE_WAIT_S)
            with self._lock:
                return self._memo.get(key)
        data = self._stored.get(spec) if self._stored is not None else None
        if data is not None:
            self._done(key, data)
        return data

    @property
    def group(self) -> str | None:
        """The eviction group of the cached frame's video (None: not from the cache)."""
        return getattr(self._stored, "group", None)

    def put(self, spec: dict[str, Any], data: bytes) -> None:
        self._done(_spec_key(spec), data)
        if self._stored is not None:
            self._stored.put(spec, data)

    def _done(self, key: str, data: bytes) -> None:
        with self._lock:
            self._memo[key] = data
            making = self._making.pop(key, None)
        if making is not None:
            making.set()


#: the longest a request waits for another one encoding the same frame (then it encodes it)
ENCODE_WAIT_S = 60.0


def _spec_key(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


class WindowFrame(Frame):
    """A frame of a window: the decoded (or cached) frame, its pixels read only when used, with
    :attr:`encodings` remembered for the question."""

    encodings: MemoEncodings

    def __init__(self, frame: Frame) -> None:
        object.__setattr__(self, "time", float(frame.time))
        object.__setattr__(self, "index", frame.index)
        object.__setattr__(self, "_frame", frame)
        object.__setattr__(self, "encodings", MemoEncodings(
            frame.encodings if isinstance(frame, StoredFrame) else None))

    @property  # type: ignore[override]
    def image(self) -> np.ndarray:  # noqa: D102 - Frame.image, read from the frame on use
        return self.__dict__["_frame"].image

    @property
    def size(self) -> tuple[int, int]:
        return self.__dict__["_frame"].size  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"WindowFrame(time={self.time!r}, index={self.index!r})"


class WindowFrames:
    """Decodes a plan's windows in order, each frame once: a window's times that the previous
    window also had are served from its frames. ``decoded`` counts the times decoded (through
    the cache) so far."""

    def __init__(self, cache: DiskCache | None, info: VideoInfo, size: tuple[int, int], *,
                 pixels: bool = True) -> None:
        self.cache, self.info, self.size, self.pixels = cache, info, size, pixels
        self.decoded = 0
        self._times: list[float] = []
        self._frames: list[Frame] = []

    @staticmethod
    def distinct(windows: Sequence[Sequence[float]]) -> int:
        """How many times the windows hold, each counted once (what :meth:`decode` decodes)."""
        return len({float(t) for window in windows for t in window})

    def decode(self, times: Sequence[float], *, progress: ProgressFn | None = None
               ) -> list[Frame]:
        """The frames on screen at ``times`` (sorted), as :func:`cached_decode` returns them."""
        times = [float(t) for t in times]
        if not times:
            return []
        shared = _shared_prefix(self._times, times)
        kept = self._frames_from(times[0]) if shared else []
        fresh = [WindowFrame(f) for f in cached_decode(
            self.cache, self.info, times[shared:], size=self.size, progress=progress,
            pixels=self.pixels)]
        self.decoded += len(times) - shared
        if kept and fresh and _same_frame(kept[-1], fresh[0]):
            fresh = fresh[1:]
        frames = kept + fresh
        self._times, self._frames = times, frames
        return frames

    def _frames_from(self, t: float) -> list[Frame]:
        """The previous window's frames from the one on screen at ``t`` on."""
        starts = [f.time for f in self._frames]
        at = max(0, bisect.bisect_right(starts, t + TIME_SLACK) - 1)
        return self._frames[at:]


def _shared_prefix(before: Sequence[float], times: Sequence[float]) -> int:
    """How many of ``times``' first times are the last times of ``before`` (overlapping
    windows); 0 when they do not continue it."""
    if not before or not times:
        return 0
    at = bisect.bisect_left(before, times[0])
    if at >= len(before) or before[at] != times[0]:
        return 0
    tail = before[at:]
    if len(tail) > len(times) or list(times[:len(tail)]) != list(tail):
        return 0
    return len(tail)


def _same_frame(a: Frame, b: Frame) -> bool:
    if a.index is not None and b.index is not None:
        return a.index == b.index
    return a.time == b.time
