"""The shared job store: PostgreSQL (``VIDGROUND_JOB_STORE=postgresql://user:pw@host/db``).

Every ``vidground serve`` front end and ``vidground worker`` on any machine points at the same
database. Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` (workers never wait on each other's
rows), times and leases use the database's clock (machines' clocks may differ), inserts that
check the queue limit take a transaction-level advisory lock, and the schema is migrated under
an advisory lock (two processes starting at once do not both migrate). Connections come from a
small pool (psycopg 3, ``psycopg_pool``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import VidgroundError
from .base import DEFAULT_LEASE_S, JobStore, JobStoreUnavailableError, Query, Result
from .migrations import pending

log = logging.getLogger("vidground.server.jobstore")

NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
#: Advisory lock keys (any constant bigint; "vidg" and "vidm" in ASCII).
QUEUE_LOCK = 0x76696467
MIGRATE_LOCK = 0x7669646D


class PostgresJobStore(JobStore):
    """All job state in a PostgreSQL database shared by every front end and worker."""

    dialect = "postgresql"
    for_update = "FOR UPDATE"

    def __init__(self, url: str, *, queue_limit: int | None = None,
                 lease_s: float = DEFAULT_LEASE_S, pool_size: int = 8,
                 connect_timeout_s: float = 15.0) -> None:
        super().__init__(queue_limit=queue_limit, lease_s=lease_s)
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise VidgroundError("the PostgreSQL job store needs psycopg 3: pip install "
                                 "'vidground[postgres]'") from None
        self._errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,
                                                         psycopg.InterfaceError, PoolTimeout)
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise VidgroundError(f"VIDGROUND_JOB_STORE is not a valid PostgreSQL URL: {exc}"
                                 ) from None
        self._where = (f"PostgreSQL database {info.get('dbname', '?')} on "
                       f"{info.get('host', 'localhost')}:{info.get('port', 5432)}")
        try:  # one direct attempt first: its error says why (refused, auth, no database)
            psycopg.connect(url, connect_timeout=max(1, int(connect_timeout_s))).close()
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split()) or "no reason given"
            raise JobStoreUnavailableError(
                f"cannot connect to the job store ({self._where}): {reason} (check the server "
                "and the URL in VIDGROUND_JOB_STORE)") from None
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max(2, pool_size), open=False, name="vidground-jobs",
            kwargs={"autocommit": True, "row_factory": dict_row}, timeout=connect_timeout_s)
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout:
            self._pool.close()
            raise JobStoreUnavailableError(
                f"cannot connect to the job store ({self._where}) within "
                f"{connect_timeout_s:g} s: is the server running and the URL in "
                "VIDGROUND_JOB_STORE right?") from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def describe(self) -> str:
        return self._where

    def _migrate(self, target: int | None = None) -> None:
        def work(q: Query) -> None:
            q("SELECT pg_advisory_xact_lock(?)", (MIGRATE_LOCK,))
            q("CREATE TABLE IF NOT EXISTS vidground_schema (version INTEGER NOT NULL)", ())
            row = q("SELECT max(version) AS v FROM vidground_schema", ()).fetchone()
            current = int(row["v"]) if row and row["v"] is not None else 0
            for version, steps in pending("postgresql", current, self._where, target):
                for step in steps:
                    q(step, ())
                q("DELETE FROM vidground_schema", ())
                q("INSERT INTO vidground_schema (version) VALUES (?)", (version,))

        self._tx(work)

    def close(self) -> None:
        self._pool.close()

    def _run(self, fn: Callable[[Query], Any], *, tx: bool, lock_queue: bool = False) -> Any:
        try:
            with self._pool.connection() as conn:

                def q(sql: str, args: Sequence[Any] = ()) -> Result:
                    return conn.execute(  # type: ignore[return-value]
                        self._sql(sql.replace("?", "%s"), NOW), tuple(args))

                if not tx:
                    return fn(q)
                with conn.transaction():
                    if lock_queue:
                        q("SELECT pg_advisory_xact_lock(?)", (QUEUE_LOCK,))
                    return fn(q)
        except self._errors as exc:
            raise JobStoreUnavailableError(
                f"the job store ({self._where}) is not reachable: {type(exc).__name__}; "
                "retry shortly") from exc

    def _tx(self, fn: Callable[[Query], Any], *, lock_queue: bool = False) -> Any:
        return self._run(fn, tx=True, lock_queue=lock_queue)

    def _read(self, fn: Callable[[Query], Any]) -> Any:
        return self._run(fn, tx=False)
