"""Long videos in windows: split sampled times into model-sized, overlapping windows (cut at
scene changes where one is near), and merge the spans the windows report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..timecode import Span


def split_windows(times: Sequence[float], per_window: int, *, overlap: int | None = None,
                  cuts: Sequence[float] = ()) -> list[list[float]]:
    """Split sorted ``times`` into windows of at most ``per_window`` times that overlap by
    ``overlap`` times (default 10 %), so an event on a border is seen whole by one window.

    Where a scene cut lies within the overlap's reach of a planned border, the border moves to
    the cut (then the overlap is not needed to see the event whole: it is still kept).
    """
    times = list(times)
    if per_window < 2:
        raise ValueError("a window needs at least two frames")
    if len(times) <= per_window:
        return [times]
    ov = default_overlap(per_window) if overlap is None else max(0, min(overlap,
                                                                       per_window // 2))
    windows: list[list[float]] = []
    start = 0
    while start < len(times):
        end = min(len(times), start + per_window)
        if end < len(times):
            end = _snap_to_cut(times, start, end, ov, cuts)
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
