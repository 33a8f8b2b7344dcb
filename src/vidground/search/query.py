"""Searching the index: :func:`search` ranks the moments whose text matches a query, and
:func:`ground_hits` (``--ground``) asks the model to confirm each and give frame-exact times.

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
from .store import Hit, SearchStore, folder_prefix
from .terms import terms

if TYPE_CHECKING:
    from ..grounding import Grounder

#: The most hits one search returns.
MAX_TOP = 1000
#: ``--ground``: a located span confirms a hit when it overlaps the hit widened by this much
#: (seconds) on each side.
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
    hits = store.find(found, top, prefix)
    if prefix is not None:  # the store filtered already; a second guard costs nothing
        hits = [h for h in hits if os.path.realpath(h.video).startswith(prefix)]
    return hits


def ground_hits(grounder: Grounder, hits: list[Hit], query: str,
                options: LocateOptions | None = None, *, margin_s: float = GROUND_MARGIN_S,
                on_video: Callable[[str], None] | None = None) -> list[Hit]:
    """``hits`` the model confirms, with its frame-exact times: the query is located
    (:meth:`Grounder.locate`, every occurrence) once per video among the hits, and a hit is kept
    when a located span overlaps it (widened by ``margin_s``); it then takes that span's times.
    Hits of a video that can no longer be read are dropped."""
    from ..errors import VideoError
    from ..video.probe import probe

    opts = replace(options or LocateOptions(), all_occurrences=True,
                   enable_temporal_grounding=True)
    spans_of: dict[str, list[tuple[float, float]]] = {}
    kept: list[Hit] = []
    for hit in hits:
        if hit.video not in spans_of:
            if on_video:
                on_video(hit.video)
            try:
                grounding = grounder.locate(probe(hit.video), query, opts)
                spans_of[hit.video] = [(s.start, s.end) for s in grounding.spans]
            except VideoError:
                spans_of[hit.video] = []
        for start, end in spans_of[hit.video]:
            if start < hit.end + margin_s and end > hit.start - margin_s:
                kept.append(replace(hit, start=start, end=end, confirmed=True))
                break
    return _unique(kept)


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
