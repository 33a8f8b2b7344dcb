"""Readers for the published annotation files, and where each sample's video is on disk.

Formats (as the datasets publish them, and as TimeLens' and VideoMind's loaders read them):

``charades-sta``  ``charades_sta_test.txt``: one ``VID START END##sentence`` per line. No
                  durations: from ``--durations`` (VideoMind's ``durations.json``
                  ``{vid: seconds}``, or Charades' ``Charades_v1_test.csv`` with its ``length``
                  column), else probed from the video.
``timelens``      TimeLens-Bench JSON (``charades-timelens.json``, ``activitynet-timelens.json``,
                  ``qvhighlights-timelens.json``): ``{vid: {"duration", "spans", "queries"}}``,
                  one span per query.
``activitynet``   ActivityNet Captions ``val_1.json`` / ``val_2.json``:
                  ``{vid: {"duration", "timestamps", "sentences"}}``. Files may be named with or
                  without the ``v_`` prefix.
``qvhighlights``  ``highlight_val_release.jsonl``: one ``{"qid", "query", "duration", "vid",
                  "relevant_windows", ...}`` per line.
``jsonl``         ours: one ``{"video", "query", "spans": [[s, e], ...]}`` per line, with optional
                  ``"id"`` and ``"duration"``; ``video`` is a file name or path relative to
                  ``--videos``. Spans must satisfy ``0 <= start <= end``.

Videos are confined to the video folder: a name that is absolute or climbs out of it (``..``) is
refused unless ``allow_outside`` (``--allow-outside-videos``) says otherwise (symbolic links
inside the folder are followed: confinement is by the path as written). Published formats keep
their spans as written (the reference metrics decide what a reversed span scores); every error
names the file and the line (or the video entry) to fix.

Queries are tidied as both reference loaders do (``parse_query``: runs of white space become one
space, surrounding dots go). Sample ids are stable (``VID#k`` for the k-th query of a video or
line, the ``qid`` for QVHighlights, ``id`` or the line number for ours), so a predictions file
can be resumed and scored later.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jsonio import load_json_text, pair_at
from .records import EvaluationError, Pair, Sample

DATASETS = ("charades-sta", "timelens", "activitynet", "qvhighlights", "jsonl")
ALIASES = {"charades": "charades-sta", "charades_sta": "charades-sta",
           "charades-timelens": "timelens", "activitynet-timelens": "timelens",
           "qvhighlights-timelens": "timelens", "activitynet-captions": "activitynet",
           "activitynet_captions": "activitynet", "anet": "activitynet", "qvh": "qvhighlights",
           "ours": "jsonl"}
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".ts", ".flv")


def dataset_kind(name: str) -> str:
    """The canonical dataset name for ``name`` (aliases such as ``charades-timelens`` too)."""
    key = name.strip().lower()
    kind = ALIASES.get(key, key)
    if kind not in DATASETS:
        raise EvaluationError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)} "
                              f"(or {', '.join(sorted(ALIASES))})")
    return kind


def parse_query(query: str) -> str:
    """``re.sub(r"\\s+", " ", q).strip().strip(".").strip()``, as TimeLens and VideoMind do.

    >>> parse_query("  a person  opens the door. ")
    'a person opens the door'
    """
    return re.sub(r"\s+", " ", query).strip().strip(".").strip()


@dataclass
class Dataset:
    """Samples whose videos were found, and those skipped because theirs was not."""

    kind: str
    annotations: Path
    samples: list[Sample]
    missing: list[Sample] = field(default_factory=list)
    videos: Path | None = None

    @property
    def total(self) -> int:
        return len(self.samples) + len(self.missing)


# ------------------------------------------------------------------------------- readers


def read_annotations(kind: str, path: str | Path, *,
                     durations: dict[str, float] | None = None) -> list[Sample]:
    """Every sample of an annotation file (videos not looked for)."""
    kind = dataset_kind(kind)
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"annotation file {path} does not exist")
    reader = {"charades-sta": _read_charades, "timelens": _read_timelens,
              "activitynet": _read_activitynet, "qvhighlights": _read_qvhighlights,
              "jsonl": _read_jsonl}[kind]
    samples = reader(path)
    if not samples:
        raise EvaluationError(f"{path} holds no {kind} annotations")
    if durations:
        samples = [_with_duration(s, durations) for s in samples]
    return samples


def _with_duration(sample: Sample, durations: dict[str, float]) -> Sample:
    for name in (sample.video, *sample.names):
        if name in durations:
            return sample.with_duration(float(durations[name]))
    return sample


def _read_charades(path: Path) -> list[Sample]:
    samples: list[Sample] = []
    for lineno, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        info, sep, sentence = line.partition("##")
        fields = info.split()
        if not sep or len(fields) != 3:
            raise EvaluationError(
                f"{path}:{lineno}: not a Charades-STA line ('VID START END##sentence'): "
                f"{line[:80]!r}")
        vid, start, end = fields
        where = f"{path}:{lineno}"
        span = pair_at([start, end], where)
        samples.append(Sample(f"{vid}#{len(samples)}", vid, parse_query(sentence), (span,),
                              names=(vid,), where=where))
    return samples


def _read_timelens(path: Path) -> list[Sample]:
    """TimeLens: ``{video_id: {duration, spans, queries}}``."""
    return _read_span_table(path, "TimeLens annotation", ("spans", "queries"),
                            lambda vid: (vid,))


def _read_activitynet(path: Path) -> list[Sample]:
    """ActivityNet Captions: ``{video_id: {duration, timestamps, sentences}}``; the files of
    a video are found with or without its ``v_`` prefix."""
    return _read_span_table(path, "ActivityNet Captions", ("timestamps", "sentences"),
                            lambda vid: (vid, vid[2:]) if vid.startswith("v_")
                            else (vid, f"v_{vid}"))


def _read_span_table(path: Path, kind: str, keys: tuple[str, str],
                     names: Callable[[str], tuple[str, ...]]) -> list[Sample]:
    """One JSON object ``{video_id: {duration, <spans key>: [[s, e], ...], <queries key>:
    [...]}}``: one sample per (span, query) pair."""
    spans_key, queries_key = keys
    data = _json(path)
    if not isinstance(data, dict):
        raise EvaluationError(f"{path}: a {kind} file is one JSON object "
                              f"{{video_id: {{duration, {spans_key}, {queries_key}}}}}")
    samples = []
    for vid, entry in data.items():
        where = f"{path} [{vid!r}]"
        _need(entry, ("duration", spans_key, queries_key), where)
        spans = _list_of(entry[spans_key], spans_key, where, "[start, end] pairs")
        queries = _list_of(entry[queries_key], queries_key, where, "sentences")
        if len(spans) != len(queries):
            raise EvaluationError(f"{where}: {len(spans)} {spans_key} for {len(queries)} "
                                  f"{queries_key}")
        duration = _seconds(entry["duration"], where)
        for k, (span, query) in enumerate(zip(spans, queries, strict=True)):
            samples.append(Sample(f"{vid}#{k}", vid, _query(query, where), (pair_at(span, where),),
                                  duration, names=names(vid), where=f"{where} #{k}"))
    return samples


def _read_qvhighlights(path: Path) -> list[Sample]:
    samples = []
    first_line: dict[str, int] = {}
    for lineno, entry in _jsonl(path):
        where = f"{path}:{lineno}"
        _need(entry, ("qid", "query", "vid"), where)
        if "relevant_windows" not in entry:
            raise EvaluationError(f"{where}: no 'relevant_windows' (the QVHighlights test split "
                                  "has no public ground truth): use highlight_val_release.jsonl")
        qid = _name(entry["qid"], "qid", where)
        if qid in first_line:
            raise EvaluationError(f"{where}: qid {qid!r} is already used on line "
                                  f"{first_line[qid]}; each query needs its own qid")
        first_line[qid] = lineno
        windows = tuple(pair_at(w, where) for w in _list_of(entry["relevant_windows"],
                                                          "relevant_windows", where,
                                                          "[start, end] windows"))
        if not windows:
            raise EvaluationError(f"{where}: 'relevant_windows' is empty")
        duration = _seconds(entry["duration"], where) if entry.get("duration") is not None \
            else None
        vid = _name(entry["vid"], "vid", where)
        samples.append(Sample(qid, vid, _query(entry["query"], where), windows, duration,
                              names=(vid,), where=where))
    return samples


def _read_jsonl(path: Path) -> list[Sample]:
    samples = []
    seen: set[str] = set()
    for lineno, entry in _jsonl(path):
        where = f"{path}:{lineno}"
        _need(entry, ("video", "query", "spans"), where)
        spans = entry["spans"]
        if not isinstance(spans, list) or not spans:
            raise EvaluationError(f"{where}: 'spans' must be a non-empty list of [start, end] "
                                  f"pairs, not {spans!r:.60}")
        sample_id = _name(entry.get("id", lineno), "id", where)
        if sample_id in seen:
            raise EvaluationError(f"{where}: id {sample_id!r} appears twice")
        seen.add(sample_id)
        duration = _seconds(entry["duration"], where) if entry.get("duration") is not None \
            else None
        video = _name(entry["video"], "video", where)
        samples.append(Sample(sample_id, video, _query(entry["query"], where),
                              tuple(_ordered_span(s, where) for s in spans), duration,
                              names=(video,), where=where))
    return samples


def guess_kind(path: str | Path) -> str:
    """The dataset format of an annotation file, from its first entry (for ``eval score``
    when no ``--dataset`` is given)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"annotation file {path} does not exist")
    if path.suffix.lower() == ".txt":
        return "charades-sta"
    if path.suffix.lower() == ".jsonl":
        rows = _jsonl(path)
        first = rows[0][1] if rows else {}
        return "qvhighlights" if "relevant_windows" in first or "qid" in first else "jsonl"
    data = _json(path)
    entry: object = next(iter(data.values()), {}) if isinstance(data, dict) and data else {}
    if isinstance(entry, dict) and "queries" in entry:
        return "timelens"
    if isinstance(entry, dict) and "sentences" in entry:
        return "activitynet"
    raise EvaluationError(f"cannot tell the dataset format of {path}; pass --dataset "
                          f"({', '.join(DATASETS)})")


# ------------------------------------------------------------------------------ durations


def read_durations(path: str | Path) -> dict[str, float]:
    """Video durations from VideoMind's ``durations.json`` (``{vid: seconds}``) or a CSV with
    ``id`` and ``length`` columns (Charades' ``Charades_v1_test.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"durations file {path} does not exist")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "id" not in rows[0] or "length" not in rows[0]:
            raise EvaluationError(f"{path}: a durations CSV needs 'id' and 'length' columns")
        return {row["id"]: _seconds(row["length"], f"{path} [{row['id']}]") for row in rows}
    data = _json(path)
    if not isinstance(data, dict):
        raise EvaluationError(f"{path}: a durations file is one JSON object {{video_id: seconds}}")
    return {str(k): _seconds(v, f"{path} [{k!r}]") for k, v in data.items()}


# --------------------------------------------------------------------------------- videos


class VideoResolver:
    """Finds the file of a video id under ``root``: ``root/NAME`` when the name has a suffix,
    else ``root/NAME.EXT`` for each extension in turn; with ``recursive``, any sub-folder too
    (the folder is listed once). A name that is absolute or leads out of ``root`` is refused
    (:meth:`check`) unless ``allow_outside``."""

    def __init__(self, root: str | Path, *, extensions: Sequence[str] = VIDEO_EXTENSIONS,
                 recursive: bool = False, allow_outside: bool = False) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise EvaluationError(f"video folder {self.root} does not exist")
        self.extensions = tuple(e if e.startswith(".") else f".{e}" for e in extensions)
        self.recursive = recursive
        self.allow_outside = allow_outside
        self._index: dict[str, Path] | None = None

    def check(self, names: Iterable[str], where: str) -> None:
        """Refuse a name that is absolute or climbs out of the video folder (judged on the
        path as written, so links inside the folder still work)."""
        if self.allow_outside:
            return
        base = os.path.abspath(self.root)
        for name in names:
            target = os.path.normpath(os.path.join(base, name))
            if Path(name).is_absolute() or os.path.commonpath([base, target]) != base:
                raise EvaluationError(
                    f"{where}: video {name!r} is outside the video folder {self.root}; move it "
                    "there, or pass --allow-outside-videos to read videos from anywhere")

    def find(self, names: Iterable[str]) -> Path | None:
        names = list(names)
        for name in names:
            direct = Path(name) if Path(name).is_absolute() else self.root / name
            if direct.suffix and direct.is_file():
                return direct
            for ext in self.extensions:
                candidate = self.root / f"{name}{ext}"
                if candidate.is_file():
                    return candidate
        if self.recursive:
            index = self._listing()
            for name in names:
                for key in (name, *(f"{name}{ext}" for ext in self.extensions)):
                    if key in index:
                        return index[key]
        return None

    def _listing(self) -> dict[str, Path]:
        if self._index is None:
            index: dict[str, Path] = {}
            for path in sorted(self.root.rglob("*")):
                if path.is_file() and path.suffix.lower() in self.extensions:
                    rel = path.relative_to(self.root).as_posix()
                    index.setdefault(rel, path)
                    index.setdefault(path.name, path)
                    index.setdefault(path.stem, path)
            self._index = index
        return self._index


def load_dataset(kind: str, annotations: str | Path, videos: str | Path | None = None, *,
                 durations: str | Path | None = None,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS,
                 recursive: bool = False, allow_outside: bool = False) -> Dataset:
    """Read ``annotations`` and find each sample's video under ``videos`` (when given; names
    leading outside it are refused unless ``allow_outside``). Samples whose video is not there
    are kept apart in ``Dataset.missing``, never dropped silently."""
    kind = dataset_kind(kind)
    table = read_durations(durations) if durations else None
    samples = read_annotations(kind, annotations, durations=table)
    if videos is None:
        return Dataset(kind, Path(annotations), samples)
    resolver = VideoResolver(videos, extensions=extensions, recursive=recursive,
                             allow_outside=allow_outside)
    found, missing = [], []
    cache: dict[tuple[str, ...], Path | None] = {}
    for sample in samples:
        names = sample.names or (sample.video,)
        if names not in cache:
            resolver.check(names, sample.where or f"{annotations} [{sample.id}]")
            cache[names] = resolver.find(names)
        path = cache[names]
        if path is None:
            missing.append(sample)
        else:
            found.append(sample.with_path(path))
    return Dataset(kind, Path(annotations), found, missing, resolver.root)


# -------------------------------------------------------------------------------- helpers


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvaluationError(f"{path} is not UTF-8 text: {exc}") from None


def _json(path: Path) -> Any:
    return load_json_text(_text(path), str(path))


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for lineno, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        entry = load_json_text(line, f"{path}:{lineno}")
        if not isinstance(entry, dict):
            raise EvaluationError(f"{path}:{lineno}: each line must be a JSON object")
        rows.append((lineno, entry))
    return rows


def _need(entry: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise EvaluationError(f"{where}: expected an object with {', '.join(keys)}")
    absent = [k for k in keys if k not in entry]
    if absent:
        raise EvaluationError(f"{where}: missing {', '.join(repr(k) for k in absent)}")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise EvaluationError(f"{where}: {value!r} is not a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EvaluationError(f"{where}: {value!r:.60} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise EvaluationError(f"{where}: {value!r} is not a usable number of seconds")
    return seconds


def _list_of(value: Any, key: str, where: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise EvaluationError(f"{where}: {key!r} must be a list of {what}, not {value!r:.60}")
    return value


def _name(value: Any, key: str, where: str) -> str:
    """An id or video name: text or an integer."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise EvaluationError(f"{where}: {key!r} must be a non-empty text or an integer, not "
                              f"{value!r:.60}")
    return str(value)


def _query(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EvaluationError(f"{where}: a query must be non-empty text, not {value!r:.60}")
    return parse_query(value)


def _ordered_span(value: Any, where: str) -> Pair:
    """A ground-truth span of our own format: ``0 <= start <= end``."""
    start, end = pair_at(value, where)
    if start < 0 or end < start:
        raise EvaluationError(f"{where}: span {value!r:.60} is not 0 <= start <= end seconds")
    return (start, end)


