"""The job store's schema, as numbered steps per database engine.

A store records the version it is at (SQLite: ``PRAGMA user_version``; PostgreSQL: the
``vidground_schema`` table) and, when it opens, applies every later step in one transaction. So
a newer vidground opens a database an older one created; a database newer than this code is
refused (:class:`JobStoreVersionError`) instead of being misread.

Version 1 is the table vidground 0.1 created (SQLite databases from before versioning report
``user_version`` 0; step 1 is ``CREATE … IF NOT EXISTS`` and leaves their rows alone). Version 2
adds the lease: which process runs a job (``owner``) and until when its claim holds
(``lease_until``, seconds since the epoch on the database's clock).
"""

from __future__ import annotations

from ..errors import JobStoreVersionError  # noqa: F401 - defined with the server's other errors

_V1_COLUMNS = """
    id TEXT NOT NULL UNIQUE,
    batch_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    progress {real} NOT NULL DEFAULT 0,
    stage TEXT,
    message TEXT,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    run_token TEXT,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    started_at {real},
    finished_at {real}
"""

MIGRATIONS: dict[str, list[tuple[int, list[str]]]] = {
    "sqlite": [
        (1, ["CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
             + _V1_COLUMNS.format(real="REAL") + ")",
             "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq)",
             "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id)"]),
        (2, ["ALTER TABLE jobs ADD COLUMN owner TEXT",
             "ALTER TABLE jobs ADD COLUMN lease_until REAL",
             "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(status, lease_until)"]),
    ],
    "postgresql": [
        (1, ["CREATE TABLE IF NOT EXISTS jobs (seq BIGSERIAL PRIMARY KEY,"
             + _V1_COLUMNS.format(real="DOUBLE PRECISION") + ")",
             "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq)",
             "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id)"]),
        (2, ["ALTER TABLE jobs ADD COLUMN IF NOT EXISTS owner TEXT",
             "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_until DOUBLE PRECISION",
             "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(status, lease_until)"]),
    ],
}

LATEST = max(version for version, _ in MIGRATIONS["sqlite"])
assert max(version for version, _ in MIGRATIONS["postgresql"]) == LATEST


def pending(dialect: str, current: int, where: str, target: int | None = None
            ) -> list[tuple[int, list[str]]]:
    """The steps that take a database at ``current`` to ``target`` (default: the latest)."""
    target = LATEST if target is None else target
    if current > LATEST:
        raise JobStoreVersionError(
            f"the job store {where} has schema version {current}, but this vidground knows "
            f"versions up to {LATEST}: it was written by a newer vidground. Upgrade vidground "
            "on this machine (every server and worker sharing a store should run the same "
            "version)")
    return [(v, steps) for v, steps in MIGRATIONS[dialect] if current < v <= target]
