"""uvicorn's HTTP/1.1 protocol with a header-read timeout.

uvicorn closes idle keep-alive connections, but a connection that sends part of a request's
headers and then nothing (a slowloris client) stays open for ever. This protocol closes a
connection whose request headers are not complete ``header_timeout_s`` seconds after it opened
(or after its previous response finished).
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: The uvicorn minor release whose ``H11Protocol`` internals this class reads (``cycle``,
#: ``cycle.response_complete``, ``loop``, ``transport``, ``on_response_complete``); the server
#: extra in pyproject.toml pins uvicorn to it, and a test runs the header timeout on it.
UVICORN_MINOR = "0.55"


def uvicorn_minor() -> str:
    """The installed uvicorn's ``major.minor``."""
    return ".".join(version("uvicorn").split(".")[:2])


class HeaderTimeoutH11Protocol(H11Protocol):
    """:class:`H11Protocol` that gives each request ``header_timeout_s`` to send its headers."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeout(cls, seconds: float) -> type[HeaderTimeoutH11Protocol]:
        return type(cls.__name__, (cls,), {"header_timeout_s": float(seconds)})

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None and self._awaiting_headers():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers():
            self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request on this connection gets its own deadline (the keep-alive timeout
        # closes a connection that sends nothing at all)
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _expired(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()
