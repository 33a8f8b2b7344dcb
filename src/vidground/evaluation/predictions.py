"""The predictions file: JSON lines appended as answers come, so a killed run loses nothing.

Our runs write a first line ``{"type": "meta", ...}`` (what produced the answers) and then one
line per sample::

    {"id": "AO8RW#0", "video": "AO8RW", "query": "...", "pred": [[1.2, 5.0]], "scores": [0.9],
     "answer": "...", "duration": 30.6, "error": null, "timings": {...}}

``vidground eval score`` also reads other tools' files in the same simple form: a line needs
``pred`` (or ``timestamps``, or QVHighlights' ``pred_relevant_windows`` with scores as the third
element) and either ``id``/``qid`` or ``video`` + ``query``; and the lines TimeLens'
``eval_dataloader.py`` writes (``{"VIDEO.mp4>>>query>>>[s, e]": {"timestamps": ...}}``).
A later line for the same id replaces an earlier one (a retried failure). A half-written last
line (a killed run) is ignored.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from .records import EvaluationError, Pair, Prediction

log = logging.getLogger(__name__)

META_TYPE = "meta"


def read_predictions(path: str | Path) -> tuple[dict[str, Any] | None, list[Prediction]]:
    """The meta line (or None) and every prediction, the last one per id winning."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"predictions file {path} does not exist")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    meta: dict[str, Any] | None = None
    found: dict[str, Prediction] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                log.warning("%s: ignoring the half-written last line", path)
                continue
            raise EvaluationError(f"{path}:{lineno}: not a JSON line") from None
        if not isinstance(entry, dict):
            raise EvaluationError(f"{path}:{lineno}: each line must be a JSON object")
        if entry.get("type") == META_TYPE:
            meta = entry
            continue
        prediction = prediction_from_dict(entry, f"{path}:{lineno}")
        found[prediction.id] = prediction
    return meta, list(found.values())


def prediction_from_dict(entry: dict[str, Any], where: str) -> Prediction:
    """One line of a predictions file (ours, or the simple form of another tool)."""
    if len(entry) == 1 and ">>>" in next(iter(entry)):
        return _timelens_dump(entry, where)
    raw_id = entry.get("id", entry.get("qid"))
    video = str(entry.get("video", entry.get("vid", "")))
    query = str(entry.get("query", ""))
    if raw_id is None and not (video and query):
        raise EvaluationError(f"{where}: a prediction needs an 'id' (or 'qid'), or 'video' and "
                              "'query'")
    spans: list[Pair] = []
    scores: list[float | None] = []
    if "pred_relevant_windows" in entry:
        for window in entry["pred_relevant_windows"] or []:
            spans.append(_pair(window, where))
            scores.append(float(window[2]) if len(window) > 2 else None)
    else:
        key = next((k for k in ("pred", "timestamps", "spans") if k in entry), None)
        if key is None:
            raise EvaluationError(f"{where}: no 'pred' (list of [start, end]) in the prediction")
        spans = [_pair(s, where) for s in entry[key] or []]
        given = entry.get("scores") or []
        scores = [None if s is None else float(s) for s in given][:len(spans)]
    duration = entry.get("duration")
    return Prediction(
        id=str(raw_id) if raw_id is not None else f"{video}\x00{query}",
        spans=tuple(spans), scores=tuple(scores), answer=str(entry.get("answer") or ""),
        duration=float(duration) if duration is not None else None,
        error=entry.get("error"), video=video, query=query,
        timings={k: float(v) for k, v in (entry.get("timings") or {}).items()
                 if isinstance(v, (int, float))})


def _timelens_dump(entry: dict[str, Any], where: str) -> Prediction:
    """A line of TimeLens' eval_dataloader.py output:
    ``{"VIDEO.mp4>>>query>>>[s, e]": {"timestamps": [[s, e]], "answers": "...", "duration"}}``
    (matched to samples by video id and query)."""
    key, value = next(iter(entry.items()))
    video_name, _, rest = key.partition(">>>")
    query = rest.rpartition(">>>")[0]
    if not isinstance(value, dict) or not query:
        raise EvaluationError(f"{where}: not a TimeLens prediction line")
    video = Path(video_name).stem
    spans = tuple(_pair(s, where) for s in value.get("timestamps") or [])
    duration = value.get("duration")
    return Prediction(id=f"{video}\x00{query}", spans=spans, answer=str(value.get("answers", "")),
                      duration=float(duration) if duration is not None else None, video=video,
                      query=query)


def _pair(value: Any, where: str) -> Pair:
    try:
        start, end = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise EvaluationError(f"{where}: {value!r} is not a [start, end] pair") from None
    return (start, end)


class PredictionWriter:
    """Appends predictions to a JSONL file, one flushed line each (a kill loses at most the
    line being written, which the reader then ignores)."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            _end_with_newline(self.path)
        self._handle: IO[str] = self.path.open("a", encoding="utf-8")
        if fresh:
            self._write({"type": META_TYPE, **meta})

    def write(self, prediction: Prediction) -> None:
        self._write(prediction.to_dict())

    def _write(self, entry: dict[str, Any]) -> None:
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end_with_newline(path: Path) -> None:
    """Cut a half-written last line (a killed run) so the next line starts clean."""
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(cut)
