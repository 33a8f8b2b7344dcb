"""Live alerts (issue 25): signed webhooks retried and dead-lettered, the JSONL store, MQTT to
a real mosquitto broker on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.live_media import Mosquitto, WebhookReceiver
from vidground.live.alerts import (
    SIGNATURE_HEADER,
    AlertHub,
    JsonlStore,
    MqttSink,
    WebhookSink,
    sign,
    verify_signature,
)
from vidground.live.sources import AllowList

EVENT = {"event": "started", "id": "abc123", "monitor": "door", "query": "a person enters",
         "start": 12.5, "end": None, "wall_start": 1.0, "wall_end": None, "score": None,
         "evidence": [], "clip": None}
LOCAL = AllowList(("127.0.0.1",))


def test_signature_round_trip() -> None:
    body = json.dumps(EVENT).encode()
    assert sign(body, "k").startswith("sha256=")
    assert verify_signature(body, sign(body, "k"), "k")
    assert not verify_signature(body + b" ", sign(body, "k"), "k")
    assert not verify_signature(body, None, "k")


def test_receiver_down_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    with WebhookReceiver(fail_status=503) as hook:
        sink = WebhookSink(hook.url, secret="k", attempts=3, backoff_s=0.05,
                           dead_letter=dead, allow=LOCAL)
        sink.send(EVENT)
        sink.close(timeout_s=10)
        assert hook.attempts == 3
        assert sink.dead == 1 and sink.delivered == 0
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["event"] == EVENT and records[0]["attempts"] == 3
    assert records[0]["error"] == "HTTP 503"


def test_receiver_recovering_gets_it_once_with_one_key(tmp_path: Path) -> None:
    with WebhookReceiver(fail_status=500) as hook:
        sink = WebhookSink(hook.url, secret="k", attempts=6, backoff_s=0.2,
                           dead_letter=tmp_path / "dead.jsonl", allow=LOCAL)
        sink.send(EVENT)
        deadline = time.monotonic() + 5
        while hook.attempts < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        hook.fail_status = None
        sink.close(timeout_s=10)
    assert sink.delivered == 1 and sink.dead == 0
    assert len(hook.received) == 1
    headers, body = hook.received[0]
    assert verify_signature(body, headers[SIGNATURE_HEADER], "k")
    assert headers["Idempotency-Key"] == "abc123:started"
    assert not (tmp_path / "dead.jsonl").exists()


def test_unreachable_receiver_dead_letters(tmp_path: Path) -> None:
    from tests.support.live_media import free_port

    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", attempts=2, backoff_s=0.05,
                       timeout_s=1.0, dead_letter=dead, allow=LOCAL)
    sink.send(EVENT)
    sink.close(timeout_s=10)
    record = json.loads(dead.read_text())
    assert record["attempts"] == 2 and "Connect" in record["error"]


def test_hub_and_store(tmp_path: Path) -> None:
    class Broken:
        def send(self, event: dict) -> None:
            raise RuntimeError("boom")

        def close(self) -> None:
            pass

    store = JsonlStore(tmp_path / "events.jsonl")
    hub = AlertHub([Broken(), store])
    hub.send(EVENT)
    hub.send({**EVENT, "event": "ended", "end": 14.0})
    hub.close()
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == ["started", "ended"]


def test_mqtt_to_mosquitto(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        client, got = broker.subscribe("vidground/door")
        try:
            sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/vidground/door", allow=LOCAL,
                            dead_letter=tmp_path / "dead.jsonl")
            sink.send(EVENT)
            sink.send({**EVENT, "event": "ended", "end": 14.0})
            sink.close(timeout_s=10)
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            client.loop_stop()
            client.disconnect()
    assert [json.loads(p)["event"] for p in got] == ["started", "ended"]
    assert sink.delivered == 2 and sink.dead == 0


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1:1883/", "mqtt://127.0.0.1:1883/a/#",
                                 "http://127.0.0.1/x", "mqtt://169.254.169.254:1883/t"])
def test_mqtt_target_checked(url: str) -> None:
    from vidground.live.sources import SourceError

    with pytest.raises(SourceError):
        MqttSink(url, allow=AllowList(()) if "169.254" in url else LOCAL)
