"""The embedded job store: one SQLite file in WAL mode (the default, one machine).

Several processes on one machine may share the file (a server and ``vidground worker``s);
writers take turns (``BEGIN IMMEDIATE``). Do not put it on a network file system: for machines
that share a queue use the PostgreSQL store.

At open the store checks itself (:mod:`.integrity`); a damaged database or log is renamed
aside (kept, never deleted), the store starts empty, and :attr:`integrity` says so — as long
as kept-aside files lie next to the database, so that an empty queue is never reported as
healthy. :meth:`close` checkpoints the log into the database file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import DEFAULT_LEASE_S, JobStore, Query, Result
from .integrity import keep_aside, kept_aside, wal_problem
from .migrations import pending

log = logging.getLogger("vidground.server.jobstore")

NOW = "(julianday('now') - 2440587.5) * 86400.0"


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


class SQLiteJobStore(JobStore):
    """All job state in one SQLite file. Thread-safe (one connection behind a lock)."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, queue_limit: int | None = None,
                 lease_s: float = DEFAULT_LEASE_S, check: bool = True) -> None:
        super().__init__(queue_limit=queue_limit, lease_s=lease_s)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        problem = wal_problem(self.path.with_name(self.path.name + "-wal")) if check else None
        if problem is None:
            try:
                self._db = self._connect()
                problem = self._check() if check else None
            except sqlite3.DatabaseError as exc:
                problem = f"SQLite cannot read it ({exc})"
            if problem is not None:
                self._close_quietly()
        if problem is not None:
            moved = keep_aside(self.path)
            log.error("!!! THE JOB STORE %s IS DAMAGED: %s. Its files were kept aside as %s; "
                      "starting with an EMPTY job store. Jobs in the damaged files were not "
                      "recovered.", self.path, problem, ", ".join(str(p) for p in moved))
            self._db = self._connect()
        aside = kept_aside(self.path)
        if aside:
            found = (f"the job store was damaged ({problem}) and started empty"
                     if problem else "an earlier start found the job store damaged")
            self.integrity = {
                "ok": False,
                "message": f"{found}; the damaged files are kept aside (jobs in them were not "
                           "recovered). Inspect or restore them, then delete them to clear "
                           "this warning.",
                "kept_aside": [str(p) for p in aside]}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                             timeout=30.0)
        db.row_factory = _dict_row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        self._db = db
        self._migrate()
        return db

    def _check(self) -> str | None:
        rows = [r["integrity_check"] for r in self._db.execute(
            "PRAGMA integrity_check(20)").fetchall()]
        return None if rows == ["ok"] else "integrity check: " + "; ".join(rows)[:500]

    def _migrate(self, target: int | None = None) -> None:
        def work(q: Query) -> None:
            current = int(q("PRAGMA user_version", ()).fetchone()["user_version"])  # type: ignore[index]
            for version, steps in pending("sqlite", current, f"{self.path}", target):
                for step in steps:
                    q(step, ())
                q(f"PRAGMA user_version = {int(version)}", ())

        self._tx(work)

    def _close_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self._db.close()

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def close(self) -> None:
        """Checkpoint the log into the database file and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("checkpointing %s at close failed: %s", self.path, exc)
            self._db.close()

    def _q(self, sql: str, args: Sequence[Any] = ()) -> Result:
        return self._db.execute(self._sql(sql, NOW), tuple(args))  # type: ignore[return-value]

    def _tx(self, fn: Callable[[Query], Any], *, lock_queue: bool = False) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock: one writer at a time
            try:
                out = fn(self._q)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def _read(self, fn: Callable[[Query], Any]) -> Any:
        with self._lock:
            return fn(self._q)
