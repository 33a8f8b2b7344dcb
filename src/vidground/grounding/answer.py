"""Model text -> time spans: every form Qwen3-VL (and friends) really write.

The prompt (:mod:`vidground.grounding.prompts`) asks for ``Answer: 12.5 - 18.0 seconds`` and a
``Reasoning:`` line, but models drift, so :func:`parse_answer` also reads ``from 12.5s to 18s``,
``between 12.5 and 18 seconds``, ``<12.5 seconds> ... <18.0 seconds>``, clock times
(``1:23`` = 83 s, ``1:02:03`` = 3723 s, ``00:01:23,5``), Chinese (``12.5秒到18秒``,
``第12.5秒至第18秒``, ``从12.5秒开始，到18秒结束``), ``starts at .. and ends at ..``,
JSON (``{"start": 12.5, "end": 18}``, ``{"timestamps": [[12.5, 18.0]]}``, fenced or bare) and
several spans at once.

What other models really write is read too (``tests/data/answer_corpus.json`` holds 40 real
answers with their sources): JSON whose *keys* are times (``{"00:23.00 - 00:48.00": "trim the
fat"}``, Qwen3-VL's event-localisation cookbook; ``{"00:16": "a cougar walks"}``, Gemini),
markdown around times (``1. **0:29 - 0:32**: ...``, ``* **0:00-0:16:** ...``), Time-R1's
``<answer>\n23.50 to 30.00\n</answer>`` (the tags hold the answer; text outside is reasoning),
``relevant_windows`` / ``pred_relevant_windows`` lists (JSON or a printed Python dict, with
scores: the windows keep their ``score``, a start a little below 0 is 0), timecodes cited in
parentheses beside ranges (``(0:00)``, ``(0:09-0:25, 0:41-0:45)``), "at second 5", and
"throughout the entire video" (``0 .. duration``, when the duration is known).

Some text names times that are *not* an answer, and gives no span: a streaming model's clock
prefix (``(Video Time = 1549.0s) Assistant: ...``), chat tokens (``<|im_end|>``), frame labels a
thinking model echoes as it walks through its input (two or more lone ``<5.6秒>``/``<5.6
seconds>`` labels; a single one, or labels forming a range, still count), and a range quoted as an
example (``the example is 37.1秒到52.6秒``).

Left unsupported on purpose (one model's ambiguous convention; a reader needs that model's
prompt to read them): a 0-99 relative grid (``<T_45>``, TimeMarker/percent answers such as
Vidi's ``45%``), indices of 32 (or N) sampled frames written as bare numbers (``frames 12-18``
without fps is dropped, with ``fps`` it is read as video frames), Gemini's ``"00:11:00"``
timecodes that mean mm:ss:ff (read as h:mm:ss: 660 s), and Time-R1's ``<TIME_ONE>``-style
digit tokens.

Rules, in short:

* A number is a time only with time context: a unit (s, sec, seconds, 秒, minutes, 分钟...),
  a clock form (``m:ss``, ``h:mm:ss``), the ``<t seconds>`` tag, a JSON time key, or being one end
  of a range whose other end has such context (``12.5 - 18 seconds``). ``3 people``,
  ``player 23``, ``2024``, ``1080p`` and ``4B model`` are never times. The one exception: an
  answer section that is *only* bare ranges (``Answer: 12.5 - 18.0``), since we asked for seconds.
* A single time with no range anywhere in the answer (``at 12.5 seconds``) becomes a
  **zero-length span** ``Span(12.5, 12.5)``: we never invent an end; refinement can widen it.
  Times that state a length (``lasts 2 seconds``, ``30 seconds long``) are not points.
* ``not_found`` is true when the answer begins with our fixed phrase (``NOT FOUND``/``未找到``),
  or JSON says so (``"found": false``, null times), or a not-found phrase is present and no span
  parses. A negation elsewhere never hides a real span.
* Spans are swapped when reversed, clamped to ``[0, duration]``, dropped when wholly outside,
  exact duplicates merged, and returned in time order.

>>> parse_answer("Answer: 12.5 - 18.0 seconds\\nReasoning: he jumps.").spans
(Span(start=12.5, end=18.0, label=None, score=None, refined=None),)
>>> parse_answer("答案：未找到").not_found
True
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..timecode import Span, parse_timecode

__all__ = ["ParsedAnswer", "parse_answer", "parse_spans", "parse_yes_no", "restate_times"]


@dataclass(frozen=True)
class ParsedAnswer:
    """What a model's text says: spans in time order, the answer and reasoning parts, verdict."""

    spans: tuple[Span, ...]
    answer: str
    reasoning: str | None
    not_found: bool


# --------------------------------------------------------------------------------------------
# Splitting reasoning from the answer
# --------------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>(?P<body>.*?)</think>", re.S | re.I)
_THINK_OPEN = re.compile(r"<think>", re.I)
_THINK_CLOSE = re.compile(r"</think>", re.I)

_ANSWER_LABELS = r"""(?:final\s+answer|answer|response|result|最终答案|答案|回答|结果|结论)"""
_REASONING_LABELS = r"""(?:reasoning|reason|explanation|rationale|justification|analysis
                        |thought\s+process|thoughts?|推理过程|推理|理由|原因|解释|分析|说明|依据)"""

# A section label: at a line start or after sentence punctuation, optionally in markdown
# (``**Answer:**``, ``### Reasoning``, ``- Answer:``), followed by a colon (or a heading's end).
_SECTION = re.compile(
    rf"""
    (?:^|(?<=[\n.。!！?？;；]))            # line start or after a sentence end
    [ \t]*(?:[#>*\-]+[ \t]*)?               # markdown heading / quote / bullet
    (?:\*\*|__)?
    (?:(?P<answer>{_ANSWER_LABELS})|(?P<reasoning>{_REASONING_LABELS}))
    (?:\*\*|__)?
    (?:[ \t]*[:：](?:\*\*|__)?|[ \t]*(?=\n))   # colon, or a bare heading line
    """,
    re.I | re.X | re.M,
)


def _split_think(text: str) -> tuple[str, str | None]:
    """Remove ``<think>..</think>`` blocks (Qwen3 Thinking models); return (rest, think text).

    An unclosed ``<think>`` (output cut off) makes the rest reasoning; a lone ``</think>`` (the
    chat template opened the block) makes everything before it reasoning.
    """
    thoughts = [m["body"].strip() for m in _THINK_BLOCK.finditer(text)]
    rest = _THINK_BLOCK.sub("\n", text)
    close = _THINK_CLOSE.search(rest)
    if close:
        thoughts.insert(0, rest[: close.start()].strip())
        rest = rest[close.end():]
    opened = _THINK_OPEN.search(rest)
    if opened:
        thoughts.append(rest[opened.end():].strip())
        rest = rest[: opened.start()]
    think = "\n\n".join(t for t in thoughts if t)
    return rest, think or None


# Chat-template tokens a raw decode leaves in (``<|im_end|>``), and the stream clock a streaming
# model (videollm-online) prefixes to every turn: ``(Video Time = 1549.0s) Assistant:``. The
# clock says when the model spoke, not when the event happened.
_SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]+\|>")
_STREAM_CLOCK = re.compile(
    r"\(\s*video\s+time\s*=\s*\d+(?:\.\d+)?\s*s?\s*\)\s*(?:(?:assistant|user)\s*:)?", re.I
)
# Time-R1 / TimeZero / VideoChat-R1 write the answer between tags: <answer>23.50 to 30.00</answer>.
_ANSWER_TAG = re.compile(r"<answer>(?P<body>.*?)(?:</answer>|$)", re.S | re.I)


def _strip_markup(text: str) -> str:
    """Remove chat-template tokens and stream-clock prefixes: neither is part of the answer."""
    return _STREAM_CLOCK.sub(" ", _SPECIAL_TOKEN.sub(" ", text))


def _split_answer_tag(text: str) -> tuple[str, str | None] | None:
    """(answer, the text around it) when the answer sits in ``<answer>..</answer>``, else None."""
    tags = list(_ANSWER_TAG.finditer(text))
    if not tags:
        return None
    answer = "\n".join(m["body"].strip() for m in tags)
    rest = _ANSWER_TAG.sub("\n", text).strip()
    return answer, rest or None


def _split_sections(text: str) -> tuple[str, str | None]:
    """Split ``text`` into (answer, reasoning) by ``Answer:``/``Reasoning:``-style labels.

    Text before any label counts as answer unless an explicit ``Answer:`` section exists and the
    leading text has none of its own (then it is preamble and goes to reasoning).
    """
    marks = list(_SECTION.finditer(text))
    if not marks:
        return text.strip(), None
    lead = text[: marks[0].start()].strip()
    answers: list[str] = []
    reasons: list[str] = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end():end].strip()
        (answers if mark["answer"] else reasons).append(body)
    has_answer_label = any(m["answer"] for m in marks)
    if lead:
        if has_answer_label:
            reasons.insert(0, lead)
        else:
            answers.insert(0, lead)
    answer = "\n".join(a for a in answers if a).strip()
    reasoning = "\n\n".join(r for r in reasons if r).strip()
    if not answer and reasoning and not has_answer_label:
        # Only a reasoning label and nothing else: the whole text is all we have as an answer.
        return reasoning, reasoning
    return answer, reasoning or None


# --------------------------------------------------------------------------------------------
# Not-found verdicts
# --------------------------------------------------------------------------------------------

# Our prompt's fixed phrase, at the start of the answer section (after markdown/punctuation).
_FIXED_NOT_FOUND = re.compile(r"^[\s*_`\"'“”「」\[(]*(?:NOT\s+FOUND|未找到)")

# Only consulted when no span parsed, so it may be broad: any plain negation counts.
_NOT_FOUND = re.compile(
    r"""
      \bnot\s+found\b
    | \bno\s+(?:such|matching|relevant|corresponding)\s+\w+
    | \b(?:does|did|do|is|are|was|were|has|have|had)\s*(?:not|n't)\b
    | \b(?:cannot|can't|could\s*not|couldn't|unable\s+to)\s+(?:be\s+)?
        (?:find|found|locate|identif|see)
    | \b(?:never|nobody|nothing)\b | \bno\s+one\b
    | \bthere\s+(?:is|are|was|were)\s+no\b | \bthere's\s+no\b
    | \bno\s+(?:evidence|occurrence|instance|sign)s?\b
    | ^\W*(?:none|no|n/?a)\W*$
    | 未找到 | 没有?找到 | 找不到 | 未能找到 | 无法找到 | 未(?:曾)?出现 | 没有?出现 | 不存在 | 并未
    | 未发生 | 没有?发生 | 未检测到 | 没有检测到 | 无此 | 未见 | 没有 | 从未 | 并没
    """,
    re.I | re.X | re.M,
)


def _says_not_found(text: str) -> bool:
    """True if ``text`` contains a phrase that says the event does not happen."""
    return bool(_NOT_FOUND.search(text))


# --------------------------------------------------------------------------------------------
# Time tokens in text
# --------------------------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+|,\d{1,2}(?!\d))?"  # 12, 12.5, and comma decimals 12,5 (not 1,000)
_SEC_UNIT = r"(?:seconds?|secs?|s|秒钟|秒)"
_MIN_UNIT = r"(?:minutes?|mins?|分钟)"

_TOKEN = re.compile(
    rf"""
    (?<![A-Za-z0-9_.])(?<!\d:)             # not inside a word, number or clock
    (?:
        (?P<clock>\d{{1,3}}:\d{{2}}(?::\d{{2}})?(?:[.,]\d+)?)(?!\d|:\d)  # 1:23, 01:02:03.5
      | (?P<min>\d+)\s*(?:{_MIN_UNIT}|分|m)\s*(?:and\s+)?                # 1 min 23 s, 1分23秒
        (?P<minsec>{_NUM})\s*{_SEC_UNIT}(?![A-Za-z])
      | (?P<num>{_NUM})                                                  # a plain number...
        (?:\s*(?P<unit>{_SEC_UNIT}|{_MIN_UNIT}|帧)(?![A-Za-z])            # ...with a unit
          | (?![A-Za-z0-9_%]))                                           # ...or bare
    )
    """,
    re.X | re.I,
)

# Between two times: the text that makes them one range.
_RANGE_GAP = re.compile(
    r"""
    ^\s*(?:mark)?\s*,?\s*(?:                        # "the 12 second mark to ..."
        [-‐‑‒–—―~〜→]+ | -+> | =+> | \.{2,} | …+      # 12.5 - 18, 12.5–18, -->, ~, ...
      | (?:to|until|till|through|thru|up\s+to)\b        # from 12.5 to 18
      | (?:and\s+)?(?:lasts?|lasting|continu\w*|runs?|running|going|extends?)\s+
            (?:on\s+)?(?:to|until|till)\b               # 12 s and lasts until 18 s
      | (?:开始)?\s*[,，、]?\s*(?:并|然后)?\s*(?:一直)?\s*   # 到, 开始，到, 开始，一直持续到
        (?:持续|延续)?\s*(?:到|至|直到)
      | 起\s*[,，]?\s*(?:至|到)
    )\s*(?:第|the\s+)?(?:frames?\s*(?:\#|no\.?)?)?\s*$   # ... to frame 450
    """,
    re.X | re.I,
)
_AND_GAP = re.compile(r"^\s*(?:and|和|与|跟|及)\s*(?:第)?\s*$", re.I)
_BETWEEN_BEFORE = re.compile(r"(?:between|在)\s*(?:第)?\s*$", re.I)
_BETWEEN_AFTER = re.compile(r"^\s*(?:之间|中间|间)")
_COMMA_GAP = re.compile(r"^\s*,\s*$")

# Start/end words: "starts at 12 s ... ends at 18 s", "开始于12秒，结束于18秒", "start: 1:23".
_START_CUE = re.compile(r"\b(?:start\w*|begin\w*|from|onset|commenc\w*)\b|开始|起始|始于|从", re.I)
_END_CUE = re.compile(
    r"\b(?:end\w*|finish\w*|stop\w*|until|till|conclud\w*|through)\b|结束|终止|截止|止于|到", re.I
)
_START_AFTER = re.compile(r"^\s*(?:开始|起)")
_END_AFTER = re.compile(r"^\s*(?:结束|为止|止|停止)")

# A time that states a length, not a moment: "lasts 2 seconds", "30 seconds long", "持续2秒".
_DURATION_BEFORE = re.compile(
    r"""
    (?:\b(?:lasts?|lasting|lasted|for|takes?|took|(?:duration|length)\s*(?:of|is|was|:)?)
       \s*(?:about|around|roughly|approximately|only|just|of)?\s*
     | 持续了?约? | 时长[:为是]?约? | 长达 | 共 | 总长[:为是]?)\s*$
    """,
    re.I | re.X,
)
# "the first 5 seconds" -> 0..5; "the last 5 seconds" -> end-5..end (needs the duration).
_FIRST_BEFORE = re.compile(r"(?:\b(?:first|opening|initial)\s+|前\s*)$", re.I)
_LAST_BEFORE = re.compile(r"(?:\b(?:last|final|closing)\s+|最后\s*)$", re.I)
_DURATION_AFTER = re.compile(r"^\s*(?:long|in\s+length|in\s+total|长|左右长)", re.I)

_FRAME_BEFORE = re.compile(r"\bframes?\s*(?:#|no\.?|number)?\s*$", re.I)
_TO_END_AFTER = re.compile(
    r"^\s*(?:s|秒)?\s*(?:onwards?|(?:to|until|till|through)\s+the\s+(?:very\s+)?end"
    r"|(?:开始)?[,，]?\s*(?:一直)?(?:持续)?(?:到|至|直到)(?:视频)?(?:的)?(?:结束|结尾|最后|末尾))",
    re.I,
)

# The whole answer is bare ranges: "12.5 - 18.0", "[12.5, 18.0]", "12.5-18; 30-32".
_BARE_RANGE = rf"[\[(]?\s*{_NUM}\s*(?:-|–|—|~|to|,|至|到)\s*{_NUM}\s*[\])]?"
_BARE_ANSWER = re.compile(
    rf"^\s*{_BARE_RANGE}(?:\s*(?:;|,|and|和|、|\n)\s*{_BARE_RANGE})*\s*[.。]?\s*$", re.I
)
_BARE_RANGE_ITEM = re.compile(
    rf"(?P<a>{_NUM})\s*(?:-|–|—|~|to|,|至|到)\s*(?P<b>{_NUM})", re.I
)


_MAX_CONNECTOR = 40  # longest text between the two ends of "12 s ... to ... 18 s"
_MAX_GAP = 100  # longest text between "starts at 12 s" and "ends at 18 s"


@dataclass
class _Token:
    """One number in the text, with whatever makes it a time."""

    value: float
    start: int
    end: int
    timed: bool  # has its own time context (unit, clock, tag)
    scale: float = 1.0  # 60 for minutes; 1/fps for frames
    frames: bool = False


def _number(text: str) -> float:
    """``"12,5"`` or ``"12.5"`` -> 12.5."""
    return float(text.replace(",", "."))


def _token_from_match(m: re.Match[str], text: str) -> _Token | None:
    """Classify one ``_TOKEN`` match; ``None`` if it is not usable."""
    if m["clock"]:
        try:
            value = parse_timecode(m["clock"])
        except ValueError:
            return None
        return _Token(value, m.start(), m.end(), timed=True)
    if m["min"]:
        value = int(m["min"]) * 60 + _number(m["minsec"])
        return _Token(value, m.start(), m.end(), timed=True)
    unit = (m["unit"] or "").lower()
    value = _number(m["num"])
    if unit == "帧" or (not unit and _FRAME_BEFORE.search(text[max(0, m.start() - 12):m.start()])):
        return _Token(value, m.start(), m.end(), timed=True, frames=True)
    if unit.startswith("min") or unit == "分钟":
        return _Token(value, m.start(), m.end(), timed=True, scale=60.0)
    return _Token(value, m.start(), m.end(), timed=bool(unit))


# Qwen3-VL's frame labels, <12.5 seconds> (and <12.5秒> in Chinese).
_FRAME_LABEL = re.compile(r"<\s*(\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s|秒)\s*>", re.I)
# "at second 5", "from second 3 to second 7": the unit written before the number.
_SECOND_FIRST = re.compile(
    r"\b(at|from|to|until|till|around|about|by|in|between|and)\s+(?:the\s+)?second\s+"
    r"(\d+(?:\.\d+)?)(?![\d:]|\.\d)", re.I)


def _normalize_labelled(text: str) -> tuple[str, frozenset[int]]:
    """Make text easier to scan (full-width forms folded, markdown emphasis removed, frame labels
    and "at second 5" rewritten as ``12.5 seconds``); also where each frame label's number starts.
    """
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[*`]", "", text)
    text = _SECOND_FIRST.sub(r"\1 \2 seconds", text)
    pieces: list[str] = []
    labels: set[int] = set()
    pos = length = 0
    for m in _FRAME_LABEL.finditer(text):
        pieces.append(text[pos:m.start()] + " ")
        length += m.start() - pos + 1
        labels.add(length)
        replacement = f"{m[1]} seconds "
        pieces.append(replacement)
        length += len(replacement)
        pos = m.end()
    pieces.append(text[pos:])
    return "".join(pieces), frozenset(labels)


def _normalize(text: str) -> str:
    """:func:`_normalize_labelled`'s text alone."""
    return _normalize_labelled(text)[0]


def _tokens(text: str) -> list[_Token]:
    """All numbers in ``text`` that could be times, in order."""
    out = []
    for m in _TOKEN.finditer(text):
        tok = _token_from_match(m, text)
        if tok is not None:
            out.append(tok)
    return out


def _seconds(tok: _Token, fps: float | None, scale: float | None = None) -> float | None:
    """A token's value in seconds (frames need ``fps``); ``scale`` overrides the token's own."""
    if tok.frames:
        return tok.value / fps if fps else None
    return tok.value * (scale if scale is not None else tok.scale)


def _is_range(text: str, a: _Token, b: _Token, prev_end: int) -> bool:
    """Do tokens ``a`` and ``b`` (neighbours) form one range?"""
    gap = text[a.end:b.start]
    if len(gap) > _MAX_GAP:
        return False
    before = text[max(prev_end, a.start - 40):a.start]
    after = text[b.end:b.end + 12]
    if len(gap) <= _MAX_CONNECTOR and _RANGE_GAP.match(gap):
        return True
    if _AND_GAP.match(gap) and (_BETWEEN_BEFORE.search(before) or _BETWEEN_AFTER.match(after)):
        return True
    if _COMMA_GAP.match(gap) and before.rstrip().endswith(("[", "(")) \
            and after.lstrip().startswith(("]", ")")):
        return True
    if not (a.timed or b.timed):
        return False
    start_cue = _START_CUE.search(before) or _START_AFTER.match(gap)
    end_cue = _END_CUE.search(gap) or _END_AFTER.match(after)
    return bool(start_cue and end_cue)


def _has_context(text: str, a: _Token, b: _Token) -> bool:
    """A range is a time range if either end is timed or a unit follows ``]``/``)``."""
    if a.timed or b.timed:
        return True
    return bool(re.match(rf"^\s*[\])]\s*{_SEC_UNIT}(?![A-Za-z])", text[b.end:b.end + 16], re.I))


def _is_length(text: str, tok: _Token, prev_end: int) -> bool:
    """Does this time state a length (``lasts 2 s``, ``30 seconds long``) rather than a moment?"""
    before = text[max(prev_end, tok.start - 30):tok.start]
    return bool(_DURATION_BEFORE.search(before)
                or _DURATION_AFTER.match(text[tok.end:tok.end + 20]))


@dataclass
class _Found:
    """Spans found in one piece of text (as raw pairs), and what else it said."""

    ranges: list[tuple[float, float]] = field(default_factory=list)
    points: list[float] = field(default_factory=list)
    not_found: bool = False
    answer: str | None = None
    reasoning: str | None = None
    scores: dict[tuple[float, float], float] = field(default_factory=dict)  # ranked windows

    def extend(self, other: _Found) -> None:
        self.ranges += other.ranges
        self.points += other.points
        for pair, score in other.scores.items():
            self.scores[pair] = max(score, self.scores.get(pair, score))
        self.not_found = self.not_found or other.not_found
        self.answer = self.answer or other.answer
        self.reasoning = self.reasoning or other.reasoning


@dataclass(frozen=True)
class _Mention:
    """Where the text names a time: ``first`` .. ``last`` token, and what it means in seconds.

    ``kind``: ``range`` (two tokens), ``point`` (one time) or ``derived`` (one token standing
    for a range: "the first 5 seconds", "from 12 s to the end")."""

    first: _Token
    last: _Token
    kind: str
    pair: tuple[float, float]


def _mentions(text: str, *, fps: float | None, duration: float | None) -> list[_Mention]:
    """Every time the (normalised) prose names, in order: ranges and single times."""
    out: list[_Mention] = []
    toks = _tokens(text)
    i, prev_end = 0, 0
    while i < len(toks):
        a = toks[i]
        b = toks[i + 1] if i + 1 < len(toks) else None
        if b is not None and _is_range(text, a, b, prev_end) and _has_context(text, a, b):
            if not _is_length(text, a, prev_end):
                pair = _range_seconds(a, b, fps)
                if pair is not None:
                    out.append(_Mention(a, b, "range", pair))
            prev_end = b.end
            i += 2
            continue
        if a.timed:
            single = _single(text, a, prev_end, fps=fps, duration=duration)
            if single is not None:
                out.append(single)
        prev_end = a.end
        i += 1
    return out


# "the example is 37.1 s to 52.6 s", "格式示例：..." : the prompt's own example, quoted back.
_EXAMPLE_BEFORE = re.compile(
    r"(?:\bexamples?\b|\be\.g\.|示例|例如|例子|样例|举例)[^\n]{0,40}$", re.I)
_CITED_BEFORE = re.compile(r"\(\s*$")
_CITED_AFTER = re.compile(r"^\s*\)")


def _scan_text(text: str, *, fps: float | None, duration: float | None) -> _Found:
    """Ranges and single times in prose (no JSON).

    Frame labels the model echoes (``<5.6秒>：...`` twice or more, as a thinking model walks
    through its input) are not points; a range quoted as an example is not a range; a timecode
    cited in parentheses, ``(0:00)``, counts beside ranges (a summary's timecodes).
    """
    found = _Found()
    norm, labels = _normalize_labelled(text)
    mentions = _mentions(norm, fps=fps, duration=duration)
    echoed = sum(m.kind == "point" and m.first.start in labels for m in mentions) >= 2
    prev_end = 0
    for mention in mentions:
        first = mention.first
        before, prev_end = norm[max(prev_end, first.start - 60):first.start], mention.last.end
        if mention.kind == "point":
            if echoed and first.start in labels:
                continue
            if _is_cited(norm, first, before):
                found.ranges.append(mention.pair)
            else:
                found.points.append(mention.pair[0])
        elif not _EXAMPLE_BEFORE.search(before):
            found.ranges.append(mention.pair)
    return found


def _is_cited(norm: str, tok: _Token, before: str) -> bool:
    """Is this clock time cited in parentheses, ``(0:00)``?"""
    return (":" in norm[tok.start:tok.end] and bool(_CITED_BEFORE.search(before[-3:]))
            and bool(_CITED_AFTER.match(norm[tok.end:tok.end + 3])))


def _single(text: str, tok: _Token, prev_end: int, *, fps: float | None,
            duration: float | None) -> _Mention | None:
    """One time on its own: a point, or a range when it says "first/last N s" or "to the end";
    None for a length or a frame number without ``fps``."""
    t = _seconds(tok, fps)
    if t is None:
        return None
    before = text[max(prev_end, tok.start - 12):tok.start]
    if _FIRST_BEFORE.search(before):
        return _Mention(tok, tok, "derived", (0.0, t))
    if _LAST_BEFORE.search(before):
        if duration is None:
            return None
        return _Mention(tok, tok, "derived", (max(0.0, duration - t), duration))
    if _is_length(text, tok, prev_end):
        return None
    if duration is not None and _TO_END_AFTER.match(text[tok.end:tok.end + 40]):
        return _Mention(tok, tok, "derived", (t, duration))
    return _Mention(tok, tok, "point", (t, t))


def _range_seconds(a: _Token, b: _Token, fps: float | None) -> tuple[float, float] | None:
    """Seconds of a range; a bare end borrows the other end's unit (``1 - 2 minutes``)."""
    scale_a = a.scale if a.timed else b.scale
    scale_b = b.scale if b.timed else a.scale
    if a.frames or b.frames:
        if not fps:
            return None
        return a.value / fps, b.value / fps
    return a.value * scale_a, b.value * scale_b


def _scan_bare_answer(text: str) -> _Found:
    """An answer that is nothing but bare ranges (``12.5 - 18.0``): we asked for seconds."""
    found = _Found()
    clean = _normalize(text)
    if len(clean) <= 400 and _BARE_ANSWER.match(clean):
        for m in _BARE_RANGE_ITEM.finditer(clean):
            found.ranges.append((_number(m["a"]), _number(m["b"])))
    return found


# --------------------------------------------------------------------------------------------
# JSON answers
# --------------------------------------------------------------------------------------------

_MAX_JSON_ATTEMPTS = 64  # brackets tried as JSON starts per text (bounds the time on junk)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|python)?[ \t]*\n?(?P<body>.*?)```", re.S)


def _key(name: str) -> str:
    """Normalise a JSON key: ``"Start Time"`` -> ``"starttime"``."""
    return re.sub(r"[\s_\-]", "", str(name)).lower()


_START_KEYS = {"start", "starttime", "begin", "begintime", "from", "startsec", "startseconds",
               "starttimestamp", "startsecond", "starts", "开始", "开始时间", "起始时间", "起始"}
_END_KEYS = {"end", "endtime", "stop", "to", "endsec", "endseconds", "endtimestamp",
             "endsecond", "ends", "finish", "结束", "结束时间", "终止时间", "终止"}
_TIME_KEYS = {"timestamps", "timestamp", "time", "times", "timerange", "range", "span", "spans",
              "segment", "segments", "interval", "intervals", "window", "windows", "moments",
              "moment", "occurrences", "occurrence", "events", "event", "results", "result",
              "answer", "timecode", "timecodes", "relevantwindows", "predrelevantwindows",
              "时间", "时间段", "时间戳", "片段"}
_REASONING_KEYS = {"reasoning", "reason", "explanation", "rationale", "thought", "thoughts",
                   "analysis", "推理", "理由", "原因", "解释", "分析"}
_ANSWER_KEYS = {"answer", "response", "description", "summary", "回答", "答案"}
_FOUND_KEYS = {"found", "exists", "present", "occurs", "happened", "detected", "是否出现"}
#: keys whose empty list says the event was not found (the structured answer's schema, lists)
_SPAN_LIST_KEYS = {"spans", "segments", "intervals", "windows", "moments", "occurrences",
                   "relevantwindows", "predrelevantwindows", "timestamps"}


def _json_time(value: Any, fps: float | None) -> float | None:
    """A JSON time value (number, ``"12.5"``, ``"12.5s"``, ``"00:00:12.5"``) in seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        text = re.sub(r"\s*(?:seconds?|secs?|秒)$", "", text, flags=re.I)
        try:
            return parse_timecode(text.replace(",", ".") if ":" not in text else text, fps=fps)
        except ValueError:
            return None
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def _window(value: Any, fps: float | None) -> tuple[float, float, float | None] | None:
    """``[12.5, 18]``, ``["00:12", "00:18"]`` or a ranked window ``[12.5, 18, 0.93]`` (Moment-DETR,
    lighthouse: start, end, score) -> (start, end, score); a start a little below 0 (a regression
    head's overshoot) is 0."""
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        return None
    if not all(_is_scalar(v) for v in value):
        return None
    score = None
    if len(value) == 3:
        score = value[2]
        if isinstance(score, str) or not 0.0 <= score <= 1.0:
            return None
    a, b = (_window_time(v, fps) for v in value[:2])
    if a is None or b is None:
        return None
    return a, b, score


def _window_time(value: Any, fps: float | None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return 0.0
    return _json_time(value, fps)


def _add_window(found: _Found, window: tuple[float, float, float | None]) -> None:
    a, b, score = window
    if max(a, b) <= 0.0 and score is not None:
        return  # a window wholly before the video
    found.ranges.append((a, b))
    if score is not None:
        found.scores[(a, b)] = max(score, found.scores.get((a, b), score))


def _from_json(obj: Any, *, timed: bool, fps: float | None, duration: float | None) -> _Found:
    """Spans in a decoded JSON value; ``timed`` says the value sits under a time key."""
    found = _Found()
    if isinstance(obj, dict):
        found.extend(_from_json_dict(obj, fps=fps, duration=duration))
    elif isinstance(obj, (list, tuple)):
        if timed and (window := _window(obj, fps)) is not None:
            _add_window(found, window)
            return found
        for item in obj:
            found.extend(_from_json(item, timed=timed, fps=fps, duration=duration))
    elif isinstance(obj, str):
        found.extend(_scan_text(obj, fps=fps, duration=duration))
        if timed and not (found.ranges or found.points):
            found.extend(_scan_bare_answer(obj))
            if not found.ranges and (t := _json_time(obj, fps)) is not None:
                found.points.append(t)
    elif timed and (t := _json_time(obj, fps)) is not None:
        found.points.append(t)
    return found


def _from_json_dict(obj: dict[Any, Any], *, fps: float | None, duration: float | None
                    ) -> _Found:
    """Spans in one JSON object: start/end keys, time keys holding pairs, nested values."""
    found = _Found()
    keys = {_key(k): k for k in obj}
    start_key = next((keys[k] for k in keys if k in _START_KEYS), None)
    end_key = next((keys[k] for k in keys if k in _END_KEYS), None)
    for norm, key in keys.items():
        value = obj[key]
        if norm in _FOUND_KEYS and value is False or norm in _SPAN_LIST_KEYS and value == []:
            found.not_found = True
        elif norm in _REASONING_KEYS and isinstance(value, str):
            found.reasoning = value.strip()
        elif norm in _ANSWER_KEYS and isinstance(value, str):
            found.answer = value.strip()
    if start_key is not None and end_key is not None:
        a, b = _json_time(obj[start_key], fps), _json_time(obj[end_key], fps)
        if a is not None and b is not None:
            found.ranges.append((a, b))
        elif obj[start_key] is None and obj[end_key] is None:
            found.not_found = True
    for key in obj:
        found.extend(_key_times(key, fps=fps, duration=duration))
    for norm, key in keys.items():
        if key in (start_key, end_key) or norm in _REASONING_KEYS or norm in _FOUND_KEYS:
            continue
        value = obj[key]
        if isinstance(value, (dict, list, tuple)) or norm in _TIME_KEYS:
            found.extend(_from_json(value, timed=norm in _TIME_KEYS, fps=fps,
                                    duration=duration))
        elif isinstance(value, str) and norm not in _ANSWER_KEYS:
            found.extend(_scan_text(value, fps=fps, duration=duration))
    return found


def _key_times(key: Any, *, fps: float | None, duration: float | None) -> _Found:
    """A key that is itself a time or a range: ``{"00:23.00 - 00:48.00": "trim the fat"}`` (the
    event list of Qwen3-VL's cookbook), ``{"00:16": "a cougar walks"}`` (Gemini)."""
    if not isinstance(key, str) or not _TIME_KEY_TEXT.match(key):
        return _Found()
    found = _scan_text(key, fps=fps, duration=duration)
    if not (found.ranges or found.points):
        found.extend(_scan_bare_answer(key))
    return found


# A key that is nothing but times: "00:16", "00:23.00 - 00:48.00", "12.5s-18s", "3.0 - 4.5".
_TIME_KEY_TEXT = re.compile(r"^[\s\d:.,\-–—~sto秒至到]+$", re.I)


def _decode_at(text: str, pos: int) -> tuple[Any, int] | None:
    """Decode JSON (or a Python literal with single quotes) starting at ``pos``."""
    try:
        return json.JSONDecoder().raw_decode(text, pos)
    except (ValueError, RecursionError):
        pass
    end = _balanced_end(text, pos)
    if end is None:
        return None
    try:
        return ast.literal_eval(text[pos:end]), end
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _balanced_end(text: str, pos: int) -> int | None:
    """Index after the bracket that closes the one at ``pos`` (ignores brackets in strings)."""
    depth, quote = 0, ""
    for i in range(pos, min(len(text), pos + 5_000)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


# A list printed after words that say it holds windows: "Predicted moments ([start_in_seconds,
# end_in_seconds, score]): [[49.97, 64.91, 0.94], ...]".
_WINDOWS_BEFORE = re.compile(
    r"\b(?:windows?|moments?|segments?|spans?|intervals?|timestamps?)\b[^\n]{0,60}$", re.I)


def _windows_list(value: Any, *, fps: float | None) -> _Found:
    """The windows of a list of ``[start, end]`` / ``[start, end, score]`` items (``...`` in a
    printed list is skipped); nothing if any other item is there."""
    found = _Found()
    if not isinstance(value, list):
        return found
    items = [item for item in value if item is not Ellipsis]
    windows = [w for w in (_window(item, fps) for item in items) if w is not None]
    if windows and len(windows) == len(items):
        for window in windows:
            _add_window(found, window)
    return found


def _scan_json(text: str, *, fps: float | None, duration: float | None
               ) -> tuple[_Found, str]:
    """JSON values in ``text`` (fenced or bare): what they say, and the text without them."""
    found = _Found()
    text = _FENCE.sub(lambda m: "\n" + m["body"] + "\n", text)
    whole = text.strip()
    kept: list[str] = []
    pos = 0
    i = 0
    attempts = 0
    while i < len(text) and attempts < _MAX_JSON_ATTEMPTS:
        if text[i] not in "[{":
            i += 1
            continue
        attempts += 1
        decoded = _decode_at(text, i)
        if decoded is None or not isinstance(decoded[0], (dict, list)):
            i += 1
            continue
        value, end = decoded
        alone = text[i:end].strip() == whole
        try:
            part = _from_json(value, timed=alone or isinstance(value, dict), fps=fps,
                              duration=duration)
            if not (part.ranges or part.points) and _WINDOWS_BEFORE.search(text[max(0, i - 80):i]):
                part.extend(_windows_list(value, fps=fps))
        except RecursionError:  # absurdly deep nesting: not an answer
            i = end
            continue
        if isinstance(value, dict) or part.ranges or part.points or part.not_found:
            found.extend(part)
            kept.append(text[pos:i])
            kept.append(" ; ")
            pos = end
        i = end
    kept.append(text[pos:])
    return found, "".join(kept)


# --------------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------------


def _extract(text: str, *, fps: float | None, duration: float | None,
             allow_bare: bool) -> _Found:
    """Everything ``text`` says: JSON first, then prose, then (answers only) bare ranges."""
    found, rest = _scan_json(text, fps=fps, duration=duration)
    found.extend(_scan_text(rest, fps=fps, duration=duration))
    if allow_bare and not found.ranges and not found.points:
        found.extend(_scan_bare_answer(rest))
    return found


def _finish(found: _Found, duration: float | None) -> tuple[Span, ...]:
    """Ranges (or, with no range, points) -> ordered, clamped, de-duplicated spans."""
    pairs = found.ranges or [(t, t) for t in found.points]
    spans: dict[tuple[float, float], float | None] = {}
    for a, b in pairs:
        start, end = (a, b) if a <= b else (b, a)
        if duration is not None:
            if start > duration or (start == duration and end > start):
                continue
            start, end = min(start, duration), min(end, duration)
        key = (round(start, 6), round(end, 6))
        spans[key] = _better(spans.get(key), found.scores.get((a, b)))
    return tuple(Span(s, e, score=spans[(s, e)]) for s, e in sorted(spans))


def _better(score: float | None, other: float | None) -> float | None:
    """The higher of two window scores, either of which may be missing."""
    if score is None or other is None:
        return other if score is None else score
    return max(score, other)


# "Throughout the entire video." -- the whole video is the answer (needs the duration).
_WHOLE_VIDEO = re.compile(
    r"""\b(?:throughout|during|for|across|over|in)\s+the\s+(?:entire|whole|full)\s+
          (?:video|clip|footage)\b
      | \bthroughout\s+the\s+(?:video|clip|footage)\b
      | ^\W*(?:the\s+)?(?:entire|whole|full)\s+(?:video|clip)\W*$
      | 整个视频 | 整段视频 | 视频全程 | 全程""",
    re.I | re.M | re.X,
)


def parse_answer(text: str, duration: float | None = None,
                 fps: float | None = None) -> ParsedAnswer:
    """Turn a model's answer into spans, the answer text, the reasoning and a not-found verdict.

    ``duration`` (seconds) clamps spans and drops those wholly past the end, and lets "throughout
    the entire video" be ``0 .. duration``; ``fps`` lets frame numbers (``frame 300``,
    ``第300帧``) count as times. See the module docstring for the rules.

    >>> parse_answer("The dunk happens from 1:23 to 1:45.5.").spans[0]
    Span(start=83.0, end=105.5, label=None, score=None, ...)
    >>> parse_answer("There are 3 players and the score is 23-21.").spans
    ()
    """
    body, think = _split_think(_strip_markup(text or ""))
    answer_text, reasoning_text = _split_answer_tag(body) or _split_sections(body)
    found = _extract(answer_text, fps=fps, duration=duration, allow_bare=True)
    answer = found.answer or answer_text
    reasoning_parts = [think, reasoning_text, found.reasoning]

    if _FIXED_NOT_FOUND.match(answer_text) or _FIXED_NOT_FOUND.match(answer):
        spans: tuple[Span, ...] = ()
        not_found = True
    else:
        spans = _finish(found, duration)
        not_found = False
        if not found.ranges and not found.points:
            not_found = found.not_found or _says_not_found(answer_text)
            if not not_found and reasoning_text:
                # The answer line had no time: use the reasoning section (never <think>).
                backup = _extract(reasoning_text, fps=fps, duration=duration, allow_bare=False)
                spans = _finish(backup, duration)
                not_found = not spans and (backup.not_found or _says_not_found(reasoning_text))
            if not spans and not not_found and duration and _WHOLE_VIDEO.search(answer_text):
                spans = (Span(0.0, float(duration)),)
    reasoning = "\n\n".join(p for p in reasoning_parts if p) or None
    return ParsedAnswer(spans=spans, answer=answer.strip(), reasoning=reasoning,
                        not_found=not_found)


def parse_spans(text: str, duration: float | None = None,
                fps: float | None = None) -> tuple[Span, ...]:
    """The spans (seconds, in time order) a model's answer names, read as vidground reads its own
    model's answers: the public ``vidground.parse_answer``. Use :func:`parse_answer` for the
    answer text, the reasoning and the not-found verdict too.

    >>> parse_spans('{"00:23.00 - 00:48.00": "trim the fat off a piece of beef."}')
    (Span(start=23.0, end=48.0, label=None, score=None, refined=None),)
    >>> parse_spans("Throughout the entire video.", 30.0)[0].end
    30.0
    """
    return parse_answer(text, duration, fps).spans


# --------------------------------------------------------------------------------------------
# Restating the final times in the model's own sentence
# --------------------------------------------------------------------------------------------

_TAG = re.compile(r"<\s*(\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s)\s*>", re.I)
_SECONDS_UNIT = re.compile(rf"^{_SEC_UNIT}$", re.I)


def _normalize_mapped(text: str) -> tuple[str, list[int], list[int]]:
    """:func:`_normalize`, keeping for every character of the result the range of original
    characters it came from (``starts[i]``, ``ends[i]``)."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch):
            if out in "*`":
                continue
            chars.append(out)
            starts.append(i)
            ends.append(i + 1)
    norm = "".join(chars)
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    pos = 0
    for m in _TAG.finditer(norm):
        pieces.append(norm[pos:m.start()])
        new_starts += starts[pos:m.start()]
        new_ends += ends[pos:m.start()]
        replacement = f" {m[1]} seconds "
        pieces.append(replacement)
        new_starts += [starts[m.start()]] * len(replacement)
        new_ends += [ends[m.end() - 1]] * len(replacement)
        pos = m.end()
    pieces.append(norm[pos:])
    new_starts += starts[pos:]
    new_ends += ends[pos:]
    return "".join(pieces), new_starts, new_ends


def _gap(pair: tuple[float, float], span: Span) -> float:
    """0 when ``pair`` and ``span`` overlap or touch, else the seconds between them."""
    return max(0.0, span.start - pair[1], pair[0] - span.end)


def _closest(pair: tuple[float, float], spans: tuple[Span, ...], tolerance: float) -> int | None:
    """Index of the span ``pair`` most overlaps (or lies nearest), within ``tolerance`` s."""
    lo, hi = sorted(pair)
    best = min(range(len(spans)),
               key=lambda k: (_gap(pair, spans[k]), -spans[k].intersection(Span(lo, hi))))
    return best if _gap(pair, spans[best]) <= tolerance else None


def restate_times(text: str, spans: tuple[Span, ...] | list[Span], output_format: str, *,
                  fps: float | None = None, duration: float | None = None,
                  language: str = "en", tolerance: float = 1.0,
                  mark_exclusive_end: bool = False) -> str | None:
    """``text`` (a model's answer) with every time it names replaced by the matching final
    span's time, written in ``output_format``; ``None`` when that cannot be done honestly.
    ``mark_exclusive_end``: in ``frames``, each end frame (the first frame after the event,
    spans being half-open) is followed by :func:`exclusive_end_note`.

    Each range the text names must match a different span of ``spans`` (overlapping it, or
    within ``tolerance`` seconds), and every span must be named; a single time becomes the
    span's nearer boundary (or the whole span, written ``start - end``, when the text names no
    range). ``None`` for JSON answers, for "the first 5 seconds"-style phrases, for text that
    names no time or times that match no span: the caller then writes the times itself.

    >>> restate_times("The dog jumps from 5.2 to 7.7 seconds.", [Span(5.0, 8.033)], "HH:MM:SS.sss")
    'The dog jumps from 00:00:05.000 to 00:00:08.033.'
    >>> restate_times("狗在5.2秒到7.7秒之间跳起。", [Span(5.0, 8.033)], "seconds", language="zh")
    '狗在5.000秒到8.033秒之间跳起。'
    """
    from ..timecode import format_time

    spans = tuple(spans)
    if not spans or not text.strip():
        return None
    in_json, _ = _scan_json(text, fps=fps, duration=duration)
    if in_json.ranges or in_json.points or in_json.not_found or in_json.answer:
        return None
    norm, starts, ends = _normalize_mapped(text)
    mentions = _mentions(norm, fps=fps, duration=duration)
    if not mentions and len(norm) <= 400 and _BARE_ANSWER.match(norm):
        mentions = [_Mention(_Token(_number(m["a"]), m.start("a"), m.end("a"), False),
                             _Token(_number(m["b"]), m.start("b"), m.end("b"), False),
                             "range", (_number(m["a"]), _number(m["b"])))
                    for m in _BARE_RANGE_ITEM.finditer(norm)]
    if not mentions or any(m.kind == "derived" for m in mentions):
        return None
    matched = [_closest(m.pair, spans, tolerance) for m in mentions]
    if any(k is None for k in matched):
        return None
    ranges = [k for m, k in zip(mentions, matched, strict=True) if m.kind == "range"]
    named = set(ranges) if ranges else set(matched)
    if len(ranges) != len(set(ranges)) or named != set(range(len(spans))):
        return None

    def write(seconds: float, tok: _Token, end: bool = False) -> str:
        original = text[starts[tok.start]:ends[tok.end - 1]]
        if output_format == "frames":
            frame = format_time(seconds, "frames", fps=fps)
            note = exclusive_end_note(language) if end and mark_exclusive_end else ""
            if language == "zh":
                lead = "" if text[:starts[tok.start]].endswith("第") else "第"
                return f"{lead}{frame}帧{note}"
            return f"frame {frame}{note}"
        value = format_time(seconds, output_format, fps=fps)
        if output_format != "seconds":
            return value
        number = re.search(r"\d+(?:[.,]\d+)?", original)
        unit = norm[tok.start:tok.end][len(number[0]) if number else 0:].strip() if tok.timed \
            else ""
        if number and tok.timed and not tok.frames and tok.scale == 1.0 and \
                _SECONDS_UNIT.match(unit) and ":" not in original and "<" not in original:
            return original[:number.start()] + value + original[number.end():]
        if not tok.timed:
            return value
        return f"{value}秒" if language == "zh" else f"{value} seconds"

    edits: list[tuple[int, int, str]] = []
    for mention, k in zip(mentions, matched, strict=True):
        span = spans[k]  # type: ignore[index]
        if mention.kind == "range":
            start_tok, end_tok = mention.first, mention.last
            if mention.pair[0] > mention.pair[1]:
                start_tok, end_tok = end_tok, start_tok
            edits.append((start_tok.start, start_tok.end, write(span.start, start_tok)))
            edits.append((end_tok.start, end_tok.end, write(span.end, end_tok, end=True)))
        elif not ranges and span.duration > 0:
            tok = mention.first
            edits.append((tok.start, tok.end,
                          f"{write(span.start, tok)} - {write(span.end, tok, end=True)}"))
        else:
            t = mention.pair[0]
            at_end = abs(t - span.start) > abs(t - span.end)
            edits.append((mention.first.start, mention.first.end,
                          write(span.end if at_end else span.start, mention.first, end=at_end)))
    out = text
    for n_start, n_end, replacement in sorted(edits, reverse=True):
        out = out[:starts[n_start]] + replacement + out[ends[n_end - 1]:]
    return out


def exclusive_end_note(language: str = "en") -> str:
    """What follows an end frame number: spans are half-open, so the end frame is the first
    frame after the event (the event's last frame is the one before it)."""
    return "（不含该帧）" if language == "zh" else " (end exclusive)"


# --------------------------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------------------------

_YES = re.compile(r"^(?:(?:yes|yeah|yep|true|correct|affirmative)\b|是|对|有|正在|存在|发生)", re.I)
_NO = re.compile(r"^(?:(?:no|nope|not|false|incorrect|negative)\b|否|不|没|未)", re.I)
_YES_ANYWHERE = re.compile(r"\b(?:yes)\b|(?:答案|回答)[:：]\s*是", re.I)
_NO_ANYWHERE = re.compile(r"\b(?:no)\b|(?:答案|回答)[:：]\s*(?:否|不)", re.I)


def parse_yes_no(text: str) -> bool | None:
    """``True`` for a yes, ``False`` for a no, ``None`` when the text says neither clearly.

    Looks at the first word after any ``<think>`` block and ``Answer:`` label, then, if that is
    not a verdict, at a lone ``yes``/``no`` word elsewhere (only if exactly one kind appears).

    >>> parse_yes_no("Yes, the dog is jumping."), parse_yes_no("否。"), parse_yes_no("Maybe.")
    (True, False, None)
    """
    body, _ = _split_think(text or "")
    answer, _ = _split_sections(body)
    head = re.sub(r"^[\s*_`\"'“”「」\[(>#-]+", "", unicodedata.normalize("NFKC", answer))
    if _NO.match(head) and not re.match(r"^not\s+only\b", head, re.I):
        return False
    if _YES.match(head):
        return True
    yes, no = bool(_YES_ANYWHERE.search(answer)), bool(_NO_ANYWHERE.search(answer))
    if yes != no:
        return yes
    return None
