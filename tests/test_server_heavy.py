"""Heavy work under the same limits as the model (issue 21), over real HTTP against real
``vidground serve`` processes and the fake OpenAI-compatible model:

- clips and evidence wait in their own bounded queue (429 + Retry-After past it), are dropped
  when their client hangs up, and never hold up health or the light routes;
- one inference request makes at most the routes' number of clips and evidence frames;
- the outputs folder has a quota (oldest deleted first, 507 when it is still full);
- a full disk is 507 ``insufficient_storage``, without paths, leaving nothing half-written;
- a server whose clock runs days ahead deletes nothing another server made minutes ago;
- the page's export cleanup never follows a link;
- health always answers a status document and shows folder paths only with the API key.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ROOT, ServerProcess, openai_env, wait_for

QUERY = "When is the red square visible?"
ONE_CALL = {"refine": False, "verify": False, "frame_sampling_rate": 2}


def _spans(n: int, length: float = 1.0, every: float = 2.0) -> list[dict[str, float]]:
    return [{"start": i * every, "end": i * every + length} for i in range(n)]


def _timed_get(url: str, timeout: float = 10.0, **kw: Any) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        status = requests.get(url, timeout=timeout, **kw).status_code
    except requests.RequestException:
        status = 0
    return time.perf_counter() - started, status


# -- 1. clips and evidence do not starve the other routes -----------------------------------

def test_heavy_requests_wait_in_their_own_queue_and_never_block_light_routes(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """45 clients each ask 20 clips at once: the ones past the heavy queue get 429 with
    Retry-After at once; health, the job list, an export and a sync inference answer quickly
    all the while; once the clients hang up, their queued work is dropped."""
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model, VIDGROUND_HEAVY_WORKERS="1",
                                                 VIDGROUND_HEAVY_QUEUE_LIMIT="8"))
    make_video(srv.media_root / "long.mp4", duration=60.0, fps=25, size=(320, 240),
               intervals=[(10.0, 12.0)])
    make_video(srv.media_root / "short.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)])
    body = {"video_path": "long.mp4", "spans": _spans(20, length=2.5, every=2.9)}
    statuses: list[int] = []
    retry_after: list[str | None] = []

    def heavy_client() -> None:
        try:  # the client gives up after 6 s (hangs up)
            r = httpx.post(srv.url("/api/v1/clips"), json=body,
                           timeout=httpx.Timeout(10.0, read=6.0))
            statuses.append(r.status_code)
            retry_after.append(r.headers.get("retry-after"))
        except httpx.HTTPError:
            statuses.append(0)

    with srv, ThreadPoolExecutor(45) as pool:
        clients = [pool.submit(heavy_client) for _ in range(45)]
        # every request has arrived: those past the queue have their 429 already
        wait_for(lambda: sum(status == 429 for status in statuses) >= 45 - 1 - 8 - 2,
                 timeout_s=60, interval_s=0.05)
        light = []
        for _ in range(5):
            light.append(_timed_get(srv.url("/api/v1/health")))
            light.append(_timed_get(srv.url("/api/v1/jobs")))
            started = time.perf_counter()
            exported = requests.post(srv.url("/api/v1/export?format=srt"), timeout=10, json={
                "result": {"segments": [{"start": 1.0, "end": 2.0}]}})
            light.append((time.perf_counter() - started, exported.status_code))
        started = time.perf_counter()
        sync = requests.post(srv.url("/api/v1/inference"), timeout=30, json={
            "video_path": "short.mp4", "query": QUERY, "options": ONE_CALL})
        sync_s = time.perf_counter() - started
        assert all(status == 200 for _, status in light), light
        assert max(s for s, _ in light) < 2.0, light
        assert sync.status_code == 200 and sync_s < 10.0, (sync.status_code, sync_s)
        for client in clients:
            client.result(timeout=60)
        # the clients are gone: what they left in the queue is dropped, health stays quick
        gone = wait_for(lambda: (requests.get(srv.url("/api/v1/health"), timeout=10).json()
                                 ["outputs_queue"]["waiting"] == 0) or None, timeout_s=10)
        after = [_timed_get(srv.url("/api/v1/health")) for _ in range(5)]
    refused = [i for i, s in enumerate(statuses) if s == 429]
    assert len(refused) >= 45 - 1 - 8 - 2, statuses  # past one running and 8 waiting
    assert all(retry_after[i] and int(retry_after[i] or 0) >= 1 for i in refused)
    assert gone and max(s for s, _ in after) < 1.0, after
    assert "its clip/evidence request was dropped" in srv.log()


# -- 5. per-request caps and the outputs quota ------------------------------------------------

def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.name != ".clock"]


def test_one_inference_request_makes_at_most_the_routes_number_of_outputs(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """60 segments with ``outputs: {clips, evidence}``: 20 clips and evidence of 50 spans (the
    routes' limits), and the response says so; before, 60 clips and 180 frames."""
    answer = "\n".join(f"{2 * i + 0.1:.1f} - {2 * i + 0.6:.1f} seconds" for i in range(60))
    fake_model.configure(delay_s=0.0, answer=answer)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model))
    make_video(srv.media_root / "many.mp4", duration=125.0, fps=4, size=(64, 48))
    try:
        with srv:
            r = requests.post(srv.url("/api/v1/inference"), timeout=120, json={
                "video_path": "many.mp4", "query": QUERY,
                "options": {**ONE_CALL, "frame_sampling_rate": 1, "all_occurrences": True},
                "outputs": {"clips": True, "evidence": True}})
    finally:
        fake_model.configure(answer=None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["segments"]) == 60
    assert len(body["clips"]) == 20
    assert len({f["span"] for f in body["evidence"]["frames"]}) == 50
    assert body["outputs_limited"] == {"clips": 20, "evidence": 50}
    assert len(_files(srv.data_dir / "outputs")) == 20 + 50 * 3 + 1  # + the contact sheet


def test_the_outputs_folder_has_a_quota(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """Past ``VIDGROUND_MAX_OUTPUTS_MB`` a request gets 507 (no path, nothing left behind)
    while everything there is fresh; folders an hour old are deleted first to make room."""
    fake_model.configure(delay_s=0.0, answer=None)
    quota = 0.5 * 1024 * 1024
    srv = ServerProcess(tmp_path, env=openai_env(fake_model, VIDGROUND_MAX_OUTPUTS_MB="0.5"))
    make_video(srv.media_root / "red.mp4", duration=4.0, fps=25, size=(320, 240), noise=40)
    body = {"video_path": "red.mp4", "spans": [{"start": 0.5, "end": 3.5}]}
    outputs = srv.data_dir / "outputs"
    with srv:
        made: list[str] = []
        full = None
        for _ in range(40):
            r = requests.post(srv.url("/api/v1/evidence"), json=body, timeout=60)
            if r.status_code == 507:
                full = r
                break
            assert r.status_code == 200, r.text
            made.append(r.json()["output_id"])
        assert full is not None and len(made) >= 2, made
        assert full.json()["error"]["code"] == "insufficient_storage"
        assert "VIDGROUND_MAX_OUTPUTS_MB" in full.json()["error"]["message"]
        assert int(full.headers["retry-after"]) >= 1
        assert str(tmp_path) not in full.text
        assert sorted(p.name for p in outputs.iterdir() if p.is_dir()) == sorted(made)
        assert sum(p.stat().st_size for p in _files(outputs)) <= quota
        hour_ago = time.time() - 3600
        os.utime(outputs / made[0], (hour_ago, hour_ago))
        r = requests.post(srv.url("/api/v1/evidence"), json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert not (outputs / made[0]).exists() and (outputs / made[-1]).exists()
        assert requests.get(srv.url(r.json()["contact_sheet"]), timeout=10).status_code == 200


# -- 6. a full disk ----------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs (the tests run as root) as the server's data dir; unmounted after."""
    mount = tmp_path / "data"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Write zeros to ``folder/filler`` until the file system is full."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
        for _ in range(100_000):  # bounded: 6 GB at most
            out.write(b"\0" * 65536)
    return filler


def test_a_full_disk_is_507_with_nothing_left_behind(
        tmp_path: Path, small_disk: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, data_dir=small_disk, log_dir=tmp_path / "logs",
                        env=openai_env(fake_model, VIDGROUND_CACHE_DIR=str(tmp_path / "cache")))
    make_video(srv.media_root / "red.mp4", duration=4.0, fps=25, size=(320, 240))
    video = (srv.media_root / "red.mp4").read_bytes()
    span = {"video_path": "red.mp4", "spans": [{"start": 0.5, "end": 3.5}]}
    job = {"video_path": "red.mp4", "query": QUERY, "options": ONE_CALL}
    with srv:
        filler = _fill(small_disk)
        answers = {
            "jobs": [requests.post(srv.url("/api/v1/jobs"), json=job, timeout=30)
                     for _ in range(5)][-1],
            "upload": requests.post(srv.url("/api/v1/videos"), timeout=30,
                                    files={"file": ("clip.mp4", video, "video/mp4")}),
            "clips": requests.post(srv.url("/api/v1/clips"), json=span, timeout=60),
            "evidence": requests.post(srv.url("/api/v1/evidence"), json=span, timeout=60),
        }
        for name, r in answers.items():
            assert r.status_code == 507, (name, r.status_code, r.text)
            assert r.json()["error"]["code"] == "insufficient_storage", (name, r.text)
            assert str(small_disk) not in r.text and "/" not in r.json()["error"]["message"]
        assert not list((small_disk / "uploads").glob("*.part"))
        assert not list((small_disk / "uploads").glob("*.video"))
        outputs = small_disk / "outputs"
        assert not outputs.exists() or not [p for p in outputs.iterdir() if p.is_dir()]
        assert requests.get(srv.url("/api/v1/health"), timeout=10).status_code == 200
        filler.unlink()  # room again: the same requests work
        r = requests.post(srv.url("/api/v1/clips"), json=span, timeout=60)
        assert r.status_code == 200, r.text
        assert requests.post(srv.url("/api/v1/jobs"), json=job, timeout=30).status_code == 202


# -- 7. a skewed clock --------------------------------------------------------------------------

def test_a_server_whose_clock_runs_ahead_deletes_nothing_fresh(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """A second server on the same data dir, its clock 8 days ahead, keeps the upload and
    the output folders the first one made a moment ago (at its start, and when it makes an
    output folder itself)."""
    fake_model.configure(delay_s=0.0, answer=None)
    skew = tmp_path / "skew"
    skew.mkdir()
    (skew / "sitecustomize.py").write_text(
        "import time\n_real = time.time\ntime.time = lambda: _real() + 8 * 86400\n")
    first = ServerProcess(tmp_path / "a", env=openai_env(fake_model))
    make_video(first.media_root / "red.mp4", duration=2.0, fps=10)
    span = {"video_path": "red.mp4", "spans": [{"start": 0.5, "end": 1.5}]}
    with first:
        with open(first.media_root / "red.mp4", "rb") as fh:
            up = requests.post(first.url("/api/v1/videos"), files={"file": ("a.mp4", fh)},
                               timeout=30)
        assert up.status_code == 201, up.text
        video_id = up.json()["video_id"]
        made = []
        for _ in range(3):
            r = requests.post(first.url("/api/v1/evidence"), json=span, timeout=60)
            assert r.status_code == 200, r.text
            made.append(r.json()["output_id"])
        # a month-old upload that any sweep deletes: its log line shows the second server's
        # sweep at start is over (that sweep saw the upload above too)
        stale = first.data_dir / "uploads" / ("f" * 32)
        month_ago = time.time() - 30 * 86400
        for suffix in (".video", ".json"):
            stale.with_suffix(suffix).write_bytes(b"x")
            os.utime(stale.with_suffix(suffix), (month_ago, month_ago))
        second = ServerProcess(tmp_path / "b", media_root=first.media_root,
                               data_dir=first.data_dir, log_dir=tmp_path / "b",
                               env=openai_env(fake_model, PYTHONPATH=str(skew)))
        with second:
            ahead = requests.get(second.url("/api/v1/health"), timeout=10)
            now = requests.get(first.url("/api/v1/health"), timeout=10)
            skewed = (_http_date(ahead.headers["date"]) - _http_date(now.headers["date"]))
            assert skewed > 7 * 86400, skewed  # the second server's clock really runs ahead
            wait_for(lambda: "deleted 1 upload(s)" in second.log(), timeout_s=60)
            assert not stale.with_suffix(".video").exists()
            r = requests.post(second.url("/api/v1/evidence"), json=span, timeout=60)
            assert r.status_code == 200, r.text
            assert requests.get(second.url(f"/api/v1/videos/{video_id}"),
                                timeout=10).status_code == 200
        outputs = first.data_dir / "outputs"
        assert all((outputs / output_id).is_dir() for output_id in made), made
        assert (first.data_dir / "uploads" / f"{video_id}.video").is_file()


def _http_date(text: str) -> float:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(text).timestamp()


# -- 12. the page's exports --------------------------------------------------------------------

def test_the_page_export_cleanup_never_follows_links(tmp_path: Path, monkeypatch) -> None:
    """A link planted in the export folder (the shared temp folder, before) to a folder of
    old files: making an export deletes none of them, and exports are owner-only under the
    data dir."""
    import tempfile

    from vidground.outputs.results import Result
    from vidground.server.ui.outputs import export_path
    from vidground.timecode import Span

    victim = tmp_path / "victim"
    (victim / "inner").mkdir(parents=True)
    old = time.time() - 7 * 86400
    for path in (victim / "precious.txt", victim / "inner" / "deep.txt"):
        path.write_text("keep me")
        os.utime(path, (old, old))
    os.utime(victim / "inner", (old, old))
    data = tmp_path / "data"
    monkeypatch.setenv("VIDGROUND_DATA_DIR", str(data))
    planted = []
    for root in (data / "page-exports", Path(tempfile.gettempdir()) / "vidground-page-exports"):
        root.mkdir(parents=True, exist_ok=True)
        for name in (f"export-{os.getpid():016x}", f"evil{os.getpid()}"):
            link = root / name
            link.symlink_to(victim, target_is_directory=True)
            planted.append(link)
    result = Result(spans=(Span(1.0, 2.0),), fps=25.0, duration=4.0, query="q",
                    video="clip.mp4", model="m", answer="1 - 2")
    try:
        out = Path(export_path(result, "srt", "clip"))  # type: ignore[arg-type]
        assert (victim / "precious.txt").exists() and (victim / "inner" / "deep.txt").exists()
        assert out.is_file() and out.read_text().strip()
        assert out.is_relative_to(data / "page-exports")
        assert out.stat().st_mode & 0o077 == 0 and out.parent.stat().st_mode & 0o077 == 0
    finally:
        for link in planted:
            link.unlink(missing_ok=True)


# -- 15. health and errors show no server paths ----------------------------------------------

def test_health_and_errors_show_no_server_paths(tmp_path: Path,
                                                fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model), api_key="k" * 24)
    make_video(srv.media_root / "red.mp4", duration=2.0, fps=10)
    secrets_ = [str(srv.data_dir), str(srv.media_root), str(tmp_path)]
    with srv:
        anon = requests.get(srv.url("/api/v1/health"), timeout=10)
        assert anon.status_code == 200 and anon.json()["status"] == "ok"
        assert not any(s in anon.text for s in secrets_), anon.text
        assert "dir" not in anon.json()["cache"]
        known = requests.get(srv.url("/api/v1/health"), headers=srv.headers(), timeout=10)
        assert known.json()["cache"]["dir"].startswith(str(srv.data_dir))
        with open(srv.media_root / "red.mp4", "rb") as fh:
            video_id = requests.post(srv.url("/api/v1/videos"), headers=srv.headers(),
                                     files={"file": ("a.mp4", fh)}, timeout=30
                                     ).json()["video_id"]
        (srv.data_dir / "uploads" / f"{video_id}.video").write_bytes(b"\0" * 4096)  # damaged
        errors = [
            requests.post(srv.url("/api/v1/inference"), headers=srv.headers(), timeout=30,
                          json={"video_path": "../elsewhere.mp4", "query": QUERY}),
            requests.post(srv.url("/api/v1/inference"), headers=srv.headers(), timeout=30,
                          json={"video_path": str(tmp_path / "x.mp4"), "query": QUERY}),
            requests.post(srv.url("/api/v1/inference"), headers=srv.headers(), timeout=30,
                          json={"video_id": video_id, "query": QUERY}),
            requests.post(srv.url("/api/v1/evidence"), headers=srv.headers(), timeout=30,
                          json={"video_id": video_id, "spans": [{"start": 0, "end": 1}]}),
        ]
        for r in errors:
            assert 400 <= r.status_code < 500, r.text
            assert not any(s in r.text for s in secrets_), r.text
        job = requests.post(srv.url("/api/v1/jobs"), headers=srv.headers(), timeout=30,
                            json={"video_id": video_id, "query": QUERY, "options": ONE_CALL})
        job_id = job.json()["job_id"]
        done = wait_for(lambda: (lambda j: j if j["status"] == "failed" else None)(
            requests.get(srv.url(f"/api/v1/jobs/{job_id}"), headers=srv.headers(),
                         timeout=10).json()), timeout_s=30)
        assert not any(s in json.dumps(done["error"]) for s in secrets_), done["error"]


def test_health_during_a_database_outage_is_degraded_and_names_no_host(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    from pg_server import PostgresServer

    fake_model.configure(delay_s=0.0, answer=None)
    with PostgresServer() as pg:
        url = pg.new_database("jobs")
        srv = ServerProcess(tmp_path, env=openai_env(fake_model, VIDGROUND_JOB_STORE=url))
        with srv:
            assert requests.get(srv.url("/api/v1/health"), timeout=10).json()["status"] == "ok"
            pg.stop()
            started = time.perf_counter()
            r = requests.get(srv.url("/api/v1/health"), timeout=10)
            assert time.perf_counter() - started < 3.0
            assert r.status_code == 200, r.text
            degraded = wait_for(lambda: (lambda h: h if h["status"] == "degraded" else None)(
                requests.get(srv.url("/api/v1/health"), timeout=10).json()), timeout_s=30)
            assert degraded["job_store"]["ok"] is False and degraded["job_store"]["message"]
            port = url.rsplit(":", 1)[1].split("/")[0]
            text = json.dumps(degraded)
            assert port not in text and "127.0.0.1" not in text, text


# -- the header timeout reads uvicorn's internals ---------------------------------------------

def test_uvicorn_is_the_release_the_header_timeout_was_written_for() -> None:
    """protocol.py reads H11Protocol's internals: the installed uvicorn is the pinned minor
    release (test_server_security runs the header timeout itself on it), and the server
    extra pins it."""
    import tomllib
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from vidground.server.protocol import UVICORN_MINOR, uvicorn_minor

    assert uvicorn_minor() == UVICORN_MINOR
    assert callable(getattr(H11Protocol, "on_response_complete", None))
    major, minor = UVICORN_MINOR.split(".")
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["server"]
    assert f"uvicorn>={UVICORN_MINOR},<{major}.{int(minor) + 1}" in extra, extra


# -- 4. probes: a few at once, never on the event loop ----------------------------------------

def test_probes_run_a_few_at_once_off_the_event_loop(
        tmp_path: Path, fake_model: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight describe requests whose probes hang (a slow disk) until the test lets them go:
    at most ``probe_limit`` probes run at once, and health answers while they hang (the probe
    ran on the event loop before: health could not answer until the probes were let go)."""
    import socket

    import uvicorn

    from vidground.config import Settings
    from vidground.server import storage
    from vidground.server.app import create_app

    fake_model.configure(delay_s=0.0, answer=None)
    make_video(tmp_path / "red.mp4", duration=2.0, fps=10)
    running, most = [0], [0]
    lock = threading.Lock()
    gate = threading.Event()
    real_probe = storage.probe

    def slow_probe(path: Any, **kw: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            assert gate.wait(60), "the test never let the probes go"
            return real_probe(path, **kw)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(storage, "probe", slow_probe)
    settings = Settings(backend="openai", openai_base_url=fake_model.base_url,
                        openai_model=fake_model.model, openai_max_retries=0,
                        media_root=tmp_path, data_dir=tmp_path / "data", enable_ui=False,
                        probe_limit=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=30)
    url = f"http://127.0.0.1:{port}"
    try:
        with ThreadPoolExecutor(8) as pool:
            asked = [pool.submit(requests.post, url + "/api/v1/describe", timeout=60,
                                 json={"video_path": "red.mp4",
                                       "options": {"frame_sampling_rate": 2.0}})
                     for _ in range(8)]
            wait_for(lambda: running[0] == 2, timeout_s=30, interval_s=0.01)
            health = [_timed_get(url + "/api/v1/health") for _ in range(6)]
            held = running[0]  # the probes still hang: health did not wait for them
            gate.set()
            answers = [a.result(timeout=60) for a in asked]
    finally:
        gate.set()
        server.should_exit = True
        thread.join(10)
    assert all(r.status_code == 200 for r in answers), [r.text[:200] for r in answers]
    assert all(status == 200 for _, status in health), health
    assert held == 2, held
    assert most[0] <= 2, most
