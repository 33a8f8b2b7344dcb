"""What the exporters, clip cutter and evidence writer read: one question's spans about one
video (:class:`Result`), built from a :class:`~vidground.grounding.Grounding`, an API response,
a job object, a job list or a JSON Lines file of any of those.

>>> r = Result.from_response({"segments": [{"start": 1.0, "end": 2.5, "label": None}],
...                           "video": {"duration": 10.0, "fps": 25.0}}, query="the dog jumps")
>>> r.spans[0].end, r.title
(2.5, 'the dog jumps')
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..timecode import Span

if TYPE_CHECKING:
    from ..grounding import Grounding

#: Frame-number slack: a time within 1 µs below a frame's start names that frame (as the
#: decoder does), so 1.0 s at 25 fps is frame 25 even when stored as 0.99999999.
FRAME_SLACK_S = 1e-6
#: Latest time (seconds) a result may hold: about 115 days, far past any video, and small
#: enough that every format's clock (SubRip, WebVTT, frames) can write it.
MAX_SECONDS = 1e7
#: Highest frame rate a result may claim.
MAX_RESULT_FPS = 1e6


class ResultError(InvalidInputError):
    """A result file or body cannot be read as spans."""

    code = "invalid_result"


@dataclass(frozen=True)
class Result:
    """Spans (seconds from the first displayed frame, ``[start, end)``) found in one video.

    ``query`` is the question (``None`` for a description); ``video`` names the source file (a
    path, or a name when only that is known); ``fps`` and ``duration`` are the video's."""

    spans: tuple[Span, ...]
    fps: float | None = None
    duration: float | None = None
    query: str | None = None
    video: str | None = None
    model: str | None = None
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.query or (Path(self.video).name if self.video else "vidground")

    def text_of(self, span: Span, number: int) -> str:
        """What a cue, chapter or clip shows for ``span``: its label, else the question."""
        return (span.label or self.query or f"event {number}").strip()

    # -- builders ------------------------------------------------------------------------
    @classmethod
    def from_grounding(cls, grounding: Grounding) -> Result:
        """From a :class:`~vidground.grounding.Grounding`; the video is named by its absolute
        path (what the response's ``video.path`` holds), so editors can relink it."""
        return cls(spans=tuple(grounding.spans), fps=grounding.video.fps,
                   duration=grounding.video.duration, query=grounding.query,
                   video=absolute_video(grounding.video.path), model=grounding.model,
                   answer=grounding.answer)

    @classmethod
    def from_response(cls, body: dict[str, Any], *, query: str | None = None,
                      video: str | None = None) -> Result:
        """From the API's response object (what ``vidground locate --json`` prints)."""
        if not isinstance(body, dict) or not isinstance(body.get("segments"), list):
            raise ResultError("a result needs a 'segments' list (the response of "
                              "POST /api/v1/inference or 'vidground locate --json')")
        spans = tuple(_span(s, i) for i, s in enumerate(body["segments"], 1))
        given = body.get("video")
        info: dict[str, Any] = given if isinstance(given, dict) else {}
        fps = _number(info.get("fps"), "video.fps")
        if fps is not None and fps > MAX_RESULT_FPS:
            raise ResultError(f"'video.fps' is {fps:g}; a frame rate is at most "
                              f"{MAX_RESULT_FPS:g}")
        duration = _seconds(info.get("duration"), "video.duration")
        return cls(spans=tuple(sorted(spans, key=lambda s: (s.start, s.end))),
                   fps=fps if fps and fps > 0 else None, duration=duration,
                   query=query if query is not None else _text(body.get("query"), "query"),
                   video=video if video is not None else _video_of(body, info),
                   model=_text(body.get("model"), "model"),
                   answer=_text(body.get("response"), "response") or "")

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> Result:
        """From a job object (``GET /api/v1/jobs/{id}``); it must have succeeded."""
        status = job.get("status")
        if status != "succeeded" or not isinstance(job.get("result"), dict):
            raise ResultError(f"job {job.get('job_id', '?')} is {status or 'unknown'}; only a "
                              "job that succeeded has spans to export")
        given = job.get("request")
        request: dict[str, Any] = given if isinstance(given, dict) else {}
        result = job["result"]
        given = result.get("video")
        info: dict[str, Any] = given if isinstance(given, dict) else {}
        video = (_video_of(result, info) or _text(request.get("video_path"), "video_path")
                 or _text(request.get("video_id"), "video_id"))
        return cls.from_response(result, query=_text(request.get("query"), "query"),
                                 video=video)


def results_from_json(data: Any) -> list[Result]:
    """Every result in ``data``: a response, a job, ``{"jobs": [...]}`` or a list of these."""
    if isinstance(data, list):
        return [r for item in data for r in results_from_json(item)]
    if not isinstance(data, dict):
        raise ResultError("a result must be a JSON object or a list of them")
    if isinstance(data.get("jobs"), list):
        jobs = [j for j in data["jobs"] if isinstance(j, dict) and j.get("status") == "succeeded"]
        return [Result.from_job(j) for j in jobs]
    if "job_id" in data and "status" in data:
        return [Result.from_job(data)]
    return [Result.from_response(data)]


def load_results(path: str | Path) -> list[Result]:
    """Read a result file: JSON (see :func:`results_from_json`) or JSON Lines of those."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultError(f"no result file {file}; save one with "
                          "'vidground locate VIDEO QUERY --json > result.json'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"cannot read {file}: {exc}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ResultError(f"{file} is neither JSON nor JSON Lines ({exc})") from None
    results = results_from_json(data)
    if not results:
        raise ResultError(f"{file} holds no finished result")
    return results


def as_results(value: Result | Grounding | Iterable[Result | Grounding]) -> list[Result]:
    """A list of results from one result, one Grounding, or several of either."""
    if isinstance(value, Result):
        return [value]
    if hasattr(value, "spans") and hasattr(value, "video"):
        return [Result.from_grounding(value)]  # type: ignore[arg-type]
    return [r for item in value for r in as_results(item)]  # type: ignore[union-attr]


def frame_of(t: float, fps: float) -> int:
    """The index of the frame shown at ``t`` on a constant ``fps`` clock."""
    return int(math.floor(t * fps + FRAME_SLACK_S * fps))


def frame_range(span: Span, fps: float) -> tuple[int, int]:
    """``[first, end)`` frame numbers covering ``span``: the frame shown at its start up to
    the frame shown just before its end (a point in time is one frame)."""
    first = frame_of(span.start, fps)
    end = int(math.ceil(span.end * fps - FRAME_SLACK_S * fps))
    return first, max(end, first + 1)


def absolute_video(path: str | None) -> str | None:
    """``path`` made absolute (from the current folder, ``..`` resolved, symlinks kept): how
    results name a local video, so a file written from them can be opened anywhere."""
    return os.path.abspath(path) if path else None


def _video_of(body: dict[str, Any], info: dict[str, Any]) -> str | None:
    """The video a response names: ``video.path`` (absolute), else ``video.name``, else the
    older ``video_path``."""
    return (_text(info.get("path"), "video.path") or _text(info.get("name"), "video.name")
            or _text(body.get("video_path"), "video_path"))


def _span(item: Any, number: int) -> Span:
    if not isinstance(item, dict):
        raise ResultError(f"segment {number} is not an object with start and end")
    where = f"segment {number}: "
    start = _seconds(item.get("start"), "start", where)
    end = _seconds(item.get("end"), "end", where)
    if start is None or end is None:
        raise ResultError(f"segment {number} needs numeric 'start' and 'end' (seconds)")
    if end < start:
        raise ResultError(f"segment {number}: start {start} and end {end} are not a span")
    score = _number(item.get("score"), "score", where)
    return Span(start, end, _text(item.get("label"), "label", where), score)


def _number(value: Any, name: str, where: str = "") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{where}'{name}' must be a finite number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer literal with hundreds of digits
        assert isinstance(value, int)  # a float is always within a float's range
        digits = int(value.bit_length() * math.log10(2)) + 1  # str() refuses huge ints
        raise ResultError(f"{where}'{name}' is too large a number (about {digits} digits)"
                          ) from None
    if not math.isfinite(number):
        raise ResultError(f"{where}'{name}' must be a finite number, got {value!r}")
    return number


def _seconds(value: Any, name: str, where: str = "") -> float | None:
    """A time or duration in seconds: a number from 0 to :data:`MAX_SECONDS`."""
    seconds = _number(value, name, where)
    if seconds is not None and not 0 <= seconds <= MAX_SECONDS:
        raise ResultError(f"{where}'{name}' is {seconds:g} s; times are seconds from 0 to "
                          f"{MAX_SECONDS:g}")
    return seconds


def _text(value: Any, name: str, where: str = "") -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    check_text(value, name, where)
    return value


def check_text(value: str, name: str, where: str = "") -> None:
    """Refuse text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``): no
    file format can hold it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise ResultError(f"{where}'{name}' holds U+{ord(bad):04X} at character "
                          f"{exc.start + 1}: a lone surrogate (half of a UTF-16 pair) is not "
                          "valid Unicode and no file format can hold it; remove it") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
