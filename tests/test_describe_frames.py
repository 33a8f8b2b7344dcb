"""Describe's frames are decoded and encoded once each (issue 22 item 7), with the fake model
server that looks at the frames and real videos:

- requests are fitted to the model server's byte cap before their frames are encoded in full
  (a sample of frames predicts the encoding, the question's later requests start there), so no
  frame is encoded twice at one setting and what is encoded but not sent is one small sample
  (the old describe encoded 214 JPEGs to send 40 frames of a 20 s clip, 543 under a tighter
  cap);
- the frames that overlapping windows share are decoded and encoded once (the old describe
  decoded them once per window) and still sent in both windows;
- a window's frames are exactly what decoding all its times returns (frames shown at several
  sampled times once), and a second describe through the cache decodes and encodes nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video

import vidground.backends.images as images
import vidground.cache.frames as frames_module
from vidground.backends.fitting import FIT_SAMPLE
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.grounding.window_frames import WindowFrames
from vidground.options import LocateOptions
from vidground.outputs.describe import describe
from vidground.video.decode import decode_frames
from vidground.video.probe import probe

RED = (255, 0, 0)
LABEL = "the red square is visible"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events={"red square": RED}) as fake:
        yield fake


def grounder(server: FakeOpenAIServer, **settings: Any) -> Grounder:
    settings.setdefault("cache_max_gb", 0.0)
    return Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                      openai_model=server.model, openai_max_retries=0,
                                      **settings))


class Encodes:
    """Every JPEG encoding made, keyed by the picture, the quality and the size it comes out."""

    def __init__(self) -> None:
        self.made: Counter[tuple[str, int, tuple[int, int]]] = Counter()

    @property
    def total(self) -> int:
        return sum(self.made.values())

    def repeated(self) -> dict[tuple[str, int, tuple[int, int]], int]:
        return {key: n for key, n in self.made.items() if n > 1}


@pytest.fixture()
def encodes(monkeypatch: pytest.MonkeyPatch) -> Encodes:
    seen = Encodes()
    encode = images.encode_jpeg

    def counted(image: np.ndarray, *, quality: int = 85, max_side: int | None = None) -> bytes:
        picture = images.fit_max_side(images.to_pil(image), max_side)
        digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
        seen.made[(digest, quality, picture.size)] += 1
        return encode(image, quality=quality, max_side=max_side)

    monkeypatch.setattr(images, "encode_jpeg", counted)
    return seen


@pytest.fixture()
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time the decoder is asked for (through the frame cache or not)."""
    asked: list[float] = []
    decode = frames_module.decode_frames

    def counted(info: Any, times: Any, **kwargs: Any) -> Any:
        asked.extend(float(t) for t in times)
        return decode(info, times, **kwargs)

    monkeypatch.setattr(frames_module, "decode_frames", counted)
    return asked


def sent_times(server: FakeOpenAIServer) -> list[float]:
    return [t for r in server.requests for t in r.times if t is not None]


@pytest.mark.parametrize("cap", [150_000, 60_000])
def test_requests_are_fitted_before_encoding_so_each_frame_is_encoded_once(
        tmp_path: Path, server: FakeOpenAIServer, encodes: Encodes, cap: int) -> None:
    # camera-like frames compress badly: 16-frame windows are far over the cap at the
    # configured JPEG quality; at 60 kB the windows are also split into pieces
    video = make_video(tmp_path / "noisy.mp4", duration=20.0, fps=10, size=(320, 240),
                       noise=40, intervals=[(3.0, 5.0), (12.0, 14.0)]).path
    server.configure(max_body_bytes=cap)
    server.reset_stats()
    try:
        result = describe(grounder(server, openai_max_request_mb=cap / 1024 / 1024), video,
                          LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=16,
                                        refine=False, verify=False))
        statuses = [r.status for r in server.requests]
        distinct_sent = len(set(sent_times(server)))
    finally:
        server.configure(max_body_bytes=None)
    assert set(statuses) == {200} and max(server.body_sizes) <= cap
    assert result.timings["requests_refitted"] >= 1 and result.timings["windows"] == 3
    assert [e.label for e in result.events] == [LABEL, LABEL]
    assert distinct_sent == result.timings["frames"] == 40
    assert encodes.repeated() == {}  # no frame encoded twice at one quality and size
    # besides what was sent, one sample of frames to choose the encoding (a few steps of it)
    assert encodes.total <= distinct_sent + 4 * FIT_SAMPLE, encodes.total


def test_overlapping_windows_decode_and_encode_shared_frames_once(
        tmp_path: Path, server: FakeOpenAIServer, encodes: Encodes,
        decoded: list[float]) -> None:
    video = make_video(tmp_path / "w.mp4", duration=12.0, fps=10, size=(96, 64),
                       intervals=[(2.0, 3.0), (8.0, 9.5)]).path
    options = LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=8, refine=False,
                            verify=False)
    g = grounder(server)
    plan = g.plan(probe(video), options)
    distinct = {t for w in plan.windows for t in w}
    assert len(plan.windows) >= 3 and sum(len(w) for w in plan.windows) > len(distinct)
    server.reset_stats()
    result = describe(g, video, options)
    assert [e.label for e in result.events] == [LABEL, LABEL]
    sent = sent_times(server)
    assert len(sent) == sum(len(w) for w in plan.windows)  # shared frames still sent twice
    assert sorted(decoded) == sorted(distinct)  # ... but decoded once
    assert encodes.total == len(set(sent)) == len(distinct) and encodes.repeated() == {}


def test_a_second_describe_through_the_cache_decodes_and_encodes_nothing(
        tmp_path: Path, server: FakeOpenAIServer, encodes: Encodes,
        decoded: list[float]) -> None:
    video = make_video(tmp_path / "c.mp4", duration=12.0, fps=10, size=(96, 64),
                       intervals=[(2.0, 3.0)]).path
    # the windows' frames (the refiner's own frames are refine.py's)
    options = LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=8, refine=False,
                            verify=False)
    g = grounder(server, cache_dir=str(tmp_path / "cache"), cache_max_gb=1.0)
    first = describe(g, video, options)
    assert first.timings["windows"] >= 3 and len(set(decoded)) == len(decoded)
    assert encodes.total == len(decoded) and encodes.repeated() == {}
    decoded.clear()
    encodes.made.clear()
    second = describe(g, video, options)
    assert decoded == [] and encodes.total == 0
    assert [(e.start, e.end, e.label) for e in second.events] == \
        [(e.start, e.end, e.label) for e in first.events]


@pytest.mark.parametrize("rate", [2.0, 7.0])
def test_window_frames_are_what_decoding_each_window_returns(tmp_path: Path,
                                                             rate: float) -> None:
    # a 4 fps video sampled at 7 fps: several sampled times show one frame (kept once)
    info = probe(make_video(tmp_path / "v.mp4", duration=6.0, fps=4, size=(64, 48)).path)
    times = [round(i / rate, 6) for i in range(int(6.0 * rate))]
    windows = [times[0:10], times[8:18], times[16:26], times[24:]]
    frames = WindowFrames(None, info, (64, 48))
    for window in windows:
        got = frames.decode(window)
        want = decode_frames(info, window, size=(64, 48))
        assert [(f.time, f.index) for f in got] == [(f.time, f.index) for f in want]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(got, want, strict=True))
    assert frames.decoded == WindowFrames.distinct(windows) == len(times)
