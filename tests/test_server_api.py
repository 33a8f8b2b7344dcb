"""The REST API over real HTTP: a `vidground serve` subprocess on a free loopback port, with the
fake OpenAI-compatible model (which looks at the frames) and real encoded videos."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env

from vidground.timecode import parse_timecode

QUERY = "When is the red square visible?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAIServer
           ) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("api")
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(base, env=openai_env(fake_model))
    make_video(srv.media_root / "basketball_game.mp4", duration=4.0, fps=10,
               intervals=[(1.5, 3.0)])
    (srv.media_root / "clips").mkdir()
    make_video(srv.media_root / "clips" / "late.mp4", duration=3.0, fps=10,
               intervals=[(2.0, 3.0)])
    with srv:
        yield srv


def test_seed_python_client_gets_the_right_timestamp_range(server: ServerProcess) -> None:
    # Exactly what users' existing clients do.
    url = server.url("/api/v1/inference")
    response = requests.post(url, json={
        "video_path": "basketball_game.mp4",
        "query": QUERY,
        "options": {"enable_temporal_grounding": True, "return_reasoning": True,
                    "output_format": "HH:MM:SS.sss"},
    }, timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()
    start, end = result["timestamp_range"]
    assert start.startswith("00:00:0") and len(start) == len("00:00:01.500")
    # refinement puts the boundaries on the right frames (10 fps -> 0.1 s); allow one frame
    assert abs(parse_timecode(start) - 1.5) <= 0.11, result
    assert abs(parse_timecode(end) - 3.0) <= 0.11, result
    assert isinstance(result["response"], str) and result["response"]
    assert "reasoning" in result
    assert result["segments"][0]["start_text"] == start
    video = server.media_root / "basketball_game.mp4"
    assert result["video"] == {"duration": 4.0, "fps": 10.0, "width": 160, "height": 120,
                               "name": video.name, "path": str(video.resolve())}
    assert result["query"] == QUERY
    assert result["model"] == "fake/qwen3-vl"
    assert result["timings"]["total_s"] > 0


def test_options_output_format_and_subfolder(server: ServerProcess) -> None:
    r = requests.post(server.url("/api/v1/inference"), json={
        "video_path": "clips/late.mp4", "query": QUERY,
        "options": {"output_format": "seconds", "frame_sampling_rate": 2, "refine": False,
                    "verify": False}}, timeout=60)
    assert r.status_code == 200, r.text
    start, end = r.json()["timestamp_range"]
    assert abs(float(start) - 2.0) <= 0.5 and abs(float(end) - 3.0) <= 0.5


def test_absolute_path_inside_media_root_is_allowed(server: ServerProcess) -> None:
    path = str((server.media_root / "clips" / "late.mp4").resolve())
    r = requests.post(server.url("/api/v1/inference"), json={
        "video_path": path, "query": QUERY, "options": {"refine": False, "verify": False}},
        timeout=60)
    assert r.status_code == 200, r.text


def test_upload_then_infer_by_video_id(server: ServerProcess, tmp_path: Path) -> None:
    video = make_video(tmp_path / "upload.bin", container="mp4", duration=3.0, fps=10,
                       intervals=[(0.5, 1.5)])
    with open(video.path, "rb") as fh:
        r = requests.post(server.url("/api/v1/videos"),
                          files={"file": ("my clip.dat", fh, "application/octet-stream")},
                          timeout=30)
    assert r.status_code == 201, r.text
    body = r.json()
    video_id = body["video_id"]
    assert body["video"] == {"duration": 3.0, "fps": 10.0, "width": 160, "height": 120}
    assert body["filename"] == "my clip.dat"

    got = requests.get(server.url(f"/api/v1/videos/{video_id}"), timeout=10).json()
    assert got["video_id"] == video_id and got["video"] == body["video"]

    r = requests.post(server.url("/api/v1/inference"), json={
        "video_id": video_id, "query": QUERY, "options": {"output_format": "seconds"}},
        timeout=60)
    assert r.status_code == 200, r.text
    start, end = r.json()["timestamp_range"]
    assert abs(float(start) - 0.5) <= 0.11 and abs(float(end) - 1.5) <= 0.11


def test_health_docs_and_page(server: ServerProcess) -> None:
    h = requests.get(server.url("/api/v1/health"), timeout=10).json()
    assert h["status"] == "ok" and h["backend"] == "openai"
    assert h["model_state"] in ("not_loaded", "ready")
    assert set(h["queue"]) >= {"waiting", "running", "depth", "limit", "workers"}
    assert set(h["jobs"]) == {"queued", "running", "succeeded", "failed", "cancelled"}
    assert requests.get(server.url("/docs"), timeout=10).status_code == 200
    schema = requests.get(server.url("/openapi.json"), timeout=10).json()
    assert "/api/v1/inference" in schema["paths"]
    page = requests.get(server.url("/"), timeout=10)
    assert page.status_code == 200 and "pip install vidground[server]" in page.text


def test_event_not_in_video_gives_null_range(server: ServerProcess, tmp_path: Path) -> None:
    make_video(server.media_root / "empty.mp4", duration=2.0, fps=10, intervals=[])
    r = requests.post(server.url("/api/v1/inference"),
                      json={"video_path": "empty.mp4", "query": QUERY}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["timestamp_range"] is None and r.json()["segments"] == []


def test_queue_limit_gives_429_with_retry_after(tmp_path: Path,
                                                fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=1.0)
    try:
        srv = ServerProcess(tmp_path, env=openai_env(
            fake_model, VIDGROUND_QUEUE_LIMIT="1", VIDGROUND_WORKERS="1"))
        make_video(srv.media_root / "a.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)])
        with srv:
            results: list[requests.Response] = []
            lock = threading.Lock()

            def one() -> None:
                r = requests.post(srv.url("/api/v1/inference"), json={
                    "video_path": "a.mp4", "query": QUERY,
                    "options": {"refine": False, "verify": False}}, timeout=60)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=one) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = sorted(r.status_code for r in results)
            assert set(codes) <= {200, 429}, codes
            assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
            for r in results:
                if r.status_code == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert r.json()["error"]["code"] == "queue_full"
            assert requests.get(srv.url("/api/v1/health"), timeout=10).status_code == 200
    finally:
        fake_model.configure(delay_s=0.0)


def test_missing_model_is_a_normal_state(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, env={"VIDGROUND_BACKEND": "transformers",
                                       "VIDGROUND_MODEL": str(tmp_path / "no-such-model"),
                                       "VIDGROUND_PRELOAD_MODEL": "true"})
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=10)
    with srv:
        h = requests.get(srv.url("/api/v1/health"), timeout=10).json()
        assert h["model_loaded"] is False
        r = requests.post(srv.url("/api/v1/inference"),
                          json={"video_path": "a.mp4", "query": QUERY}, timeout=60)
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["code"] == "model_not_available"
        assert "no-such-model" in err["message"] and "Traceback" not in r.text
        h = requests.get(srv.url("/api/v1/health"), timeout=10).json()
        assert h["model_state"] == "error" and h["model_error"]


def test_api_key_required_when_set(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    srv = ServerProcess(tmp_path, env=openai_env(fake_model), api_key="s3cret-key")
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=10)
    with srv:
        body = {"video_path": "a.mp4", "query": QUERY,
                "options": {"refine": False, "verify": False}}
        url = srv.url("/api/v1/inference")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"},
                        {"Authorization": "Basic s3cret-key"},
                        {"Authorization": "Bearer s3cret-key-and-more"}):
            r = requests.post(url, json=body, headers=headers, timeout=30)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"] == "Bearer"
        for path in ("/api/v1/jobs", "/api/v1/videos/" + "0" * 32):
            assert requests.get(srv.url(path), timeout=10).status_code == 401
        r = requests.post(url, json=body, headers={"Authorization": "Bearer s3cret-key"},
                          timeout=60)
        assert r.status_code == 200, r.text
        # health stays open (documented), so probes work without the key
        assert requests.get(srv.url("/api/v1/health"), timeout=10).status_code == 200


def test_api_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The check goes through hmac.compare_digest on fixed-length digests."""
    from fastapi.testclient import TestClient

    from vidground.config import Settings
    from vidground.server import http
    from vidground.server.app import create_app

    calls: list[tuple[bytes, bytes]] = []
    real = http.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(http.hmac, "compare_digest", spy)
    app = create_app(Settings(api_key="k", enable_ui=False, backend="openai",
                              data_dir=tmp_path, media_root=tmp_path))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer x"}
                          ).status_code == 401
        assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer k"}
                          ).status_code == 200
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)


def test_api_errors_stay_json_with_the_web_page_mounted(tmp_path: Path) -> None:
    """The page is mounted at / and catches every path; /api/... must still answer our JSON."""
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    from vidground.config import Settings
    from vidground.server.app import create_app

    app = create_app(Settings(backend="openai", data_dir=tmp_path, media_root=tmp_path,
                              enable_ui=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/health").json()["status"] == "ok"
        r = client.get("/api/v1/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.put("/api/v1/inference")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_inference_can_return_clips_and_evidence_links(server: ServerProcess) -> None:
    """``outputs: {clips, evidence}``: the answer links a clip of each segment (its frames, its
    length) and the segment's evidence JPEGs — for a sync request and for a job."""
    import io

    from PIL import Image

    from vidground.video.probe import probe

    body = {"video_path": "basketball_game.mp4", "query": QUERY,
            "outputs": {"clips": True, "evidence": True}}
    r = requests.post(server.url("/api/v1/inference"), json=body, timeout=120)
    assert r.status_code == 200, r.text + server.log()
    result = r.json()
    (segment,) = result["segments"]
    (clip,) = result["clips"]
    data = requests.get(server.url(clip["url"]), timeout=30)
    assert data.status_code == 200
    path = server.base / "clip.mp4"
    path.write_bytes(data.content)
    length = segment["end"] - segment["start"]
    assert abs(probe(path).duration - length) <= 0.1 + 1e-6  # one frame at 10 fps
    frames = result["evidence"]["frames"]
    assert [f["role"] for f in frames] == ["first", "middle", "last"]
    for frame in frames:
        picture = requests.get(server.url(frame["url"]), timeout=30)
        assert Image.open(io.BytesIO(picture.content)).format == "JPEG"
        assert segment["start"] - 1e-6 <= frame["frame_time"] < segment["end"]
    assert requests.get(server.url(result["evidence"]["contact_sheet"]), timeout=30).ok

    job = requests.post(server.url("/api/v1/jobs"), json=body, timeout=30).json()["job_id"]
    from server_utils import wait_for

    done = wait_for(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(
        requests.get(server.url(f"/api/v1/jobs/{job}"), timeout=10).json()), timeout_s=120)
    assert done["status"] == "succeeded", done
    assert len(done["result"]["clips"]) == 1 and done["result"]["evidence"]["frames"]
    # without the field nothing is made
    plain = requests.post(server.url("/api/v1/inference"), json={**body, "outputs": None},
                          timeout=120).json()
    assert plain.get("clips") is None and plain.get("evidence") is None


def test_serve_names_the_remote_model_it_will_ask(tmp_path: Path,
                                                  fake_model: FakeOpenAIServer) -> None:
    """With the openai backend and no model named, the set-up line says the server's first
    model will answer, not the local default (issue 20 item 7)."""
    env = openai_env(fake_model)
    del env["VIDGROUND_OPENAI_MODEL"]
    srv = ServerProcess(tmp_path, env=env)
    with srv:
        line = next(x for x in srv.log().splitlines() if "backend openai" in x)
    assert "model the first model the server lists" in line and "4B" not in line, line
