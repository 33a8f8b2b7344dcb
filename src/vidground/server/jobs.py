"""Persistent jobs: a SQLite file (WAL) and the code that runs them on the shared executor.

A job is one inference request. States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``
| ``cancelled``. Workers claim the oldest queued job atomically (``BEGIN IMMEDIATE``), each claim
counts one attempt and gets a fresh ``run_token``; every later write of that run names the
token, so a stale run can never overwrite a newer one.

Crash safety: every state change is committed before it is acted on. After a SIGKILL, jobs left
``running`` are found at the next start (:meth:`JobStore.recover`) and go back to ``queued``, or
to ``failed`` (code ``job_interrupted``) once they have been started ``max_attempts`` times.

Cancelling: a queued job becomes ``cancelled`` at once. A running job is flagged
(``cancel_requested``); the pipeline's progress callback sees the flag at its next progress
event (frames decoded, model call finished...) and raises :class:`JobCancelled`, and the job ends
``cancelled``. A model call already in progress is not interrupted; it finishes first.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import BackendError, ModelNotAvailableError, VidgroundError
from ..progress import ProgressEvent

log = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")

#: Where each pipeline stage sits in a job's overall progress (start, end).
STAGE_SPANS = {"probe": (0.0, 0.05), "decode": (0.05, 0.35), "model": (0.35, 0.75),
               "refine": (0.75, 0.99), "done": (1.0, 1.0)}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    batch_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT,
    message TEXT,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    run_token TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id);
"""


class JobCancelled(Exception):
    """Raised from the progress callback to stop a job that was cancelled while running."""


class JobNotFoundError(VidgroundError):
    code = "job_not_found"
    http_status = 404


class JobFinishedError(VidgroundError):
    code = "job_finished"
    http_status = 409


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class JobStore:
    """All job state, in one SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    # -- lifecycle -------------------------------------------------------------------------
    def recover(self) -> tuple[int, int]:
        """Jobs a killed server left ``running``: back to ``queued``, or ``failed`` once they
        used all their attempts. Returns (requeued, failed)."""
        now = time.time()
        error = json.dumps({"code": "job_interrupted", "message": (
            "the server stopped while this job was running, on every attempt; giving up")})

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            db.execute("UPDATE jobs SET status='cancelled', run_token=NULL, message='cancelled', "
                       "updated_at=?, finished_at=? WHERE status='running' "
                       "AND cancel_requested=1", (now, now))
            failed = db.execute(
                "UPDATE jobs SET status='failed', error=?, run_token=NULL, updated_at=?, "
                "finished_at=?, message='interrupted too often' WHERE status='running' "
                "AND attempts >= max_attempts", (error, now, now)).rowcount
            requeued = db.execute(
                "UPDATE jobs SET status='queued', run_token=NULL, stage=NULL, progress=0, "
                "message='interrupted; queued again', updated_at=? WHERE status='running'",
                (now,)).rowcount
            return requeued, failed

        return self._tx(work)

    # -- writing ---------------------------------------------------------------------------
    def create(self, requests: list[dict[str, Any]], *, max_attempts: int,
               batch: bool = False) -> tuple[str | None, list[str]]:
        batch_id = secrets.token_hex(12) if batch else None
        now = time.time()
        ids = [secrets.token_hex(12) for _ in requests]

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO jobs (id, batch_id, status, max_attempts, request, created_at, "
                "updated_at, message) VALUES (?, ?, 'queued', ?, ?, ?, ?, 'waiting')",
                [(job_id, batch_id, max(1, max_attempts), json.dumps(req), now, now)
                 for job_id, req in zip(ids, requests, strict=True)])

        self._tx(work)
        return batch_id, ids

    def claim(self) -> dict[str, Any] | None:
        """Take the oldest queued job: ``running``, attempts + 1, a new run token."""
        token = secrets.token_hex(8)
        now = time.time()

        def work(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY seq LIMIT 1"
                             ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status='running', attempts=attempts+1, run_token=?, "
                       "progress=0, stage='queued', message='starting', started_at=?, "
                       "updated_at=? WHERE id=? AND status='queued'",
                       (token, now, now, row["id"]))
            claimed = db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()
            return dict(claimed)

        return self._tx(work)

    def progress(self, job_id: str, token: str, fraction: float, stage: str,
                 message: str) -> bool:
        """Record progress; returns False when the job was cancelled (or taken away)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET progress=?, stage=?, message=?, updated_at=? "
                "WHERE id=? AND run_token=? AND status='running' AND cancel_requested=0",
                (fraction, stage, message, time.time(), job_id, token))
            return cur.rowcount == 1

    def finish(self, job_id: str, token: str, status: str, *, result: Any = None,
               error: dict[str, Any] | None = None) -> bool:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status=?, result=?, error=?, run_token=NULL, updated_at=?, "
                "finished_at=?, progress=CASE WHEN ?='succeeded' THEN 1.0 ELSE progress END, "
                "stage=CASE WHEN ?='succeeded' THEN 'done' ELSE stage END, message=? "
                "WHERE id=? AND run_token=? AND status='running'",
                (status, None if result is None else json.dumps(result),
                 None if error is None else json.dumps(error), now, now, status, status,
                 status, job_id, token))
            return cur.rowcount == 1

    def requeue(self, job_id: str, token: str, error: dict[str, Any]) -> bool:
        """Give a failed attempt back to the queue (transient backend errors)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status='queued', run_token=NULL, error=?, updated_at=?, "
                "message='retrying after an error' WHERE id=? AND run_token=? "
                "AND status='running'",
                (json.dumps(error), time.time(), job_id, token))
            return cur.rowcount == 1

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once; flag a running one. 404 unknown, 409 finished."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no job with id {job_id}")
            if row["status"] == "queued":
                db.execute("UPDATE jobs SET status='cancelled', updated_at=?, finished_at=?, "
                           "cancel_requested=1, message='cancelled' WHERE id=?",
                           (now, now, job_id))
            elif row["status"] == "running":
                db.execute("UPDATE jobs SET cancel_requested=1, updated_at=?, "
                           "message='cancelling' WHERE id=?", (now, job_id))
            else:
                raise JobFinishedError(f"job {job_id} has already {row['status']}; "
                                       "there is nothing to cancel")

        self._tx(work)
        return self.get(job_id)

    # -- reading ---------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id}")
        return to_api(dict(row))

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM jobs WHERE id=?",
                                   (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def list(self, *, limit: int = 50, offset: int = 0, status: str | None = None,
             batch_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
        where, args = [], []
        if status:
            where.append("status=?")
            args.append(status)
        if batch_id:
            where.append("batch_id=?")
            args.append(batch_id)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM jobs{clause}", args).fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM jobs{clause} ORDER BY seq DESC LIMIT ? "
                                    "OFFSET ?", [*args, limit, offset]).fetchall()
        return [to_api(dict(r)) for r in rows], int(total)

    def videos_in_use(self) -> set[str]:
        """``video_id`` of every queued or running job (their uploads must stay)."""
        with self._lock:
            rows = self._db.execute("SELECT request FROM jobs WHERE status IN "
                                    "('queued', 'running')").fetchall()
        ids = {(_loads(r["request"]) or {}).get("video_id") for r in rows}
        return {i for i in ids if isinstance(i, str)}

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"
                                    ).fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return counts


def to_api(row: dict[str, Any]) -> dict[str, Any]:
    """A database row as the API's job object."""
    return {
        "job_id": row["id"],
        "batch_id": row["batch_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "cancel_requested": bool(row["cancel_requested"]),
        "progress": {"fraction": round(float(row["progress"] or 0.0), 4),
                     "stage": row["stage"], "message": row["message"]},
        "request": _loads(row["request"]),
        "result": _loads(row["result"]),
        "error": _loads(row["error"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    }


def overall_fraction(event: ProgressEvent) -> float:
    lo, hi = STAGE_SPANS.get(event.stage, (0.0, 0.99))
    inner = event.fraction if event.fraction is not None else 0.0
    return round(lo + (hi - lo) * inner, 4)


Infer = Callable[[dict[str, Any], Callable[[ProgressEvent], None]], dict[str, Any]]


class JobRunner:
    """Turns claimed jobs into executor tasks (``executor.job_source = runner.next_task``)."""

    def __init__(self, store: JobStore, infer: Infer, *, progress_interval_s: float = 0.25
                 ) -> None:
        self.store = store
        self.infer = infer
        self.progress_interval_s = progress_interval_s

    def next_task(self) -> Callable[[], None] | None:
        row = self.store.claim()
        if row is None:
            return None
        return lambda: self.run(row)

    def run(self, row: dict[str, Any]) -> None:
        job_id, token = row["id"], row["run_token"]
        last = [0.0, ""]

        def on_progress(event: ProgressEvent) -> None:
            now = time.monotonic()
            if event.stage == last[1] and now - last[0] < self.progress_interval_s:
                if self.store.cancel_requested(job_id):
                    raise JobCancelled(job_id)
                return
            last[0], last[1] = now, event.stage
            if not self.store.progress(job_id, token, overall_fraction(event), event.stage,
                                       event.message):
                raise JobCancelled(job_id)

        if row["cancel_requested"]:
            self.store.finish(job_id, token, "cancelled")
            return
        try:
            result = self.infer(_loads(row["request"]), on_progress)
        except JobCancelled:
            self.store.finish(job_id, token, "cancelled")
        except ModelNotAvailableError as exc:
            self.store.finish(job_id, token, "failed", error=error_body(exc))
        except BackendError as exc:
            if row["attempts"] < row["max_attempts"]:
                log.warning("job %s: backend error, will retry: %s", job_id, exc.message)
                self.store.requeue(job_id, token, error_body(exc))
            else:
                self.store.finish(job_id, token, "failed", error=error_body(exc))
        except VidgroundError as exc:
            self.store.finish(job_id, token, "failed", error=error_body(exc))
        except Exception:  # noqa: BLE001 - recorded; details stay in the server log
            log.exception("job %s failed", job_id)
            self.store.finish(job_id, token, "failed", error={
                "code": "internal_error",
                "message": "the job failed because of an internal error; see the server log"})
        else:
            if self.store.cancel_requested(job_id):
                self.store.finish(job_id, token, "cancelled")
            else:
                self.store.finish(job_id, token, "succeeded", result=result)


def error_body(exc: VidgroundError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "status": exc.http_status}
