"""``vidground worker``: run queued jobs from the job store, without serving HTTP.

A fleet is any number of ``vidground serve`` front ends (``VIDGROUND_RUN_JOBS=false`` if they
should only take requests) and N workers on M machines, all pointing at one PostgreSQL job store
(``VIDGROUND_JOB_STORE=postgresql://…``) and at the model servers (``VIDGROUND_BACKEND=openai``,
a vLLM fleet) or a local model. A worker is the server's own job path (the same
:class:`~vidground.server.service.Service`: validation, video limits, executor, job runner),
with no HTTP in front (it never imports FastAPI).

**Every worker must see the videos at the same paths as the front ends**: the media root
(``VIDGROUND_MEDIA_ROOT``, for ``video_path``) and the data dir (``VIDGROUND_DATA_DIR``, whose
``uploads/`` holds ``video_id`` uploads) must be one shared volume or network file system. A
worker that cannot read a job's video gives the attempt back to the queue with a clear error
(code ``video_not_on_worker``); after the job's last attempt it fails with that error.

SIGTERM or Ctrl-C: stop claiming, let running jobs finish (up to ``drain_s``), exit. A worker
killed outright loses nothing: its jobs are re-run once their lease (``VIDGROUND_JOB_LEASE_S``)
runs out.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path

from .config import Settings
from .errors import SetupError

log = logging.getLogger("vidground.worker")


class WorkerSetupError(SetupError):
    code = "worker_setup"


def check_paths(settings: Settings) -> None:
    """Refuse to start when this machine cannot see the shared media root."""
    media = Path(settings.media_root).expanduser()
    if not media.is_dir():
        raise WorkerSetupError(
            f"the media root {media} does not exist on {socket.gethostname()}: a worker needs "
            "the same media root (VIDGROUND_MEDIA_ROOT / --media-root) and data dir "
            "(VIDGROUND_DATA_DIR / --data-dir, which holds uploads/) as the front ends, on a "
            "shared volume")
    if not os.access(media, os.R_OK | os.X_OK):
        raise WorkerSetupError(f"the media root {media} is not readable by this worker "
                               f"(user id {os.getuid()})")


def run_worker(settings: Settings, *, drain_s: float = 30.0,
               stop: threading.Event | None = None) -> None:
    """Run jobs until SIGTERM/SIGINT (or ``stop`` is set)."""
    check_paths(settings)
    from .grounding import Grounder
    from .server.service import Service

    settings = settings.model_copy(update={"run_jobs": True})
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    svc = Service(settings, Grounder(settings=settings))
    svc.start()
    log.info("vidground worker ready on %s (pid %d): %d thread(s), job store %s, media root "
             "%s, data dir %s", socket.gethostname(), os.getpid(), svc.executor.workers,
             svc.store.describe(), svc.media_root, svc.data_dir)
    if not svc.store.integrity["ok"]:
        log.error("job store: %s", svc.store.integrity["message"])
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("stopping: no new jobs; waiting up to %g s for %d running job(s)", drain_s,
                 svc.executor.running)
        svc.executor.stop(timeout=drain_s)
        svc.stop()
        log.info("worker stopped")
