"""One bounded pool of model workers shared by synchronous requests and persistent jobs.

There are ``workers`` threads (default 1: one model on one device). Each takes, in this order:
a waiting synchronous request (FIFO), else the next queued job (claimed from the job store by
``job_source``), else sleeps until something arrives. So a burst of requests waits in line
instead of loading a second model or exhausting memory, and interactive requests overtake
batch jobs. At most ``queue_limit`` synchronous requests may wait; one more gets
:class:`QueueFullError` (HTTP 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .errors import QueueFullError, ShuttingDownError

log = logging.getLogger(__name__)


JobSource = Callable[[], "Callable[[], None] | None"]


def ignore_outcome(future: Future[Any] | asyncio.Future[Any]) -> None:
    """A done-callback for a future nobody waits for any more: its exception is retrieved,
    so it logs no "exception was never retrieved" warning."""
    if not future.cancelled():
        future.exception()


class BoundedExecutor:
    """``workers`` threads; a FIFO of at most ``queue_limit`` waiting sync tasks; jobs on the
    side, pulled from ``job_source`` when no sync task waits."""

    def __init__(self, workers: int = 1, queue_limit: int = 64,
                 job_source: JobSource | None = None, *, name: str = "worker",
                 busy_hint: str = "retry later or submit a job with POST /api/v1/jobs") -> None:
        self.name = name
        self.busy_hint = busy_hint
        self.workers = max(1, int(workers))
        self.queue_limit = max(0, int(queue_limit))
        self.job_source = job_source
        self._queue: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._cond = threading.Condition()
        self._job_hint = True
        self._stopping = False
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._durations: deque[float] = deque(maxlen=32)
        self.completed = 0
        self.rejected = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"vidground-{self.name}-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 0.0) -> None:
        """Stop taking work; waiting sync tasks fail with 503. Running tasks are not killed
        (threads are daemons); jobs they run are recovered on the next start."""
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for _, future in pending:
            if not future.done():
                future.set_exception(ShuttingDownError("the server is shutting down"))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- submitting ------------------------------------------------------------------------
    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Queue a synchronous task; raises :class:`QueueFullError` past the queue limit."""
        future: Future[Any] = Future()
        with self._cond:
            if self._stopping:
                raise ShuttingDownError("the server is shutting down")
            self._prune_locked()
            # a task an idle worker is about to take does not wait: it does not count
            idle = max(0, self.workers - self._running)
            if len(self._queue) >= self.queue_limit + idle:
                self.rejected += 1
                raise QueueFullError(
                    f"the server is busy: {len(self._queue)} requests are already waiting "
                    f"for a {self.name} (limit {self.queue_limit}); {self.busy_hint}",
                    retry_after=self._retry_after_locked(),
                )
            self._queue.append((fn, future))
            self._cond.notify()
        return future

    def discard(self, future: Future[Any]) -> bool:
        """Cancel a waiting task and free its place in the queue at once (its client hung up);
        False when it already runs or ran."""
        with self._cond:
            if not future.cancel():
                return False
            self._prune_locked()
            return True

    def _prune_locked(self) -> None:
        """Drop cancelled tasks from the queue: they would never run but held a place."""
        if any(f.cancelled() for _, f in self._queue):
            self._queue = deque(item for item in self._queue if not item[1].cancelled())

    def notify_jobs(self) -> None:
        """Wake a worker: new jobs were queued."""
        with self._cond:
            self._job_hint = True
            self._cond.notify_all()

    # -- state -----------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        with self._cond:
            self._prune_locked()
            return len(self._queue)

    @property
    def running(self) -> int:
        return self._running

    def retry_after(self) -> int:
        with self._cond:
            return self._retry_after_locked()

    def _retry_after_locked(self) -> int:
        mean = (sum(self._durations) / len(self._durations)) if self._durations else 1.0
        estimate = mean * (len(self._queue) + self._running) / self.workers
        return int(min(600, max(1, math.ceil(estimate))))

    # -- the worker loop -------------------------------------------------------------------
    def _next(self) -> tuple[Callable[[], Any], Future[Any] | None] | None:
        while True:
            with self._cond:
                if self._stopping:
                    return None
                while self._queue and self._queue[0][1].cancelled():
                    self._queue.popleft()
                if self._queue:
                    fn, future = self._queue.popleft()
                    self._running += 1
                    return fn, future
                self._job_hint = False
            job = None
            if self.job_source is not None:
                try:
                    job = self.job_source()
                except Exception:  # noqa: BLE001 - a broken database must not kill workers
                    log.exception("claiming a job failed")
            with self._cond:
                if job is not None:
                    if self._stopping:
                        return None
                    self._running += 1
                    return job, None
                if not self._queue and not self._job_hint and not self._stopping:
                    self._cond.wait(timeout=1.0)

    def _loop(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            fn, future = item
            started = time.perf_counter()
            try:
                if future is None:
                    fn()
                elif future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        future.set_exception(exc)
            except Exception:  # noqa: BLE001 - jobs record their own errors
                log.exception("a job task failed outside its own error handling")
            finally:
                with self._cond:
                    self._running -= 1
                    self._durations.append(time.perf_counter() - started)
                    self.completed += 1
