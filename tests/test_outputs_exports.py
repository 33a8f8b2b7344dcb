"""Exports read back by independent readers (``srt``, ``webvtt-py``, OpenTimelineIO, ``csv``,
``json``): times equal to the spans to the millisecond / frame; the CMX3600 EDL against
hand-written lines, 29.97 drop-frame included; ``vidground export`` as a real subprocess."""

from __future__ import annotations

import csv
import gc
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import opentimelineio as otio
import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from vidground.errors import OptionsError
from vidground.outputs.exports import export, export_file, youtube_problems
from vidground.outputs.results import (
    Result,
    ResultError,
    as_results,
    load_results,
    results_from_json,
)
from vidground.server.statuses import status_for
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


@pytest.mark.parametrize("fps", [1.0, 10.0, 12.0, 15.0, 120.0, 1000.0])
def test_edl_at_a_rate_timecode_lacks_is_an_options_error(fps: float) -> None:
    """A 10 fps screen recording: SMPTE timecode has no such rate (was a ValueError, a 500)."""
    with pytest.raises(OptionsError, match="export OTIO"):
        export(result(Span(1, 2), fps=fps), "edl")
    assert export(result(Span(1, 2), fps=fps), "otio")


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
    with pytest.raises(ResultError, match="segment 1: 'start' must be a finite number"):
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


# -- issue 21 item 2: the EDL in one pass, the same lines as the adapter -------------------

def adapter_edl(res: Result) -> str:
    """What the CMX3600 adapter writes for the same timeline (the code before issue 21)."""
    from vidground.outputs.exports import _edl_title, is_drop_frame, timeline

    text = str(otio.adapters.write_to_string(timeline([res], name=_edl_title([res])),
                                             "cmx_3600", rate=res.fps))
    fcm = "FCM: DROP FRAME" if is_drop_frame(res.fps or 0) else "FCM: NON-DROP FRAME"
    head, _, body = text.partition("\n\n")
    return f"{head}\n{fcm}\n\n{body}"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 40_000, allow_nan=False),
                          st.floats(0, 30, allow_nan=False),
                          st.sampled_from([None, "goal", "a  b\tc", "中文"])),
                min_size=1, max_size=12),
       st.sampled_from([NTSC, 25.0, 24.0, 60000 / 1001, 50.0, 23.976]),
       st.sampled_from(["/media/match.mp4", "/media/a b/ünï.mov", None, "clip.mp4"]))
def test_edl_is_what_the_cmx3600_adapter_writes(pairs: list[tuple[float, float, str | None]],
                                                fps: float, video: str | None) -> None:
    res = result(*[Span(a, a + d, label) for a, d, label in pairs], fps=fps, video=video,
                 duration=50_000.0)
    assert export(res, "edl") == adapter_edl(res)
    exact = {23.976: 24000 / 1001}.get(fps, fps)  # the reader wants the exact NTSC rate
    read = otio.adapters.read_from_string(export(res, "edl"), "cmx_3600", rate=exact)
    assert len(list(read.find_clips())) == len(pairs)


def best_cpu_seconds(fn, repeat: int = 3) -> float:
    """The least CPU time of ``repeat`` calls (CPU, not wall: other processes on a shared
    machine do not count), with the garbage collector off."""
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.process_time()
            fn()
            times.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(times)


@pytest.mark.parametrize("fmt", ["edl", "otio", "srt", "vtt", "chapters", "csv", "jsonl"])
def test_export_time_grows_linearly(fmt: str) -> None:
    """Four times the spans cost less than eight times the time (the adapter's EDL: 15-30x)."""
    def spans(n: int) -> Result:
        return result(*[Span(i * 2.0, i * 2.0 + 1.0, f"event {i}") for i in range(n)],
                      fps=NTSC, duration=n * 2.0 + 10)
    small, large = spans(1500), spans(6000)
    export(small, fmt)  # imports, caches
    ratio = (best_cpu_seconds(lambda: export(large, fmt))
             / best_cpu_seconds(lambda: export(small, fmt)))
    assert ratio < 8, f"{fmt}: 4x the spans took {ratio:.1f}x the time"


def test_caps_refuse_before_writing() -> None:
    from vidground.outputs.exports import (
        MAX_EXPORT_BYTES,
        MAX_EXPORT_SEGMENTS,
        ExportTooLargeError,
    )

    many = result(*[Span(i, i + 0.5) for i in range(MAX_EXPORT_SEGMENTS + 1)])
    with pytest.raises(ExportTooLargeError, match="10,000"):
        export(many, "srt")
    with pytest.raises(ExportTooLargeError):  # the cap counts every result together
        export([result(*many.spans[:6000]), result(*many.spans[6000:])], "csv")
    wordy = result(*[Span(i, i + 0.5, "l" * 2000) for i in range(MAX_EXPORT_SEGMENTS)],
                   query="q" * 4000)
    started = time.perf_counter()
    with pytest.raises(ExportTooLargeError, match="MiB"):
        export(wordy, "otio")
    assert time.perf_counter() - started < 5  # estimated, not built
    assert status_for(ExportTooLargeError) == 413 and MAX_EXPORT_BYTES == 64 * 2**20


@pytest.mark.parametrize("fmt", ["srt", "vtt", "chapters", "csv", "jsonl", "edl", "otio",
                                 "youtube"])
def test_what_no_format_can_hold_is_a_result_error(fmt: str) -> None:
    for bad in (result(Span(1.0, 2.0, "a\ud800")), result(Span(1.0, 2.0), query="\udfff"),
                result(Span(1e15, 1e15 + 1)), result(Span(1.0, 2.0), video="\udc80.mp4")):
        with pytest.raises(ResultError):
            export(bad, fmt)
    for body in ({"segments": [{"start": 10**400, "end": 1}]},
                 {"segments": [{"start": 1, "end": 10**5000}]},  # past str()'s 4,300 digits
                 {"segments": [{"start": 1, "end": 2, "score": -(10**400)}]},
                 {"segments": [{"start": 1, "end": 2}], "video": {"fps": 10**400}},
                 {"segments": [{"start": 1, "end": 2}], "video": {"duration": 1e300}},
                 {"segments": [{"start": 1, "end": 2, "label": "\ud800"}]}):
        with pytest.raises(ResultError):
            results_from_json(body)


# -- issue 21 item 9: escaping -------------------------------------------------------------

def test_csv_defuses_formulas_but_keeps_numbers() -> None:
    from vidground.outputs.exports import csv_cell

    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@A1", "\t=1", "\r=1", "plain", "")] == [
        "'=1+1", "'+1", "'-1", "'@A1", "'\t=1", "'\r=1", "plain", ""]
    assert [csv_cell(v) for v in (-0.5, -3, 0, None)] == [-0.5, -3, 0, ""]
    res = Result((Span(1.0, 2.0, "-2+3", -0.5),), fps=25.0, query="=HYPERLINK(1)",
                 video="@x.mp4")
    [row] = list(csv.DictReader(io.StringIO(export(res, "csv"))))
    assert (row["label"], row["query"], row["video"], row["score"]) == (
        "'-2+3", "'=HYPERLINK(1)", "'@x.mp4", "-0.5")


def test_edl_and_otio_text_stays_on_one_line() -> None:
    forged = "a.mp4\n002  EVIL V C 00:00:00:00\r* FROM CLIP: /etc/passwd\x00\u2028x"
    res = result(Span(1.0, 2.0, "x\n003  EVIL"), video=forged, query="t\r\nFCM: DROP FRAME")
    text = export(res, "edl")
    lines = text.splitlines()
    assert lines[:3] == ["TITLE: t FCM: DROP FRAME", "FCM: NON-DROP FRAME", ""]
    assert [line[:3] for line in lines if line[:1].isdigit()] == ["001"]
    assert lines[4] == "* FROM CLIP NAME:  x 003 EVIL"
    assert lines[5].startswith("* FROM CLIP: a.mp4%0A002%20%20EVIL") and "\x00" not in text
    assert len(lines) == 6 and "\r" not in text and "\u2028" not in text
    [clip] = otio.adapters.read_from_string(export(res, "otio"), "otio_json").find_clips()
    assert "\n" not in clip.media_reference.target_url and "\n" not in clip.name


# -- issue 20 item 5: media references -----------------------------------------------------

def test_media_references_are_absolute_urls_or_relinked() -> None:
    from vidground.outputs.exports import media_url

    assert media_url("/media/a b/x.mp4") == "file:///media/a%20b/x.mp4"
    assert media_url("D:\\clips\\x.mp4") == "file:///D:/clips/x.mp4"
    assert media_url("clips/a b.mp4") == "clips/a%20b.mp4"
    res = result(Span(1.0, 2.0), video="/srv/media/game day.mp4")
    for folder, url in (("/Volumes/footage", "file:///Volumes/footage/game%20day.mp4"),
                        ("D:\\footage", "file:///D:/footage/game%20day.mp4")):
        assert f"* FROM CLIP: {url}\n" in export(res, "edl", relink=folder)
        [clip] = otio.adapters.read_from_string(export(res, "otio", relink=folder),
                                                "otio_json").find_clips()
        assert clip.media_reference.target_url == url
    [row] = list(csv.DictReader(io.StringIO(export(res, "csv", relink="/Volumes/footage"))))
    assert row["video"] == "/Volumes/footage/game day.mp4"
    with pytest.raises(OptionsError, match="not absolute"):
        export(res, "edl", relink="footage")


def test_a_grounding_names_its_video_by_absolute_path(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    monkeypatch.chdir(tmp_path)
    video = SimpleNamespace(path="sub/../m.mp4", fps=25.0, duration=10.0)
    grounding = SimpleNamespace(spans=[Span(1.0, 2.0)], video=video, query="q", model="m",
                                answer="")
    [res] = as_results(grounding)
    assert res.video == str(tmp_path / "m.mp4")
    assert f"* FROM CLIP: {(tmp_path / 'm.mp4').as_uri()}" in export(grounding, "edl")


def test_results_read_the_video_and_question_a_response_names() -> None:
    body = {"segments": [{"start": 1.0, "end": 2.0}], "query": "q?",
            "video": {"fps": 25.0, "path": "/media/a.mp4", "name": "a.mp4"}}
    [res] = results_from_json(body)
    assert (res.query, res.video) == ("q?", "/media/a.mp4")
    job = {"job_id": "a" * 24, "status": "succeeded", "result": body,
           "request": {"query": "q?", "video_path": "a.mp4"}}
    assert results_from_json(job)[0].video == "/media/a.mp4"
    del body["video"]["path"]
    assert results_from_json(body)[0].video == "a.mp4"


def test_cli_export_relinks_from_the_current_folder(tmp_path: Path) -> None:
    response = {"segments": [{"start": 1.0, "end": 2.5}], "query": "q",
                "video": {"duration": 10.0, "fps": 25.0, "path": "/srv/m.mp4"}}
    (tmp_path / "r.json").write_text(json.dumps(response))
    out = run_cli("export", "r.json", "--to", "edl:-", "--relink", "footage", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"* FROM CLIP: {(tmp_path / 'footage' / 'm.mp4').as_uri()}" in out.stdout
    many = {"segments": [{"start": i, "end": i + 0.5} for i in range(10_001)],
            "video": {"fps": 25.0}}
    (tmp_path / "many.json").write_text(json.dumps(many))
    refused = run_cli("export", "many.json", "--to", "srt", cwd=tmp_path)
    assert refused.returncode == 2 and "10,000" in refused.stderr
    assert "Traceback" not in refused.stderr
