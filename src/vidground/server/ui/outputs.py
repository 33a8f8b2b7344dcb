"""What the page makes from a result: the evidence strip (frames at the segments' times), the
download of an export, and a description (``describe``) shown like an answer."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ...outputs.evidence import evidence_frames
from ...outputs.exports import export_file, suffix
from ...timecode import format_time
from .render import _esc
from .texts import _t

if TYPE_CHECKING:
    from ...grounding import Grounding

log = logging.getLogger(__name__)


class DescribedVideo:
    """A description of the whole video (``vidground.outputs.describe``) as the page shows an
    answer: its events are the spans; the renderers and exporters read it like a Grounding."""

    motion = None
    reasoning = None

    def __init__(self, description: Any, query: str) -> None:
        self.description = description
        self.query = query
        self.spans = tuple(description.events)
        self.video = description.video
        self.model = description.model
        self.timings = description.timings
        self.answer = description.summary()

    def to_response(self, output_format: str = "HH:MM:SS.sss") -> dict[str, Any]:
        return self.description.to_response(output_format)  # type: ignore[no-any-return]

    def answer_in(self, output_format: str | None = None) -> str:
        """The list of events with their times in ``output_format``."""
        segments = self.to_response(output_format or "HH:MM:SS.sss")["segments"]
        return "\n".join(f"{s['start_text']} - {s['end_text']}  {s.get('label') or ''}".rstrip()
                         for s in segments) or self.answer

    def timestamp_range(self, output_format: str = "HH:MM:SS.sss") -> tuple[Any, Any] | None:
        rng = self.to_response(output_format)["timestamp_range"]
        return (rng[0], rng[1]) if rng else None


EVIDENCE_SPANS = 12  # evidence frames are shown for at most this many segments
EVIDENCE_WIDTH = 160


def evidence_html(grounding: Grounding, lang: str) -> str:
    """A strip of thumbnails under the timeline: the first, middle and last frame of each
    segment, at their exact times (``vidground.outputs.evidence``); a click jumps there."""
    spans = list(grounding.spans)[:EVIDENCE_SPANS]
    if not spans:
        return ""
    try:
        frames = evidence_frames(grounding.video, spans, width=EVIDENCE_WIDTH)
    except Exception:  # noqa: BLE001 - the result stands without its pictures
        log.exception("evidence frames failed")
        return ""
    rows: dict[int, list[str]] = {}
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame.image).save(buf, "JPEG", quality=80)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        when = format_time(frame.frame_time)
        rows.setdefault(frame.span_index, []).append(
            f'<figure class="vg-thumb" role="button" tabindex="0" '
            f'data-vg-start="{frame.frame_time:.6f}" data-vg-end="{frame.span.end:.6f}" '
            f'data-vg-role="{_esc(frame.role)}" title="{_esc(when)}">'
            f'<img alt="{_esc(frame.role)} {_esc(when)}" src="data:image/jpeg;base64,{data}">'
            f"<figcaption>{_esc(when)}</figcaption></figure>")
    parts = [f'<div class="vg-evidence" id="vg-evidence"><div class="vg-timeline-title">'
             f'{_esc(_t(lang, "evidence"))}</div>']
    for index, thumbs in rows.items():
        parts.append(f'<div class="vg-evidence-row"><span class="vg-muted">'
                     f'{_esc(_t(lang, "segment"))} {index}</span>{"".join(thumbs)}</div>')
    parts.append("</div>")
    return "".join(parts)


EXPORT_DIR = Path(tempfile.gettempdir()) / "vidground-page-exports"
EXPORT_KEEP_S = 3600.0


def export_path(grounding: Grounding, fmt: str, name: str | None = None) -> str:
    """Write ``grounding`` in ``fmt`` (``vidground.outputs.exports``) for the page's download
    button and return the file (in the temp folder, where Gradio may take files from; files
    older than an hour are removed)."""
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in EXPORT_DIR.glob("*/*"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > EXPORT_KEEP_S:
                old.unlink()
                old.parent.rmdir()
    folder = Path(tempfile.mkdtemp(dir=EXPORT_DIR))
    stem = Path(name or grounding.video.path or "vidground").stem or "vidground"
    return str(export_file(grounding, fmt, folder / f"{stem}{suffix(fmt)}"))


