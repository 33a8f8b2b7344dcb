"""The job store's whole behaviour, run against both engines: a real SQLite file and a real
PostgreSQL server (started for this module). Two store instances stand for two processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pg_server import PostgresServer
from server_utils import free_port, wait_for

from vidground.server.jobstore import (
    JobFinishedError,
    JobNotFoundError,
    JobQueueFullError,
    JobStore,
    JobStoreUnavailableError,
    JobStoreVersionError,
    SQLiteJobStore,
)
from vidground.server.jobstore.migrations import LATEST, MIGRATIONS
from vidground.server.jobstore.postgres import PostgresJobStore

REQ = {"video_path": "a.mp4", "query": "when?"}

Factory = Callable[..., JobStore]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(engine, location): a fresh SQLite path or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "jobs.sqlite3")
    else:
        yield "postgresql", request.getfixturevalue("pg").new_database("store")


@pytest.fixture()
def make_store(engine: tuple[str, str]) -> Iterator[Factory]:
    """Opens store instances on one database (each like a separate process); closes them."""
    kind, where = engine
    opened: list[JobStore] = []

    def make(**kw: object) -> JobStore:
        store: JobStore = (SQLiteJobStore(Path(where), **kw) if kind == "sqlite"  # type: ignore[arg-type]
                           else PostgresJobStore(where, **kw))  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_create_get_list_and_counts(make_store: Factory) -> None:
    store = make_store()
    batch_id, ids = store.create([dict(REQ, n=i) for i in range(5)], max_attempts=3, batch=True)
    _, (single,) = store.create([{**REQ, "query": "字幕 ✓ \ud800 \x00"}], max_attempts=0)
    assert batch_id and len(set(ids)) == 5
    job = store.get(ids[2])
    assert job["status"] == "queued" and job["batch_id"] == batch_id
    assert job["request"]["n"] == 2 and job["attempts"] == 0 and job["max_attempts"] == 3
    assert job["progress"] == {"fraction": 0.0, "stage": None, "message": "waiting"}
    assert job["created_at"].endswith("+00:00") and job["finished_at"] is None
    assert store.get(single)["request"]["query"] == "字幕 ✓ \ud800 \x00"
    assert store.get(single)["max_attempts"] == 1

    page, total = store.list(limit=2, offset=1, batch_id=batch_id)
    assert total == 5 and [j["job_id"] for j in page] == [ids[3], ids[2]]  # newest first
    everything, total = store.list(limit=50)
    assert total == 6 and everything[0]["job_id"] == single
    assert store.list(status="running")[1] == 0
    assert store.counts() == {"queued": 6, "running": 0, "succeeded": 0, "failed": 0,
                              "cancelled": 0}
    with pytest.raises(JobNotFoundError):
        store.get("f" * 24)


def test_claims_are_fifo_and_a_result_is_written_once(make_store: Factory) -> None:
    store = make_store()
    _, ids = store.create([REQ, REQ], max_attempts=2)
    first = store.claim()
    assert first is not None and first["id"] == ids[0]
    assert first["status"] == "running" and first["attempts"] == 1 and first["run_token"]
    assert first["owner"] == store.owner and first["lease_until"] > time.time() - 5
    assert store.progress(first["id"], first["run_token"], 0.5, "decode", "frames")
    assert store.get(ids[0])["progress"] == {"fraction": 0.5, "stage": "decode",
                                             "message": "frames"}
    assert not store.finish(first["id"], "not-the-token", "succeeded", result={"x": 0})
    assert store.finish(first["id"], first["run_token"], "succeeded", result={"x": 1})
    assert not store.finish(first["id"], first["run_token"], "succeeded", result={"x": 2})
    done = store.get(ids[0])
    assert done["status"] == "succeeded" and done["result"] == {"x": 1}
    assert done["progress"]["fraction"] == 1.0 and done["progress"]["stage"] == "done"
    second = store.claim()
    assert second is not None and second["id"] == ids[1]
    assert store.claim() is None


def test_cancel_queued_running_finished_and_unknown(make_store: Factory) -> None:
    store = make_store()
    _, ids = store.create([REQ, REQ, REQ], max_attempts=1)
    running = store.claim()
    assert running is not None
    assert store.cancel(ids[1])["status"] == "cancelled"
    flagged = store.cancel(ids[0])
    assert flagged["status"] == "running" and flagged["cancel_requested"]
    assert store.cancel_requested(ids[0]) and not store.cancel_requested(ids[2])
    assert not store.progress(ids[0], running["run_token"], 0.3, "model", "asking")
    assert store.finish(ids[0], running["run_token"], "cancelled")
    with pytest.raises(JobFinishedError):
        store.cancel(ids[0])
    with pytest.raises(JobNotFoundError):
        store.cancel("0" * 24)
    claimed = store.claim()
    assert claimed is not None and claimed["id"] == ids[2]  # cancelled jobs are skipped


def test_the_queue_limit_holds_across_processes(make_store: Factory) -> None:
    stores = [make_store(queue_limit=50), make_store(queue_limit=50)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(store: JobStore) -> None:
        try:
            store.create([REQ] * 10, max_attempts=1, batch=True)
            outcome = "ok"
        except JobQueueFullError:
            outcome = "full"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit, args=(stores[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(outcomes) == {"ok": 5, "full": 11}
    assert stores[0].counts()["queued"] == 50


def test_parallel_claims_take_each_job_exactly_once(make_store: Factory) -> None:
    stores = [make_store(), make_store()]
    _, ids = stores[0].create([REQ] * 40, max_attempts=1)
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(store: JobStore) -> None:
        for _ in range(100):
            row = store.claim()
            if row is None:
                return
            with lock:
                claimed.append(row["id"])

    threads = [threading.Thread(target=drain, args=(stores[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_an_expired_lease_re_runs_the_job_then_the_attempts_cap_fails_it(
        make_store: Factory) -> None:
    # Time moves by each store's clock offset (its ``$NOW``), never by sleeping: a lease of
    # 60 s cannot run out by a stall of the machine, and it runs out exactly when a clock passes
    # it.
    dead, alive = make_store(lease_s=60), make_store(lease_s=60)
    _, (job_id,) = dead.create([REQ], max_attempts=2)
    first = dead.claim()
    assert first is not None
    assert alive.reap() == (0, 0)  # the lease still holds
    alive.clock_offset_s = 30
    assert alive.reap() == (0, 0)  # ... half a lease later too
    alive.clock_offset_s = 61  # "dead" never renews its lease
    assert alive.reap() == (1, 0)
    again = alive.claim()  # a lease until 61 + 60 s from now
    assert again is not None and again["id"] == job_id and again["attempts"] == 2
    # the first run wakes up late: it may not write over the re-run
    assert not dead.progress(job_id, first["run_token"], 0.9, "model", "late")
    assert not dead.finish(job_id, first["run_token"], "succeeded", result={"stale": True})
    dead.clock_offset_s = 61 + 61
    assert dead.reap() == (0, 1)  # second lease gone too: that was the last attempt
    job = alive.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "job_interrupted"
    assert job["result"] is None
    assert not alive.finish(job_id, again["run_token"], "succeeded", result={"late": 1})


def test_a_heartbeat_keeps_the_lease(make_store: Factory) -> None:
    runner, other = make_store(lease_s=60), make_store(lease_s=60)
    runner.create([REQ], max_attempts=1)
    row = runner.claim()
    assert row is not None
    for step in range(1, 9):  # 8 beats, 40 s apart on the runner's clock: 320 s in all
        runner.clock_offset_s = 40 * step
        assert runner.heartbeat({row["run_token"]}) == 1
        # 40 s after that beat: past the claim's lease and every earlier beat's, not this one's
        other.clock_offset_s = 40 * step + 40
        assert other.reap() == (0, 0)
    assert other.heartbeat({row["run_token"]}) == 0  # leases belong to the claiming instance
    assert runner.heartbeat(set()) == 0 and runner.heartbeat({"stale"}) == 0
    assert runner.finish(row["id"], row["run_token"], "succeeded", result={})
    assert runner.heartbeat({row["run_token"]}) == 0  # finished: nothing left to renew


def test_recover_requeues_jobs_of_a_dead_process_on_this_host_at_once(
        make_store: Factory) -> None:
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    old, remote = make_store(), make_store()
    old.owner = f"{old.host}:{dead_pid}:0000"  # as if claimed by a process now gone
    remote.owner = "another-machine:1:0000"  # alive for all we know, lease still valid
    _, (mine, theirs) = old.create([REQ, REQ], max_attempts=3)
    assert old.claim() is not None and remote.claim() is not None
    assert make_store().recover() == (1, 0)
    assert old.get(mine)["status"] == "queued"
    assert old.get(theirs)["status"] == "running"


def test_videos_in_use(make_store: Factory) -> None:
    store = make_store()
    _, ids = store.create([{**REQ, "video_id": "a" * 32}, {**REQ, "video_id": "b" * 32}, REQ],
                          max_attempts=1)
    row = store.claim()
    assert row is not None
    store.finish(row["id"], row["run_token"], "succeeded", result={})
    assert store.videos_in_use() == {"b" * 32}


def _old_database(kind: str, where: str) -> None:
    """A database as vidground 0.1 left it: schema version 1, a running job, no leases."""
    now = time.time()
    row = ("0" * 24, None, "running", 1, 3, json.dumps(REQ), "tok", now, now)
    insert = ("INSERT INTO jobs (id, batch_id, status, attempts, max_attempts, request, "
              "run_token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    if kind == "sqlite":
        db = sqlite3.connect(where)
        for step in MIGRATIONS["sqlite"][0][1]:
            db.execute(step)
        db.execute(insert, row)
        db.commit()
        db.close()
        return
    with psycopg.connect(where, autocommit=True) as conn:
        for step in MIGRATIONS["postgresql"][0][1]:
            conn.execute(step)
        conn.execute("CREATE TABLE vidground_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO vidground_schema VALUES (1)")
        conn.execute(insert.replace("?", "%s"), row)


def _version(kind: str, where: str) -> int:
    if kind == "sqlite":
        db = sqlite3.connect(where)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()
    with psycopg.connect(where) as conn:
        return int(conn.execute("SELECT max(version) FROM vidground_schema").fetchone()[0])


def test_a_newer_version_migrates_an_older_database(engine: tuple[str, str],
                                                    make_store: Factory) -> None:
    kind, where = engine
    _old_database(kind, where)
    store = make_store()
    assert _version(kind, where) == LATEST
    assert store.recover() == (1, 0)  # a running job from before leases: queued again
    row = store.claim()
    assert row is not None and row["id"] == "0" * 24 and row["attempts"] == 2
    assert row["owner"] == store.owner and row["lease_until"] is not None
    make_store()  # opening a migrated database again changes nothing
    assert _version(kind, where) == LATEST


def test_a_database_newer_than_this_code_is_refused(engine: tuple[str, str],
                                                    make_store: Factory) -> None:
    kind, where = engine
    make_store().close()
    if kind == "sqlite":
        db = sqlite3.connect(where)
        db.execute("PRAGMA user_version = 99")
        db.close()
    else:
        with psycopg.connect(where, autocommit=True) as conn:
            conn.execute("UPDATE vidground_schema SET version = 99")
    with pytest.raises(JobStoreVersionError, match="newer vidground"):
        make_store()


def test_an_unreachable_postgres_gives_a_clear_error() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/jobs"
    with pytest.raises(JobStoreUnavailableError) as info:
        PostgresJobStore(url, connect_timeout_s=1.0)
    assert "cannot connect to the job store" in info.value.message
    assert "127.0.0.1" in info.value.message and "secret" not in info.value.message


def _lease_until(engine: tuple[str, str], job_id: str) -> float:
    """The job's lease as the database holds it (read outside the store under test)."""
    kind, where = engine
    sql = "SELECT lease_until FROM jobs WHERE id = ?"
    if kind == "sqlite":
        db = sqlite3.connect(where)
        try:
            return float(db.execute(sql, (job_id,)).fetchone()[0])
        finally:
            db.close()
    with psycopg.connect(where) as conn:
        return float(conn.execute(sql.replace("?", "%s"), (job_id,)).fetchone()[0])


def test_a_job_longer_than_its_lease_is_kept_by_the_runners_heartbeat(
        engine: tuple[str, str], make_store: Factory) -> None:
    from vidground.server.jobs import JobRunner

    calls: list[str] = []
    release = threading.Event()

    def slow_infer(request: dict, progress: Callable) -> dict:
        calls.append(request["query"])
        # no progress events: only the heartbeat renews the lease
        assert release.wait(60), "the test never let the job finish"
        return {"answer": "done"}

    # The heartbeat thread beats every third of the lease its store had at start (0.05 s
    # here); the lease each beat grants is then raised to 120 s, so no stall of this machine
    # can outlast it. The job's running time is made long by moving the runner's clock (its
    # store's ``$NOW`` offset) 100 s per round. The lease is longer than a round: a beat may
    # renew on the old clock and reap on the new one (the offset moves between the two), and
    # its own job must not look expired then (with 60 s it was re-queued, ~1 run in 20 on a
    # loaded machine).
    runners = [JobRunner(make_store(lease_s=0.15), slow_infer) for _ in range(2)]
    for runner in runners:
        runner.start()
        runner.store.lease_s = 120.0
    try:
        _, (job_id,) = runners[0].store.create([REQ], max_attempts=3)
        task = runners[0].next_task()
        assert task is not None
        thread = threading.Thread(target=task)
        thread.start()
        wait_for(lambda: calls, timeout_s=30)
        lease = _lease_until(engine, job_id)
        for step in range(1, 6):  # meanwhile the other runner keeps trying to claim
            runners[0].store.clock_offset_s = 100.0 * step
            # a beat on the runner's new clock renewed the lease (moved it ~100 s on)
            lease = wait_for(lambda prev=lease: (lambda now: now if now > prev + 90 else None)(
                _lease_until(engine, job_id)), timeout_s=30, interval_s=0.02)
            # the other runner's clock: 30 s after that beat, past every earlier lease (the
            # one before reached 100 * step + 20)
            runners[1].store.clock_offset_s = 100.0 * step + 30
            assert runners[1].next_task() is None
        release.set()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        release.set()
        for runner in runners:
            runner.stop()
    job = runners[1].store.get(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert job["result"] == {"answer": "done"} and calls == ["when?"]
