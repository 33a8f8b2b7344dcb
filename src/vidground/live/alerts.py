"""Where live events go: a local JSONL store, signed webhooks, MQTT.

Webhooks are JSON POSTs with ``X-Vidground-Signature: sha256=<hex HMAC-SHA256 of the body>``
(when a secret is set), ``Idempotency-Key`` (the same for every retry of one event, so a
receiver drops repeats) and ``X-Vidground-Event``. Connection errors, 408, 429 and 5xx are
retried with exponential backoff; a receiver that stays down gets a dead-letter JSONL record.
Deliveries run on one background thread per sink behind a bounded queue: a slow receiver never
holds up the watcher, and a full queue dead-letters instead of growing.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from .sources import AllowList, SourceError, check_url

SIGNATURE_HEADER = "X-Vidground-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` is the right signature of ``body`` (constant time)."""
    return bool(header) and hmac.compare_digest(sign(body, secret), str(header))


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, sort_keys=True).encode()


def idempotency_key(event: dict[str, Any]) -> str:
    return f"{event.get('id', '')}:{event.get('event', '')}"


class Sink(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _append_jsonl(path: Path, record: dict[str, Any], lock: threading.Lock) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


class JsonlStore:
    """Every event appended as one JSON line to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, event: dict[str, Any]) -> None:
        _append_jsonl(self.path, event, self._lock)

    def close(self) -> None:
        """Nothing held open between events."""


def check_webhook_url(url: str, allow: AllowList | None) -> str:
    """``url`` if events may be POSTed there (http(s); checked like a source when ``allow``
    is given: no internal address unless allowed), else :class:`SourceError`."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise SourceError(f"webhook URL must be http(s), got {url!r}")
    if allow is not None:
        check_url(url, allow, what="webhook")
    return url


def check_mqtt_url(url: str, allow: AllowList | None) -> str:
    """``url`` if it is ``mqtt(s)://HOST:PORT/TOPIC`` with a plain topic (and, with ``allow``,
    a broker a source could name), else :class:`SourceError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise SourceError(f"MQTT target must be mqtt://HOST:PORT/TOPIC, got {url!r}")
    topic = parts.path.lstrip("/")
    if not topic or "+" in topic or "#" in url or parts.query:
        raise SourceError(f"MQTT target needs a plain topic (no wildcards), got {url!r}")
    if allow is not None:
        check_url(f"http://{parts.netloc.rpartition('@')[2]}/", allow, what="MQTT broker")
    return url


#: ``on_result(event, outcome)``: told once per event what became of it: ``"delivered"`` or
#: ``"dead: <why>"`` (the server records it with the stored alert)
ResultCallback = Callable[[dict[str, Any], str], None]


class _Background:
    """A delivery thread behind a bounded queue; ``deliver`` does one event."""

    on_result: ResultCallback | None = None

    def __init__(self, name: str, max_queue: int) -> None:
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.overflow(event)

    def _loop(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.deliver(event)
            except Exception as exc:  # noqa: BLE001 - a sink never kills its thread
                self.failed(event, f"{type(exc).__name__}: {exc}", 0)

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (within ``timeout_s``), then stop."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout=timeout_s)

    def deliver(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def failed(self, event: dict[str, Any], error: str, attempts: int) -> None:
        raise NotImplementedError

    def overflow(self, event: dict[str, Any]) -> None:
        self.failed(event, "delivery queue full", 0)

    def _tell(self, event: dict[str, Any], outcome: str) -> None:
        if self.on_result is not None:
            # the recorder's failure is not the sink's
            with contextlib.suppress(Exception):
                self.on_result(event, outcome)


class WebhookSink(_Background):
    """POST each event to ``url`` (see the module docstring). ``dead_letter``: the JSONL file
    of events that could not be delivered. ``allow``: when given, the URL is checked like a
    source (no internal addresses unless allowed)."""

    def __init__(self, url: str, *, secret: str | None = None, attempts: int = 5,
                 backoff_s: float = 0.5, backoff_max_s: float = 8.0, timeout_s: float = 5.0,
                 dead_letter: Path | None = None, allow: AllowList | None = None,
                 max_queue: int = 1000, on_result: ResultCallback | None = None) -> None:
        check_webhook_url(url, allow)
        self.url = url
        self.on_result = on_result
        self.secret = secret
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.dead_letter = dead_letter
        self.delivered = 0
        self.dead = 0
        self.tries = 0
        self._lock = threading.Lock()
        super().__init__("live-webhook", max_queue)

    def deliver(self, event: dict[str, Any]) -> None:
        import httpx

        body = encode_event(event)
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER:
                   idempotency_key(event), "X-Vidground-Event": str(event.get("event")),
                   "User-Agent": "vidground-live"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        error = ""
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            for attempt in range(1, self.attempts + 1):
                self.tries += 1
                try:
                    response = client.post(self.url, content=body, headers=headers)
                    if response.status_code < 300:
                        self.delivered += 1
                        self._tell(event, "delivered")
                        return
                    error = f"HTTP {response.status_code}"
                    if response.status_code not in RETRY_STATUSES:
                        break
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    time.sleep(min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)))
        self.failed(event, error, attempt)

    def failed(self, event: dict[str, Any], error: str, attempts: int) -> None:
        self.dead += 1
        self._tell(event, f"dead: {error}")
        if self.dead_letter is not None:
            _append_jsonl(self.dead_letter, {"sink": "webhook", "url": self.url,
                                             "error": error, "attempts": attempts,
                                             "at": round(time.time(), 3), "event": event},
                          self._lock)


class MqttSink(_Background):
    """Publish each event as JSON to ``mqtt://HOST:PORT/TOPIC`` (QoS 1) with paho-mqtt."""

    def __init__(self, url: str, *, dead_letter: Path | None = None,
                 allow: AllowList | None = None, timeout_s: float = 5.0,
                 max_queue: int = 1000, client_id: str = "",
                 on_result: ResultCallback | None = None) -> None:
        check_mqtt_url(url, allow)
        parts = urlsplit(url)
        host = str(parts.hostname)  # check_mqtt_url made sure there is one
        topic = parts.path.lstrip("/")
        self.on_result = on_result
        import paho.mqtt.client as mqtt

        self.topic = topic
        self.timeout_s = timeout_s
        self.dead_letter = dead_letter
        self.delivered = 0
        self.dead = 0
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if parts.scheme == "mqtts":
            self._client.tls_set()
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        self._client.reconnect_delay_set(1, 8)
        self._client.connect_async(host, parts.port or 1883, keepalive=30)
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        super().__init__("live-mqtt", max_queue)

    def deliver(self, event: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        info = self._client.publish(self.topic, encode_event(event), qos=1)
        info.wait_for_publish(timeout=self.timeout_s)
        if info.is_published():
            self.delivered += 1
            self._tell(event, "delivered")
        else:
            self.failed(event, "not acknowledged by the broker in time", 1)

    def failed(self, event: dict[str, Any], error: str, attempts: int) -> None:
        self.dead += 1
        self._tell(event, f"dead: {error}")
        if self.dead_letter is not None:
            _append_jsonl(self.dead_letter, {"sink": "mqtt", "topic": self.topic,
                                             "error": error, "attempts": attempts,
                                             "at": round(time.time(), 3), "event": event},
                          self._lock)

    def close(self, timeout_s: float = 30.0) -> None:
        super().close(timeout_s)
        self._client.loop_stop()
        self._client.disconnect()


class AlertHub:
    """Fan an event out to every sink; a sink's error never stops the others."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def send(self, event: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.send(event)
            except Exception:  # noqa: BLE001, S112 - one bad sink must not stop the rest
                continue

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
