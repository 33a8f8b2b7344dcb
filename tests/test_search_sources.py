"""Library search (issue 27): on-screen text and speech in the index. Videos with text burned in
with real fonts (PIL: DejaVu Sans, Noto Sans CJK) and espeak-ng speech are indexed with real
PP-OCR (rapidocr) on a real SQLite file and a real PostgreSQL server; a phrase shown on screen
finds the right video and moment (to the frame) first, Chinese too; a source asked for later
is added alone; speech is the transcript of the configured model (a tiny random Whisper run by
faster-whisper, and a stand-in for the recogniser's words where their text matters)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from perception_media import PerceptionVideo, TextEvent, make_perception_video, shared_video
from pg_server import PostgresServer
from tiny_whisper import make_tiny_whisper

from vidground.config import Settings
from vidground.errors import OptionsError
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.perception import speech
from vidground.search.engines import open_store
from vidground.search.index import index_paths
from vidground.search.query import search
from vidground.search.sources import group_lines, parse_sources
from vidground.search.store import SearchStore
from vidground.timecode import Span

os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")
OPTIONS = LocateOptions(frame_sampling_rate=2.0)
OTHER_TEXTS = (TextEvent("PAYMENT RECEIVED", 20, 60, px=34, xy=(30, 40)),
               TextEvent("WELCOME BACK", 80, 120, px=30, xy=(40, 150)))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PerceptionVideo]:
    """``alerts.mp4``: PAYMENT FAILED, 支付失败, order shipped and two spoken sentences;
    ``other.mp4``: PAYMENT RECEIVED, WELCOME BACK, no sound."""
    folder = tmp_path_factory.mktemp("made")
    shared = shared_video()
    alerts = folder / "alerts.mp4"
    shutil.copy2(shared.path, alerts)
    other = make_perception_video(folder / "other.mp4", frames=150, texts=OTHER_TEXTS,
                                  transitions=(), speech=())
    return {"alerts": PerceptionVideo(alerts, shared.fps, shared.frames, shared.size,
                                      shared.texts, shared.transitions, shared.speech),
            "other": other}


@pytest.fixture()
def library(videos: dict[str, PerceptionVideo], tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    for video in videos.values():
        shutil.copy2(video.path, folder / video.path.name)
    return folder


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events={"red square": (255, 0, 0)}) as fake:  # no squares here
        yield fake


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchStore]:
    where = (str(tmp_path / "search.sqlite3") if request.param == "sqlite"
             else request.getfixturevalue("pg").new_database("sources"))
    with open_store(where, embedder=None) as opened:
        yield opened


def grounder_for(server: FakeOpenAIServer) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                      openai_model=server.model, openai_max_retries=0))


def at(library: Path, name: str) -> str:
    return os.path.realpath(library / name)


def frames(video: PerceptionVideo, event: TextEvent) -> tuple[float, float]:
    """``[first frame showing it, first frame after it)`` in seconds."""
    return video.frame_time(event.first), video.frame_time(event.last + 1)


def test_on_screen_text_is_found_at_its_moment(store: SearchStore, library: Path,
                                               videos: dict[str, PerceptionVideo],
                                               server: FakeOpenAIServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)
    report = index_paths([library], store=store, grounder=grounder_for(server),
                         options=OPTIONS, sources="events,text")
    assert sorted(report.indexed) == [at(library, "alerts.mp4"), at(library, "other.mp4")]
    assert not report.failed and not report.warnings, report.to_dict()
    alerts, other = videos["alerts"], videos["other"]
    frame = 1 / alerts.fps + 1e-6
    for query, video, event in (("payment failed", alerts, alerts.texts[0]),
                                ("PAYMENT FAILED?", alerts, alerts.texts[0]),
                                ("支付失败", alerts, alerts.texts[1]),
                                ("when is the order shipped", alerts, alerts.texts[2]),
                                ("payment received", other, OTHER_TEXTS[0]),
                                ("welcome back", other, OTHER_TEXTS[1])):
        hits = search(store, query, top=5)
        first = hits[0]
        assert first.video == at(library, video.path.name), (query, hits)
        assert first.source == "text" and event.text.lower() in first.text.lower(), first
        start, end = frames(video, event)
        assert first.start == pytest.approx(start, abs=frame), (query, first)
        assert first.end == pytest.approx(end, abs=frame), (query, first)
        assert first.to_dict()["why"] == {"text": first.text, "source": "text"}
    # a word both videos show finds both lines
    assert sorted(h.video for h in search(store, "payment", top=5) if h.source == "text") == \
        [at(library, "alerts.mp4"), at(library, "other.mp4")]
    # one row per line on screen (followed through the frames), not one per frame
    texts = [s for s in store.segments(at(library, "alerts.mp4")) if s.kind == "text"]
    assert [s.text for s in texts] == [e.text for e in alerts.texts]
    assert store.video(at(library, "alerts.mp4")).sources == ("event", "text")  # type: ignore[union-attr]


def test_a_source_asked_later_is_added_alone(store: SearchStore, library: Path,
                                             server: FakeOpenAIServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)
    grounder = grounder_for(server)
    first = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                        sources="events")
    assert len(first.indexed) == 2 and search(store, "welcome back", top=1) == []
    calls = server.chat_count
    facts = {p: store.segments(p)[0] for p in first.indexed}
    second = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                         sources="events,text")
    assert sorted(second.indexed) == sorted(first.indexed) and not second.skipped
    assert server.chat_count == calls  # describe was not asked again
    assert {p: store.segments(p)[0] for p in first.indexed} == facts  # the rest kept
    assert search(store, "welcome back", top=1)[0].video == at(library, "other.mp4")
    third = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                        sources="events,text")
    assert len(third.skipped) == 2 and not third.indexed
    # asking for less never drops what is stored
    fourth = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                         sources="events")
    assert len(fourth.skipped) == 2
    assert search(store, "welcome back", top=1)[0].source == "text"


def test_speech_is_the_configured_models_transcript(
        store: SearchStore, library: Path, server: FakeOpenAIServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)
    grounder = grounder_for(server)
    # no speech model: nothing to store (speech spans have no words), said once
    none = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                       sources="speech")
    assert [w for w in none.warnings if "VIDGROUND_SPEECH_MODEL" in w] == none.warnings
    assert len(none.warnings) == 1
    assert not [s for p in none.indexed for s in store.segments(p) if s.kind == "speech"]
    # a tiny random Whisper (faster-whisper's real path; its words are noise): what the
    # index stores is the transcript, segment for segment
    whisper = make_tiny_whisper(tmp_path / "whisper")
    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, str(whisper))
    added = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                        sources="speech")
    alerts = at(library, "alerts.mp4")
    assert sorted(added.indexed) == [alerts, at(library, "other.mp4")], added.to_dict()
    transcript = speech.transcribe(alerts, str(whisper))
    stored = [(s.start, s.end, s.text) for s in store.segments(alerts) if s.kind == "speech"]
    assert stored == [(s.start, s.end, s.label.strip()) for s in transcript.spans
                      if s.label and s.label.strip()]
    assert not [s for s in store.segments(at(library, "other.mp4")) if s.kind == "speech"]
    assert "speech" in store.video(alerts).sources  # type: ignore[union-attr]


def test_spoken_words_are_searchable(store: SearchStore, library: Path,
                                     videos: dict[str, PerceptionVideo],
                                     server: FakeOpenAIServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The recogniser's words stood in for (the tiny model's are noise): the sentences the
    video really says, at the times espeak-ng's voice was measured."""
    said = videos["alerts"].speech

    def recognised(video: object, model: str, **_: object) -> speech.SpeechResult:
        return speech.SpeechResult([Span(e.start, e.end, label=e.text) for e in said],
                                   model=model, language="en")

    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, "stand-in")
    monkeypatch.setattr(speech, "transcribe", recognised)
    index_paths([library], store=store, grounder=grounder_for(server), options=OPTIONS,
                sources="speech")
    [first] = search(store, "please try again", top=1)
    assert first.video == at(library, "alerts.mp4") and first.source == "speech"
    assert (first.start, first.end) == (pytest.approx(said[1].start), pytest.approx(said[1].end))
    assert first.to_dict()["why"] == {"text": said[1].text, "source": "speech"}


def test_sources_option() -> None:
    assert parse_sources("events,text") == ("event", "text")
    assert parse_sources(" shots , Speech,events ") == ("event", "speech", "shot")
    assert parse_sources(["text", "text"]) == ("text",)
    with pytest.raises(OptionsError) as info:
        parse_sources("events,faces")
    assert "faces" in info.value.message and "events, text, speech, shots" in info.value.message
    assert parse_sources(None)[0] == "event" and "text" in parse_sources(None)  # OCR installed
    assert "shot" not in parse_sources(None)


def test_lines_on_screen_together_are_one_segment() -> None:
    spans = [Span(2.0, 4.0, label="Quarterly results"), Span(2.04, 3.96, label="Revenue up 4%"),
             Span(2.0, 4.0, label="Quarterly results"), Span(9.0, 10.0, label="Thank you")]
    assert group_lines(spans, 1.0) == [(2.0, 4.0, "Quarterly results | Revenue up 4%"),
                                       (9.0, 10.0, "Thank you")]


def _downgrade(where: str) -> None:
    """Make the index look like one written before sources and vectors were recorded."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            conn.execute("ALTER TABLE vg_search_videos DROP COLUMN sources")
            conn.execute("DROP TABLE vg_search_vectors, vg_search_meta")
        return
    import sqlite3

    conn = sqlite3.connect(where, isolation_level=None)
    try:
        conn.execute("ALTER TABLE videos DROP COLUMN sources")
        conn.execute("DROP TABLE segment_vectors")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'version'")
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_index_made_before_sources_is_upgraded(engine: str, library: Path, tmp_path: Path,
                                                  server: FakeOpenAIServer,
                                                  request: pytest.FixtureRequest) -> None:
    where = (str(tmp_path / "old.sqlite3") if engine == "sqlite"
             else request.getfixturevalue("pg").new_database("old"))
    grounder = grounder_for(server)
    with open_store(where, embedder=None) as store:
        index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                    sources="events")
    _downgrade(where)
    with open_store(where, embedder=None) as store:
        alerts = at(library, "alerts.mp4")
        assert store.video(alerts).sources == ("event",)  # type: ignore[union-attr]
        assert store.counts()["videos"] == 2 and store.counts()["vectors"] == 0
        report = index_paths([library], store=store, grounder=grounder, options=OPTIONS,
                             sources="events,text")
        assert len(report.indexed) == 2
        assert search(store, "支付失败", top=1)[0].video == alerts
