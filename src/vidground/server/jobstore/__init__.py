"""Job stores: where jobs, batches, progress and results live.

``open_store(settings, data_dir)`` picks one from ``VIDGROUND_JOB_STORE``:

- unset: the embedded SQLite file ``<data_dir>/jobs.sqlite3`` (one machine);
- ``postgresql://user:password@host:5432/db``: a PostgreSQL database that front ends and
  ``vidground worker`` processes on many machines share;
- any other value: the path of a SQLite file.

Both behave the same behind :class:`~.base.JobStore` (one test suite runs against both).
"""

from __future__ import annotations

from pathlib import Path

from ...config import Settings
from .base import (
    FINAL_STATES,
    STATES,
    JobFinishedError,
    JobNotFoundError,
    JobQueueFullError,
    JobStore,
    JobStoreUnavailableError,
    to_api,
)
from .migrations import JobStoreVersionError
from .sqlite import SQLiteJobStore

__all__ = ["FINAL_STATES", "STATES", "JobFinishedError", "JobNotFoundError",
           "JobQueueFullError", "JobStore", "JobStoreUnavailableError", "JobStoreVersionError",
           "SQLiteJobStore", "is_postgres_url", "open_store", "to_api"]


def is_postgres_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(("postgresql://", "postgres://"))


def open_store(settings: Settings, data_dir: Path | None = None) -> JobStore:
    """The job store ``settings`` name, opened, checked and migrated."""
    target = settings.job_store
    limit = settings.job_queue_limit
    if is_postgres_url(target):
        from .postgres import PostgresJobStore

        return PostgresJobStore(str(target), queue_limit=limit, lease_s=settings.job_lease_s,
                                pool_size=max(10, settings.workers + 4))
    if target:
        path = Path(str(target).removeprefix("sqlite://")).expanduser()
    else:
        path = Path(data_dir or settings.data_dir).expanduser() / "jobs.sqlite3"
    return SQLiteJobStore(path, queue_limit=limit, lease_s=settings.job_lease_s)
