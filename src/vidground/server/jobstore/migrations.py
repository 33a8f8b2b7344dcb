"""The job store's schema, as numbered steps per database engine.

A store records the version it is at (SQLite: ``PRAGMA user_version``; PostgreSQL: the
``vidground_schema`` table) and, when it opens, applies every later step in one transaction. So
a newer vidground opens a database an older one created; a database newer than this code is
refused (:class:`JobStoreVersionError`) instead of being misread.

Version 1 is the table vidground 0.1 created (SQLite databases from before versioning report
``user_version`` 0; step 1 is ``CREATE … IF NOT EXISTS`` and leaves their rows alone). Version 2
adds the lease: which process runs a job (``owner``) and until when its claim holds
(``lease_until``, seconds since the epoch on the database's clock). Version 3 adds live
monitors (``monitors``: what to watch, who runs it under a lease, its last state and resume
checkpoint) and their alerts (``monitor_alerts``: one row per event, unique per monitor, event
id and kind, with what each sink made of it).
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

_MONITORS = """CREATE TABLE IF NOT EXISTS monitors (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    owner TEXT,
    run_token TEXT,
    lease_until {real},
    state TEXT,
    checkpoint TEXT,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL)"""

_ALERTS = """CREATE TABLE IF NOT EXISTS monitor_alerts (
    seq {serial} PRIMARY KEY{auto},
    monitor_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    deliveries TEXT NOT NULL DEFAULT '{{}}',
    pending INTEGER NOT NULL DEFAULT 1,
    created_at {real} NOT NULL,
    UNIQUE (monitor_id, event_id, kind))"""


def _v3(real: str, serial: str, auto: str) -> list[str]:
    return [_MONITORS.format(real=real),
            "CREATE INDEX IF NOT EXISTS monitors_lease ON monitors(lease_until)",
            _ALERTS.format(real=real, serial=serial, auto=auto),
            "CREATE INDEX IF NOT EXISTS monitor_alerts_monitor ON monitor_alerts(monitor_id, seq)",
            "CREATE INDEX IF NOT EXISTS monitor_alerts_pending ON monitor_alerts(monitor_id, "
            "pending)"]


MIGRATIONS: dict[str, list[tuple[int, list[str]]]] = {
    "sqlite": [
        (1, ["CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
             + _V1_COLUMNS.format(real="REAL") + ")",
             "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq)",
             "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id)"]),
        (2, ["ALTER TABLE jobs ADD COLUMN owner TEXT",
             "ALTER TABLE jobs ADD COLUMN lease_until REAL",
             "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(status, lease_until)"]),
        (3, _v3("REAL", "INTEGER", " AUTOINCREMENT")),
    ],
    "postgresql": [
        (1, ["CREATE TABLE IF NOT EXISTS jobs (seq BIGSERIAL PRIMARY KEY,"
             + _V1_COLUMNS.format(real="DOUBLE PRECISION") + ")",
             "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq)",
             "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id)"]),
        (2, ["ALTER TABLE jobs ADD COLUMN IF NOT EXISTS owner TEXT",
             "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_until DOUBLE PRECISION",
             "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(status, lease_until)"]),
        (3, _v3("DOUBLE PRECISION", "BIGSERIAL", "")),
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
