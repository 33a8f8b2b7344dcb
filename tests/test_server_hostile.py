"""Hostile input over real HTTP: every case is a 4xx JSON error, and the server stays up."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_garbage, make_text_file, make_truncated, make_video
from server_utils import ServerProcess, openai_env

QUERY = "When is the red square visible?"


@dataclass
class Env:
    srv: ServerProcess
    outside: Path  # a real video outside the media root
    files: Path    # scratch folder for upload bodies


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAIServer
        ) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("hostile")
    srv = ServerProcess(base, env=openai_env(
        fake_model, VIDGROUND_MAX_UPLOAD_MB="1", VIDGROUND_MAX_VIDEO_DURATION_S="5",
        VIDGROUND_MAX_VIDEO_PIXELS=str(320 * 240), VIDGROUND_MAX_REQUEST_KB="2048"))
    media = srv.media_root
    make_video(media / "ok.mp4", duration=2.0, fps=10)
    outside_dir = base / "secret"
    outside_dir.mkdir()
    outside = make_video(outside_dir / "private.mp4", duration=2.0, fps=10).path
    os.symlink(outside, media / "link.mp4")
    os.symlink(outside_dir, media / "linkdir")
    make_truncated(media / "ok.mp4", media / "truncated.mp4", keep=0.3)
    make_text_file(media / "notes.mp4")
    make_garbage(media / "garbage.mp4")
    (media / "empty.mp4").write_bytes(b"")
    (media / "folder.mp4").mkdir()
    make_video(media / "long.mp4", duration=7.0, fps=5)
    make_video(media / "big.mp4", duration=1.0, fps=5, size=(640, 480))
    files = base / "files"
    files.mkdir()
    with srv:
        yield Env(srv, outside, files)


def post_json(e: Env, body: Any, path: str = "/api/v1/inference") -> requests.Response:
    return requests.post(e.srv.url(path), json=body, timeout=30)


def infer(video_path: Any, **extra: Any) -> Callable[[Env], requests.Response]:
    return lambda e: post_json(e, {"video_path": video_path, "query": QUERY, **extra})


def raw(data: bytes, content_type: str = "application/json",
        path: str = "/api/v1/inference") -> Callable[[Env], requests.Response]:
    return lambda e: requests.post(e.srv.url(path), data=data,
                                   headers={"Content-Type": content_type}, timeout=30)


def upload(make: Callable[[Path], Path], name: str = "clip.mp4"
           ) -> Callable[[Env], requests.Response]:
    def call(e: Env) -> requests.Response:
        path = make(e.files / name)
        with open(path, "rb") as fh:
            return requests.post(e.srv.url("/api/v1/videos"),
                                 files={"file": (name, fh, "video/mp4")}, timeout=60)
    return call


SPAN = {"start": 0.5, "end": 1.0}


def outputs(route: str, video_path: str, **extra: Any) -> Callable[[Env], requests.Response]:
    """POST /api/v1/clips or /evidence for ``video_path`` (one span unless ``spans``)."""
    return lambda e: post_json(e, {"video_path": video_path, "spans": [SPAN], **extra},
                               f"/api/v1/{route}")


def truncated_upload(e: Env) -> requests.Response:
    good = make_video(e.files / "full.mp4", duration=2.0, fps=10).path
    return upload(lambda p: make_truncated(good, p, keep=0.3))(e)


CASES: dict[str, tuple[Callable[[Env], requests.Response], set[int]]] = {
    "traversal": (infer("../secret/private.mp4"), {403}),
    "traversal-deep": (infer("a/../../secret/private.mp4"), {403}),
    "traversal-backslash": (infer("..\\secret\\private.mp4"), {403}),
    "traversal-encoded": (infer("%2e%2e/secret/private.mp4"), {404}),
    "absolute-outside": (lambda e: post_json(e, {"video_path": str(e.outside),
                                                  "query": QUERY}), {403}),
    "absolute-etc-passwd": (infer("/etc/passwd"), {403}),
    "symlink-escape": (infer("link.mp4"), {403}),
    "symlink-dir-escape": (infer("linkdir/private.mp4"), {403}),
    "nul-byte": (infer("ok.mp4\x00.txt"), {400}),
    "url-http": (infer("http://example.com/a.mp4"), {400}),
    "url-file": (infer("file:///etc/passwd"), {400}),
    "url-data": (infer("data:video/mp4;base64,AAAA"), {400}),
    "empty-path": (infer(""), {400}),
    "missing-file": (infer("nope.mp4"), {404}),
    "directory": (infer("folder.mp4"), {422}),
    "media-root-itself": (infer("."), {422}),
    "text-as-video": (infer("notes.mp4"), {422}),
    "garbage-as-video": (infer("garbage.mp4"), {422}),
    "empty-video": (infer("empty.mp4"), {422}),
    "truncated-video": (infer("truncated.mp4"), {422}),
    "too-long-video": (infer("long.mp4"), {413}),
    "too-large-frames": (infer("big.mp4"), {413}),
    "very-long-path": (infer("a/" * 3000 + "b.mp4"), {400}),
    "upload-text": (upload(make_text_file), {415}),
    "upload-garbage": (upload(make_garbage), {415}),
    "upload-empty": (upload(lambda p: (p.write_bytes(b""), p)[1]), {400}),
    "upload-truncated": (truncated_upload, {415, 422}),
    "upload-oversize": (upload(lambda p: make_garbage(p, size=3 * 1024 * 1024)), {413}),
    "upload-not-multipart": (raw(b"\x00\x00\x00 ftypisom", "video/mp4",
                                 "/api/v1/videos"), {400}),
    "upload-no-file-field": (lambda e: requests.post(
        e.srv.url("/api/v1/videos"), files={"other": ("x", b"abc")}, timeout=10), {400}),
    "upload-broken-multipart": (raw(b"--xx\r\nContent-Disposition: form-data; name=\"file\""
                                    b"\r\n\r\nabc", "multipart/form-data; boundary=xx",
                                    "/api/v1/videos"), {400}),
    "malformed-json": (raw(b'{"video_path": "ok.mp4", "query": '), {422}),
    "json-not-object": (raw(b'["ok.mp4"]'), {422}),
    "json-null": (raw(b"null"), {422}),
    "not-json-content-type": (raw(b"video_path=ok.mp4", "application/x-www-form-urlencoded"),
                              {422}),
    "huge-json-body": (raw(json.dumps({"video_path": "ok.mp4", "query": "x" * 3_000_000})
                           .encode()), {413}),
    "deeply-nested-json": (raw(b'{"video_path": "ok.mp4", "query": "q", "options": '
                               + b"[" * 5000 + b"]" * 5000 + b"}"), {400, 422}),
    "unknown-option": (infer("ok.mp4", options={"temperature": 2}), {422}),
    "unknown-field": (infer("ok.mp4", model="gpt"), {422}),
    "bad-option-value": (infer("ok.mp4", options={"frame_sampling_rate": -1}), {422}),
    "bad-option-string": (infer("ok.mp4", options={"frame_sampling_rate": "fast"}), {422}),
    "bad-output-format": (infer("ok.mp4", options={"output_format": "minutes"}), {422}),
    "huge-max-frames": (infer("ok.mp4", options={"max_frames": 10**12}), {422}),
    "options-not-object": (infer("ok.mp4", options=[1, 2]), {422}),
    "query-1mb": (infer("ok.mp4", query="q" * 1_000_000), {422}),
    "query-empty": (infer("ok.mp4", query="   "), {422}),
    "query-nul": (infer("ok.mp4", query="when\x00"), {422}),
    "query-wrong-type": (infer("ok.mp4", query=123), {422}),
    "path-wrong-type": (infer(["ok.mp4"]), {422}),
    "bool-as-int": (infer("ok.mp4", options={"max_frames": True}), {422}),
    "missing-query": (lambda e: post_json(e, {"video_path": "ok.mp4"}), {422}),
    "missing-video": (lambda e: post_json(e, {"query": QUERY}), {422}),
    "both-path-and-id": (infer("ok.mp4", video_id="0" * 32), {422}),
    "bad-video-id": (lambda e: post_json(e, {"video_id": "../../etc", "query": QUERY}),
                     {404}),
    "unknown-video-id": (lambda e: post_json(e, {"video_id": "a" * 32, "query": QUERY}),
                         {404}),
    "get-bad-video-id": (lambda e: requests.get(e.srv.url("/api/v1/videos/..%2f..%2fetc"),
                                                timeout=10), {404, 422}),
    "get-unknown-video": (lambda e: requests.get(e.srv.url("/api/v1/videos/" + "b" * 32),
                                                 timeout=10), {404}),
    "bad-job-id": (lambda e: requests.get(e.srv.url("/api/v1/jobs/not-a-job"), timeout=10),
                   {422}),
    "unknown-job-id": (lambda e: requests.get(e.srv.url("/api/v1/jobs/" + "c" * 24),
                                              timeout=10), {404}),
    "delete-bad-job-id": (lambda e: requests.delete(e.srv.url("/api/v1/jobs/%00"),
                                                    timeout=10), {422}),
    "jobs-bad-paging": (lambda e: requests.get(e.srv.url("/api/v1/jobs?limit=-1&offset=x"),
                                               timeout=10), {422}),
    "jobs-bad-status": (lambda e: requests.get(e.srv.url("/api/v1/jobs?status=evil"),
                                               timeout=10), {422}),
    "jobs-empty-batch": (lambda e: post_json(e, {"requests": []}, "/api/v1/jobs"), {422}),
    "jobs-hostile-in-batch": (lambda e: post_json(e, {"requests": [
        {"video_path": "/etc/passwd", "query": QUERY}]}, "/api/v1/jobs"), {403}),
    # text JSON can spell but UTF-8 cannot store: refused at the door, never stored
    "query-lone-surrogate": (raw(b'{"video_path": "ok.mp4", "query": "\\ud800"}'), {422}),
    "path-lone-surrogate": (raw(b'{"video_path": "\\ud800.mp4", "query": "q"}'), {422}),
    "option-lone-surrogate": (raw(b'{"video_path": "ok.mp4", "query": "q", '
                                  b'"options": {"language": "\\udfff"}}'), {422}),
    "key-lone-surrogate": (raw(b'{"video_path": "ok.mp4", "query": "q", '
                               b'"options": {"\\ud800": 1}}'), {422}),
    "jobs-lone-surrogate": (raw(b'{"video_path": "ok.mp4", "query": "\\ud800"}',
                                path="/api/v1/jobs"), {422}),
    "batch-lone-surrogate": (raw(b'{"requests": [{"video_path": "ok.mp4", "query": "q"}, '
                                 b'{"video_path": "ok.mp4", "query": "\\udbff"}]}',
                                 path="/api/v1/jobs"), {422}),
    "upload-boundary-over-256": (raw(b"--" + b"b" * 300 + b"\r\nContent-Disposition: "
                                     b'form-data; name="file"\r\n\r\nabc',
                                     "multipart/form-data; boundary=" + "b" * 300,
                                     "/api/v1/videos"), {400}),
    "upload-junk-field": (lambda e: requests.post(
        e.srv.url("/api/v1/videos"), data={"junk": "x" * 200_000}, timeout=30,
        files={"file": ("ok.mp4", (e.srv.media_root / "ok.mp4").read_bytes(), "video/mp4")}),
        {400}),
    "video-id-trailing-newline": (lambda e: post_json(e, {"video_id": "a" * 32 + "\n",
                                                          "query": QUERY}), {404}),
    # the outputs routes (clips and evidence wait in their own queue; issue 21)
    "clips-traversal": (outputs("clips", "../secret/private.mp4"), {403}),
    "clips-symlink-escape": (outputs("clips", "link.mp4"), {403}),
    "evidence-absolute-outside": (lambda e: outputs("evidence", str(e.outside))(e), {403}),
    "evidence-etc-passwd": (outputs("evidence", "/etc/passwd"), {403}),
    "describe-traversal": (lambda e: post_json(e, {"video_path": "../secret/private.mp4"},
                                               "/api/v1/describe"), {403}),
    "clips-too-many-spans": (outputs("clips", "ok.mp4", spans=[SPAN] * 21), {422}),
    "evidence-too-many-spans": (outputs("evidence", "ok.mp4", spans=[SPAN] * 51), {422}),
    "clips-bad-mode": (outputs("clips", "ok.mp4", mode="lossless"), {422}),
    "clips-huge-pad": (outputs("clips", "ok.mp4", pad=1e9), {422}),
    "clips-span-after-end": (outputs("clips", "ok.mp4", spans=[{"start": 50, "end": 51}]),
                             {422}),
    "clips-end-before-start": (outputs("clips", "ok.mp4", spans=[{"start": 1, "end": 0.5}]),
                               {422}),
    "evidence-text-as-video": (outputs("evidence", "notes.mp4"), {422}),
    "evidence-too-long-video": (outputs("evidence", "long.mp4"), {413}),
    "clips-unknown-video-id": (lambda e: post_json(e, {"video_id": "d" * 32, "spans": [SPAN]},
                                                   "/api/v1/clips"), {404}),
    "job-clips-unknown-job": (lambda e: post_json(e, {}, "/api/v1/jobs/" + "c" * 24 + "/clips"),
                              {404}),
    "job-evidence-unknown-job": (lambda e: requests.get(
        e.srv.url("/api/v1/jobs/" + "c" * 24 + "/evidence"), timeout=10), {404}),
    "output-download-traversal": (lambda e: requests.get(
        e.srv.url("/api/v1/outputs/" + "0" * 32 + "/..%2F..%2Fjobs.sqlite3"), timeout=10),
        {404, 422}),
    "inference-outputs-not-bools": (infer("ok.mp4", outputs={"clips": "all"}), {422}),
    "export-huge-body": (raw(json.dumps({"result": {"segments": [
        {"start": 0, "end": 1, "label": "x" * 400}] * 8000}}).encode(),
        path="/api/v1/export?format=srt"), {413}),
    "unknown-route": (lambda e: requests.get(e.srv.url("/api/v1/nothing"), timeout=10), {404}),
    "wrong-method": (lambda e: requests.put(e.srv.url("/api/v1/inference"), timeout=10),
                     {405}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gets_a_4xx_json_error(env: Env, name: str) -> None:
    call, expected = CASES[name]
    r = call(env)
    assert r.status_code in expected, (name, r.status_code, r.text[:500])
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert str(env.outside.parent) not in r.text  # never echo what lies outside the root
    # nor where the server keeps its own files (issue 21)
    for private in (env.srv.data_dir, env.srv.media_root, env.srv.media_root.resolve()):
        assert str(private) not in r.text, (name, r.text[:500])


def test_server_still_healthy_after_the_table(env: Env) -> None:
    for call, _ in CASES.values():  # once more, back to back
        assert call(env).status_code < 500
    assert env.srv.alive()
    r = requests.get(env.srv.url("/api/v1/health"), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = requests.post(env.srv.url("/api/v1/inference"), json={
        "video_path": "ok.mp4", "query": QUERY, "options": {"refine": False}}, timeout=60)
    assert r.status_code == 200, r.text
    # refused uploads leave no file behind
    uploads = env.srv.data_dir / "uploads"
    assert not list(uploads.glob("*.part"))
    assert len(list(uploads.glob("*.video"))) == len(list(uploads.glob("*.json")))


def test_upload_limit_messages_name_what_the_user_sent(env: Env) -> None:
    """413 for a too-large video names the file as the client sent it, never the stored
    ``<id>.video`` file."""
    big = (env.srv.media_root / "big.mp4").read_bytes()
    r = requests.post(env.srv.url("/api/v1/videos"), timeout=30,
                      files={"file": ("holiday.mp4", big, "video/mp4")})
    assert r.status_code == 413, r.text
    message = r.json()["error"]["message"]
    assert "holiday.mp4" in message and ".video" not in message and ".part" not in message


def test_stored_invalid_text_cannot_break_the_job_api(env: Env) -> None:
    """A job holding a lone surrogate (stored by an older version) still lists, reads and
    cancels: responses escape it instead of failing to encode."""
    from vidground.config import Settings
    from vidground.server.jobstore import open_store

    store = open_store(Settings(data_dir=env.srv.data_dir), env.srv.data_dir)
    try:
        _, (job_id,) = store.create([{"video_path": "\ud800.mp4", "query": "\ud800",
                                      "options": {}}], max_attempts=1)
    finally:
        store.close()
    r = requests.get(env.srv.url(f"/api/v1/jobs/{job_id}"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["request"]["query"] == "\ud800"
    r = requests.get(env.srv.url("/api/v1/jobs?limit=500"), timeout=10)
    assert r.status_code == 200 and job_id in {j["job_id"] for j in r.json()["jobs"]}
    assert requests.delete(env.srv.url(f"/api/v1/jobs/{job_id}"), timeout=10).status_code in (
        200, 409)


def test_video_ids_are_matched_whole(tmp_path: Path) -> None:
    """An id with a trailing newline is not an id (``re.match`` with ``$`` took it)."""
    from vidground.errors import VideoNotFoundError
    from vidground.server.storage import UploadStore

    store = UploadStore(tmp_path, max_bytes=1 << 20, max_duration_s=60, max_pixels=1 << 20)
    (tmp_path / ("a" * 32 + ".video")).write_bytes(b"x")
    assert store.video_path("a" * 32) == tmp_path / ("a" * 32 + ".video")
    for bad in ("a" * 32 + "\n", "a" * 31, "A" * 32, "\n" + "a" * 32):
        with pytest.raises(VideoNotFoundError, match="32 lowercase hex"):
            store.video_path(bad)
