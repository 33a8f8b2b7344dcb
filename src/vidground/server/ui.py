"""The web page: upload or pick a video, ask when something happens, see it on a timeline.

A Gradio Blocks app mounted at ``/`` of the FastAPI app (``mount_ui``). The page is a shell over
the server's :class:`~vidground.server.app.Service`, exactly like ``POST /api/v1/inference``:
an upload is taken into the same upload store (probed, size and video limits), a pick from the
media list goes through the same media-root confinement, and every question is validated and
queued on the same bounded executor, so the page gets the API's limits, queue and errors
(translated on the Chinese page). Gradio's own "was this file really uploaded?" check is on
(``has_launched``; ``gr.mount_gradio_app`` leaves it off), and the upload handler accepts only
regular files inside Gradio's upload folder.

The video player is a plain HTML5 ``<video id="vg-player">`` fed by ``GET /ui-media/{token}``,
a route that serves only files this page registered (uploads it received, files picked from the
media root). A small script (``ui_assets/ui.js``) makes timeline segments and the ▶ buttons seek
the player to the segment start and play it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import logging
import math
import os
import queue
import re
import secrets
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# at module level: FastAPI reads the route's annotations from this module's globals
from PIL import Image  # noqa: E402
from starlette.requests import Request  # noqa: E402

from ..errors import OptionsError, VideoError, VideoNotFoundError, VidgroundError  # noqa: E402
from ..options import LocateOptions  # noqa: E402
from ..outputs.exports import FORMATS as EXPORT_FORMATS  # noqa: E402
from ..progress import ProgressEvent  # noqa: E402
from ..timecode import OUTPUT_FORMATS, format_time  # noqa: E402
from .storage import probe_checked, resolve_media_path  # noqa: E402

if TYPE_CHECKING:
    import fastapi

    from ..grounding import Grounding
    from .app import Service

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("ui_assets")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".ts", ".mts", ".m2ts",
                    ".mpg", ".mpeg", ".flv", ".3gp", ".h264", ".264", ".hevc", ".265")
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".flv": "video/x-flv",
    ".3gp": "video/3gpp",
}
MEDIA_LIST_LIMIT = 500
MEDIA_LIST_DEPTH = 6
MEDIA_LIST_DIRS = 2000  # folders visited at most while listing the media root
HISTORY_LIMIT = 50
MEDIA_ROUTE = "ui-media"

# -- texts ------------------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "vidground — find **when** it happens",
        "subtitle": "Upload a video (MP4, AVI, MOV, MKV, WebM, TS, …) or pick one from the "
                    "media root, ask a question, and see the moments on the timeline.",
        "lang": "Language",
        "upload": "Upload a video",
        "media": "…or pick from the media root",
        "refresh": "↻ Refresh list",
        "query": "Question",
        "query_ph": "e.g. When does the person first pick up the phone?",
        "locate": "Locate",
        "options": "Options",
        "sampling": "Frame sampling",
        "sampling_fps": "Fixed rate (fps)",
        "sampling_adaptive": "Adaptive",
        "fps": "Frames per second",
        "max_frames": "Max frames",
        "format": "Output format",
        "reasoning_on": "Return reasoning",
        "all": "Find all occurrences",
        "refine": "Refine boundaries",
        "answer": "Answer",
        "range": "Time range(s)",
        "reasoning": "Reasoning",
        "history": "Recent questions on this video (click to re-open)",
        "no_video": "No video yet — upload one or pick one from the media root.",
        "need_video": "Please upload a video or pick one from the media root first.",
        "ready": "Video ready: {name} ({duration}). Ask a question and press Locate.",
        "ready_unknown": "Video ready: {name}. Ask a question and press Locate.",
        "done": "Done in {seconds:.1f} s — {n} segment(s) found.",
        "not_found": "The model did not find the event in this video.",
        "none": "(not found)",
        "reopened": "Re-opened an earlier result (the model was not run again).",
        "error": "Error",
        "unexpected": "Unexpected error: {error}",
        "timeline": "Timeline",
        "timeline_empty": "The timeline appears here after a question is answered.",
        "play": "▶ Play",
        "segment": "Segment",
        "cannot_play": "Your browser cannot play this video format; the results still work.",
        "stage_probe": "Reading the video",
        "stage_decode": "Decoding frames",
        "stage_model": "The model is answering",
        "stage_refine": "Refining the boundaries",
        "stage_done": "Done",
        "media_empty": "(no videos in the media root)",
        "evidence": "Evidence: the first, middle and last frame of each segment (click to jump)",
        "describe": "What happens when?",
        "described": "(every event in the video)",
        "export_format": "Export format",
        "export": "⬇ Download the result",
    },
    "zh": {
        "title": "vidground — 找出事件发生的**时间**",
        "subtitle": "上传视频（MP4、AVI、MOV、MKV、WebM、TS 等）或从媒体目录中选择，输入问题，"
                    "在时间轴上查看事件发生的时刻。",
        "lang": "语言",
        "upload": "上传视频",
        "media": "……或从媒体目录中选择",
        "refresh": "↻ 刷新列表",
        "query": "问题",
        "query_ph": "例如：请识别视频中人物第一次拿起手机的时间点",
        "locate": "定位",
        "options": "选项",
        "sampling": "抽帧方式",
        "sampling_fps": "固定帧率 (fps)",
        "sampling_adaptive": "自适应",
        "fps": "每秒帧数",
        "max_frames": "最大帧数",
        "format": "输出格式",
        "reasoning_on": "返回推理过程",
        "all": "查找所有出现",
        "refine": "精修边界",
        "answer": "回答",
        "range": "时间范围",
        "reasoning": "推理过程",
        "history": "此视频的最近提问（点击重新打开）",
        "no_video": "尚无视频——请上传或从媒体目录中选择。",
        "need_video": "请先上传视频或从媒体目录中选择一个视频。",
        "ready": "视频已就绪：{name}（{duration}）。输入问题并点击“定位”。",
        "ready_unknown": "视频已就绪：{name}。输入问题并点击“定位”。",
        "done": "完成，用时 {seconds:.1f} 秒——找到 {n} 个片段。",
        "not_found": "模型没有在视频中找到该事件。",
        "none": "（未找到）",
        "reopened": "已重新打开之前的结果（没有再次运行模型）。",
        "error": "错误",
        "unexpected": "意外错误：{error}",
        "timeline": "时间轴",
        "timeline_empty": "回答问题后，时间轴会显示在这里。",
        "play": "▶ 播放",
        "segment": "片段",
        "cannot_play": "浏览器无法播放此视频格式；定位结果不受影响。",
        "stage_probe": "正在读取视频",
        "stage_decode": "正在解码帧",
        "stage_model": "模型正在回答",
        "stage_refine": "正在精修边界",
        "stage_done": "完成",
        "media_empty": "（媒体目录中没有视频）",
        "evidence": "证据：每个片段的首帧、中间帧和末帧（点击跳转）",
        "describe": "视频里发生了什么？",
        "described": "（视频中的所有事件）",
        "export_format": "导出格式",
        "export": "⬇ 下载结果",
    },
}

#: What each API error code means, for the Chinese page (the API's own message follows).
ERROR_TEXTS_ZH: dict[str, str] = {
    "video_too_large": "视频超出了服务器的限制",
    "upload_too_large": "上传的文件超出了大小限制",
    "unsupported_media": "上传的文件不是可读取的视频",
    "invalid_upload": "上传失败",
    "invalid_video": "无法使用该视频",
    "video_not_found": "找不到该视频",
    "invalid_path": "视频路径无效",
    "path_not_allowed": "只能使用媒体目录中的文件",
    "invalid_query": "问题无效",
    "invalid_options": "选项无效",
    "invalid_request": "请求无效",
    "queue_full": "服务器正忙，请稍后再试",
    "shutting_down": "服务器正在关闭",
    "model_not_available": "模型不可用",
    "backend_error": "模型后端出错",
}

LANG_CHOICES = [("中文", "zh"), ("English", "en")]

# Which part of the progress bar each stage fills.
STAGE_SPANS = {
    "probe": (0.0, 0.05),
    "decode": (0.05, 0.5),
    "model": (0.5, 0.92),
    "refine": (0.92, 1.0),
    "done": (1.0, 1.0),
}

DETECT_LANGUAGE_JS = """
(lang, sess, fmt) => {
  const l = ((navigator.languages && navigator.languages[0]) || navigator.language || "en");
  return [l.toLowerCase().startsWith("zh") ? "zh" : "en", sess, fmt];
}
"""


def _t(lang: str | None, key: str, **kw: Any) -> str:
    text = TEXTS.get(lang or "en", TEXTS["en"]).get(key) or TEXTS["en"][key]
    return text.format(**kw) if kw else text


def _lang(value: str | None) -> str:
    return value if value in TEXTS else "en"


_FLAG_RE = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)(?:[ =]((?!--)[^\s;,)]+))?")
_OR_SET_RE = re.compile(r"\s*\(or set VIDGROUND_[A-Z_]+=[^)]*\)")


def server_advice(message: str) -> str:
    """``message`` for a page user: command-line flags that are server settings become the
    ``VIDGROUND_*`` settings the server is started with (``--backend openai`` ->
    ``VIDGROUND_BACKEND=openai``); other flags (of other tools' commands) stay."""
    from ..config import Settings

    names = set(Settings.model_fields)

    def setting(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        if name not in names:
            return match.group(0)
        value = match.group(2)
        return f"VIDGROUND_{name.upper()}" + (f"={value}" if value else "")

    return _FLAG_RE.sub(setting, _OR_SET_RE.sub("", message))


def error_text(exc: VidgroundError, lang: str) -> str:
    """The message the API gives for ``exc`` (with server settings instead of command-line
    flags); on the Chinese page after a Chinese summary."""
    message = server_advice(exc.message)
    if lang == "zh":
        summary = ERROR_TEXTS_ZH.get(exc.code, "出错了")
        return f"{summary}：{message}"
    return message


def uploaded_file(value: Any, upload_folder: Path) -> Path:
    """The file Gradio's upload route stored for this event, or an error: it must be a regular
    file (not a FIFO, device or symlink) inside Gradio's upload folder — never a path a client
    made up."""
    raw = value if isinstance(value, str) else getattr(value, "path", None) or getattr(
        value, "name", None)
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise VideoError("the upload did not arrive; upload the video again")
    try:
        folder = Path(upload_folder).resolve(strict=True)
        path = Path(raw)
        st = os.lstat(path)
        real = path.resolve(strict=True)
        real.relative_to(folder)
    except (OSError, ValueError, RuntimeError):
        raise VideoError("the page accepts only videos uploaded through it") from None
    if not stat.S_ISREG(st.st_mode):
        raise VideoError("the page accepts only videos uploaded through it")
    return real


# -- files the page may serve -----------------------------------------------------------------


class MediaRegistry:
    """Tokens for the files the page may serve to its player: only what was registered."""

    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._by_token: OrderedDict[str, Path] = OrderedDict()
        self._by_path: dict[Path, str] = {}
        self._suffix: dict[str, str] = {}
        self._lock = threading.Lock()

    def register(self, path: Path, suffix: str | None = None) -> str:
        """A token for ``path``; ``suffix`` (``.mp4``) says its type when the file's own name
        does not (uploads are stored as ``<id>.video``)."""
        path = Path(path).resolve()
        with self._lock:
            token = self._by_path.get(path)
            if token is not None:
                self._by_token.move_to_end(token)
                return token
            token = secrets.token_urlsafe(16)
            self._by_token[token] = path
            self._by_path[path] = token
            self._suffix[token] = (suffix or path.suffix).lower()
            while len(self._by_token) > self._limit:
                old_token, old = self._by_token.popitem(last=False)
                self._by_path.pop(old, None)
                self._suffix.pop(old_token, None)
            return token

    def suffix(self, token: str) -> str:
        with self._lock:
            return self._suffix.get(token, "")

    def get(self, token: str) -> Path | None:
        with self._lock:
            return self._by_token.get(token)


def looks_like_video(path: Path) -> bool:
    """Do the file's first bytes look like a video container or stream this page can take
    (MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-TS/PS, FLV, raw H.264/HEVC)? Cheap enough for a
    listing of hundreds of files; the probe decides for real when one is picked."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if len(head) < 8:
        return False
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return True  # ISO base media (MP4, MOV, 3GP, M4V)
    if head.startswith((b"\x1a\x45\xdf\xa3", b"FLV")):
        return True  # Matroska / WebM, Flash video
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return True  # MPEG program stream, MPEG-1/2 video
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return True  # MPEG transport stream (188-byte packets)
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return True  # M2TS (192-byte packets behind a 4-byte time code)
    return head.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # raw H.264 / HEVC


def list_media(root: Path, limit: int = MEDIA_LIST_LIMIT, max_depth: int = MEDIA_LIST_DEPTH,
               max_dirs: int = MEDIA_LIST_DIRS) -> list[str]:
    """Video files under ``root`` as relative POSIX paths, sorted (a video extension and the
    first bytes of a video, :func:`looks_like_video`); hidden folders, symlinks
    leading outside ``root`` and anything deeper than ``max_depth`` are skipped, and at most
    ``limit`` files from ``max_dirs`` folders are listed (a huge root stays quick)."""
    try:
        base = Path(root).expanduser().resolve(strict=True)
    except OSError:
        return []
    if not base.is_dir():
        return []
    found: list[str] = []
    for visited, (dirpath, dirnames, filenames) in enumerate(os.walk(base, followlinks=False)):
        if visited >= max_dirs:
            break
        rel_dir = Path(dirpath).relative_to(base)
        if len(rel_dir.parts) >= max_depth:
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(VIDEO_EXTENSIONS):
                continue
            full = Path(dirpath) / name
            try:
                real = full.resolve(strict=True)
                real.relative_to(base)
            except (OSError, ValueError):
                continue
            if real.is_file() and looks_like_video(real):
                found.append((rel_dir / name).as_posix())
            if len(found) >= limit:
                return sorted(found)
    return sorted(found)


def resolve_media(root: Path, relative: str) -> Path:
    """The video file ``relative`` names inside ``root``, through the API's own gate
    (:func:`~vidground.server.storage.resolve_media_path`: no absolute paths, ``..`` or
    symlinks out of the root); and only files with a video extension, as listed."""
    if not isinstance(relative, str) or not relative.strip():
        raise VideoNotFoundError("no video was chosen from the media root")
    path = resolve_media_path(root, relative.strip())
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{relative} is not a video file ({', '.join(VIDEO_EXTENSIONS)})")
    return path


def _file_key(path: Path) -> str:
    """Identity of an uploaded file: size and a hash of its first and last MiB."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return "upload:" + h.hexdigest()[:32]


# -- rendering ----------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(seconds: float, step: float) -> str:
    seconds = max(0.0, seconds)
    whole = int(math.floor(seconds + 1e-9))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    frac = ""
    if step < 1:
        frac = f"{seconds - whole:.1f}"[1:]
    if h:
        return f"{h}:{m:02d}:{s:02d}{frac}"
    return f"{m}:{s:02d}{frac}"


def _tick_step(duration: float, max_ticks: int = 10) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= max_ticks:
            return float(step)
    return float(math.ceil(duration / max_ticks / 3600) * 3600)


def status_html(kind: str, text: str) -> str:
    if not text:
        return ""
    icon = {"error": "⚠", "ok": "✔", "info": "ℹ"}.get(kind, "")
    return (f'<div class="vg-status vg-{kind}" id="vg-status-box" role="status">'
            f"{icon} {_esc(text)}</div>")


def player_html(video: dict[str, Any] | None, lang: str) -> str:
    if not video:
        return f'<div class="vg-player-empty">{_esc(_t(lang, "no_video"))}</div>'
    src = f"{MEDIA_ROUTE}/{video['token']}"
    return (
        '<div class="vg-player-wrap">'
        f'<video id="vg-player" src="{_esc(src)}" controls preload="auto" playsinline></video>'
        f'<div class="vg-player-name">{_esc(video["name"])}</div>'
        f'<div id="vg-player-note">{_esc(_t(lang, "cannot_play"))}</div>'
        "</div>"
    )


def timeline_html(grounding: Grounding | None, fmt: str, lang: str) -> str:
    """A bar the width of the video with the found segments as clickable blocks, time ticks
    under it, and one ▶ button per segment."""
    if grounding is None:
        return f'<div class="vg-empty-timeline">{_esc(_t(lang, "timeline_empty"))}</div>'
    duration = float(grounding.video.duration or 0.0)
    if not duration > 0:
        duration = max([s.end for s in grounding.spans] + [1.0])
    segments = grounding.to_response(fmt)["segments"]
    parts = [f'<div class="vg-timeline" id="vg-timeline">'
             f'<div class="vg-timeline-title">{_esc(_t(lang, "timeline"))}</div>'
             f'<div class="vg-track" data-vg-duration="{duration:.6f}">']
    if grounding.motion is not None:
        parts.append(motion_svg(grounding.motion.per_second(), duration))
    for i, seg in enumerate(segments, 1):
        start, end = float(seg["start"]), float(seg["end"])
        left = min(100.0, max(0.0, start / duration * 100))
        width = min(100.0 - left, max(0.0, (end - start) / duration * 100))
        title = f'{_t(lang, "segment")} {i}: {seg["start_text"]} – {seg["end_text"]}'
        parts.append(
            f'<div class="vg-seg" role="button" tabindex="0" data-vg-index="{i}" '
            f'data-vg-start="{start:.6f}" data-vg-end="{end:.6f}" title="{_esc(title)}" '
            f'style="left:{left:.4f}%;width:{width:.4f}%"></div>'
        )
    parts.append('<div class="vg-playhead"></div></div><div class="vg-ticks">')
    step = _tick_step(duration)
    n = int(math.floor(duration / step + 1e-9))
    ticks = [i * step for i in range(n + 1)]
    if duration - ticks[-1] > step * 0.35:
        ticks.append(duration)
    for j, t in enumerate(ticks):
        cls = "vg-tick" + (" vg-first" if j == 0 else "") + (
            " vg-last" if t >= duration - 1e-6 else "")
        parts.append(f'<span class="{cls}" style="left:{min(100.0, t / duration * 100):.4f}%">'
                     f"{_esc(_clock(t, step))}</span>")
    parts.append("</div>")
    if segments:
        parts.append('<ul class="vg-seglist">')
        for i, seg in enumerate(segments, 1):
            start, end = float(seg["start"]), float(seg["end"])
            label = (f' <span class="vg-muted">{_esc(seg["label"])}</span>'
                     if seg.get("label") else "")
            parts.append(
                f'<li><button class="vg-play" type="button" data-vg-index="{i}" '
                f'data-vg-start="{start:.6f}" data-vg-end="{end:.6f}">'
                f'{_esc(_t(lang, "play"))}</button>'
                f'<span>{_esc(_t(lang, "segment"))} {i}: <code>{_esc(seg["start_text"])}</code>'
                f' – <code>{_esc(seg["end_text"])}</code> '
                f'<span class="vg-muted">({end - start:.2f} s)</span>{label}</span></li>'
            )
        parts.append("</ul>")
    else:
        parts.append(f'<div class="vg-muted">{_esc(_t(lang, "not_found"))}</div>')
    parts.append("</div>")
    return "".join(parts)


def motion_svg(per_second: list[float], duration: float) -> str:
    """The per-second motion curve as a filled line behind the segments (adaptive sampling
    looked densely where it is high)."""
    if not per_second or not duration > 0:
        return ""
    points = ["0,100"]
    for s, value in enumerate(per_second):
        y = 100 - 90 * min(1.0, max(0.0, value))
        points.append(f"{min(100.0, s / duration * 100):.3f},{y:.2f}")
        points.append(f"{min(100.0, (s + 1) / duration * 100):.3f},{y:.2f}")
    points.append("100,100")
    return ('<svg class="vg-motion" viewBox="0 0 100 100" preserveAspectRatio="none" '
            'aria-hidden="true"><polygon points="' + " ".join(points) + '"/></svg>')


def ranges_text(grounding: Grounding, fmt: str, lang: str) -> str:
    segments = grounding.to_response(fmt)["segments"]
    if not segments:
        return _t(lang, "none")
    return "\n".join(f'{s["start_text"]} – {s["end_text"]}' for s in segments)


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{_clock(seconds, 0.5 if seconds < 60 else 1)}"


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

    def timestamp_range(self, output_format: str = "HH:MM:SS.sss") -> tuple[Any, Any] | None:
        rng = self.to_response(output_format)["timestamp_range"]
        return (rng[0], rng[1]) if rng else None


EVIDENCE_SPANS = 12  # evidence frames are shown for at most this many segments
EVIDENCE_WIDTH = 160


def evidence_html(grounding: Grounding, lang: str) -> str:
    """A strip of thumbnails under the timeline: the first, middle and last frame of each
    segment, at their exact times (``vidground.outputs.evidence``); a click jumps there."""
    from ..outputs.evidence import evidence_frames

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
    from ..outputs.exports import export_file, suffix

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


# -- session state ---------------------------------------------------------------------------


def _new_session() -> dict[str, Any]:
    return {"video": None, "history": [], "current": None, "next_id": 1, "status": ("", "")}


def _session(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) and "history" in value else _new_session()


def _history_for(sess: dict[str, Any]) -> list[dict[str, Any]]:
    video = sess.get("video")
    if not video:
        return []
    return [e for e in sess["history"] if e["video_key"] == video["key"]]


def _history_choices(sess: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    choices = []
    for e in _history_for(sess):
        g = e["grounding"]
        rng = g.timestamp_range(e["fmt"])
        shown = f"{rng[0]} – {rng[1]}" if rng else _t(lang, "none")
        query = e["query"] if len(e["query"]) <= 60 else e["query"][:57] + "…"
        choices.append((f"{query}  →  {shown}", str(e["id"])))
    return choices


def _find_entry(sess: dict[str, Any], entry_id: Any) -> dict[str, Any] | None:
    for e in sess["history"]:
        if str(e["id"]) == str(entry_id):
            return e
    return None


# -- the page -----------------------------------------------------------------------------------


def _theme():
    import gradio as gr

    # System fonts only: the default theme would fetch Google fonts from the internet.
    return gr.themes.Soft(
        primary_hue="orange",
        font=[gr.themes.Font("system-ui"), gr.themes.Font("-apple-system"),
              gr.themes.Font("Segoe UI"), gr.themes.Font("Noto Sans CJK SC"), "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("SFMono-Regular"),
                   gr.themes.Font("Menlo"), "monospace"],
    )


def build_blocks(svc: Service, registry: MediaRegistry):
    """The Gradio Blocks of the page (not yet mounted)."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    settings = svc.settings
    media_root = svc.media_root
    default = LocateOptions()
    lang0 = "en"

    def media_choices() -> list[str]:
        return list_media(media_root)

    # uploads live in Gradio's cache: files older than a day are removed (checked hourly)
    with gr.Blocks(title="vidground", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as demo:
        sess_state = gr.State(None)
        with gr.Row(equal_height=False):
            header = gr.Markdown(f"# {_t(lang0, 'title')}\n{_t(lang0, 'subtitle')}",
                                 elem_classes=["vg-header"])
            lang = gr.Radio(LANG_CHOICES, value=lang0, label=_t(lang0, "lang"),
                            elem_id="vg-lang", scale=0, min_width=240)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                player = gr.HTML(player_html(None, lang0), elem_id="vg-player-box",
                                 js_on_load=None)
                upload = gr.File(label=_t(lang0, "upload"), file_types=list(VIDEO_EXTENSIONS),
                                 file_count="single", type="filepath", elem_id="vg-upload",
                                 height=110)
                with gr.Row(equal_height=True):
                    media = gr.Dropdown(choices=[], value=None, label=_t(lang0, "media"),
                                        elem_id="vg-media", scale=4, allow_custom_value=False)
                    refresh = gr.Button(_t(lang0, "refresh"), scale=1, size="sm",
                                        elem_id="vg-refresh")
            with gr.Column(scale=6):
                query = gr.Textbox(label=_t(lang0, "query"), placeholder=_t(lang0, "query_ph"),
                                   lines=2, max_lines=6, elem_id="vg-query")
                with gr.Accordion(_t(lang0, "options"), open=False,
                                  elem_id="vg-options") as options_box:
                    with gr.Row():
                        sampling = gr.Radio(
                            [(_t(lang0, "sampling_fps"), "fps"),
                             (_t(lang0, "sampling_adaptive"), "adaptive")],
                            value="fps", label=_t(lang0, "sampling"), elem_id="vg-sampling")
                        fps = gr.Number(value=float(default.frame_sampling_rate)
                                        if default.frame_sampling_rate != "adaptive" else 2.0,
                                        minimum=0.01, maximum=60, step=0.5,
                                        label=_t(lang0, "fps"), elem_id="vg-fps")
                        max_frames = gr.Number(value=default.max_frames, minimum=2, maximum=4096,
                                               precision=0, step=16,
                                               label=_t(lang0, "max_frames"),
                                               elem_id="vg-max-frames")
                    with gr.Row():
                        fmt = gr.Dropdown(list(OUTPUT_FORMATS), value=default.output_format,
                                          label=_t(lang0, "format"), elem_id="vg-format",
                                          min_width=190)
                        reasoning_on = gr.Checkbox(value=default.return_reasoning,
                                                   label=_t(lang0, "reasoning_on"),
                                                   elem_id="vg-reasoning-on")
                        all_occ = gr.Checkbox(value=default.all_occurrences,
                                              label=_t(lang0, "all"), elem_id="vg-all")
                        refine = gr.Checkbox(value=default.refine, label=_t(lang0, "refine"),
                                             elem_id="vg-refine")
                with gr.Row(equal_height=True):
                    locate_btn = gr.Button(_t(lang0, "locate"), variant="primary", size="lg",
                                           elem_id="vg-locate", scale=3)
                    describe_btn = gr.Button(_t(lang0, "describe"), variant="secondary",
                                             size="lg", elem_id="vg-describe", scale=2)
                status = gr.HTML("", elem_id="vg-status", js_on_load=None)
                answer = gr.Textbox(label=_t(lang0, "answer"), lines=2, max_lines=8,
                                    interactive=False, elem_id="vg-answer", buttons=["copy"])
                ranges = gr.Textbox(label=_t(lang0, "range"), lines=1, max_lines=10,
                                    interactive=False, elem_id="vg-range", buttons=["copy"])
        timeline = gr.HTML(timeline_html(None, "HH:MM:SS.sss", lang0), elem_id="vg-timeline-box",
                           js_on_load=None)
        with gr.Row(equal_height=False):
            reasoning = gr.Textbox(label=_t(lang0, "reasoning"), lines=3, max_lines=12,
                                   interactive=False, elem_id="vg-reasoning", scale=6)
            history = gr.Radio([], value=None, label=_t(lang0, "history"), elem_id="vg-history",
                               scale=5)
        evidence = gr.HTML("", elem_id="vg-evidence-box", js_on_load=None)
        with gr.Row(equal_height=True):
            export_fmt = gr.Dropdown(list(EXPORT_FORMATS), value="srt",
                                     label=_t(lang0, "export_format"),
                                     elem_id="vg-export-format", scale=1, min_width=180)
            export_btn = gr.DownloadButton(_t(lang0, "export"), value=None,
                                           elem_id="vg-export", scale=2, interactive=False)

        # -- handlers ---------------------------------------------------------------------

        def result_outputs(sess: dict[str, Any], entry: dict[str, Any] | None, fmt_value: str,
                           lang_value: str) -> tuple[Any, ...]:
            """(answer, ranges, reasoning, timeline) for ``entry`` (None: cleared)."""
            if entry is None:
                return "", "", "", timeline_html(None, fmt_value, lang_value)
            g = entry["grounding"]
            return (g.answer or "", ranges_text(g, fmt_value, lang_value), g.reasoning or "",
                    timeline_html(g, fmt_value, lang_value))

        def output_values(entry: dict[str, Any] | None, export_value: str,
                          lang_value: str) -> tuple[Any, ...]:
            """(evidence strip, download button) for ``entry`` (None: cleared)."""
            if entry is None:
                return "", gr.update(value=None, interactive=False)
            if "evidence" not in entry:
                entry["evidence"] = evidence_html(entry["grounding"], lang_value)
            return entry["evidence"], gr.update(
                value=export_path(entry["grounding"], export_value, entry.get("name")),
                interactive=True)

        def choose_video(sess: dict[str, Any], path: Path, name: str, key: str,
                         source: dict[str, str], duration: float | None,
                         lang_value: str) -> tuple[Any, ...]:
            """Make ``path`` the session's video; ``source`` is how requests name it
            (``{"video_id": ...}`` or ``{"video_path": ...}``, as in the API)."""
            token = registry.register(path, Path(name).suffix)
            video = {"path": str(path), "name": name, "key": key, "token": token,
                     "duration": duration, "source": source}
            sess["video"] = video
            sess["current"] = None
            if duration is not None:
                text = _t(lang_value, "ready", name=name, duration=_duration_text(duration))
            else:
                text = _t(lang_value, "ready_unknown", name=name)
            kind = "info"
            sess["status"] = (kind, text)
            return (sess, player_html(video, lang_value), status_html(kind, text),
                    *result_outputs(sess, None, "HH:MM:SS.sss", lang_value),
                    gr.update(choices=_history_choices(sess, lang_value), value=None),
                    *output_values(None, "srt", lang_value))

        video_outputs = [sess_state, player, status, answer, ranges, reasoning, timeline, history,
                         evidence, export_btn]

        def refuse(sess: dict[str, Any], exc: VidgroundError, lang_value: str
                   ) -> tuple[Any, ...]:
            text = error_text(exc, lang_value)
            sess["status"] = ("error", text)
            return (sess, gr.skip(), status_html("error", text),
                    *(gr.skip(),) * (len(video_outputs) - 3))

        def on_upload(file: Any, sess: Any, lang_value: str):
            sess = _session(sess)
            lang_value = _lang(lang_value)
            if not file:
                return (gr.skip(),) * (len(video_outputs) + 1)
            try:
                path = uploaded_file(file, Path(get_upload_folder()))
                key = _file_key(path)
                # into the API's upload store: probed with the API's limits, same video_id
                meta = svc.adopt_upload(path, path.name)
                stored = svc.uploads.video_path(meta["video_id"])
            except VidgroundError as exc:
                return (*refuse(sess, exc, lang_value), gr.skip())
            except OSError:
                log.exception("taking the page's upload failed")
                return (*refuse(sess, VideoError("the upload could not be read; upload it "
                                                 "again"), lang_value), gr.skip())
            name = meta.get("filename") or path.name
            return (*choose_video(sess, stored, name, key, {"video_id": meta["video_id"]},
                                  float(meta["video"]["duration"]), lang_value),
                    gr.update(value=None))

        def on_pick(rel: str | None, sess: Any, lang_value: str):
            sess = _session(sess)
            lang_value = _lang(lang_value)
            if not rel:
                return (gr.skip(),) * (len(video_outputs) + 1)
            try:
                path = resolve_media(media_root, rel)
                info = probe_checked(path, max_duration_s=settings.max_video_duration_s,
                                     max_pixels=settings.max_video_pixels)
            except VidgroundError as exc:
                return (*refuse(sess, exc, lang_value), gr.skip())
            return (*choose_video(sess, path, rel, "media:" + rel, {"video_path": rel},
                                  float(info.duration), lang_value),
                    gr.update(value=None))

        def on_refresh():
            return gr.update(choices=media_choices())

        def on_locate(sess: Any, query_value: str, sampling_value: str, fps_value: Any,
                      max_frames_value: Any, fmt_value: str, reasoning_value: bool,
                      all_value: bool, refine_value: bool, lang_value: str,
                      export_value: str,
                      progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
            return ask_model(sess, query_value, sampling_value, fps_value, max_frames_value,
                             fmt_value, reasoning_value, all_value, refine_value, lang_value,
                             export_value, progress, describing=False)

        def on_describe(sess: Any, query_value: str, sampling_value: str, fps_value: Any,
                        max_frames_value: Any, fmt_value: str, reasoning_value: bool,
                        all_value: bool, refine_value: bool, lang_value: str,
                        export_value: str,
                        progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
            return ask_model(sess, query_value, sampling_value, fps_value, max_frames_value,
                             fmt_value, reasoning_value, all_value, refine_value, lang_value,
                             export_value, progress, describing=True)

        def ask_model(sess: Any, query_value: str, sampling_value: str, fps_value: Any,
                      max_frames_value: Any, fmt_value: str, reasoning_value: bool,
                      all_value: bool, refine_value: bool, lang_value: str,
                      export_value: str, progress: Any, *, describing: bool):
            """A question (``Locate``), or "what happens when?" (``describing``: every event
            of the video, labelled), through the server's service like the API."""
            sess = _session(sess)
            lang_value = _lang(lang_value)
            video = sess.get("video")

            def fail(message: str | VidgroundError):
                if isinstance(message, VidgroundError):
                    message = error_text(message, lang_value)
                sess["status"] = ("error", message)
                return (sess, status_html("error", message),
                        *(gr.skip(),) * (len(locate_outputs) - 2))

            if not video:
                return fail(_t(lang_value, "need_video"))
            try:
                rate: Any = "adaptive" if sampling_value == "adaptive" else float(fps_value)
                try:
                    frames = int(max_frames_value)
                except (TypeError, ValueError):
                    raise OptionsError("max frames must be a whole number") from None
                opts = LocateOptions(frame_sampling_rate=rate, max_frames=frames,
                                     output_format=fmt_value,
                                     return_reasoning=bool(reasoning_value),
                                     all_occurrences=bool(all_value), refine=bool(refine_value))
            except (TypeError, ValueError) as exc:
                return fail(str(exc))
            except VidgroundError as exc:
                return fail(exc)

            progress(0.0, desc=_t(lang_value, "stage_probe"))
            events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()

            def show(event: ProgressEvent) -> None:
                lo, hi = STAGE_SPANS.get(event.stage, (0.5, 0.5))
                frac = event.fraction
                if frac is None:
                    done = max(0.0, float(event.done or 0))
                    frac = min(0.95, done / (done + 200.0))
                desc = _t(lang_value, f"stage_{event.stage}") if f"stage_{event.stage}" in \
                    TEXTS["en"] else (event.message or event.stage)
                if event.total and event.stage in ("decode", "refine"):
                    desc += f" {int(event.done)}/{int(event.total)}"
                try:
                    progress(lo + (hi - lo) * frac, desc=desc)
                except Exception:  # a closed page must not break the work
                    log.debug("progress update failed", exc_info=True)

            started = time.perf_counter()
            request = {**video["source"], "query": query_value or "",
                       "options": opts.to_mapping()}
            try:
                # the API's own path: validated, queued on the shared executor, same limits
                if describing:
                    future = svc.submit_describe(request, events.put)
                else:
                    future = svc.submit(request, events.put, as_grounding=True)
                while True:
                    try:
                        g = future.result(timeout=0.1)
                        break
                    except FutureTimeout:
                        pass
                    finally:
                        while not events.empty():
                            show(events.get())
            except VidgroundError as exc:
                return fail(exc)
            except Exception as exc:
                log.exception("locate failed in the web page")
                return fail(_t(lang_value, "unexpected", error=f"{type(exc).__name__}: {exc}"))
            elapsed = time.perf_counter() - started
            if describing:
                g = DescribedVideo(g, _t(lang_value, "described"))
            entry = {"id": sess["next_id"], "video_key": video["key"], "query": g.query,
                     "name": video["name"], "describe": describing,
                     "fmt": fmt_value, "grounding": g, "at": time.time()}
            sess["next_id"] += 1
            sess["history"].insert(0, entry)
            del sess["history"][HISTORY_LIMIT:]
            sess["current"] = entry["id"]
            if g.spans:
                kind, text = "ok", _t(lang_value, "done", seconds=elapsed, n=len(g.spans))
            else:
                kind, text = "info", _t(lang_value, "not_found")
            sess["status"] = (kind, text)
            return (sess, status_html(kind, text), *result_outputs(sess, entry, fmt_value,
                                                                    lang_value),
                    gr.update(choices=_history_choices(sess, lang_value), value=str(entry["id"])),
                    *output_values(entry, export_value, lang_value))

        def on_history(entry_id: Any, sess: Any, fmt_value: str, lang_value: str,
                       export_value: str):
            sess = _session(sess)
            lang_value = _lang(lang_value)
            entry = _find_entry(sess, entry_id)
            if entry is None:
                return (sess, *(gr.skip(),) * 8)
            sess["current"] = entry["id"]
            sess["status"] = ("info", _t(lang_value, "reopened"))
            return (sess, status_html("info", _t(lang_value, "reopened")),
                    *result_outputs(sess, entry, fmt_value, lang_value),
                    gr.skip() if entry.get("describe") else entry["query"],
                    *output_values(entry, export_value, lang_value))

        def on_export_format(export_value: str, sess: Any):
            entry = _find_entry(_session(sess), _session(sess).get("current"))
            if entry is None or export_value not in EXPORT_FORMATS:
                return gr.skip()
            return gr.update(value=export_path(entry["grounding"], export_value,
                                               entry.get("name")), interactive=True)

        def on_format(fmt_value: str, sess: Any, lang_value: str):
            sess = _session(sess)
            entry = _find_entry(sess, sess.get("current"))
            if entry is None:
                return gr.skip(), gr.skip()
            g = entry["grounding"]
            try:
                return (ranges_text(g, fmt_value, _lang(lang_value)),
                        timeline_html(g, fmt_value, _lang(lang_value)))
            except ValueError:
                return gr.skip(), gr.skip()

        def on_language(lang_value: str, sess: Any, fmt_value: str):
            lv = _lang(lang_value)
            sess = _session(sess)
            entry = _find_entry(sess, sess.get("current"))
            kind, text = sess.get("status") or ("", "")
            tl = timeline_html(entry["grounding"] if entry else None, fmt_value, lv)
            return (
                gr.update(value=lv, label=_t(lv, "lang")),
                f"# {_t(lv, 'title')}\n{_t(lv, 'subtitle')}",
                player_html(sess.get("video"), lv),
                gr.update(label=_t(lv, "upload")),
                gr.update(label=_t(lv, "media"), choices=media_choices()),
                gr.update(value=_t(lv, "refresh")),
                gr.update(label=_t(lv, "query"), placeholder=_t(lv, "query_ph")),
                gr.update(label=_t(lv, "options")),
                gr.update(label=_t(lv, "sampling"),
                          choices=[(_t(lv, "sampling_fps"), "fps"),
                                   (_t(lv, "sampling_adaptive"), "adaptive")]),
                gr.update(label=_t(lv, "fps")),
                gr.update(label=_t(lv, "max_frames")),
                gr.update(label=_t(lv, "format")),
                gr.update(label=_t(lv, "reasoning_on")),
                gr.update(label=_t(lv, "all")),
                gr.update(label=_t(lv, "refine")),
                gr.update(value=_t(lv, "locate")),
                status_html(kind, text) if kind != "error" else gr.skip(),
                gr.update(label=_t(lv, "answer")),
                # (no nested gr.skip(): Gradio would show it as text in the box)
                gr.update(label=_t(lv, "range"),
                          value=ranges_text(entry["grounding"], fmt_value, lv))
                if entry else gr.update(label=_t(lv, "range")),
                gr.update(label=_t(lv, "reasoning")),
                gr.update(label=_t(lv, "history"), choices=_history_choices(sess, lv)),
                tl,
                gr.update(label=_t(lv, "export_format")),
                gr.update(label=_t(lv, "export")),
                gr.update(value=_t(lv, "describe")),
            )

        language_outputs = [lang, header, player, upload, media, refresh, query, options_box,
                            sampling, fps, max_frames, fmt, reasoning_on, all_occ, refine,
                            locate_btn, status, answer, ranges, reasoning, history, timeline,
                            export_fmt, export_btn, describe_btn]

        upload.upload(on_upload, [upload, sess_state, lang], [*video_outputs, media],
                      api_visibility="undocumented")
        media.input(on_pick, [media, sess_state, lang], [*video_outputs, upload],
                    api_visibility="undocumented")
        refresh.click(on_refresh, None, media, api_visibility="undocumented")
        locate_inputs = [sess_state, query, sampling, fps, max_frames, fmt, reasoning_on,
                         all_occ, refine, lang, export_fmt]
        locate_outputs = [sess_state, status, answer, ranges, reasoning, timeline, history,
                          evidence, export_btn]
        locate_btn.click(on_locate, locate_inputs, locate_outputs, api_visibility="undocumented",
                         show_progress_on=[status], concurrency_id="locate")
        query.submit(on_locate, locate_inputs, locate_outputs, api_visibility="undocumented",
                     show_progress_on=[status], concurrency_id="locate")
        describe_btn.click(on_describe, locate_inputs, locate_outputs,
                           api_visibility="undocumented", show_progress_on=[status],
                           concurrency_id="locate")
        history.input(on_history, [history, sess_state, fmt, lang, export_fmt],
                      [sess_state, status, answer, ranges, reasoning, timeline, query,
                       evidence, export_btn],
                      api_visibility="undocumented")
        export_fmt.input(on_export_format, [export_fmt, sess_state], export_btn,
                         api_visibility="undocumented")
        fmt.input(on_format, [fmt, sess_state, lang], [ranges, timeline],
                  api_visibility="undocumented")
        lang.input(on_language, [lang, sess_state, fmt], language_outputs,
                   api_visibility="undocumented")
        # Follow the browser's language on load (and fill the media list).
        demo.load(on_language, [lang, sess_state, fmt], language_outputs, js=DETECT_LANGUAGE_JS,
                  api_visibility="undocumented")
    # the shared executor bounds the model work; Gradio's queue only has to let questions
    # reach it (and they get its 429 when it is full)
    limit = max(1, int(settings.queue_limit or 64))
    demo.queue(default_concurrency_limit=limit, max_size=limit)
    return demo


def mount_ui(app: fastapi.FastAPI, svc: Service) -> None:
    """Mount the web page at ``/`` of ``app`` (call after the API routes are added), plus
    ``GET /ui-media/{token}`` that streams the videos the page registered to its player (with
    an API key set: only to a logged-in page or a client sending the key)."""
    import gradio as gr
    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    from .http import UnauthorizedError, install_error_handlers, key_matches

    settings = svc.settings
    registry = MediaRegistry()
    page_app: dict[str, Any] = {}

    def page_user_ok(request: Request) -> bool:
        """No key configured, the right ``Authorization: Bearer`` key, or the cookie of a
        page that logged in."""
        if not settings.api_key:
            return True
        if key_matches(request, settings.api_key):
            return True
        gradio_app = page_app.get("app")
        if gradio_app is None:
            return False
        cookie_id = getattr(gradio_app, "cookie_id", "")
        token = (request.cookies.get(f"access-token-{cookie_id}")
                 or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
        return bool(token) and token in getattr(gradio_app, "tokens", {})

    @app.get(f"/{MEDIA_ROUTE}/{{token}}", include_in_schema=False)
    def ui_media(token: str, request: Request) -> FileResponse:
        if not page_user_ok(request):
            raise UnauthorizedError("log in to the page (or send 'Authorization: Bearer "
                                    "<key>') to play its videos")
        path = registry.get(token)
        if path is None or not path.is_file():
            raise HTTPException(status_code=404, detail="unknown video")
        return FileResponse(path, media_type=MEDIA_TYPES.get(registry.suffix(token),
                                                             "application/octet-stream"))

    demo = build_blocks(svc, registry)
    api_key = getattr(settings, "api_key", None)
    auth = None
    if api_key:
        # With an API key configured the page is not open either: log in with the key as the
        # password (any user name). The page calls the library directly, not the /api routes.
        def auth(username: str, password: str) -> bool:
            return secrets.compare_digest(str(password).encode(), str(api_key).encode())

    head = "<script>\n" + (ASSETS / "ui.js").read_text(encoding="utf-8") + "\n</script>"
    max_mb = int(getattr(settings, "max_upload_mb", 2048) or 2048)
    gr.mount_gradio_app(
        app, demo, path="/",
        theme=_theme(),
        css=(ASSETS / "ui.css").read_text(encoding="utf-8"),
        head=head,
        max_file_size=f"{max_mb}mb",
        ssr_mode=False,
        footer_links=[],
        show_error=True,
        mcp_server=False,
        auth=auth,
        auth_message=("Enter the server's API key (VIDGROUND_API_KEY) as the password; any user "
                      "name. / 请输入服务器的 API 密钥作为密码，用户名任意。") if auth else None,
    )
    # Gradio checks that files named in events really came through its upload route only once
    # the app "has launched"; mount_gradio_app never sets the flag, so set it here (the check
    # is Gradio's own, in processing_utils._check_allowed).
    demo.has_launched = True
    for route in app.router.routes:
        mounted = getattr(route, "app", None)
        if getattr(mounted, "blocks", None) is demo:
            page_app["app"] = mounted
            # the page's own routes answer errors in our JSON shape too (with Gradio's
            # ``detail`` key, which its client reads)
            install_error_handlers(mounted, detail=True)
