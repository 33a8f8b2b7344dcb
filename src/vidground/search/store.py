"""The search index's contract: what is stored (videos by path and identity, their time-coded
text as :class:`Segment` rows whose ``kind`` says where the text came from), what a search
returns (:class:`Hit`), and the engines' base class. :mod:`vidground.search.engines` opens one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UnavailableError

#: Where a segment's text came from. Built today: ``event`` (describe), ``facts`` (probe),
#: ``shot`` (shot boundaries, when asked for); ``text`` (on-screen text) and ``speech``
#: (transcripts) are the kinds perception's results are stored as.
KINDS = ("event", "text", "speech", "shot", "facts")


class SearchIndexError(UnavailableError):
    """The search index cannot be reached or written (a PostgreSQL server that is down)."""

    code = "search_index_unavailable"


@dataclass(frozen=True)
class Segment:
    """One piece of a video's time-coded text: ``[start, end)`` seconds, where it came from
    (``kind``, one of :data:`KINDS`) and the text."""

    start: float
    end: float
    text: str
    kind: str = "event"


@dataclass(frozen=True)
class VideoRecord:
    """One indexed video: its resolved path, its content identity (cache.identity), its facts
    (the probe's summary) and the model that described it."""

    path: str
    identity: str
    duration: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    model: str = ""


@dataclass(frozen=True)
class Hit:
    """One search result: a moment of a video, its score (higher is better; comparable within
    one engine) and why it matched (the segment's text and its source kind)."""

    video: str
    start: float
    end: float
    score: float
    text: str
    source: str
    confirmed: bool | None = None  # set by ``--ground``: the model found it there too

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"video": self.video, "start": round(self.start, 6),
                                "end": round(self.end, 6), "score": round(self.score, 6),
                                "why": {"text": self.text, "source": self.source}}
        if self.confirmed is not None:
            body["confirmed"] = self.confirmed
        return body


class SearchStore(ABC):
    """Videos and their segments, searchable. Every write of one video is one transaction: a
    process killed mid-index leaves the video either whole or absent."""

    #: What happened at open that the user should know (a damaged file moved aside).
    warnings: list[str]

    @abstractmethod
    def describe(self) -> str:
        """Where the index lives, for messages."""

    @abstractmethod
    def video(self, path: str) -> VideoRecord | None:
        """The record stored for ``path``, or None."""

    @abstractmethod
    def by_identity(self, identity: str) -> VideoRecord | None:
        """A video stored with this content identity (a renamed or copied file), or None."""

    @abstractmethod
    def segments(self, path: str) -> list[Segment]:
        """The segments of the video at ``path``, in time order."""

    @abstractmethod
    def put(self, record: VideoRecord, segments: Sequence[Segment]) -> None:
        """Store ``record`` and its ``segments`` in one transaction, replacing what was stored
        for its path."""

    @abstractmethod
    def put_many(self, items: Sequence[tuple[VideoRecord, Sequence[Segment]]]) -> None:
        """Several :meth:`put` in one transaction (bulk loads, benchmarks)."""

    @abstractmethod
    def remove(self, paths: Sequence[str]) -> int:
        """Drop these videos and their segments; how many were stored."""

    @abstractmethod
    def paths(self, within: str | None = None) -> list[str]:
        """Every stored video path (under the folder ``within`` when given)."""

    @abstractmethod
    def find(self, found_terms: Sequence[str], top: int, within: str | None = None
             ) -> list[Hit]:
        """The ``top`` best segments matching any of ``found_terms`` (see
        :mod:`vidground.search.terms`), of videos under the folder ``within`` when given."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """``{"videos": n, "segments": m}``."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def folder_prefix(folder: str | Path) -> str:
    """``folder`` resolved, with a trailing separator: the prefix of paths inside it."""
    real = os.path.realpath(folder)
    return real if real.endswith(os.sep) else real + os.sep
