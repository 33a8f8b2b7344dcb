"""Results as files people take elsewhere: subtitles, chapters, tables, editor timelines.

=============  ===========================================  ===================================
format         file                                         written by
=============  ===========================================  ===================================
``srt``        SubRip subtitles, one cue per span           the ``srt`` library
``vtt``        WebVTT cues, one per span                    the ``webvtt-py`` library
``chapters``   WebVTT chapters track (``kind="chapters"``)  the ``webvtt-py`` library
``csv``        one row per span                             the standard ``csv`` module
``jsonl``      one JSON object per span                     the standard ``json`` module
``otio``       OpenTimelineIO timeline (clips per span)     the ``opentimelineio`` library
``edl``        CMX3600 EDL, timecode at the video's rate    the adapter's event lines, written
               (drop-frame for 29.97 and 59.94)             here in one pass (see :func:`to_edl`)
``youtube``    YouTube chapter lines (``1:23 Title``)       by hand (no library writes them)
=============  ===========================================  ===================================

Times are exact in each format's unit: milliseconds for SRT/WebVTT (rounded), frames for the
EDL and OTIO (the frame shown at a span's start up to the frame shown just before its end),
whole seconds (rounded down) for YouTube. A point in time (``start == end``) becomes a cue or
clip one frame long. Subtitle formats put the cues of every result in time order.

An export holds at most :data:`MAX_EXPORT_SEGMENTS` spans and :data:`MAX_EXPORT_BYTES` bytes
(:class:`ExportTooLargeError`, HTTP 413, past either); times past
:data:`~vidground.outputs.results.MAX_SECONDS` and text that is not valid Unicode are refused
(:class:`~vidground.outputs.results.ResultError`, 422). Text is escaped per format: CSV cells
that a spreadsheet would run as a formula get a leading ``'``; EDL lines are single lines with
the media reference percent-encoded; cue text cannot end a cue.

>>> from vidground.timecode import Span
>>> from vidground.outputs.results import Result
>>> print(export(Result((Span(1.0, 2.5),), fps=25.0, query="the dog jumps"), "srt").strip())
1
00:00:01,000 --> 00:00:02,500
the dog jumps
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import OptionsError, TooLargeError
from ..timecode import Span, format_time
from ..video.probe import FALLBACK_FPS
from .results import (
    MAX_SECONDS,
    Result,
    ResultError,
    as_results,
    check_text,
    frame_of,
    frame_range,
)

if TYPE_CHECKING:
    import opentimelineio as otio

FORMATS: dict[str, tuple[str, str]] = {  # name -> (file suffix, media type)
    "srt": (".srt", "application/x-subrip"),
    "vtt": (".vtt", "text/vtt"),
    "chapters": (".chapters.vtt", "text/vtt"),
    "csv": (".csv", "text/csv"),
    "jsonl": (".jsonl", "application/jsonl"),
    "edl": (".edl", "text/plain"),
    "otio": (".otio", "application/json"),
    "youtube": (".youtube.txt", "text/plain"),
}
#: Frame rate used for the one-frame length of point cues when a result has none.
#: Frame rates an editor timeline (EDL, OTIO) can be written at.
MIN_FPS, MAX_FPS = 1.0, 1000.0
#: Longest source an EDL can address: timecode wraps after 24 hours.
EDL_MAX_S = 24 * 3600.0
#: Most spans one export may hold, all its results together (an API batch of 1,000 jobs with
#: ten spans each); past it the export is refused (413) before anything is written.
MAX_EXPORT_SEGMENTS = 10_000
#: Largest export file, in bytes (64 MiB: an OTIO timeline of 10,000 spans is about 27 MB);
#: an export estimated or found larger is refused (413).
MAX_EXPORT_BYTES = 64 * 1024 * 1024
#: Bytes each format writes per span besides its text (a generous estimate), and how many
#: times the span's text (label or question, question, video) may appear, escaped.
_SIZE_PER_SPAN = {"srt": 80, "vtt": 80, "chapters": 80, "csv": 160, "jsonl": 320,
                  "edl": 160, "otio": 3000, "youtube": 24}
_TEXT_REPEATS = 3


class ExportTooLargeError(TooLargeError, ResultError):
    """An export with more spans than :data:`MAX_EXPORT_SEGMENTS`, or larger than
    :data:`MAX_EXPORT_BYTES`."""

    code = "export_too_large"


@dataclass(frozen=True)
class Cue:
    """One span as a timed text: ``[start, end)`` in seconds, what it shows, where from."""

    start: float
    end: float
    text: str
    result: Result
    span: Span
    number: int


def check_format(fmt: str) -> str:
    name = fmt.strip().lower()
    aliases = {"webvtt": "vtt", "subrip": "srt", "json": "jsonl", "cmx3600": "edl",
               "cmx_3600": "edl", "opentimelineio": "otio", "vtt-chapters": "chapters"}
    name = aliases.get(name, name)
    if name not in FORMATS:
        raise OptionsError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return name


def suffix(fmt: str) -> str:
    return FORMATS[check_format(fmt)][0]


def media_type(fmt: str) -> str:
    return FORMATS[check_format(fmt)][1]


def export(results: Any, fmt: str, *, relink: str | PurePath | None = None) -> str:
    """``results`` (a :class:`Result`, a Grounding, or several) as text in format ``fmt``.

    ``relink``: an absolute folder (POSIX or Windows) where the videos are on the machine that
    opens the file; each result's video becomes the file of the same name there (EDL and
    OTIO media references, the CSV/JSONL ``video`` column). Raises
    :class:`ExportTooLargeError` past :data:`MAX_EXPORT_SEGMENTS` spans or
    :data:`MAX_EXPORT_BYTES` bytes, :class:`ResultError` for times or text no format can
    hold."""
    name = check_format(fmt)
    items = relinked(as_results(results), relink)
    check_exportable(items, name)
    writer = {"srt": to_srt, "vtt": to_vtt, "chapters": to_vtt_chapters, "csv": to_csv,
              "jsonl": to_jsonl, "edl": to_edl, "otio": to_otio, "youtube": to_youtube}[name]
    text = writer(items)
    if len(text) > MAX_EXPORT_BYTES or len(text.encode("utf-8")) > MAX_EXPORT_BYTES:
        raise _too_large(len(text.encode("utf-8")), name)
    return text


def check_exportable(results: list[Result], fmt: str) -> None:
    """Refuse, before writing anything, what no export should hold: more than
    :data:`MAX_EXPORT_SEGMENTS` spans, an estimated size past :data:`MAX_EXPORT_BYTES`, times
    past :data:`MAX_SECONDS`, text that is not valid Unicode."""
    count = sum(len(r.spans) for r in results)
    if count > MAX_EXPORT_SEGMENTS:
        raise ExportTooLargeError(
            f"this export holds {count:,} spans; one export holds at most "
            f"{MAX_EXPORT_SEGMENTS:,} (MAX_EXPORT_SEGMENTS): export fewer results at a time")
    estimate = 0
    for result in results:
        _check_result(result)
        shared = _utf8_len(result.query) + _utf8_len(result.video)
        for span in result.spans:
            text = _utf8_len(span.label) + shared
            estimate += _SIZE_PER_SPAN[fmt] + _TEXT_REPEATS * text
    if estimate > MAX_EXPORT_BYTES:
        raise _too_large(estimate, fmt, estimated=True)


def _check_result(result: Result) -> None:
    for name, text in (("query", result.query), ("video", result.video)):
        if text:
            check_text(text, name)
    for number, span in enumerate(result.spans, 1):
        if not (0 <= span.start <= MAX_SECONDS and 0 <= span.end <= MAX_SECONDS):
            raise ResultError(f"segment {number} ({span.start:g}-{span.end:g} s) is outside "
                              f"0 to {MAX_SECONDS:g} s, the times an export can write")
        if span.label:
            check_text(span.label, "label", f"segment {number}: ")
    if result.duration is not None and not 0 <= result.duration <= MAX_SECONDS:
        raise ResultError(f"the video's duration {result.duration:g} s is outside 0 to "
                          f"{MAX_SECONDS:g} s")


def _utf8_len(text: str | None) -> int:
    return len(text.encode("utf-8", "surrogatepass")) if text else 0


def _too_large(size: int, fmt: str, *, estimated: bool = False) -> ExportTooLargeError:
    about = "would be about" if estimated else "is"
    return ExportTooLargeError(
        f"this {fmt} export {about} {size / 2**20:,.1f} MiB; an export is at most "
        f"{MAX_EXPORT_BYTES / 2**20:g} MiB (MAX_EXPORT_BYTES): export fewer spans, or shorter "
        "labels and questions")


def relinked(results: list[Result], relink: str | PurePath | None) -> list[Result]:
    """``results`` with each video moved to the folder ``relink`` (same file name)."""
    if relink is None or str(relink) == "":
        return results
    check_text(str(relink), "relink")
    folder = local_path(str(relink))
    if not folder.is_absolute():
        raise OptionsError(f"relink folder {str(relink)!r} is not absolute; give the folder "
                           "the videos are in on the machine that opens the file, e.g. "
                           "/Volumes/footage or D:\\footage")
    return [replace(r, video=str(folder / local_path(r.video).name)) if r.video else r
            for r in results]


def local_path(text: str) -> PurePath:
    """``text`` as a path: Windows (``D:\\clips\\a.mp4``, ``\\\\server\\share``) when it
    looks like one, else POSIX."""
    windows = re.match(r"[A-Za-z]:[\\/]|\\\\", text)
    return PureWindowsPath(text) if windows else PurePosixPath(text)


def export_file(results: Any, fmt: str, path: str | Path, *,
                relink: str | PurePath | None = None) -> Path:
    """Write :func:`export` to ``path`` (UTF-8) and return it."""
    out = Path(path)
    text = export(results, fmt, relink=relink)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise OptionsError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


# -- subtitles -----------------------------------------------------------------------------

def cues(results: Iterable[Result]) -> list[Cue]:
    """Every span of every result as a cue, in time order; a point lasts one frame."""
    out: list[Cue] = []
    for result in results:
        fps = result.fps if result.fps and MIN_FPS <= result.fps <= MAX_FPS else FALLBACK_FPS
        frame_s = 1.0 / fps
        for number, span in enumerate(result.spans, 1):
            end = span.end if span.end > span.start else span.start + frame_s
            out.append(Cue(span.start, end, _one_paragraph(result.text_of(span, number)),
                           result, span, number))
    return sorted(out, key=lambda c: (c.start, c.end))


def _one_paragraph(text: str) -> str:
    """Cue text without blank lines or ``-->`` (both would end or break a cue)."""
    lines = [line.strip() for line in text.replace("-->", "→").splitlines()]
    return "\n".join(line for line in lines if line) or "event"


def _millis(seconds: float) -> int:
    return int(round(seconds * 1000))


def to_srt(results: list[Result]) -> str:
    import srt

    subs = [srt.Subtitle(index=i, start=timedelta(milliseconds=_millis(c.start)),
                         end=timedelta(milliseconds=_millis(c.end)), content=c.text)
            for i, c in enumerate(cues(results), 1)]
    return str(srt.compose(subs, reindex=False))


def vtt_time(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (WebVTT's cue time)."""
    ms = _millis(seconds)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _vtt(items: Iterable[tuple[float, float, str]]) -> str:
    from webvtt import Caption, WebVTT

    vtt = WebVTT(captions=[Caption(start=vtt_time(a), end=vtt_time(b), text=text)
                           for a, b, text in items])
    return str(vtt.content)


def to_vtt(results: list[Result]) -> str:
    return _vtt((c.start, c.end, c.text) for c in cues(results))


def chapters(results: list[Result]) -> list[tuple[float, float, str]]:
    """Chapters from the spans: in time order, an overlapping chapter cut where the next
    begins (chapters never overlap), one line of title each."""
    items = [(c.start, c.end, " ".join(c.text.split())) for c in cues(results)]
    out: list[tuple[float, float, str]] = []
    for i, (start, end, title) in enumerate(items):
        if i + 1 < len(items):
            end = min(end, items[i + 1][0])
        if out and start < out[-1][1]:
            start = out[-1][1]
        if end > start:
            out.append((start, end, title))
    return out


def to_vtt_chapters(results: list[Result]) -> str:
    return _vtt(chapters(results))


def youtube_time(seconds: float, long: bool) -> str:
    whole = int(math.floor(seconds + 1e-6))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if long else f"{minutes}:{secs:02d}"


def to_youtube(results: list[Result]) -> str:
    """YouTube chapter lines for a video description: the first at ``0:00`` (an ``Intro``
    chapter is added when the first span starts later), one per span start (whole seconds;
    a span starting in the same second as the one before is left out)."""
    items = chapters(results)
    ends = [r.duration for r in results if r.duration] + [b for _, b, _ in items] + [0.0]
    long = max(ends) >= 3600
    lines: list[str] = []
    last: int | None = None
    if not items or items[0][0] >= 1.0:
        lines.append(f"{youtube_time(0.0, long)} Intro")
        last = 0
    for start, _, title in items:
        second = int(math.floor(start + 1e-6))
        if second == last:
            continue
        lines.append(f"{youtube_time(0.0 if last is None else start, long)} {title}")
        last = 0 if last is None else second
    return "\n".join(lines) + "\n"


def youtube_problems(text: str) -> list[str]:
    """Why YouTube would not show these chapters (it needs 3 or more, each 10 s or longer)."""
    lines = [line for line in text.splitlines() if line.strip()]
    problems = []
    if len(lines) < 3:
        problems.append(f"YouTube shows chapters only when there are 3 or more ({len(lines)} "
                        "here)")
    seconds = [sum(int(p) * 60 ** i for i, p in enumerate(reversed(line.split()[0].split(":"))))
               for line in lines]
    short = [b - a for a, b in zip(seconds, seconds[1:], strict=False) if b - a < 10]
    if short:
        problems.append(f"{len(short)} chapter(s) shorter than the 10 s YouTube requires")
    return problems


# -- tables --------------------------------------------------------------------------------

COLUMNS = ("query", "video", "index", "start", "end", "duration", "start_text", "end_text",
           "start_frame", "end_frame", "label", "score")


def rows(results: list[Result]) -> list[dict[str, Any]]:
    """One record per span, result by result (what CSV and JSON Lines hold)."""
    out = []
    for result in results:
        fps = result.fps if result.fps and MIN_FPS <= result.fps <= MAX_FPS else None
        for number, span in enumerate(result.spans, 1):
            first, end = frame_range(span, fps) if fps is not None else (None, None)
            out.append({
                "query": result.query, "video": result.video, "index": number,
                "start": round(span.start, 6), "end": round(span.end, 6),
                "duration": round(span.duration, 6), "start_text": format_time(span.start),
                "end_text": format_time(span.end), "start_frame": first, "end_frame": end,
                "label": span.label, "score": span.score,
            })
    return out


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV
#: injection"): such text cells are written with a leading ``'``.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell: numbers as they are (negative numbers stay numbers), empty for ``None``,
    text that a spreadsheet would run as a formula prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(results: list[Result]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows(results):
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def to_jsonl(results: list[Result]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows(results))


# -- editor timelines ----------------------------------------------------------------------

def _otio() -> Any:
    try:
        import opentimelineio
    except ImportError:
        raise OptionsError("OTIO and EDL export need OpenTimelineIO: "
                           "pip install 'vidground[outputs]'") from None
    return opentimelineio


def reel_name(video: str | None) -> str:
    """An 8-character CMX3600 reel name from the video's file name (``AX`` when unknown)."""
    stem = Path(video).stem if video else ""
    return re.sub(r"[^A-Za-z0-9]+", "", stem)[:8] or "AX"


def media_url(video: str | None) -> str:
    """The media reference of an EDL/OTIO clip: a ``file://`` URL of an absolute path (POSIX
    or Windows), else the relative path percent-encoded (never a line break or space)."""
    if not video:
        return ""
    path = local_path(video)
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/")


def one_line(text: str) -> str:
    """``text`` on one line: control characters and line or paragraph separators become
    spaces, runs of white space one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def timeline(results: list[Result], *, name: str | None = None) -> otio.schema.Timeline:
    """An OpenTimelineIO timeline: one video track, one clip per span laid end to end (a
    selects reel), each clip referencing its video with the span's frames as source range;
    the span's seconds, label, score and question are in ``metadata["vidground"]``."""
    otio = _otio()
    ot = otio.opentime
    tl = otio.schema.Timeline(name=name or (results[0].title if results else "vidground"))
    track = otio.schema.Track(name="V", kind=otio.schema.TrackKind.Video)
    tl.tracks.append(track)
    for result in results:
        _check_timeline_rate(result)
        rate = float(result.fps or FALLBACK_FPS)
        available = None
        if result.duration:
            available = ot.TimeRange(ot.RationalTime(0, rate),
                                     ot.RationalTime(max(1, frame_of(result.duration, rate)),
                                                     rate))
        reference = otio.schema.ExternalReference(target_url=media_url(result.video),
                                                  available_range=available)
        for number, span in enumerate(result.spans, 1):
            first, end = frame_range(span, rate)
            clip = otio.schema.Clip(
                name=one_line(result.text_of(span, number)),
                media_reference=reference,
                source_range=ot.TimeRange(ot.RationalTime(first, rate),
                                          ot.RationalTime(end - first, rate)))
            clip.metadata["vidground"] = {
                "start": round(span.start, 6), "end": round(span.end, 6), "label": span.label,
                "score": span.score, "query": result.query, "index": number}
            clip.metadata["cmx_3600"] = {"reel": reel_name(result.video)}
            track.append(clip)
    return tl


def to_otio(results: list[Result]) -> str:
    return str(_otio().adapters.write_to_string(timeline(results), "otio_json"))


def is_drop_frame(fps: float) -> bool:
    """29.97 and 59.94 (NTSC) timecode drops frame numbers; other rates do not."""
    return any(abs(fps - n * 1000 / 1001) < 0.005 for n in (30, 60))


def to_edl(results: list[Result]) -> str:
    """A CMX3600 EDL: one cut event per span on a record timeline starting at 00:00:00:00,
    timecode at the video's frame rate (``FCM: DROP FRAME`` and ``;`` for 29.97/59.94).

    The lines are the ones OpenTimelineIO's CMX3600 adapter writes for :func:`timeline` (a
    test compares them byte for byte), written here in one pass with OpenTimelineIO's
    timecode: the adapter finds each event's record time by walking every clip before it, so
    its time grows with the square of the spans (16,000 spans: 31 s)."""
    rates = {round(r.fps, 3) for r in results if r.fps and r.spans}
    if len(rates) > 1:
        raise OptionsError("an EDL has one frame rate, but these results come from videos at "
                           f"{', '.join(str(r) for r in sorted(rates))} fps; export each video "
                           "on its own")
    items = [r for r in results if r.spans]
    if not items:
        return f"TITLE: {_edl_title(results)}\nFCM: NON-DROP FRAME\n\n"
    if any(s.end >= EDL_MAX_S for r in items for s in r.spans):
        raise OptionsError("an EDL's timecode stops at 24 hours; a span here ends later")
    for result in items:
        _check_timeline_rate(result)
    rate = float(items[0].fps or FALLBACK_FPS)
    ot = _otio().opentime
    _check_timecode_rate(ot, rate)
    fcm = "FCM: DROP FRAME" if is_drop_frame(rate) else "FCM: NON-DROP FRAME"
    lines = [f"TITLE: {_edl_title(results)}", fcm, ""]
    record, event = ot.RationalTime(0, rate), 0
    for result in items:
        fps = float(result.fps or rate)
        reel, url = reel_name(result.video), media_url(result.video)
        for number, span in enumerate(result.spans, 1):
            first, end = frame_range(span, fps)
            source = ot.TimeRange(ot.RationalTime(first, fps), ot.RationalTime(end - first, fps))
            after = record + source.duration
            times = " ".join(ot.to_timecode(t, rate) for t in (
                source.start_time, source.end_time_exclusive(), record, after))
            event += 1
            lines.append(f"{event:03d}  {reel:8} {'V':5} C        {times}")
            name = one_line(result.text_of(span, number))
            if name:
                lines.append(f"* FROM CLIP NAME:  {name}")
            if url:
                lines.append(f"* FROM CLIP: {url}")
            record = after
    if record.to_seconds() > EDL_MAX_S:
        raise OptionsError("an EDL's record timecode stops at 24 hours, and these spans last "
                           f"{record.to_seconds() / 3600:.1f} hours end to end; export fewer")
    return "\n".join(lines) + "\n"


def _check_timecode_rate(ot: Any, rate: float) -> None:
    """SMPTE timecode exists at 23.976, 24, 25, 29.97, 30, 48, 50, 59.94 and 60 fps only."""
    try:
        ot.to_timecode(ot.RationalTime(0, rate), rate)
    except ValueError:
        raise OptionsError(f"an EDL's timecode cannot count frames at {rate:g} fps (SMPTE "
                           "timecode runs at 23.976, 24, 25, 29.97, 30, 48, 50, 59.94 or 60 "
                           "fps); export OTIO, which keeps any frame rate") from None


def _check_timeline_rate(result: Result) -> None:
    if not result.fps or not MIN_FPS <= result.fps <= MAX_FPS:
        raise OptionsError(f"the result for {result.title!r} has no usable frame rate "
                           f"({result.fps}); editor timelines are in frames at "
                           f"{MIN_FPS:g} to {MAX_FPS:g} fps")


def _edl_title(results: list[Result]) -> str:
    title = results[0].title if results else "vidground"
    return one_line(title)[:60] or "vidground"
