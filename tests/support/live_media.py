"""Live streams and receivers for the live tests (issue 25), all on 127.0.0.1.

* :class:`HlsStream`: ``ffmpeg -re`` turns a generated clip into a live HLS event playlist in a
  temporary folder, served by a local ``http.server``; ``down`` makes it refuse every request
  (a dropped stream) until cleared.
* :class:`WebhookReceiver`: records every POST (headers and body); ``fail_status`` answers
  with that status instead (a receiver that is down).
* :class:`Mosquitto`: a real mosquitto broker on a free port, and :meth:`Mosquitto.subscribe`
  collecting what arrives on a topic.
Everything stops in ``__exit__`` (use them as context managers or from fixtures).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HlsStream:
    """Serve ``clip`` live as HLS at :attr:`url` (``segment_s`` seconds per segment)."""

    def __init__(self, clip: Path, folder: Path, *, segment_s: float = 0.5,
                 port: int | None = None) -> None:
        self.clip = Path(clip)
        self.folder = Path(folder)
        self.segment_s = segment_s
        self.port = port or free_port()
        self.down = False
        self.started_wall = 0.0
        self._ffmpeg: subprocess.Popen[bytes] | None = None
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def _handler(self) -> type[SimpleHTTPRequestHandler]:
        stream = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if stream.down:
                    self.send_error(503, "down")
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return Handler

    def start(self) -> HlsStream:
        self.folder.mkdir(parents=True, exist_ok=True)
        handler = partial(self._handler(), directory=str(self.folder))
        self._httpd = _Quiet(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.started_wall = time.time()
        self._ffmpeg = subprocess.Popen(
            [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-loglevel", "error", "-re",
             "-i", str(self.clip), "-c", "copy", "-f", "hls",
             "-hls_time", str(self.segment_s), "-hls_list_size", "0",
             "-hls_playlist_type", "event", "-muxdelay", "0", "-muxpreload", "0",
             "-hls_segment_filename", str(self.folder / "seg%05d.ts"),
             str(self.folder / "live.m3u8")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        playlist = self.folder / "live.m3u8"
        deadline = time.monotonic() + 10
        while not playlist.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not playlist.exists():
            raise RuntimeError("ffmpeg wrote no HLS playlist in 10 s")
        return self

    def wait(self, timeout_s: float = 60) -> None:
        """Wait until ffmpeg has written the whole clip."""
        if self._ffmpeg is not None:
            self._ffmpeg.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self._ffmpeg is not None and self._ffmpeg.poll() is None:
            self._ffmpeg.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._ffmpeg.wait(timeout=5)
            if self._ffmpeg.poll() is None:
                self._ffmpeg.kill()
                self._ffmpeg.wait(timeout=5)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> HlsStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WebhookReceiver:
    """A local webhook endpoint at :attr:`url` recording ``(headers, body)`` of each POST."""

    def __init__(self, fail_status: int | None = None) -> None:
        self.fail_status = fail_status
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.fail_status
                    if status is None:
                        receiver.received.append(({k: v for k, v in self.headers.items()},
                                                  body))
                self.send_response(status or 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._httpd = _Quiet(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None)


class Mosquitto:
    """A mosquitto broker on a free 127.0.0.1 port (anonymous, no persistence)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Mosquitto:
        binary = mosquitto_path()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\n")
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("mosquitto did not start listening in 10 s")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)

    def subscribe(self, topic: str) -> tuple[Any, list[bytes]]:
        """A connected paho client collecting payloads on ``topic`` (stop with
        ``client.loop_stop()``)."""
        import paho.mqtt.client as mqtt

        got: list[bytes] = []
        ready = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_message = lambda _c, _u, msg: got.append(msg.payload)
        client.on_subscribe = lambda *_a: ready.set()
        client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        if not ready.wait(10):
            client.loop_stop()
            raise RuntimeError("could not subscribe to the test broker")
        return client, got


class RtspStream:
    """``clip`` (H.264 MPEG-TS) served live at :attr:`url` by GStreamer's RTSP server, run in
    the system Python (see ``live_rtsp_server.py``); stops when the context exits."""

    def __init__(self, clip: Path, python: str = "/usr/bin/python3") -> None:
        self.clip = Path(clip)
        self.python = python
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def __enter__(self) -> RtspStream:
        script = Path(__file__).with_name("live_rtsp_server.py")
        self._proc = subprocess.Popen([self.python, str(script), str(self.port),
                                       str(self.clip)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # "ready", or EOF when it could not start
        if line.strip() != b"ready":
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self.__exit__()
            raise RuntimeError(f"the RTSP test server did not start: {err[-500:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
