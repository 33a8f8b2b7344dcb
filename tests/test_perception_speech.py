"""Speech (issue 24): Silero VAD spans (bundled weights) against espeak-ng speech muxed as AAC
at known times; a transcript with word times through faster-whisper with a tiny random Whisper
converted offline by CTranslate2's converter (its words are garbage: structure and times are
checked, not text)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from perception_media import PerceptionVideo, make_perception_video, shared_video
from tiny_whisper import make_tiny_whisper
from typer.testing import CliRunner

from vidground.perception import speech
from vidground.perception.cli import perception_app

# the suite shares two cores with other work: one thread per model is faster there than
# two threads spinning against each other (and keeps the timings steady)
os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")

#: Goal of issue 24: speech spans within 200 ms of the truth.
TOLERANCE_S = 0.2


@pytest.fixture(scope="module")
def video() -> PerceptionVideo:
    return shared_video()


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper"))


def test_speech_spans_within_200ms(video: PerceptionVideo) -> None:
    found = speech.speech_spans(video.path)
    assert len(found.spans) == len(video.speech), found.spans
    for span, truth in zip(found.spans, video.speech, strict=True):
        assert abs(span.start - truth.start) <= TOLERANCE_S, (span, truth)
        assert abs(span.end - truth.end) <= TOLERANCE_S, (span, truth)
        assert span.label == "speech"


def test_audio_is_on_the_video_clock(video: PerceptionVideo) -> None:
    from vidground.video.probe import probe

    info = probe(video.path)
    audio = speech.load_audio(info)
    assert abs(len(audio) / speech.RATE - info.duration) < 0.1
    truth = video.speech[0]
    loud = abs(audio[int(truth.start * speech.RATE): int(truth.end * speech.RATE)]).mean()
    quiet = abs(audio[: int(max(0.0, truth.start - 0.3) * speech.RATE)]).mean()
    assert loud > 20 * max(quiet, 1e-6)


def test_silent_video_and_no_audio(tmp_path: Path) -> None:
    silent = make_perception_video(tmp_path / "silent.mp4", frames=50, texts=(),
                                   transitions=(), speech=(("", 0.0),))
    assert speech.speech_spans(silent.path).spans == []
    mute = make_perception_video(tmp_path / "mute.mp4", frames=25, texts=(), transitions=(),
                                 speech=())
    result = CliRunner().invoke(perception_app, ["speech", str(mute.path), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_video" and "no audio" in error["message"]


def test_command_subtitles(video: PerceptionVideo, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)
    srt = tmp_path / "speech.srt"
    result = CliRunner().invoke(perception_app, ["speech", str(video.path), "--json",
                                                 "--export", f"srt:{srt}"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["model"] == "silero-vad" and len(body["segments"]) == len(video.speech)
    assert srt.read_text().count("-->") == len(video.speech)
    bad = CliRunner().invoke(perception_app, ["speech", str(video.path), "--export", "edl"])
    assert bad.exit_code == 2


def test_transcript_with_word_times(video: PerceptionVideo, tiny_whisper: Path) -> None:
    found = speech.transcribe(video.path, str(tiny_whisper), language="en",
                              max_new_tokens=24)
    assert found.model == tiny_whisper.name and found.language == "en"
    assert found.spans, "the decoder ran and produced segments"
    assert len(found.words) == len(found.spans)
    starts = [s.start for s in found.spans]
    assert starts == sorted(starts)
    for span, words in zip(found.spans, found.words, strict=True):
        assert 0.0 <= span.start <= span.end <= video.duration + 1e-6
        for word in words:
            assert 0.0 <= word.start <= word.end <= video.duration + 1e-6
            assert 0.0 <= word.probability <= 1.0
    body = found.to_dict()
    assert set(body["segments"][0]) >= {"start", "end", "label", "words"}


def test_command_uses_the_configured_model(video: PerceptionVideo, tiny_whisper: Path,
                                           tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, str(tiny_whisper))
    vtt = tmp_path / "speech.vtt"
    result = CliRunner().invoke(perception_app, ["speech", str(video.path), "--json",
                                                 "--language", "en", "--export", f"vtt:{vtt}"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["model"] == tiny_whisper.name
    assert all("words" in seg for seg in body["segments"])
    assert vtt.read_text().startswith("WEBVTT")
    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, str(tmp_path / "no-such-model"))
    missing = CliRunner().invoke(perception_app, ["speech", str(video.path), "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["code"] == "model_not_available"


def test_spoken_spans_from_word_times() -> None:
    w = speech.Word
    words = [w(0.5, 0.8, " Hello", 0.9), w(0.9, 1.3, " payment", 0.9),
             w(1.3, 1.7, " failed,", 0.8), w(1.8, 2.0, " please", 0.9),
             w(3.0, 3.2, " Payment", 0.9), w(3.2, 3.6, " faild", 0.4)]
    spans = speech.spoken_spans("payment failed", words)
    assert [(s.start, s.end) for s in spans] == [(0.9, 1.7), (3.0, 3.6)]
    assert speech.spoken_spans("refund", words) == []
    assert speech.spoken_spans("", words) == []


def test_quoted_question_about_speech(video: PerceptionVideo, tiny_whisper: Path,
                                      monkeypatch) -> None:
    from vidground.perception import quoted

    question = 'When does someone say "payment failed"?'
    assert quoted.asks_about_speech(question)
    monkeypatch.delenv(speech.SPEECH_MODEL_ENV, raising=False)
    assert quoted.answer_quoted(video.path, question) is None  # nothing here hears words
    monkeypatch.setenv(speech.SPEECH_MODEL_ENV, str(tiny_whisper))
    answer = quoted.answer_quoted(video.path, question)
    assert answer is not None and answer.detector == "speech"
    assert answer.phrases == ("payment failed",)  # the random model's words never say it
