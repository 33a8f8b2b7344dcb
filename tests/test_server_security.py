"""The attacks of issue 9, replayed over real HTTP against a real ``vidground serve`` (web page
mounted): each test failed on the code before the fix.

- the page's upload event with a client-made path (a file outside the media root, a FIFO,
  a 1 GiB sparse file): refused by Gradio's own check, nothing copied, health keeps answering;
- DNS rebinding (a foreign Host name) and CSRF (a foreign Origin posting a form);
- hung-up sync requests give their queue places back at once;
- a slow client that never finishes its headers is cut off;
- key guessing is throttled; the page's media route needs the key;
- the page's routes answer errors in our JSON shape.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env, wait_for

pytest.importorskip("gradio")

QUERY = "When is the red square visible?"


@dataclass
class Page:
    srv: ServerProcess
    outside: Path       # a folder outside the media root with a real video in it
    gradio_tmp: Path    # Gradio's upload/cache folder for this server


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as srv:
        yield srv


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, model: FakeOpenAIServer) -> Iterator[Page]:
    base = tmp_path_factory.mktemp("security")
    gradio_tmp = base / "gradio-tmp"
    gradio_tmp.mkdir()
    srv = ServerProcess(base, env=openai_env(model, VIDGROUND_ENABLE_UI="true",
                                             GRADIO_TEMP_DIR=str(gradio_tmp)))
    make_video(srv.media_root / "ok.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)],
               color=(255, 0, 0))
    outside = base / "secret"
    outside.mkdir()
    make_video(outside / "private.mp4", duration=2.0, fps=10)
    os.mkfifo(outside / "fifo.mp4")
    with open(outside / "huge.mp4", "wb") as f:  # 1 GiB, sparse: no disk used
        f.truncate(1 << 30)
    os.symlink(outside / "private.mp4", gradio_tmp / "planted.mp4")
    with srv:
        yield Page(srv, outside, gradio_tmp)


def _gradio_config(srv: ServerProcess) -> dict[str, Any]:
    r = requests.get(srv.url("/config"), timeout=30)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def _upload_event(srv: ServerProcess) -> tuple[int, int]:
    """(fn_index, component id) of the page's upload event."""
    config = _gradio_config(srv)
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for index, dep in enumerate(config["dependencies"]):
        for target, trigger in dep.get("targets", []):
            if trigger == "upload" and ids.get(target) == "vg-upload":
                return dep.get("id", index), target
    raise AssertionError("no upload event on the page")


def send_event(srv: ServerProcess, fn_index: int, trigger: int, data: list[Any],
               timeout_s: float = 30.0) -> dict[str, Any]:
    """Join Gradio's queue with a crafted event and return its ``process_completed``."""
    session = os.urandom(6).hex()
    r = requests.post(srv.url("/gradio_api/queue/join"), json={
        "data": data, "fn_index": fn_index, "trigger_id": trigger, "session_hash": session,
        "event_data": None}, timeout=timeout_s)
    if r.status_code != 200:
        return {"success": False, "http_status": r.status_code, "output": r.text}
    with requests.get(srv.url(f"/gradio_api/queue/data?session_hash={session}"),
                      stream=True, timeout=timeout_s) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return message  # type: ignore[no-any-return]
    raise AssertionError("the event never completed")


def crafted_file(path: Path | str) -> dict[str, Any]:
    return {"path": str(path), "orig_name": "x.mp4", "meta": {"_type": "gradio.FileData"}}


def cached_copies(folder: Path, size: int | None = None) -> list[Path]:
    """Files in Gradio's folder (except the planted symlink), optionally of one size."""
    found = []
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink() and (size is None or p.stat().st_size == size):
            found.append(p)
    return found


@pytest.mark.parametrize("target", ["private.mp4", "proc-root", "fifo.mp4", "huge.mp4",
                                    "planted-symlink"])
def test_page_upload_event_refuses_paths_it_did_not_receive(page: Page, target: str) -> None:
    srv = page.srv
    fn_index, trigger = _upload_event(srv)
    path = {"private.mp4": page.outside / "private.mp4",
            "proc-root": f"/proc/self/root{page.outside / 'private.mp4'}",
            "fifo.mp4": page.outside / "fifo.mp4",
            "huge.mp4": page.outside / "huge.mp4",
            "planted-symlink": page.gradio_tmp / "planted.mp4"}[target]
    secret_size = (page.outside / "private.mp4").stat().st_size
    before = set(cached_copies(page.gradio_tmp))
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(
        send_event(srv, fn_index, trigger, [crafted_file(path), None, "en"])), daemon=True)
    started = time.monotonic()
    worker.start()
    # the server keeps answering while the attempt is handled (it used to freeze on the
    # FIFO until something was written to it, and for seconds on the 1 GiB file)
    slowest = 0.0
    while worker.is_alive() and time.monotonic() - started < 10:
        t0 = time.monotonic()
        assert requests.get(srv.url("/api/v1/health"), timeout=5).status_code == 200
        slowest = max(slowest, time.monotonic() - t0)
        time.sleep(0.05)
    worker.join(20)
    assert not worker.is_alive(), "the crafted event hung"
    assert slowest < 1.0, slowest
    assert outcome.get("success") is False, outcome
    new = set(cached_copies(page.gradio_tmp)) - before
    assert not [p for p in new if p.stat().st_size in (secret_size, 1 << 30)], new
    assert not list((srv.data_dir / "uploads").glob("*.video"))
    assert srv.alive()


def test_page_media_list_pick_cannot_leave_the_media_root(page: Page) -> None:
    srv = page.srv
    config = _gradio_config(srv)
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    pick = next((dep.get("id", i), t) for i, dep in enumerate(config["dependencies"])
                for t, trig in dep.get("targets", []) if trig == "input"
                and ids.get(t) == "vg-media")
    for bad in ("../secret/private.mp4", str(page.outside / "private.mp4")):
        outcome = send_event(srv, pick[0], pick[1], [bad, None, "en"])
        shown = json.dumps(outcome)
        assert "Video ready" not in shown, shown
        # refused by Gradio (not a listed choice) or, past it, by the media-root gate
        assert outcome.get("success") is False or "media root" in shown, shown


def test_foreign_host_names_are_refused(page: Page) -> None:
    srv = page.srv
    for host in ("evil.example", f"evil.example:{srv.port}", "127.0.0.1.nip.io"):
        for path in ("/api/v1/health", "/", "/config"):
            r = requests.get(srv.url(path), headers={"Host": host}, timeout=10)
            assert r.status_code in (400, 421), (host, path, r.status_code)
            assert r.json()["error"]["code"] == "host_not_allowed"
            assert "VIDGROUND_ALLOWED_HOSTS" in r.json()["error"]["message"]
    for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}", "localhost"):
        assert requests.get(srv.url("/api/v1/health"), headers={"Host": host},
                            timeout=10).status_code == 200


def test_cross_origin_posts_are_refused(page: Page) -> None:
    srv = page.srv
    video = (srv.media_root / "ok.mp4").read_bytes()
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": f"http://evil.example:{srv.port}"},
                    {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        r = requests.post(srv.url("/api/v1/videos"), headers=headers, timeout=30,
                          files={"file": ("x.mp4", video, "video/mp4")})
        assert r.status_code == 403, (headers, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "cross_origin_refused"
        r = requests.post(srv.url("/gradio_api/upload"), headers=headers, timeout=30,
                          files={"files": ("x.mp4", video, "video/mp4")})
        assert r.status_code == 403, headers
    assert not list((srv.data_dir / "uploads").glob("*.video"))
    # the page's own origin, and clients that send no Origin, are served
    own = {"Origin": srv.base_url}
    r = requests.post(srv.url("/api/v1/videos"), headers=own, timeout=30,
                      files={"file": ("x.mp4", video, "video/mp4")})
    assert r.status_code == 201, r.text
    assert requests.delete(srv.url(f"/api/v1/videos/{r.json()['video_id']}"),
                           timeout=10).status_code == 204
    # reading stays possible cross-origin (the browser keeps the answer from the foreign page)
    assert requests.get(srv.url("/api/v1/health"), headers={"Origin": "http://evil.example"},
                        timeout=10).status_code == 200


def test_page_routes_answer_errors_in_our_json_shape(page: Page) -> None:
    r = requests.get(page.srv.url("/gradio_api/no-such-thing"), timeout=10)
    assert r.status_code == 404
    body = r.json()
    assert body["error"]["code"] == "not_found" and body["error"]["message"]


# -- queue places of hung-up clients ---------------------------------------------------------


def test_hung_up_sync_requests_leave_the_queue_at_once(tmp_path: Path) -> None:
    """Four clients fill the queue behind a running request and hang up: their places are
    free while the running request is still running (they used to be held until a worker
    reached them, and a real request got 429 with a Retry-After counting them)."""
    model_s = 8.0  # long enough that "freed at once" and "freed when reached" differ
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as slow:
        slow.configure(delay_s=model_s)
        srv = ServerProcess(tmp_path, env=openai_env(slow, VIDGROUND_QUEUE_LIMIT="4",
                                                      VIDGROUND_WORKERS="1"))
        make_video(srv.media_root / "ok.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)],
                   color=(255, 0, 0))
        body = {"video_path": "ok.mp4", "query": QUERY,
                "options": {"refine": False, "verify": False}}

        def health() -> dict[str, Any]:
            return requests.get(srv.url("/api/v1/health"), timeout=5).json()  # type: ignore

        with srv:
            busy = threading.Thread(target=lambda: requests.post(
                srv.url("/api/v1/inference"), json=body, timeout=60), daemon=True)
            busy.start()
            wait_for(lambda: health()["queue"]["running"] == 1, timeout_s=20)
            started = time.monotonic()
            for _ in range(4):  # fill the queue, then hang up
                with pytest.raises(requests.exceptions.ReadTimeout):
                    requests.post(srv.url("/api/v1/inference"), json=body, timeout=0.4)
            # the server notices within its disconnect poll, long before the model answers
            wait_for(lambda: health()["queue"]["waiting"] == 0, timeout_s=4.0)
            assert health()["queue"]["running"] == 1
            assert time.monotonic() - started < model_s
            r = requests.post(srv.url("/api/v1/inference"), json=body, timeout=60)
            assert r.status_code == 200, r.text
            busy.join(60)
            assert srv.alive()


# -- slow clients, key guessing, the page's media route ------------------------------------------


def test_connections_that_never_finish_their_headers_are_closed(tmp_path: Path,
                                                                fake_model) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(fake_model, VIDGROUND_HEADER_TIMEOUT_S="1"))
    with srv:
        socks = []
        try:
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
                socks.append(s)
            # each is closed 1 s after it began; read until then (one generous deadline for
            # all, not a fixed sleep that a slow start-up outlasts)
            deadline = time.monotonic() + 30
            closed = 0
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    closed += s.recv(100) == b""
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed += 1
            assert closed == len(socks), f"{closed} of {len(socks)} closed"
        finally:
            for s in socks:
                s.close()
        # a normal, quick client is not affected
        assert requests.get(srv.url("/api/v1/health"), timeout=10).status_code == 200


def test_wrong_keys_are_throttled(tmp_path: Path, fake_model) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(fake_model, VIDGROUND_AUTH_MAX_FAILURES="5"),
                        api_key="the-key")
    with srv:
        codes = [requests.get(srv.url("/api/v1/jobs"), timeout=10,
                              headers={"Authorization": f"Bearer guess-{i}"}).status_code
                 for i in range(8)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
        r = requests.get(srv.url("/api/v1/jobs"), headers=srv.headers(), timeout=10)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "too_many_failed_logins"
        assert requests.get(srv.url("/api/v1/health"), timeout=10).status_code == 200


def test_page_media_route_needs_the_key_when_one_is_set(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    import vidground.server.ui as ui
    from vidground.config import Settings
    from vidground.server.app import create_app

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"0123456789")
    registry = ui.MediaRegistry()
    token = registry.register(video)
    original = ui.MediaRegistry
    ui.MediaRegistry = lambda: registry  # type: ignore[assignment]
    try:
        app = create_app(Settings(media_root=tmp_path, data_dir=tmp_path / "data",
                                  backend="openai", api_key="sekret"))
    finally:
        ui.MediaRegistry = original  # type: ignore[assignment]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get(f"/ui-media/{token}")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert client.get(f"/ui-media/{token}", headers={"Authorization": "Bearer sekret"}
                          ).content == b"0123456789"
        assert client.post("/login", data={"username": "me", "password": "sekret"}
                           ).status_code == 200
        assert client.get(f"/ui-media/{token}").content == b"0123456789"  # the page's cookie


@pytest.mark.slow
def test_a_locked_job_store_answers_503_with_retry_after(tmp_path: Path, fake_model) -> None:
    """Another process holds the SQLite write lock past the busy timeout: 503 + Retry-After
    (was 500), and the server keeps answering."""
    import sqlite3

    srv = ServerProcess(tmp_path, env=openai_env(fake_model))
    make_video(srv.media_root / "ok.mp4", duration=1.0, fps=5)
    with srv:
        holder = sqlite3.connect(srv.data_dir / "jobs.sqlite3", timeout=1)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            r = requests.post(srv.url("/api/v1/jobs"), json={"video_path": "ok.mp4",
                                                              "query": QUERY}, timeout=90)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_busy"
            assert int(r.headers["Retry-After"]) >= 1
        finally:
            holder.rollback()
            holder.close()
        r = requests.post(srv.url("/api/v1/jobs"), json={"video_path": "ok.mp4",
                                                          "query": QUERY}, timeout=30)
        assert r.status_code == 202, r.text


# -- what the server tells its operator (issue 11) -----------------------------------------------


def test_server_logs_its_setup_and_one_line_per_request(page: Page) -> None:
    srv = page.srv
    r = requests.get(srv.url("/api/v1/health"), headers={"X-Request-ID": "trace-me-42"},
                     timeout=10)
    assert r.headers["X-Request-ID"] == "trace-me-42"
    generated = requests.get(srv.url("/api/v1/nothing"), timeout=10).headers["X-Request-ID"]
    assert len(generated) >= 8
    r = requests.post(srv.url("/api/v1/inference"), json={"video_path": "../x.mp4",
                                                          "query": QUERY}, timeout=10)
    message = r.json()["error"]["message"]
    # the client is told it left the media root, never where the server keeps it (issue 21);
    # the server's own log says where
    assert r.status_code == 403 and "media root" in message
    assert str(srv.media_root.resolve()) not in message
    log_file = srv.data_dir / f"server-{srv.starts}.log"  # whole (srv.log() is its tail)
    log = wait_for(lambda: (lambda text: text if "rid=trace-me-42" in text else None)(
        log_file.read_text(errors="replace")), timeout_s=10)
    assert str(srv.media_root.resolve()) in log and str(srv.data_dir) in log
    assert "backend openai" in log and "http://127.0.0.1:" in log
    line = next(x for x in log.splitlines() if "rid=trace-me-42" in x)
    assert "GET /api/v1/health 200" in line and " ms " in line
    assert f"rid={generated}" in log and "GET /api/v1/nothing 404" in log
    assert "POST /api/v1/inference -> 403 path_not_allowed" in log  # the error, with its cause


def test_health_is_not_ok_when_the_model_failed_to_load(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, env={"VIDGROUND_BACKEND": "transformers",
                                       "VIDGROUND_MODEL": str(tmp_path / "no-such-model"),
                                       "VIDGROUND_PRELOAD_MODEL": "true"})
    with srv:
        health = wait_for(lambda: (lambda h: h if h["model_state"] != "loading" and
                                   h["model_state"] != "not_loaded" else None)(
            requests.get(srv.url("/api/v1/health"), timeout=10).json()), timeout_s=60)
        assert health["model_state"] == "error", health
        assert health["status"] == "unavailable"
        assert "does not exist" in health["model_error"]
