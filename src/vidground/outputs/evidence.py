"""Evidence: the frames that show each span (its first, middle and last frame, decoded at
their exact times) as JPEG files, and a contact sheet (one picture, one row per span, the
times written under each thumbnail) for reports.

The page can call :func:`evidence_frames` (pictures in memory) and :func:`contact_sheet`
(a Pillow image) without writing anything.

>>> frames = evidence_frames("match.mp4", [Span(12.3, 14.0)])  # doctest: +SKIP
>>> [(f.role, f.frame_time) for f in frames]  # doctest: +SKIP
[('first', 12.28), ('middle', 13.12), ('last', 13.96)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import OptionsError
from ..timecode import Span, format_time
from ..video.decode import decode_frames
from ..video.probe import VideoInfo, probe

#: How far before a span's (exclusive) end its last frame is looked up.
END_EPSILON_S = 1e-4
THUMB_WIDTH = 240
JPEG_QUALITY = 90


@dataclass(frozen=True, eq=False)
class EvidenceFrame:
    """One picture of a span: ``time`` asked for, ``frame_time`` the shown frame's own time
    (the frame on screen at ``time``), ``image`` RGB ``uint8``, ``path`` once saved."""

    span_index: int
    role: str
    time: float
    frame_time: float
    image: np.ndarray
    span: Span
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"span": self.span_index, "role": self.role, "time": round(self.time, 6),
                "frame_time": round(self.frame_time, 6),
                "time_text": format_time(self.frame_time),
                "path": str(self.path) if self.path else None}


def evidence_times(span: Span) -> list[tuple[str, float]]:
    """Where to look in ``span``: its start, middle and the moment before its end (a point
    in time gives one frame)."""
    if span.duration <= END_EPSILON_S:
        return [("first", span.start)]
    last = max(span.start, span.end - END_EPSILON_S)
    return [("first", span.start), ("middle", span.center), ("last", last)]


def evidence_frames(video: str | Path | VideoInfo, spans: Sequence[Span], *,
                    width: int | None = None) -> list[EvidenceFrame]:
    """The first, middle and last frame of every span, decoded at their exact times, at the
    video's size (or ``width`` wide)."""
    info = video if isinstance(video, VideoInfo) else probe(video)
    wanted = [(i, role, t, span) for i, span in enumerate(spans, 1)
              for role, t in evidence_times(span)]
    if not wanted:
        return []
    size = None
    if width:
        w, h = info.display_size
        size = (int(width), max(2, int(round(h * width / max(w, 1)))))
    frames = decode_frames(info, [t for _, _, t, _ in wanted], size=size, unique=False)
    return [EvidenceFrame(i, role, t, frame.time, frame.image, span)
            for (i, role, t, span), frame in zip(wanted, frames, strict=True)]


def file_name(frame: EvidenceFrame, stem: str = "span") -> str:
    when = format_time(frame.frame_time).replace(":", "-")
    return f"{stem}{frame.span_index:02d}_{frame.role}_{when}.jpg"


def save_evidence(frames: Sequence[EvidenceFrame], out_dir: str | Path, *,
                  stem: str = "span") -> list[EvidenceFrame]:
    """Write each frame as a JPEG in ``out_dir``; return them with their paths."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionsError(f"cannot create the evidence folder {folder}: "
                           f"{exc.strerror or exc}") from None
    saved = []
    for frame in frames:
        path = folder / file_name(frame, stem)
        Image.fromarray(frame.image).save(path, "JPEG", quality=JPEG_QUALITY)
        saved.append(EvidenceFrame(frame.span_index, frame.role, frame.time, frame.frame_time,
                                   frame.image, frame.span, path))
    return saved


def contact_sheet(frames: Sequence[EvidenceFrame], *, title: str | None = None,
                  thumb_width: int = THUMB_WIDTH) -> Image.Image:
    """One picture: a row per span (its label on the left), its frames as thumbnails with
    their times written under each."""
    font = ImageFont.load_default()
    rows: dict[int, list[EvidenceFrame]] = {}
    for frame in frames:
        rows.setdefault(frame.span_index, []).append(frame)
    if not rows:
        raise OptionsError("no evidence frames to put on a contact sheet")
    first = frames[0].image
    thumb_h = max(2, int(round(first.shape[0] * thumb_width / max(first.shape[1], 1))))
    pad, text_h, label_w = 8, 16, 200
    head = text_h + pad if title else 0
    cols = max(len(r) for r in rows.values())
    width = label_w + cols * (thumb_width + pad) + pad
    height = head + pad + len(rows) * (thumb_h + text_h + 2 * pad)
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad // 2), _fit(title, 120), fill=(0, 0, 0), font=font)
    y = head + pad
    for index, row in sorted(rows.items()):
        span = row[0].span
        label = span.label or f"span {index}"
        draw.text((pad, y + 2), _fit(f"{index}. {label}", 30), fill=(0, 0, 0), font=font)
        draw.text((pad, y + 2 + text_h),
                  f"{format_time(span.start)} - {format_time(span.end)}", fill=(60, 60, 60),
                  font=font)
        x = label_w
        for frame in row:
            thumb = Image.fromarray(frame.image).resize((thumb_width, thumb_h))
            sheet.paste(thumb, (x, y))
            draw.text((x, y + thumb_h + 2), f"{frame.role} {format_time(frame.frame_time)}",
                      fill=(0, 0, 0), font=font)
            x += thumb_width + pad
        y += thumb_h + text_h + 2 * pad
    return sheet


def _fit(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars - 1] + "…"


def write_evidence(video: str | Path | VideoInfo, spans: Sequence[Span], out_dir: str | Path,
                   *, title: str | None = None, stem: str = "span"
                   ) -> tuple[list[EvidenceFrame], Path | None]:
    """JPEGs of every span's frames and ``contact_sheet.jpg`` in ``out_dir``."""
    frames = save_evidence(evidence_frames(video, spans), out_dir, stem=stem)
    if not frames:
        return [], None
    sheet_path = Path(out_dir) / "contact_sheet.jpg"
    contact_sheet(frames, title=title).save(sheet_path, "JPEG", quality=JPEG_QUALITY)
    return frames, sheet_path
