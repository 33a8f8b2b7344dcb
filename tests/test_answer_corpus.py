"""Answers real models wrote, read the way a careful reader reads them (issue 20, item 1).

``tests/data/answer_corpus.json`` holds verbatim model outputs from public sources (Qwen3-VL's
and Qwen2.5-VL's cookbook, the Gemini cookbook's video notebook, Time-R1, TimeChat, VTG-LLM,
VideoLLaMA3, videollm-online, StreamingBench, Moment-DETR, lighthouse, vLLM and Qwen3-VL issues),
each with its source, the video's duration when known and the spans a careful reader takes
(none for text that names no answer). Every entry must parse to exactly those spans.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import vidground
from vidground.grounding.answer import ParsedAnswer, parse_answer

CORPUS = Path(__file__).parent / "data" / "answer_corpus.json"
ENTRIES: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))["entries"]
TOLERANCE = 1e-6


def _pairs(spans: tuple[vidground.Span, ...]) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in spans]


def _same(got: list[tuple[float, float]], expected: list[list[float]]) -> bool:
    return len(got) == len(expected) and all(
        abs(a - c) <= TOLERANCE and abs(b - d) <= TOLERANCE
        for (a, b), (c, d) in zip(got, expected, strict=True))


def test_corpus_is_real_and_broad() -> None:
    assert len(ENTRIES) >= 40
    assert len({e["id"] for e in ENTRIES}) == len(ENTRIES)
    for entry in ENTRIES:
        assert entry["text"].strip() and entry["source"].startswith("https://github.com/")
        assert all(0 <= a <= b for a, b in entry["spans"])
    classes = Counter(e["class"] for e in ENTRIES)
    assert len(classes) >= 10, classes
    assert classes["no-span"] >= 5  # text that must give no span is a class of its own


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_real_answer_parses_to_the_careful_reading(entry: dict[str, Any]) -> None:
    parsed = parse_answer(entry["text"], duration=entry["duration"])
    assert isinstance(parsed, ParsedAnswer)
    got = _pairs(parsed.spans)
    assert _same(got, entry["spans"]), f"{entry['source']}\n got {got}\nwant {entry['spans']}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_public_parse_answer_gives_the_same_spans(entry: dict[str, Any]) -> None:
    positional = vidground.parse_answer(entry["text"], entry["duration"])
    assert positional == vidground.parse_answer(entry["text"], duration=entry["duration"])
    assert positional == parse_answer(entry["text"], duration=entry["duration"]).spans


def test_ranked_windows_keep_their_scores() -> None:
    entry = next(e for e in ENTRIES if e["id"] == "moment-detr-pred-2579")
    spans = vidground.parse_answer(entry["text"], 150.0)
    best = max(spans, key=lambda s: s.score or 0.0)
    assert (best.start, best.end, best.score) == (88.0, 150.0, 0.9975)
    assert all(s.score is not None for s in spans)
