"""``describe`` on the Grounder's own machinery (issue 22 item 1) and within a bounded number of
model calls (issue 21 item 11), with the fake model server that looks at the frames.

- A second describe of a video asks the decoder for nothing: the frame cache serves its windows
  and its refinement (the old describe decoded every window itself, every time).
- Several windows are asked at once where the backend can; a window too large for the model
  server's request cap is asked in pieces, like locate's (and pieces that would overrun the call
  budget are refused before asking).
- One describe request makes at most ``MAX_DESCRIBE_CALLS`` model calls, whatever the options
  allow (one request once made 464 calls; the option ranges allowed about 9,200): counted at the
  fake server, and the events still cover the whole video.
- Describe's options are ``LocateOptions`` with describe's defaults, derived in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video

import vidground.cache.frames as frames_module
from vidground.backends.base import Prompt
from vidground.backends.fitting import RequestTooLargeError
from vidground.config import Settings
from vidground.errors import OptionsError
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.outputs import describe as describe_module
from vidground.outputs.describe import (
    DESCRIBE_DEFAULTS,
    DESCRIBE_MAX_WINDOWS,
    MAX_DESCRIBE_CALLS,
    describe,
    describe_options,
)
from vidground.video.decode import Frame
from vidground.video.probe import probe

RED = (255, 0, 0)
LABEL = "the red square is visible"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events={"red square": RED}) as fake:
        yield fake


def grounder(server: FakeOpenAIServer, **settings: Any) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                      openai_model=server.model, openai_max_retries=0,
                                      **settings))


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every call of the decoder, wherever describe reaches it from (the frame cache,
    or the old describe's own import)."""
    calls: list[int] = []

    def wrap(decode: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return decode(*args, **kwargs)
        return counted

    monkeypatch.setattr(frames_module, "decode_frames", wrap(frames_module.decode_frames))
    old = getattr(describe_module, "decode_frames", None)
    if old is not None:
        monkeypatch.setattr(describe_module, "decode_frames", wrap(old))
    return calls


def test_a_second_describe_asks_the_decoder_for_nothing(
        tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    video = make_video(tmp_path / "two.mp4", duration=6.0, fps=10, size=(96, 64),
                       intervals=[(1.0, 2.0), (3.5, 4.5)]).path
    g = grounder(server, cache_dir=str(tmp_path / "cache"))
    options = LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=6)
    decodes = count_decodes(monkeypatch)
    first = describe(g, video, options)
    assert decodes, "the first describe decodes its frames"
    assert first.timings["windows"] >= 2 and first.timings["refine_calls"] > 0
    decodes.clear()
    second = describe(g, video, options)
    assert decodes == []  # windows and refinement both served by the frame cache
    assert second.timings["cache_misses"] == 0 and second.timings["cache_hits"] > 0
    assert [(e.start, e.end, e.label) for e in second.events] == \
        [(e.start, e.end, e.label) for e in first.events]
    assert [e.label for e in second.events] == [LABEL, LABEL]
    assert second.events[0].start == pytest.approx(1.0, abs=0.1 + 1e-6)
    assert second.events[1].end == pytest.approx(4.5, abs=0.1 + 1e-6)


def test_describe_asks_several_windows_at_once(tmp_path: Path,
                                               server: FakeOpenAIServer) -> None:
    # the backend takes 4 requests at once (openai_max_concurrency): windows go together
    video = make_video(tmp_path / "w.mp4", duration=6.0, fps=10, size=(64, 48),
                       intervals=[(1.0, 2.0)]).path
    server.configure(delay_s=0.3)
    server.reset_stats()
    try:
        result = describe(grounder(server), video, LocateOptions(
            frame_sampling_rate=2.0, max_frames_per_call=4, refine=False, verify=False))
        in_flight = server.max_in_flight
    finally:
        server.configure(delay_s=0.0)
    assert result.timings["windows"] >= 3
    assert result.timings["model_calls"] == result.timings["windows"] == len(server.requests)
    assert in_flight >= 2
    assert [e.label for e in result.events] == [LABEL]


def test_a_window_too_large_for_the_server_is_asked_in_pieces(
        tmp_path: Path, server: FakeOpenAIServer) -> None:
    # camera-like frames compress badly: one 16-frame window does not fit a 60 kB request
    video = make_video(tmp_path / "noisy.mp4", duration=8.0, fps=10, size=(320, 240), noise=40,
                       intervals=[(3.0, 5.0)]).path
    cap = 60_000
    server.configure(max_body_bytes=cap)
    server.reset_stats()
    try:
        result = describe(grounder(server, openai_max_request_mb=cap / 1024 / 1024), video,
                          LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False))
        sizes, statuses = list(server.body_sizes), [r.status for r in server.requests]
    finally:
        server.configure(max_body_bytes=None)
    assert sizes and max(sizes) <= cap and set(statuses) == {200}
    t = result.timings
    assert t["requests_split"] >= 1 and t["windows"] == 1
    assert t["model_calls"] == t["windows"] + t["requests_split"] == len(sizes)
    assert [e.label for e in result.events] == [LABEL]
    assert 2.5 <= result.events[0].start < result.events[0].end <= 5.5


def test_one_describe_makes_at_most_max_describe_calls(
        tmp_path: Path, server: FakeOpenAIServer) -> None:
    # a cheap four-minute video with 30 events, and options that allow thousands of calls:
    # up to 1024 windows of 4 frames, 256 refinement calls per event
    truth = [(8.0 * i + 2.0, 8.0 * i + 6.0) for i in range(30)]
    video = make_video(tmp_path / "long.mp4", duration=240.0, fps=10, size=(64, 48),
                       intervals=truth).path
    options = LocateOptions(frame_sampling_rate=2.0, max_frames=4096, max_frames_per_call=4,
                            max_windows=1024, max_refine_calls=256, max_new_tokens=4096)
    server.reset_stats()
    result = describe(grounder(server), probe(video), options)
    calls = len(server.requests)
    assert 0 < calls <= MAX_DESCRIBE_CALLS, calls
    assert result.timings["model_calls"] == calls
    assert result.timings["windows"] == DESCRIBE_MAX_WINDOWS  # not max_windows=1024
    # the windows still cover the whole video: every event is found, the last one too
    assert len(result.events) == len(truth), [(e.start, e.end) for e in result.events]
    assert all(e.label == LABEL for e in result.events)
    assert result.events[-1].start > 230.0 - 8.0
    # the budget ran out during refinement: the events past it say so, and so does a warning
    cut = [e for e in result.events if e.refined is False]
    assert cut and result.events[0].refined is True
    assert result.timings["events_cut_short"] == len(cut)
    [warning] = result.warnings
    assert f"{MAX_DESCRIBE_CALLS} model calls per describe request" in warning
    assert result.to_response()["warnings"] == [warning]


class OneFrameModel:
    """A model whose requests hold one frame at most (a tiny request-size cap)."""

    model_name = "one-frame"

    def __init__(self) -> None:
        self.answered = 0

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: object = None) -> str:
        if len(frames) > 1:
            raise RequestTooLargeError("one frame per request", fits=1)
        self.answered += 1
        return "Answer: NOT FOUND"


def test_pieces_that_would_overrun_the_call_budget_are_refused_before_asking(
        tmp_path: Path) -> None:
    # 140 frames in windows of 8, one frame per request: more requests than the budget
    video = make_video(tmp_path / "long.mp4", duration=70.0, fps=4, size=(64, 48),
                       intervals=[]).path
    model = OneFrameModel()
    with pytest.raises(RequestTooLargeError, match="VIDGROUND_OPENAI_MAX_REQUEST_MB") as caught:
        describe(Grounder(backend=model), video,
                 LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=8))
    assert f"of its {MAX_DESCRIBE_CALLS}" in caught.value.message
    assert 0 < model.answered <= MAX_DESCRIBE_CALLS


def test_describe_options_are_locate_options_with_describes_defaults(
        server: FakeOpenAIServer, tmp_path: Path) -> None:
    defaults = describe_options()
    assert defaults == LocateOptions(**DESCRIBE_DEFAULTS)
    assert defaults.max_new_tokens == 1024 > LocateOptions().max_new_tokens
    assert describe_options({"max_new_tokens": 300, "refine": False}) == LocateOptions(
        **{**DESCRIBE_DEFAULTS, "max_new_tokens": 300, "refine": False})
    given = LocateOptions(max_new_tokens=77)
    assert describe_options(given) is given
    with pytest.raises(OptionsError, match="max_windows"):
        describe_options({"max_windows": 0})  # LocateOptions' own ranges, not a copy
    with pytest.raises(OptionsError, match="unknown option"):
        describe_options({"max_tokens": 5})
    # a describe without options asks the model for describe's default answer length
    video = make_video(tmp_path / "short.mp4", duration=2.0, fps=10, size=(64, 48),
                       intervals=[(0.5, 1.0)]).path
    server.reset_stats()
    describe(grounder(server), video)
    first = server.requests[0].body
    assert first.get("max_tokens", first.get("max_completion_tokens")) == 1024
