""""What happens when?" without a question: the model lists the events it sees, each with a
start and end time (dense captioning, as Qwen3-VL's cookbook does), window by window for long
videos; the windows' lists are merged, each event's boundaries refined like any span, and the
result is a :class:`Description` of labelled spans that every exporter takes.

>>> from vidground import Grounder
>>> d = describe(Grounder(), "lecture.mp4")  # doctest: +SKIP
>>> [(e.start, e.end, e.label) for e in d.events][:1]  # doctest: +SKIP
[(0.0, 42.5, 'the speaker introduces the topic')]
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..grounding.answer import parse_answer
from ..grounding.prompts import build_describe_prompt
from ..grounding.refine import CallCounter, Refiner, RefineSettings
from ..options import LocateOptions
from ..progress import ProgressCallback, ProgressEvent, ignore_progress
from ..timecode import Span, format_time, parse_timecode
from ..video.decode import decode_frames
from ..video.probe import VideoInfo, probe
from .results import Result

if TYPE_CHECKING:
    from ..grounding import Grounder

#: Two events from overlapping windows are one when their times overlap (or nearly touch) and
#: their descriptions are at least this similar.
SAME_LABEL_RATIO = 0.6  # share of content words in common
MAX_LABEL_CHARS = 200
#: Events whose boundaries are refined (each with up to ``max_refine_calls`` extra calls).
MAX_REFINED_EVENTS = 32

_JSON_START = re.compile(r"[\[{]")
_BULLET = re.compile(r"^\s*(?:[-*•·]+(?=\s)|\d{1,3}(?:[.](?=\s)|[)、])|#+)\s*")
_SPLIT = re.compile(r"\s*(?:[:：]|\s[-–—]\s|[,，]\s?|\)\s*)\s*")
_START_KEYS = ("start", "start_time", "begin", "from", "start_s", "开始", "开始时间")
_END_KEYS = ("end", "end_time", "to", "finish", "end_s", "结束", "结束时间")
_TEXT_KEYS = ("description", "event", "caption", "label", "text", "sentence", "activity",
              "描述", "事件")


@dataclass(frozen=True)
class Description:
    """The events of a whole video, in time order, each a :class:`Span` with its label."""

    events: tuple[Span, ...]
    video: VideoInfo
    model: str
    raw_answer: str = ""
    timings: dict[str, float | int] = field(default_factory=dict)
    frame_times: tuple[float, ...] = ()

    def to_result(self) -> Result:
        return Result(spans=self.events, fps=self.video.fps, duration=self.video.duration,
                      query=None, video=self.video.path, model=self.model,
                      answer=self.summary())

    def summary(self) -> str:
        return "\n".join(f"{format_time(e.start)} - {format_time(e.end)}  {e.label}"
                         for e in self.events) or "No events were found in the video."

    def to_response(self, output_format: str = "HH:MM:SS.sss") -> dict[str, Any]:
        """The inference response's shape (``segments`` carry the labels), so the exporters,
        ``vidground export`` and the page read it like any result."""
        fmt: Any = output_format
        first = self.events[0] if self.events else None
        return {
            "kind": "describe",
            "response": self.summary(),
            "timestamp_range": ([format_time(first.start, fmt, fps=self.video.fps),
                                 format_time(first.end, fmt, fps=self.video.fps)]
                                if first else None),
            "reasoning": None,
            "segments": [e.to_dict(fmt, fps=self.video.fps) for e in self.events],
            "video": self.video.summary(),
            "model": self.model,
            "timings": dict(self.timings),
            "motion": None,
        }


def describe(grounder: Grounder, video: str | Path | VideoInfo,
             options: LocateOptions | None = None, *,
             progress: ProgressCallback | None = None) -> Description:
    """List the events of ``video`` (a path, or the :class:`VideoInfo` of a video already
    probed) with the grounder's model (see the module docstring).

    ``options`` are the locate options that apply: ``frame_sampling_rate``, ``max_frames``,
    ``max_windows``, ``max_context_length``, ``language``, ``max_new_tokens`` (default 1024 here,
    a list is longer than one answer), and ``refine`` with up to ``max_refine_calls`` extra
    calls per event (the first ``MAX_REFINED_EVENTS`` events)."""
    from ..grounding import plan_sampling

    opts = options or LocateOptions(max_new_tokens=1024)
    report = progress or ignore_progress
    started = time.perf_counter()
    report(ProgressEvent("probe", 0, 1, "reading the video"))
    info = video if isinstance(video, VideoInfo) else probe(video)
    report(ProgressEvent("probe", 1, 1, "reading the video"))
    backend = grounder.backend
    plan = plan_sampling(info, opts, backend.max_frames_per_request)
    language = "en" if opts.language == "auto" else opts.language
    prompt = build_describe_prompt(language=language, duration=info.duration)

    found: list[Span] = []
    raw: list[str] = []
    decode_s = model_s = 0.0
    total = sum(len(w) for w in plan.windows)
    done = 0
    for number, window in enumerate(plan.windows):
        t0 = time.perf_counter()
        frames = decode_frames(info, window, size=plan.size)
        done += len(window)
        report(ProgressEvent("decode", done, total, "decoding frames"))
        t1 = time.perf_counter()
        report(ProgressEvent("model", number, len(plan.windows),
                             f"asking {backend.model_name}"))
        text = backend.generate(frames, prompt, max_new_tokens=opts.max_new_tokens)
        t2 = time.perf_counter()
        decode_s, model_s = decode_s + t1 - t0, model_s + t2 - t1
        raw.append(text)
        found.extend(parse_events(text, duration=info.duration, fps=info.fps))
    report(ProgressEvent("model", len(plan.windows), len(plan.windows),
                         f"asking {backend.model_name}"))
    events = merge_events(found, gap=plan.interval)

    refine_started = time.perf_counter()
    refine_calls = 0
    if opts.refine and events:
        refined = []
        for number, event in enumerate(events):
            if number >= MAX_REFINED_EVENTS:
                refined.append(event)
                continue
            counter = CallCounter(opts.max_refine_calls)
            refined.append(_refine(grounder, info, event, language, plan, counter, report))
            refine_calls += counter.calls
        events = merge_events(refined, gap=0.0)
    report(ProgressEvent("done", 1, 1, "done"))
    timings = {"decode_s": round(decode_s, 4), "model_s": round(model_s, 4),
               "refine_s": round(time.perf_counter() - refine_started, 4),
               "total_s": round(time.perf_counter() - started, 4),
               "frames": len(plan.times), "windows": len(plan.windows),
               "model_calls": len(plan.windows) + refine_calls,
               "refine_calls": refine_calls}
    return Description(events=tuple(events), video=info, model=backend.model_name,
                       raw_answer="\n\n".join(raw), timings=timings,
                       frame_times=tuple(plan.times))


def _refine(grounder: Grounder, info: VideoInfo, event: Span, language: str, plan: Any,
            counter: CallCounter, report: ProgressCallback) -> Span:
    def on_call(calls: int) -> None:
        report(ProgressEvent("refine", calls, counter.limit, "refining boundaries"))

    refiner = Refiner(grounder.backend, info, event.label or "the event", language=language,
                      size=plan.size, settings=RefineSettings(radius_s=max(0.5, plan.interval),
                                                              max_calls=counter.limit),
                      counter=counter, coarse_times=plan.times, on_call=on_call)
    return refiner.refine(event)


# -- reading the model's list ----------------------------------------------------------------

def parse_events(text: str, *, duration: float | None = None,
                 fps: float | None = None) -> list[Span]:
    """The labelled events in a model's list: one ``12.5 - 18.0 seconds: what`` per line (also
    ``[12.5s-18s] what``, ``from 12.5 to 18 seconds, what``, clock times, Chinese), or JSON
    (``[{"start": 12.5, "end": 18, "description": "..."}]``, the cookbook's
    ``start_time``/``end_time`` strings too). Lines without a time or a description are
    skipped; times are clamped to ``[0, duration]``.

    >>> parse_events("1.0 - 2.5 seconds: a red square appears\\nnothing else")
    [Span(start=1.0, end=2.5, label='a red square appears', score=None, refined=None)]
    """
    events = _json_events(text or "", duration)
    if events is None:
        events = []
        for line in (text or "").splitlines():
            event = _line_event(line, duration=duration, fps=fps)
            if event is not None:
                events.append(event)
    return sorted(events, key=lambda e: (e.start, e.end))


def _line_event(line: str, *, duration: float | None, fps: float | None) -> Span | None:
    body = _BULLET.sub("", line.strip()).strip("*_` ")
    if not body:
        return None
    # "12.5 - 18.0 seconds: what": the times before a separator, the description after it
    for match in _SPLIT.finditer(body):
        head, tail = body[:match.start()], body[match.end():]
        if not _has_words(tail) or tail[:1].isdigit():
            continue
        spans = parse_answer(head, duration=duration, fps=fps).spans
        if spans:
            return Span(spans[0].start, spans[0].end, _clean_label(tail))
    # "a man opens the door (12.5 - 18.0 seconds)", "from 12.5 to 18 seconds a man ..."
    match = _RANGE.search(body)
    if match is None:
        return None
    spans = parse_answer(match.group(0), duration=duration, fps=fps).spans
    label = _clean_label(body[:match.start()] + " " + body[match.end():])
    if not spans or not _has_words(label):
        return None
    return Span(spans[0].start, spans[0].end, label)


_UNIT = r"(?:seconds?|secs|sec|s|秒)"
_RANGE = re.compile(
    rf"[\[(（【]?\s*(?:from|between|从)?\s*\d[\d:.,]*\s*{_UNIT}?\s*(?:-|–|—|to|and|至|到|~)\s*"
    rf"\d[\d:.,]*\s*{_UNIT}?\s*[\])）】]?", re.I)


def _has_words(text: str) -> bool:
    return bool(re.search(r"[^\W\d_]{2,}", text))


def _clean_label(text: str) -> str:
    label = " ".join(text.strip(" \t:：-–—,，.;；*_`\"'").split())
    return label[:MAX_LABEL_CHARS]


def _json_events(text: str, duration: float | None) -> list[Span] | None:
    """Events from the first JSON list (or ``{"events": [...]}``) in ``text``; None if none."""
    decoder = json.JSONDecoder()
    for match in _JSON_START.finditer(text):
        try:
            data, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            continue
        events = [e for e in (_json_event(item, duration) for item in data) if e is not None]
        if events:
            return events
    return None


def _json_event(item: Any, duration: float | None) -> Span | None:
    if not isinstance(item, dict):
        return None
    keys = {str(k).lower(): v for k, v in item.items()}
    label = next((keys[k] for k in _TEXT_KEYS if isinstance(keys.get(k), str)), None)
    start = _json_time(next((keys[k] for k in _START_KEYS if k in keys), None))
    end = _json_time(next((keys[k] for k in _END_KEYS if k in keys), None))
    times = keys.get("timestamp") or keys.get("timestamps") or keys.get("time")
    if (start is None or end is None) and isinstance(times, list) and len(times) == 2:
        start, end = _json_time(times[0]), _json_time(times[1])
    if start is None or end is None or not label or not _has_words(label):
        return None
    start, end = sorted((start, end))
    if duration is not None:
        if start >= duration:
            return None
        end = min(end, duration)
    return Span(max(0.0, start), max(0.0, end), _clean_label(label))


def _json_time(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_timecode(value.replace("s", "").strip())
        except ValueError:
            return None
    return None


# -- merging windows ---------------------------------------------------------------------------

def merge_events(events: Sequence[Span], *, gap: float = 0.0) -> list[Span]:
    """Events in time order; two that overlap (or lie within ``gap`` s) and say nearly the same
    thing (two windows saw one event) become one. Different events at the same time stay."""
    merged: list[Span] = []
    for event in sorted(events, key=lambda e: (e.start, e.end)):
        for i in range(len(merged) - 1, -1, -1):
            other = merged[i]
            if event.start > other.end + gap:
                continue
            if _similar(other.label, event.label):
                merged[i] = other.with_(end=max(other.end, event.end))
                break
        else:
            merged.append(event)
    return sorted(merged, key=lambda e: (e.start, e.end))


def _similar(a: str | None, b: str | None) -> bool:
    """Nearly the same description: most content words shared (``a man opens the door`` and
    ``the man opens a door``; not ``the red square`` and ``the blue square``)."""
    x, y = _words(a), _words(b)
    if not x or not y:
        return x == y
    return len(x & y) / len(x | y) >= SAME_LABEL_RATIO


_STOP = frozenset(("a", "an", "the", "is", "are", "was", "were", "be", "been", "of", "in", "on",
                   "at", "to", "and", "or", "it", "its", "this", "that", "there", "here", "some",
                   "with", "by", "for", "from", "into", "onto"))


def _words(text: str | None) -> frozenset[str]:
    """Content words (CJK: characters), lower case."""
    lowered = (text or "").lower()
    words = set(re.findall(r"[a-z0-9]+", lowered)) - _STOP
    words |= set(re.findall(r"[\u3400-\u9fff]", lowered))
    return frozenset(words)
