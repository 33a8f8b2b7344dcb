"""The predictions file: JSON lines appended as answers come, so a killed run loses nothing.

Our runs write a first line ``{"type": "meta", ...}`` (what produced the answers) and then one
line per sample::

    {"id": "AO8RW#0", "video": "AO8RW", "query": "...", "pred": [[1.2, 5.0]], "scores": [0.9],
     "answer": "...", "duration": 30.6, "error": null, "timings": {...}}

``vidground eval score`` also reads other tools' files:

- the same simple form: a line needs ``pred`` (or ``timestamps``, ``spans``, or QVHighlights'
  ``pred_relevant_windows`` with scores as the third element) and either ``id``/``qid`` or
  ``video`` + ``query``;
- raw model answers: no span key but the model's text under one of :data:`RAW_ANSWER_KEYS`
  (``answer``, ``output``, ``response``, ``pred_text``, ...); the spans are read with
  vidground's answer parser once the sample (and so its duration) is known, see
  :func:`parse_raw`;
- the lines TimeLens' ``eval_dataloader.py`` writes
  (``{"VIDEO.mp4>>>query>>>[s, e]": {"timestamps": ..., "answers": ...}}``), matched to samples
  by video, query *and* ground-truth span as its compute_metrics.py keys them (a line with only
  ``answers`` is read with TimeLens' own ``extract_time``, as there).

A later line for the same id replaces an earlier one (a retried failure). A half-written last
line (a killed run) is ignored.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from .jsonio import number_at, pair_at, unreadable_json
from .records import RAW, TIMELENS_DUMP, EvaluationError, Pair, Prediction

log = logging.getLogger(__name__)

META_TYPE = "meta"
#: Keys a line may hold the model's raw text under (the first present, holding text, is used).
RAW_ANSWER_KEYS = ("answer", "answers", "output", "response", "pred_text", "prediction", "text",
                   "generated_text")
#: Keys a line may hold its predicted spans under, in order of preference.
SPAN_KEYS = ("pred", "timestamps", "spans")
#: :attr:`Prediction.source` of a line that holds only the model's text.


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
        where = f"{path}:{lineno}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if lineno == len(lines):
                log.warning("%s: ignoring the half-written last line", path)
                continue
            raise EvaluationError(f"{where}: not a JSON line ({exc.msg})") from None
        except (RecursionError, ValueError) as exc:
            raise unreadable_json(exc, where) from None
        if not isinstance(entry, dict):
            raise EvaluationError(f"{where}: each line must be a JSON object")
        if entry.get("type") == META_TYPE:
            meta = entry
            continue
        prediction = prediction_from_dict(entry, where)
        found[prediction.id] = prediction
    return meta, list(found.values())


def prediction_from_dict(entry: dict[str, Any], where: str) -> Prediction:
    """One line of a predictions file (ours, the simple form of another tool, raw answers or
    TimeLens' dump)."""
    if len(entry) == 1 and ">>>" in next(iter(entry)):
        return _timelens_dump(entry, where)
    raw_id = entry.get("id", entry.get("qid"))
    if raw_id is not None and not isinstance(raw_id, (str, int)):
        raise EvaluationError(f"{where}: 'id'/'qid' must be a string or an integer, "
                              f"not {raw_id!r:.60}")
    video = _text_field(entry, ("video", "vid"), where)
    query = _text_field(entry, ("query",), where)
    if raw_id is None and not (video and query):
        raise EvaluationError(f"{where}: a prediction needs an 'id' (or 'qid'), or 'video' and "
                              "'query'")
    spans, scores, source = _spans_of(entry, where)
    return Prediction(
        id=str(raw_id) if raw_id is not None else f"{video}\x00{query}",
        spans=tuple(spans), scores=tuple(scores), answer=_raw_text(entry) or "",
        duration=_optional_seconds(entry.get("duration"), where),
        error=None if entry.get("error") is None else str(entry.get("error")),
        video=video, query=query, source=source,
        timings={k: float(v) for k, v in (_mapping(entry.get("timings"))).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)})


def _spans_of(entry: dict[str, Any], where: str
              ) -> tuple[list[Pair], list[float | None], str]:
    """The spans, their scores, and ``"raw"`` when only the model's text was given."""
    if "pred_relevant_windows" in entry:
        windows = _list(entry["pred_relevant_windows"], "pred_relevant_windows", where)
        spans = [pair_at(w, where) for w in windows]
        scores = [number_at(w[2], where) if len(w) > 2 else None for w in windows]
        return spans, scores, ""
    key = next((k for k in SPAN_KEYS if k in entry), None)
    if key is not None:
        spans = [pair_at(s, where) for s in _list(entry[key], key, where)]
        given = _list(entry.get("scores"), "scores", where)
        return spans, [None if s is None else number_at(s, where) for s in given][:len(spans)], ""
    if _raw_text(entry) is not None:
        return [], [], RAW
    raise EvaluationError(
        f"{where}: no predicted spans ('pred': [[start, end], ...]) and no model answer "
        f"({', '.join(repr(k) for k in RAW_ANSWER_KEYS)}) in the line")


def _raw_text(entry: dict[str, Any]) -> str | None:
    for key in RAW_ANSWER_KEYS:
        if isinstance(entry.get(key), str):
            return entry[key]
    return None


def parse_raw(prediction: Prediction, duration: float | None) -> Prediction:
    """A raw-answer prediction with its spans read by vidground's answer parser
    (``parse_answer(text, duration=..., fps=None)``: spans clamped to the duration when one is
    known); other predictions unchanged."""
    if prediction.source != RAW:
        return prediction
    from ..grounding.answer import parse_answer

    parsed = parse_answer(prediction.answer, duration=duration, fps=None)
    spans = tuple((float(s.start), float(s.end)) for s in parsed.spans)
    scores = tuple(s.score for s in parsed.spans) if any(
        s.score is not None for s in parsed.spans) else ()
    return Prediction(id=prediction.id, spans=spans, scores=scores, answer=prediction.answer,
                      duration=prediction.duration, error=prediction.error,
                      video=prediction.video, query=prediction.query,
                      timings=dict(prediction.timings), source="raw-parsed")


def _timelens_dump(entry: dict[str, Any], where: str) -> Prediction:
    """A line of TimeLens' eval_dataloader.py output:
    ``{"VIDEO.mp4>>>query>>>[s, e]": {"timestamps": [[s, e]], "answers": "...", "duration"}}``,
    with the id :func:`timelens_dump_id` (video, query and ground-truth span)."""
    from .protocols import extract_time

    key, value = next(iter(entry.items()))
    parts = key.split(">>>")
    if len(parts) != 3 or not isinstance(value, dict) or not parts[1]:
        raise EvaluationError(f"{where}: not a TimeLens prediction line "
                              "('VIDEO>>>query>>>[start, end]': {...})")
    video_name, query, span_text = parts
    video = Path(video_name).stem
    gt = pair_at(_literal(span_text, where), where)
    if "timestamps" in value:
        spans = tuple(pair_at(s, where) for s in _list(value["timestamps"], "timestamps", where))
    elif isinstance(value.get("answers"), str):
        spans = tuple(extract_time(value["answers"]))
    else:
        raise EvaluationError(f"{where}: a TimeLens line needs 'timestamps' or 'answers'")
    return Prediction(id=timelens_dump_id(video, query, gt), spans=spans,
                      answer=str(value.get("answers", "")),
                      duration=_optional_seconds(value.get("duration"), where), video=video,
                      query=query, source=TIMELENS_DUMP)


def timelens_dump_id(video: str, query: str, span: Pair) -> str:
    """The id of a TimeLens dump line, and the key a sample is looked up by: video, query and
    the ground-truth span (``[0, 3.4]`` and ``[0.0, 3.4]`` are the same span)."""
    return f"{video}\x00{query}\x00{float(span[0])!r},{float(span[1])!r}"


def _literal(text: str, where: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        raise EvaluationError(f"{where}: the span {text[:60]!r} in the TimeLens key is not "
                              "[start, end]") from None


def _text_field(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    for key in keys:
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise EvaluationError(f"{where}: {key!r} must be text, not {value!r:.60}")
        return str(value)
    return ""


def _list(value: Any, key: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvaluationError(f"{where}: {key!r} must be a list (of [start, end] pairs), "
                              f"not {value!r:.60}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _optional_seconds(value: Any, where: str) -> float | None:
    if value is None:
        return None
    seconds = number_at(value, where)
    if seconds < 0:
        raise EvaluationError(f"{where}: duration {value!r} is negative")
    return seconds


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
