"""Persistent jobs over real HTTP: single, batch, paging, cancel, and SIGKILL mid-run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env, wait_for

QUERY = "When is the red square visible?"
FAST = {"refine": False, "verify": False, "output_format": "seconds"}


def job(srv: ServerProcess, job_id: str) -> dict[str, Any]:
    r = requests.get(srv.url(f"/api/v1/jobs/{job_id}"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_final(srv: ServerProcess, ids: list[str], timeout_s: float = 60) -> list[dict]:
    def check() -> list[dict] | None:
        jobs = [job(srv, i) for i in ids]
        return jobs if all(j["status"] in ("succeeded", "failed", "cancelled")
                           for j in jobs) else None

    return wait_for(check, timeout_s, 0.2)


@pytest.fixture()
def slow_model(fake_model: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    fake_model.configure(delay_s=0.6, answer=None)
    yield fake_model
    fake_model.configure(delay_s=0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAIServer
           ) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("jobs"), env=openai_env(fake_model))
    make_video(srv.media_root / "a.mp4", duration=3.0, fps=10, intervals=[(1.0, 2.0)])
    with srv:
        yield srv


def test_single_job_runs_and_reports_result(server: ServerProcess,
                                             fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0)
    r = requests.post(server.url("/api/v1/jobs"), json={
        "video_path": "a.mp4", "query": QUERY, "options": {"output_format": "seconds"}},
        timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    (done,) = wait_final(server, [job_id])
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"]["fraction"] == 1.0
    assert done["progress"]["stage"] == "done"
    start, end = done["result"]["timestamp_range"]
    assert abs(float(start) - 1.0) <= 0.11 and abs(float(end) - 2.0) <= 0.11
    assert done["request"]["video_path"] == "a.mp4"
    assert done["error"] is None and done["finished_at"]


def test_batch_and_paging(server: ServerProcess, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0)
    reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST} for _ in range(5)]
    r = requests.post(server.url("/api/v1/jobs"), json={"requests": reqs}, timeout=10)
    assert r.status_code == 202, r.text
    batch_id, ids = r.json()["batch_id"], r.json()["job_ids"]
    assert len(ids) == 5 and len(set(ids)) == 5
    jobs = wait_final(server, ids)
    assert all(j["status"] == "succeeded" and j["batch_id"] == batch_id for j in jobs)

    page1 = requests.get(server.url(f"/api/v1/jobs?batch_id={batch_id}&limit=2"),
                         timeout=10).json()
    page2 = requests.get(server.url(f"/api/v1/jobs?batch_id={batch_id}&limit=2&offset=2"),
                         timeout=10).json()
    page3 = requests.get(server.url(f"/api/v1/jobs?batch_id={batch_id}&limit=2&offset=4"),
                         timeout=10).json()
    assert page1["total"] == 5 and (page1["limit"], page1["offset"]) == (2, 0)
    seen = [j["job_id"] for p in (page1, page2, page3) for j in p["jobs"]]
    assert sorted(seen) == sorted(ids) and len(page3["jobs"]) == 1
    assert seen == list(reversed(ids))  # newest first
    listed = requests.get(server.url("/api/v1/jobs?status=succeeded&limit=500"),
                          timeout=10).json()
    assert all(j["status"] == "succeeded" for j in listed["jobs"])
    assert listed["total"] >= 5


def test_bad_request_in_a_batch_refuses_the_whole_batch(server: ServerProcess) -> None:
    before = requests.get(server.url("/api/v1/jobs"), timeout=10).json()["total"]
    r = requests.post(server.url("/api/v1/jobs"), json={"requests": [
        {"video_path": "a.mp4", "query": QUERY},
        {"video_path": "../etc/passwd", "query": QUERY}]}, timeout=10)
    assert r.status_code == 403, r.text
    assert requests.get(server.url("/api/v1/jobs"), timeout=10).json()["total"] == before


def test_cancel_queued_and_running(server: ServerProcess, slow_model: FakeOpenAIServer) -> None:
    # refine on: several model calls, so a running job meets progress events after the flag
    reqs = [{"video_path": "a.mp4", "query": QUERY, "options": {"refine": True}}
            for _ in range(3)]
    ids = requests.post(server.url("/api/v1/jobs"), json={"requests": reqs},
                        timeout=10).json()["job_ids"]
    wait_for(lambda: job(server, ids[0])["status"] == "running", 20)
    # the last one is still queued: cancelled at once
    r = requests.delete(server.url(f"/api/v1/jobs/{ids[2]}"), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    # the running one is flagged, then stops at its next progress event
    r = requests.delete(server.url(f"/api/v1/jobs/{ids[0]}"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("running", "cancelled") and r.json()["cancel_requested"]
    jobs = wait_final(server, ids)
    assert jobs[0]["status"] == "cancelled", jobs[0]
    assert jobs[2]["status"] == "cancelled"
    assert jobs[1]["status"] == "succeeded"
    # cancelling a finished job: 409 JSON
    r = requests.delete(server.url(f"/api/v1/jobs/{ids[1]}"), timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_finished"
    r = requests.delete(server.url("/api/v1/jobs/" + "f" * 24), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"


def _db_states(data_dir: Path) -> dict[str, str]:
    db = sqlite3.connect(str(data_dir / "jobs.sqlite3"))
    try:
        return dict(db.execute("SELECT id, status FROM jobs").fetchall())
    finally:
        db.close()


def test_sigkill_mid_batch_then_restart_completes_every_job(
        tmp_path: Path, slow_model: FakeOpenAIServer) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(slow_model))
    make_video(srv.media_root / "a.mp4", duration=3.0, fps=10, intervals=[(1.0, 2.0)])
    srv.start()
    try:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST} for _ in range(4)]
        ids = requests.post(srv.url("/api/v1/jobs"), json={"requests": reqs},
                            timeout=10).json()["job_ids"]
        # kill while the second job is in the middle of its model call
        wait_for(lambda: job(srv, ids[1])["status"] == "running", 30, 0.05)
        srv.kill()
        states = _db_states(srv.data_dir)
        assert states[ids[0]] == "succeeded" and states[ids[1]] == "running"
        assert states[ids[3]] == "queued"

        srv.start()  # same data_dir: recovers the interrupted job
        jobs = wait_final(srv, ids)
        assert [j["status"] for j in jobs] == ["succeeded"] * 4, jobs
        assert jobs[1]["attempts"] == 2 and jobs[0]["attempts"] == 1
        for j in jobs:
            start, end = j["result"]["timestamp_range"]
            assert abs(float(start) - 1.0) <= 0.5 and abs(float(end) - 2.0) <= 0.5
        assert requests.get(srv.url("/api/v1/health"), timeout=10).json()["jobs"][
            "succeeded"] == 4
    finally:
        srv.stop()


def test_job_interrupted_too_often_fails_with_a_reason(
        tmp_path: Path, slow_model: FakeOpenAIServer) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(slow_model, VIDGROUND_JOB_MAX_ATTEMPTS="1"))
    make_video(srv.media_root / "a.mp4", duration=3.0, fps=10, intervals=[(1.0, 2.0)])
    srv.start()
    try:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST} for _ in range(2)]
        ids = requests.post(srv.url("/api/v1/jobs"), json={"requests": reqs},
                            timeout=10).json()["job_ids"]
        wait_for(lambda: job(srv, ids[0])["status"] == "running", 30, 0.05)
        srv.kill()
        srv.start()
        first, second = wait_final(srv, ids)
        assert first["status"] == "failed", first
        assert first["error"]["code"] == "job_interrupted"
        assert second["status"] == "succeeded", second
    finally:
        srv.stop()


def test_a_failed_job_reports_whole_progress_and_the_failed_stage(
        server: ServerProcess, fake_model: FakeOpenAIServer) -> None:
    """A job that fails at the model call (after decoding) is finished: progress 1.0 and stage
    ``failed`` — it used to stay at the fraction it had reached (0.35) as if still running."""
    fake_model.configure(fail_status=400, fail_message="the model refused the request")
    try:
        r = requests.post(server.url("/api/v1/jobs"), json={
            "video_path": "a.mp4", "query": QUERY, "options": FAST}, timeout=10)
        (done,) = wait_final(server, [r.json()["job_id"]])
    finally:
        fake_model.configure(fail_status=None, fail_message="simulated failure")
    assert done["status"] == "failed", done
    assert done["progress"]["fraction"] == 1.0 and done["progress"]["stage"] == "failed", done
    assert done["error"]["message"]
