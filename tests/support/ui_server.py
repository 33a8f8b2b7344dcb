"""Start the real vidground server (API + web page) on a free loopback port, for browser tests.

>>> with FakeOpenAIServer() as model, UIServer(settings_for(model, media_root)) as srv:
...     page.goto(srv.url)                                                  # doctest: +SKIP

Runs uvicorn in a daemon thread of the test process; the model is the fake OpenAI-compatible
server of ``tests/support/fake_openai_server.py`` (it looks at the frames it receives).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(model_base_url: str, media_root: Path, data_dir: Path, **changes: Any):
    from vidground.config import Settings

    values: dict[str, Any] = {
        "backend": "openai",
        "openai_base_url": model_base_url,
        "openai_max_retries": 0,
        "media_root": media_root,
        "data_dir": data_dir,
        "host": "127.0.0.1",
    }
    values.update(changes)
    return Settings(**values)


def build_app(settings: Any):
    """``create_app`` of the server when it exists; before that, a bare FastAPI app with the
    page mounted the same way ``create_app`` does."""
    try:
        from vidground.server.app import create_app
    except ImportError:
        create_app = None
    if create_app is not None:
        return create_app(settings)
    from fastapi import FastAPI

    from vidground.grounding import Grounder
    from vidground.server.service import Service
    from vidground.server.ui import mount_ui

    app = FastAPI()
    mount_ui(app, Service(settings, Grounder(settings=settings)))
    return app


class UIServer:
    """uvicorn serving ``build_app(settings)`` on 127.0.0.1:<free port> in a thread."""

    def __init__(self, settings: Any, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> UIServer:
        import uvicorn

        app = build_app(self.settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="ui-server")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not getattr(self._server, "started", False):
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> UIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # manual look: python tests/support/ui_server.py [media_root]
    import sys
    import tempfile

    from fake_openai_server import FakeOpenAIServer

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    with FakeOpenAIServer() as model, tempfile.TemporaryDirectory() as data:
        srv = UIServer(settings_for(model.base_url, root, Path(data))).start()
        print("serving", srv.url, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            srv.stop()
