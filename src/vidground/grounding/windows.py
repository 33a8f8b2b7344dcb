"""Long videos in windows: split sampled times into model-sized, overlapping windows (cut at
scene changes where one is near), and merge the spans the windows report. A question may look
at only part of the video (``LocateOptions.time_range``): :func:`range_sample_times` and
:func:`range_adaptive_times` plan inside it, :func:`within` keeps the spans there."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..timecode import Span

if TYPE_CHECKING:
    from ..video.motion import MotionCurve
    from ..video.probe import VideoInfo

Bounds = tuple[float, float]


def split_windows(times: Sequence[float], per_window: int, *, overlap: int | None = None,
                  cuts: Sequence[float] = (), cut_reach: int | None = None
                  ) -> list[list[float]]:
    """Split sorted ``times`` into windows of at most ``per_window`` times that overlap by
    ``overlap`` times (default 10 %), so an event on a border is seen whole by one window.

    Where a scene cut lies within ``cut_reach`` times (default: the overlap) before a planned
    border, the border moves to the cut (then the overlap is not needed to see the event
    whole: it is still kept).
    """
    times = list(times)
    if per_window < 2:
        raise ValueError("a window needs at least two frames")
    if len(times) <= per_window:
        return [times]
    ov = default_overlap(per_window) if overlap is None else max(0, min(overlap,
                                                                       per_window // 2))
    reach = ov if cut_reach is None else max(0, min(cut_reach, per_window - 2))
    windows: list[list[float]] = []
    start = 0
    while start < len(times):
        end = min(len(times), start + per_window)
        if end < len(times):
            end = _snap_to_cut(times, start, end, reach, cuts)
        windows.append(times[start:end])
        if end >= len(times):
            break
        start = max(start + 1, end - ov)
    return windows


def default_overlap(per_window: int) -> int:
    """The frames two neighbouring windows of ``per_window`` frames share (10 %, at least 1)."""
    return max(1, per_window // 10)


def frames_in_windows(windows: int, per_window: int) -> int:
    """The most frames :func:`split_windows` (default overlap, no cuts) fits in ``windows``
    windows of ``per_window`` frames.

    >>> frames_in_windows(3, 10), len(split_windows(range(28), 10))
    (28, 3)
    >>> len(split_windows(range(29), 10))
    4
    """
    return per_window + max(0, windows - 1) * (per_window - default_overlap(per_window))


def _snap_to_cut(times: Sequence[float], start: int, end: int, reach: int,
                 cuts: Sequence[float]) -> int:
    """Move the window's end index back to just past a scene cut within ``reach`` frames."""
    lo_t = times[max(start + 2, end - reach) - 1]
    hi_t = times[end - 1]
    near = [c for c in cuts if lo_t < c <= hi_t]
    if not near:
        return end
    cut = max(near)
    for i in range(end - 1, start + 1, -1):
        if times[i - 1] < cut <= times[i]:
            return i + 1  # the window still shows the first frame after the cut
    return end


def merge_spans(spans: Iterable[Span], *, gap: float = 0.0) -> list[Span]:
    """Sort spans and merge those that overlap or lie within ``gap`` seconds of each other
    (the same event reported by two overlapping windows). Keeps the first label, best score."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start <= merged[-1].end + gap:
            last = merged[-1]
            scores = [s for s in (last.score, span.score) if s is not None]
            merged[-1] = last.with_(end=max(last.end, span.end),
                                    label=last.label or span.label,
                                    score=max(scores) if scores else None)
        else:
            merged.append(span)
    return merged


def range_sample_times(info: VideoInfo, bounds: Bounds, *, fps: float, min_frames: int,
                       max_frames: int) -> list[float]:
    """Fixed-rate times inside ``bounds`` (seconds of ``info``'s video), as
    :func:`vidground.video.sampling.sample_times` places them over a whole video: the centres
    of equal intervals covering ``[start, end)``, never past the start of the last frame.

    >>> from vidground.video.probe import VideoInfo
    >>> info = VideoInfo(path="v.mp4", duration=10.0, fps=25.0, frame_count=250, width=64,
    ...                  height=48, codec="h264", container="mp4")
    >>> range_sample_times(info, (4.0, 6.0), fps=2.0, min_frames=4, max_frames=768)
    [4.25, 4.75, 5.25, 5.75]
    """
    from ..video.sampling import frame_count_for, interval_centres, last_frame_time

    start, end = bounds
    length = end - start
    native = int(round(length * info.fps)) if info.fps > 0 else None
    n = frame_count_for(length, fps=fps, min_frames=min_frames, max_frames=max_frames,
                        available_frames=max(1, native) if native is not None else None)
    last = min(end, last_frame_time(info))
    return [round(start + t, 6) for t in
            interval_centres(length, n, last_frame=max(0.0, last - start))]


def range_adaptive_times(curve: MotionCurve, bounds: Bounds, budget: int) -> list[float]:
    """Adaptive times (:func:`vidground.video.motion.adaptive_times`) spending ``budget``
    frames inside ``bounds`` only: the curve's bins there, its anchors there."""
    from ..video.motion import adaptive_times

    start, end = bounds
    first = min(max(0, int(start / curve.bin_s)), max(0, len(curve.values) - 1))
    last = max(first + 1, int(-(-end // curve.bin_s)))
    offset = first * curve.bin_s  # the part's clock starts at its first bin
    part = dataclasses.replace(
        curve, values=curve.values[first:last], duration=end - offset,
        cuts=tuple(c - offset for c in curve.cuts if start <= c < end),
        anchors=tuple(a - offset for a in curve.anchors if start <= a < end))
    times = (round(offset + t, 6) for t in adaptive_times(part, budget))
    return sorted({min(max(t, start), end) for t in times if t < end})


def within(spans: Iterable[Span], bounds: Bounds | None) -> list[Span]:
    """``spans`` clamped to ``bounds``; those wholly outside them are dropped (a model may
    name a time outside the frames it was shown). ``None``: the whole video, spans kept."""
    if bounds is None:
        return list(spans)
    start, end = bounds  # half-open, like spans: a span ending at ``start`` lies before it
    return [s.clamp(start, end) for s in spans
            if s.start < end and (s.end > start or s.start >= start)]
