"""What a description can carry besides its events (issue 24 items 4 and 5): the shots of the
video (TransNetV2), subtitles from its speech (a transcript when a speech model is configured,
else the stretches of speech), and chapters — the events in time order, none overlapping, each
starting at a shot change when one lies within half a sampling interval of its start.

``include`` names the extras a request asks for (:data:`INCLUDES`); they need the perception
extra (``pip install 'vidground[perception]'``), checked before any work starts
(:func:`check_include`). Without ``shots``, chapters start at shot changes only when the shots
are known anyway (``use_shots``: true detects them, null — the default — takes them when they
were detected for this file before, a free lookup); otherwise they are the events as every
chapter export writes them, as before.

>>> from vidground.timecode import Span
>>> [c.to_dict() for c in chapters_from([Span(0.0, 1.8, "intro"), Span(1.8, 4.0, "talk")],
...                                     cuts=[2.0], tolerance=0.25)][1]["start"]
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import OptionsError
from ..timecode import Span, format_time

if TYPE_CHECKING:
    from ..perception.shots import ShotResult
    from ..perception.speech import SpeechResult
    from ..video.probe import VideoInfo

#: The extras a describe request may ask for: ``subtitles`` (from the speech), ``shots``
#: (which also start chapters at shot changes).
INCLUDES = ("subtitles", "shots")
#: What the perception package must hold for each extra (``perception.models.NEEDS`` names).
_NEEDS = {"subtitles": "speech", "shots": "shots"}


def check_include(values: Iterable[str] | None) -> tuple[str, ...]:
    """The extras asked for, in :data:`INCLUDES`' order; :class:`OptionsError` naming the
    choices for an unknown one, :class:`~vidground.errors.ModelNotAvailableError` naming the
    package to install when the perception extra is missing (looked up without importing)."""
    if values is None:
        return ()
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise OptionsError(f"include must be a list of {', '.join(INCLUDES)}, got {values!r}")
    wanted = set(values)
    unknown = sorted(wanted - set(INCLUDES))
    if unknown:
        raise OptionsError(f"include takes {', '.join(INCLUDES)}; not {', '.join(unknown)}")
    from ..perception.models import check_installed

    for name in INCLUDES:
        if name in wanted:
            check_installed(_NEEDS[name])
    return tuple(name for name in INCLUDES if name in wanted)


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``[start, end)`` seconds and its title (the event's label).
    ``event_start`` is the event's own start; ``shot`` says the start was moved to a shot
    change (a cut, or where a gradual transition begins or ends)."""

    start: float
    end: float
    label: str
    event_start: float
    shot: bool = False

    def span(self) -> Span:
        return Span(self.start, self.end, self.label)

    def to_dict(self, output_format: Any = "HH:MM:SS.sss", fps: float | None = None
                ) -> dict[str, Any]:
        return {"start": round(self.start, 6), "end": round(self.end, 6), "label": self.label,
                "start_text": format_time(self.start, output_format, fps=fps),
                "end_text": format_time(self.end, output_format, fps=fps),
                "snapped_to_shot": self.shot, "event_start": round(self.event_start, 6)}


def chapters_from(events: Sequence[Span], *, cuts: Sequence[float] = (),
                  tolerance: float = 0.0) -> list[Chapter]:
    """Chapters from ``events`` as every chapter export makes them (in time order, a chapter
    that runs into the next one cut where that begins, empty ones dropped), each start first
    moved to the nearest of ``cuts`` within ``tolerance`` seconds (never before the previous
    start); a chapter that ran up to the next one's old start ends at its new start."""
    ordered = sorted(events, key=lambda e: (e.start, e.end))
    marks = sorted(set(cuts))
    starts: list[tuple[float, bool]] = []
    for event in ordered:
        near = _nearest(marks, event.start)
        floor = starts[-1][0] if starts else 0.0
        if near is not None and abs(near - event.start) <= tolerance + 1e-9 and near >= floor:
            starts.append((near, True))
        else:
            starts.append((max(event.start, floor), False))
    chapters: list[Chapter] = []
    for i, (event, (start, shot)) in enumerate(zip(ordered, starts, strict=True)):
        end = event.end
        if i + 1 < len(ordered):
            following = starts[i + 1][0]
            end = following if end >= ordered[i + 1].start else min(end, following)
        if chapters and start < chapters[-1].end:
            start = chapters[-1].end
        if end > start:
            chapters.append(Chapter(start, end, " ".join((event.label or "").split()),
                                    event.start, shot))
    return chapters


def _nearest(marks: Sequence[float], t: float) -> float | None:
    import bisect

    if not marks:
        return None
    at = bisect.bisect_left(marks, t)
    near = [marks[i] for i in (at - 1, at) if 0 <= i < len(marks)]
    return min(near, key=lambda m: abs(m - t))


def shot_marks(shots: ShotResult) -> list[float]:
    """Where shots change: every cut, and where each gradual transition begins and ends."""
    marks: list[float] = []
    for transition in shots.transitions:
        marks.append(transition.start)
        if transition.end != transition.start:
            marks.append(transition.end)
    return marks


@dataclass(frozen=True)
class Subtitles:
    """Subtitles from the speech: ``source`` ``"transcript"`` (segments labelled with what is
    said, a speech model configured) or ``"speech"`` (when someone speaks, labelled
    ``speech``; no speech model), or ``"none"`` (the video has no sound: ``note`` says so)."""

    spans: tuple[Span, ...]
    source: str
    model: str | None = None
    language: str | None = None
    words: tuple[tuple[dict[str, Any], ...], ...] = ()
    note: str | None = None

    def to_dict(self, output_format: Any = "HH:MM:SS.sss", fps: float | None = None
                ) -> dict[str, Any]:
        segments = [s.to_dict(output_format, fps=fps) for s in self.spans]
        for segment, words in zip(segments, self.words, strict=False):
            segment["words"] = list(words)
        return {"source": self.source, "model": self.model, "language": self.language,
                "note": self.note, "segments": segments}


def subtitles_of(info: VideoInfo, *, language: str | None = None,
                 speech_model: str | None = None) -> Subtitles:
    """The video's subtitles: a transcript with ``speech_model`` (default
    ``VIDGROUND_SPEECH_MODEL``), else the stretches of speech; a video without sound has
    none (said in ``note``)."""
    from ..perception import speech

    if not info.has_audio:
        return Subtitles((), "none", note="the video has no audio track: no subtitles")
    name = speech_model or speech.speech_model_name()
    found: SpeechResult
    if name:
        found = speech.transcribe(info, name, language=language)
        words = tuple(tuple(w.to_dict() for w in ws) for ws in found.words)
        return Subtitles(tuple(found.spans), "transcript", found.model, found.language, words)
    found = speech.speech_spans(info)
    return Subtitles(tuple(found.spans), "speech", found.model,
                     note="no speech model is configured (VIDGROUND_SPEECH_MODEL): when "
                          "someone speaks, not what is said")


def shots_of(info: VideoInfo) -> ShotResult:
    """The video's shots and transitions (TransNetV2; cached by file identity)."""
    from ..perception.shots import detect_shots

    return detect_shots(info)


def stored_shots_of(info: VideoInfo) -> ShotResult | None:
    """The shots found earlier for this file (``vidground shots``, an earlier request), or
    None: a cache lookup that computes nothing and needs no perception model."""
    from ..perception.shots import stored_shots

    return stored_shots(info)
