"""Live monitors on the server (issue 25 items 4 and 5), end to end over real HTTP: a real
``vidground serve`` process (uvicorn), a generated clip streamed live as HLS by ``ffmpeg -re``
over a local http.server, the fake model server that looks at the frames, a webhook receiver
checking signatures. Sources and alert targets are confined like ``vidground watch``; the
number of monitors is capped; a server killed with SIGKILL mid-event is replaced by a new one
on the same store that resumes the monitor: no alert lost, none repeated (by idempotency
key). The store's one-holder lease is checked on SQLite and a real PostgreSQL server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live_media import HlsStream, WebhookReceiver
from tests.support.media import make_video
from tests.support.server_utils import ServerProcess, openai_env
from vidground.live.alerts import SIGNATURE_HEADER, verify_signature
from vidground.server.jobstore import JobStore, SQLiteJobStore

FPS = 24
QUERY = "When is the red square visible?"
SECRET = "monitor-secret"


def clip(folder: Path, duration: float, *events: tuple[float, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_video(folder / "clip.ts", duration=duration, fps=FPS, gop=12,
                      intervals=events, paint_index=False, size=(160, 120)).path


def wait_until(what: str, predicate: Any, timeout_s: float, server: ServerProcess | None = None
               ) -> Any:
    """``predicate()`` once it is truthy; fails naming ``what`` (with the server's log) after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{server.log() if server else ''}")


@pytest.fixture()
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def server_env(model: FakeOpenAIServer, **extra: str) -> dict[str, str]:
    return openai_env(model, VIDGROUND_WEBHOOK_SECRET=SECRET, **extra)


def alerts(srv: ServerProcess, monitor_id: str) -> list[dict[str, Any]]:
    r = httpx.get(srv.url(f"/api/v1/monitors/{monitor_id}/alerts"), headers=srv.headers(),
                  timeout=10)
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["alerts"]))  # oldest first


def keys(received: list[tuple[dict[str, str], bytes]]) -> list[str]:
    return [h["Idempotency-Key"] for h, _ in received]


def test_a_monitor_stores_an_alert_and_sends_a_signed_webhook(tmp_path: Path,
                                                              model: FakeOpenAIServer) -> None:
    env = server_env(model, VIDGROUND_STREAM_ALLOW="127.0.0.1")
    with WebhookReceiver() as hook, ServerProcess(tmp_path, env=env, api_key="k") as srv, \
            HlsStream(clip(tmp_path / "media", 24.0, (4.0, 7.0)), tmp_path / "hls",
                      segment_s=1.0) as hls:
        body = {"source": hls.url, "query": QUERY, "webhook": hook.url, "name": "door",
                "options": {"window_s": 3.0, "every_s": 0.5}}
        assert httpx.post(srv.url("/api/v1/monitors"), json=body,
                          timeout=10).status_code == 401  # auth like every route
        r = httpx.post(srv.url("/api/v1/monitors"), json=body, headers=srv.headers(),
                       timeout=10)
        assert r.status_code == 201, r.text
        monitor = r.json()
        mid = monitor["monitor_id"]
        assert monitor["queries"] == [QUERY] and monitor["name"] == "door"
        assert monitor["options"]["window_s"] == 3.0 and monitor["options"]["gate"] is True

        def state() -> dict[str, Any]:
            got = httpx.get(srv.url(f"/api/v1/monitors/{mid}"), headers=srv.headers(),
                            timeout=10)
            assert got.status_code == 200, got.text
            return dict(got.json()["state"])

        live = wait_until("the monitor to connect and check", lambda: (
            s if (s := state())["connected"] and s["last_check"] else None), 30, srv)
        assert live["frames"] > 0 and live["held"] is True and live["model_calls"] >= 1
        wait_until("started and ended at the receiver", lambda: len(hook.received) >= 2,
                   40, srv)
        stored = wait_until("both alerts delivered", lambda: (
            a if len(a := alerts(srv, mid)) == 2 and not any(x["pending"] for x in a)
            else None), 20, srv)
        listed = httpx.get(srv.url("/api/v1/monitors"), headers=srv.headers(),
                           timeout=10).json()
        assert listed["total"] == 1 and listed["monitors"][0]["alerts"] == 2
        assert "calls_per_minute" in listed["monitors"][0]["state"]
        # the stored alerts are what the receiver got, signed, with their idempotency keys
        assert [a["kind"] for a in stored] == ["started", "ended"]
        assert all(a["deliveries"] == {"webhook": "delivered"} for a in stored)
        for (headers, raw), alert in zip(hook.received, stored, strict=True):
            assert verify_signature(raw, headers.get(SIGNATURE_HEADER), SECRET)
            sent = json.loads(raw)
            assert sent == alert["event"] and sent["monitor"] == mid
            assert headers["Idempotency-Key"] == f"{sent['id']}:{sent['event']}"
        ended = stored[1]["event"]
        assert ended["refined"] is True
        assert abs(ended["end"] - ended["start"] - 3.0) <= 2 / FPS + 1e-6, ended
        # the clip and the evidence picture by their links (never a server path)
        assert str(tmp_path) not in json.dumps(stored)
        got = httpx.get(srv.url(ended["clip"]), headers=srv.headers(), timeout=10)
        assert got.status_code == 200 and got.content[4:8] == b"ftyp"
        image = ended["evidence"][0]["image"]
        got = httpx.get(srv.url(image), headers=srv.headers(), timeout=10)
        assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"
        assert httpx.get(srv.url(f"/api/v1/monitors/{mid}/files/{'0' * 24}-00000000.mp4"),
                         headers=srv.headers(), timeout=10).status_code == 404
        page = httpx.get(srv.url(f"/api/v1/monitors/{mid}/alerts?limit=1&offset=1"),
                         headers=srv.headers(), timeout=10).json()
        assert page["total"] == 2 and [a["kind"] for a in page["alerts"]] == ["started"]
        # deleted: it stops, and it and its alerts are gone
        r = httpx.delete(srv.url(f"/api/v1/monitors/{mid}"), headers=srv.headers(), timeout=30)
        assert r.status_code == 204
        r = httpx.get(srv.url(f"/api/v1/monitors/{mid}"), headers=srv.headers(), timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "monitor_not_found"
        r = httpx.get(srv.url(f"/api/v1/monitors/{mid}/alerts"), headers=srv.headers(),
                      timeout=10)
        assert r.status_code == 404


HOSTILE = [
    ({"source": "file:///etc/passwd"}, "file://"),
    ({"source": "/etc/passwd"}, "stream URL"),
    ({"source": "/dev/video0"}, "stream URL"),
    ({"source": "concat:/etc/passwd|/etc/hosts"}, "scheme"),
    ({"source": "http://127.0.0.1:7860/api/v1/health"}, "internal address"),
    ({"source": "rtsp://169.254.169.254/latest/meta-data"}, "internal address"),
    ({"source": "http://[::1]:8000/x.m3u8"}, "internal address"),
    ({"source": "http://10.0.0.5/live.m3u8"}, "internal address"),
    ({"source": "http://93.184.216.34/live.m3u8", "webhook": "http://127.0.0.1:9/hook"},
     "webhook host"),
    ({"source": "http://93.184.216.34/live.m3u8", "webhook": "file:///tmp/x"}, "http(s)"),
    ({"source": "http://93.184.216.34/live.m3u8", "mqtt": "mqtt://192.168.1.2:1883/x"},
     "MQTT broker"),
]


def test_hostile_sources_and_targets_are_refused_and_monitors_are_capped(
        tmp_path: Path, model: FakeOpenAIServer) -> None:
    env = server_env(model, VIDGROUND_MAX_MONITORS="1", VIDGROUND_RUN_MONITORS="false")
    with ServerProcess(tmp_path, env=env) as srv:
        for extra, words in HOSTILE:
            r = httpx.post(srv.url("/api/v1/monitors"), json={"query": QUERY, **extra},
                           timeout=10)
            assert r.status_code == 422, (extra, r.text)
            error = r.json()["error"]
            assert error["code"] == "invalid_source" and words in error["message"], (extra,
                                                                                     error)
        bad = [({"source": "http://93.184.216.34/a.m3u8", "query": QUERY,
                 "options": {"window_s": 0}}, "invalid_options"),
               ({"source": "http://93.184.216.34/a.m3u8", "query": QUERY,
                 "options": {"calls_per_minute": 100000}}, "invalid_options"),
               ({"source": "http://93.184.216.34/a.m3u8", "query": "  "}, "invalid_query"),
               ({"source": "http://93.184.216.34/a.m3u8"}, "invalid_request"),
               ({"source": "http://93.184.216.34/a.m3u8", "query": QUERY, "queries": [QUERY]},
                "invalid_request"),
               ({"source": "http://93.184.216.34/a.m3u8", "query": QUERY, "extra": 1},
                "invalid_request")]
        for body, code in bad:
            r = httpx.post(srv.url("/api/v1/monitors"), json=body, timeout=10)
            assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
        assert httpx.get(srv.url("/api/v1/monitors"), timeout=10).json()["total"] == 0
        ok = {"source": "rtsp://cam:pw@93.184.216.34/stream1", "query": QUERY}
        first = httpx.post(srv.url("/api/v1/monitors"), json=ok, timeout=10)
        assert first.status_code == 201, first.text
        assert first.json()["source"] == "rtsp://cam:***@93.184.216.34/stream1"
        assert first.json()["state"]["status"] == "waiting"  # nobody runs monitors here
        second = httpx.post(srv.url("/api/v1/monitors"), json=ok, timeout=10)
        assert second.status_code == 409, second.text
        error = second.json()["error"]
        assert error["code"] == "too_many_monitors" and "VIDGROUND_MAX_MONITORS" in \
            error["message"]
        assert httpx.get(srv.url("/api/v1/monitors/" + "f" * 24),
                         timeout=10).status_code == 404


def test_kill_9_mid_event_a_new_server_resumes_no_alert_lost_or_repeated(
        tmp_path: Path, model: FakeOpenAIServer) -> None:
    """The receiver is down when the first event starts; the server stores the alert and is
    killed (SIGKILL) while it retries and while the event is on. A new server on the same
    store takes the monitor over at once (its holder is gone), sends the stored alert, sees
    the same event end (same id: not announced again), then the next event."""
    env = server_env(model, VIDGROUND_STREAM_ALLOW="127.0.0.1")
    with WebhookReceiver(fail_status=503) as hook, ServerProcess(tmp_path, env=env) as srv, \
            HlsStream(clip(tmp_path / "media", 36.0, (6.0, 11.0), (26.0, 29.0)),
                      tmp_path / "hls", segment_s=1.0) as hls:
        body = {"source": hls.url, "query": QUERY, "webhook": hook.url,
                "options": {"window_s": 3.0, "every_s": 0.5}}
        r = httpx.post(srv.url("/api/v1/monitors"), json=body, timeout=10)
        assert r.status_code == 201, r.text
        mid = r.json()["monitor_id"]
        first = wait_until("the first alert stored and tried", lambda: (
            a if (a := alerts(srv, mid)) and hook.attempts >= 1 else None), 40, srv)
        assert [a["kind"] for a in first] == ["started"] and first[0]["pending"]
        srv.kill()
        killed_at = hls_time = time.time() - hls.started_wall
        assert hls_time < 11.0, f"the kill came after the event ({hls_time:.1f} s)"
        with hook._lock:
            hook.fail_status = None  # the receiver is back
        srv.start()  # a new process on the same data dir (same store)
        wait_until("four distinct alerts at the receiver", lambda: len(set(keys(
            hook.received))) >= 4, 60, srv)
        stored = wait_until("four alerts stored and delivered", lambda: (
            a if len(a := alerts(srv, mid)) == 4 and not any(x["pending"] for x in a)
            else None), 20, srv)
    ids = [a["event"]["id"] for a in stored]
    assert [a["kind"] for a in stored] == ["started", "ended", "started", "ended"], stored
    assert ids[0] == ids[1] != ids[2] == ids[3]  # the first event ended under its own id
    assert stored[1]["event"]["end"] > stored[0]["event"]["start"]
    # the receiver got every stored alert; anything it got twice is the same alert under
    # the same key (a receiver drops it), and nothing it got is not stored
    by_key: dict[str, set[bytes]] = {}
    for headers, raw in hook.received:
        assert verify_signature(raw, headers.get(SIGNATURE_HEADER), SECRET)
        by_key.setdefault(headers["Idempotency-Key"], set()).add(raw)
    assert set(by_key) == {f"{a['event']['id']}:{a['kind']}" for a in stored}
    assert all(len(bodies) == 1 for bodies in by_key.values())
    assert {json.loads(next(iter(b)))["id"] for b in by_key.values()} == set(ids)
    # the first alert reached the receiver only after the restart (stored, then sent)
    assert killed_at > 0


# -- the store: one holder per monitor ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[JobStore,
                                                                                JobStore]]:
    """Two stores on one database, as two processes would hold them."""
    if request.param == "sqlite":
        stores: list[JobStore] = [SQLiteJobStore(tmp_path / "jobs.sqlite3", lease_s=5)
                                  for _ in range(2)]
        yield stores[0], stores[1]
        for s in stores:
            s.close()
        return
    from pg_server import PostgresServer

    from vidground.server.jobstore.postgres import PostgresJobStore

    with PostgresServer() as pg:
        url = pg.new_database("monitors")
        stores = [PostgresJobStore(url, lease_s=5) for _ in range(2)]
        yield stores[0], stores[1]
        for s in stores:
            s.close()


def test_each_monitor_has_one_holder_and_a_dead_holders_monitor_moves(
        two_stores: tuple[JobStore, JobStore]) -> None:
    a, b = two_stores
    ids = [a.create_monitor({"n": i}, limit=None)["id"] for i in range(12)]
    claimed: dict[str, list[dict[str, Any]]] = {}
    go = threading.Barrier(2)

    def claim(name: str, store: JobStore) -> None:
        go.wait(timeout=10)
        claimed[name] = store.claim_monitors(100)

    threads = [threading.Thread(target=claim, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    got = [row["id"] for rows in claimed.values() for row in rows]
    assert sorted(got) == sorted(ids)  # every monitor once, none twice
    assert b.claim_monitors(100) == [] and a.claim_monitors(100) == []
    # a's monitors: b cannot renew them or store alerts for them
    mine = {row["id"]: row["run_token"] for row in claimed["a"]}
    theirs = {row["id"]: row["run_token"] for row in claimed["b"]}
    mid, token = next(iter(mine.items())) if mine else next(iter(theirs.items()))
    holder, other = (a, b) if mine else (b, a)
    assert holder.renew_monitor(mid, token, state={"status": "connected"})
    assert not other.renew_monitor(mid, "not-the-token")
    assert other.add_alert(mid, "not-the-token", {"id": "e", "event": "started"}) == (False,
                                                                                      None)
    assert holder.add_alert(mid, token, {"id": "e", "event": "started"})[0] is True
    assert holder.add_alert(mid, token, {"id": "e", "event": "started"})[0] is False
    # the holder stops beating: once its lease is out the other takes the monitor, and the
    # old holder is fenced off (no renewal, no alert)
    other.clock_offset_s = 6.0
    for own, own_token in (theirs if holder is a else mine).items():
        assert other.renew_monitor(own, own_token)  # its own beat keeps its own monitors
    taken = {row["id"]: row["run_token"] for row in other.claim_monitors(100)}
    assert mid in taken and set(taken) == set(mine if holder is a else theirs)
    assert not holder.renew_monitor(mid, token)
    assert holder.add_alert(mid, token, {"id": "f", "event": "started"}) == (False, None)
    assert other.add_alert(mid, taken[mid], {"id": "f", "event": "started"})[0] is True
    alerts_, total = a.list_alerts(mid)
    assert total == 2 and [x["event_id"] for x in alerts_] == ["f", "e"]
    assert a.pending_alerts(mid)[0]["event_id"] == "e"
    a.record_delivery(alerts_[1]["seq"], "webhook", "delivered", ["webhook"])
    assert [x["event_id"] for x in a.pending_alerts(mid)] == ["f"]


def test_two_servers_on_one_store_run_a_monitor_once_and_the_survivor_takes_it_over(
        tmp_path: Path, model: FakeOpenAIServer) -> None:
    """Two running servers share one store: the monitor runs in one of them only (the
    model hears from one watcher); that one is killed while an event is on, and the other,
    still running, takes the monitor over within a beat and ends that event under its id
    (a window from before its checkpoint does not end it early)."""
    env = server_env(model, VIDGROUND_STREAM_ALLOW="127.0.0.1")
    data = tmp_path / "data"
    with WebhookReceiver() as hook, \
            ServerProcess(tmp_path / "a", env=env, data_dir=data, log_dir=tmp_path / "a") as a, \
            ServerProcess(tmp_path / "b", env=env, data_dir=data, log_dir=tmp_path / "b") as b, \
            HlsStream(clip(tmp_path / "media", 40.0, (16.0, 19.0)), tmp_path / "hls",
                      segment_s=1.0) as hls:
        body = {"source": hls.url, "query": QUERY, "webhook": hook.url,
                "options": {"window_s": 3.0, "every_s": 0.5}}
        r = httpx.post(a.url("/api/v1/monitors"), json=body, timeout=10)
        assert r.status_code == 201, r.text
        mid = r.json()["monitor_id"]

        def state(srv: ServerProcess) -> dict[str, Any]:
            got = httpx.get(srv.url(f"/api/v1/monitors/{mid}"), timeout=10)
            assert got.status_code == 200, got.text
            return dict(got.json()["state"])

        first = wait_until("the monitor running in a", lambda: (
            s if (s := state(a))["connected"] else None), 30, a)
        # b sees it held, with the state a's beat stored (it runs in a alone)
        wait_until("b seeing a's state", lambda: (
            s if (s := state(b))["held"] and s.get("since") == first["since"] else None), 10, b)
        # killed while the event is on, after a stored its "started"
        wait_until("a storing the event's start", lambda: alerts(a, mid), 40, a)
        # one watcher only: every model call the fake model got is one a counted
        calls_before = model.chat_count
        ran = state(a)
        assert calls_before <= ran["model_calls"] + 1, (calls_before, ran)
        a.kill()
        took = wait_until("b taking the monitor over", lambda: (
            s if (s := state(b))["connected"] and s["since"] != first["since"] else None),
            20, b)
        assert took["held"] is True
        wait_until("started and ended from b", lambda: len(hook.received) >= 2, 40, b)
        try:
            stored = wait_until("both alerts delivered", lambda: (
                x if len(x := alerts(b, mid)) == 2 and not any(y["pending"] for y in x)
                else None), 20, b)
        except AssertionError:
            for rec in model.requests[-40:]:
                print("REQ", [None if t is None else round(t, 2) for t in rec.times],
                      "".join("1" if p else "0" for p in rec.present))
            for x in alerts(b, mid):
                print("ALERT", x["kind"], x["event"]["start"], x["event"]["end"])
            raise
    assert [x["kind"] for x in stored] == ["started", "ended"]
    assert stored[0]["event"]["id"] == stored[1]["event"]["id"]  # one event, ended by b
    assert set(keys(hook.received)) == {f"{x['event']['id']}:{x['kind']}" for x in stored}
