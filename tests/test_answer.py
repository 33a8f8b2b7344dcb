"""Model text -> spans: a table of answers models really write, plus property tests."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidground.grounding.answer import ParsedAnswer, parse_answer, parse_yes_no, restate_times
from vidground.timecode import OUTPUT_FORMATS, Span, format_time, parse_timecode

S = tuple[float, float]

# (model text, expected spans as (start, end) pairs)
ANSWERS: list[tuple[str, list[S]]] = [
    # --- our own prompt's form -------------------------------------------------------------
    ("Answer: 12.5 - 18.0 seconds\nReasoning: The player jumps at 12.5 s and lands at 18 s.",
     [(12.5, 18.0)]),
    ("Answer: 12.5 - 18.0 seconds; 30.0 - 32.5 seconds\nReasoning: two dunks.",
     [(12.5, 18.0), (30.0, 32.5)]),
    ("答案：12.5 - 18.0 秒\n理由：球员在12.5秒起跳。", [(12.5, 18.0)]),
    ("答案：3.0 - 4.5 秒; 10.0 - 12.0 秒", [(3.0, 4.5), (10.0, 12.0)]),
    ("Answer: 12.5 - 18.0", [(12.5, 18.0)]),
    ("Answer: [12.5, 18.0]", [(12.5, 18.0)]),
    ("**Answer:** 12.5s – 18.0s\n\n**Reasoning:** the ball leaves his hands.", [(12.5, 18.0)]),
    ("### Answer\n4.0 - 6.5 seconds\n\n### Reasoning\nThe dog jumps.", [(4.0, 6.5)]),
    ("Final answer: 7.2 - 9.9 seconds.", [(7.2, 9.9)]),
    # --- plain English ranges ------------------------------------------------------------------
    ("12.5 - 18.0 seconds", [(12.5, 18.0)]),
    ("12.5-18s", [(12.5, 18.0)]),
    ("12.5s-18s", [(12.5, 18.0)]),
    ("12.5 s – 18.0 s", [(12.5, 18.0)]),
    ("The event occurs from 12.5s to 18s.", [(12.5, 18.0)]),
    ("From 12.5 seconds to 18 seconds, the man is running.", [(12.5, 18.0)]),
    ("The goal is scored between 12.5 and 18 seconds.", [(12.5, 18.0)]),
    ("It happens between 12.5s and 18s in the video.", [(12.5, 18.0)]),
    ("The woman starts at 12.5 seconds and ends at 18 seconds.", [(12.5, 18.0)]),
    ("The action begins around 12.5s and finishes at about 18s.", [(12.5, 18.0)]),
    ("It starts at 12.5 seconds. It ends at 18 seconds.", [(12.5, 18.0)]),
    ("The start time is 12.5 seconds and the end time is 18.0 seconds.", [(12.5, 18.0)]),
    ("Start: 12.5s, End: 18s", [(12.5, 18.0)]),
    ("Start time: 00:00:12.5\nEnd time: 00:00:18.0", [(12.5, 18.0)]),
    ("The cat sits from 12.5 until 18 seconds.", [(12.5, 18.0)]),
    ("12.5 to 18.0 seconds", [(12.5, 18.0)]),
    ("The event spans 12.5 sec through 18 sec.", [(12.5, 18.0)]),
    ("The dunk happens at 12.5 seconds and lasts until 18 seconds.", [(12.5, 18.0)]),
    ("The event occurs in [12.5, 18.0] seconds.", [(12.5, 18.0)]),
    ("The relevant segment is (12.5s, 18s).", [(12.5, 18.0)]),
    ("12.5 ~ 18 seconds", [(12.5, 18.0)]),
    ("The person waves from 2s to 4s, and again from 10s to 12s.", [(2.0, 4.0), (10.0, 12.0)]),
    ("Occurrences: 1) 5 - 7 seconds 2) 20 - 25 seconds", [(5.0, 7.0), (20.0, 25.0)]),
    ("- 5.0 - 7.0 seconds\n- 20.0 - 25.0 seconds\n- 5.0 - 7.0 seconds", [(5.0, 7.0), (20.0, 25.0)]),
    ("The second dunk is at 30-32 s; the first at 12-14 s.", [(12.0, 14.0), (30.0, 32.0)]),
    ("The event happens from 12 to 14 secs.", [(12.0, 14.0)]),
    ("Timestamps: 12.5sec - 18.0sec", [(12.5, 18.0)]),
    ("The event occurs at approximately 12.5-18.0 seconds.", [(12.5, 18.0)]),
    ("The time range is 12.5 seconds - 18 seconds.", [(12.5, 18.0)]),
    ("From the 12 second mark to the 18 second mark.", [(12.0, 18.0)]),
    ("The answer is 12.5 - 18.0 seconds.", [(12.5, 18.0)]),
    ("Answer:\n- Start: 12.5 s\n- End: 18.0 s\nReasoning: the ball is released.", [(12.5, 18.0)]),
    ("**Start Time:** 00:00:12.5  \n**End Time:** 00:00:18.0", [(12.5, 18.0)]),
    ("Time span: 12.5s ~ 18.0s", [(12.5, 18.0)]),
    ("The event happens twice: (1) 2.0-4.0 s and (2) 10.0-12.0 s.", [(2.0, 4.0), (10.0, 12.0)]),
    ("5.5s to 7s, then 9 to 10 seconds", [(5.5, 7.0), (9.0, 10.0)]),
    ("Segment 1: 3-5s\nSegment 2: 8-9s", [(3.0, 5.0), (8.0, 9.0)]),
    ("The dog jumps in the first 5 seconds.", [(0.0, 5.0)]),
    ("The jump is at 12 s. Duration: 6 s", [(12.0, 12.0)]),
    # --- Qwen3-VL time tags ---------------------------------------------------------------------
    ("<12.5 seconds> ... <18.0 seconds>", [(12.5, 18.0)]),
    ("The event happens from <12.5 seconds> to <18.0 seconds>.", [(12.5, 18.0)]),
    ("<3.0 seconds>-<5.0 seconds>", [(3.0, 5.0)]),
    # --- clock forms ----------------------------------------------------------------------------
    ("00:01:23 - 00:01:45.5", [(83.0, 105.5)]),
    ("1:23 to 1:45", [(83.0, 105.0)]),
    ("01:23.5–01:45.2", [(83.5, 105.2)]),
    ("01:23.5—01:45.2", [(83.5, 105.2)]),
    ("01:23.5~01:45.2", [(83.5, 105.2)]),
    ("1:02:03 - 1:02:10", [(3723.0, 3730.0)]),
    ("The shot is taken from 00:12 to 00:18.", [(12.0, 18.0)]),
    ("From 0:05 until 0:09 the dog is running.", [(5.0, 9.0)]),
    ("00:00:12,500 --> 00:00:18,000", [(12.5, 18.0)]),
    ("The clip 00:02:15.678 - 00:02:17.234 shows the three-point attempt.", [(135.678, 137.234)]),
    ("1 min 23 s to 1 min 45 s", [(83.0, 105.0)]),
    ("from 1 minute 5 seconds to 1 minute 10 seconds", [(65.0, 70.0)]),
    ("It happens between 1 and 2 minutes into the video.", [(60.0, 120.0)]),
    # --- Chinese --------------------------------------------------------------------------------
    ("12.5秒到18秒", [(12.5, 18.0)]),
    ("第12.5秒至第18秒", [(12.5, 18.0)]),
    ("从12.5秒开始，到18秒结束", [(12.5, 18.0)]),
    ("事件从12.5秒开始，一直持续到18秒。", [(12.5, 18.0)]),
    ("该动作发生在12.5秒到18秒之间。", [(12.5, 18.0)]),
    ("在12.5秒和18秒之间，球员完成了投篮。", [(12.5, 18.0)]),
    ("开始于12.5秒，结束于18秒", [(12.5, 18.0)]),
    ("开始时间：12.5秒，结束时间：18秒", [(12.5, 18.0)]),
    ("球员投篮的时间段是12.5至18秒。", [(12.5, 18.0)]),
    ("12.5~18秒", [(12.5, 18.0)]),
    ("12.5秒-18秒", [(12.5, 18.0)]),
    ("12.5秒～18秒", [(12.5, 18.0)]),
    ("时间：00:01:23至00:01:45", [(83.0, 105.0)]),
    ("时间：01：23 到 01：45", [(83.0, 105.0)]),
    ("从1分23秒到1分45秒", [(83.0, 105.0)]),
    ("首次三分投篮发生在 00:02:15.678 到 00:02:17.234。", [(135.678, 137.234)]),
    ("第一次出现在3秒到5秒，第二次出现在20秒到22秒。", [(3.0, 5.0), (20.0, 22.0)]),
    ("12.5 秒 – 18.0 秒", [(12.5, 18.0)]),
    ("该事件发生在视频的第12.5秒到第18.0秒。", [(12.5, 18.0)]),
    ("在视频的 0:12 到 0:18 之间", [(12.0, 18.0)]),
    ("狗在前5秒内跳起。", [(0.0, 5.0)]),
    ("大约在第5秒左右", [(5.0, 5.0)]),
    ("１２.５秒到１８秒", [(12.5, 18.0)]),
    ("12,5秒到18秒", [(12.5, 18.0)]),
    # --- single points (zero-length spans) ------------------------------------------------------
    ("The ball goes in at 12.5 seconds.", [(12.5, 12.5)]),
    ("The goal is at 1:23.", [(83.0, 83.0)]),
    ("球员在第12秒投篮。", [(12.0, 12.0)]),
    ("The jump lasts about 2 seconds and happens at 12 seconds.", [(12.0, 12.0)]),
    ("He claps at 3 s and again at 9 s.", [(3.0, 3.0), (9.0, 9.0)]),
    # --- JSON -----------------------------------------------------------------------------------
    ('{"start": 12.5, "end": 18}', [(12.5, 18.0)]),
    ('{"start_time": "00:00:12.5", "end_time": "00:00:18"}', [(12.5, 18.0)]),
    ('{"start_time": "12.5s", "end_time": "18s", "reasoning": "he jumps at 3 s"}', [(12.5, 18.0)]),
    ('{"timestamps": [[12.5, 18.0], [30, 32]]}', [(12.5, 18.0), (30.0, 32.0)]),
    ('[{"start": 30, "end": 32}, {"start": 12.5, "end": 18}]', [(12.5, 18.0), (30.0, 32.0)]),
    ('```json\n{"start": 12.5, "end": 18}\n```', [(12.5, 18.0)]),
    ('Here is the result:\n```json\n[{"start_time": 1.5, "end_time": 3.0}]\n```\nHope this helps!',
     [(1.5, 3.0)]),
    ("{'start': 12.5, 'end': 18}", [(12.5, 18.0)]),
    ('{"events": [{"label": "jump", "start": 4, "end": 6}]}', [(4.0, 6.0)]),
    ('{"time_range": "12.5 - 18.0 seconds"}', [(12.5, 18.0)]),
    ('{"segments": [["00:01:23", "00:01:45"]]}', [(83.0, 105.0)]),
    ('{"answer": "The goal happens from 12.5s to 18s.", "reasoning": "see frame 3"}',
     [(12.5, 18.0)]),
    ('{"开始时间": "12.5秒", "结束时间": "18秒"}', [(12.5, 18.0)]),
    ('[[12.5, 18.0]]', [(12.5, 18.0)]),
    ('{"start": 18, "end": 12.5}', [(12.5, 18.0)]),
    # --- reversed and mixed -------------------------------------------------------------------
    ("18 - 12.5 seconds", [(12.5, 18.0)]),
    ("from 1:45 to 1:23", [(83.0, 105.0)]),
    # --- negations that must not hide a real span ----------------------------------------------
    ("The person does not move until 12 s, then jumps from 12 to 14 s.", [(12.0, 14.0)]),
    ("The man never sits down; he stands from 3 to 7 seconds.", [(3.0, 7.0)]),
    ("The event does not appear before 10 s; it occurs from 10 to 15 s.", [(10.0, 15.0)]),
    ("没有其他人出现，球员在12秒到14秒之间投篮。", [(12.0, 14.0)]),
    # --- think blocks --------------------------------------------------------------------------
    ("<think>Maybe 3 to 5 seconds? No, later.</think>\nAnswer: 10 - 12 seconds", [(10.0, 12.0)]),
    ("Let me check the frames at 3 s.</think>\n\nThe event is at 10-12 s.", [(10.0, 12.0)]),
    # --- numbers that are not times ------------------------------------------------------------
    ("Three people (3 people) are on the court; player 23 shoots at 12 seconds.", [(12.0, 12.0)]),
    ("In the 2024 season, at 1080p, the 4B model sees the dunk from 5s to 6s.", [(5.0, 6.0)]),
    ("The score goes from 21 to 23 at 40 s.", [(40.0, 40.0)]),
]

NO_SPANS: list[str] = [
    "There are 3 people and the score is 23-21.",
    "Player 23 wears a red shirt; the video is 1080p from 2024.",
    "The Qwen3-VL-4B model watched 2 videos with 10 - 12 frames each.",
    "The video is 300 seconds long.",
    "The jump lasts 2 seconds.",
    "Between 3 and 5 people are visible.",
    "",
    "I'm not sure.",
]

NOT_FOUND: list[str] = [
    "NOT FOUND",
    "Answer: NOT FOUND\nReasoning: Nobody jumps; a man walks from 3 to 5 seconds.",
    "**Answer:** NOT FOUND",
    "答案：未找到\n理由：视频中只有人在12秒走路。",
    "未找到",
    "The event does not appear in the video.",
    "Answer: The person never jumps.",
    "No.",
    "Answer: Nothing like that happens.",
    "The dog doesn't jump at any point.",
    "视频中从未有人投篮。",
    "This event never happens.",
    "There is no such event in this video.",
    "The requested action is not shown in the video.",
    "I could not find the moment when the dog jumps.",
    "视频中未出现该事件。",
    "视频里没有人投篮。",
    "该事件不存在。",
    '{"found": false}',
    '{"start": null, "end": null}',
    "<think>I see a dog at 3 s but no jump.</think>The event does not occur.",
]


@pytest.mark.parametrize(("text", "expected"), ANSWERS)
def test_answer_table(text: str, expected: list[S]) -> None:
    parsed = parse_answer(text)
    got = [(s.start, s.end) for s in parsed.spans]
    assert got == [pytest.approx(e) for e in expected]
    assert not parsed.not_found


def test_every_table_text_is_its_own_case() -> None:
    """No text is listed twice or in two tables (a repeat tests nothing new; a text in two
    tables asks for two different readings, so one of its rows would be wrong)."""
    texts = [t for t, _ in ANSWERS] + NO_SPANS + NOT_FOUND
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    assert not repeated, repeated


@pytest.mark.parametrize("text", NO_SPANS)
def test_numbers_that_are_not_times(text: str) -> None:
    parsed = parse_answer(text)
    assert parsed.spans == ()
    assert not parsed.not_found


@pytest.mark.parametrize("text", NOT_FOUND)
def test_not_found(text: str) -> None:
    parsed = parse_answer(text)
    assert parsed.not_found
    assert parsed.spans == ()


def test_clamp_to_duration() -> None:
    parsed = parse_answer("from 25 to 40 seconds", duration=30.0)
    assert parsed.spans == (Span(25.0, 30.0),)


def test_drop_spans_outside_duration() -> None:
    parsed = parse_answer("2 - 4 seconds; 35 - 40 seconds", duration=30.0)
    assert parsed.spans == (Span(2.0, 4.0),)


def test_point_at_end_of_video_is_dropped() -> None:
    assert parse_answer("at 31 seconds", duration=30.0).spans == ()


def test_reversed_span_swapped_and_clamped() -> None:
    assert parse_answer("from 40 s to 20 s", duration=30.0).spans == (Span(20.0, 30.0),)


def test_to_the_end_uses_duration() -> None:
    assert parse_answer("from 25 seconds to the end", duration=30.0).spans == (Span(25.0, 30.0),)
    assert parse_answer("从25秒一直到视频结束", duration=30.0).spans == (Span(25.0, 30.0),)


def test_last_seconds_need_duration() -> None:
    assert parse_answer("in the last 10 seconds", duration=100.0).spans == (Span(90.0, 100.0),)
    assert parse_answer("在最后10秒", duration=100.0).spans == (Span(90.0, 100.0),)
    assert parse_answer("in the last 10 seconds").spans == ()


def test_clock_past_duration_is_dropped() -> None:
    assert parse_answer("at 02:15.6 - 02:17.2", duration=100.0).spans == ()
    assert parse_answer("1:23 - 1:45 (83-105 seconds)", duration=100.0).spans == (
        Span(83.0, 100.0),)


def test_bare_numbers_in_prose_are_not_times() -> None:
    """Without a unit a range in prose is not trusted (only a bare *answer* is)."""
    assert parse_answer("The event occurs from 12.5 to 18.0.").spans == ()
    assert parse_answer("Answer: 12.5 to 18.0").spans == (Span(12.5, 18.0),)


def test_duplicates_merged_and_sorted() -> None:
    text = "30 - 32 seconds, 12 - 14 seconds, and again 30 - 32 seconds (00:00:12 - 00:00:14)"
    assert parse_answer(text).spans == (Span(12.0, 14.0), Span(30.0, 32.0))


def test_frames_need_fps() -> None:
    assert parse_answer("from frame 300 to frame 450", fps=30.0).spans == (Span(10.0, 15.0),)
    assert parse_answer("第300帧到第450帧", fps=30.0).spans == (Span(10.0, 15.0),)
    assert parse_answer("from frame 300 to frame 450").spans == ()


def test_reasoning_split_english() -> None:
    parsed = parse_answer("Answer: 12.5 - 18.0 seconds\nReasoning: The dog jumps at 12.5 s.")
    assert parsed.answer == "12.5 - 18.0 seconds"
    assert parsed.reasoning == "The dog jumps at 12.5 s."


def test_reasoning_split_chinese() -> None:
    parsed = parse_answer("答案：12.5 - 18.0 秒\n理由：狗在12.5秒跳起。")
    assert parsed.answer == "12.5 - 18.0 秒"
    assert parsed.reasoning == "狗在12.5秒跳起。"
    parsed = parse_answer("推理：先看画面。\n答案：3 - 4 秒")
    assert parsed.reasoning == "先看画面。"
    assert parsed.answer == "3 - 4 秒"


def test_reasoning_on_one_line() -> None:
    parsed = parse_answer("Answer: 3 - 4 seconds. Reasoning: the ball drops at 9 s.")
    assert parsed.spans == (Span(3.0, 4.0),)
    assert parsed.reasoning == "the ball drops at 9 s."


def test_reasoning_times_not_used_when_answer_has_spans() -> None:
    parsed = parse_answer("Reasoning: I looked at 2 s and 50 s.\nAnswer: 10 - 12 seconds")
    assert parsed.spans == (Span(10.0, 12.0),)


def test_reasoning_used_when_answer_has_no_time() -> None:
    parsed = parse_answer("Answer: The dog jumps once.\nReasoning: It jumps from 4 s to 6 s.")
    assert parsed.spans == (Span(4.0, 6.0),)
    assert parsed.answer == "The dog jumps once."


def test_think_block_is_reasoning_and_never_spans() -> None:
    parsed = parse_answer("<think>Maybe 3 to 5 seconds.</think>\nThe dog is sleeping.")
    assert parsed.spans == ()
    assert parsed.reasoning == "Maybe 3 to 5 seconds."
    assert parsed.answer == "The dog is sleeping."


def test_unclosed_think_is_all_reasoning() -> None:
    parsed = parse_answer("<think>The jump might be at 3 s, let me")
    assert parsed.spans == ()
    assert parsed.answer == ""
    assert parsed.reasoning == "The jump might be at 3 s, let me"


def test_json_reasoning_and_answer_keys() -> None:
    parsed = parse_answer('{"start": 1, "end": 2, "reasoning": "saw it", "answer": "1 to 2 s"}')
    assert parsed.spans == (Span(1.0, 2.0),)
    assert parsed.reasoning == "saw it"
    assert parsed.answer == "1 to 2 s"


def test_reasoning_none_when_absent() -> None:
    parsed = parse_answer("12 - 14 seconds")
    assert parsed.reasoning is None
    assert parsed.answer == "12 - 14 seconds"


def test_parsed_answers_are_values() -> None:
    """The same text reads the same each time, and a reading can key a dict or set (callers
    compare and deduplicate readings); a different text reads differently."""
    first, again = parse_answer("1 - 2 s"), parse_answer("1 - 2 s")
    assert isinstance(first, ParsedAnswer)
    assert first == again and hash(first) == hash(again) and len({first, again}) == 1
    assert {first: "seen"}[again] == "seen"
    assert parse_answer("1 - 3 s") != first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True), ("yes.", True), ("Yes, the dog is jumping.", True), ("**Yes**", True),
        ("No", False), ("No, nothing happens.", False), ("no.", False),
        ("是", True), ("是的，正在投篮。", True), ("否", False),
        ("不是。", False), ("没有。", False),
        ("Answer: yes", True), ("答案：否", False), ("<think>hmm, no?</think>Yes", True),
        ("Maybe.", None), ("", None), ("Nothing is certain", None), ("yesterday", None),
        ("I think the answer is yes.", True), ("I'd say no.", False),
    ],
)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


# --- properties -------------------------------------------------------------------------------

times = st.floats(min_value=0.0, max_value=100_000.0, allow_nan=False, allow_infinity=False)
fps_values = st.sampled_from([23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0])

PRECISION = {"HH:MM:SS.sss": 0.0005 + 1e-9, "seconds": 0.0005 + 1e-9, "HH:MM:SS": 1.0}


@settings(max_examples=200)
@given(t=times, fmt=st.sampled_from(OUTPUT_FORMATS), fps=fps_values)
def test_format_parse_round_trip(t: float, fmt: str, fps: float) -> None:
    text = format_time(t, fmt, fps=fps)
    back = parse_timecode(text, fps=fps, input_format=fmt)
    if fmt == "frames":
        assert back <= t + 1e-6 and t - back < 1 / fps + 1e-6
    elif fmt == "HH:MM:SS":
        assert back <= t + 1e-6 and t - back < 1.0
    else:
        assert abs(back - t) <= PRECISION[fmt]


TEMPLATES = [
    "Answer: {a} - {b} seconds",
    "The event happens from {a}s to {b}s.",
    "between {a} and {b} seconds",
    "{a}秒到{b}秒",
    "从第{a}秒开始，到第{b}秒结束。",
    "It starts at {a} seconds and ends at {b} seconds.",
    "<{a} seconds> ... <{b} seconds>",
    '{{"start": {a}, "end": {b}}}',
    "```json\n[{{\"start_time\": {a}, \"end_time\": {b}}}]\n```",
    "{ca} - {cb}",
    "从 {ca} 到 {cb}",
]


@settings(max_examples=200)
@given(
    a=st.integers(min_value=0, max_value=360_000), d=st.integers(min_value=1, max_value=6000),
    template=st.sampled_from(TEMPLATES),
)
def test_span_sentence_round_trip(a: int, d: int, template: str) -> None:
    """A span written the way a model writes it (tenths of seconds) parses back exactly."""
    span = Span(a / 10, (a + d) / 10)
    text = template.format(a=f"{span.start:.1f}", b=f"{span.end:.1f}",
                           ca=format_time(span.start), cb=format_time(span.end))
    parsed = parse_answer(text)
    assert [(s.start, s.end) for s in parsed.spans] == [
        (pytest.approx(span.start, abs=1e-6), pytest.approx(span.end, abs=1e-6))
    ]


@pytest.mark.parametrize(
    "text",
    ["[" * 3000, '{"a": ' * 2000, "[" * 600 + "]" * 600, "1 s" + " " * 5000 + "2 s",
     "12 s, " * 3000, "1 s to 2 s. " * 3000, "-" * 20_000, "a" * 100_000],
)
def test_pathological_text_is_fast(text: str) -> None:
    # CPU time of this thread (the parser's regular expressions run in it), not wall time:
    # other processes on a loaded machine cannot use up the bound, a runaway pattern still does
    started = time.thread_time()
    parse_answer(text)
    assert time.thread_time() - started < 2.0


@settings(max_examples=100)
@given(text=st.text(max_size=200))
def test_never_crashes(text: str) -> None:
    parsed = parse_answer(text, duration=100.0)
    assert all(0 <= s.start <= s.end <= 100.0 for s in parsed.spans)
    assert not (parsed.not_found and parsed.spans)


# -- restating the final times in the model's sentence (issue 11, item 2) -------------------------

FINAL = [Span(5.0, 8.033)]


@pytest.mark.parametrize(("text", "fmt", "language", "expected"), [
    ("The dog jumps from 5.2 to 7.7 seconds.", "HH:MM:SS.sss", "en",
     "The dog jumps from 00:00:05.000 to 00:00:08.033."),
    ("The dog jumps from 5.2 to 7.7 seconds.", "seconds", "en",
     "The dog jumps from 5.000 to 8.033 seconds."),
    ("The dog jumps from 5.2 to 7.7 seconds.", "frames", "en",
     "The dog jumps from frame 150 to frame 240."),
    ("The dog jumps from 5.2 to 7.7 seconds.", "HH:MM:SS", "en",
     "The dog jumps from 00:00:05 to 00:00:08."),
    ("狗在5.2秒到7.7秒之间跳起。", "seconds", "zh", "狗在5.000秒到8.033秒之间跳起。"),
    ("狗在第5.2秒到第7.7秒跳起。", "frames", "zh", "狗在第150帧到第240帧跳起。"),
    ("**It starts at 5.2 s and ends at 7.7 s**", "HH:MM:SS.sss", "en",
     "**It starts at 00:00:05.000 and ends at 00:00:08.033**"),
    ("From 0:05 to 0:08, the dog jumps.", "seconds", "en",
     "From 5.000 seconds to 8.033 seconds, the dog jumps."),
    ("<5.2 seconds> - <7.7 seconds>", "HH:MM:SS.sss", "en", "00:00:05.000 - 00:00:08.033"),
    ("5.2 - 7.7", "HH:MM:SS.sss", "en", "00:00:05.000 - 00:00:08.033"),
    ("The dog jumps at 5.2 seconds.", "HH:MM:SS.sss", "en",
     "The dog jumps at 00:00:05.000 - 00:00:08.033."),
])
def test_restate_writes_the_final_times_where_the_model_wrote_its_own(text, fmt, language,
                                                                      expected):
    out = restate_times(text, FINAL, fmt, fps=30.0, duration=20.0, language=language)
    assert out == expected
    # what the user reads parses back to the final span (frames aside: they need a unit)
    if fmt in ("HH:MM:SS.sss", "seconds"):
        first = parse_answer(out, fps=30.0).spans[0]
        assert (first.start, first.end) == (pytest.approx(5.0, abs=1e-3),
                                            pytest.approx(8.033, abs=1e-3))


@pytest.mark.parametrize("text", [
    '{"start": 5.2, "end": 7.7}',                                  # JSON: not rewritten
    "The dog jumps in the first 8 seconds.",                        # a derived range
    "From 5.2 to 7.7 seconds, and again from 15 to 16 seconds.",    # a span that was dropped
    "The dog jumps.",                                               # no time named
    "From 5.2 to 6 seconds and from 6.5 to 7.7 seconds.",           # two ranges, one span
])
def test_restate_refuses_what_it_cannot_rewrite_honestly(text):
    assert restate_times(text, FINAL, "HH:MM:SS.sss", fps=30.0, duration=20.0) is None


def test_restate_matches_each_range_to_its_own_span():
    spans = [Span(1.0, 2.0), Span(10.0, 12.5)]
    text = "First from 1.5 to 2 seconds, then from 9.5 to 12 seconds."
    assert restate_times(text, spans, "seconds", tolerance=1.0) == (
        "First from 1.000 to 2.000 seconds, then from 10.000 to 12.500 seconds.")
    # a range too far from every span (more than the tolerance) is not forced onto one
    assert restate_times("From 20 to 21 seconds.", spans, "seconds", tolerance=1.0) is None


# -- issue 20, item 1: what other models really write (the real answers: test_answer_corpus.py) --

ISSUE_20: list[tuple[str, float | None, list[S]]] = [
    # JSON whose keys are the times (Qwen3-VL's event-localisation cookbook; Gemini)
    ('{"00:23.00 - 00:48.00": "trim the fat.", "00:56.00 - 01:28.00": "season the beef."}', None,
     [(23.0, 48.0), (56.0, 88.0)]),
    ('[{"00:16": "A cougar is walking."}, {"01:05": "A cougar looks around."}]', None,
     [(16.0, 16.0), (65.0, 65.0)]),
    ('{"12.5s - 18s": "the jump"}', None, [(12.5, 18.0)]),
    # markdown bold around clock times, with the colon inside or outside the bold
    ('1.  **0:29 - 0:32**: "As you may have heard, AI is having a very busy year."', None,
     [(29.0, 32.0)]),
    ("* **0:00-0:16:** Two grey foxes move around.\n* **0:17-0:34:** A mountain lion explores.",
     None, [(0.0, 16.0), (17.0, 34.0)]),
    # Time-R1's answer tags, the range on its own line, chat tokens left in
    ("<answer>\n23.50 to 30.00\n</answer><|im_end|>", 30.96, [(23.5, 30.0)]),
    ("<think>Maybe 3 to 5 seconds? No.</think>\n<answer>\n6.00 to 18.00</answer>", None,
     [(6.0, 18.0)]),
    # relevant windows, ranked with scores; a start a little below 0 is 0
    ('{"query": "q", "relevant_windows": [["00:05", "00:09"], ["00:20", "00:25"]]}', None,
     [(5.0, 9.0), (20.0, 25.0)]),
    ("{'pred_relevant_windows': [[10.0, 12.0, 0.31], [-0.17, 4.0, 0.92], ...]}", None,
     [(0.0, 4.0), (10.0, 12.0)]),
    ("Predicted moments ([start, end, score]): [\n [49.97, 64.91, 0.94],\n ...,\n"
     " [45.38, 52.22, 0.01]]", None, [(45.38, 52.22), (49.97, 64.91)]),
    # timecodes cited in parentheses; a cited point counts beside ranges, a unit point does not
    ("It shows the plants (0:00). He adds a fern (0:09-0:25, 0:41-0:45).", None,
     [(0.0, 0.0), (9.0, 25.0), (41.0, 45.0)]),
    ("He jumps from 3 to 5 s (5 s).", None, [(3.0, 5.0)]),
    # "at second N" beside a length that is no point
    ("The video is 8 seconds long. The dog appears at second 0 and again at second 2.", 10.0,
     [(0.0, 0.0), (2.0, 2.0)]),
    ("The dog runs from second 3 to second 7.", None, [(3.0, 7.0)]),
    # the whole video
    ("Throughout the entire video.", 42.0, [(0.0, 42.0)]),
    ("整个视频中都有人在走路。", 12.5, [(0.0, 12.5)]),
    # one Qwen3-VL tag is a time; a range of tags is a range
    ("The jump is at <12.5 seconds>.", None, [(12.5, 12.5)]),
    ("<3.0秒>到<5.0秒>", None, [(3.0, 5.0)]),
    # a streaming clock is no answer, the answer after it is
    ("(Video Time = 12.0s) Assistant: the dog jumps at 3 s.", None, [(3.0, 3.0)]),
    # a quoted example range is not the answer; the range after it is
    ("The example in the prompt is 37.1秒到52.6秒; here the group dances from 80.3秒到90.2秒.",
     None, [(80.3, 90.2)]),
]

ISSUE_20_NO_SPANS: list[tuple[str, float | None]] = [
    ("(Video Time = 1549.0s) Assistant: 4, the 4, the, the 4, the 4, 4,", None),
    ("(Video Time = 60.0s) Assistant: B. Operating a piece of machinery.", None),
    ("- <5.6秒>：现代建筑外景，行人走动。\n- <28.2秒>：广场上有人做操。", None),
    ("<140.8 seconds> ... \"a group walking.\" Wait, no:\n\n<140.8 seconds> ... \"a group.\"",
     None),
    ("For example: 90.0 - 102.0 seconds, spread margarine on bread.", None),
    ("Throughout the entire video.", None),  # no duration: no end to give
]


@pytest.mark.parametrize(("text", "duration", "expected"), ISSUE_20)
def test_issue_20_forms(text: str, duration: float | None, expected: list[S]) -> None:
    parsed = parse_answer(text, duration=duration)
    assert [(s.start, s.end) for s in parsed.spans] == [pytest.approx(e) for e in expected]
    assert not parsed.not_found


@pytest.mark.parametrize(("text", "duration"), ISSUE_20_NO_SPANS)
def test_issue_20_times_that_are_no_answer(text: str, duration: float | None) -> None:
    parsed = parse_answer(text, duration=duration)
    assert parsed.spans == ()
    assert not parsed.not_found


def test_answer_tag_holds_the_answer_and_the_rest_is_reasoning() -> None:
    parsed = parse_answer("He sits down near the end, after 20 s.\n<answer>23.5 to 30.0</answer>")
    assert parsed.spans == (Span(23.5, 30.0),)
    assert parsed.answer == "23.5 to 30.0"
    assert parsed.reasoning == "He sits down near the end, after 20 s."


def test_ranked_windows_keep_the_best_score() -> None:
    spans = parse_answer('{"pred_relevant_windows": [[1, 2, 0.2], [5, 9, 0.9], [1, 2, 0.4]]}').spans
    assert spans == (Span(1.0, 2.0, score=0.4), Span(5.0, 9.0, score=0.9))


def test_never_a_whole_video_when_it_does_not_happen() -> None:
    parsed = parse_answer("The dog never jumps throughout the entire video.", duration=30.0)
    assert parsed.not_found and parsed.spans == ()


def test_parse_answer_takes_duration_and_fps_positionally() -> None:
    assert parse_answer("from frame 30 to frame 90", 2.5, 30.0).spans == (Span(1.0, 2.5),)
    assert parse_answer("from frame 30 to frame 90", duration=2.5, fps=30.0).spans == (
        Span(1.0, 2.5),)


def test_public_parse_answer_returns_the_spans() -> None:
    import vidground

    assert vidground.parse_answer("<answer>\n23.50 to 30.00\n</answer>", 30.0) == (
        Span(23.5, 30.0),)
    assert "parse_answer" in vidground.__all__


def test_public_parse_answer_keeps_import_light() -> None:
    """``vidground.parse_answer`` loads only the parser: no PyAV, numpy or torch."""
    import subprocess
    import sys

    code = ("import sys, vidground; vidground.parse_answer('from 1 s to 2 s'); "
            "print(sorted(m for m in ('av', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_empty_span_list_is_not_found() -> None:
    """The structured answer's schema says "none" as ``{"spans": []}`` (issue 20 item 2)."""
    from vidground.grounding.answer import parse_answer

    for text in ('{"spans": []}', '{"spans": [], "reasoning": "no red square in any frame"}',
                 '{"relevant_windows": []}'):
        parsed = parse_answer(text, duration=10.0)
        assert parsed.spans == () and parsed.not_found, text
    found = parse_answer('{"spans": [{"start": 1.5, "end": 3.0}]}', duration=10.0)
    assert [(s.start, s.end) for s in found.spans] == [(1.5, 3.0)] and not found.not_found
