"""Grounding and verification prompts."""

from __future__ import annotations

import pytest

from vidground.backends.base import Prompt
from vidground.grounding.answer import parse_answer, parse_yes_no
from vidground.grounding.prompts import (
    NOT_FOUND_EN,
    NOT_FOUND_ZH,
    build_prompt,
    build_verify_prompt,
    detect_language,
)


@pytest.mark.parametrize(
    ("text", "lang"),
    [("When does the dog jump?", "en"), ("狗什么时候跳起来？", "zh"),
     ("When does 小明 wave?", "zh"), ("请找出 the goal", "zh"), ("", "en"), ("12.5 s", "en"),
     ("ジャンプ", "en"), ("漢字", "zh")],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_auto_language_follows_query() -> None:
    assert build_prompt("When does the dog jump?").language == "en"
    zh = build_prompt("请找出视频中第一次出现球员尝试三分投篮的时间段")
    assert zh.language == "zh"
    assert "答案" in zh.user and "秒" in zh.user


def test_explicit_language_wins() -> None:
    assert build_prompt("狗什么时候跳", language="en").language == "en"
    assert build_prompt("when does the dog jump", language="zh").language == "zh"
    assert build_prompt("when", language="zh-CN").language == "zh"
    with pytest.raises(ValueError):
        build_prompt("when", language="fr")


def test_prompt_type_and_query() -> None:
    prompt = build_prompt("the dog jumps over the fence")
    assert isinstance(prompt, Prompt)
    assert "the dog jumps over the fence" in prompt.user
    assert "<t seconds>" in prompt.system


@pytest.mark.parametrize("query", ["the dog jumps", "狗跳起来"])
def test_both_languages_ask_for_the_answer_form(query: str) -> None:
    prompt = build_prompt(query)
    if prompt.language == "en":
        assert "Answer: 12.5 - 18.0 seconds" in prompt.user
        assert f"Answer: {NOT_FOUND_EN}" in prompt.user
    else:
        assert "答案：12.5 - 18.0 秒" in prompt.user
        assert f"答案：{NOT_FOUND_ZH}" in prompt.user


@pytest.mark.parametrize("query", ["the dog jumps", "狗跳起来"])
def test_the_example_in_the_prompt_parses(query: str) -> None:
    """Whatever form the prompt shows the model, the parser reads it."""
    prompt = build_prompt(query, all_occurrences=True)
    line = next(line for line in prompt.user.splitlines() if "12.5 - 18.0" in line)
    answer = line[line.index("答案" if prompt.language == "zh" else "Answer:"):]
    spans = parse_answer(answer).spans
    assert [(s.start, s.end) for s in spans] == [(12.5, 18.0), (30.0, 32.5)]
    not_found = "Answer: NOT FOUND" if prompt.language == "en" else "答案：未找到"
    assert parse_answer(not_found).not_found


@pytest.mark.parametrize("query", ["the dog jumps", "狗跳起来"])
def test_reasoning_toggle(query: str) -> None:
    with_reason = build_prompt(query, return_reasoning=True).user
    without = build_prompt(query, return_reasoning=False).user
    marker = "Reasoning:" if detect_language(query) == "en" else "理由："
    assert marker in with_reason
    assert marker not in without


@pytest.mark.parametrize("query", ["the dog jumps", "狗跳起来"])
def test_all_occurrences(query: str) -> None:
    one = build_prompt(query, all_occurrences=False).user
    every = build_prompt(query, all_occurrences=True).user
    word = "every time" if detect_language(query) == "en" else "每一次"
    assert word in every and word not in one
    assert "30.0 - 32.5" in every and "30.0 - 32.5" not in one


@pytest.mark.parametrize(("query", "text"), [("the dog jumps", "120.0 seconds long"),
                                             ("狗跳起来", "视频总长 120.0 秒")])
def test_duration_mentioned_when_known(query: str, text: str) -> None:
    assert text in build_prompt(query, duration=120.0).user
    assert "00:02:00.0" in build_prompt(query, duration=120.0).user
    assert text not in build_prompt(query).user
    with pytest.raises(ValueError):
        build_prompt(query, duration=-1.0)


def test_verify_prompt() -> None:
    en = build_verify_prompt("the dog jumps?")
    assert en.language == "en"
    assert "Is the following event happening in this clip: the dog jumps?" in en.user
    assert "Answer yes or no." in en.user
    zh = build_verify_prompt("狗跳起来", "auto")
    assert zh.language == "zh"
    assert "狗跳起来" in zh.user and "是" in zh.user and "否" in zh.user
    assert build_verify_prompt("狗跳起来", "en").language == "en"


@pytest.mark.parametrize(("question", "event"), [
    ("When does the dog jump?", "the dog jump"),
    ("When is the red square visible?", "the red square visible"),
    ("At what point does the car stop?", "the car stop"),
    ("Find the moment when the door opens.", "the door opens"),
    ("Tell me every time the red square shows up", "the red square shows up"),
    ("狗什么时候跳起来？", "狗跳起来"),
    ("请找出红色方块出现的时间", "红色方块出现"),
    ("the dog jumps", "the dog jumps"),
])
def test_verify_prompt_states_the_event_not_the_question(question: str, event: str) -> None:
    user = build_verify_prompt(question).user
    assert event in user
    asked = user.replace("：", ":").split(":", 1)[1]
    assert "when" not in asked.lower() and "什么时候" not in asked


@pytest.mark.parametrize(("answer", "expected"), [("Yes.", True), ("No.", False), ("是", True),
                                                  ("否", False)])
def test_verify_answers_parse(answer: str, expected: bool) -> None:
    assert parse_yes_no(answer) is expected
