"""Live monitors on the server (issue 25): ``POST /api/v1/monitors`` and the page's Live tab.

A monitor is stored in the job store (:mod:`.jobstore.monitors`) and run by whichever server or
worker process holds its lease: the :class:`MonitorManager` of every process that runs
monitors (``VIDGROUND_RUN_MONITORS``, on by default) beats every third of the lease (at most
every 2 s): it renews the leases of the monitors it runs (with their state and resume
checkpoint), stops those it lost (deleted, or taken by another process after it hung), and
claims free ones (never held, lease run out, holder on this host gone), up to
``VIDGROUND_MAX_MONITORS``. So with several processes each monitor runs exactly once, and a
restarted or replacement process resumes a monitor where the last one stopped.

Running a monitor is :mod:`vidground.live`: one :class:`~vidground.live.watcher.Watcher` per
question over the source, confined exactly like ``vidground watch`` (``VIDGROUND_STREAM_ALLOW``,
no ``file://``, no device or file, no internal address unless allowed), the model calls
through the service's executor (the server's model queue and its limits). Every event is
stored before it is sent (with the checkpoint that knows of it, in one transaction), then
sent to the monitor's webhook (signed with ``VIDGROUND_WEBHOOK_SECRET``) and/or MQTT topic;
what each sink made of it is recorded, and a resumed monitor sends again what was not
delivered (receivers drop repeats by the ``Idempotency-Key``).
"""

from __future__ import annotations

import builtins
import functools
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import OptionsError, VidgroundError
from ..options import check_query
from .jobstore import JobStore
from .jobstore.monitors import MonitorNotFoundError

log = logging.getLogger("vidground.server.monitors")

#: option -> (default, lowest, highest, what it is)
OPTIONS: dict[str, tuple[float, float, float, str]] = {
    "window_s": (4.0, 0.5, 60.0, "seconds one model call sees"),
    "every_s": (1.0, 0.2, 60.0, "seconds between windows"),
    "sample_fps": (2.0, 0.1, 10.0, "frames per second shown to the model"),
    "max_interval_s": (10.0, 1.0, 3600.0, "ask at least this often (s) when nothing moves"),
    "calls_per_minute": (30, 1, 600, "most model calls per minute for this stream"),
    "buffer_s": (30.0, 2.0, 120.0, "seconds of frames kept for exact ends and clips"),
}
FLAGS = {"gate": True, "refine": True}
MAX_QUERIES = 4
FILE_NAME = re.compile(r"^[0-9a-f]{24}-[0-9a-f]{8}(?:-start\.jpg|\.mp4)$")
WEBHOOK_SECRET_ENV = "VIDGROUND_WEBHOOK_SECRET"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def redact(url: str | None) -> str | None:
    """``url`` without the password of its user part (never shown back to clients)."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_options(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The monitor's options with defaults filled in; :class:`OptionsError` naming a bad one."""
    raw = dict(raw or {})
    unknown = set(raw) - set(OPTIONS) - set(FLAGS)
    if unknown:
        raise OptionsError(f"unknown monitor option(s): {', '.join(sorted(unknown))}; known: "
                           f"{', '.join([*OPTIONS, *FLAGS])}")
    out: dict[str, Any] = {}
    for name, (default, lo, hi, what) in OPTIONS.items():
        value = raw.get(name, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not lo <= value <= hi:
            raise OptionsError(f"{name} ({what}) must be a number from {lo:g} to {hi:g}, got "
                               f"{value!r}")
        out[name] = int(value) if name == "calls_per_minute" else float(value)
    if out["calls_per_minute"] != raw.get("calls_per_minute", out["calls_per_minute"]):
        raise OptionsError("calls_per_minute must be a whole number")
    for name, default in FLAGS.items():
        value = raw.get(name, default)
        if not isinstance(value, bool):
            raise OptionsError(f"{name} must be true or false, got {value!r}")
        out[name] = value
    if out["buffer_s"] < out["window_s"]:
        raise OptionsError("buffer_s must be at least window_s (the buffer holds the window)")
    return out


def check_spec(source: str, queries: Sequence[str], options: dict[str, Any] | None = None, *,
               webhook: str | None = None, mqtt: str | None = None,
               name: str | None = None) -> dict[str, Any]:
    """A monitor's spec as it is stored, checked like ``vidground watch`` checks it on a
    server: a network source (no ``file://``, device or file) whose host resolves to no
    internal address unless ``VIDGROUND_STREAM_ALLOW`` names it, one to four questions, the
    options, webhook and MQTT targets held to the same allow-list. 422 with the reason."""
    from ..live.alerts import check_mqtt_url, check_webhook_url
    from ..live.sources import AllowList, resolve_source

    allow = AllowList.from_env()
    resolve_source(source, allow, allow_local=False)
    checked = [check_query(q) for q in queries]
    if not checked:
        raise OptionsError("give a question (query) to watch for")
    if len(checked) > MAX_QUERIES:
        raise OptionsError(f"at most {MAX_QUERIES} questions per monitor, got {len(checked)}")
    if webhook is not None:
        check_webhook_url(webhook, allow)
    if mqtt is not None:
        check_mqtt_url(mqtt, allow)
    return {"source": source.strip(), "queries": checked, "options": check_options(options),
            "webhook": webhook, "mqtt": mqtt, "name": (name or "").strip()[:200] or None}


class ExecutorBackend:
    """A backend whose model calls wait their turn on the server's model executor (the
    monitors share the model, and its queue limit, with every other request)."""

    def __init__(self, backend: Any, submit: Callable[[Callable[[], Any]], Future[Any]]) -> None:
        self._backend = backend
        self._submit = submit

    def generate(self, frames: Any, prompt: Any, **kwargs: Any) -> Any:
        return self._submit(lambda: self._backend.generate(frames, prompt, **kwargs)).result()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._backend, name)
        if name == "yes_probability" and callable(value):
            return lambda *a, **kw: self._submit(lambda: value(*a, **kw)).result()
        return value


class MonitorRun:
    """One monitor running in this process (see the module docstring)."""

    def __init__(self, manager: MonitorManager, row: dict[str, Any]) -> None:
        self.manager = manager
        self.id: str = row["id"]
        self.token: str = row["run_token"]
        self.spec: dict[str, Any] = row["spec"]
        self.folder = manager.folder(self.id)
        self.lost = False
        self._stop = threading.Event()
        self._lock = threading.RLock()  # checkpoint snapshots and alert inserts, in order
        self._thread = threading.Thread(target=self._main, name=f"monitor-{self.id[:8]}",
                                        daemon=True)
        saved = row.get("checkpoint") or {}
        self._saved: list[dict[str, Any]] = list(saved.get("watchers") or [])
        self._watchers: list[Any] = []
        self._sources: list[Any] = []
        self._status = "starting"
        self._last_error: str | None = None
        self._seqs: dict[str, int] = {}
        self._fps = 0.0
        self._fps_at: tuple[float, int] | None = None
        self._sinks: list[tuple[str, Any]] = []
        self.started = time.time()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()
        for watcher in list(self._watchers):
            watcher.stop()

    def stop(self, wait_s: float = 20.0) -> None:
        self.signal_stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=wait_s)
        for _, sink in self._sinks:
            try:
                sink.close(timeout_s=5.0)
            except Exception:  # noqa: BLE001 - closing a sink never fails the stop
                log.exception("closing a sink of monitor %s failed", self.id)
        self._sinks = []

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            self._open_sinks()
            self._resend_pending()
        except Exception as exc:  # noqa: BLE001 - reported in the state, retried below
            log.exception("monitor %s: its alert targets could not be opened", self.id)
            self._last_error = f"alerts: {type(exc).__name__}: {exc}"
        failures = 0
        while not self._stop.is_set():
            try:
                self._watch()
                failures = 0 if any(w.stats.frames for w in self._watchers) else failures + 1
            except VidgroundError as exc:
                failures += 1
                self._last_error = exc.message
            except Exception as exc:  # noqa: BLE001 - a monitor never takes the server down
                failures += 1
                log.exception("monitor %s failed", self.id)
                self._last_error = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                break
            log.info("monitor %s: the watch ended (%s); opening the source again", self.id,
                     self._last_error or "the stream ended")
            self._status = "waiting"  # the source ended or gave up: open it again later
            self._stop.wait(min(60.0, 2.0 * 2 ** min(failures, 5)))
        self._status = "stopped"

    def _open_sinks(self) -> None:
        from ..live.alerts import MqttSink, WebhookSink

        secret = os.environ.get(WEBHOOK_SECRET_ENV)
        dead = self.folder / "dead-letter.jsonl"
        if self.spec.get("webhook"):
            self._sinks.append(("webhook", WebhookSink(
                self.spec["webhook"], secret=secret, dead_letter=dead,
                on_result=self._recorder("webhook"))))
        if self.spec.get("mqtt"):
            self._sinks.append(("mqtt", MqttSink(
                self.spec["mqtt"], dead_letter=dead, client_id=f"vidground-{self.id}",
                on_result=self._recorder("mqtt"))))

    def _recorder(self, sink: str) -> Callable[[dict[str, Any], str], None]:
        def record(event: dict[str, Any], outcome: str) -> None:
            self._delivered(sink, event, outcome)

        return record

    @property
    def sink_names(self) -> list[str]:
        return [name for name, _ in self._sinks]

    def _resend_pending(self) -> None:
        """Alerts stored but not yet delivered (the last holder stopped or crashed before
        its sinks had them): sent again, each to the sinks that have no outcome for it."""
        for alert in self.manager.store.pending_alerts(self.id):
            event = alert["event"]
            self._seqs[_key(event)] = alert["seq"]
            for name, sink in self._sinks:
                if name not in alert["deliveries"]:
                    sink.send(event)

    def _watch(self) -> None:
        from ..live.resume import ResumedSource
        from ..live.sources import AllowList, resolve_source
        from ..live.watcher import WatchConfig, Watcher

        source_spec = resolve_source(self.spec["source"], AllowList.from_env(),
                                     allow_local=False)  # checked again: DNS may change
        o = self.spec["options"]
        config = WatchConfig(window_s=o["window_s"], every_s=o["every_s"],
                             sample_fps=o["sample_fps"], max_interval_s=o["max_interval_s"],
                             gate=o["gate"], max_calls_per_minute=o["calls_per_minute"],
                             buffer_s=o["buffer_s"], refine=o["refine"],
                             clip_dir=self.folder, evidence_dir=self.folder)
        backend = self.manager.backend()
        watchers, sources = [], []
        for i, query in enumerate(self.spec["queries"]):
            saved = self._saved[i] if i < len(self._saved) and \
                self._saved[i].get("query") == query else {}
            source = ResumedSource(source_spec, clock=saved.get("clock"))
            watcher = Watcher(source, backend, query, config=config, monitor=self.id,
                              on_event=functools.partial(self._on_event, i),
                              on_status=functools.partial(self._on_status, i))
            if saved.get("watch"):
                watcher.restore(saved["watch"])
            watchers.append(watcher)
            sources.append(source)
        with self._lock:
            while len(self._saved) < len(watchers):
                self._saved.append({})
            for i, query in enumerate(self.spec["queries"]):
                self._saved[i] = {**self._saved[i], "query": query,
                                  "watch": watchers[i].checkpoint()}
            self._watchers, self._sources = watchers, sources
        if self._stop.is_set():
            return
        self._status = "connecting"
        threads = [threading.Thread(target=w.run, name=f"monitor-{self.id[:8]}-{i}",
                                    daemon=True) for i, w in enumerate(watchers)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
                if self._stop.is_set():
                    for w in watchers:
                        w.stop()
        with self._lock:  # a later open carries on from where these sources got to
            self._saved = self._checkpoint_locked()["watchers"]

    # -- events ----------------------------------------------------------------------------
    def _on_status(self, i: int, kind: str, detail: dict[str, Any]) -> None:
        if kind in ("connected", "dropped", "reconnecting", "gave_up"):
            self._status = kind
        if kind in ("dropped", "reconnecting", "gave_up", "model_error", "clip_error",
                    "evidence_error"):
            self._last_error = self.manager.public(str(detail.get("detail", kind)))

    def _public_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as it is stored and sent: files named by their URL, never a path."""
        out = dict(event)
        if out.get("clip"):
            out["clip"] = self.manager.file_url(self.id, Path(str(out["clip"])).name)
        evidence = []
        for item in out.get("evidence") or []:
            item = dict(item)
            if item.get("image"):
                item["image"] = self.manager.file_url(self.id, Path(str(item["image"])).name)
            evidence.append(item)
        out["evidence"] = evidence
        return out

    def _on_event(self, i: int, event: dict[str, Any]) -> None:
        event = self._public_event(event)
        store = self.manager.store
        with self._lock:
            self._saved[i] = {**self._saved[i], "watch": self._watchers[i].checkpoint()}
            try:
                stored, seq = store.add_alert(self.id, self.token, event,
                                              checkpoint=self._checkpoint_locked(),
                                              pending=bool(self._sinks))
            except Exception:  # noqa: BLE001 - the store is down: not sent either (retried
                log.exception("monitor %s: storing an alert failed", self.id)  # never)
                self._last_error = "the job store did not take an alert; see the server log"
                return
        if seq is None:
            log.warning("monitor %s was taken over by another process; stopping here", self.id)
            self.lost = True
            self._stop.set()
            for watcher in self._watchers:
                watcher.stop()
            return
        if not stored:
            return  # a repeat of a stored alert (a resumed run saw it again)
        self._seqs[_key(event)] = seq
        for _, sink in self._sinks:
            sink.send(event)

    def _delivered(self, sink: str, event: dict[str, Any], outcome: str) -> None:
        seq = self._seqs.get(_key(event))
        if seq is None:
            return
        try:
            self.manager.store.record_delivery(seq, sink, outcome, self.sink_names)
        except Exception:  # noqa: BLE001 - stays pending: sent again on resume (dropped as a
            log.exception("monitor %s: recording a delivery failed", self.id)  # repeat)

    # -- state -----------------------------------------------------------------------------
    def _checkpoint_locked(self) -> dict[str, Any]:
        from ..live.resume import source_clock

        watchers = []
        for i, saved in enumerate(self._saved):
            entry = dict(saved)
            if i < len(self._sources):
                clock = source_clock(self._sources[i])
                if clock is not None:
                    # back by a window: the frames the watcher may not have judged yet are
                    # seen again after a resume (what was announced is not announced again)
                    o = self.spec["options"]
                    clock["last"] = clock["last"] - o["window_s"] - 2 * o["every_s"]
                    entry["clock"] = clock
            watchers.append(entry)
        return {"watchers": watchers}

    def checkpoint(self) -> dict[str, Any]:
        with self._lock:
            return self._checkpoint_locked()

    def state(self) -> dict[str, Any]:
        """What ``GET /api/v1/monitors/{id}`` shows of this run now."""
        watchers = list(self._watchers)
        stats = [w.stats for w in watchers]
        frames = max((s.frames for s in stats), default=0)
        now = time.monotonic()
        if self._fps_at is not None and now - self._fps_at[0] >= 0.5:
            self._fps = max(0.0, (frames - self._fps_at[1]) / (now - self._fps_at[0]))
            self._fps_at = (now, frames)
        elif self._fps_at is None:
            self._fps_at = (now, frames)
        checks = [w.last_check_wall for w in watchers if w.last_check_wall]
        errors = [w.last_error for w in watchers if w.last_error]
        return {
            "status": self._status if not self._stop.is_set() else "stopped",
            "connected": self._status == "connected",
            "frames": frames,
            "fps": round(self._fps, 2),
            "stream_s": round(max((s.stream_s for s in stats), default=0.0), 3),
            "last_check": _iso(max(checks)) if checks else None,
            "last_error": self.manager.public(errors[-1]) if errors else self._last_error,
            "calls_per_minute": sum(w._budget.recent() for w in watchers),
            "model_calls": sum(s.model_calls + s.refine_calls for s in stats),
            "skipped_windows": sum(s.skipped_busy + s.skipped_budget for s in stats),
            "model_errors": sum(s.model_errors for s in stats),
            "events": sum(s.events_started for s in stats),
            "reconnects": sum(s.reconnects for s in stats),
            "drops": sum(s.drops for s in stats),
            "since": _iso(self.started),
        }


def _key(event: dict[str, Any]) -> str:
    return f"{event.get('id', '')}:{event.get('event', '')}"


class MonitorManager:
    """Stores, lists and runs monitors for one process (see the module docstring)."""

    def __init__(self, store: JobStore, *, data_dir: Path, backend: Callable[[], Any],
                 limit: int, run: bool = True, public: Callable[[str], str] | None = None
                 ) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.backend = backend
        self.limit = limit
        self.run = run
        self.public = public or (lambda text: text)
        self.beat_s = max(0.2, min(2.0, store.lease_s / 3))
        self._runs: dict[str, MonitorRun] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def folder(self, monitor_id: str) -> Path:
        return self.data_dir / "monitors" / monitor_id

    @staticmethod
    def file_url(monitor_id: str, name: str) -> str:
        return f"/api/v1/monitors/{monitor_id}/files/{name}"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if not self.run or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="vidground-monitors",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop every run here and hand its monitor back (another process may take it at
        once), with its last state and checkpoint."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:  # all at once, then wait for each
            run.signal_stop()
        for run in runs:
            run.stop()
        for run in runs:
            try:
                if not run.lost:
                    with run._lock:
                        self.store.renew_monitor(run.id, run.token,
                                                 checkpoint=run._checkpoint_locked())
                    self.store.release_monitor(run.id, run.token,
                                               state={**run.state(), "status": "stopped"})
            except Exception:  # noqa: BLE001 - its lease runs out instead
                log.exception("handing monitor %s back failed", run.id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the store is down: next beat tries again
                log.exception("monitor beat failed")
            self._wake.wait(self.beat_s)
            self._wake.clear()

    def beat(self) -> None:
        """Renew the runs here (state, checkpoint), drop the lost ones, claim free ones."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            with run._lock:
                held = not run.lost and self.store.renew_monitor(
                    run.id, run.token, state=run.state(), checkpoint=run._checkpoint_locked())
            if not held:
                log.info("monitor %s is no longer held here (deleted or taken over); "
                         "stopping it", run.id)
                with self._lock:
                    self._runs.pop(run.id, None)
                threading.Thread(target=run.stop, daemon=True).start()
        if self._stop.is_set():
            return
        with self._lock:
            room = self.limit - len(self._runs)
        for row in self.store.claim_monitors(room):
            run = MonitorRun(self, row)
            with self._lock:
                self._runs[run.id] = run
            log.info("monitor %s: running %s", run.id, redact(row["spec"]["source"]))
            run.start()

    def wake(self) -> None:
        self._wake.set()

    # -- the API ---------------------------------------------------------------------------
    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Store a checked spec (:func:`check_spec`); it starts at the next beat of a process
        that runs monitors (this one's at once). 409 past ``VIDGROUND_MAX_MONITORS``."""
        row = self.store.create_monitor(spec, limit=self.limit)
        self.wake()
        return self.to_api(row)

    def get(self, monitor_id: str) -> dict[str, Any]:
        return self.to_api(self.store.get_monitor(monitor_id))

    def list(self) -> list[dict[str, Any]]:  # noqa: A003 - the API's verb
        counts = self.store.alert_counts()
        return [self.to_api(row, counts.get(row["id"], 0)) for row in self.store.list_monitors()]

    def delete(self, monitor_id: str) -> None:
        self.store.delete_monitor(monitor_id)
        with self._lock:
            run = self._runs.pop(monitor_id, None)
        if run is not None:
            run.stop()
        shutil.rmtree(self.folder(monitor_id), ignore_errors=True)

    def alerts(self, monitor_id: str, *, limit: int = 50, offset: int = 0
               ) -> tuple[builtins.list[dict[str, Any]], int]:
        alerts, total = self.store.list_alerts(monitor_id, limit=limit, offset=offset)
        return [{"alert_id": a["seq"], "kind": a["kind"], "event": a["event"],
                 "deliveries": a["deliveries"], "pending": a["pending"],
                 "stored_at": _iso(a["created_at"])} for a in alerts], total

    def file(self, monitor_id: str, name: str) -> Path:
        """A clip or evidence picture of a monitor (404 unless it exists)."""
        from .errors import OutputNotFoundError

        self.store.get_monitor(monitor_id)  # 404 for an unknown monitor
        path = self.folder(monitor_id) / name
        if not FILE_NAME.fullmatch(name) or not path.is_file():
            raise OutputNotFoundError(f"monitor {monitor_id} has no file {name!r}")
        return path

    def to_api(self, row: dict[str, Any], alerts: int | None = None) -> dict[str, Any]:
        spec = row["spec"]
        with self._lock:
            run = self._runs.get(row["id"])
        held = row.get("lease_until") is not None and float(row["lease_until"]) > time.time()
        if run is not None and not run.lost:
            state = run.state()
        else:
            state = dict(row.get("state") or {})
            if not held:
                state["status"] = "stopped" if state else "waiting"
                state["connected"] = False
        state.setdefault("status", "waiting")
        state["held"] = bool(held or run is not None)
        state["updated_at"] = _iso(row.get("updated_at"))
        if alerts is None:
            alerts = self.store.alert_counts().get(row["id"], 0)
        return {"monitor_id": row["id"], "name": spec.get("name"),
                "source": redact(spec["source"]), "queries": spec["queries"],
                "options": spec["options"], "webhook": redact(spec.get("webhook")),
                "mqtt": redact(spec.get("mqtt")), "created_at": _iso(row["created_at"]),
                "alerts": alerts, "state": state}


__all__ = ["ExecutorBackend", "MonitorManager", "MonitorNotFoundError", "MonitorRun",
           "check_options", "check_spec", "redact"]
