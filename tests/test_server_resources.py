"""The server does not spend model time or disk on what nobody wants any more: a sync request
whose client hung up is dropped (queued: never runs; running: stops at its next progress
event), and uploads can be deleted, and are deleted after ``upload_retention_hours`` unused.

Real ``vidground serve`` subprocesses, real HTTP, the fake OpenAI-compatible model."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env, wait_for

QUERY = "When is the red square visible?"
ONE_CALL = {"refine": False, "verify": False, "frame_sampling_rate": 2}


@pytest.fixture()
def slow_server(tmp_path: Path, fake_model: FakeOpenAIServer) -> Iterator[ServerProcess]:
    """One worker, one model call at a time, each taking 0.6 s."""
    fake_model.configure(delay_s=0.6, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model,
                                                 VIDGROUND_OPENAI_MAX_CONCURRENCY="1",
                                                 VIDGROUND_WORKERS="1"))
    make_video(srv.media_root / "short.mp4", duration=3.0, fps=10, intervals=[(1.0, 2.0)])
    make_video(srv.media_root / "long.mp4", duration=20.0, fps=10, size=(96, 64),
               intervals=[(17.0, 18.5)])
    try:
        with srv:
            yield srv
    finally:
        fake_model.configure(delay_s=0.0, hold_after=None)


def _send(srv: ServerProcess, body: dict) -> socket.socket:
    """Send a sync request on a raw connection and leave it open, unread: the test closes
    it (the client hangs up) when it chooses, not after a timeout."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.sendall(b"POST /api/v1/inference HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def _health(srv: ServerProcess) -> dict:
    return requests.get(srv.url("/api/v1/health"), timeout=10).json()


def test_a_queued_sync_request_whose_client_left_never_runs(
        slow_server: ServerProcess, fake_model: FakeOpenAIServer) -> None:
    # the model holds the first request unanswered (the only worker is busy) until the test
    # lets it go: no race between the first request's time and the second's hang-up
    fake_model.reset_stats()
    fake_model.configure(delay_s=0.0, hold_after=0)
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(requests.post(
        slow_server.url("/api/v1/inference"),
        json={"video_path": "short.mp4", "query": QUERY, "options": ONE_CALL}, timeout=60)))
    first.start()
    wait_for(lambda: len(fake_model.requests) == 1, timeout_s=20)
    # the second waits behind the first (one worker), and its client gives up
    second = _send(slow_server, {"video_path": "short.mp4", "query": QUERY,
                                 "options": ONE_CALL})
    wait_for(lambda: _health(slow_server)["queue"]["waiting"] == 1, timeout_s=20)
    second.close()
    # the server noticed (it logs this after taking the request out of the queue)
    wait_for(lambda: "client disconnected" in slow_server.log(), timeout_s=20)
    fake_model.configure(hold_after=None)
    first.join(timeout=30)
    assert answers and answers[0].status_code == 200, answers
    assert len(fake_model.requests) == 1
    wait_for(lambda: (lambda q: q["waiting"] == 0 and q["running"] == 0)(
        _health(slow_server)["queue"]), timeout_s=20)
    assert "client disconnected" in slow_server.log()


def test_a_running_sync_request_whose_client_left_stops_at_the_next_step(
        slow_server: ServerProcess, fake_model: FakeOpenAIServer) -> None:
    body = {"video_path": "long.mp4", "query": QUERY,
            "options": {**ONE_CALL, "max_frames_per_call": 8}}  # 20 s at 2 fps: 6 windows
    fake_model.reset_stats()
    r = requests.post(slow_server.url("/api/v1/inference"), json=body, timeout=60)
    calls = r.json()["timings"]["model_calls"]
    assert r.status_code == 200 and calls >= 5 and len(fake_model.requests) == calls, r.text
    fake_model.reset_stats()
    fake_model.configure(hold_after=1)  # the second call is held until the client is gone
    client = _send(slow_server, body)
    wait_for(lambda: len(fake_model.requests) == 2, timeout_s=30)
    client.close()  # during the second call
    wait_for(lambda: "client disconnected" in slow_server.log(), timeout_s=20)
    fake_model.configure(hold_after=None)
    # the worker is free again: the next request (one model call; it runs after the dropped
    # one, one worker) is answered
    r = requests.post(slow_server.url("/api/v1/inference"),
                      json={"video_path": "short.mp4", "query": QUERY, "options": ONE_CALL},
                      timeout=60)
    assert r.status_code == 200 and r.json()["timestamp_range"] is not None
    assert 1 <= len(fake_model.requests) - 1 <= 3 < calls  # the dropped request's calls


def _upload(srv: ServerProcess, video: Path) -> str:
    with open(video, "rb") as f:
        r = requests.post(srv.url("/api/v1/videos"), files={"file": ("clip.mp4", f)},
                          timeout=60)
    assert r.status_code == 201, r.text
    return str(r.json()["video_id"])


def test_delete_an_upload(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0)
    video = make_video(tmp_path / "clip.mp4", duration=2.0, fps=10).path
    with ServerProcess(tmp_path / "srv", env=openai_env(fake_model)) as srv:
        video_id = _upload(srv, video)
        assert requests.get(srv.url(f"/api/v1/videos/{video_id}"), timeout=10).ok
        r = requests.delete(srv.url(f"/api/v1/videos/{video_id}"), timeout=10)
        assert r.status_code == 204 and not r.content
        assert not list((srv.data_dir / "uploads").glob(f"{video_id}*"))
        gone = requests.get(srv.url(f"/api/v1/videos/{video_id}"), timeout=10)
        assert gone.status_code == 404 and gone.json()["error"]["message"]
        again = requests.delete(srv.url(f"/api/v1/videos/{video_id}"), timeout=10)
        assert again.status_code == 404
        bad = requests.delete(srv.url("/api/v1/videos/..%2F..%2Fjobs"), timeout=10)
        assert bad.status_code in (404, 422) and "error" in bad.json()


def test_an_upload_a_queued_job_needs_cannot_be_deleted(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=1.0)
    video = make_video(tmp_path / "clip.mp4", duration=2.0, fps=10).path
    try:
        with ServerProcess(tmp_path / "srv", env=openai_env(fake_model)) as srv:
            video_id = _upload(srv, video)
            r = requests.post(srv.url("/api/v1/jobs"), json={
                "video_id": video_id, "query": QUERY, "options": ONE_CALL}, timeout=10)
            job_id = r.json()["job_id"]
            refused = requests.delete(srv.url(f"/api/v1/videos/{video_id}"), timeout=10)
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "video_in_use"
            wait_for(lambda: requests.get(srv.url(f"/api/v1/jobs/{job_id}"), timeout=10)
                     .json()["status"] == "succeeded", timeout_s=30)
            assert requests.delete(srv.url(f"/api/v1/videos/{video_id}"),
                                   timeout=10).status_code == 204
    finally:
        fake_model.configure(delay_s=0.0)


def test_uploads_unused_past_the_retention_time_are_deleted(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """Ages are set on the files' times (the store's clock is the file system's), never slept
    out: the retention time is 3 minutes, so only a stall of minutes could expire a file the
    test means to keep, and every wait is for an observable event (a file gone, a log line)."""
    fake_model.configure(delay_s=0.0)
    video = make_video(tmp_path / "clip.mp4", duration=2.0, fps=10).path
    base = tmp_path / "srv"
    retention_s = 180.0
    week_ago = time.time() - 8 * 24 * 3600
    uploads = base / "data" / "uploads"

    def age(video_id: str, when: float) -> None:
        for suffix in (".video", ".json"):
            os.utime(uploads / f"{video_id}{suffix}", (when, when))

    # the scene is set with no sweep at all (retention 0: keep everything)
    keep_all = openai_env(fake_model, VIDGROUND_UPLOAD_RETENTION_HOURS="0")
    with ServerProcess(base, env=keep_all) as srv:
        assert srv.data_dir / "uploads" == uploads
        old_id, used_id, new_id = _upload(srv, video), _upload(srv, video), _upload(srv, video)
        for video_id in (old_id, used_id, new_id):
            age(video_id, week_ago)  # all uploaded a week ago...
        uploaded_at = (uploads / f"{new_id}.video").stat().st_mtime_ns
        r = requests.post(srv.url("/api/v1/inference"), json={  # ...new_id used just now
            "video_id": new_id, "query": QUERY, "options": ONE_CALL}, timeout=60)
        assert r.status_code == 200, r.text
    # using an upload restarts its clock (the mark is its sidecar's time) and leaves the video
    # file's own time alone (the frame index is keyed by it)
    assert (uploads / f"{new_id}.json").stat().st_mtime > week_ago + 7 * 24 * 3600
    assert (uploads / f"{new_id}.video").stat().st_mtime_ns == uploaded_at
    env = openai_env(fake_model, VIDGROUND_UPLOAD_RETENTION_HOURS=str(retention_s / 3600))
    with ServerProcess(base, env=env) as srv:
        # the sweep at start removed the week-old uploads (its log line: the sweep is over)...
        wait_for(lambda: "deleted 2 upload(s)" in srv.log(), timeout_s=60)
        assert not (uploads / f"{old_id}.video").exists()
        assert not (uploads / f"{old_id}.json").exists()
        assert requests.get(srv.url(f"/api/v1/videos/{old_id}"), timeout=10).status_code == 404
        assert not (uploads / f"{used_id}.video").exists()
        # ...and kept the one uploaded a week ago but used since
        assert (uploads / f"{new_id}.video").exists()
        assert requests.get(srv.url(f"/api/v1/videos/{new_id}"), timeout=10).status_code == 200
        # unused for longer than the retention time: the periodic sweep (every tenth of it,
        # 18 s here) deletes it
        age(new_id, time.time() - 2 * retention_s)
        wait_for(lambda: not (uploads / f"{new_id}.video").exists(), timeout_s=120)
        wait_for(lambda: "deleted 1 upload(s)" in srv.log(), timeout_s=10)
