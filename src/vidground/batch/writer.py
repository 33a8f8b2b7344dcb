"""Where a batch's results go: ``results.jsonl`` appended as each row finishes (flushed, so a
killed run keeps what it wrote), and at the end one row per question in ``results.jsonl`` and
``results.parquet`` (manifest order) plus ``summary.json``.

A record: ``key``, ``index``, ``video``, ``query``, ``options``, ``status`` (``ok`` or
``error``), ``response`` (``Grounding.to_response()``, the API's object) or ``error``
(``{"code", "message"}``), ``elapsed_s``, ``worker`` (host and pid that answered). In Parquet,
``options``, ``response`` and ``error`` are JSON text columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

RESULTS = "results.jsonl"
PARQUET = "results.parquet"
SUMMARY = "summary.json"


class ResultWriter:
    """Appends records to ``out/results.jsonl``; knows which keys are done (``ok``) from
    earlier runs, and writes each key at most once per run."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / RESULTS
        _drop_torn_tail(self.path)
        self.done: set[str] = set()
        for rec in _read(self.path):
            if rec.get("status") == "ok":
                self.done.add(rec["key"])
        self.written: set[str] = set()
        self._f: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> bool:
        """Append ``record``; False (nothing written) when its key was already written by this
        run (a retried Ray task may deliver a row twice)."""
        key = record["key"]
        if key in self.written:
            return False
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._f.flush()
        self.written.add(key)
        if record.get("status") == "ok":
            self.done.add(key)
        return True

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def finish(self, keys_in_order: list[str]) -> list[dict[str, Any]]:
        """Rewrite ``results.jsonl`` with one record per key of this manifest (an ``ok`` record
        wins over errors, the latest of each kind wins; records of keys not in the manifest are
        kept after them), write ``results.parquet``; return the manifest's records."""
        self.close()
        best: dict[str, dict[str, Any]] = {}
        for rec in _read(self.path):
            old = best.get(rec["key"])
            if old is None or rec.get("status") == "ok" or old.get("status") != "ok":
                best[rec["key"]] = rec
        ours = [best[k] for k in dict.fromkeys(keys_in_order) if k in best]
        wanted = set(keys_in_order)
        others = [r for k, r in best.items() if k not in wanted]
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in ours + others:
                f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, self.path)
        write_parquet(ours + others, self.out / PARQUET)
        return ours


def write_parquet(records: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def text(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, default=str)

    table = pa.table({
        "key": [r["key"] for r in records],
        "index": pa.array([r.get("index") for r in records], pa.int64()),
        "video": [r.get("video") for r in records],
        "query": [r.get("query") for r in records],
        "options": [text(r.get("options")) for r in records],
        "status": [r.get("status") for r in records],
        "response": pa.array([text(r.get("response")) for r in records], pa.string()),
        "error": pa.array([text(r.get("error")) for r in records], pa.string()),
        "elapsed_s": pa.array([r.get("elapsed_s") for r in records], pa.float64()),
    })
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _read(path: Path) -> list[dict[str, Any]]:
    """The records of a results file; a torn last line (a killed run) is ignored."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "key" in rec:
            out.append(rec)
    return out


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a run killed mid-write), so appends start on a
    line of their own."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
