"""The FastAPI app: the ``/api/v1`` routes, JSON errors everywhere, the shared model executor,
the job store, and the web page at ``/``.

``create_app(settings, grounder)`` builds it; ``run_server(settings)`` serves it with uvicorn
(``vidground serve``). One :class:`~vidground.grounding.Grounder` (one model, loaded once) is
shared by synchronous requests, jobs and the web page.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..cache import stats as cache_stats
from ..config import Settings
from ..errors import ModelNotAvailableError, VidgroundError
from ..grounding import Grounder, Grounding
from ..options import LocateOptions, check_query
from ..progress import ProgressEvent
from .executor import BoundedExecutor
from .http import (
    AccessLog,
    AuthThrottle,
    BodyLimit,
    HostOriginGuard,
    SafeJSONResponse,
    allowed_hosts,
    error_json,
    install_error_handlers,
)
from .jobs import JobRunner, JobStore, open_store
from .outputs_routes import attach_outputs, outputs_router
from .storage import UploadStore, probe_checked, resolve_media_path

log = logging.getLogger("vidground.server")


class Service:
    """Everything the routes share: settings, the Grounder, the executor, jobs, uploads."""

    def __init__(self, settings: Settings, grounder: Grounder) -> None:
        self.settings = settings
        self.grounder = grounder
        data_dir = Path(settings.data_dir).expanduser()
        self.data_dir = data_dir
        self.media_root = Path(settings.media_root).expanduser().resolve()
        self.store: JobStore = None  # type: ignore[assignment]  # opened in start()
        self.uploads: UploadStore = None  # type: ignore[assignment]
        self.runner: JobRunner | None = None
        self.executor = BoundedExecutor(settings.workers, settings.queue_limit,
                                        job_source=self._next_job)
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
            self.runner = JobRunner(self.store, self.infer)
            self.runner.start()
        self.executor.start()
        if self.settings.upload_retention_hours > 0:
            threading.Thread(target=self._sweep_uploads, name="vidground-uploads",
                             daemon=True).start()
        if self.settings.preload_model and not self.grounder.backend_ready:
            threading.Thread(target=self._load_model, name="vidground-preload",
                             daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self.executor.stop(timeout=0.0)
        if self.runner is not None:
            self.runner.stop()
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
            load = getattr(self.grounder.backend, "load", None)
            if callable(load):
                load()
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

    def validate(self, request: dict[str, Any]) -> None:
        """Cheap checks before queueing: the video exists where allowed, query and options."""
        check_query(request["query"])
        LocateOptions.from_mapping(request.get("options"))
        self.video_file(request)

    def submit(self, request: dict[str, Any], progress: Callable[[ProgressEvent], None], *,
               as_grounding: bool = False) -> Future[Any]:
        """Check ``request`` now, then queue it on the shared executor (429 past the queue
        limit). The one way to the model for ``POST /api/v1/inference`` and the web page
        (``as_grounding``: the future holds the :class:`Grounding`, not the API's dict); jobs
        take the same :meth:`locate` from the job runner."""
        self.validate(request)
        submitted = time.perf_counter()

        def work() -> Any:
            waited = time.perf_counter() - submitted
            grounding = self.locate(request, progress)
            grounding.timings["queue_s"] = round(waited, 4)
            return grounding if as_grounding else self.respond(request, grounding)

        return self.executor.submit(work)

    def submit_describe(self, request: dict[str, Any],
                        progress: Callable[[ProgressEvent], None]) -> Future[Any]:
        """Queue "what happens when?" for the video ``request`` names (checked like an
        inference request; its ``options`` apply) on the shared executor; the future holds
        the :class:`~vidground.outputs.describe.Description`."""
        from ..outputs.describe import describe

        path = self.video_file(request)
        probe_checked(path, max_duration_s=self.settings.max_video_duration_s,
                      max_pixels=self.settings.max_video_pixels)
        options = LocateOptions.from_mapping(request.get("options"))
        return self.executor.submit(
            lambda: describe(self.grounder, path, options, progress=progress))

    def adopt_upload(self, path: Path, filename: str | None) -> dict[str, Any]:
        """Take a file the web page received into the upload store (checked like an API
        upload: probed, size and video limits) and return its ``{video_id, video, ...}``."""
        return self.uploads.adopt(path, filename)

    def locate(self, request: dict[str, Any], progress: Callable[[ProgressEvent], None]
               ) -> Grounding:
        """Run one inference request (in an executor worker)."""
        path = self.video_file(request)
        probe_checked(path, max_duration_s=self.settings.max_video_duration_s,
                      max_pixels=self.settings.max_video_pixels)
        options = LocateOptions.from_mapping(request.get("options"))
        try:
            grounding = self.grounder.locate(path, request["query"], options, progress=progress)
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
        """Run one inference request (in an executor worker) and return the API response."""
        return self.respond(request, self.locate(request, progress))

    def respond(self, request: dict[str, Any], grounding: Grounding) -> dict[str, Any]:
        """The API's response for ``grounding``, with the files ``request["outputs"]`` asks
        for (clips, evidence frames) made and linked."""
        response = grounding.to_response()
        wanted = request.get("outputs") or {}
        if wanted.get("clips") or wanted.get("evidence"):
            response = attach_outputs(self, response, Path(grounding.video.path),
                                      clips=bool(wanted.get("clips")),
                                      evidence=bool(wanted.get("evidence")))
        return response

    def model_loaded(self) -> bool:
        """The backend exists and (for local models) its weights are in memory."""
        if not self.grounder.backend_ready:
            return False
        return bool(getattr(self.grounder.backend, "is_loaded", True))

    def health(self) -> dict[str, Any]:
        ready = self.model_loaded()
        model = None
        if self.grounder.backend_ready:
            model = getattr(self.grounder.backend, "model_name", None)
        if model is None:
            model = (self.settings.openai_model if self.settings.backend == "openai"
                     else None) or self.settings.model
        state = self.model_state
        if ready and state in ("not_loaded", "error"):
            state = "ready"
        elif not ready and state == "ready":
            state = "not_loaded"
        counts = self.store.counts() if self.store is not None else {}
        integrity = self.store.integrity if self.store is not None else {"ok": True}
        # "unavailable": inference cannot work now (the model failed to load); "degraded":
        # it works, but something needs a person (a damaged job store was set aside)
        status = ("unavailable" if state == "error" else
                  "degraded" if not integrity["ok"] else "ok")
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
            "jobs": counts,
            "cache": cache_stats(self.settings),
        }


FALLBACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>vidground</title>
</head><body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>vidground</h1><p>The REST API is running at <code>/api/v1</code>
(<a href="/docs">OpenAPI docs</a>).</p>
<p>The web UI needs Gradio: <code>pip install vidground[server]</code>.</p>{extra}
</body></html>"""


def create_app(settings: Settings | None = None, grounder: Grounder | None = None) -> FastAPI:
    """The whole server: API under ``/api/v1``, docs at ``/docs``, the web page at ``/``."""
    from .routes import public, router

    settings = settings or Settings()
    grounder = grounder or Grounder(settings=settings)
    svc = Service(settings, grounder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.start()
        model = (settings.openai_model if settings.backend == "openai" else None) \
            or settings.model or "default (4B with a GPU, 2B on CPU)"
        where = (f" at {settings.openai_base_url}" if settings.backend == "openai" else "")
        log.info("vidground %s on http://%s:%d — media root %s, data dir %s, backend %s%s, "
                 "model %s, %d worker(s), queue limit %d", __version__, settings.host,
                 settings.port, svc.media_root, svc.data_dir, settings.backend, where, model,
                 svc.executor.workers, svc.executor.queue_limit)
        try:
            yield
        finally:
            svc.stop()

    # FastAPIOffline: /docs and /redoc from files in the package, not from a CDN (they work
    # on a closed network)
    app = FastAPIOffline(title="vidground", version=__version__, lifespan=lifespan,
                         default_response_class=SafeJSONResponse,
                         description="Find when things happen in a video, with Qwen3-VL. "
                                     "See docs/api.md.")
    app.state.service = svc
    app.state.settings = settings
    app.state.grounder = grounder
    install_error_handlers(app)
    app.include_router(public)
    app.include_router(router)
    app.include_router(outputs_router)  # exports, clips, evidence, describe
    # added last = outermost: the Host/Origin guard sees every request first
    app.add_middleware(BodyLimit, limit=settings.max_request_kb * 1024,
                       exempt=("/api/v1/videos", "/gradio_api/upload"))
    app.add_middleware(AuthThrottle, max_failures=settings.auth_max_failures)
    app.add_middleware(HostOriginGuard,
                       hosts=allowed_hosts(settings.list_setting("allowed_hosts"),
                                           settings.host),
                       origins=settings.list_setting("allowed_origins"))
    app.add_middleware(AccessLog)
    _add_api_fallback(app)
    _add_ui(app, svc)
    return app


def _add_api_fallback(app: FastAPI) -> None:
    """Unknown ``/api/...`` paths get our JSON 404/405 even when the web page (mounted at ``/``)
    would otherwise catch everything."""
    from starlette.routing import Match

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.api_route("/api/{rest:path}", methods=methods, include_in_schema=False)
    async def api_fallback(request: Request, rest: str) -> JSONResponse:
        for route in app.router.routes:
            if getattr(route, "name", None) == "api_fallback":
                continue
            match, _ = route.matches(request.scope)
            if match == Match.PARTIAL:
                return error_json(405, "method_not_allowed",
                                  f"{request.method} is not allowed on {request.url.path}")
        return error_json(404, "not_found",
                          f"no such endpoint: {request.method} {request.url.path}")


def _add_ui(app: FastAPI, svc: Service) -> None:
    settings = svc.settings
    reason = ""
    if settings.enable_ui:
        try:
            from .ui import mount_ui
        except ImportError:
            mount_ui = None  # type: ignore[assignment]
        if mount_ui is not None and importlib.util.find_spec("gradio") is not None:
            try:
                mount_ui(app, svc)
                return
            except Exception as exc:  # noqa: BLE001 - the API must start without the page
                log.warning("the web UI could not be mounted (%s: %s); serving the API only",
                            type(exc).__name__, exc)
                reason = "<p>The web UI failed to start; see the server log.</p>"
    else:
        reason = "<p>The web UI is turned off (VIDGROUND_ENABLE_UI=false).</p>"

    page = FALLBACK_PAGE.format(extra=reason)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)



def run_server(settings: Settings) -> None:
    """Serve the app with uvicorn on ``settings.host:settings.port`` (default 127.0.0.1:7860)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    from .protocol import HeaderTimeoutH11Protocol

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=10, access_log=False,
                http=HeaderTimeoutH11Protocol.with_timeout(settings.header_timeout_s))
