"""Exports read back by independent readers (``srt``, ``webvtt-py``, OpenTimelineIO, ``csv``,
``json``): times equal to the spans to the millisecond / frame; the CMX3600 EDL against
hand-written lines, 29.97 drop-frame included; ``vidground export`` as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from vidground.errors import OptionsError
from vidground.outputs.exports import export, export_file, youtube_problems
from vidground.outputs.results import Result, ResultError, load_results, results_from_json
from vidground.timecode import Span, parse_timecode

NTSC = 30000 / 1001


def result(*spans: Span, fps: float = 25.0, query: str | None = "the dog jumps",
           video: str | None = "/media/match.mp4", duration: float = 700.0) -> Result:
    return Result(spans=tuple(spans), fps=fps, duration=duration, query=query, video=video)


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


SPANS = (Span(1.0, 2.5, "jump"), Span(12.345, 13.12), Span(3723.004, 3725.5, "中文 label"))


def test_srt_reads_back_to_the_millisecond() -> None:
    subs = list(srt.parse(export(result(*SPANS), "srt")))
    assert [(ms(s.start.total_seconds()), ms(s.end.total_seconds())) for s in subs] == [
        (1000, 2500), (12345, 13120), (3723004, 3725500)]
    assert [s.content for s in subs] == ["jump", "the dog jumps", "中文 label"]


def test_webvtt_cues_read_back_to_the_millisecond() -> None:
    vtt = webvtt.from_string(export(result(*SPANS), "vtt"))
    times = [(ms(parse_timecode(c.start)), ms(parse_timecode(c.end))) for c in vtt.captions]
    assert times == [(1000, 2500), (12345, 13120), (3723004, 3725500)]
    assert vtt.captions[1].text == "the dog jumps"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20_000, allow_nan=False),
                          st.floats(0, 60, allow_nan=False)), min_size=1, max_size=6))
def test_any_spans_survive_srt_vtt_and_csv(pairs: list[tuple[float, float]]) -> None:
    spans = [Span(a, a + d) for a, d in pairs]
    res = result(*spans, fps=NTSC)
    frame_s = 1 / NTSC
    expected = sorted((ms(s.start), ms(s.end if s.end > s.start else s.start + frame_s))
                      for s in spans)
    got_srt = sorted((ms(s.start.total_seconds()), ms(s.end.total_seconds()))
                     for s in srt.parse(export(res, "srt")))
    got_vtt = sorted((ms(parse_timecode(c.start)), ms(parse_timecode(c.end)))
                     for c in webvtt.from_string(export(res, "vtt")).captions)
    rows = list(csv.DictReader(io.StringIO(export(res, "csv"))))
    got_csv = sorted(x for r in rows for x in (float(r["start"]), float(r["end"])))
    assert got_srt == expected
    assert got_vtt == expected
    assert got_csv == pytest.approx(sorted(x for s in spans for x in (s.start, s.end)),
                                    abs=1e-6)


def test_a_point_in_time_becomes_a_one_frame_cue() -> None:
    sub = next(srt.parse(export(result(Span(5.0, 5.0)), "srt")))
    assert ms(sub.end.total_seconds()) - ms(sub.start.total_seconds()) == 40


def test_cue_text_cannot_break_the_file() -> None:
    nasty = Span(1.0, 2.0, "line one\n\nline two --> three")
    vtt = webvtt.from_string(export(result(nasty, Span(3.0, 4.0)), "vtt"))
    assert len(vtt.captions) == 2
    assert vtt.captions[0].text == "line one\nline two → three"
    assert len(list(srt.parse(export(result(nasty, Span(3.0, 4.0)), "srt")))) == 2


def test_chapters_track_never_overlaps() -> None:
    text = export(result(Span(0.0, 10.0, "intro"), Span(8.0, 20.0, "talk"),
                         Span(30.0, 40.0, "questions")), "chapters")
    vtt = webvtt.from_string(text)
    got = [(parse_timecode(c.start), parse_timecode(c.end), c.text) for c in vtt.captions]
    assert got == [(0.0, 8.0, "intro"), (8.0, 20.0, "talk"), (30.0, 40.0, "questions")]


def test_csv_and_jsonl_hold_seconds_frames_and_labels() -> None:
    res = result(*SPANS)
    rows = list(csv.DictReader(io.StringIO(export(res, "csv"))))
    assert [float(r["start"]) for r in rows] == [1.0, 12.345, 3723.004]
    assert [int(r["start_frame"]) for r in rows] == [25, 308, 93075]
    assert [int(r["end_frame"]) for r in rows] == [63, 328, 93138]
    assert rows[2]["label"] == "中文 label" and rows[1]["label"] == ""
    assert rows[0]["start_text"] == "00:00:01.000"
    lines = [json.loads(line) for line in export(res, "jsonl").splitlines()]
    assert [(r["start"], r["end"], r["label"]) for r in lines] == [
        (s.start, s.end, s.label) for s in SPANS]
    assert lines[0]["query"] == "the dog jumps" and lines[0]["video"] == "/media/match.mp4"


def test_otio_reads_back_frame_exact() -> None:
    res = result(Span(1.0, 2.5, "jump"), Span(60.06, 61.0), fps=NTSC)
    timeline = otio.adapters.read_from_string(export(res, "otio"), "otio_json")
    clips = list(timeline.find_clips())
    assert [c.source_range.start_time.value for c in clips] == [29, 1800]
    assert [c.source_range.duration.value for c in clips] == [46, 29]
    assert clips[0].source_range.start_time.rate == pytest.approx(NTSC)
    assert clips[0].media_reference.target_url == "file:///media/match.mp4"
    assert clips[0].name == "jump" and clips[1].name == "the dog jumps"
    assert clips[1].metadata["vidground"]["start"] == 60.06
    # the clip's first frame shows the span's start; its end is the frame after the span's
    first = clips[1].source_range.start_time.to_seconds()
    end = clips[1].source_range.end_time_exclusive().to_seconds()
    assert first <= 60.06 < first + 1 / NTSC
    assert end - 1 / NTSC < 61.0 <= end + 1e-9


EDL_NTSC = """TITLE: the dog jumps
FCM: DROP FRAME

001  match    V     C        00:01:00;02 00:01:01;01 00:00:00;00 00:00:00;29
* FROM CLIP NAME:  the dog jumps
* FROM CLIP: file:///media/match.mp4
002  match    V     C        00:10:00;00 00:10:00;16 00:00:00;29 00:00:01;15
* FROM CLIP NAME:  goal
* FROM CLIP: file:///media/match.mp4
"""

EDL_PAL = """TITLE: the dog jumps
FCM: NON-DROP FRAME

001  match    V     C        00:00:01:00 00:00:02:13 00:00:00:00 00:00:01:13
* FROM CLIP NAME:  jump
* FROM CLIP: file:///media/match.mp4
002  match    V     C        01:02:03:00 01:02:05:13 00:00:01:13 00:00:04:01
* FROM CLIP NAME:  中文 label
* FROM CLIP: file:///media/match.mp4
"""


def test_edl_drop_frame_at_29_97_matches_hand_written_lines() -> None:
    # 60.06 s is frame 1800: 00:01:00;02 in drop-frame (;00 and ;01 are skipped at minute 1);
    # 600 s is frame 17982: 00:10:00;00 (every tenth minute keeps its labels)
    res = result(Span(60.06, 61.0), Span(600.0, 600.5, "goal"), fps=NTSC)
    assert export(res, "edl") == EDL_NTSC


def test_edl_at_25_fps_matches_hand_written_lines() -> None:
    res = result(Span(1.0, 2.5, "jump"), Span(3723.0, 3725.5, "中文 label"), fps=25.0)
    assert export(res, "edl") == EDL_PAL


def test_edl_refuses_mixed_frame_rates() -> None:
    with pytest.raises(OptionsError, match="one frame rate"):
        export([result(Span(1, 2)), result(Span(1, 2), fps=NTSC)], "edl")


def test_youtube_chapters() -> None:
    res = result(Span(15.2, 40.0, "kick-off"), Span(75.9, 200.0, "first goal"),
                 Span(75.95, 90.0, "same second"), Span(3600.0, 3700.0, "extra time"),
                 duration=3800.0)
    text = export(res, "youtube")
    assert text == ("0:00:00 Intro\n0:00:15 kick-off\n0:01:15 first goal\n"
                    "1:00:00 extra time\n")
    assert youtube_problems(text) == []
    short = export(result(Span(0.0, 5.0, "a"), Span(5.0, 8.0, "b"), duration=60.0), "youtube")
    assert short == "0:00 a\n0:05 b\n"
    assert len(youtube_problems(short)) == 2


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(OptionsError, match="use one of srt, vtt"):
        export(result(Span(1, 2)), "docx")


def test_results_from_responses_jobs_and_lists(tmp_path: Path) -> None:
    response = {"segments": [{"start": 2.0, "end": 3.0, "label": None},
                             {"start": 1.0, "end": 1.5, "label": "x", "score": 0.9}],
                "video": {"duration": 10.0, "fps": 25.0}, "model": "m", "response": "ok"}
    job = {"job_id": "a" * 24, "status": "succeeded", "result": response,
           "request": {"query": "q?", "video_path": "clips/a.mp4"}}
    failed = {"job_id": "b" * 24, "status": "failed", "result": None, "request": {}}
    [one] = results_from_json(response)
    assert [s.start for s in one.spans] == [1.0, 2.0] and one.spans[0].score == 0.9
    [from_job] = results_from_json(job)
    assert (from_job.query, from_job.video, from_job.fps) == ("q?", "clips/a.mp4", 25.0)
    assert len(results_from_json({"jobs": [job, failed, job]})) == 2
    with pytest.raises(ResultError, match="only a job that succeeded"):
        results_from_json(failed)
    lines = tmp_path / "r.jsonl"
    lines.write_text(json.dumps(job) + "\n\n" + json.dumps(response) + "\n")
    assert len(load_results(lines)) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"segments": [{"start": "soon", "end": 2}]}')
    with pytest.raises(ResultError, match="'start' must be a finite number"):
        load_results(bad)
    with pytest.raises(ResultError, match="no result file"):
        load_results(tmp_path / "missing.json")


def test_export_file_writes_utf8(tmp_path: Path) -> None:
    out = export_file(result(*SPANS), "srt", tmp_path / "sub" / "a.srt")
    assert "中文 label" in out.read_text(encoding="utf-8")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_cli_export_writes_each_format(tmp_path: Path) -> None:
    response = {"segments": [{"start": 1.0, "end": 2.5, "label": None}],
                "video": {"duration": 10.0, "fps": 25.0}}
    (tmp_path / "result.json").write_text(json.dumps(response))
    out = run_cli("export", "result.json", "--to", "srt", "--to", "edl:cuts.edl", "--to",
                  "vtt:-", "--query", "the dog jumps", "--video", "/media/match.mp4",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert next(srt.parse((tmp_path / "result.srt").read_text())).content == "the dog jumps"
    assert "00:00:01:00 00:00:02:13" in (tmp_path / "cuts.edl").read_text()
    assert webvtt.from_string(out.stdout).captions[0].start == "00:00:01.000"
    bad = run_cli("export", "result.json", "--to", "docx", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown export format 'docx'" in bad.stderr
    assert "Traceback" not in bad.stderr
