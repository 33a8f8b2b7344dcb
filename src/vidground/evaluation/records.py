"""The value types of an evaluation: one annotated sample, one prediction.

A leaf module: it imports only :mod:`vidground.errors`, so loaders, metrics, the runner and
the report all share these without import cycles. Times are float seconds; spans are plain
``(start, end)`` pairs kept exactly as written (a prediction may be reversed or empty: each
metric protocol decides what that means, see :mod:`.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import VidgroundError

Pair = tuple[float, float]

#: :attr:`Prediction.source` of a line of TimeLens' own dump (already rounded when written).
TIMELENS_DUMP = "timelens-dump"
#: :attr:`Prediction.source` of a line that holds only the model's text.
RAW = "raw"


@dataclass(frozen=True)
class Sample:
    """One query about one video with its ground-truth span(s).

    ``id`` is stable across runs (it keys the predictions file, so a re-run can skip what is done).
    ``video`` is the dataset's video id (or, for our JSONL, the path as written); ``names`` are
    the file stems the id may be stored under (``v_abc`` and ``abc`` for ActivityNet).
    ``duration`` is the annotated duration when the dataset gives one (else ``None``: the video
    is probed). ``video_path`` is set once the file has been found. ``where`` is the file and
    line (or entry) it was read from, for messages.
    """

    id: str
    video: str
    query: str
    spans: tuple[Pair, ...]
    duration: float | None = None
    video_path: Path | None = None
    names: tuple[str, ...] = ()
    where: str = ""

    def with_path(self, path: Path) -> Sample:
        return replace(self, video_path=path)

    def with_duration(self, duration: float) -> Sample:
        return replace(self, duration=duration)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "video": self.video, "query": self.query,
                "spans": [list(s) for s in self.spans], "duration": self.duration}


@dataclass(frozen=True)
class Prediction:
    """What a model answered for one sample.

    ``spans`` are in the order the answer gave them (the first is "the" answer), ``scores`` one
    per span or empty. ``answer`` is the model's raw text. ``error`` is set when the sample could
    not be run (an unreadable video, a backend failure): it then counts as a miss, and a re-run
    tries it again. ``source`` says what wrote it when that changes how it is scored:
    ``"timelens-dump"`` (TimeLens' eval_dataloader.py: already rounded), ``"raw"`` (only the
    model's text was given; :func:`.predictions.parse_raw` reads the spans once the sample's
    duration is known).
    """

    id: str
    spans: tuple[Pair, ...]
    scores: tuple[float | None, ...] = ()
    answer: str = ""
    duration: float | None = None
    error: str | None = None
    video: str = ""
    query: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "video": self.video, "query": self.query,
                "pred": [list(s) for s in self.spans], "scores": list(self.scores),
                "answer": self.answer, "duration": self.duration, "error": self.error,
                "timings": dict(self.timings)}


class EvaluationError(VidgroundError):
    """An annotation file, predictions file or evaluation setting that cannot be used."""

    code = "evaluation_error"
