"""The web page: upload or pick a video, ask when something happens, see it on a timeline.

A Gradio Blocks app mounted at ``/`` of the FastAPI app (``mount_ui``). The page is a shell over
the server's :class:`~vidground.server.service.Service`, exactly like ``POST /api/v1/inference``:
an upload is taken into the same upload store (probed, size and video limits), a pick from the
media list goes through the same media-root confinement, and every question is validated and
queued on the same bounded executor, so the page gets the API's limits, queue and errors
(translated on the Chinese page). Gradio's own "was this file really uploaded?" check is on
(``has_launched``; ``gr.mount_gradio_app`` leaves it off), and the upload handler accepts only
regular files inside Gradio's upload folder.

The video player is a plain HTML5 ``<video id="vg-player">`` fed by ``GET /ui-media/{token}``,
a route that serves only files this page registered (uploads it received, files picked from the
media root). A small script (``ui_assets/ui.js``) makes timeline segments and the ▶ buttons seek
the player to the segment start and play it.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# at module level: FastAPI reads the route's annotations from this module's globals
from starlette.requests import Request  # noqa: E402

from .media import MEDIA_ROUTE, MEDIA_TYPES, MediaRegistry  # noqa: E402
from .outputs import export_root  # noqa: E402
from .page import build_blocks, page_theme  # noqa: E402

if TYPE_CHECKING:
    import fastapi

    from ..service import Service

__all__ = ["mount_ui"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "ui_assets"


def mount_ui(app: fastapi.FastAPI, svc: Service) -> None:
    """Mount the web page at ``/`` of ``app`` (call after the API routes are added), plus
    ``GET /ui-media/{token}`` that streams the videos the page registered to its player (with
    an API key set: only to a logged-in page or a client sending the key)."""
    import gradio as gr
    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    from ..errors import UnauthorizedError
    from ..http import install_error_handlers, key_matches

    settings = svc.settings
    registry = MediaRegistry()
    page_app: dict[str, Any] = {}

    def page_user_ok(request: Request) -> bool:
        """No key configured, the right ``Authorization: Bearer`` key, or the cookie of a
        page that logged in."""
        if not settings.api_key:
            return True
        if key_matches(request, settings.api_key):
            return True
        gradio_app = page_app.get("app")
        if gradio_app is None:
            return False
        cookie_id = getattr(gradio_app, "cookie_id", "")
        token = (request.cookies.get(f"access-token-{cookie_id}")
                 or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
        return bool(token) and token in getattr(gradio_app, "tokens", {})

    @app.get(f"/{MEDIA_ROUTE}/{{token}}", include_in_schema=False)
    def ui_media(token: str, request: Request) -> FileResponse:
        if not page_user_ok(request):
            raise UnauthorizedError("log in to the page (or send 'Authorization: Bearer "
                                    "<key>') to play its videos")
        path = registry.get(token)
        if path is None or not path.is_file():
            raise HTTPException(status_code=404, detail="unknown video")
        return FileResponse(path, media_type=MEDIA_TYPES.get(registry.suffix(token),
                                                             "application/octet-stream"))

    demo = build_blocks(svc, registry)
    api_key = getattr(settings, "api_key", None)
    auth: Callable[[str, str], bool] | None = None
    if api_key:
        # With an API key configured the page is not open either: log in with the key as the
        # password (any user name). The page goes through the service, not the /api routes.
        def key_login(username: str, password: str) -> bool:
            return secrets.compare_digest(str(password).encode(), str(api_key).encode())

        auth = key_login

    head = "<script>\n" + (ASSETS / "ui.js").read_text(encoding="utf-8") + "\n</script>"
    max_mb = int(getattr(settings, "max_upload_mb", 2048) or 2048)
    gr.mount_gradio_app(
        app, demo, path="/",
        theme=page_theme(),
        css=(ASSETS / "ui.css").read_text(encoding="utf-8"),
        head=head,
        max_file_size=f"{max_mb}mb",
        ssr_mode=False,
        footer_links=[],
        show_error=True,
        mcp_server=False,
        auth=auth,
        allowed_paths=[str(export_root(svc.data_dir))],  # the page's exports, nothing else
        auth_message=("Enter the server's API key (VIDGROUND_API_KEY) as the password; any user "
                      "name. / 请输入服务器的 API 密钥作为密码，用户名任意。") if auth else None,
    )
    # Gradio checks that files named in events really came through its upload route only once
    # the app "has launched"; mount_gradio_app never sets the flag, so set it here (the check
    # is Gradio's own, in processing_utils._check_allowed).
    demo.has_launched = True
    for route in app.router.routes:
        mounted = getattr(route, "app", None)
        if mounted is not None and getattr(mounted, "blocks", None) is demo:
            page_app["app"] = mounted
            # the page's own routes answer errors in our JSON shape too (with Gradio's
            # ``detail`` key, which its client reads)
            install_error_handlers(mounted, detail=True)
