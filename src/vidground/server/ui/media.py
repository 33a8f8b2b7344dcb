"""The files the page may show: the media root's videos (listed, confined like the API's
``video_path``), uploads that really came through the page, and tokens for its player."""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ...errors import VideoError, VideoNotFoundError
from ..storage import resolve_media_path

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
MEDIA_ROUTE = "ui-media"


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
