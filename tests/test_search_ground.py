"""``--ground`` on a window (issue 27 item 3): the model is asked about each hit's neighbourhood
only (the hit ± 2 s), the frames decoded are the window's and no others, the times it reports
are frames of the video, and a hit it does not confirm there is dropped — even when what the
query names happens elsewhere in the same video. The model is the fake OpenAI-compatible
server that looks at the frames (a red square); the decoder is the real one, counted."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video

import vidground.cache.frames as cache_frames
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.progress import ProgressEvent
from vidground.search.query import GROUND_MARGIN_S, ground_hits, ground_windows
from vidground.search.store import Hit

FPS = 10
DURATION = 20.0
RED_AT = ((3.0, 4.0), (12.0, 13.0))  # the square shows twice
FRAME = 1.0 / FPS


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ground") / "long.mp4"
    make_video(path, duration=DURATION, fps=FPS, intervals=RED_AT, color=(255, 0, 0))
    return path


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as server:
        yield server


@pytest.fixture()
def grounder(model: FakeOpenAIServer, tmp_path: Path) -> Grounder:
    """No frame cache: every frame the pipeline needs is decoded (and counted)."""
    model.reset_stats()
    return Grounder(settings=Settings(backend="openai", openai_base_url=model.base_url,
                                      openai_model=model.model, openai_max_retries=0,
                                      data_dir=tmp_path, cache_max_gb=0))


@pytest.fixture()
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times of every frame the real decoder returns while the test runs."""
    seen: list[float] = []
    real = cache_frames.decode_frames

    def counting(video: Any, times: Sequence[float], **kw: Any) -> Any:
        frames = real(video, times, **kw)
        seen.extend(f.time for f in frames)
        return frames

    monkeypatch.setattr(cache_frames, "decode_frames", counting)
    return seen


def hit(video: Path, start: float, end: float, score: float = 1.0) -> Hit:
    return Hit(str(video), start, end, score, "the red square is visible", "event")


def frame_exact(t: float) -> bool:
    return abs(t * FPS - round(t * FPS)) < 1e-6


def test_ground_decodes_only_the_hits_neighbourhood_and_gives_frame_exact_times(
        video: Path, grounder: Grounder, model: FakeOpenAIServer, decoded: list[float]) -> None:
    events: list[ProgressEvent] = []
    # the index's times are rough (a describe at 2 fps); the model finds the frames
    [found] = ground_hits(grounder, [hit(video, 11.5, 13.5)], "red square",
                          LocateOptions(frame_sampling_rate=2.0), progress=events.append)
    lo, hi = 11.5 - GROUND_MARGIN_S, 13.5 + GROUND_MARGIN_S
    assert decoded, "nothing was decoded"
    assert all(lo - FRAME <= t <= hi + FRAME for t in decoded), sorted(decoded)
    window_frames = (hi - lo) * FPS + 1
    assert len(set(decoded)) <= window_frames < DURATION * FPS / 3
    coarse = model.requests[0].times  # the first look: the window's frames, labelled
    assert coarse and all(lo - FRAME <= t <= hi + FRAME for t in coarse), coarse
    assert found.confirmed is True
    assert found.start == pytest.approx(12.0, abs=FRAME + 1e-6)
    assert found.end == pytest.approx(13.0, abs=FRAME + 1e-6)
    assert frame_exact(found.start) and frame_exact(found.end), (found.start, found.end)
    assert events[0].stage == "ground" and events[-1].done == events[-1].total == 1


def test_a_hit_the_model_does_not_confirm_there_is_dropped(
        video: Path, grounder: Grounder, decoded: list[float]) -> None:
    """The red square shows at 3-4 s and 12-13 s; a hit at 7.5-8 s (text that matched, a
    picture that does not) is dropped: its neighbourhood 5.5-10 s has no red square, and the
    occurrences elsewhere are never looked at."""
    kept = ground_hits(grounder, [hit(video, 7.5, 8.0, 3.0), hit(video, 3.0, 4.0, 2.0)],
                       "red square", LocateOptions(frame_sampling_rate=2.0))
    assert [(round(h.start, 3), round(h.end, 3)) for h in kept] == [(3.0, 4.0)]
    assert kept[0].score == 2.0  # the confirmed hit keeps its rank and score
    assert all(t <= 10.0 + FRAME for t in decoded), max(decoded)  # 12-13 s never decoded


def test_neighbourhoods_that_overlap_are_one_window() -> None:
    hits = [Hit(video, start, start + 1, 1.0, "x", "event")
            for video, start in (("/v/a.mp4", 5.0), ("/v/b.mp4", 1.0), ("/v/a.mp4", 8.0),
                                 ("/v/a.mp4", 30.0))]
    assert ground_windows(hits, 2.0) == [("/v/a.mp4", 3.0, 11.0), ("/v/a.mp4", 28.0, 33.0),
                                         ("/v/b.mp4", 0.0, 4.0)]
