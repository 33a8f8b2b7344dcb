"""The FastAPI app: the ``/api/v1`` routes, the outputs routes and the web page at ``/`` as thin
shells over one :class:`~vidground.server.service.Service`, with the HTTP plumbing of
:mod:`.http` (JSON errors, body limits, Host/Origin guard, key throttle, access log).

``create_app(settings, grounder)`` builds it; ``run_server(settings)`` serves it with uvicorn
(``vidground serve``). One :class:`~vidground.grounding.Grounder` (one model, loaded once) is
shared by synchronous requests, jobs and the web page.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..config import Settings
from ..grounding import Grounder
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
from .monitor_routes import monitor_router
from .outputs_routes import outputs_router
from .perception_routes import perception_router
from .routes import public, router
from .search_routes import search_router
from .service import Service

log = logging.getLogger("vidground.server")


FALLBACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>vidground</title>
</head><body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>vidground</h1><p>The REST API is running at <code>/api/v1</code>
(<a href="/docs">OpenAPI docs</a>).</p>
<p>The web UI needs Gradio: <code>pip install vidground[server]</code>.</p>{extra}
</body></html>"""


def create_app(settings: Settings | None = None, grounder: Grounder | None = None) -> FastAPI:
    """The whole server: API under ``/api/v1``, docs at ``/docs``, the web page at ``/``."""
    settings = settings or Settings()
    grounder = grounder or Grounder(settings=settings)
    svc = Service(settings, grounder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.start()
        if settings.backend == "openai":  # the remote server's model, not a local default
            model = settings.openai_model or "the first model the server lists"
        else:
            model = settings.model or "default (4B with a GPU, 2B on CPU)"
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
    app.include_router(monitor_router)  # live monitors (issue 25)
    app.include_router(search_router)  # library search and its index (issue 27)
    app.include_router(perception_router)  # on-screen text, shots, speech (issue 24)
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


__all__ = ["create_app", "run_server"]
