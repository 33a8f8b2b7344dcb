"""What the page makes from a result: the evidence strip (frames at the segments' times), the
download of an export, and a description (``describe``) shown like an answer."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ...outputs.evidence import evidence_frames
from ...outputs.exports import export_file, suffix
from ...timecode import format_time
from ..storage import storage_now
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


#: Page exports live in ``<data_dir>/page-exports/export-<16 hex>/`` (owner-only), never in
#: the shared temp folder (issue 21: its cleanup followed links planted there).
EXPORT_FOLDER = "page-exports"
EXPORT_KEEP_S = 3600.0
EXPORT_NAME = re.compile(r"export-[0-9a-f]{16}")


def export_root(data_dir: Path | None = None) -> Path:
    """Where the page's exports go (``<data_dir>/page-exports``), created owner-only; refused
    when it is a link (someone planted it to have our files written, or swept, elsewhere)."""
    if data_dir is None:
        from ...config import Settings

        data_dir = Settings().data_dir
    root = Path(data_dir).expanduser() / EXPORT_FOLDER
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{EXPORT_FOLDER} in the data dir is not a folder")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(root, 0o700)
    return root


def sweep_exports(root: Path, keep_s: float = EXPORT_KEEP_S) -> int:
    """Delete export folders under ``root`` older than ``keep_s`` (by the file system's
    clock). Only real folders named like ours, only what lies directly in them; a link is
    removed as a link, never followed."""
    now = storage_now(root)
    removed = 0
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in list(entries):
            with contextlib.suppress(OSError):
                if not EXPORT_NAME.fullmatch(entry.name) \
                        or not entry.is_dir(follow_symlinks=False) \
                        or now - entry.stat(follow_symlinks=False).st_mtime <= keep_s:
                    continue
                with os.scandir(entry.path) as inner:
                    for item in list(inner):
                        if not item.is_dir(follow_symlinks=False):
                            os.unlink(item.path)  # a file, or a link itself
                os.rmdir(entry.path)
                removed += 1
    return removed


def export_path(grounding: Grounding, fmt: str, name: str | None = None,
                data_dir: Path | None = None) -> str:
    """Write ``grounding`` in ``fmt`` (``vidground.outputs.exports``) for the page's download
    button and return the file: in a fresh owner-only folder under ``<data_dir>/page-exports``
    (which the page lets Gradio serve from); folders older than an hour are removed."""
    root = export_root(data_dir)
    sweep_exports(root)
    folder = root / f"export-{secrets.token_hex(8)}"
    folder.mkdir(mode=0o700)
    stem = Path(name or grounding.video.path or "vidground").stem or "vidground"
    out = export_file(grounding, fmt, folder / f"{stem}{suffix(fmt)}")
    os.chmod(out, 0o600)
    return str(out)
