"""The outputs router over real HTTP (uvicorn on 127.0.0.1, the app from ``create_app``): a
job's and a posted result's exports read back
by independent readers, describe through the fake model, evidence and clip download links,
the API key, and clear 4xx errors."""

from __future__ import annotations

import csv
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import srt
import uvicorn
import webvtt
from fake_openai_server import FakeOpenAIServer
from media import make_video, read_painted_index
from PIL import Image
from test_outputs_describe import EVENTS, make_two_events

from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.server.app import create_app

KEY = "outputs-test-key"
SERVICES: list = []  # the running app's Service, for the helpers the tests call directly
Server = tuple[httpx.Client, FakeOpenAIServer]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[httpx.Client, FakeOpenAIServer]]:
    base = tmp_path_factory.mktemp("outputs_server")
    media = base / "media"
    media.mkdir()
    make_video(media / "red.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    make_two_events(media / "two.mp4")
    with FakeOpenAIServer(events=EVENTS) as fake:
        settings = Settings(backend="openai", openai_base_url=fake.base_url,
                            openai_model=fake.model, openai_max_retries=0, media_root=media,
                            data_dir=base / "data", enable_ui=False, api_key=KEY)
        port = free_port()
        app = create_app(settings, Grounder(settings=settings))
        SERVICES.append(app.state.service)
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                            log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        for _ in range(200):
            if srv.started:
                break
            time.sleep(0.05)
        assert srv.started, "the test server did not start"
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"Authorization": f"Bearer {KEY}"})
        try:
            yield client, fake
        finally:
            client.close()
            srv.should_exit = True
            thread.join(10)


def finished_job(client: httpx.Client, video: str, query: str) -> str:
    created = client.post("/api/v1/jobs", json={"video_path": video, "query": query,
                                                "options": {"frame_sampling_rate": 2.0}})
    assert created.status_code == 202, created.text
    return wait_for(client, created.json()["job_id"])


def wait_for(client: httpx.Client, job_id: str) -> str:
    for _ in range(600):
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return job_id
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_batch_export_holds_every_job(server: Server) -> None:
    client, _ = server
    one = {"video_path": "red.mp4", "query": "When is the red square visible?",
           "options": {"frame_sampling_rate": 2.0}}
    created = client.post("/api/v1/jobs", json={"requests": [one, one | {
        "video_path": "two.mp4", "query": "When is the blue square visible?"}]})
    assert created.status_code == 202, created.text
    for job_id in created.json()["job_ids"]:
        wait_for(client, job_id)
    got = client.get(f"/api/v1/batches/{created.json()['batch_id']}/export",
                     params={"format": "csv"})
    assert got.status_code == 200, got.text
    rows = list(csv.DictReader(io.StringIO(got.text)))
    # the video by its absolute path (what the job's response names; editors relink it)
    assert [(Path(r["video"]).name, float(r["start"]), float(r["end"])) for r in rows] == [
        ("red.mp4", 1.0, 2.0), ("two.mp4", 2.5, 3.5)]
    assert all(Path(r["video"]).is_absolute() for r in rows)
    assert client.get(f"/api/v1/batches/{'0' * 24}/export",
                      params={"format": "csv"}).status_code == 404


def test_attach_outputs_adds_clip_and_evidence_links(server: Server, tmp_path: Path) -> None:
    from vidground.server.output_files import attach_outputs

    client, _ = server
    [svc] = SERVICES
    response = {"segments": [{"start": 1.0, "end": 2.0, "label": None}]}
    video = svc.media_root / "red.mp4"
    out = attach_outputs(svc.outputs, response, video, clips=True, evidence=True)
    assert out["segments"] == response["segments"] and "clips" not in response
    [clip] = out["clips"]
    assert (clip["start"], clip["end"], clip["frames"]) == (1.0, 2.0, 25)
    assert client.get(clip["url"]).status_code == 200
    assert [f["role"] for f in out["evidence"]["frames"]] == ["first", "middle", "last"]
    assert client.get(out["evidence"]["contact_sheet"]).status_code == 200
    empty = attach_outputs(svc.outputs, {"segments": []}, video, clips=True, evidence=True)
    assert empty["clips"] == [] and empty["evidence"]["frames"] == []


def test_job_export_reads_back(server: Server) -> None:
    client, _ = server
    job_id = finished_job(client, "red.mp4", "When is the red square visible?")
    got = client.get(f"/api/v1/jobs/{job_id}/export", params={"format": "srt"})
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == f'attachment; filename="job_{job_id}.srt"'
    sub = next(srt.parse(got.text))
    assert (sub.start.total_seconds(), sub.end.total_seconds()) == (1.0, 2.0)
    assert sub.content == "When is the red square visible?"
    edl = client.get(f"/api/v1/jobs/{job_id}/export", params={"format": "edl"})
    assert "001  red      V     C        00:00:01:00 00:00:02:00" in edl.text
    bad = client.get(f"/api/v1/jobs/{job_id}/export", params={"format": "docx"})
    assert bad.status_code == 422 and set(bad.json()) == {"error"}
    missing = client.get(f"/api/v1/jobs/{'0' * 24}/export", params={"format": "srt"})
    assert missing.status_code == 404


def test_posted_result_exports_and_needs_the_key(server: Server) -> None:
    client, _ = server
    body = {"result": {"segments": [{"start": 1.5, "end": 2.25, "label": "goal"}],
                       "video": {"duration": 10.0, "fps": 25.0}}, "query": "q"}
    got = client.post("/api/v1/export", params={"format": "vtt"}, json=body)
    assert got.status_code == 200, got.text
    cue = webvtt.from_string(got.text).captions[0]
    assert (cue.start, cue.end, cue.text) == ("00:00:01.500", "00:00:02.250", "goal")
    anonymous = httpx.post(str(client.base_url) + "/api/v1/export", params={"format": "vtt"},
                           json=body)
    assert anonymous.status_code == 401
    broken = client.post("/api/v1/export", params={"format": "srt"},
                         json={"result": {"segments": [{"start": "x", "end": 1}]}})
    assert broken.status_code == 422
    assert "'start' must be a finite number" in broken.json()["error"]["message"]


def test_describe_over_http(server: Server) -> None:
    client, _ = server
    got = client.post("/api/v1/describe", json={"video_path": "two.mp4",
                                                "options": {"frame_sampling_rate": 2.0}})
    assert got.status_code == 200, got.text
    body = got.json()
    assert [(s["start"], s["end"], s["label"]) for s in body["segments"]] == [
        (1.0, 2.0, "the red square is visible"), (2.5, 3.5, "the blue square is visible")]
    chapters = client.post("/api/v1/export", params={"format": "chapters"},
                           json={"result": body})
    assert len(webvtt.from_string(chapters.text).captions) == 2
    outside = client.post("/api/v1/describe", json={"video_path": "../etc/passwd"})
    assert outside.status_code in (400, 403)


def test_describe_has_one_path_and_one_default(server: Server,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``POST /api/v1/describe`` goes through ``Service.submit_describe`` (the page's path
    too), and the model is asked with describe's own defaults (issue 22.1: the route asked
    1024 new tokens, the page 512)."""
    from vidground.outputs.describe import DESCRIBE_DEFAULTS

    client, fake = server
    [svc] = SERVICES
    seen: list[dict] = []
    real = svc.submit_describe
    monkeypatch.setattr(svc, "submit_describe", lambda request, progress, **kw: (
        seen.append(request), real(request, progress, **kw))[1])
    fake.reset_stats()
    got = client.post("/api/v1/describe", json={"video_path": "two.mp4",
                                                "options": {"frame_sampling_rate": 2.0}})
    assert got.status_code == 200, got.text
    assert seen == [{"video_path": "two.mp4", "options": {"frame_sampling_rate": 2.0}}]
    asked = {r.body.get("max_tokens") for r in fake.requests}  # the list, then refinement
    assert max(asked) == DESCRIBE_DEFAULTS["max_new_tokens"], asked


def test_describe_stops_when_the_client_hangs_up(server: Server,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The model holds the window call until the server has seen the client hang up; then no
    further call (the refinement) is made by the time the server's queue is idle."""
    client, fake = server
    fake.reset_stats()
    fake.configure(hold_after=0)
    caplog.set_level(logging.INFO, logger="vidground.server")
    try:
        data = b'{"video_path": "two.mp4"}'
        hung_up = socket.create_connection((client.base_url.host, client.base_url.port),
                                           timeout=10)
        hung_up.sendall(b"POST /api/v1/describe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        _until(lambda: fake.chat_count == 1)  # the window call is with the model
        hung_up.close()
        _until(lambda: "its describe request was dropped" in caplog.text)
        fake.configure(hold_after=None)  # the window call ends; a describe still running
        # would refine now
        _until(lambda: (lambda q: q["running"] == 0 and q["waiting"] == 0)(
            client.get("/api/v1/health").json()["queue"]))
        assert fake.chat_count == 1
    finally:
        fake.configure(hold_after=None)


def _until(predicate: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_evidence_and_clip_links_download(server: Server) -> None:
    client, _ = server
    got = client.post("/api/v1/evidence", json={"video_path": "red.mp4",
                                                "spans": [{"start": 1.0, "end": 2.0}]})
    assert got.status_code == 200, got.text
    frames = got.json()["frames"]
    assert [f["role"] for f in frames] == ["first", "middle", "last"]
    for frame, expected in zip(frames, (25, 37, 49), strict=True):
        jpeg = client.get(frame["url"])
        assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
        image = np.asarray(Image.open(io.BytesIO(jpeg.content)))
        assert read_painted_index(image) == expected
    assert client.get(got.json()["contact_sheet"]).status_code == 200

    clip = client.post("/api/v1/clips", json={"video_path": "red.mp4", "mode": "exact",
                                              "spans": [{"start": 1.0, "end": 2.0}]})
    assert clip.status_code == 200, clip.text
    [made] = clip.json()["clips"]
    assert made["frames"] == 25 and made["path"] is None
    video = client.get(made["url"])
    assert video.status_code == 200 and len(video.content) > 1000
    job_id = finished_job(client, "red.mp4", "When is the red square visible?")
    from_job = client.get(f"/api/v1/jobs/{job_id}/evidence")
    assert [f["frame_time"] for f in from_job.json()["frames"]] == [1.0, 1.48, 1.96]
    for path in ("/api/v1/outputs/" + "0" * 32 + "/x.jpg",
                 made["url"].rsplit("/", 1)[0] + "/..%2F..%2Fjobs.sqlite3"):
        assert client.get(path).status_code in (404, 422)


def test_old_output_folders_are_swept(tmp_path: Path) -> None:
    import os

    from vidground.server.output_files import sweep_outputs

    old, new = tmp_path / ("a" * 32), tmp_path / ("b" * 32)
    for folder in (old, new):
        folder.mkdir()
        (folder / "clip.mp4").write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "keep-me").mkdir()
    assert sweep_outputs(tmp_path, 3600) == 1
    assert not old.exists() and new.exists() and (tmp_path / "keep-me").exists()
