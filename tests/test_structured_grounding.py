"""Structured answers end to end (issue 20.2): a Grounder with ``structured_output`` on asks
the fake OpenAI-compatible server for the grounding schema, reads the JSON it answers back as
the same spans as the free-text answer, and keeps working in free text when the server refuses
``response_format``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fake_openai_server import FakeOpenAIServer
from media import make_video

from vidground.backends.structured import structured_answers
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions

QUERY = "When is the red square visible?"
OPTIONS = LocateOptions(frame_sampling_rate=2.0, refine=True, verify=False)


def _grounder(fake: FakeOpenAIServer, **settings: Any) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=fake.base_url,
                                      openai_model=fake.model, openai_max_retries=0,
                                      cache_max_gb=0, **settings))


def _spans(grounding: Any) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in grounding.spans]


def test_structured_answers_give_the_free_text_spans(tmp_path: Path,
                                                     fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None, response_format="honour")
    video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    fake_model.reset_stats()
    free = _grounder(fake_model).locate(video.path, QUERY, OPTIONS)
    assert fake_model.structured_count == 0
    structured = _grounder(fake_model, structured_output=True).locate(video.path, QUERY, OPTIONS)
    asked = [r for r in fake_model.requests if "response_format" in r.body]
    assert len(asked) == fake_model.structured_count >= 2  # the coarse question and re-asks
    assert _spans(structured) == _spans(free) and _spans(free)
    assert 0.9 <= free.spans[0].start <= 1.1 and 1.9 <= free.spans[0].end <= 2.1
    raw = json.loads(structured.raw_answer)
    assert list(raw) == ["spans", "reasoning"] and raw["spans"]


def test_a_refusing_server_is_asked_in_free_text_and_the_spans_stay(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None, response_format="refuse")
    try:
        video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
        fake_model.reset_stats()
        grounder = _grounder(fake_model, structured_output=True)
        first = grounder.locate(video.path, QUERY, OPTIONS)
        again = grounder.locate(video.path, QUERY, OPTIONS)
        assert fake_model.structured_count == 1  # refused once, remembered
        assert [r.status for r in fake_model.requests].count(400) == 1
        assert _spans(first) == _spans(again) and _spans(first)
        with structured_answers(False):
            grounder.locate(video.path, QUERY, OPTIONS)
        assert fake_model.structured_count == 1
    finally:
        fake_model.configure(response_format="honour")


def test_the_request_option_overrides_the_server_setting(tmp_path: Path,
                                                          fake_model: FakeOpenAIServer) -> None:
    """``structured_output`` in a request's options (the API, ``--structured``, an eval grid
    axis) turns structured answers on or off for that question alone."""
    fake_model.configure(delay_s=0.0, answer=None, response_format="honour")
    video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    grounder = _grounder(fake_model)  # the setting is off
    fake_model.reset_stats()
    on = grounder.locate(video.path, QUERY, LocateOptions(frame_sampling_rate=2.0, verify=False,
                                                         structured_output=True))
    assert fake_model.structured_count >= 1 and _spans(on)
    fake_model.reset_stats()
    off = _grounder(fake_model, structured_output=True).locate(
        video.path, QUERY, LocateOptions(frame_sampling_rate=2.0, verify=False,
                                         structured_output=False))
    assert fake_model.structured_count == 0 and _spans(off) == _spans(on)
