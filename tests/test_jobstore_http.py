"""The job store's safety over real HTTP against a real ``vidground serve`` (issue 9, items 5
and 8): the queue limit holds under parallel batches, a damaged store is kept aside and reported
(never an empty queue reported as healthy), and a clean stop checkpoints the SQLite log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env, wait_for

QUERY = "When is the red square visible?"
FAST = {"refine": False, "verify": False, "output_format": "seconds"}


@pytest.fixture()
def stuck_model() -> Iterator[FakeOpenAIServer]:
    """A model server that answers only after a minute: claimed jobs stay running."""
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as fake:
        fake.configure(delay_s=60.0)
        yield fake


def test_parallel_batches_never_pass_the_queue_limit(tmp_path: Path,
                                                     stuck_model: FakeOpenAIServer) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(stuck_model, VIDGROUND_JOB_QUEUE_LIMIT="1000",
                                                  VIDGROUND_RUN_JOBS="false"))
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    batch = {"requests": [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * 100}
    with srv:
        def post(_: int) -> int:
            return requests.post(srv.url("/api/v1/jobs"), json=batch, timeout=60).status_code

        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(post, range(20)))
        counts = requests.get(srv.url("/api/v1/health"), timeout=10).json()["jobs"]
    accepted = codes.count(202)
    assert set(codes) <= {202, 429}, codes
    # nothing runs (front end only, model stuck): exactly 10 batches of 100 fit in 1000
    assert accepted == 10 and codes.count(429) == 10, codes
    assert counts["queued"] + counts["running"] == 1000, counts


def _damage_wal(wal: Path) -> None:
    """Overwrite bytes inside the first frame's page: SQLite would drop the whole log."""
    data = bytearray(wal.read_bytes())
    assert len(data) > 32 + 3 * (24 + 4096), "the log should hold several frames"
    data[32 + 24 + 1000:32 + 24 + 1064] = b"\xa5" * 64
    wal.write_bytes(bytes(data))


def _damage_db_page(db: Path) -> None:
    """Overwrite the middle of the database file's second page (the jobs table's b-tree)."""
    data = bytearray(db.read_bytes())
    data[4096 + 8:4096 + 2048] = b"\x5a" * 2040
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["wal", "database page"])
def test_a_damaged_job_store_is_kept_aside_and_reported(
        tmp_path: Path, fake_model: FakeOpenAIServer, damage: str) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model))
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    db = srv.data_dir / "jobs.sqlite3"
    srv.start()
    try:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * 6
        ids = requests.post(srv.url("/api/v1/jobs"), json={"requests": reqs},
                            timeout=10).json()["job_ids"]
        wait_for(lambda: requests.get(srv.url("/api/v1/health"), timeout=10).json()["jobs"][
            "succeeded"] == 6, 60, 0.2)
        if damage == "wal":
            srv.kill()  # the jobs live in the log, not yet in the database file
            _damage_wal(db.with_name("jobs.sqlite3-wal"))
        else:
            srv.stop()
            _damage_db_page(db)
        srv.start()
        health = requests.get(srv.url("/api/v1/health"), timeout=10).json()
        assert health["status"] == "degraded", health
        assert "DAMAGED" in srv.log()
        aside = sorted(p.name for p in srv.data_dir.glob("jobs.sqlite3*.damaged-*"))
        store = health["job_store"]
        assert store["ok"] is False and "kept aside" in store["message"], store
        assert sorted(Path(p).name for p in store["kept_aside"]) == aside
        assert any(name.startswith("jobs.sqlite3.damaged-") for name in aside), aside
        if damage == "wal":
            assert any(name.startswith("jobs.sqlite3-wal.damaged-") for name in aside), aside
        # the fresh store works; the old jobs are not silently presented as the whole truth
        r = requests.get(srv.url(f"/api/v1/jobs/{ids[0]}"), timeout=10)
        assert r.status_code == 404
        new = requests.post(srv.url("/api/v1/jobs"), json=reqs[0], timeout=10)
        assert new.status_code == 202, new.text
        if damage != "wal":
            return  # what follows does not depend on how the store was damaged
        # still reported after another restart, while the damaged files lie there
        srv.stop()
        srv.start()
        assert requests.get(srv.url("/api/v1/health"), timeout=10).json()[
            "status"] == "degraded"
        srv.stop()
        for path in srv.data_dir.glob("jobs.sqlite3*.damaged-*"):
            path.unlink()
        srv.start()
        health = requests.get(srv.url("/api/v1/health"), timeout=10).json()
        assert health["status"] == "ok" and health["job_store"]["ok"] is True, health
    finally:
        srv.stop()


def test_a_clean_stop_checkpoints_the_log(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model))
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    with srv:
        reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * 3
        requests.post(srv.url("/api/v1/jobs"), json={"requests": reqs}, timeout=10)
        wait_for(lambda: requests.get(srv.url("/api/v1/health"), timeout=10).json()["jobs"][
            "succeeded"] == 3, 60, 0.2)
        wal = srv.data_dir / "jobs.sqlite3-wal"
        assert wal.stat().st_size > 0  # while serving, the jobs are in the log
    wal = srv.data_dir / "jobs.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0, "SIGTERM left the log un-checkpointed"
    # everything is in the database file itself: readable without the log
    db = sqlite3.connect(f"file:{srv.data_dir / 'jobs.sqlite3'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE status='succeeded'").fetchone()[0] == 3
    finally:
        db.close()
