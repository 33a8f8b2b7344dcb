"""Time values: one float-seconds representation inside, text only at the edges.

>>> format_time(135.678)
'00:02:15.678'
>>> parse_timecode("1:23.5")
83.5
>>> Span(1.0, 3.0).iou(Span(2.0, 4.0))
0.3333333333333333
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

OutputFormat = Literal["HH:MM:SS.sss", "HH:MM:SS", "seconds", "frames"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)


@dataclass(frozen=True)
class Span:
    """A half-open interval ``[start, end)`` of video time in seconds. ``refined``: whether its
    boundaries were re-asked on dense frames to the end (False: a call budget cut that short;
    None: refinement was not asked for)."""

    start: float
    end: float
    label: str | None = None
    score: float | None = None
    refined: bool | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"span times must be finite, got {self.start!r}, {self.end!r}")
        if self.end < self.start:
            raise ValueError(f"span end {self.end} is before its start {self.start}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def center(self) -> float:
        return (self.start + self.end) / 2

    def intersection(self, other: Span) -> float:
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    def iou(self, other: Span) -> float:
        """Temporal intersection over union; two points at the same time have IoU 1."""
        inter = self.intersection(other)
        union = max(self.end, other.end) - min(self.start, other.start)
        if union <= 0:
            return 1.0 if self.start == other.start else 0.0
        return inter / union

    def clamp(self, lo: float, hi: float) -> Span:
        start = min(max(self.start, lo), hi)
        end = min(max(self.end, lo), hi)
        return self.with_(start=start, end=end)

    def with_(self, **changes: Any) -> Span:
        values = asdict(self) | changes
        return Span(**values)

    def to_dict(self, output_format: OutputFormat = "HH:MM:SS.sss", fps: float | None = None
                ) -> dict[str, Any]:
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "start_text": format_time(self.start, output_format, fps=fps),
            "end_text": format_time(self.end, output_format, fps=fps),
            "label": self.label,
            "score": self.score,
            "refined": self.refined,
        }


def check_format(output_format: str) -> OutputFormat:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}"
        )
    return output_format  # type: ignore[return-value]


def format_time(seconds: float, output_format: str = "HH:MM:SS.sss", *,
                fps: float | None = None) -> str:
    """Format ``seconds`` as ``HH:MM:SS.sss`` (default), ``HH:MM:SS``, seconds or a frame number.

    ``frames`` needs the video's ``fps`` and gives the index of the frame shown at that time.
    """
    fmt = check_format(output_format)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format time {seconds!r}: it must be finite and not negative")
    if fmt == "seconds":
        return f"{seconds:.3f}"
    if fmt == "frames":
        if not fps or fps <= 0:
            raise ValueError("the 'frames' format needs the video's frame rate")
        return str(int(math.floor(seconds * fps + 1e-6)))
    millis = int(round(seconds * 1000))
    if fmt == "HH:MM:SS":
        millis = int(math.floor(seconds + 1e-9)) * 1000
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    if fmt == "HH:MM:SS":
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


_CLOCK = re.compile(
    r"^\s*(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2}(?:[.,]\d+)?)\s*$"
)
_SECONDS = re.compile(
    r"^\s*(?P<s>\d*[.,]\d+|\d+(?:[.,]\d*)?)\s*(?:s|sec|secs|seconds?|秒)?\s*$", re.I
)
_FRAME = re.compile(r"^\s*[fF]?(?P<n>\d+)\s*$")


def parse_timecode(text: str, *, fps: float | None = None,
                   input_format: str | None = None) -> float:
    """Parse ``HH:MM:SS(.sss)``, ``MM:SS(.sss)``, or plain seconds (``12.5``, ``12.5s``,
    ``12,5``) to seconds.

    A frame number needs ``fps`` and the form ``f123``, or ``input_format="frames"`` (then a plain
    ``123`` is a frame index too, so ``format_time(t, "frames", fps=fps)`` parses back).
    """
    text = text.strip()
    if input_format == "frames":
        m = _FRAME.match(text)
        if not fps or fps <= 0:
            raise ValueError("a frame number needs the video's frame rate")
        if not m:
            raise ValueError(f"not a frame number: {text!r}")
        return int(m["n"]) / fps
    if input_format is not None:
        check_format(input_format)
    if fps and text.lower().startswith("f") and text[1:].isdigit():
        return int(text[1:]) / fps
    m = _CLOCK.match(text)
    if m:
        hours = int(m["h"] or 0)
        minutes = int(m["m"])
        secs = float(m["s"].replace(",", "."))
        if minutes >= 60 and m["h"] is not None or secs >= 60:
            raise ValueError(f"not a valid time: {text!r}")
        return hours * 3600 + minutes * 60 + secs
    m = _SECONDS.match(text)
    if m:
        return float(m["s"].replace(",", "."))
    raise ValueError(f"not a time: {text!r} (use HH:MM:SS.sss, MM:SS or seconds)")
