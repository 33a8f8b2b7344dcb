"""The cache with remote (OpenAI-compatible) backends and through the real server: a second
question about a video sends byte-identical frames in the same place (so vLLM's prefix and
multimodal caches can hit), hits the frame cache, and says so in the response's ``timings``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env

from vidground import cache as cache_module
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions

COARSE = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False)


def _grounder(fake: FakeOpenAIServer, **settings: Any) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=fake.base_url,
                                      openai_model=fake.model, openai_max_retries=0,
                                      **settings))


def _split(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any], str]:
    """(messages before the user turn, the user turn's media parts, the question text)."""
    *before, user = body["messages"]
    assert user["role"] == "user"
    *media, question = user["content"]
    assert question["type"] == "text"
    return before, media, question["text"]


def test_second_question_sends_identical_frames_before_the_question(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    grounder = _grounder(fake_model, cache_dir=tmp_path / "cache")
    fake_model.reset_stats()
    first = grounder.locate(video.path, "When is the red square visible?", COARSE)
    second = grounder.locate(video.path, "When does the red square show up?", COARSE)
    uncached = _grounder(fake_model, cache_max_gb=0).locate(
        video.path, "When is the red square visible?", COARSE)
    bodies = [r.body for r in fake_model.requests]
    assert len(bodies) == 3

    (sys1, media1, q1), (sys2, media2, q2), (sys3, media3, q3) = map(_split, bodies)
    assert media1 and all(p["type"] in ("text", "image_url") for p in media1)
    assert any(p["type"] == "image_url" for p in media1)
    assert media1 == media2 == media3  # same <t seconds> labels, same JPEG bytes, same order
    assert sys1 == sys2 == sys3
    assert q1 != q2 and q1 == q3
    assert bodies[0] == bodies[2]  # from the cache or decoded again: the same request
    assert first.timings["cache_misses"] == 1 and first.timings["cache_hits"] == 0
    assert second.timings["cache_hits"] == 1 and second.timings["cache_misses"] == 0
    assert uncached.timings["cache_hits"] == uncached.timings["cache_misses"] == 0
    assert second.spans == first.spans == uncached.spans


def test_server_reports_cache_hits_on_the_second_request(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    cache_dir = tmp_path / "cache"
    srv = ServerProcess(tmp_path, env=openai_env(fake_model,
                                                 VIDGROUND_CACHE_DIR=str(cache_dir)))
    make_video(srv.media_root / "match.mp4", duration=4.0, fps=10, intervals=[(1.5, 3.0)])
    with srv:
        timings = []
        for query in ("When is the red square visible?", "When does the red square leave?"):
            r = requests.post(srv.url("/api/v1/inference"), json={
                "video_path": "match.mp4", "query": query}, timeout=120)
            assert r.status_code == 200, r.text
            timings.append(r.json()["timings"])
    first, second = timings
    assert first["cache_hits"] == 0 and first["cache_misses"] >= 1
    assert second["cache_hits"] >= 1  # the coarse frames (and refinement clips it saw before)
    assert second["cache_hits"] + second["cache_misses"] >= first["cache_misses"]
    for t in timings:
        assert {"decode_s", "vision_s", "model_s", "total_s"} <= set(t)
    on_disk = cache_module.info(Settings(cache_dir=cache_dir))
    assert on_disk["kinds"]["frames"]["entries"] >= 1  # the server process wrote them there


def test_stats_for_the_health_endpoint(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache")
    stats = cache_module.stats(settings)
    assert stats["enabled"] is True and stats["entries"] == 0
    assert {"hits", "misses", "bytes", "max_bytes", "corrupt", "evicted"} <= set(stats)
    off = cache_module.stats(Settings(cache_dir=tmp_path / "off", cache_max_gb=0))
    assert off["enabled"] is False and off["bytes"] == 0


def test_adaptive_sampling_keeps_its_motion_pass(tmp_path: Path,
                                                 fake_model: FakeOpenAIServer) -> None:
    """The adaptive pass decodes the whole video (small grey frames): a second question reads
    its motion curve from the cache, and the same times and frames follow."""
    fake_model.configure(delay_s=0.0, answer=None)
    video = make_video(tmp_path / "v.mp4", duration=6.0, fps=25, intervals=[(2.0, 2.4)])
    grounder = _grounder(fake_model, cache_dir=tmp_path / "cache")
    opts = LocateOptions(frame_sampling_rate="adaptive", refine=False, verify=False)
    first = grounder.locate(video.path, "When is the red square visible?", opts)
    second = grounder.locate(video.path, "When does the red square flash?", opts)
    assert (first.timings["cache_hits"], first.timings["cache_misses"]) == (0, 2)
    assert (second.timings["cache_hits"], second.timings["cache_misses"]) == (2, 0)
    assert second.motion == first.motion and second.frame_times == first.frame_times
    kinds = cache_module.info(Settings(cache_dir=tmp_path / "cache"))["kinds"]
    assert kinds["motion"]["entries"] == 1 and kinds["frames"]["entries"] == 1
