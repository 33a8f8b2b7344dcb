"""The one service every shell uses — the API routes, the jobs, the web page: settings, the
:class:`~vidground.grounding.Grounder` (one model, loaded once), the bounded executor, the job
store and runner, the upload store; validation, inference and health.

A request is a plain mapping (``{"video_path" | "video_id", "query", "options", "outputs"}``,
as stored with a job). :meth:`Service.validate` checks it once and hands on a
:class:`CheckedRequest` (the video's file and probe, the query, the options, the outputs asked
for) that everything after takes as it is: :meth:`Service.submit` queues it on the executor,
:meth:`Service.locate` runs it in a worker, :meth:`Service.respond` turns the result into the
API's response (with clip and evidence links when asked). "What happens when?" takes the same
path (:meth:`Service.submit_describe`, describe's own option defaults).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..cache import stats as cache_stats
from ..config import Settings
from ..errors import ModelNotAvailableError, VidgroundError
from ..grounding import Grounder, Grounding
from ..options import LocateOptions, check_query
from ..outputs.describe import describe, describe_options
from ..outputs.describe_extras import check_include
from ..progress import ProgressEvent
from ..video.probe import VideoInfo
from .executor import BoundedExecutor, ignore_outcome
from .jobs import JobRunner
from .jobstore import JobStore, open_store
from .monitors import ExecutorBackend, MonitorManager
from .output_files import OutputFolders, attach_outputs
from .perception_work import KINDS as PERCEPTION_KINDS
from .perception_work import PerceptionRequest, perceive, perception_request
from .search_service import Library
from .storage import UploadStore, probe_checked, resolve_media_path

log = logging.getLogger("vidground.server")


@dataclass(frozen=True)
class CheckedRequest:
    """A request the service has checked, handed on as it is (nothing parses it again):
    ``video``, the file it names (inside the media root or the upload store); ``info``, that
    file probed under the server's limits (None until :meth:`Service.validate` probes it);
    ``query``, checked and stripped (empty for a describe request); ``options``, parsed;
    ``clips``/``evidence``: the files the answer should come with."""

    video: Path
    query: str
    options: LocateOptions
    info: VideoInfo | None = None
    clips: bool = False
    evidence: bool = False


class Service:
    """Everything the routes share: settings, the Grounder, the executor, jobs, uploads."""

    def __init__(self, settings: Settings, grounder: Grounder) -> None:
        self.settings = settings
        self.grounder = grounder
        data_dir = Path(settings.data_dir).expanduser()
        self.data_dir = data_dir
        self.media_root = Path(settings.media_root).expanduser().resolve()
        self.outputs = OutputFolders.under(data_dir, settings.max_outputs_mb)
        self.store: JobStore = None  # type: ignore[assignment]  # opened in start()
        self.uploads: UploadStore = None  # type: ignore[assignment]
        self.runner: JobRunner | None = None
        self.monitors: MonitorManager = None  # type: ignore[assignment]  # made in start()
        # library search: GET /api/v1/search, the index and grounded-search jobs, the page
        self.library = Library(settings, grounder, self.media_root, self.public_text)
        self.executor = BoundedExecutor(settings.workers, settings.queue_limit,
                                        job_source=self._next_job, name="model worker")
        # clips and evidence: CPU and disk work with its own bounded queue (issue 21)
        self.heavy = BoundedExecutor(settings.heavy_workers, settings.heavy_queue_limit,
                                     name="clip/evidence worker",
                                     busy_hint="retry later (see Retry-After)")
        # probing videos for the async routes: off the event loop, a few at once
        self.probes = BoundedExecutor(settings.probe_limit, settings.probe_limit * 8,
                                      name="video probe", busy_hint="retry in a few seconds")
        self.health_parts = HealthParts(self._read_health_parts)
        self.model_state = "not_loaded"
        self.model_error: str | None = None
        self._stopping = threading.Event()
        self._state_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.settings, self.data_dir)
        requeued, failed = self.store.recover()
        if requeued or failed:
            log.warning("recovered interrupted jobs: %d queued again, %d failed", requeued,
                        failed)
        self.uploads = UploadStore(
            self.data_dir / "uploads", max_bytes=self.settings.max_upload_mb * 1024 * 1024,
            max_duration_s=self.settings.max_video_duration_s,
            max_pixels=self.settings.max_video_pixels)
        if self.settings.run_jobs:
            self.runner = JobRunner(self.store, self.infer, public=self.public_text)
            self.runner.start()
        self.executor.start()
        self.heavy.start()
        self.probes.start()
        # live monitors (issue 25): their model calls wait on the model executor like requests
        self.monitors = MonitorManager(
            self.store, data_dir=self.data_dir, limit=self.settings.max_monitors,
            backend=lambda: ExecutorBackend(self.grounder.backend, self.executor.submit),
            run=self.settings.run_monitors, public=self.public_text)
        self.monitors.start()
        if self.settings.upload_retention_hours > 0:
            threading.Thread(target=self._sweep_uploads, name="vidground-uploads",
                             daemon=True).start()
        if self.settings.preload_model and not self.grounder.backend_ready:
            threading.Thread(target=self._load_model, name="vidground-preload",
                             daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self.executor.stop(timeout=0.0)
        self.heavy.stop(timeout=0.0)
        self.probes.stop(timeout=0.0)
        self.health_parts.close()
        if self.runner is not None:
            self.runner.stop()
        if self.monitors is not None:
            self.monitors.stop()  # hands its monitors back for another process to take
        self.library.close()  # the search index the searches shared
        if self.store is not None:
            self.store.close()  # SQLite: checkpoints the log into the database file

    def _sweep_uploads(self) -> None:
        """Delete uploads unused for ``upload_retention_hours`` (never one a queued or running
        job needs): at start, then every tenth of the retention time (at most hourly)."""
        max_idle = self.settings.upload_retention_hours * 3600
        while True:
            try:
                removed = self.uploads.sweep(max_idle, self.store.videos_in_use())
                if removed:
                    log.info("deleted %d upload(s) unused for %g h", len(removed),
                             self.settings.upload_retention_hours)
            except Exception:  # noqa: BLE001 - a failed sweep is retried, never fatal
                log.exception("sweeping old uploads failed")
            if self._stopping.wait(min(3600.0, max(1.0, max_idle / 10))):
                return

    def _next_job(self) -> Callable[[], None] | None:
        if self.runner is None:
            return None
        return self.runner.next_task()

    def _load_model(self) -> None:
        with self._state_lock:
            self.model_state = "loading"
        try:
            self.grounder.backend.load()
        except VidgroundError as exc:
            self._set_model_error(exc.message)
        except Exception as exc:  # noqa: BLE001 - reported by /health, details in the log
            log.exception("loading the model failed")
            self._set_model_error(f"loading the model failed ({type(exc).__name__}); "
                                  "see the server log")
        else:
            with self._state_lock:
                self.model_state, self.model_error = "ready", None

    def _set_model_error(self, message: str) -> None:
        with self._state_lock:
            self.model_state, self.model_error = "error", message

    # -- the work --------------------------------------------------------------------------
    def video_file(self, request: dict[str, Any]) -> Path:
        if request.get("video_id") is not None:
            return self.uploads.touch(request["video_id"])  # used now: retention restarts
        return resolve_media_path(self.media_root, request["video_path"])

    def check(self, request: dict[str, Any], *, describing: bool = False) -> CheckedRequest:
        """The cheap checks (no probe: a job's video is probed when it runs): the query (none
        for ``describing``), the options (describe's defaults for ``describing``), the video
        exists where allowed."""
        query = "" if describing else check_query(request["query"])
        parse = describe_options if describing else LocateOptions.from_mapping
        options = parse(request.get("options"))
        wanted = request.get("outputs") or {}
        return CheckedRequest(self.video_file(request), query, options,
                              clips=bool(wanted.get("clips")),
                              evidence=bool(wanted.get("evidence")))

    def validate(self, request: dict[str, Any], *, describing: bool = False) -> CheckedRequest:
        """:meth:`check`, and the video probed with the server's limits (413 past them): the
        request as :meth:`locate` and :meth:`respond` take it."""
        checked = self.check(request, describing=describing)
        return replace(checked, info=self.probe(checked.video))

    def submit(self, request: dict[str, Any], progress: Callable[[ProgressEvent], None], *,
               as_grounding: bool = False) -> Future[Any]:
        """Check ``request`` and probe its video now (:meth:`validate`), then queue it on the
        shared executor (429 past the queue limit). The one way to the model for ``POST
        /api/v1/inference`` and the web page (``as_grounding``: the future holds the
        :class:`Grounding`, not the API's dict); jobs take the same :meth:`locate` from the
        job runner."""
        checked = self.validate(request)
        submitted = time.perf_counter()

        def work() -> Any:
            waited = time.perf_counter() - submitted
            grounding = self.locate(checked, progress)
            grounding.timings["queue_s"] = round(waited, 4)
            return grounding if as_grounding else self.respond(checked, grounding)

        return self.executor.submit(work)

    def submit_describe(self, request: dict[str, Any],
                        progress: Callable[[ProgressEvent], None], *,
                        as_description: bool = False) -> Future[Any]:
        """Queue "what happens when?" for the video ``request`` names on the shared executor,
        checked like an inference request (its ``options`` over describe's defaults, see
        :func:`~vidground.outputs.describe.describe_options`). The one way to describe for
        ``POST /api/v1/describe`` and the web page (``as_description``: the future holds the
        :class:`~vidground.outputs.describe.Description`, not the API's dict). ``include``
        (``["subtitles", "shots"]``, :func:`~vidground.outputs.describe_extras.check_include`)
        is checked before queueing: 422 for an unknown one, 503 without the perception extra."""
        include = check_include(request.get("include"))
        checked = self.validate(request, describing=True)

        def work() -> Any:
            found = describe(self.grounder, checked.info or checked.video, checked.options,
                             include=include, progress=progress)
            return found if as_description else found.to_response()

        return self.executor.submit(work)

    def check_perception(self, request: dict[str, Any]) -> PerceptionRequest:
        """The cheap checks of a text/shots/speech request (``kind``, phrase, options, the
        video exists where allowed, the perception extra is installed: 503 naming it)."""
        return perception_request(request, self.video_file(request))

    def submit_perception(self, request: dict[str, Any],
                          progress: Callable[[ProgressEvent], None], *,
                          as_result: bool = False) -> Future[Any]:
        """Check a text/shots/speech request and probe its video now (the server's limits),
        then queue it on the shared executor (429 past the queue limit), like a question:
        the one way for ``POST /api/v1/text|shots|speech`` and the web page (``as_result``:
        the future holds the :class:`Perceived`, not the API's dict)."""
        checked = self.check_perception(request)
        info = self.probe(checked.video)

        def work() -> Any:
            found = perceive(checked, info, progress)
            return found if as_result else found.to_response(checked.output_format)

        return self.executor.submit(work)

    def probe(self, video: Path) -> VideoInfo:
        """``video`` probed with the server's limits (413 past them)."""
        return probe_checked(video, max_duration_s=self.settings.max_video_duration_s,
                             max_pixels=self.settings.max_video_pixels)

    def probed(self, request: dict[str, Any]) -> VideoInfo:
        """The video ``request`` names, probed with the server's limits (413 past them)."""
        return self.probe(self.video_file(request))

    async def off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the probe pool (short blocking work of the async routes: file
        system checks, probes, writes)."""
        return await asyncio.wrap_future(self.probes.submit(lambda: fn(*args)))

    # -- what clients may see --------------------------------------------------------------
    def _private_paths(self) -> list[tuple[str, str]]:
        roots = [(self.data_dir, "<data dir>"), (self.media_root, "<media root>")]
        cache = self.settings.cache_dir
        if cache is not None:
            roots.insert(0, (Path(cache).expanduser(), "<cache dir>"))
        pairs = []
        for path, name in roots:
            for text in {str(path), str(path.expanduser()), str(_resolved(path))}:
                if len(text) > 1:
                    pairs.append((text, name))
        return sorted(pairs, key=lambda p: -len(p[0]))  # the longest (innermost) first

    def public_text(self, message: str) -> str:
        """``message`` with the server's own folders (data dir, media root, cache) named, not
        spelt out: clients never learn where the server keeps its files."""
        for text, name in self._private_paths():
            message = message.replace(text, name)
        return message

    def adopt_upload(self, path: Path, filename: str | None) -> dict[str, Any]:
        """Take a file the web page received into the upload store (checked like an API
        upload: probed, size and video limits) and return its ``{video_id, video, ...}``."""
        return self.uploads.adopt(path, filename)

    def locate(self, checked: CheckedRequest, progress: Callable[[ProgressEvent], None]
               ) -> Grounding:
        """Run one checked request (in an executor worker)."""
        info = checked.info or self.probe(checked.video)  # the Grounder takes it as it is
        try:
            grounding = self.grounder.locate(info, checked.query, checked.options,
                                             progress=progress)
        except ModelNotAvailableError as exc:
            self._set_model_error(exc.message)
            raise
        except VidgroundError:
            raise
        except Exception as exc:
            if not self.model_loaded():  # it failed while loading the model
                log.exception("loading the model failed")
                self._set_model_error(f"loading the model failed ({type(exc).__name__}); "
                                      "see the server log")
            raise
        if self.model_state != "ready":
            with self._state_lock:
                self.model_state, self.model_error = "ready", None
        return grounding

    def infer(self, request: dict[str, Any], progress: Callable[[ProgressEvent], None]
              ) -> dict[str, Any]:
        """Run one job's request (in an executor worker): checked and probed here, where it
        runs, then located; the API response."""
        if self.library.owns(request):  # index, grounded search (issue 27)
            return self.library.run(request, progress)
        if request.get("kind") in PERCEPTION_KINDS:  # text, shots, speech (issue 24)
            perceiving = self.check_perception(request)
            return perceive(perceiving, self.probe(perceiving.video), progress).to_response(
                perceiving.output_format)
        checked = self.validate(request)
        return self.respond(checked, self.locate(checked, progress))

    def respond(self, checked: CheckedRequest, grounding: Grounding) -> dict[str, Any]:
        """The API's response for ``grounding``, with the files the request asks for (clips,
        evidence frames) made and linked."""
        response = grounding.to_response()
        if checked.clips or checked.evidence:
            response = attach_outputs(self.outputs, response, grounding.video,
                                      clips=checked.clips, evidence=checked.evidence)
        return response

    def model_loaded(self) -> bool:
        """The backend exists and (for local models) its weights are in memory."""
        if not self.grounder.backend_ready:
            return False
        return bool(self.grounder.backend.is_loaded)

    def _read_health_parts(self) -> dict[str, Any]:
        """The parts of health that read the disk or the job store (each may fail alone)."""
        parts: dict[str, Any] = {}
        try:
            parts["jobs"] = self.store.counts() if self.store is not None else {}
            parts["job_store"] = dict(self.store.integrity if self.store is not None
                                      else {"ok": True})
        except Exception as exc:  # noqa: BLE001 - reported as the failing part, no details
            log.warning("health: the job store did not answer: %s", exc)
            parts["jobs"] = {}
            parts["job_store"] = {"ok": False, "message": "the job store is not reachable "
                                  f"({type(exc).__name__}); see the server log",
                                  "kept_aside": []}
        try:
            parts["cache"] = cache_stats(self.settings)
        except Exception as exc:  # noqa: BLE001
            log.warning("health: reading the cache failed: %s", exc)
            parts["cache"] = {"enabled": False, "error": "the cache could not be read"}
        return parts

    def health(self, *, show_paths: bool = False, parts: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """The status document (never raises, never waits long on the job store or the disk:
        a part that does not answer within :attr:`HealthParts.wait_s` is reported as the
        failing part). ``show_paths``: the caller is authenticated, so folder names may be
        shown in full."""
        ready = self.model_loaded()
        model = None
        if self.grounder.backend_ready:
            model = self.grounder.backend.model_name
        if model is None:
            model = (self.settings.openai_model if self.settings.backend == "openai"
                     else None) or self.settings.model
        state = self.model_state
        if ready and state in ("not_loaded", "error"):
            state = "ready"
        elif not ready and state == "ready":
            state = "not_loaded"
        if parts is None:
            parts = self.health_parts.get()
        counts = parts.get("jobs") or {}
        integrity = dict(parts.get("job_store") or {"ok": True})
        cache = dict(parts.get("cache") or {})
        if not show_paths:
            integrity["kept_aside"] = [Path(p).name for p in integrity.get("kept_aside") or []]
            cache.pop("dir", None)
        # "unavailable": inference cannot work now (the model failed to load); "degraded":
        # it works, but something needs a person (a damaged or unreachable job store)
        status = ("unavailable" if state == "error" else
                  "degraded" if not integrity.get("ok", True) else "ok")
        return {
            "status": status,
            "job_store": integrity,
            "version": __version__,
            "backend": self.settings.backend,
            "model": model,
            "model_loaded": ready,
            "model_state": state,
            "model_error": self.model_error if state == "error" else None,
            "queue": {"waiting": self.executor.waiting, "running": self.executor.running,
                      "depth": self.executor.waiting + self.executor.running
                      + counts.get("queued", 0),
                      "limit": self.executor.queue_limit, "workers": self.executor.workers},
            "outputs_queue": {"waiting": self.heavy.waiting, "running": self.heavy.running,
                              "limit": self.heavy.queue_limit, "workers": self.heavy.workers},
            "jobs": counts,
            "cache": cache,
        }


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):
        return path


class HealthParts:
    """What health reads from the job store and the disk, read in a thread of its own: a
    health request waits at most :attr:`wait_s` for a fresh reading, else it gets the last
    one, marked stale (a job store that hangs, a cache folder that takes seconds to count, a
    pool of busy threads: health still answers at once). One reading at a time."""

    wait_s = 1.0
    #: a reading older than this while a new one hangs: the job store is reported unreachable
    stale_s = 5.0

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidground-health")
        self._pending: Future[dict[str, Any]] | None = None
        self._last: dict[str, Any] = {}
        self._last_at = 0.0

    def close(self) -> None:
        """Stop reading (a reading that hangs on the job store is not waited for)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _reading(self) -> Future[dict[str, Any]]:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._pool.submit(self._read)
            return self._pending

    def get(self) -> dict[str, Any]:
        """The parts (waits at most :attr:`wait_s`, in this thread)."""
        pending = self._reading()
        try:
            parts = pending.result(timeout=self.wait_s)
        except FutureTimeout:
            parts = None
        return self._settle(parts)

    async def aget(self) -> dict[str, Any]:
        """The parts (waits at most :attr:`wait_s`, without blocking the event loop)."""
        pending = asyncio.wrap_future(self._reading())
        try:
            parts = await asyncio.wait_for(asyncio.shield(pending), self.wait_s)
        except asyncio.TimeoutError:
            pending.add_done_callback(ignore_outcome)
            parts = None
        return self._settle(parts)

    def _settle(self, parts: dict[str, Any] | None) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            if parts is not None:
                self._last, self._last_at = parts, now
            last, age = dict(self._last), now - self._last_at
        if parts is None and (age > self.stale_s or not last):
            last["job_store"] = {"ok": False, "kept_aside": [], "message":
                                 "the job store did not answer in time; see the server log"}
        return last
