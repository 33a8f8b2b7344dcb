"""``describe``: the model's list of events (dense captioning) through the fake model server
returns the known events of a test video (a red square, then a blue one), merged across
windows, refined to the exact frames, exportable; the list parser reads the forms models
write; ``vidground describe`` as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
import webvtt
from fake_openai_server import FakeOpenAIServer
from media import draw_frame

from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.outputs.describe import describe, merge_events, parse_events
from vidground.outputs.exports import export
from vidground.outputs.results import Result
from vidground.timecode import Span, parse_timecode

RED, BLUE = (255, 0, 0), (0, 0, 255)
EVENTS = {"red square": RED, "blue square": BLUE}
RED_AT, BLUE_AT = (1.0, 2.0), (2.5, 3.5)


def make_two_events(path: Path, fps: int = 10, seconds: float = 5.0) -> Path:
    """A red square during RED_AT, a blue one during BLUE_AT (painted frame numbers)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={
            "preset": "ultrafast", "x264-params": "bframes=0"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(int(seconds * fps)):
            t = i / fps
            color = RED if RED_AT[0] <= t < RED_AT[1] else BLUE if BLUE_AT[0] <= t < BLUE_AT[1] \
                else None
            frame = av.VideoFrame.from_ndarray(
                draw_frame((160, 120), i, color is not None, color or RED), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def events_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events=EVENTS) as server:
        yield server


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_two_events(tmp_path_factory.mktemp("describe") / "two.mp4")


def grounder(server: FakeOpenAIServer) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                      openai_model=server.model, openai_max_retries=0))


def test_describe_returns_the_known_events_refined(events_server: FakeOpenAIServer,
                                                   video: Path) -> None:
    events_server.reset_stats()
    result = describe(grounder(events_server), video, LocateOptions(frame_sampling_rate=2.0))
    assert [(e.start, e.end, e.label) for e in result.events] == [
        (pytest.approx(1.0), pytest.approx(2.0), "the red square is visible"),
        (pytest.approx(2.5), pytest.approx(3.5), "the blue square is visible")]
    first = events_server.requests[0]
    assert any("List the events" in p for p in first.parts)
    assert result.timings["refine_calls"] > 0 and result.timings["windows"] == 1
    counts = ("frames", "windows", "model_calls", "refine_calls")  # counts, not floats
    assert all(type(result.timings[k]) is int for k in counts), result.timings
    body = result.to_response()
    assert body["kind"] == "describe" and len(body["segments"]) == 2
    assert body["segments"][1]["label"] == "the blue square is visible"


def test_describe_merges_windows(events_server: FakeOpenAIServer, video: Path) -> None:
    # 10 frames at 2 fps, 4 per window: the events straddle window borders
    result = describe(grounder(events_server), video,
                      LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=4,
                                    refine=False))
    assert result.timings["windows"] >= 3
    assert [e.label for e in result.events] == ["the red square is visible",
                                                "the blue square is visible"]
    red, blue = result.events
    assert RED_AT[0] <= red.start < red.end <= RED_AT[1]
    assert BLUE_AT[0] <= blue.start < blue.end <= BLUE_AT[1]


def test_a_description_exports_as_chapters_and_subtitles(events_server: FakeOpenAIServer,
                                                         video: Path) -> None:
    result = describe(grounder(events_server), video, LocateOptions(frame_sampling_rate=2.0))
    chapters = webvtt.from_string(export(result.to_result(), "chapters")).captions
    assert [(parse_timecode(c.start), parse_timecode(c.end), c.text) for c in chapters] == [
        (1.0, 2.0, "the red square is visible"), (2.5, 3.5, "the blue square is visible")]
    # what `describe --json` prints reads back as a result too
    [again] = [Result.from_response(result.to_response())]
    assert [s.label for s in again.spans] == [e.label for e in result.events]


def test_parse_events_reads_the_forms_models_write() -> None:
    text = """Here is what happens:
1. 0.0 - 1.0 seconds: the screen is empty
2) [1.0s - 2.5s] a red square appears
- 00:03.0 - 00:04.0: a blue square is visible
A green light blinks (5.0 - 6.0 seconds)
from 7 to 8 seconds, the door closes
3、0.5 - 1.5 秒：一个人打开门
**9.0 - 9.5 seconds**: fade out
That is all (there are 3 people)."""
    got = [(e.start, e.end, e.label) for e in parse_events(text, duration=10)]
    assert got == [(0.0, 1.0, "the screen is empty"), (0.5, 1.5, "一个人打开门"),
                   (1.0, 2.5, "a red square appears"), (3.0, 4.0, "a blue square is visible"),
                   (5.0, 6.0, "A green light blinks"), (7.0, 8.0, "the door closes"),
                   (9.0, 9.5, "fade out")]
    cookbook = ('```json\n[{"start_time": "00:01.5", "end_time": "00:03.0", "description": '
                '"a dog runs"}, {"timestamp": [4, 6], "caption": "it sits"}]\n```')
    assert parse_events(cookbook) == [Span(1.5, 3.0, "a dog runs"), Span(4.0, 6.0, "it sits")]
    assert parse_events("Answer: NOT FOUND") == []
    assert parse_events("12 - 30 seconds: past the end", duration=10) == []


def test_parse_events_reads_json_times_with_units() -> None:
    # issue 22 item 1: "12.5 seconds" in a JSON field parsed to nothing (its "s" was cut out)
    text = ('[{"start": "12.5 seconds", "end": "18 seconds", "description": "a man opens the '
            'door"}, {"start_time": "20s", "end_time": "21.5 secs", "caption": "he sits"}, '
            '{"start": "00:22.0", "end": "23秒", "event": "他站起来"}]')
    assert parse_events(text, duration=60) == [Span(12.5, 18.0, "a man opens the door"),
                                               Span(20.0, 21.5, "he sits"),
                                               Span(22.0, 23.0, "他站起来")]
    assert parse_events('[{"start": "soon", "end": "later", "description": "a dog runs"}]') == []


def test_merge_events_joins_one_event_seen_twice_not_two_events() -> None:
    merged = merge_events([Span(1.0, 2.0, "the man opens the door"),
                           Span(1.8, 3.0, "A man opens a door."),
                           Span(1.0, 3.0, "a dog barks"),
                           Span(9.0, 10.0, "the man opens the door")], gap=0.5)
    assert merged == [Span(1.0, 3.0, "the man opens the door"), Span(1.0, 3.0, "a dog barks"),
                      Span(9.0, 10.0, "the man opens the door")]


def test_cli_describe_prints_events_and_exports(events_server: FakeOpenAIServer, video: Path,
                                                tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vidground", "describe", str(video), "--fps", "2", "--json",
         "--backend", "openai", "--openai-base-url", events_server.base_url, "--export",
         "youtube:yt.txt"], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert [s["label"] for s in body["segments"]] == ["the red square is visible",
                                                      "the blue square is visible"]
    assert (tmp_path / "yt.txt").read_text() == (
        "0:00 Intro\n0:01 the red square is visible\n0:02 the blue square is visible\n")
    assert "shorter than the 10 s YouTube requires" in out.stderr  # a 5 s test video
