"""Questions about the phases of one action: "when does the person start reaching for the phone,
and when is the pick-up complete?" becomes one labelled question per phase.

>>> split_phases("请识别视频中人物开始伸手拿手机的时间点，以及完成拾起动作的时间点")
['开始伸手拿手机', '完成拾起动作']
>>> split_phases("When does she start to open the door and when does she finish?")
['start to open the door', 'finish']
"""

from __future__ import annotations

import re

_ZH_CLAUSES = re.compile(r"[，,；;。、]|以及|并且|然后|直到|和(?=完成|结束|停止)")
_ZH_PHASE = re.compile(r"(开始|完成|结束|停止|放下|拿起|拾起)[^，,；;。的]*")
_EN_CLAUSES = re.compile(r"[,;.?]|\band\b|\bthen\b|\buntil\b", re.IGNORECASE)
_EN_PHASE = re.compile(
    r"\b(start(?:s|ing)?|begin(?:s|ning)?|finish(?:es|ing)?|complete(?:s|d)?|end(?:s|ing)?|"
    r"stop(?:s|ping)?)\b.*", re.IGNORECASE)
_EN_FILLER = re.compile(r"\s*\b(the|time|point|moment|when|does|do|is|are|he|she|they|it|"
                        r"person|player)\s*$", re.IGNORECASE)


def split_phases(query: str) -> list[str]:
    """The phases a question asks about (two or more), or ``[]`` for an ordinary question."""
    if re.search(r"[\u4e00-\u9fff]", query):
        clauses = _ZH_CLAUSES.split(query)
        found = [m.group(0) for c in clauses if (m := _ZH_PHASE.search(c))]
    else:
        clauses = _EN_CLAUSES.split(query)
        found = [_tidy_en(m.group(0)) for c in clauses if (m := _EN_PHASE.search(c))]
    phases = [p for p in dict.fromkeys(found) if p]
    return phases if len(phases) >= 2 else []


def _tidy_en(text: str) -> str:
    text = text.strip(" ?!.")
    while (shorter := _EN_FILLER.sub("", text)) != text:
        text = shorter
    return text


def phase_question(phase: str, query: str, language: str) -> str:
    """The question to ask about one phase, with the whole question as context."""
    if language == "zh":
        return f"{phase}发生在什么时候？（完整问题：{query}）"
    return f"When does this happen: {phase}? (The whole question: {query})"
