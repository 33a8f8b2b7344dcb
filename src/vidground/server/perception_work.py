"""On-screen text, shots and speech of a video as the server runs them (issue 24): one checked
request (:func:`perception_request`), one run (:func:`perceive`) whose result reads like an
answer (:class:`Perceived`: a :class:`~vidground.grounding.Grounding` for the page's timeline
and exports, and the API's response, shaped like ``POST /api/v1/inference``'s).

A request is a plain mapping, as stored with a job: ``{"kind": "text" | "shots" | "speech",
"video_path" | "video_id", "phrase", "all", "step", "threshold", "language",
"output_format"}``. The service resolves and probes the video (media root, uploads, the
server's limits) and queues :func:`perceive` on its shared executor; a job of one of these
kinds runs through the same :meth:`Service.infer <vidground.server.service.Service.infer>`.
This module imports no web framework.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionsError, QueryError
from ..grounding import Grounding
from ..options import LocateOptions
from ..perception.models import check_installed
from ..progress import ProgressEvent
from ..timecode import OUTPUT_FORMATS, Span, format_time
from ..video.probe import VideoInfo

#: The kinds of perception request (``kind`` of a stored request / job).
KINDS = ("text", "shots", "speech")
#: The longest phrase looked for on screen (characters).
MAX_PHRASE = 200
#: Seconds between the frames OCR reads whole: the range a request may ask for.
STEP_RANGE = (0.04, 10.0)
#: What each kind's detector is called in the response's ``model``.
MODELS = {"text": "rapidocr (PP-OCR)", "shots": "transnetv2", "speech": "silero-vad"}
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")

Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class PerceptionRequest:
    """A checked perception request: what to run on which file (not yet probed)."""

    kind: str
    video: Path
    phrase: str | None = None
    all_text: bool = False
    step: float = 0.5
    threshold: float = 0.5
    language: str | None = None
    output_format: str = "HH:MM:SS.sss"


def perception_request(request: dict[str, Any], video: Path) -> PerceptionRequest:
    """Check ``request`` (see the module docstring) for ``video`` (already resolved inside the
    media root or the upload store); raise :class:`QueryError` / :class:`OptionsError`
    (422) with what to change, :class:`~vidground.errors.ModelNotAvailableError` (503) when
    the perception extra is not installed."""
    kind = request.get("kind")
    if kind not in KINDS:
        raise OptionsError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fmt = request.get("output_format") or "HH:MM:SS.sss"
    if fmt not in OUTPUT_FORMATS:
        raise OptionsError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, "
                           f"got {fmt!r}")
    check_installed(kind)
    checked = PerceptionRequest(kind, video, output_format=fmt)
    if kind == "text":
        return _text_request(request, checked)
    if kind == "shots":
        threshold = _number(request.get("threshold", 0.5), "threshold")
        if not 0.0 < threshold < 1.0:
            raise OptionsError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
        return PerceptionRequest(kind, video, threshold=threshold, output_format=fmt)
    language = request.get("language")
    if language is not None and not (isinstance(language, str)
                                     and _LANGUAGE.fullmatch(language)):
        raise OptionsError(f"language must be a language code such as en or zh, got "
                           f"{language!r}")
    return PerceptionRequest(kind, video, language=language, output_format=fmt)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionsError(f"{name} must be a number, got {value!r}")
    return float(value)


def _text_request(request: dict[str, Any], base: PerceptionRequest) -> PerceptionRequest:
    from ..perception.matching import normalize

    phrase = request.get("phrase")
    every = bool(request.get("all"))
    if phrase is not None and not isinstance(phrase, str):
        raise QueryError("phrase must be text")
    if phrase is not None and every:
        raise QueryError("give a phrase or all: true (every text on screen), not both")
    if phrase is None and not every:
        raise QueryError('give the words to look for on screen (phrase: "PAYMENT FAILED"), '
                         "or all: true for every text on screen")
    if phrase is not None:
        phrase = phrase.strip()
        if len(phrase) > MAX_PHRASE:
            raise QueryError(f"the phrase is {len(phrase)} characters long; look for at most "
                             f"{MAX_PHRASE} (a line of text on screen)")
        if not normalize(phrase):
            raise QueryError("the phrase has no letters or digits to look for on screen; give "
                             'the words, e.g. "PAYMENT FAILED"')
    step = _number(request.get("step", 0.5), "step")
    if not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
        raise OptionsError(f"step must be between {STEP_RANGE[0]} and {STEP_RANGE[1]} seconds, "
                           f"got {step}")
    return PerceptionRequest("text", base.video, phrase=phrase, all_text=every, step=step,
                             output_format=base.output_format)


@dataclass
class Perceived:
    """What a perception request found, read like an answer: ``grounding`` (spans, the
    sentence in every output format) for the page and the exporters; ``extra`` (``detector``,
    ``ocr``, ``transitions``, ``language``, words) joins the API's response."""

    kind: str
    grounding: Grounding
    extra: dict[str, Any] = field(default_factory=dict)
    words: list[list[dict[str, Any]]] = field(default_factory=list)

    def to_response(self, output_format: str | None = None) -> dict[str, Any]:
        body = self.grounding.to_response(output_format)  # type: ignore[arg-type]
        body.pop("motion", None)
        for seg, words in zip(body["segments"], self.words, strict=False):
            seg["words"] = words
        return {**body, "kind": self.kind, **self.extra}


def perceive(checked: PerceptionRequest, info: VideoInfo, progress: Progress) -> Perceived:
    """Run ``checked`` on the probed ``info`` (in an executor worker); ``progress`` gets
    ``model`` events while frames are analysed (raising there stops the work: a cancelled job,
    a client gone)."""
    check_installed(checked.kind)
    started = time.perf_counter()
    message = {"text": "reading the screen", "shots": "finding shots",
               "speech": "listening"}[checked.kind]

    def report(done: int, total: int) -> None:
        progress(ProgressEvent("model", done, total or None, message))

    report(0, 1)
    words: list[list[dict[str, Any]]] = []
    if checked.kind == "text":
        from ..perception import text as ocr_text

        if checked.phrase is not None:
            found = ocr_text.find_text(info, checked.phrase, step_s=checked.step,
                                       progress=report)
        else:
            found = ocr_text.all_text(info, step_s=checked.step, progress=report)
        spans, model = found.spans, MODELS["text"]
        extra: dict[str, Any] = {"detector": "ocr", "ocr": found.to_dict()["ocr"]}
    elif checked.kind == "shots":
        from ..perception.shots import detect_shots

        shots = detect_shots(info, threshold=checked.threshold, progress=report)
        spans, model = shots.shots, MODELS["shots"]
        extra = {"detector": "shots",
                 "transitions": [t.to_dict() for t in shots.transitions]}
    else:
        from ..perception import speech as hearing

        name = hearing.speech_model_name()
        heard = (hearing.transcribe(info, name, language=checked.language) if name
                 else hearing.speech_spans(info))
        spans, model = heard.spans, heard.model or MODELS["speech"]
        extra = {"detector": "speech", "language": heard.language}
        words = [[w.to_dict() for w in ws] for ws in heard.words]
    progress(ProgressEvent("done", 1, 1, message))
    answers = {fmt: sentence(checked, spans, fmt, info.fps) for fmt in OUTPUT_FORMATS}
    query = checked.phrase or ""
    grounding = Grounding(
        query=query, spans=tuple(spans), answer=answers[checked.output_format],
        reasoning=None, video=info, model=model,
        timings={"perception_s": round(time.perf_counter() - started, 3), "model_calls": 0,
                 "frames": 0},
        raw_answer="", options=LocateOptions(output_format=checked.output_format),  # type: ignore[arg-type]
        answers=answers)
    return Perceived(checked.kind, grounding, extra, words)


def sentence(checked: PerceptionRequest, spans: list[Span], fmt: str, fps: float) -> str:
    """The answer to show, e.g. ``"PAYMENT FAILED" is on screen from 00:00:00.480 to
    00:00:01.640.`` (times in ``fmt``)."""

    def when(s: Span) -> str:
        return f"{format_time(s.start, fmt, fps=fps)} – {format_time(s.end, fmt, fps=fps)}"

    if checked.kind == "text":
        if checked.phrase is not None:
            if not spans:
                return f'"{checked.phrase}" is not on screen.'
            return f'"{checked.phrase}" is on screen ' + ", ".join(
                f"from {format_time(s.start, fmt, fps=fps)} to "
                f"{format_time(s.end, fmt, fps=fps)}" for s in spans) + "."
        if not spans:
            return "No text on screen."
        return "\n".join(f"{when(s)}  {s.label or ''}".rstrip() for s in spans)
    if checked.kind == "shots":
        return f"{len(spans)} shot(s): " + ", ".join(when(s) for s in spans) + "."
    if not spans:
        return "No speech."
    return "\n".join(f"{when(s)}  {s.label or 'speech'}" for s in spans)


__all__ = ["KINDS", "MAX_PHRASE", "Perceived", "PerceptionRequest", "check_installed",
           "perceive", "perception_request", "sentence"]
