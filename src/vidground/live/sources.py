"""Live sources: open a camera or stream with PyAV, confine where it may point, reconnect.

Accepted sources: ``rtsp://`` / ``rtsps://``, ``http(s)://`` (HLS ``.m3u8``, progressive video,
MPEG-TS over HTTP), ``rtmp://``, a V4L2 device (``/dev/video0``) and a local file that may still
be growing. ``file://`` and FFmpeg's pseudo-protocols (``concat:``, ``pipe:``, ``data:``...) are
refused. A network source's host is resolved and every address checked: loopback, private,
link-local, multicast and reserved addresses are refused unless the host or address is on the
allow-list (``VIDGROUND_STREAM_ALLOW``, comma separated: host names, addresses, CIDR networks,
optionally ``scheme://`` prefixed). When the allow-list is not empty, only hosts on it are
accepted at all.

Every frame carries its *stream time* (seconds on one continuous timeline from the first frame
seen, kept across reconnects) and its *wall time* (``time.time()`` when it was decoded).
"""

from __future__ import annotations

import io
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import InvalidInputError
from ..frame import Frame

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "rtmp", "rtmps"})
#: FFmpeg protocols a source of each scheme may use underneath (HLS segments, RTP, TLS)
PROTOCOLS = {"http": "http,https,tcp,tls,crypto", "https": "http,https,tcp,tls,crypto",
             "rtsp": "rtsp,rtp,srtp,udp,tcp,tls", "rtsps": "rtsp,rtp,srtp,udp,tcp,tls",
             "rtmp": "rtmp,rtmps,tcp,tls", "rtmps": "rtmp,rtmps,tcp,tls"}
ALLOW_ENV = "VIDGROUND_STREAM_ALLOW"
#: a pts this far behind the last frame means the source restarted its clock (nearer: repeats
#: a reconnect delivers again, dropped)
RESTART_S = 15.0
#: after an HTTP reconnect, frames at or before the last one seen are repeats however far back
#: they are (an HLS reconnect reaches back over the outage, by segments that may be long), for
#: this long at most: a source still behind then restarted its clock
CATCH_UP_S = 30.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SourceError(InvalidInputError):
    """A live source that may not or cannot be opened."""

    code = "invalid_source"


@dataclass(frozen=True)
class StreamFrame:
    """A decoded live frame: ``frame.time`` is stream time (s), ``wall`` the wall clock."""

    frame: Frame
    wall: float

    @property
    def time(self) -> float:
        return self.frame.time


@dataclass(frozen=True)
class AllowList:
    """Hosts, addresses and networks a source (or webhook) may name; see the module doc."""

    entries: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, extra: tuple[str, ...] | list[str] = ()) -> AllowList:
        raw = os.environ.get(ALLOW_ENV, "")
        items = [e.strip() for e in raw.split(",") if e.strip()]
        return cls(tuple(items) + tuple(e.strip() for e in extra if e.strip()))

    def _split(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        for entry in self.entries:
            scheme, _, rest = entry.rpartition("://")
            out.append((scheme.lower() or None, rest.strip("/").lower()))
        return out

    def names_host(self, scheme: str, host: str) -> bool:
        host = host.lower()
        return any((s is None or s == scheme) and h == host for s, h in self._split())

    def names_address(self, scheme: str, address: IPAddress) -> bool:
        for s, h in self._split():
            if s is not None and s != scheme:
                continue
            try:
                if address in ipaddress.ip_network(h, strict=False):
                    return True
            except ValueError:
                continue
        return False


def _is_internal(address: IPAddress) -> bool:
    return bool(address.is_loopback or address.is_private or address.is_link_local
                or address.is_multicast or address.is_reserved or address.is_unspecified
                or getattr(address, "ipv4_mapped", None) is not None)


def _resolve(host: str, port: int | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SourceError(f"cannot resolve {host!r}: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, allow: AllowList, *, what: str = "source") -> str:
    """``url`` if a network ``what`` may point there, else :class:`SourceError` saying why."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in NETWORK_SCHEMES:
        raise SourceError(f"{what} scheme {scheme or '(none)'!r} is not allowed; use one of "
                          f"{', '.join(sorted(NETWORK_SCHEMES))}")
    host = parts.hostname or ""
    if not host:
        raise SourceError(f"{what} {url!r} names no host")
    listed = allow.names_host(scheme, host)
    addresses = _resolve(host, parts.port)
    if allow.entries and not listed and not all(allow.names_address(scheme, a)
                                                for a in addresses):
        raise SourceError(f"{what} host {host!r} is not on the allow-list ({ALLOW_ENV})")
    for address in addresses:
        if _is_internal(address) and not (listed or allow.names_address(scheme, address)):
            raise SourceError(f"{what} host {host!r} resolves to the internal address "
                              f"{address}; add it to {ALLOW_ENV} to watch it")
    return url


@dataclass(frozen=True)
class SourceSpec:
    """What to open: ``url`` for PyAV, its container ``format`` (``v4l2`` for a device) and
    the FFmpeg options; ``kind`` is ``network``, ``device`` or ``file``."""

    url: str
    kind: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def resolve_source(source: str, allow: AllowList | None = None, *, allow_local: bool = True,
                   from_start: bool = False, timeout_s: float = 10.0) -> SourceSpec:
    """Check ``source`` and say how to open it (see the module docstring). ``allow_local``:
    whether device and file paths are accepted (a server passes False). ``from_start``: an
    HLS event playlist is read from its first segment instead of near its live edge."""
    allow = allow if allow is not None else AllowList.from_env()
    text = source.strip()
    if "://" in text or (":" in text.split("/")[0] and not Path(text).exists()):
        scheme = urlsplit(text).scheme.lower()
        if scheme == "file":
            raise SourceError("file:// sources are not allowed; give a network stream URL")
        url = check_url(text, allow)
        timeout_us = str(int(timeout_s * 1_000_000))
        options = {"protocol_whitelist": PROTOCOLS[scheme], "rw_timeout": timeout_us}
        if scheme.startswith("rtsp"):
            options |= {"rtsp_transport": "tcp", "timeout": timeout_us}
        if scheme.startswith("http"):
            options |= {"reconnect": "1", "reconnect_streamed": "1",
                        "reconnect_delay_max": "2"}
            if from_start:
                options["live_start_index"] = "0"
        return SourceSpec(url=url, kind="network", options=options)
    if not allow_local:
        raise SourceError("local devices and files are not allowed here; give a stream URL")
    path = Path(text)
    if text.startswith("/dev/video"):
        return SourceSpec(url=text, kind="device", format="v4l2")
    if not path.is_file():
        raise SourceError(f"{text!r} is neither a stream URL, a video device nor a file")
    return SourceSpec(url=str(path), kind="file",
                      options={"analyzeduration": "500000", "probesize": "32768"})


@dataclass
class SourceStats:
    frames: int = 0
    connects: int = 0
    reconnects: int = 0
    drops: int = 0
    last_error: str | None = None


def _frame_image(frame: Any, max_side: int) -> np.ndarray:
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        w, h = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
        return frame.to_ndarray(format="rgb24", width=w, height=h)
    return frame.to_ndarray(format="rgb24")


class GrowingFile(io.RawIOBase):
    """A file read while something still writes it: at its end, a read waits for more (up to
    ``idle_end_s`` without growth, then it is the end). Not seekable, so the demuxer reads it
    as a stream (MPEG-TS, Matroska/WebM written live, FLV; not MP4, whose index comes last)."""

    def __init__(self, path: str, idle_end_s: float, stop: threading.Event) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._ended = False
        self.idle_end_s = idle_end_s
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        deadline = time.monotonic() + self.idle_end_s
        while True:
            n = self._fh.readinto(buffer)
            if n:
                return n
            if self._ended or self._stop.is_set() or time.monotonic() > deadline:
                self._ended = True  # the end, once: later reads do not wait again
                return 0
            time.sleep(0.02)

    def close(self) -> None:
        self._fh.close()
        super().close()


class LiveSource:
    """Frames from a live source, reconnecting with backoff when it drops.

    Iterate :meth:`frames`; it ends when ``stop`` is set, after ``max_reconnects`` failed
    attempts in a row, or when a file source ends (a growing file is followed until it stops
    growing for ``idle_end_s``). ``on_status`` is told ``("connected"|"dropped"|"reconnecting"
    |"gave_up", detail)``.
    """

    def __init__(self, spec: SourceSpec, *, max_side: int = 448, max_reconnects: int = 20,
                 backoff_s: float = 0.5, backoff_max_s: float = 8.0, idle_end_s: float = 3.0,
                 on_status: Callable[[str, str], None] | None = None) -> None:
        self.spec = spec
        self.max_side = max_side
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.idle_end_s = idle_end_s
        self.on_status = on_status or (lambda _kind, _detail: None)
        self.stats = SourceStats()
        self._base: float | None = None  # pts seconds that is stream time 0
        self._last: float = -1.0
        self._last_wall: float = 0.0
        self._catch_up_until = 0.0  # wall time; see CATCH_UP_S
        self._file: GrowingFile | None = None

    def _stream_time(self, pts_s: float, wall: float) -> float | None:
        """Map a pts (seconds) onto the continuous stream clock; None for a repeat."""
        if self._base is None:
            self._base = pts_s
        t = pts_s - self._base
        if wall < self._catch_up_until and self._last >= 0:
            if 0.0 <= t <= self._last:
                return None  # delivered again by the reconnect (a reach-back, a replay)
            self._catch_up_until = 0.0  # past the repeats (or a restarted clock, below)
        if t < self._last - RESTART_S or t > self._last + 60.0 + (wall - self._last_wall):
            # the source restarted its clock: continue from the last time plus the gap
            gap = max(0.0, wall - self._last_wall) if self._last >= 0 else 0.0
            self._base = pts_s - (self._last + gap)
            t = pts_s - self._base
        if t <= self._last:
            return None
        self._last, self._last_wall = t, wall
        return t

    def _open(self, stop: threading.Event) -> Any:
        import av

        if self.spec.kind == "file":
            self._file = GrowingFile(self.spec.url, self.idle_end_s, stop)
            return av.open(self._file, mode="r", options=dict(self.spec.options))
        options = dict(self.spec.options)
        if self.stats.connects > 0 and "reconnect" in options:
            # an HLS reconnect goes back far enough to cover the outage (segments of at least
            # one second assumed); what it delivers again is dropped as repeats
            outage = max(0.0, time.time() - self._last_wall) if self._last_wall else 0.0
            options["live_start_index"] = str(-min(30, int(outage) + 4))
        return av.open(self.spec.url, mode="r", format=self.spec.format, options=options,
                       timeout=(10.0, 10.0))

    def frames(self, stop: threading.Event) -> Iterator[StreamFrame]:
        failures = 0
        while not stop.is_set():
            try:
                container = self._open(stop)
            except Exception as exc:  # noqa: BLE001 - any failure to open is a drop
                failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if failures > self.max_reconnects:
                    self.on_status("gave_up", self.stats.last_error)
                    return
                self.on_status("reconnecting", self.stats.last_error)
                stop.wait(min(self.backoff_max_s, self.backoff_s * 2 ** (failures - 1)))
                continue
            self.stats.connects += 1
            if self.stats.connects > 1:
                self.stats.reconnects += 1
            if self._last >= 0 and "reconnect" in self.spec.options:
                # an HTTP reconnect (or a resumed clock) reads the same timeline again: its
                # repeats come first (RTSP starts its clock again instead: rebased below)
                self._catch_up_until = time.time() + CATCH_UP_S
            self.on_status("connected", self.spec.url if self.spec.kind != "network"
                           else urlsplit(self.spec.url).hostname or "")
            got = 0
            try:
                for sf in self._decode(container, stop):
                    got += 1
                    yield sf
                error = "the stream ended"
            except Exception as exc:  # noqa: BLE001 - a broken stream is a drop
                error = f"{type(exc).__name__}: {exc}"
            finally:
                container.close()
                if self._file is not None:
                    self._file.close()
                    self._file = None
            if stop.is_set():
                return
            if self.spec.kind == "file":
                return
            failures = 0 if got else failures + 1
            self.stats.drops += 1
            self.stats.last_error = error
            self.on_status("dropped", error)
            if failures > self.max_reconnects:
                self.on_status("gave_up", error)
                return
            stop.wait(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, failures - 1)))

    def _decode(self, container: Any, stop: threading.Event) -> Iterator[StreamFrame]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if stop.is_set():
                return
            if frame.pts is None or frame.time is None:
                continue
            wall = time.time()
            t = self._stream_time(float(frame.time), wall)
            if t is None:
                continue
            self.stats.frames += 1
            image = _frame_image(frame, self.max_side)
            yield StreamFrame(Frame(time=round(t, 6), image=image, index=self.stats.frames - 1),
                              wall)
