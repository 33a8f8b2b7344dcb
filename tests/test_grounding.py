"""The whole pipeline on real encoded videos, with a model that really looks at the frames.

The fake model (tests/support/fake_openai_server.py) answers like a model does: "The red square is
visible from A to B seconds", A and B being the labelled times of the first and last frames in
which it saw the square. The pipeline must turn that into the true span.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from media import make_video

from vidground.backends.base import Prompt
from vidground.grounding import Grounder, plan_sampling
from vidground.options import LocateOptions
from vidground.progress import ProgressEvent
from vidground.video.decode import Frame
from vidground.video.probe import probe

FPS = 25
FRAME = 1 / FPS


def test_coarse_pass_finds_the_event_within_one_sampling_interval(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=6.0, fps=FPS, intervals=[(2.0, 3.5)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False))
    assert len(g.spans) == 1
    span = g.spans[0]
    assert abs(span.start - 2.0) <= 0.5 + 1e-6
    assert abs(span.end - 3.5) <= 0.5 + 1e-6
    assert g.timings["model_calls"] == 1
    assert g.timings["refine_calls"] == 0


def test_refinement_places_boundaries_within_one_frame(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=6.0, fps=FPS, intervals=[(2.12, 3.48)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=1.0))
    span = g.spans[0]
    assert abs(span.start - 2.12) <= FRAME + 1e-6, span
    assert abs(span.end - 3.48) <= FRAME + 1e-6, span
    assert 1 <= g.timings["refine_calls"] <= LocateOptions().max_refine_calls
    assert span.score == 1.0
    assert g.timestamp_range() == (g.format(span.start), g.format(span.end))


def test_event_that_never_happens_gives_no_span(tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "none.mp4", duration=4.0, fps=FPS, intervals=[])
    g = fake_grounder.locate(video.path, "When is the red square visible?")
    assert g.spans == ()
    assert g.timestamp_range() is None
    response = g.to_response()
    assert response["timestamp_range"] is None and response["segments"] == []
    assert "not" in response["response"].lower()


def test_every_occurrence(tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "two.mp4", duration=8.0, fps=FPS,
                       intervals=[(1.0, 2.0), (5.0, 6.5)])
    g = fake_grounder.locate(video.path, "Every time the red square shows up",
                             LocateOptions(all_occurrences=True, frame_sampling_rate=2.0))
    assert len(g.spans) == 2
    assert abs(g.spans[0].start - 1.0) <= FRAME + 1e-6
    assert abs(g.spans[1].end - 6.5) <= FRAME + 1e-6
    first_only = fake_grounder.locate(video.path, "When does the red square show up first?",
                                      LocateOptions(frame_sampling_rate=2.0))
    assert len(first_only.spans) == 1
    assert abs(first_only.spans[0].start - 1.0) <= FRAME + 1e-6


def test_long_video_is_asked_in_windows(tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "long.mp4", duration=20.0, fps=10, size=(96, 64),
                       intervals=[(17.0, 18.5)])
    opts = LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=8, refine=False,
                         verify=False)
    plan = plan_sampling(probe(video.path), opts)
    assert len(plan.windows) >= 5
    assert all(len(w) <= 8 for w in plan.windows)
    g = fake_grounder.locate(video.path, "When is the red square visible?", opts)
    assert g.timings["windows"] == len(plan.windows)
    assert abs(g.spans[0].start - 17.0) <= 0.5 + 1e-6


def test_adaptive_sampling_catches_a_sub_second_event(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "blink.mp4", duration=12.0, fps=FPS, intervals=[(7.1, 7.45)],
                       paint_index=False)
    info = probe(video.path)
    fixed = plan_sampling(info, LocateOptions(frame_sampling_rate=1.0))
    assert not any(7.1 <= t < 7.45 for t in fixed.times), "the 1 fps pass must miss it"
    adaptive = plan_sampling(info, LocateOptions(frame_sampling_rate="adaptive"))
    assert len(adaptive.times) <= len(fixed.times) + 1
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate="adaptive"))
    assert len(g.spans) == 1
    assert abs(g.spans[0].start - 7.1) <= FRAME + 1e-6
    assert abs(g.spans[0].end - 7.45) <= FRAME + 1e-6
    assert g.motion is not None and len(g.motion.per_second()) == 12
    motion = g.to_response()["motion"]
    assert motion is not None and len(motion["per_second"]) == 12
    assert max(motion["per_second"]) == 1.0 and all(0 <= v <= 1 for v in motion["per_second"])
    # the blink (7.1-7.45 s) is the only change: the curve peaks in second 7
    assert motion["per_second"].index(1.0) == 7
    fixed_response = fake_grounder.locate(video.path, "When is the red square visible?",
                                          LocateOptions(frame_sampling_rate=1.0)).to_response()
    assert fixed_response["motion"] is None


def test_progress_reports_each_stage(tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=3.0, fps=FPS, intervals=[(1.0, 2.0)])
    events: list[ProgressEvent] = []
    fake_grounder.locate(video.path, "When is the red square visible?", progress=events.append)
    stages = [e.stage for e in events]
    for stage in ("probe", "decode", "model", "refine", "done"):
        assert stage in stages
    decode = [e for e in events if e.stage == "decode"]
    assert decode[-1].done == decode[-1].total


def test_response_object_matches_the_api_contract(tmp_path: Path,
                                                  fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=3.0, fps=FPS, intervals=[(1.0, 2.0)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(output_format="seconds"))
    r = g.to_response()
    assert set(r) == {"query", "response", "raw_answer", "timestamp_range", "reasoning",
                      "segments", "video", "model", "timings", "motion", "warnings"}
    assert r["query"] == "When is the red square visible?"  # a saved response keeps its context
    assert r["video"]["name"] == "a.mp4" and r["video"]["path"] == str(video.path.resolve())
    assert r["warnings"] == []
    assert r["motion"] is None  # fixed-rate sampling computes no motion curve
    seg = r["segments"][0]
    assert r["timestamp_range"] == [seg["start_text"], seg["end_text"]]
    assert float(seg["start_text"]) == pytest.approx(seg["start"], abs=1e-3)
    assert r["video"]["fps"] == pytest.approx(25.0)
    assert r["model"] == "fake/qwen3-vl"


class ScriptedModel:
    """A model double: answers the grounding question with a fixed span, the yes/no check with
    a fixed verdict. Only the model's answers are faked; everything else is real."""

    model_name = "scripted"

    def __init__(self, span_text: str, verdict: str) -> None:
        self.span_text = span_text
        self.verdict = verdict
        self.prompts: list[Prompt] = []

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: object = None) -> str:
        self.prompts.append(prompt)
        if "yes or no" in prompt.user.lower() or "是或否" in prompt.user:
            return self.verdict
        return self.span_text


def test_spans_that_fail_verification_are_dropped(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.mp4", duration=4.0, fps=FPS, intervals=[])
    model = ScriptedModel("The dog jumps from 1.0 to 2.0 seconds.", "No.")
    g = Grounder(backend=model).locate(video.path, "When does the dog jump?",
                                       LocateOptions(refine=False))
    assert g.spans == ()
    assert g.timestamp_range() is None
    assert "not found" in g.answer.lower()
    kept = Grounder(backend=ScriptedModel("The dog jumps from 1.0 to 2.0 seconds.", "Yes.")
                    ).locate(video.path, "When does the dog jump?", LocateOptions(refine=False))
    assert [(s.start, s.end, s.score) for s in kept.spans] == [(1.0, 2.0, 1.0)]


def test_phase_questions_get_one_labelled_span_per_phase(
        tmp_path: Path, fake_grounder: Grounder, fake_model) -> None:
    video = make_video(tmp_path / "a.mp4", duration=5.0, fps=FPS, intervals=[(1.0, 2.0)])
    fake_model.reset_stats()
    g = fake_grounder.locate(
        video.path, "请识别视频中红色方块开始出现的时间点，以及完成消失的时间点",
        LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False))
    assert [s.label for s in g.spans] == ["开始出现", "完成消失"]
    assert g.answer.splitlines()[0] == f"开始出现: {g.format(g.spans[0].start)} - " \
        f"{g.format(g.spans[0].end)}"
    assert abs(g.spans[0].start - 1.0) <= 0.5
    assert g.timings["model_calls"] == 2
    asked = [r.body["messages"][-1]["content"][-1]["text"] for r in fake_model.requests]
    assert any("开始出现" in text for text in asked)
    assert any("完成消失" in text for text in asked)


def test_forty_minute_video_with_the_event_near_the_end(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "long.mp4", duration=2400.0, fps=2, size=(64, 48),
                       intervals=[(2371.0, 2375.0)], paint_index=False)
    events: list[ProgressEvent] = []
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=0.5, max_frames=1200,
                                           max_frames_per_call=256),
                             progress=events.append)
    assert g.timings["windows"] >= 5
    assert abs(g.spans[0].start - 2371.0) <= 0.5 + 1e-6
    assert abs(g.spans[0].end - 2375.0) <= 0.5 + 1e-6
    decode = [e for e in events if e.stage == "decode"]
    assert decode[-1].done == decode[-1].total >= g.timings["frames"] == 1200


def test_fixed_rate_samples_keyframes_when_every_interval_holds_one(tmp_path: Path) -> None:
    """1 s GOPs sampled at 1 fps: the samples are the keyframes (true times), decoded alone."""
    from media import read_painted_index

    from vidground.video.decode import decode_frames, keyframe_times

    video = make_video(tmp_path / "phone.mp4", duration=8.0, fps=FPS, gop=FPS,
                       intervals=[(2.0, 3.0)])
    info = probe(video.path)
    keys = keyframe_times(info)
    assert keys == pytest.approx([float(k) for k in range(8)])
    snapped = plan_sampling(info, LocateOptions(frame_sampling_rate=1.0))
    assert snapped.times == pytest.approx([0.5, *keys[1:-1], 7.5])  # ends stay at the centres
    uniform = plan_sampling(info, LocateOptions(frame_sampling_rate=1.0,
                                                snap_to_keyframes=False))
    assert uniform.times == pytest.approx([k + 0.5 for k in range(8)])
    frames = decode_frames(info, snapped.times)
    assert [read_painted_index(f.image) for f in frames] == [
        video.frame_at(0.5), *[k * FPS for k in range(1, 7)], video.frame_at(7.5)]
    assert [f.time for f in frames[1:-1]] == pytest.approx(keys[1:-1], abs=1e-6)
    # 2 fps has intervals without a keyframe: the grid stays uniform
    assert plan_sampling(info, LocateOptions(frame_sampling_rate=2.0)).times == pytest.approx(
        [k / 2 + 0.25 for k in range(16)])


def test_snapped_sampling_still_finds_the_event(tmp_path: Path,
                                                fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "phone.mp4", duration=10.0, fps=FPS, gop=FPS // 2,
                       intervals=[(4.3, 6.7)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=1.0))
    assert abs(g.spans[0].start - 4.3) <= FRAME + 1e-6
    assert abs(g.spans[0].end - 6.7) <= FRAME + 1e-6


@pytest.mark.parametrize(("name", "codec"), [("camera.ts", "h264"), ("dump.h264", "h264"),
                                             ("dump.hevc", "hevc")])
def test_messy_containers_end_to_end(tmp_path: Path, fake_grounder: Grounder, name: str,
                                     codec: str) -> None:
    """MPEG-TS with B-frames (seeks by dts) and raw elementary streams (no timestamps, no
    seeking) give the right span, refined to the frame."""
    video = make_video(tmp_path / name, codec=codec, duration=6.0, fps=FPS, bframes=True,
                       gop=FPS, intervals=[(2.12, 3.48)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=1.0))
    span = g.spans[0]
    assert abs(span.start - 2.12) <= FRAME + 1e-6, span
    assert abs(span.end - 3.48) <= FRAME + 1e-6, span


# -- requests sized to the server's cap (issue 11, item 1) ---------------------------------------


def _capped_grounder(fake_model, cap_bytes: int) -> Grounder:
    from vidground.config import Settings

    fake_model.configure(max_body_bytes=cap_bytes)
    fake_model.reset_stats()
    return Grounder(settings=Settings(
        backend="openai", openai_base_url=fake_model.base_url, openai_model=fake_model.model,
        openai_max_retries=0, openai_max_request_mb=cap_bytes / 1024 / 1024))


def test_default_settings_fit_noisy_frames_to_the_servers_request_cap(tmp_path: Path,
                                                                       fake_model) -> None:
    # camera-like frames (texture + sensor noise) compress badly: 16 frames at the default
    # JPEG quality are ~0.7 MB, and the server refuses bodies over 60 kB (413). With every
    # option at its default the pipeline must lower the quality and size, split the window
    # into requests that fit, and still find the event.
    video = make_video(tmp_path / "noisy.mp4", duration=8.0, fps=10, size=(320, 240),
                       noise=40, intervals=[(3.0, 5.0)])
    cap = 60_000
    try:
        g = _capped_grounder(fake_model, cap).locate(video.path, "When is the red square visible?")
        sizes, statuses = list(fake_model.body_sizes), [r.status for r in fake_model.requests]
    finally:
        fake_model.configure(max_body_bytes=None)
    assert sizes and max(sizes) <= cap, sizes
    assert statuses and set(statuses) == {200}  # nothing was refused
    assert len(g.spans) == 1
    assert abs(g.spans[0].start - 3.0) <= 0.1 + 1e-6 and abs(g.spans[0].end - 5.0) <= 0.1 + 1e-6
    t = g.timings
    assert t["requests_split"] >= 1 and t["requests_refitted"] >= 1
    assert t["fit_jpeg_quality"] == 50 and t["fit_image_side"] < 448
    assert t["model_calls"] == t["windows"] + t["requests_split"] + t["refine_calls"]
    assert len(sizes) == t["model_calls"]
    assert all(isinstance(t[k], int) for k in ("requests_split", "requests_refitted",
                                               "fit_jpeg_quality", "fit_image_side"))


def test_a_cap_not_even_one_frame_fits_fails_naming_the_setting(tmp_path: Path,
                                                                 fake_model) -> None:
    from vidground.backends.fitting import RequestTooLargeError

    video = make_video(tmp_path / "noisy.mp4", duration=2.0, fps=10, size=(320, 240),
                       noise=40, intervals=[(0.5, 1.0)])
    try:
        grounder = _capped_grounder(fake_model, 4_000)
        with pytest.raises(RequestTooLargeError, match="not even one frame") as caught:
            grounder.locate(video.path, "When is the red square visible?")
    finally:
        fake_model.configure(max_body_bytes=None)
    assert "VIDGROUND_OPENAI_MAX_REQUEST_MB" in caught.value.message
    assert fake_model.chat_count == 0  # refused before sending anything


# -- the answer states the final times (issue 11, item 2) ----------------------------------------


def test_the_answer_states_the_refined_times_in_the_requested_format(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    from vidground.grounding.answer import parse_answer

    video = make_video(tmp_path / "a.mp4", duration=6.0, fps=FPS, intervals=[(2.12, 3.48)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=1.0))
    span = g.spans[0]
    coarse = parse_answer(g.raw_answer).spans[0]
    assert (coarse.start, coarse.end) != (span.start, span.end)  # refinement moved them
    r = g.to_response()
    assert r["response"] == g.answer
    assert f"{g.format(span.start)} to {g.format(span.end)}" in r["response"]
    stated = parse_answer(r["response"]).spans[0]
    assert (stated.start, stated.end) == (pytest.approx(span.start, abs=1e-3),
                                          pytest.approx(span.end, abs=1e-3))
    assert r["raw_answer"] == g.raw_answer and "red square is visible from" in r["raw_answer"]
    seconds = g.to_response("seconds")["response"]
    assert f"from {span.start:.3f} to {span.end:.3f} seconds" in seconds
    frames = g.answer_in("frames")
    assert f"frame {g.format(span.start, 'frames')}" in frames


def test_counts_are_integers_and_the_answer_uses_the_requested_format(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=4.0, fps=FPS, intervals=[(1.0, 2.0)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(output_format="seconds", refine=False, verify=False))
    assert g.timings["frames"] == len(g.frame_times) and isinstance(g.timings["frames"], int)
    assert all(isinstance(g.timings[k], int) for k in (
        "windows", "model_calls", "refine_calls", "refine_frames", "cache_hits",
        "cache_misses", "requests_split", "requests_refitted"))
    assert '"frames": 8,' in __import__("json").dumps(g.to_response()["timings"])
    assert g.to_response()["timestamp_range"][0] in g.answer


def test_phase_answers_are_written_in_the_requested_format(
        tmp_path: Path, fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "a.mp4", duration=5.0, fps=FPS, intervals=[(1.0, 2.0)])
    g = fake_grounder.locate(
        video.path, "请识别视频中红色方块开始出现的时间点，以及完成消失的时间点",
        LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False,
                      output_format="seconds"))
    first = g.spans[0]
    assert g.answer.splitlines()[0] == f"开始出现: {first.start:.3f} - {first.end:.3f}"
    assert g.answer_in("HH:MM:SS.sss").splitlines()[0] == (
        f"开始出现: {g.format(first.start, 'HH:MM:SS.sss')} - "
        f"{g.format(first.end, 'HH:MM:SS.sss')}")


# -- frame numbers say their end is exclusive (issue 20, friction 7) ------------------------------


def test_frame_answers_say_the_end_frame_is_exclusive(tmp_path: Path,
                                                      fake_grounder: Grounder) -> None:
    # visible in frames 53..86 at 25 fps: the half-open end is frame 87, the first one after it
    video = make_video(tmp_path / "a.mp4", duration=6.0, fps=FPS, intervals=[(2.12, 3.48)])
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate=1.0, output_format="frames"))
    span = g.spans[0]
    assert (g.format(span.start), g.format(span.end)) == ("53", "87")
    assert "from frame 53 to frame 87 (end exclusive)" in g.answer
    assert g.to_response()["response"] == g.answer
    assert "exclusive" not in g.answer_in("seconds")  # only frame numbers need saying so


def test_written_out_frame_ranges_say_the_end_is_exclusive(tmp_path: Path, fake_model,
                                                           fake_grounder: Grounder) -> None:
    from vidground.grounding.answer import restate_times
    from vidground.timecode import Span

    video = make_video(tmp_path / "a.mp4", duration=5.0, fps=FPS, intervals=[(1.0, 2.0)])
    quick = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False,
                          output_format="frames")
    # a JSON answer is not rewritten: the final times are written out
    fake_model.configure(answer='{"start": 1.0, "end": 2.0}')
    try:
        g = fake_grounder.locate(video.path, "When is the red square visible?", quick)
    finally:
        fake_model.configure(answer=None)
    assert g.answer == "Found at frames 25 - 50 (end exclusive)."
    # one line per phase
    phases = "请识别视频中红色方块开始出现的时间点，以及完成消失的时间点"
    g = fake_grounder.locate(video.path, phases, quick)
    first = g.spans[0]
    assert g.answer.splitlines()[0] == (f"开始出现: 第{g.format(first.start)}帧 - "
                                        f"第{g.format(first.end)}帧（不含该帧）")
    # the model's own Chinese sentence, restated
    zh = restate_times("狗在第5.2秒到第7.7秒跳起。", [Span(5.0, 8.0)], "frames", fps=30.0,
                       language="zh", mark_exclusive_end=True)
    assert zh == "狗在第150帧到第240帧（不含该帧）跳起。"


def test_max_windows_counts_the_overlapping_windows(tmp_path: Path) -> None:
    # windows overlap, so max_windows windows of 4 frames hold fewer than 4 * max_windows frames:
    # 6 windows once became 8 (a describe's window cap relies on this too)
    info = probe(make_video(tmp_path / "long.mp4", duration=60.0, fps=10, size=(64, 48),
                            intervals=[(5.0, 9.0), (30.0, 33.0)], motion=True).path)
    for rate in (2.0, "adaptive"):
        opts = LocateOptions(frame_sampling_rate=rate, max_frames_per_call=4, max_windows=6)
        plan = plan_sampling(info, opts)
        assert len(plan.windows) <= 6 and all(len(w) <= 4 for w in plan.windows), rate
        assert len(plan.times) >= 16  # still the frames six windows can show (4 + 5 * 3 = 19)
    # min_frames beyond what the windows hold gives way (it raised ValueError: a 500)
    plan = plan_sampling(info, LocateOptions(min_frames=40, max_frames_per_call=2, max_windows=2))
    assert len(plan.windows) <= 2 and len(plan.times) == 3
