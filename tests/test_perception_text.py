"""On-screen text to the frame (issue 24): PP-OCR (rapidocr, bundled weights) over a video with
English, Chinese, large and small text rendered with real fonts on known frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from perception_media import PerceptionVideo, TextEvent, shared_video
from typer.testing import CliRunner

from vidground.perception import quoted, text
from vidground.perception.cli import perception_app
from vidground.video.probe import probe

# the suite shares two cores with other work: one thread per model is faster there than
# two threads spinning against each other (and keeps the timings steady)
os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")


@pytest.fixture(scope="module")
def video() -> PerceptionVideo:
    return shared_video()


def _frames(video: PerceptionVideo, seconds: float) -> float:
    return seconds * video.fps


def _check_exact(video: PerceptionVideo, event: TextEvent, start: float, end: float) -> None:
    """Start at the first frame showing the text, end at the first frame without it."""
    assert abs(_frames(video, start) - event.first) < 0.5, (event.text, start)
    assert abs(_frames(video, end) - (event.last + 1)) < 0.5, (event.text, end)


@pytest.mark.parametrize("which", [0, 1, 2], ids=["english-large", "chinese", "english-small"])
def test_phrase_found_to_the_frame(video: PerceptionVideo, which: int) -> None:
    event = video.texts[which]
    found = text.find_text(video.path, event.text)
    assert len(found.spans) == 1, found.spans
    span = found.spans[0]
    _check_exact(video, event, span.start, span.end)
    assert span.label is not None and text.normalize(span.label) == text.normalize(event.text)
    assert span.score is not None and 0.8 <= span.score <= 1.0
    # the boundary search reads regions, not whole frames, and only a handful of them
    assert found.region_reads <= 16 and found.frame_reads == 0


def test_fuzzy_and_absent(video: PerceptionVideo) -> None:
    spans = text.find_text(video.path, "Payment Failéd").spans
    assert len(spans) == 1
    _check_exact(video, video.texts[0], spans[0].start, spans[0].end)
    assert text.find_text(video.path, "REFUND APPROVED").spans == []
    assert text.find_text(video.path, "支付成功").spans == []


def test_scan_is_cached_by_file_identity(video: PerceptionVideo, tmp_path) -> None:
    text.find_text(video.path, "PAYMENT FAILED")
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(video.path.read_bytes())
    os.utime(copy, ns=(video.path.stat().st_atime_ns, video.path.stat().st_mtime_ns))
    started = time.monotonic()
    found = text.find_text(copy, "order shipped")
    assert found.cached_scan
    assert len(found.spans) == 1
    assert time.monotonic() - started < 20  # region reads only; the full scan takes longer


def test_all_text(video: PerceptionVideo) -> None:
    found = text.all_text(video.path)
    labels = [s.label for s in found.spans]
    assert labels == [e.text for e in video.texts], labels
    for span, event in zip(found.spans, video.texts, strict=True):
        _check_exact(video, event, span.start, span.end)


@pytest.mark.parametrize(("question", "which"), [
    ('When does "PAYMENT FAILED" appear on screen?', 0),
    ("“支付失败”什么时候出现？", 1),
])
def test_answer_quoted(video: PerceptionVideo, question: str, which: int) -> None:
    answer = quoted.answer_quoted(probe(video.path), question)
    assert answer is not None and answer.detector == "ocr" and answer.found
    _check_exact(video, video.texts[which], answer.spans[0].start, answer.spans[0].end)
    body = answer.to_dict()
    assert body["segments"][0]["start"] == pytest.approx(video.texts[which].first / video.fps)
    assert quoted.answer_quoted(video.path, "when does the dog jump") is None


def test_command_json(video: PerceptionVideo, tmp_path) -> None:
    result = CliRunner().invoke(perception_app, ["text", str(video.path), "支付失败", "--json",
                                                 "--export", f"csv:{tmp_path / 'zh.csv'}"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["detector"] == "ocr" and body["query"] == "支付失败"
    (seg,) = body["segments"]
    assert seg["label"] == "支付失败"
    assert abs(seg["start"] * video.fps - video.texts[1].first) < 0.5
    assert "支付失败" in (tmp_path / "zh.csv").read_text(encoding="utf-8")


def test_command_errors(video: PerceptionVideo, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(perception_app, ["text", str(video.path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "invalid_query"
    result = runner.invoke(perception_app, ["text", str(tmp_path / "none.mp4"), "x", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "video_not_found"
    result = runner.invoke(perception_app, ["text", str(video.path), "x", "--step", "0"])
    assert result.exit_code == 2 and "step" in result.output


def test_real_command_line(video: PerceptionVideo) -> None:
    """The command as a user runs it, in its own process (``python -m vidground text``)."""
    proc = subprocess.run([sys.executable, "-m", "vidground", "text", str(video.path),
                           "PAYMENT FAILED"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    first = video.texts[0].first / video.fps
    assert proc.stdout.startswith(f"00:00:0{first:.3f}"), proc.stdout
    assert "PAYMENT FAILED" in proc.stdout


def test_still_pictures_are_read_once(tmp_path) -> None:
    """A screen recording: samples whose picture did not change are not read again, and the
    boundaries are still exact (small text appearing on a still picture counts as a change)."""
    from perception_media import make_perception_video

    events = (TextEvent("Card declined", 12, 33, px=16, xy=(40, 200)),)
    still = make_perception_video(tmp_path / "still.mp4", frames=75, texts=events,
                                  transitions=(), speech=(), static=True)
    found = text.find_text(still.path, "card declined")
    assert len(found.spans) == 1
    _check_exact(still, events[0], found.spans[0].start, found.spans[0].end)
    # 7 samples (0, 0.5 ... 2.5 s and the last frame); the picture changes at 0.48 s (text on)
    # and 1.36 s (text off): only the first sample after each change is read again
    assert found.samples == 7 and found.sample_reads == 3, found.to_dict()


def test_region_read_does_not_change_whole_reads(video: PerceptionVideo) -> None:
    """RapidOCR stores each call's use_det on the engine: a whole-frame read after a region
    read must still detect (it once came back as a recognition-only result)."""
    from vidground.perception.ocr import read_lines, read_region
    from vidground.video.decode import decode_frames

    event = video.texts[0]
    (frame,) = decode_frames(video.path, [(event.first + 5) / video.fps])
    first = read_lines(frame.image)
    assert any(text.normalize(ln.text) == "paymentfailed" for ln in first)
    assert read_region(frame.image, first[0].box).text
    assert read_lines(frame.image) == first


def test_quoted_answer_sentence() -> None:
    from vidground.timecode import Span

    answer = quoted.QuotedAnswer((Span(0.68, 2.36, label="PAYMENT FAILED"),),
                                 ("PAYMENT FAILED",))
    assert answer.sentence() == ('"PAYMENT FAILED" is on screen from 00:00:00.680 to '
                                 '00:00:02.360.')
    assert answer.answers(fps=25.0)["frames"] == '"PAYMENT FAILED" is on screen from 17 to 59.'
    assert quoted.QuotedAnswer((), ("支付失败",)).sentence() == '"支付失败" is not on screen.'


def test_locate_answers_a_quoted_phrase_with_no_model(video: PerceptionVideo) -> None:
    """The README's first command on a fresh CPU machine, with no weights and no model server:
    a question that quotes on-screen text is answered by OCR, to the frame, saying so; a
    question that quotes nothing still explains how to get a model (issue 24)."""
    proc = subprocess.run(
        [sys.executable, "-m", "vidground", "locate", str(video.path),
         'When does "PAYMENT FAILED" appear on screen?', "--json", "--backend", "openai",
         "--openai-base-url", "http://127.0.0.1:9/v1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["model"].startswith("rapidocr")
    first = body["segments"][0]
    _check_exact(video, video.texts[0], first["start"], first["end"])
    assert body["timings"]["model_calls"] == 0
    unquoted = subprocess.run(
        [sys.executable, "-m", "vidground", "locate", str(video.path), "When does it fail?",
         "--json", "--backend", "openai", "--openai-base-url", "http://127.0.0.1:9/v1"],
        capture_output=True, text=True, timeout=300)
    assert unquoted.returncode == 2
    assert json.loads(unquoted.stdout)["error"]["code"] in ("backend_error",
                                                             "model_not_available")
