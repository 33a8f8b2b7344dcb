"""What every job store does, written once in SQL that SQLite and PostgreSQL both run.

A job is one inference request. States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``
| ``cancelled``. A claim takes the oldest queued job, counts one attempt, gives it a fresh
``run_token`` and a lease (``owner``, ``lease_until``); every later write of that run names the
token, so a run whose job was taken away (its lease expired and another process re-ran it) can
never overwrite the newer run: a result is written once.

The process running jobs renews its leases (:meth:`JobStore.heartbeat`, every third of the
lease). When a process dies, its jobs' leases run out and :meth:`JobStore.reap` (run by every
process that runs jobs) puts them back in the queue, or fails them (``job_interrupted``) once
they were started ``max_attempts`` times. At start, :meth:`JobStore.recover` does the same at
once for jobs of processes on this host that are gone (a restarted server does not wait out
its own leases).

Engines differ only in a few hooks: the transaction, how "now" is spelt, and row locking
(PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a time).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from ..errors import (  # noqa: F401 - defined with the server's other errors
    JobFinishedError,
    JobNotFoundError,
    JobQueueFullError,
    JobStoreUnavailableError,
)
from .monitors import MonitorStore

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
DEFAULT_LEASE_S = 60.0


class Result(Protocol):
    rowcount: int

    def fetchone(self) -> dict[str, Any] | None: ...

    def fetchall(self) -> list[dict[str, Any]]: ...


#: ``q(sql, args)``: run one statement (``?`` placeholders, ``$NOW`` for the database's clock).
Query = Callable[[str, Sequence[Any]], Result]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


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


def _host_id() -> str:
    """This host as an owner id names it: the host name, plus the PID namespace on Linux (two
    containers may share a host name, and both run their main process as pid 1)."""
    name = socket.gethostname().replace(":", "_")
    try:
        return f"{name}~{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore(MonitorStore):
    """All job state behind one interface; subclasses provide the engine (see module doc).
    Live monitors and their alerts live here too (:class:`~.monitors.MonitorStore`).

    Thread-safe. ``queue_limit``: most jobs that may be queued (``None``: no limit);
    ``lease_s``: how long a claim holds without a heartbeat."""

    dialect = ""
    #: Row lock for read-then-write (PostgreSQL: ``FOR UPDATE``; SQLite locks the database).
    for_update = ""

    def __init__(self, *, queue_limit: int | None = None,
                 lease_s: float = DEFAULT_LEASE_S) -> None:
        self.queue_limit = queue_limit
        self.lease_s = float(lease_s)
        self.host = _host_id()
        self.owner = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        #: ``{"ok", "message", "kept_aside"}``: what the integrity check at open found.
        self.integrity: dict[str, Any] = {"ok": True, "message": None, "kept_aside": []}
        #: Test hook: seconds added to the database's clock in this store's statements (its
        #: ``$NOW``), so a test can move one store past a lease instead of sleeping it out.
        #: 0 (always, outside tests) leaves every statement exactly as written.
        self.clock_offset_s = 0.0

    # -- engine hooks ----------------------------------------------------------------------
    def _sql(self, sql: str, now: str) -> str:
        """``sql`` with ``$NOW`` spelt ``now`` (the engine's clock), plus the test offset."""
        offset = float(self.clock_offset_s)
        return sql.replace("$NOW", f"({now} + {offset!r})" if offset else now)

    def _tx(self, fn: Callable[[Query], Any], *, lock_queue: bool = False) -> Any:
        """Run ``fn(q)`` in one transaction; ``lock_queue``: serialise against other inserts
        (so a count and the insert that depends on it cannot interleave)."""
        raise NotImplementedError

    def _read(self, fn: Callable[[Query], Any]) -> Any:
        """Run ``fn(q)`` outside a write transaction (each statement sees committed data)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, for messages (never a password)."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------
    def _requeue_dead(self, q: Query, cond: str, args: Sequence[Any]) -> tuple[int, int]:
        """Running jobs matching ``cond``: cancelled if that was asked, failed once they used
        every attempt, else queued again. Returns (requeued, failed)."""
        error = json.dumps({"code": "job_interrupted", "message": (
            "the process running this job stopped (or lost contact with the job store) on "
            "every attempt; giving up")})
        clear = "run_token=NULL, owner=NULL, lease_until=NULL, updated_at=$NOW"
        running = f"status='running' AND ({cond})"
        q(f"UPDATE jobs SET status='cancelled', message='cancelled', finished_at=$NOW, {clear} "
          f"WHERE {running} AND cancel_requested=1", args)
        failed = q(f"UPDATE jobs SET status='failed', error=?, finished_at=$NOW, "
                   f"message='interrupted too often', {clear} WHERE {running} "
                   "AND attempts >= max_attempts", [error, *args]).rowcount
        requeued = q(f"UPDATE jobs SET status='queued', stage=NULL, progress=0, "
                     f"message='interrupted; queued again', {clear} WHERE {running}",
                     args).rowcount
        return requeued, failed

    def recover(self) -> tuple[int, int]:
        """At start: jobs whose lease ran out, jobs from before leases existed, and jobs of
        processes on this host that are gone go back to the queue (or fail after their last
        attempt). Returns (requeued, failed)."""
        owners = self._read(lambda q: [r["owner"] for r in q(
            "SELECT DISTINCT owner FROM jobs WHERE status='running' AND owner IS NOT NULL",
            ()).fetchall()])
        dead = [o for o in owners if self._owner_gone(o)]
        marks = ", ".join("?" for _ in dead)
        cond = "lease_until IS NULL OR lease_until < $NOW" + (
            f" OR owner IN ({marks})" if dead else "")
        return self._tx(lambda q: self._requeue_dead(q, cond, dead))

    def _owner_gone(self, owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid_text, _, _ = rest.partition(":")
        if host != self.host or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        return (pid == os.getpid() and owner != self.owner) or not _pid_alive(pid)

    def reap(self) -> tuple[int, int]:
        """Jobs whose lease expired (their process died or hung): queued again or failed."""
        return self._tx(lambda q: self._requeue_dead(q, "lease_until < $NOW", ()))

    def heartbeat(self, tokens: Collection[str]) -> int:
        """Renew the leases of the runs ``tokens`` (jobs this instance is running now);
        returns how many it still holds."""
        if not tokens:
            return 0
        marks = ", ".join("?" for _ in tokens)
        return self._tx(lambda q: q(
            "UPDATE jobs SET lease_until=$NOW + ? WHERE owner=? AND status='running' "
            f"AND run_token IN ({marks})", (self.lease_s, self.owner, *tokens)).rowcount)

    # -- writing ---------------------------------------------------------------------------
    def create(self, requests: list[dict[str, Any]], *, max_attempts: int,
               batch: bool = False) -> tuple[str | None, list[str]]:
        """Queue ``requests`` (all or none); :class:`JobQueueFullError` past the limit."""
        batch_id = secrets.token_hex(12) if batch else None
        ids = [secrets.token_hex(12) for _ in requests]
        rows = [(job_id, batch_id, max(1, max_attempts), json.dumps(req))
                for job_id, req in zip(ids, requests, strict=True)]

        def work(q: Query) -> None:
            if self.queue_limit is not None:
                queued = int(q("SELECT COUNT(*) AS n FROM jobs WHERE status='queued'",
                               ()).fetchone()["n"])  # type: ignore[index]
                if queued + len(rows) > self.queue_limit:
                    raise JobQueueFullError(
                        f"{queued} jobs are already queued (limit {self.queue_limit}); "
                        "wait for some to finish")
            for row in rows:
                q("INSERT INTO jobs (id, batch_id, status, max_attempts, request, created_at, "
                  "updated_at, message) VALUES (?, ?, 'queued', ?, ?, $NOW, $NOW, 'waiting')",
                  row)

        self._tx(work, lock_queue=True)
        return batch_id, ids

    def claim(self) -> dict[str, Any] | None:
        """Take the oldest queued job: ``running``, attempts + 1, a new run token, a lease."""
        token = secrets.token_hex(8)
        lock = f"{self.for_update} SKIP LOCKED" if self.for_update else ""
        sql = ("UPDATE jobs SET status='running', attempts=attempts+1, run_token=?, owner=?, "
               "lease_until=$NOW + ?, progress=0, stage='queued', message='starting', "
               "started_at=$NOW, updated_at=$NOW WHERE id = (SELECT id FROM jobs "
               f"WHERE status='queued' ORDER BY seq LIMIT 1 {lock}) "
               "AND status='queued' RETURNING *")
        rows = self._tx(lambda q: q(sql, (token, self.owner, self.lease_s)).fetchall())
        return dict(rows[0]) if rows else None

    def progress(self, job_id: str, token: str, fraction: float, stage: str,
                 message: str) -> bool:
        """Record progress (and renew the lease); False when the job was cancelled or taken
        away from this run."""
        return self._tx(lambda q: q(
            "UPDATE jobs SET progress=?, stage=?, message=?, updated_at=$NOW, "
            "lease_until=$NOW + ? WHERE id=? AND run_token=? AND status='running' "
            "AND cancel_requested=0",
            (fraction, stage, message, self.lease_s, job_id, token)).rowcount) == 1

    def finish(self, job_id: str, token: str, status: str, *, result: Any = None,
               error: dict[str, Any] | None = None) -> bool:
        """End the run ``token``; False (nothing written) when it no longer owns the job."""
        # a finished job's progress is whole whatever its outcome; the stage says which
        done = "progress=1.0, stage='done', " if status == "succeeded" else \
            f"progress=1.0, stage='{status}', " if status in ("failed", "cancelled") else ""
        return self._tx(lambda q: q(
            "UPDATE jobs SET status=?, result=?, error=?, run_token=NULL, owner=NULL, "
            f"lease_until=NULL, updated_at=$NOW, finished_at=$NOW, {done}message=? "
            "WHERE id=? AND run_token=? AND status='running'",
            (status, None if result is None else json.dumps(result),
             None if error is None else json.dumps(error), status, job_id, token)
        ).rowcount) == 1

    def requeue(self, job_id: str, token: str, error: dict[str, Any]) -> bool:
        """Give a failed attempt back to the queue (transient backend errors)."""
        return self._tx(lambda q: q(
            "UPDATE jobs SET status='queued', run_token=NULL, owner=NULL, lease_until=NULL, "
            "error=?, updated_at=$NOW, message='retrying after an error' WHERE id=? "
            "AND run_token=? AND status='running'",
            (json.dumps(error), job_id, token)).rowcount) == 1

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once; flag a running one. 404 unknown, 409 finished."""

        def work(q: Query) -> None:
            row = q(f"SELECT status FROM jobs WHERE id=? {self.for_update}",
                    (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no job with id {job_id}")
            if row["status"] == "queued":
                q("UPDATE jobs SET status='cancelled', updated_at=$NOW, finished_at=$NOW, "
                  "cancel_requested=1, message='cancelled' WHERE id=?", (job_id,))
            elif row["status"] == "running":
                q("UPDATE jobs SET cancel_requested=1, updated_at=$NOW, "
                  "message='cancelling' WHERE id=?", (job_id,))
            else:
                raise JobFinishedError(f"job {job_id} has already {row['status']}; "
                                       "there is nothing to cancel")

        self._tx(work)
        return self.get(job_id)

    # -- reading ---------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        row = self._read(lambda q: q("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())
        if row is None:
            raise JobNotFoundError(f"no job with id {job_id}")
        return to_api(dict(row))

    def cancel_requested(self, job_id: str) -> bool:
        row = self._read(lambda q: q("SELECT cancel_requested FROM jobs WHERE id=?",
                                     (job_id,)).fetchone())
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

        def read(q: Query) -> tuple[int, list[dict[str, Any]]]:
            total = q(f"SELECT COUNT(*) AS n FROM jobs{clause}", args).fetchone()
            rows = q(f"SELECT * FROM jobs{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                     [*args, limit, offset]).fetchall()
            return int(total["n"]) if total else 0, rows

        total, rows = self._read(read)
        return [to_api(dict(r)) for r in rows], total

    def videos_in_use(self) -> set[str]:
        """``video_id`` of every queued or running job (their uploads must stay)."""
        rows = self._read(lambda q: q("SELECT request FROM jobs WHERE status IN "
                                      "('queued', 'running')", ()).fetchall())
        ids = {(_loads(r["request"]) or {}).get("video_id") for r in rows}
        return {i for i in ids if isinstance(i, str)}

    def counts(self) -> dict[str, int]:
        rows = self._read(lambda q: q("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status",
                                      ()).fetchall())
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return counts
