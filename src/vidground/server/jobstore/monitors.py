"""Live monitors in the job store (issue 25): what to watch, who runs it, its alerts.

A monitor row holds its ``spec`` (source, queries, options, alert targets; JSON), and while a
process runs it, that process's ``owner`` id, a ``run_token`` and ``lease_until`` (the
database's clock), renewed with every beat together with the monitor's last ``state`` (for
``GET``) and its resume ``checkpoint`` (stream clock, the event in progress). A claim takes a
monitor nobody holds, whose lease ran out, or whose holder on this host is gone; every later
write of that run names its token, so a process that lost its monitor (it hung past the
lease and another took it) can neither renew it nor store alerts for it: each monitor runs
exactly once.

Alerts are stored before they are sent: one row per (monitor, event id, kind), inserted only
by the run holding the monitor, in the same transaction as the checkpoint that knows of it
(a restarted run never announces an event a second time). ``deliveries`` records what each
sink made of it; a row stays ``pending`` until every sink delivered it or gave up, and a
resumed run sends the pending ones again (receivers drop repeats by their idempotency key).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConflictError, NotFoundError

Query = Callable[[str, Sequence[Any]], Any]


class MonitorNotFoundError(NotFoundError):
    code = "monitor_not_found"


class TooManyMonitorsError(ConflictError):
    """``VIDGROUND_MAX_MONITORS`` monitors exist already."""

    code = "too_many_monitors"


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def monitor_row(row: dict[str, Any]) -> dict[str, Any]:
    """A monitor row with its JSON columns read."""
    out = dict(row)
    for key in ("spec", "state", "checkpoint"):
        out[key] = _loads(out.get(key))
    return out


def alert_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"seq": int(row["seq"]), "monitor_id": row["monitor_id"],
            "event_id": row["event_id"], "kind": row["kind"], "event": _loads(row["body"]),
            "deliveries": _loads(row["deliveries"]) or {}, "pending": bool(row["pending"]),
            "created_at": float(row["created_at"])}


class MonitorStore:
    """The monitor half of :class:`~.base.JobStore` (mixed in; uses its engine hooks)."""

    owner: str
    lease_s: float
    for_update = ""

    def _tx(self, fn: Callable[[Query], Any], *, lock_queue: bool = False) -> Any:
        raise NotImplementedError

    def _read(self, fn: Callable[[Query], Any]) -> Any:
        raise NotImplementedError

    host: str

    def _holder_gone(self, owner: str) -> bool:
        """``owner`` ran on this host and its process is gone (another store of this same
        process is not gone: two stores in one process are two holders)."""
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self.host or not pid_text.isdigit():
            return False
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    # -- monitors --------------------------------------------------------------------------
    def create_monitor(self, spec: dict[str, Any], *, limit: int | None) -> dict[str, Any]:
        """Store a new monitor (nobody holds it yet); :class:`TooManyMonitorsError` when
        ``limit`` monitors exist already (counted in the insert's transaction)."""
        monitor_id = secrets.token_hex(12)

        def work(q: Query) -> None:
            if limit is not None:
                n = int(q("SELECT COUNT(*) AS n FROM monitors", ()).fetchone()["n"])
                if n >= limit:
                    raise TooManyMonitorsError(
                        f"{n} monitors exist already (the limit, VIDGROUND_MAX_MONITORS, is "
                        f"{limit}); delete one (DELETE /api/v1/monitors/{{id}}) or raise "
                        "the limit")
            q("INSERT INTO monitors (id, spec, created_at, updated_at) VALUES (?, ?, $NOW, "
              "$NOW)", (monitor_id, json.dumps(spec)))

        self._tx(work, lock_queue=True)
        return self.get_monitor(monitor_id)

    def get_monitor(self, monitor_id: str) -> dict[str, Any]:
        row = self._read(lambda q: q("SELECT * FROM monitors WHERE id=?",
                                     (monitor_id,)).fetchone())
        if row is None:
            raise MonitorNotFoundError(f"no monitor with id {monitor_id}")
        return monitor_row(row)

    def list_monitors(self) -> list[dict[str, Any]]:
        rows = self._read(lambda q: q("SELECT * FROM monitors ORDER BY created_at, id",
                                      ()).fetchall())
        return [monitor_row(r) for r in rows]

    def delete_monitor(self, monitor_id: str) -> None:
        """Delete a monitor and its alerts (its holder stops at its next beat)."""

        def work(q: Query) -> None:
            if q("DELETE FROM monitors WHERE id=?", (monitor_id,)).rowcount == 0:
                raise MonitorNotFoundError(f"no monitor with id {monitor_id}")
            q("DELETE FROM monitor_alerts WHERE monitor_id=?", (monitor_id,))

        self._tx(work)

    def count_monitors(self) -> int:
        row = self._read(lambda q: q("SELECT COUNT(*) AS n FROM monitors", ()).fetchone())
        return int(row["n"]) if row else 0

    # -- holding them ----------------------------------------------------------------------
    def claim_monitors(self, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` monitors nobody holds: never held, lease run out, or held by
        a process on this host that is gone. Each gets a fresh ``run_token`` and a lease."""
        if limit <= 0:
            return []
        rows = self._read(lambda q: q(
            "SELECT id, owner, lease_until, ($NOW) AS now FROM monitors ORDER BY created_at, id",
            ()).fetchall())
        free = [r["id"] for r in rows if r["owner"] is None or r["lease_until"] is None
                or float(r["lease_until"]) < float(r["now"])
                or (r["owner"] != self.owner and self._holder_gone(str(r["owner"])))]
        claimed: list[dict[str, Any]] = []
        for monitor_id in free:
            if len(claimed) >= limit:
                break
            token = secrets.token_hex(8)
            was = next(r["owner"] for r in rows if r["id"] == monitor_id)
            # the same test as the read, under the row lock: two processes cannot both win
            cond = "owner IS NULL OR lease_until IS NULL OR lease_until < $NOW"
            args: list[Any] = [self.owner, token, self.lease_s, monitor_id]
            if was is not None and was != self.owner and self._holder_gone(str(was)):
                cond += " OR owner=?"
                args.append(was)
            sql = ("UPDATE monitors SET owner=?, run_token=?, lease_until=$NOW + ?, "
                   f"updated_at=$NOW WHERE id=? AND ({cond}) RETURNING *")

            def take(q: Query, sql: str = sql, args: list[Any] = args) -> Any:
                return q(sql, args).fetchall()

            got = self._tx(take)
            if got:
                claimed.append(monitor_row(got[0]))
        return claimed

    def renew_monitor(self, monitor_id: str, token: str, *, state: dict[str, Any] | None = None,
                      checkpoint: dict[str, Any] | None = None) -> bool:
        """Renew the lease of run ``token`` (and record its state / checkpoint); False when
        the monitor was deleted or taken by another run."""
        sets = ["lease_until=$NOW + ?", "updated_at=$NOW"]
        args: list[Any] = [self.lease_s]
        if state is not None:
            sets.append("state=?")
            args.append(json.dumps(state))
        if checkpoint is not None:
            sets.append("checkpoint=?")
            args.append(json.dumps(checkpoint))
        return self._tx(lambda q: q(
            f"UPDATE monitors SET {', '.join(sets)} WHERE id=? AND run_token=? AND owner=?",
            [*args, monitor_id, token, self.owner]).rowcount) == 1

    def release_monitor(self, monitor_id: str, token: str, *,
                        state: dict[str, Any] | None = None) -> bool:
        """Give a monitor up (a clean stop): another process may take it at once."""
        return self._tx(lambda q: q(
            "UPDATE monitors SET owner=NULL, run_token=NULL, lease_until=NULL, state=?, "
            "updated_at=$NOW WHERE id=? AND run_token=?",
            (json.dumps(state) if state is not None else None, monitor_id, token)).rowcount) == 1

    # -- alerts ----------------------------------------------------------------------------
    def add_alert(self, monitor_id: str, token: str, event: dict[str, Any], *,
                  checkpoint: dict[str, Any] | None = None, pending: bool = True
                  ) -> tuple[bool, int | None]:
        """Store ``event`` for the run ``token`` (with the checkpoint that knows of it, in one
        transaction); ``pending``: it has sinks to go to. Returns ``(stored, seq)``:
        ``(False, seq)`` when that event was stored already (a repeat), ``(False, None)`` when
        the run no longer holds the monitor."""
        event_id, kind = str(event.get("id", "")), str(event.get("event", ""))

        def work(q: Query) -> tuple[bool, int | None]:
            held = q(f"SELECT id FROM monitors WHERE id=? AND run_token=? {self.for_update}",
                     (monitor_id, token)).fetchone()
            if held is None:
                return False, None
            seen = q("SELECT seq FROM monitor_alerts WHERE monitor_id=? AND event_id=? AND "
                     "kind=?", (monitor_id, event_id, kind)).fetchone()
            if seen is not None:
                return False, int(seen["seq"])
            row = q("INSERT INTO monitor_alerts (monitor_id, event_id, kind, body, pending, "
                    "created_at) VALUES (?, ?, ?, ?, ?, $NOW) RETURNING seq",
                    (monitor_id, event_id, kind, json.dumps(event), int(pending))).fetchone()
            if checkpoint is not None:
                q("UPDATE monitors SET checkpoint=?, updated_at=$NOW WHERE id=?",
                  (json.dumps(checkpoint), monitor_id))
            return True, int(row["seq"])

        result: tuple[bool, int | None] = self._tx(work)
        return result

    def record_delivery(self, seq: int, sink: str, outcome: str, sinks: Sequence[str]) -> None:
        """Record what ``sink`` made of alert ``seq`` (``delivered`` or ``dead: <why>``); the
        alert stops being pending once every one of ``sinks`` has an outcome."""

        def work(q: Query) -> None:
            row = q(f"SELECT deliveries FROM monitor_alerts WHERE seq=? {self.for_update}",
                    (seq,)).fetchone()
            if row is None:
                return  # deleted with its monitor
            done = _loads(row["deliveries"]) or {}
            done[sink] = outcome
            pending = 0 if all(s in done for s in sinks) else 1
            q("UPDATE monitor_alerts SET deliveries=?, pending=? WHERE seq=?",
              (json.dumps(done), pending, seq))

        self._tx(work)

    def pending_alerts(self, monitor_id: str) -> list[dict[str, Any]]:
        rows = self._read(lambda q: q(
            "SELECT * FROM monitor_alerts WHERE monitor_id=? AND pending=1 ORDER BY seq",
            (monitor_id,)).fetchall())
        return [alert_row(r) for r in rows]

    def list_alerts(self, monitor_id: str, *, limit: int = 50, offset: int = 0
                    ) -> tuple[list[dict[str, Any]], int]:
        """A monitor's alerts, newest first, and how many it has."""

        def read(q: Query) -> tuple[int, list[dict[str, Any]]]:
            if q("SELECT id FROM monitors WHERE id=?", (monitor_id,)).fetchone() is None:
                raise MonitorNotFoundError(f"no monitor with id {monitor_id}")
            total = q("SELECT COUNT(*) AS n FROM monitor_alerts WHERE monitor_id=?",
                      (monitor_id,)).fetchone()
            rows = q("SELECT * FROM monitor_alerts WHERE monitor_id=? ORDER BY seq DESC "
                     "LIMIT ? OFFSET ?", (monitor_id, limit, offset)).fetchall()
            return int(total["n"]) if total else 0, rows

        total, rows = self._read(read)
        return [alert_row(r) for r in rows], total

    def alert_counts(self) -> dict[str, int]:
        rows = self._read(lambda q: q("SELECT monitor_id, COUNT(*) AS n FROM monitor_alerts "
                                      "GROUP BY monitor_id", ()).fetchall())
        return {r["monitor_id"]: int(r["n"]) for r in rows}
