"""Searching the index: :func:`search` ranks the moments whose text matches a query, and
:func:`ground_hits` (``--ground``) asks the model about each hit's neighbourhood to confirm it
and give frame-exact times.

>>> from vidground.search import open_store, search
>>> [h.to_dict() for h in search(open_store(), "red square", top=3)]  # doctest: +SKIP
[{'video': '/videos/a.mp4', 'start': 1.0, 'end': 2.0, 'score': 0.71,
  'why': {'text': 'the red square is visible', 'source': 'event'}}]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OptionsError
from ..options import LocateOptions
from ..progress import ProgressEvent
from .store import Hit, SearchStore, folder_prefix
from .terms import terms

if TYPE_CHECKING:
    from ..grounding import Grounder

#: The most hits one search returns.
MAX_TOP = 1000
#: ``--ground``: the model looks at each hit widened by this much (seconds) on each side, and a
#: span it finds there confirms the hit.
GROUND_MARGIN_S = 2.0


def search(store: SearchStore, query: str, top: int = 10,
           within: str | Path | None = None) -> list[Hit]:
    """The ``top`` best moments for ``query`` (best first), only of videos inside the folder
    ``within`` when given (symbolic links resolved: a stored path outside it never shows).
    Raises :class:`~vidground.errors.QueryError` for an empty, over-long or content-free query,
    :class:`~vidground.errors.OptionsError` for ``top`` outside 1..:data:`MAX_TOP`."""
    if not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise OptionsError(f"top must be between 1 and {MAX_TOP}; got {top!r}.")
    found = terms(query)
    prefix = folder_prefix(within) if within is not None else None
    hits = store.rank(query, found, top, prefix)  # text rank, fused with vectors if any
    if prefix is not None:  # the store filtered already; a second guard costs nothing
        hits = [h for h in hits if os.path.realpath(h.video).startswith(prefix)]
    return hits


def ground_hits(grounder: Grounder, hits: list[Hit], query: str,
                options: LocateOptions | None = None, *, margin_s: float = GROUND_MARGIN_S,
                progress: Callable[[ProgressEvent], None] | None = None) -> list[Hit]:
    """``hits`` the model confirms, with its frame-exact times, best first.

    The model looks only at each hit's neighbourhood: the hit widened by ``margin_s`` on each
    side (:attr:`LocateOptions.time_range`; the neighbourhoods of hits of one video that
    overlap are asked about once, as one window), every occurrence, refined to frames like
    ``locate``. A hit is kept when a span found there overlaps its neighbourhood; it then takes
    the span that overlaps it most (the nearest when none overlaps the hit itself). Hits of a
    video that can no longer be read are dropped. ``progress``: ``ground`` events (windows
    done of all), with the model's own events folded in (a cancelled job stops there)."""
    from ..errors import VideoError
    from ..video.probe import probe

    opts = replace(options or LocateOptions(), all_occurrences=True,
                   enable_temporal_grounding=True)
    windows = ground_windows(hits, margin_s)
    spans_of: dict[str, list[tuple[float, float]]] = {}  # video -> the spans found in it
    for done, (video, start, end) in enumerate(windows):
        if progress is not None:
            progress(ProgressEvent("ground", done, len(windows),
                                   f"window {done + 1} of {len(windows)}: "
                                   f"{Path(video).name} {start:.3f}-{end:.3f} s"))
        found = spans_of.setdefault(video, [])
        try:
            info = probe(video)
            if start >= info.duration:  # the file changed since it was indexed
                continue
            grounding = grounder.locate(info, query, replace(opts, time_range=(start, end)),
                                        progress=_folded(progress, done, len(windows)))
        except VideoError:
            continue
        found += [(s.start, s.end) for s in grounding.spans]
    if progress is not None:
        progress(ProgressEvent("ground", len(windows), len(windows), "done"))
    kept: list[Hit] = []
    for hit in hits:
        lo, hi = hit.start - margin_s, hit.end + margin_s
        near = [s for s in spans_of.get(hit.video, []) if s[0] < hi and s[1] > lo]
        if near:
            middle = (hit.start + hit.end) / 2
            best = max(near, key=lambda s: (min(s[1], hit.end) - max(s[0], hit.start),
                                            -abs((s[0] + s[1]) / 2 - middle)))
            kept.append(replace(hit, start=best[0], end=best[1], confirmed=True))
    return _unique(kept)


def ground_windows(hits: list[Hit], margin_s: float = GROUND_MARGIN_S
                   ) -> list[tuple[str, float, float]]:
    """The parts of the videos ``--ground`` looks at: each hit widened by ``margin_s`` (from
    0), those of one video that overlap or touch merged; videos in the order of their best
    hit, each video's windows in time order."""
    by_video: dict[str, list[tuple[float, float]]] = {}
    for hit in hits:
        by_video.setdefault(hit.video, []).append(
            (max(0.0, hit.start - margin_s), hit.end + margin_s))
    windows: list[tuple[str, float, float]] = []
    for video, parts in by_video.items():
        merged: list[list[float]] = []
        for start, end in sorted(parts):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        windows += [(video, start, end) for start, end in merged]
    return windows


def _folded(progress: Callable[[ProgressEvent], None] | None, done: int, total: int
            ) -> Callable[[ProgressEvent], None] | None:
    """The model's progress inside window ``done`` as ``ground`` progress over all windows."""
    if progress is None:
        return None

    def report(event: ProgressEvent) -> None:
        inner = event.fraction or 0.0
        progress(ProgressEvent("ground", done + min(inner, 0.99), total, event.message))

    return report


def _unique(hits: list[Hit]) -> list[Hit]:
    """The first hit of each (video, start, end): two segments confirmed by one span are one
    moment."""
    seen: set[tuple[str, float, float]] = set()
    out: list[Hit] = []
    for hit in hits:
        key = (hit.video, round(hit.start, 6), round(hit.end, 6))
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out
