"""The search index's contract: what is stored (videos by path and identity, their time-coded
text as :class:`Segment` rows whose ``kind`` says where the text came from, and, when an
embedding model is configured, a vector per segment), what a search returns (:class:`Hit`),
and the engines' base class. :mod:`vidground.search.engines` opens one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UnavailableError

if TYPE_CHECKING:
    from .embeddings import Embedder

#: Where a segment's text came from: ``event`` (describe), ``text`` (on-screen text, OCR),
#: ``speech`` (the transcript), ``shot`` (shot boundaries), ``facts`` (the probe).
KINDS = ("event", "text", "speech", "shot", "facts")
#: Reciprocal rank fusion's constant: a hit ranked r-th in a list adds 1 / (RRF_K + r).
RRF_K = 60
#: With vectors, each list (text and vector) is this many times ``top`` long before fusion.
FUSION_DEPTH = 3


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
    (the probe's summary), the model that described it and the sources its segments were made
    from (``event``, ``text``, ``speech``, ``shot``: a source missing here is added by the next
    index run that asks for it)."""

    path: str
    identity: str
    duration: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    sources: tuple[str, ...] = ("event",)


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
    #: The embedding model (``VIDGROUND_EMBED_MODEL``): segments written get vectors, and
    #: :meth:`rank` fuses vector similarity with the text rank. None: text alone.
    embedder: Embedder | None = None

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
    def replace_kinds(self, record: VideoRecord, kinds: Sequence[str],
                      segments: Sequence[Segment]) -> None:
        """In one transaction: the stored video ``record.path`` loses its segments of
        ``kinds`` and gains ``segments``; its record becomes ``record`` (the sources it now
        has). The other segments (and their vectors) are kept."""

    @abstractmethod
    def fill_vectors(self, path: str) -> int:
        """Give each segment of the video at ``path`` that has no vector one from
        :attr:`embedder`; how many were made (0 without an embedder). The index holds the
        vectors of one model: the first write with another model drops the old ones, and
        each video gets new ones as it is indexed again."""

    @abstractmethod
    def nearest(self, vector: Sequence[float], top: int, within: str | None = None
                ) -> list[Hit]:
        """The ``top`` segments whose vectors are nearest ``vector`` by cosine similarity (the
        score, -1..1), of videos under ``within``; ties by insertion order."""

    @abstractmethod
    def vectors_model(self) -> str:
        """The embedding model the stored vectors were made with (``""``: none yet)."""

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
        """``{"videos": n, "segments": m, "vectors": k}``."""

    def rank(self, query: str, found_terms: Sequence[str], top: int,
             within: str | None = None) -> list[Hit]:
        """The ``top`` best segments for ``query``: :meth:`find`'s text rank alone, or, when
        :attr:`embedder` is set and the index holds vectors of its model, the text rank and
        the vector rank fused (reciprocal rank fusion: each segment scores the sum of
        ``1 / (RRF_K + rank)`` over the lists it is in)."""
        embedder = self.embedder
        if embedder is None or self.vectors_model() != embedder.name:
            return self.find(found_terms, top, within)
        depth = top * FUSION_DEPTH
        text = self.find(found_terms, depth, within)
        [vector] = embedder.embed([query])
        return fuse([text, self.nearest(vector, depth, within)], top)

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fuse(rankings: Sequence[Sequence[Hit]], top: int, k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion of ``rankings`` (each best first): a segment (video, times, text,
    source) scores ``sum(1 / (k + rank))`` over the lists it is in, rank from 1; ties keep the
    first list's order. The hits carry the fused score."""
    scores: dict[tuple[str, float, float, str, str], float] = {}
    first: dict[tuple[str, float, float, str, str], Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.video, round(hit.start, 6), round(hit.end, 6), hit.text, hit.source)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            first.setdefault(key, hit)
    order = sorted(scores, key=lambda key: -scores[key])  # stable: first seen wins ties
    return [Hit(video=first[key].video, start=first[key].start, end=first[key].end,
                score=scores[key], text=first[key].text, source=first[key].source)
            for key in order[:top]]


def folder_prefix(folder: str | Path) -> str:
    """``folder`` resolved, with a trailing separator: the prefix of paths inside it."""
    real = os.path.realpath(folder)
    return real if real.endswith(os.sep) else real + os.sep
