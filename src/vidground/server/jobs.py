"""Running persistent jobs: :class:`JobRunner` turns claimed jobs into executor tasks.

Where jobs live is :mod:`vidground.server.jobstore` (SQLite by default, PostgreSQL to share
one queue between machines); its names are re-exported here. States: ``queued`` -> ``running``
-> ``succeeded`` | ``failed`` | ``cancelled``. Each claim counts one attempt and gets a fresh
``run_token`` and a lease; every later write of that run names the token, so a stale run can
never overwrite a newer one. The runner renews its leases from a heartbeat thread and, in the
same beat, re-queues jobs whose lease ran out (their process died).

Crash safety: every state change is committed before it is acted on. After a SIGKILL, jobs left
``running`` go back to ``queued`` (at the next start on the same host at once, elsewhere when
their lease runs out), or to ``failed`` (code ``job_interrupted``) once they have been started
``max_attempts`` times.

Cancelling: a queued job becomes ``cancelled`` at once. A running job is flagged
(``cancel_requested``); the pipeline's progress callback sees the flag at its next progress
event (frames decoded, model call finished...) and raises :class:`JobCancelled`, and the job ends
``cancelled``. A model call already in progress is not interrupted; it finishes first.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import (
    BackendError,
    ModelNotAvailableError,
    VideoNotFoundError,
    VidgroundError,
)
from ..progress import STAGE_SPANS, ProgressEvent
from .errors import WorkerVideoError
from .jobstore import JobStore
from .statuses import status_for

log = logging.getLogger(__name__)

#: Where each pipeline stage sits in a job's overall progress (start, end).


class JobCancelled(Exception):
    """Raised from the progress callback to stop a job that was cancelled while running."""


def overall_fraction(event: ProgressEvent) -> float:
    lo, hi = STAGE_SPANS.get(event.stage, (0.0, 0.99))
    inner = event.fraction if event.fraction is not None else 0.0
    return round(lo + (hi - lo) * inner, 4)


Infer = Callable[[dict[str, Any], Callable[[ProgressEvent], None]], dict[str, Any]]


class JobRunner:
    """Turns claimed jobs into executor tasks (``executor.job_source = runner.next_task``).

    :meth:`start` runs the heartbeat thread: every third of the store's lease it renews the
    leases of the jobs this runner is running (only those: a job whose outcome could not be
    written is left to expire) and re-queues jobs whose lease ran out elsewhere."""

    def __init__(self, store: JobStore, infer: Infer, *, progress_interval_s: float = 0.25,
                 public: Callable[[str], str] | None = None) -> None:
        self.store = store
        self.infer = infer
        #: turns an error message into what a client may read (no server folders)
        self.public = public or (lambda text: text)
        self.progress_interval_s = progress_interval_s
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._active: set[str] = set()  # run tokens of the jobs running in this process
        self._active_lock = threading.Lock()

    def start(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="vidground-heartbeat",
                                          daemon=True)
            self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5.0)

    def _heartbeat(self) -> None:
        interval = max(0.05, self.store.lease_s / 3)
        while not self._stop.wait(interval):
            try:
                with self._active_lock:
                    tokens = set(self._active)
                self.store.heartbeat(tokens)
                requeued, failed = self.store.reap()
                if requeued or failed:
                    log.warning("jobs whose lease ran out (their process stopped): %d queued "
                                "again, %d failed", requeued, failed)
            except Exception as exc:  # noqa: BLE001 - retried at the next beat
                log.warning("job store heartbeat failed: %s", exc)

    def next_task(self) -> Callable[[], None] | None:
        row = self.store.claim()
        if row is None:
            return None
        return lambda: self.run(row)

    def run(self, row: dict[str, Any]) -> None:
        with self._active_lock:
            self._active.add(row["run_token"])
        try:
            self._run(row)
        except Exception as exc:  # noqa: BLE001 - the store went away (shutdown, network)
            log.warning("job %s: its outcome could not be recorded (%s: %s); it stays running "
                        "and is re-run when its lease runs out", row["id"], type(exc).__name__,
                        exc)
        finally:
            with self._active_lock:
                self._active.discard(row["run_token"])

    def _finish(self, row: dict[str, Any], status: str, **kw: Any) -> None:
        if self.store.finish(row["id"], row["run_token"], status, **kw):
            log.info("job %s %s (attempt %d)", row["id"], status, row["attempts"])
        else:
            log.warning("job %s: run %s no longer owns the job (cancelled or re-run elsewhere); "
                        "its outcome was not written", row["id"], row["run_token"])

    def _infer(self, row: dict[str, Any], on_progress: Callable[[ProgressEvent], None]
               ) -> dict[str, Any]:
        try:
            return self.infer(json.loads(row["request"]), on_progress)
        except VideoNotFoundError as exc:
            raise WorkerVideoError(
                f"{exc.message.rstrip('.')} (on {socket.gethostname()}, pid {os.getpid()}). "
                "The video was there when the job was queued: it was deleted since, or this "
                "process does not see the same media root and data dir as the server that "
                "accepted the job. Every server and worker sharing a job store needs the same "
                "media/data paths (a shared volume; see docs/scaling-out.md)") from exc

    def _run(self, row: dict[str, Any]) -> None:
        job_id, token = row["id"], row["run_token"]
        last: list[Any] = [0.0, ""]  # when and which stage was last stored

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
            self._finish(row, "cancelled")
            return
        try:
            result = self._infer(row, on_progress)
        except JobCancelled:
            self._finish(row, "cancelled")
        except ModelNotAvailableError as exc:
            self._finish(row, "failed", error=error_body(exc, self.public))
        except (BackendError, WorkerVideoError) as exc:
            if row["attempts"] < row["max_attempts"]:
                log.warning("job %s: %s; giving it back to the queue", job_id, exc.message)
                self.store.requeue(job_id, token, error_body(exc, self.public))
            else:
                self._finish(row, "failed", error=error_body(exc, self.public))
        except VidgroundError as exc:
            self._finish(row, "failed", error=error_body(exc, self.public))
        except Exception:  # noqa: BLE001 - recorded; details stay in the server log
            log.exception("job %s failed", job_id)
            self._finish(row, "failed", error={
                "code": "internal_error",
                "message": "the job failed because of an internal error; see the server log"})
        else:
            if self.store.cancel_requested(job_id):
                self._finish(row, "cancelled")
            else:
                self._finish(row, "succeeded", result=result)


def error_body(exc: VidgroundError, public: Callable[[str], str] | None = None
               ) -> dict[str, Any]:
    message = public(exc.message) if public is not None else exc.message
    return {"code": exc.code, "message": message, "status": status_for(exc)}
