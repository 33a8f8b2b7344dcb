"""Grounding prompts for Qwen3-VL, in Chinese and English.

The model sees frames labelled ``<t seconds>`` and is asked to answer in one fixed form that
:mod:`vidground.grounding.answer` parses (it also parses many other forms models drift into)::

    Answer: 12.5 - 18.0 seconds
    Reasoning: the player jumps at 12.5 s and lands at 18.0 s.

or, when the event does not happen, ``Answer: NOT FOUND``. In Chinese the labels are
``答案：`` / ``理由：``, the range ``12.5 - 18.0 秒`` and the verdict ``未找到``.

>>> build_prompt("When does the dog jump?").language
'en'
>>> build_prompt("狗什么时候跳起来？").language
'zh'
"""

from __future__ import annotations

import re
from typing import Literal

from ..prompt import NOT_FOUND_EN, NOT_FOUND_ZH, Prompt

Language = Literal["en", "zh"]

_CJK = re.compile(
    r"[\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    r"\u4e00-\u9fff"  # CJK Unified Ideographs
    r"\uf900-\ufaff"  # CJK Compatibility Ideographs
    r"\U00020000-\U0002a6df]"  # Extension B
)


def detect_language(text: str) -> Language:
    """``"zh"`` if ``text`` contains any CJK ideograph, else ``"en"``.

    >>> detect_language("球员在哪一秒投篮？"), detect_language("When is the goal?")
    ('zh', 'en')
    """
    return "zh" if _CJK.search(text) else "en"


def resolve_language(text: str, language: str = "auto") -> Language:
    """Turn a requested language (``"auto"``, ``"en"``, ``"zh"``, ``"zh-CN"``...) into en/zh."""
    lang = (language or "auto").strip().lower()
    if lang == "auto":
        return detect_language(text)
    if lang.startswith("zh") or lang in {"cn", "chinese"}:
        return "zh"
    if lang.startswith("en") or lang == "english":
        return "en"
    raise ValueError(f"unsupported prompt language {language!r}; use 'auto', 'en' or 'zh'")


def _format_duration(seconds: float) -> str:
    """``83.5`` -> ``"00:01:23.5"`` (tenths, rounded once so 59.96 s is ``00:01:00.0``)."""
    tenths = int(round(seconds * 10))
    minutes, tenths = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"


def _system_text(lang: Language) -> str:
    """The system message: what the frames look like and what the job is."""
    if lang == "zh":
        return (
            "你是一个视频时间定位助手。视频以按时间顺序排列的帧给出，每帧前面标有它在视频中的"
            "时间，格式为 <t seconds>（t 为秒数）。请只根据这些时间标签判断事件发生的时间，"
            "时间一律以秒为单位、保留一位小数。"
        )
    return (
        "You are a video temporal grounding assistant. The video is given as frames in time "
        "order; each frame is preceded by its time in the video, written as <t seconds>. Use "
        "only these time labels to tell when things happen, and give every time in seconds with "
        "one decimal."
    )


def _user_text_en(query: str, *, return_reasoning: bool, all_occurrences: bool,
                  duration: float | None) -> str:
    """The English instruction that follows the frames."""
    lines = [f"Event: {query.strip()}", ""]
    if duration is not None:
        lines.append(
            f"The video is {duration:.1f} seconds long ({_format_duration(duration)}); "
            f"every time you give must be between 0 and {duration:.1f}."
        )
    if all_occurrences:
        lines.append(
            "Find every time this event happens. Give the start and end time of each "
            "occurrence in seconds, in time order, separated by semicolons, exactly like: "
            "Answer: 12.5 - 18.0 seconds; 30.0 - 32.5 seconds"
        )
    else:
        lines.append(
            "Give the start and end time of the event in seconds, exactly like: "
            "Answer: 12.5 - 18.0 seconds"
        )
    lines.append(
        f"If the event does not happen in the video, write exactly: Answer: {NOT_FOUND_EN}"
    )
    if return_reasoning:
        lines.append(
            "Then, on a new line, explain briefly (one or two sentences) what you saw, "
            "starting with: Reasoning:"
        )
    else:
        lines.append("Write only the answer line, nothing else.")
    return "\n".join(lines)


def _user_text_zh(query: str, *, return_reasoning: bool, all_occurrences: bool,
                  duration: float | None) -> str:
    """The Chinese instruction that follows the frames."""
    lines = [f"事件：{query.strip()}", ""]
    if duration is not None:
        lines.append(
            f"视频总长 {duration:.1f} 秒（{_format_duration(duration)}），"
            f"给出的时间必须在 0 到 {duration:.1f} 秒之间。"
        )
    if all_occurrences:
        lines.append(
            "请找出该事件每一次发生的时间，按时间顺序给出每一次的开始和结束时间（秒），"
            "用分号隔开，格式严格如下：答案：12.5 - 18.0 秒; 30.0 - 32.5 秒"
        )
    else:
        lines.append("请给出该事件的开始和结束时间（秒），格式严格如下：答案：12.5 - 18.0 秒")
    lines.append(f"如果视频中没有发生该事件，请严格写：答案：{NOT_FOUND_ZH}")
    if return_reasoning:
        lines.append("然后另起一行，以“理由：”开头，用一两句话简要说明你看到的内容。")
    else:
        lines.append("只写答案这一行，不要写其他内容。")
    return "\n".join(lines)


def build_prompt(query: str, *, language: str = "auto", return_reasoning: bool = True,
                 all_occurrences: bool = False, duration: float | None = None) -> Prompt:
    """The grounding prompt for ``query``.

    ``language`` ``"auto"`` picks Chinese when the query contains CJK characters. The model is
    asked for ``Answer: <start> - <end> seconds`` (``答案：<start> - <end> 秒``), several ranges
    separated by ``;`` when ``all_occurrences``, ``NOT FOUND`` (``未找到``) when the event does not
    happen, and a ``Reasoning:`` (``理由：``) line when ``return_reasoning``. ``duration`` (seconds)
    is stated when known.

    >>> p = build_prompt("the dog jumps", duration=30)
    >>> "Answer: 12.5 - 18.0 seconds" in p.user, "30.0 seconds long" in p.user
    (True, True)
    """
    if duration is not None and not duration >= 0:
        raise ValueError(f"duration must be a non-negative number of seconds, got {duration!r}")
    lang = resolve_language(query, language)
    build_user = _user_text_zh if lang == "zh" else _user_text_en
    user = build_user(query, return_reasoning=return_reasoning,
                      all_occurrences=all_occurrences, duration=duration)
    return Prompt(system=_system_text(lang), user=user, language=lang)


_EN_ASKING = re.compile(
    r"^(?:(?:can you |could you |please )?(?:tell me|show me|find|locate|identify)\s+)?"
    r"(?:(?:exactly |precisely )?(?:when|whenever|every time|each time|the moments? when|"
    r"at what (?:time|point|moment)|what time|at which (?:time|point|moment)|"
    r"(?:in )?which (?:part|moment|segment) of the video)\b\s*)"
    r"(?:(?:does|do|did|will|would|can|could|should|is|are|was|were)\s+)?", re.I)
_ZH_ASKING = re.compile(r"(?:请问|请(?:找出|识别|定位|指出|告诉我)|找出|定位)|"
                        r"(?:在)?(?:什么时候|什么时间|何时|哪个时间点?|哪一?刻|几分几秒|第几秒)")


def event_of(query: str) -> str:
    """The event a "when" question asks about, stated: what a yes/no check asks of a clip.

    >>> event_of("When does the dog jump?")
    'the dog jump'
    >>> event_of("Tell me every time the red square shows up.")
    'the red square shows up'
    >>> event_of("When is the red square visible?")
    'the red square visible'
    >>> event_of("红色方块什么时候出现？")
    '红色方块出现'
    >>> event_of("请找出红色方块出现的时间")
    '红色方块出现'
    >>> event_of("the dog jumps")
    'the dog jumps'
    """
    text = query.strip().rstrip("?？.。!！")
    if resolve_language(text, "auto") == "zh":
        stated = _ZH_ASKING.sub("", text).rstrip("呢吗").strip("，, ")
        stated = re.sub(r"的(?:时间段?|时刻|时间点|时候)$", "", stated)
    else:
        stated = _EN_ASKING.sub("", text, count=1).strip(" ,")
    return stated or text


def build_verify_prompt(query: str, language: str = "auto") -> Prompt:
    """A yes/no question: is the event happening in this clip? (Parse with ``parse_yes_no``.)
    The question is restated as its event (:func:`event_of`), so the model is not asked
    "is 'when does the dog jump' happening".

    >>> build_verify_prompt("the dog jumps").user
    'Is the following event happening in this clip: the dog jumps? Answer yes or no.'
    >>> build_verify_prompt("When does the dog jump?").user
    'Is the following event happening in this clip: the dog jump? Answer yes or no.'
    """
    lang = resolve_language(query, language)
    event = event_of(query)
    if lang == "zh":
        system = "你是一个视频理解助手。视频以带时间标签 <t seconds> 的帧给出。"
        user = f"这段视频中是否正在发生以下事件：{event}？请只回答“是”或“否”。"
    else:
        system = ("You are a video understanding assistant. The video is given as frames, each "
                  "preceded by its time as <t seconds>.")
        user = f"Is the following event happening in this clip: {event}? Answer yes or no."
    return Prompt(system=system, user=user, language=lang)


#: The first words of the describe prompt's instruction (a fake model recognises it by them).
DESCRIBE_LEAD = {"en": "List the events that happen in this video",
                 "zh": "请按时间顺序列出视频中发生的所有事件"}


def build_describe_prompt(*, language: str = "en", duration: float | None = None) -> Prompt:
    """Dense captioning: every event the model sees, one ``start - end seconds: what``
    line each, in time order (parsed by :func:`vidground.outputs.describe.parse_events`).

    >>> build_describe_prompt(duration=30).user.splitlines()[0]
    'List the events that happen in this video, in time order.'
    """
    lang = resolve_language("", language if language != "auto" else "en")
    if lang == "zh":
        lines = [f"{DESCRIBE_LEAD['zh']}。每个事件写一行，给出开始和结束时间（秒）和一句简短描述，"
                 "格式严格如下：", "12.5 - 18.0 秒：一个人打开门"]
        if duration is not None:
            lines.append(f"视频总长 {duration:.1f} 秒，"
                         f"给出的时间必须在 0 到 {duration:.1f} 秒之间。")
        lines.append("只写这些行，不要写其他内容。"
                     f"如果什么都没有发生，请严格写：答案：{NOT_FOUND_ZH}")
    else:
        lines = [f"{DESCRIBE_LEAD['en']}, in time order.",
                 "Write one line per event with its start and end time in seconds and a short "
                 "description, exactly like:", "12.5 - 18.0 seconds: a man opens the door"]
        if duration is not None:
            lines.append(f"The video is {duration:.1f} seconds long; every time must be between "
                         f"0 and {duration:.1f}.")
        lines.append("Write only these lines. If nothing happens, write exactly: "
                     f"Answer: {NOT_FOUND_EN}")
    return Prompt(system=_system_text(lang), user="\n".join(lines), language=lang)
