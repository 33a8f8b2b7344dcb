"""``vidground worker`` fleets on a real PostgreSQL server: front ends take jobs over HTTP, worker
processes run them; a worker killed with SIGKILL mid-job loses nothing and no result is written
twice; every front end reports the same state; a worker that cannot see a job's video says so."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from pg_server import PostgresServer
from server_utils import ROOT, ServerProcess, free_port, openai_env, wait_for
from worker_utils import WorkerProcess

QUERY = "When is the red square visible?"
FAST = {"refine": False, "verify": False, "output_format": "seconds"}
FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture()
def model(fake_model: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    fake_model.configure(delay_s=0.2, answer=None)
    yield fake_model
    fake_model.configure(delay_s=0.0)


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _states(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT id, status FROM jobs").fetchall())


def _all_final(url: str, ids: list[str]) -> bool:
    """Every job in the store is final, and the jobs ``ids`` are among them (an empty or
    partial read is not "all final")."""
    states = _states(url)
    return states.keys() >= set(ids) and all(s in FINAL for s in states.values())


def _running_on(url: str, pid: int) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM jobs WHERE status='running' AND owner LIKE %s",
                           (f"%:{pid}:%",)).fetchone()
    return row[0] if row else None


def _start_all(workers: list[WorkerProcess]) -> None:
    for w in workers:
        w.start(wait=False)
    for w in workers:
        w.wait_ready()


def test_three_workers_one_killed_mid_job_every_job_done_exactly_once(
        tmp_path: Path, pg: PostgresServer, model: FakeOpenAIServer) -> None:
    url = pg.new_database("fleet")
    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    make_video(media / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    env = openai_env(model, VIDGROUND_JOB_STORE=url, VIDGROUND_JOB_LEASE_S="2")
    front = ServerProcess(_dir(tmp_path / "front"), env={**env, "VIDGROUND_RUN_JOBS": "false"},
                          media_root=media, data_dir=data)
    workers = [WorkerProcess(tmp_path / f"w{i}", env=env, media_root=media, data_dir=data)
               for i in range(3)]
    with front:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * 60
        r = requests.post(front.url("/api/v1/jobs"), json={"requests": reqs}, timeout=30)
        assert r.status_code == 202, r.text
        ids = r.json()["job_ids"]
        try:
            _start_all(workers)
            victim = workers[0]
            killed_job = wait_for(lambda: _running_on(url, victim.pid), 60, 0.02)
            victim.kill()
            wait_for(lambda: _all_final(url, ids), 120, 0.25)
        finally:
            for w in workers:
                w.stop()
        jobs = [requests.get(front.url(f"/api/v1/jobs/{i}"), timeout=10).json() for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 60, Counter(j["status"] for j in jobs)
    for job in jobs:
        start, end = job["result"]["timestamp_range"]
        assert abs(float(start) - 0.5) <= 0.5 and abs(float(end) - 1.0) <= 0.5
    by_id = {j["job_id"]: j for j in jobs}
    assert by_id[killed_job]["attempts"] == 2  # re-run after its lease ran out
    assert sum(j["attempts"] for j in jobs) == 61
    written = Counter(i for w in workers for i in w.recorded("succeeded"))
    assert set(written) == set(ids) and set(written.values()) == {1}, written
    assert killed_job not in victim.recorded("succeeded")
    assert all(w.recorded("succeeded") for w in workers[1:])  # both survivors took work


def test_two_front_ends_and_two_workers_agree_on_every_job(
        tmp_path: Path, pg: PostgresServer, model: FakeOpenAIServer) -> None:
    url = pg.new_database("agree")
    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    video = media / "a.mp4"
    make_video(video, duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    env = openai_env(model, VIDGROUND_JOB_STORE=url, VIDGROUND_JOB_LEASE_S="5")
    front_env = {**env, "VIDGROUND_RUN_JOBS": "false"}
    fronts = [ServerProcess(_dir(tmp_path / f"front{i}"), env=front_env, media_root=media,
                            data_dir=data) for i in range(2)]
    workers = [WorkerProcess(tmp_path / f"w{i}", env=env, media_root=media, data_dir=data)
               for i in range(2)]
    for f in fronts:
        f.start()
    try:
        with open(video, "rb") as fh:  # an upload through one front end, used through both
            up = requests.post(fronts[0].url("/api/v1/videos"),
                               files={"file": ("a.mp4", fh, "video/mp4")}, timeout=30)
        assert up.status_code == 201, up.text
        video_id = up.json()["video_id"]
        ids = []
        for n in range(10):
            body: dict[str, Any] = {"query": QUERY, "options": FAST}
            body.update({"video_path": "a.mp4"} if n % 2 else {"video_id": video_id})
            r = requests.post(fronts[n % 2].url("/api/v1/jobs"), json=body, timeout=10)
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
        for job_id in ids[-2:]:  # cancelled through the front end that did not take them
            r = requests.delete(fronts[0 if ids.index(job_id) % 2 else 1].url(
                f"/api/v1/jobs/{job_id}"), timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        _start_all(workers)
        wait_for(lambda: _all_final(url, ids), 120, 0.25)
        views = [{i: requests.get(f.url(f"/api/v1/jobs/{i}"), timeout=10).json() for i in ids}
                 for f in fronts]
        lists = [requests.get(f.url("/api/v1/jobs?limit=100"), timeout=10).json()
                 for f in fronts]
        counts = [requests.get(f.url("/api/v1/health"), timeout=10).json()["jobs"]
                  for f in fronts]
    finally:
        for w in workers:
            w.stop()
        for f in fronts:
            f.stop()
    assert views[0] == views[1]
    assert lists[0] == lists[1] and lists[0]["total"] == 10
    assert counts[0] == counts[1] == {"queued": 0, "running": 0, "succeeded": 8, "failed": 0,
                                      "cancelled": 2}
    assert [views[0][i]["status"] for i in ids] == ["succeeded"] * 8 + ["cancelled"] * 2
    assert {views[0][i]["request"].get("video_id") for i in ids[::2]} == {video_id}


def test_a_worker_that_cannot_see_the_video_refuses_the_job_clearly(
        tmp_path: Path, pg: PostgresServer, model: FakeOpenAIServer) -> None:
    url = pg.new_database("unshared")
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    env = openai_env(model, VIDGROUND_JOB_STORE=url, VIDGROUND_JOB_MAX_ATTEMPTS="2")
    front = ServerProcess(_dir(tmp_path / "front"), env={**env, "VIDGROUND_RUN_JOBS": "false"},
                          media_root=media, data_dir=tmp_path / "data")
    elsewhere = tmp_path / "other-media"  # exists, but is not the front end's media root
    elsewhere.mkdir()
    worker = WorkerProcess(tmp_path / "w", env=env, media_root=elsewhere,
                           data_dir=tmp_path / "other-data")
    with front:
        r = requests.post(front.url("/api/v1/jobs"), json={
            "video_path": "a.mp4", "query": QUERY, "options": FAST}, timeout=10)
        job_id = r.json()["job_id"]
        with worker:
            job = wait_for(lambda: (lambda j: j if j["status"] in FINAL else None)(
                requests.get(front.url(f"/api/v1/jobs/{job_id}"), timeout=10).json()), 60, 0.2)
    assert job["status"] == "failed" and job["attempts"] == 2, job
    assert job["error"]["code"] == "video_not_on_worker"
    assert "same media root and data dir" in job["error"]["message"]
    assert "giving it back to the queue" in worker.log()


def _worker_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("VIDGROUND_")}
    full.update({"PYTHONPATH": str(ROOT / "src"), "VIDGROUND_BACKEND": "openai",
                 "VIDGROUND_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
                 **(env or {})})
    return subprocess.run([sys.executable, "-m", "vidground", "worker", "--no-preload", *args],
                          capture_output=True, text=True, timeout=60, env=full, cwd=tmp_path)


def test_the_worker_refuses_to_start_without_its_media_root_or_job_store(tmp_path: Path) -> None:
    missing = _worker_cli(tmp_path, "--media-root", str(tmp_path / "nope"),
                          "--data-dir", str(tmp_path / "data"))
    assert missing.returncode == 2, missing.stderr
    text = " ".join(missing.stderr.split())  # Rich wraps long lines
    assert "does not exist" in text and "shared volume" in text
    started = time.monotonic()
    unreachable = _worker_cli(tmp_path, "--media-root", str(tmp_path), "--data-dir",
                              str(tmp_path / "data"), "--job-store",
                              f"postgresql://postgres@127.0.0.1:{free_port()}/jobs")
    assert unreachable.returncode == 2, unreachable.stderr
    text = " ".join(unreachable.stderr.split())
    assert "cannot connect to the job store" in text and "Connection refused" in text
    assert "Traceback" not in text
    assert time.monotonic() - started < 45


def test_a_worker_shares_the_default_sqlite_store_with_a_server_on_one_machine(
        tmp_path: Path, model: FakeOpenAIServer) -> None:
    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    make_video(media / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    env = openai_env(model, VIDGROUND_JOB_LEASE_S="2")  # no VIDGROUND_JOB_STORE: SQLite
    front = ServerProcess(_dir(tmp_path / "front"), env={**env, "VIDGROUND_RUN_JOBS": "false"},
                          media_root=media, data_dir=data)
    with front, WorkerProcess(tmp_path / "w", env=env, media_root=media, data_dir=data) as w:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * 4
        ids = requests.post(front.url("/api/v1/jobs"), json={"requests": reqs},
                            timeout=10).json()["job_ids"]
        jobs = wait_for(lambda: (lambda js: js if all(j["status"] in FINAL for j in js)
                                 else None)([requests.get(front.url(f"/api/v1/jobs/{i}"),
                                                          timeout=10).json() for i in ids]),
                        60, 0.2)
        assert "SQLite file" in w.log()
    assert [j["status"] for j in jobs] == ["succeeded"] * 4
    assert sorted(w.recorded("succeeded")) == sorted(ids)
