"""A real local OpenAI-compatible HTTP server that *looks at* the frames it receives.

Use it wherever a test needs a model server with known right answers::

    from tests.fake_openai_server import FakeOpenAIServer   # or: from fake_openai_server import …

    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as srv:
        srv.base_url          # "http://127.0.0.1:PORT/v1" -> VIDGROUND_OPENAI_BASE_URL
        srv.model             # "fake/qwen3-vl" (listed at GET /v1/models)
        ...                   # run vidground against it
        srv.requests          # list[RequestRecord]: every POST /v1/chat/completions body + frames
        srv.max_in_flight     # most chat requests it was answering at the same time
        srv.chat_count        # how many chat requests arrived (failed ones included)

Endpoints: ``GET /v1/models``; ``POST /v1/chat/completions`` (``stream`` true or false). It decodes
every ``image_url`` JPEG (Pillow), reads the ``<t seconds>`` text part before each image, decides
per frame whether the object is there (share of pixels near ``color`` >= ``min_fraction``; a
channel of ``color`` >= 128 must be > 150 in the pixel, otherwise < 80), and answers like a model:
``"The red square is visible from 1.5 to 3.0 seconds."`` (one "from a to b" per contiguous run of
frames, times as sent) or ``"The red square does not appear in the video."``. A vLLM-style
``video_url`` with ``data:video/jpeg;base64,<jpeg>,<jpeg>,...`` is understood too: frame times are
``media_io_kwargs.video.frames_indices / fps``.

Behaviour knobs (constructor keywords; change later with ``srv.configure(**knobs)``):
  delay_s=0.0             sleep before answering (a slow server)
  stream_chunk_delay_s=0  sleep between streamed chunks
  hold_after=None         when set to N, chat requests after the first N (counted since
                          ``reset_stats``) wait unanswered until it is set back to None or the
                          server stops: a client stopped at a known point, not a raced delay
  fail_429_times=0        answer the first N chat requests 429 with ``Retry-After: retry_after``
  retry_after="0"         the Retry-After header value sent with those 429s
  always_500=False        every chat request gets 500 {"error": {"message": ...}}
  fail_status=None        e.g. 400: every chat request gets this status and ``fail_message``
  fail_message="..."      the error message of fail_status / always_500
  garbage=False           200 with a body that is not JSON (or, streaming, not SSE JSON)
  empty=False             200 with an empty answer
  answer=None             a fixed answer text instead of looking at the frames
  api_key=None            when set, requests need ``Authorization: Bearer <api_key>`` (else 401)
  models=None             ids listed at /v1/models (default: [model])
  max_body_bytes=None     when set, a chat request whose body is larger gets 413 (as vLLM
                          behind a proxy's body limit); ``srv.body_sizes`` lists every chat
                          body's size in bytes, refused ones included
  events=None             {name: (r, g, b)}: several coloured objects. A prompt that asks to list
                          the events (it begins "List the events that happen in this video",
                          or its Chinese form) gets one line per contiguous run of each object,
                          in time order: ``1.0 - 1.96 seconds: the blue square is visible``;
                          any other prompt naming one of them (``Event: the blue square is
                          visible``) is answered about that object's colour.
  response_format="honour"  what a request's ``response_format`` (``json_schema``) gets:
                          "honour" answers JSON in the grounding schema, like vLLM/SGLang
                          (``{"spans": [{"start": 1.5, "end": 3.0}], "reasoning": "<sentence>"}``);
                          "refuse" answers 400 naming ``response_format`` (a server without
                          structured outputs); "ignore" answers the sentence as if not asked.
                          ``srv.structured_count`` counts the requests that carried one.
Nothing here needs anything but the standard library and Pillow.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

TIME_RE = re.compile(r"<\s*(-?\d+(?:\.\d+)?)\s*seconds?\s*>")


@dataclass
class RequestRecord:
    """What one chat request carried, as the server understood it."""

    body: dict[str, Any]
    headers: dict[str, str]
    times: list[float | None] = field(default_factory=list)
    present: list[bool] = field(default_factory=list)
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # "text:<...>" / "image" / "video" in order
    colors: dict[str, list[bool]] = field(default_factory=dict)  # per ``events`` object
    status: int = 200


def object_fraction(image: Image.Image, color: tuple[int, int, int]) -> float:
    """Share of pixels that look like ``color`` (coarse per-channel thresholds)."""
    a = np.asarray(image.convert("RGB")).astype(np.int16)
    mask = np.ones(a.shape[:2], dtype=bool)
    for channel, target in enumerate(color):
        mask &= (a[..., channel] > 150) if target >= 128 else (a[..., channel] < 80)
    return float(mask.mean()) if mask.size else 0.0


def describe(times: list[float], present: list[bool], name: str) -> str:
    """A model-like sentence naming every contiguous run of frames showing the object."""
    runs = _runs(times, present)
    if not runs:
        return f"The {name} does not appear in the video."
    spans = " and ".join(f"from {_fmt(a)} to {_fmt(b)} seconds" for a, b in runs)
    return f"The {name} is visible {spans}."


#: How a prompt asking for the list of events begins (lower case), in English and Chinese.
LIST_EVENTS_LEADS = ("list the events that happen in this video",
                     "请按时间顺序列出视频中发生的所有事件")


def _runs(times: list[float], present: list[bool]) -> list[tuple[float, float]]:
    """(first, last) frame time of every contiguous run of frames showing the object."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    last: float | None = None
    for t, p in sorted(zip(times, present, strict=False), key=lambda tp: tp[0]):
        if p and start is None:
            start = t
        if not p and start is not None:
            runs.append((start, last if last is not None else start))
            start = None
        last = t
    if start is not None:
        runs.append((start, last if last is not None else start))
    return runs


def list_events(times: list[float], colors: dict[str, list[bool]]) -> str:
    """A dense-captioning answer: one ``a - b seconds: the <name> is visible`` line per run."""
    lines = sorted((a, b, name) for name, present in colors.items()
                   for a, b in _runs(times, present))
    if not lines:
        return "Answer: NOT FOUND"
    return "\n".join(f"{_fmt(a)} - {_fmt(b)} seconds: the {name} is visible"
                     for a, b, name in lines)


def json_answer(times: list[float], present: list[bool], name: str) -> str:
    """What a server that honours the grounding schema answers: one span per run of frames."""
    spans = [{"start": a, "end": b} for a, b in _runs(times, present)]
    return json.dumps({"spans": spans, "reasoning": describe(times, present, name)})


def _json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` of a chat body when it asks for a JSON schema."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt
    return None


def _fmt(t: float) -> str:
    text = f"{t:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _decode_b64_image(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


class FakeOpenAIServer:
    """A threaded stdlib HTTP server on a free 127.0.0.1 port; see the module docstring."""

    def __init__(self, *, color: tuple[int, int, int] = (255, 0, 0),
                 object_name: str = "red square", model: str = "fake/qwen3-vl",
                 min_fraction: float = 0.02, **knobs: Any) -> None:
        self.color = color
        self.object_name = object_name
        self.model = model
        self.min_fraction = min_fraction
        self.delay_s = 0.0
        self.stream_chunk_delay_s = 0.0
        self.hold_after: int | None = None
        self.fail_429_times = 0
        self.retry_after: str | None = "0"
        self.always_500 = False
        self.fail_status: int | None = None
        self.fail_message = "simulated failure"
        self.garbage = False
        self.empty = False
        self.answer: str | None = None
        self.api_key: str | None = None
        self.models: list[str] | None = None
        self.events: dict[str, tuple[int, int, int]] | None = None
        self.max_body_bytes: int | None = None
        self.response_format = "honour"
        self.configure(**knobs)
        self.structured_count = 0
        self.body_sizes: list[int] = []
        self.requests: list[RequestRecord] = []
        self.chat_count = 0
        self.models_count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> FakeOpenAIServer:
        """Change behaviour knobs (names as in the module docstring)."""
        for name, value in knobs.items():
            if name not in _KNOBS:
                raise TypeError(f"unknown FakeOpenAIServer knob {name!r}")
            setattr(self, name, value)
        return self

    def start(self) -> FakeOpenAIServer:
        """Bind a free port and serve in a daemon thread."""
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True,
                                        name="fake-openai-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; slow handlers waiting on ``delay_s`` are woken up."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` — what an OpenAI client takes as base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset_stats(self) -> None:
        """Forget recorded requests and counters."""
        with self._lock:
            self.requests.clear()
            self.body_sizes.clear()
            self.chat_count = 0
            self.models_count = 0
            self.max_in_flight = 0
            self.structured_count = 0

    # -- request understanding --------------------------------------------------------------

    def inspect(self, body: dict[str, Any], headers: dict[str, str]) -> RequestRecord:
        """Decode the frames of a chat body and their times."""
        record = RequestRecord(body=body, headers=headers)
        pending_time: float | None = None
        for message in body.get("messages", []):
            content = message.get("content")
            if message.get("role") != "user" or not isinstance(content, list):
                continue
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    text = part.get("text", "")
                    record.parts.append("text:" + text)
                    match = TIME_RE.fullmatch(text.strip())
                    if match:
                        pending_time = float(match.group(1))
                elif kind == "image_url":
                    record.parts.append("image")
                    url = part["image_url"]["url"]
                    self._add_frame(record, _decode_b64_image(url.split(",", 1)[1]), pending_time)
                    pending_time = None
                elif kind == "video_url":
                    record.parts.append("video")
                    self._add_video(record, part["video_url"]["url"], body)
        return record

    def _add_frame(self, record: RequestRecord, image: Image.Image, t: float | None) -> None:
        record.times.append(t)
        record.present.append(object_fraction(image, self.color) >= self.min_fraction)
        record.image_sizes.append(image.size)
        for name, color in (self.events or {}).items():
            record.colors.setdefault(name, []).append(
                object_fraction(image, color) >= self.min_fraction)

    def _add_video(self, record: RequestRecord, url: str, body: dict[str, Any]) -> None:
        header, _, payload = url.partition(",")
        if "video/jpeg" not in header:
            raise ValueError("only data:video/jpeg;base64 frame lists are understood")
        meta = (body.get("media_io_kwargs") or {}).get("video") or {}
        fps = float(meta.get("fps", 1.0))
        frames = payload.split(",")
        indices = meta.get("frames_indices") or list(range(len(frames)))
        for index, data in zip(indices, frames, strict=False):
            self._add_frame(record, _decode_b64_image(data), index / fps)

    def answer_for(self, record: RequestRecord) -> str:
        """The sentence this fake model answers (JSON when the request asks for a schema and
        ``response_format`` is "honour")."""
        if self.answer is not None:
            return self.answer
        times = [t if t is not None else float(i) for i, t in enumerate(record.times)]
        if _json_schema(record.body) is not None and self.response_format == "honour":
            return json_answer(times, record.present, self.object_name)
        if self.events:
            text = " ".join(p[5:] for p in record.parts if p.startswith("text:"))
            if any(lead in text.lower() for lead in LIST_EVENTS_LEADS):
                return list_events(times, record.colors)
            for name in sorted(self.events, key=len, reverse=True):
                if name in text.lower():
                    return describe(times, record.colors.get(name, []), name)
        return describe(times, record.present, self.object_name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many simultaneous connects must not wait for SYN retries


_KNOBS = {"delay_s", "stream_chunk_delay_s", "hold_after", "fail_429_times", "retry_after",
          "always_500", "fail_status", "fail_message", "garbage", "empty", "answer", "api_key",
          "models", "events", "max_body_bytes", "response_format"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests read ``srv.requests`` instead of logs."""

    # -- helpers --------------------------------------------------------------------------

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(data).encode(), "application/json", headers)

    def _send_raw(self, status: int, payload: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "fake_error",
                                           "code": status}}, headers)

    def _authorized(self) -> bool:
        key = self.fake.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self._error(401, "invalid API key")
            return False
        return True

    # -- endpoints ------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") not in ("/v1/models", "/models"):
            self._error(404, f"no route {self.path}")
            return
        if not self._authorized():
            return
        with self.fake._lock:
            self.fake.models_count += 1
        ids = self.fake.models if self.fake.models is not None else [self.fake.model]
        self._send_json(200, {"object": "list", "data": [
            {"id": i, "object": "model", "created": 0, "owned_by": "fake"} for i in ids]})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with fake._lock:
            fake.chat_count += 1
            number = fake.chat_count
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            fake.body_sizes.append(len(raw))
        try:
            self._chat(raw, number)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _chat(self, raw: bytes, number: int) -> None:
        fake = self.fake
        if not self._authorized():
            return
        if fake.max_body_bytes is not None and len(raw) > fake.max_body_bytes:
            self._error(413, f"request body of {len(raw)} bytes is over the limit of "
                             f"{fake.max_body_bytes} bytes")
            return
        try:
            body = json.loads(raw)
            record = fake.inspect(body, dict(self.headers.items()))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self._error(400, f"bad request: {exc}")
            return
        with fake._lock:
            fake.requests.append(record)
            if _json_schema(body) is not None:
                fake.structured_count += 1
        if fake.delay_s and fake._stopping.wait(fake.delay_s):
            return
        while fake.hold_after is not None and number > fake.hold_after:
            if fake._stopping.wait(0.02):
                return
        if _json_schema(body) is not None and fake.response_format == "refuse":
            record.status = 400
            self._error(400, "response_format json_schema is not supported by this server")
            return
        if number <= fake.fail_429_times:
            record.status = 429
            headers = {"Retry-After": fake.retry_after} if fake.retry_after is not None else {}
            self._error(429, "rate limited, slow down", headers)
            return
        if fake.always_500:
            record.status = 500
            self._error(500, fake.fail_message)
            return
        if fake.fail_status:
            record.status = fake.fail_status
            self._error(fake.fail_status, fake.fail_message)
            return
        if fake.garbage:
            self._send_raw(200, b"<html>502 bad gateway</html> not json", "text/html")
            return
        text = "" if fake.empty else fake.answer_for(record)
        if body.get("stream"):
            self._stream(text, body)
        else:
            self._send_json(200, _completion(body, text))

    def _stream(self, text: str, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = re.findall(r"\S+\s*|\s+", text)
        try:
            for piece in pieces:
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                         "model": body.get("model"),
                         "choices": [{"index": 0, "delta": {"content": piece},
                                      "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if self.fake.stream_chunk_delay_s:
                    time.sleep(self.fake.stream_chunk_delay_s)
            end = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    """A non-streamed chat completion object."""
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()),
                      "total_tokens": len(text.split())}}


__all__ = ["FakeOpenAIServer", "RequestRecord", "describe", "json_answer", "list_events",
           "object_fraction"]
