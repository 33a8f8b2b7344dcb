""""What happens when?" without a question: the model lists the events it sees, each with a
start and end time (dense captioning, as Qwen3-VL's cookbook does), window by window for long
videos; the windows' lists are merged, each event's boundaries refined like any span, and the
result is a :class:`Description` of labelled spans that every exporter takes.

Describe runs on the grounder's own machinery: its sampling plan, its window loop
(:meth:`Grounder.ask_windows`: frames through the frame cache, requests fitted to the server's
cap, several at once where the backend can) and its refinement (:meth:`Grounder.refine_spans`),
with the describe prompt and :func:`parse_events`. Its options are :class:`LocateOptions`
with describe's own defaults (:data:`DESCRIBE_DEFAULTS`, see :func:`describe_options`).

A description also holds chapters (the events in time order, none overlapping) and, when
asked (``include``, :mod:`.describe_extras`), the video's shots — then each chapter starts at
a shot change within half a sampling interval of its event — and subtitles from its speech:
"summary + subtitles + time index" in one response.

One describe request makes at most :data:`MAX_DESCRIBE_CALLS` model calls in all: the video is
looked at in at most :data:`DESCRIBE_MAX_WINDOWS` windows (a longer video is sampled at a lower
rate), and the events' refinement takes what is left, in time order; events past the budget
keep their coarse times (``refined: false``) and the description carries a warning.

>>> from vidground import Grounder
>>> d = describe(Grounder(), "lecture.mp4")  # doctest: +SKIP
>>> [(e.start, e.end, e.label) for e in d.events][:1]  # doctest: +SKIP
[(0.0, 42.5, 'the speaker introduces the topic')]
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..grounding.answer import parse_answer
from ..grounding.prompts import build_describe_prompt
from ..grounding.refine import CallCounter
from ..options import LocateOptions
from ..progress import ProgressCallback, ProgressEvent, ignore_progress
from ..timecode import Span, format_time, parse_timecode
from ..video.probe import VideoInfo, probe
from .describe_extras import Chapter, Subtitles, chapters_from, shot_marks
from .results import Result

if TYPE_CHECKING:
    from ..grounding import Grounder
    from ..grounding.pipeline import SamplingPlan
    from ..perception.shots import ShotResult

#: Two events from overlapping windows are one when their times overlap (or nearly touch) and
#: their descriptions are at least this similar.
SAME_LABEL_RATIO = 0.6  # share of content words in common
MAX_LABEL_CHARS = 200
#: The most model calls one describe request makes, windows and refinement together (and the
#: extra requests of windows split to fit a model server's size cap).
MAX_DESCRIBE_CALLS = 128
#: The most windows describe looks at a video in (``max_windows`` above it is lowered to it):
#: the rest of :data:`MAX_DESCRIBE_CALLS` is left for refining the events.
DESCRIBE_MAX_WINDOWS = 32
#: Where describe's options differ from :class:`LocateOptions`' defaults: a list of events is
#: longer than one answer, and events are not re-asked yes/no (``verify``) unless asked.
DESCRIBE_DEFAULTS: Mapping[str, Any] = {"max_new_tokens": 1024, "verify": False}

_JSON_START = re.compile(r"[\[{]")
_BULLET = re.compile(r"^\s*(?:[-*•·]+(?=\s)|\d{1,3}(?:[.](?=\s)|[)、])|#+)\s*")
_SPLIT = re.compile(r"\s*(?:[:：]|\s[-–—]\s|[,，]\s?|\)\s*)\s*")
_START_KEYS = ("start", "start_time", "begin", "from", "start_s", "开始", "开始时间")
_END_KEYS = ("end", "end_time", "to", "finish", "end_s", "结束", "结束时间")
_TEXT_KEYS = ("description", "event", "caption", "label", "text", "sentence", "activity",
              "描述", "事件")


@dataclass(frozen=True)
class Description:
    """The events of a whole video, in time order, each a :class:`Span` with its label.
    ``warnings``: what the caller should know (a call budget that cut refinement short)."""

    events: tuple[Span, ...]
    video: VideoInfo
    model: str
    raw_answer: str = ""
    timings: dict[str, float | int] = field(default_factory=dict)
    frame_times: tuple[float, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the events as chapters (starting at shot changes when ``shots`` are known)
    chapters: tuple[Chapter, ...] = ()
    shots: ShotResult | None = None
    subtitles: Subtitles | None = None
    include: tuple[str, ...] = ()

    def to_result(self) -> Result:
        return Result(spans=self.events, fps=self.video.fps, duration=self.video.duration,
                      query=None, video=self.video.path, model=self.model,
                      answer=self.summary())

    def part_results(self) -> dict[str, Result]:
        """The description's other parts as results the exporters take: ``chapters`` always,
        ``subtitles`` and ``shots`` when included."""
        spans = {"chapters": tuple(c.span() for c in self.chapters)}
        if self.subtitles is not None:
            spans["subtitles"] = self.subtitles.spans
        if self.shots is not None:
            spans["shots"] = tuple(self.shots.shots)
        return {name: Result(spans=part, fps=self.video.fps, duration=self.video.duration,
                             video=self.video.path, model=self.model)
                for name, part in spans.items()}

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
            "video": {**self.video.summary(), "name": Path(self.video.path).name,
                      "path": os.path.abspath(self.video.path)},
            "model": self.model,
            "timings": dict(self.timings),
            "motion": None,
            "warnings": list(self.warnings),
            "chapters": [c.to_dict(fmt, fps=self.video.fps) for c in self.chapters],
            "include": list(self.include),
            **({"shots": {"model": "transnetv2",
                          "segments": [s.to_dict(fmt, fps=self.video.fps)
                                       for s in self.shots.shots],
                          "transitions": [t.to_dict() for t in self.shots.transitions]}}
               if self.shots is not None else {}),
            **({"subtitles": self.subtitles.to_dict(fmt, fps=self.video.fps)}
               if self.subtitles is not None else {}),
        }


def describe_options(values: LocateOptions | Mapping[str, Any] | None = None) -> LocateOptions:
    """The options of a describe request: :data:`DESCRIBE_DEFAULTS` over
    :class:`LocateOptions`' defaults, then ``values`` (checked like any locate options:
    :class:`~vidground.errors.OptionsError` for a bad one). A :class:`LocateOptions` is taken
    as it is.

    >>> describe_options().max_new_tokens, describe_options({"max_new_tokens": 300}).max_new_tokens
    (1024, 300)
    """
    if isinstance(values, LocateOptions):
        return values
    return LocateOptions.from_mapping({**DESCRIBE_DEFAULTS, **dict(values or {})})


def describe(grounder: Grounder, video: str | Path | VideoInfo,
             options: LocateOptions | Mapping[str, Any] | None = None, *,
             include: Sequence[str] = (), progress: ProgressCallback | None = None
             ) -> Description:
    """List the events of ``video`` (a path, or the :class:`VideoInfo` of a video already
    probed) with the grounder's model (see the module docstring).

    ``options`` (see :func:`describe_options`) are the locate options that apply:
    ``frame_sampling_rate``, ``min_frames``/``max_frames``, ``max_frames_per_call``,
    ``max_windows`` (at most :data:`DESCRIBE_MAX_WINDOWS`), ``max_context_length``,
    ``max_pixels_per_frame``, ``snap_to_keyframes``, ``language``, ``max_new_tokens``, and
    ``refine``/``verify`` with up to ``max_refine_calls`` extra calls per event. The whole
    request makes at most :data:`MAX_DESCRIBE_CALLS` model calls.

    ``include`` (see :func:`~vidground.outputs.describe_extras.check_include`): ``"shots"``
    adds the video's shots (TransNetV2) and starts each chapter at a shot change within half
    a sampling interval; ``"subtitles"`` adds subtitles from its speech."""
    from ..grounding.pipeline import tallied
    from .describe_extras import check_include

    opts = describe_options(options)
    extras = check_include(include)
    with tallied() as run:
        description = _describe(grounder, video, opts, progress or ignore_progress, extras)
    description.timings.update(run.timings() | run.fit.timings())
    return description


def _describe(grounder: Grounder, video: str | Path | VideoInfo, opts: LocateOptions,
              report: ProgressCallback, include: tuple[str, ...] = ()) -> Description:
    from ..grounding.pipeline import budget_warnings

    report(ProgressEvent("probe", 0, 1, "reading the video"))
    info = video if isinstance(video, VideoInfo) else probe(video)
    report(ProgressEvent("probe", 1, 1, "reading the video"))
    plan = grounder.plan(info, replace(opts, max_windows=min(opts.max_windows,
                                                             DESCRIBE_MAX_WINDOWS)))
    language = "en" if opts.language == "auto" else opts.language
    prompt = build_describe_prompt(language=language, duration=info.duration)
    budget = CallCounter(MAX_DESCRIBE_CALLS)
    [answers] = grounder.ask_windows(info, plan, [prompt], opts, progress=report, budget=budget)
    coarse_calls = budget.calls
    found = [event for text in answers.texts
             for event in parse_events(text, duration=info.duration, fps=info.fps)]
    events = merge_events(found, gap=plan.interval)

    refine_started = time.perf_counter()
    if events and (opts.refine or opts.verify):
        events = _refine(grounder, info, events, language, plan, opts, budget, report)
    warnings = budget_warnings(events, opts, noun="event", advice="",
                               ceiling=f"{MAX_DESCRIBE_CALLS} model calls per describe request")
    extras = _extras(info, events, include, opts.use_shots, plan.interval, report)
    if extras["subtitles"] is not None and extras["subtitles"].source == "none":
        warnings = (*warnings, extras["subtitles"].note)
    report(ProgressEvent("done", 1, 1, "done"))
    timings: dict[str, float | int] = {
        "decode_s": round(answers.decode_s, 4), "model_s": round(answers.model_s, 4),
        "refine_s": round(time.perf_counter() - refine_started, 4),
        "frames": len(plan.times), "windows": len(plan.windows),
        "model_calls": budget.calls, "refine_calls": budget.calls - coarse_calls,
        "refine_frames": budget.frames,
        "events_cut_short": sum(1 for e in events if e.refined is False),
        **{k: v for k, v in extras.items() if k.endswith("_s")}}
    return Description(events=tuple(events), video=info, model=grounder.backend.model_name,
                       raw_answer="\n\n".join(answers.texts), timings=timings,
                       frame_times=tuple(plan.times), warnings=warnings,
                       chapters=extras["chapters"], shots=extras["shots"],
                       subtitles=extras["subtitles"], include=include)


def _extras(info: VideoInfo, events: Sequence[Span], include: tuple[str, ...],
            use_shots: bool | None, interval: float, report: ProgressCallback
            ) -> dict[str, Any]:
    """The chapters and what ``include`` asks for (shots, subtitles), with their seconds.
    Chapters start at shot changes when the shots are known: included (or ``use_shots``
    true: detected), else (``use_shots`` None) when already detected for this file."""
    from .describe_extras import shots_of, stored_shots_of, subtitles_of

    out: dict[str, Any] = {"shots": None, "subtitles": None}
    shots = None
    if "shots" in include or use_shots:
        started = time.perf_counter()
        report(ProgressEvent("model", 0, 1, "finding shots"))
        shots = shots_of(info)
        out["shots_s"] = round(time.perf_counter() - started, 4)
    elif use_shots is None:
        shots = stored_shots_of(info)
    if "shots" in include:
        out["shots"] = shots
    marks = shot_marks(shots) if shots is not None else []
    if "subtitles" in include:
        started = time.perf_counter()
        report(ProgressEvent("model", 0, 1, "listening"))
        out["subtitles"] = subtitles_of(info)
        out["subtitles_s"] = round(time.perf_counter() - started, 4)
    # a chapter starts at a shot change no further than half a sampling interval away: the
    # coarse pass cannot place a start closer than that, TransNetV2 places cuts to the frame
    out["chapters"] = tuple(chapters_from(events, cuts=marks, tolerance=interval / 2))
    return out


def _refine(grounder: Grounder, info: VideoInfo, events: Sequence[Span], language: str,
            plan: SamplingPlan, opts: LocateOptions, budget: CallCounter,
            report: ProgressCallback) -> list[Span]:
    """Each event refined (and verified, when asked) like a located span, asked about by its
    label, in time order, within ``budget``."""
    kept: list[Span] = []
    for event in events:
        kept.extend(grounder.refine_spans(info, event.label or "the event", language, plan,
                                          [event], opts, budget, report))
    return merge_events(kept, gap=0.0)




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
    for split in _SPLIT.finditer(body):
        head, tail = body[:split.start()], body[split.end():]
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
        match = _JSON_TIME.match(value)
        if match is None:
            return None
        try:
            return parse_timecode(match.group(1))
        except ValueError:
            return None
    return None


#: A time in a JSON field: ``12.5``, ``"12.5s"``, ``"12.5 seconds"``, ``"00:12.5"``, ``"12.5秒"``.
_JSON_TIME = re.compile(r"^\s*(\d[\d:.]*)\s*(?:s|secs?|seconds?|秒)?\s*$", re.I)


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
