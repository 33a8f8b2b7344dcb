"""The rows of a batch: what to ask about which video, read from a manifest or a folder.

A manifest is JSONL (one object per line), CSV (a header row) or Parquet, with the columns
``video`` (a path, relative paths resolved against the manifest's folder), ``query`` and,
optionally, ``options`` (an object in JSONL, a JSON object as text in CSV and Parquet; the
API's ``options``). A folder gives one row per video file in it (recursively) for one question.

Every row has a key: the video's identity (:func:`vidground.cache.identity.file_identity`: size,
modification time and sampled bytes, not the path), the query and the options with defaults
filled in. Two rows asking the same about the same file have the same key, wherever it lies
(a moved archive keeps its keys); a result already written under a
key is not asked again (``vidground batch`` resumes).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionsError, VidgroundError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".ts", ".mts", ".m2ts",
                    ".flv", ".mpg", ".mpeg", ".wmv", ".3gp")
MANIFEST_FORMATS = (".jsonl", ".json", ".csv", ".parquet")


class ManifestError(VidgroundError):
    """The manifest cannot be read, or a row lacks ``video`` or ``query``."""

    code = "invalid_manifest"


@dataclass(frozen=True)
class BatchRow:
    """One question about one video, in manifest order (``index``)."""

    index: int
    video: str
    query: str
    options: dict[str, Any] = field(default_factory=dict)


def read_rows(source: str | Path, query: str | None = None,
              options: dict[str, Any] | None = None) -> list[BatchRow]:
    """The rows of a manifest file, or of a folder of videos asked ``query``. ``options`` are
    defaults under every row's own options."""
    path = Path(source)
    base = dict(options or {})
    if path.is_dir():
        if not query:
            raise ManifestError(f"{path} is a folder: give the question with --query.")
        videos = sorted(p for p in path.rglob("*")
                        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise ManifestError(f"no video files in {path} ({', '.join(VIDEO_EXTENSIONS)}).")
        return [BatchRow(i, str(p.resolve()), query, dict(base)) for i, p in enumerate(videos)]
    if query:
        raise ManifestError("--query is for a folder of videos; a manifest has a query column.")
    if not path.is_file():
        raise ManifestError(f"no manifest or folder at {path}.")
    records = _records(path)
    rows: list[BatchRow] = []
    for i, rec in enumerate(records):
        video, text = rec.get("video"), rec.get("query")
        if not isinstance(video, str) or not video or not isinstance(text, str) or not text:
            raise ManifestError(f"{path.name}, row {i + 1}: 'video' and 'query' must be "
                                f"non-empty text, got {video!r} and {text!r}.")
        own = rec.get("options")
        if isinstance(own, str):
            try:
                own = json.loads(own) if own.strip() else {}
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path.name}, row {i + 1}: options is not JSON: "
                                    f"{exc}") from None
        if own is None:
            own = {}
        if not isinstance(own, dict):
            raise ManifestError(f"{path.name}, row {i + 1}: options must be an object.")
        full = Path(video) if os.path.isabs(video) else path.parent / video
        rows.append(BatchRow(i, str(full.resolve()), text, {**base, **own}))
    if not rows:
        raise ManifestError(f"{path} has no rows.")
    return rows


def _records(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ManifestError(f"{path.name}, line {n}: not JSON: {exc}") from None
                if not isinstance(rec, dict):
                    raise ManifestError(f"{path.name}, line {n}: a row must be an object.")
                out.append(rec)
        return out
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return [dict(r) for r in csv.DictReader(f)]
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ManifestError("reading Parquet needs pyarrow: pip install "
                                "'vidground[ray]'") from None
        return pq.read_table(path).to_pylist()
    raise ManifestError(f"{path.name}: a manifest is {', '.join(MANIFEST_FORMATS)}, "
                        "or give a folder of videos with --query.")


def canonical_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options with every default filled in (raises :class:`OptionsError`)."""
    from ..options import LocateOptions

    return LocateOptions.from_mapping(options).to_mapping()


def video_identity(video: str) -> str:
    """The content identity of the file, or ``missing:<path>`` when it cannot be read (the row
    then fails, and is asked again on the next run)."""
    from ..cache.identity import file_identity

    try:
        return file_identity(video)
    except (OSError, VidgroundError):
        return f"missing:{os.path.abspath(video)}"


def row_key(identity: str, query: str, options: dict[str, Any]) -> str:
    """The resume key: video identity + query + options (canonical when they are valid)."""
    try:
        opts = canonical_options(options)
    except OptionsError:
        opts = options
    blob = json.dumps([identity, query, opts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
