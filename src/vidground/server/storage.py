"""Where videos come from: paths inside the media root, and uploads stored under the data dir.

``resolve_media_path`` is the one gate between a client's ``video_path`` and the file system:
the path must be relative text (no URL, no NUL byte, no ``..`` escape) and, once every symlink is
resolved, must still lie inside the media root. ``MultipartFile`` streams the ``file`` part out
of an upload request (the other parts capped); ``UploadStore`` writes an upload to disk in
chunks, stops at the size limit, and keeps it only when :func:`probe` says it is a video.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import VideoError, VideoNotFoundError, VideoTooLargeError, VidgroundError
from ..video.probe import VideoInfo, probe

if TYPE_CHECKING:
    from starlette.requests import Request
from .errors import (
    BadUploadError,
    InvalidPathError,
    PathNotAllowedError,
    UnsupportedMediaError,
    UploadTooLargeError,
    VideoInUseError,
)
from .ids import VIDEO_ID_RE

URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://|^(data|file|javascript):", re.ASCII)
MAX_PATH_CHARS = 4096
CHUNK = 1024 * 1024


def resolve_media_path(media_root: Path, video_path: str) -> Path:
    """The real file ``video_path`` names inside ``media_root``, or an error (400/403/404).

    Absolute paths are accepted only when they resolve inside the media root. Symlinks are
    followed and the *target* must be inside the root as well.
    """
    if not isinstance(video_path, str) or not video_path.strip():
        raise InvalidPathError("video_path is empty; give a path relative to the media root")
    if len(video_path) > MAX_PATH_CHARS:
        raise InvalidPathError(f"video_path is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in video_path:
        raise InvalidPathError("video_path contains a NUL byte")
    if URL_RE.match(video_path.strip()):
        raise InvalidPathError(
            "video_path must be a file path relative to the media root, not a URL; "
            "upload the video with POST /api/v1/videos and use its video_id instead"
        )
    root = Path(media_root).expanduser().resolve()
    parts = PurePosixPath(video_path.replace("\\", "/")).parts
    if ".." in parts:
        raise PathNotAllowedError("video_path may not contain '..'; it must stay inside the "
                                  "media root")
    candidate = root / video_path  # an absolute video_path replaces root; checked below
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, odd names
        raise InvalidPathError(f"video_path cannot be resolved: {type(exc).__name__}") from None
    if not resolved.is_relative_to(root):
        raise PathNotAllowedError("video_path points outside the media root; only files "
                                  "inside the media root (VIDGROUND_MEDIA_ROOT) can be used")
    try:
        if not resolved.exists():
            raise VideoNotFoundError(f"No such video in the media root: {video_path}")
        if not resolved.is_file():
            raise VideoError(f"{video_path} is not a file")
    except OSError:
        raise InvalidPathError("video_path cannot be used") from None
    return resolved


def storage_now(folder: Path) -> float:
    """"Now" for expiring files in ``folder``: the file system's clock (the time it stamps on
    a marker file touched now), or this process's clock when that is earlier. Files shared by
    several processes (a second server on the same data dir, a worker) are stamped by the file
    system; a process whose own clock runs days ahead must not find them days old."""
    own = time.time()
    marker = Path(folder) / ".clock"
    try:
        marker.touch()  # an existing file: its times set to now by the file system
        return min(own, marker.stat().st_mtime)
    except OSError:
        return own


def check_video_limits(info: VideoInfo, *, max_duration_s: float, max_pixels: int) -> None:
    """Refuse videos longer or larger than the server's limits (413)."""
    if info.duration > max_duration_s:
        raise VideoTooLargeError(
            f"the video is {info.duration:.1f} s long; this server accepts at most "
            f"{max_duration_s:g} s (VIDGROUND_MAX_VIDEO_DURATION_S)"
        )
    if info.width * info.height > max_pixels:
        raise VideoTooLargeError(
            f"the video is {info.width}x{info.height}; this server accepts at most "
            f"{max_pixels} pixels per frame (VIDGROUND_MAX_VIDEO_PIXELS)"
        )


def probe_checked(path: Path, *, max_duration_s: float, max_pixels: int) -> VideoInfo:
    info = probe(path, max_pixels=max_pixels)
    check_video_limits(info, max_duration_s=max_duration_s, max_pixels=max_pixels)
    return info


class UploadStore:
    """Uploaded videos: ``<dir>/<video_id>.video`` plus ``<video_id>.json`` (facts, name)."""

    def __init__(self, directory: Path, *, max_bytes: int, max_duration_s: float,
                 max_pixels: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_duration_s = max_duration_s
        self.max_pixels = max_pixels
        self._clean_partials()

    def _clean_partials(self) -> None:
        for stale in self.directory.glob("*.part"):
            stale.unlink(missing_ok=True)

    def video_path(self, video_id: str) -> Path:
        """The stored file of ``video_id`` (404 when unknown, 400 when not an id)."""
        if not isinstance(video_id, str) or not VIDEO_ID_RE.fullmatch(video_id):
            raise VideoNotFoundError("unknown video_id: ids are 32 lowercase hex characters "
                                     "returned by POST /api/v1/videos")
        path = self.directory / f"{video_id}.video"
        if not path.is_file():
            raise VideoNotFoundError(f"unknown video_id {video_id}; upload the video first")
        return path

    def touch(self, video_id: str) -> Path:
        """Mark ``video_id`` as used now and return its file (retention counts from the last
        use). The mark is the mtime of its ``.json`` sidecar: the video file keeps its own,
        which the decoder's frame index is keyed by."""
        path = self.video_path(video_id)
        meta = self.directory / f"{video_id}.json"
        if meta.exists():
            os.utime(meta)
        else:
            meta.write_text(json.dumps(self._facts(path)), encoding="utf-8")
        return path

    def delete(self, video_id: str, in_use: set[str]) -> None:
        """Remove an upload (404 unknown; 409 while a queued or running job needs it)."""
        self.video_path(video_id)
        if video_id in in_use:
            raise VideoInUseError(f"video {video_id} is used by a queued or running job; "
                                  "cancel the job or wait for it to finish")
        self._remove(video_id)

    def sweep(self, max_idle_s: float, in_use: set[str]) -> list[str]:
        """Delete uploads unused for more than ``max_idle_s`` seconds (not those in
        ``in_use``); return their ids."""
        cutoff = storage_now(self.directory) - max_idle_s
        removed = []
        for path in self.directory.glob("*.video"):
            video_id = path.stem
            meta = self.directory / f"{video_id}.json"
            try:
                used = max(path.stat().st_mtime,
                           meta.stat().st_mtime if meta.exists() else 0.0)
            except OSError:
                continue
            idle = used < cutoff
            if idle and video_id not in in_use and VIDEO_ID_RE.fullmatch(video_id):
                self._remove(video_id)
                removed.append(video_id)
        return removed

    def _remove(self, video_id: str) -> None:
        for suffix in (".video", ".json"):
            (self.directory / f"{video_id}{suffix}").unlink(missing_ok=True)

    def describe(self, video_id: str) -> dict[str, Any]:
        path = self.video_path(video_id)
        meta_file = self.directory / f"{video_id}.json"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = self._facts(path)
        return {"video_id": video_id, **meta}

    def _facts(self, path: Path) -> dict[str, Any]:
        """What the sidecar holds, re-read from the video itself (sidecar lost or broken)."""
        info = probe(path, max_pixels=self.max_pixels)
        return {"video": info.summary(), "filename": None, "size_bytes": path.stat().st_size,
                "created_at": path.stat().st_mtime}

    async def save(self, chunks: AsyncIterator[bytes], filename: Callable[[], str | None],
                   run_sync: Callable[..., Any],
                   run_probe: Callable[..., Any] | None = None) -> dict[str, Any]:
        """Write ``chunks`` to a new file (413 past ``max_bytes``), probe it (415/422 when it
        is not a usable video; the file is deleted), and return ``{video_id, video, ...}``.
        Disk writes run through ``run_sync`` and the probe through ``run_probe`` (default
        ``run_sync``): never on the event loop. Whatever fails, nothing is left behind."""
        video_id = secrets.token_hex(16)
        part = self.directory / f"{video_id}.part"
        final = self.directory / f"{video_id}.video"
        size = 0
        try:
            out = await run_sync(open, part, "wb")
            try:
                buffer: list[bytes] = []
                buffered = 0
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadTooLargeError(
                            f"the upload is larger than {self.max_bytes // (1024 * 1024)} MB "
                            "(VIDGROUND_MAX_UPLOAD_MB)"
                        )
                    buffer.append(chunk)
                    buffered += len(chunk)
                    if buffered >= CHUNK:
                        await run_sync(out.write, b"".join(buffer))
                        buffer, buffered = [], 0
                if buffer:
                    await run_sync(out.write, b"".join(buffer))
            finally:
                await run_sync(out.close)
            if size == 0:
                raise BadUploadError("the uploaded file is empty")
            await run_sync(os.replace, part, final)
            return await (run_probe or run_sync)(self._keep, video_id, final, size,
                                                 filename())
        except BaseException:
            for leftover in (part, final, self.directory / f"{video_id}.json"):
                leftover.unlink(missing_ok=True)
            raise

    def adopt(self, source: Path, filename: str | None) -> dict[str, Any]:
        """Store a copy of ``source`` (a regular file the web page received) as a new upload,
        checked like one sent to ``POST /api/v1/videos``: size limit, then probed; the copy
        is a hard link when ``source`` lies on the same file system."""
        st = os.lstat(source)
        if not stat.S_ISREG(st.st_mode):
            raise BadUploadError("the uploaded file is not a regular file")
        if st.st_size > self.max_bytes:
            raise UploadTooLargeError(
                f"the upload is larger than {self.max_bytes // (1024 * 1024)} MB "
                "(VIDGROUND_MAX_UPLOAD_MB)")
        if st.st_size == 0:
            raise BadUploadError("the uploaded file is empty")
        video_id = secrets.token_hex(16)
        part = self.directory / f"{video_id}.part"
        final = self.directory / f"{video_id}.video"
        try:
            try:
                os.link(source, part)
            except OSError:
                shutil.copyfile(source, part)
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return self._keep(video_id, final, st.st_size, filename)

    def _keep(self, video_id: str, final: Path, size: int, filename: str | None
              ) -> dict[str, Any]:
        """Probe a stored upload; keep it (with its sidecar) when it is a usable video."""
        name = _safe_name(filename)
        try:
            info = self._probe(final, name)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        meta = {"video": info.summary(), "filename": name, "size_bytes": size,
                "created_at": final.stat().st_mtime}
        sidecar = self.directory / f"{video_id}.json"
        try:
            sidecar.write_text(json.dumps(meta), encoding="utf-8")
        except BaseException:
            sidecar.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return {"video_id": video_id, **meta}

    def _probe(self, path: Path, name: str | None = None) -> VideoInfo:
        """Probe with the server's limits; messages name what the user sent, never the
        stored file."""
        shown = repr(name) if name else "the uploaded file"
        try:
            return probe_checked(path, max_duration_s=self.max_duration_s,
                                 max_pixels=self.max_pixels)
        except VideoTooLargeError as exc:
            raise VideoTooLargeError(_rename(exc.message, path, shown)) from None
        except VideoError as exc:
            raise UnsupportedMediaError(_rename(exc.message, path, shown)) from None


def _rename(message: str, path: Path, shown: str) -> str:
    """``message`` with the stored file's path and name replaced by what the user sent."""
    for text in (str(path), path.name):
        message = message.replace(text, shown)
    return message


def _safe_name(filename: str | None) -> str | None:
    if not filename:
        return None
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    return name or None


#: Most bytes of multipart parts other than the file (their headers and values together).
OTHER_PARTS_LIMIT = 64 * 1024


class MultipartFile:
    """Streams the ``file`` field of a multipart body out of the request, chunk by chunk."""

    def __init__(self, request: Request) -> None:  # a starlette Request
        self.request = request
        self.filename: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        from python_multipart.multipart import MultipartParser, parse_options_header

        ctype, params = parse_options_header(self.request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise BadUploadError("send the video as multipart/form-data with a 'file' field")
        out: list[bytes] = []
        state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "in_file": False,
                                 "seen": False, "done": False, "other": 0}

        def count_other(n: int) -> None:
            state["other"] += n
            if state["other"] > OTHER_PARTS_LIMIT:
                raise BadUploadError(
                    f"the multipart parts besides 'file' are larger than "
                    f"{OTHER_PARTS_LIMIT // 1024} KB; send only the 'file' field")

        def on_part_begin() -> None:
            state["headers"] = {}
            state["in_file"] = False

        def on_header_field(data: bytes, start: int, end: int) -> None:
            count_other(end - start)
            state["field"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            count_other(end - start)
            state["value"] += data[start:end]

        def on_header_end() -> None:
            state["headers"][state["field"].lower()] = state["value"]
            state["field"], state["value"] = b"", b""

        def on_headers_finished() -> None:
            _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
            if disp.get(b"name") == b"file" and not state["seen"]:
                state["in_file"] = state["seen"] = True
                raw = disp.get(b"filename")
                self.filename = raw.decode("utf-8", "replace") if raw else None

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["in_file"]:
                out.append(bytes(data[start:end]))
            else:
                count_other(end - start)

        def on_part_end() -> None:
            if state["in_file"]:
                state["in_file"] = False
                state["done"] = True

        try:
            parser = MultipartParser(boundary, {
                "on_part_begin": on_part_begin, "on_header_field": on_header_field,
                "on_header_value": on_header_value, "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                "on_part_end": on_part_end})
        except Exception as exc:  # noqa: BLE001 - e.g. a boundary longer than RFC 2046 allows
            raise BadUploadError(f"unusable multipart boundary ({exc})") from None
        try:
            async for chunk in self.request.stream():
                parser.write(chunk)
                if out:
                    for piece in out:
                        yield piece
                    out.clear()
            parser.finalize()
        except VidgroundError:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed multipart from the client
            raise BadUploadError(f"malformed multipart body ({type(exc).__name__})") from None
        for piece in out:
            yield piece
        if not state["seen"]:
            raise BadUploadError("no 'file' field in the multipart body")
        if not state["done"]:
            raise BadUploadError("the multipart body ended before the file did")

