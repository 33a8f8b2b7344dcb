"""The files made from results — exact clips and evidence frames — in output folders under
``<data_dir>/outputs/<32 hex>/``, with the URLs that serve them (``GET
/api/v1/outputs/{id}/{name}``). Used by the outputs routes (through the service's heavy queue)
and by the service for an inference request's ``outputs: {clips, evidence}``.

Limits (issue 21): at most :data:`MAX_CLIPS` clips and :data:`MAX_EVIDENCE_SPANS` spans of
evidence per request, whichever way it comes in; the whole folder stays under
``VIDGROUND_MAX_OUTPUTS_MB`` (the oldest folders are deleted first; a request that still does
not fit is answered 507 and leaves nothing behind); a full disk is 507 too, never a half-written
folder. Folders expire a day after they were made, measured with the file system's clock
(:func:`~.storage.storage_now`), never with this process's alone: a server whose clock runs
ahead must not delete what another server made minutes ago.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any, Literal

from ..errors import VidgroundError
from ..timecode import Span
from ..video.probe import VideoInfo, probe
from .errors import InsufficientStorageError, disk_full
from .ids import OUTPUT_ID_RE
from .storage import storage_now

log = logging.getLogger("vidground.server")

#: Clips and evidence of an inference request (made in its model worker): at most this many
#: at once. The routes' requests go through the service's heavy queue instead.
HEAVY_AT_ONCE = 2
#: Output folders older than this are deleted (checked whenever a new one is made).
OUTPUT_RETENTION_S = 24 * 3600.0
#: A folder made less than this long ago is never deleted to make room (its client may be
#: downloading it); the request that does not fit gets 507 instead.
QUOTA_GRACE_S = 300.0
#: Most clips one request makes (the clips routes and ``outputs: {clips}``).
MAX_CLIPS = 20
#: Most spans one request gets evidence frames of (three JPEGs each).
MAX_EVIDENCE_SPANS = 50
#: Spans decoded per step of an evidence request (a hung-up client stops it between steps).
EVIDENCE_STEP = 5
_heavy = threading.BoundedSemaphore(HEAVY_AT_ONCE)

#: ``cancelled()`` is True once nobody waits for the files any more (the client hung up).
Cancelled = Callable[[], bool]


class OutputCancelled(Exception):
    """The request's client hung up; what was made so far has been deleted."""


def _never() -> bool:
    return False


@dataclasses.dataclass(frozen=True)
class OutputFolders:
    """Where the output folders go (``<data_dir>/outputs``) and how many bytes they may hold
    together (``quota``; None: no limit): all that making files needs of the server."""

    root: FilePath
    quota: int | None = None

    @classmethod
    def under(cls, data_dir: str | FilePath, max_outputs_mb: float | None) -> OutputFolders:
        """The folders of a server with ``data_dir`` and ``VIDGROUND_MAX_OUTPUTS_MB``."""
        mb = float(max_outputs_mb or 0)
        return cls(FilePath(data_dir) / "outputs", int(mb * 1024 * 1024) if mb > 0 else None)


# -- the folder and its limits -------------------------------------------------------------

@dataclasses.dataclass
class _Folder:
    path: FilePath
    mtime: float
    size: int


def _output_folders(root: FilePath) -> list[_Folder]:
    """The output folders under ``root`` (real directories with an output id as name, never
    a symlink), oldest first, with their sizes."""
    found = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        try:
            if not OUTPUT_ID_RE.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
                continue
            found.append(_Folder(FilePath(entry.path), entry.stat(follow_symlinks=False).st_mtime,
                                 _tree_bytes(FilePath(entry.path))))
        except OSError:
            continue
    return sorted(found, key=lambda f: f.mtime)


def _tree_bytes(folder: FilePath) -> int:
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    except OSError:
        pass
    return total


def _remove(folder: FilePath) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def sweep_outputs(root: FilePath, max_age_s: float, *, quota: int | None = None,
                  keep: FilePath | None = None) -> int:
    """Delete output folders under ``root`` last changed more than ``max_age_s`` ago (by the
    file system's clock, see the module doc); then, while the rest is over ``quota`` bytes,
    the oldest of those made more than :data:`QUOTA_GRACE_S` ago (never ``keep``). Returns
    how many folders were deleted."""
    if not root.is_dir():
        return 0
    now = storage_now(root)
    folders = _output_folders(root)
    removed = 0
    alive = []
    for folder in folders:
        if now - folder.mtime > max_age_s and folder.path != keep:
            _remove(folder.path)
            removed += 1
        else:
            alive.append(folder)
    if quota is None:
        return removed
    total = sum(f.size for f in alive)
    for folder in alive:  # oldest first
        if total <= quota:
            break
        if folder.path == keep or now - folder.mtime < QUOTA_GRACE_S:
            continue
        _remove(folder.path)
        total -= folder.size
        removed += 1
    return removed


def outputs_bytes(root: FilePath) -> int:
    return sum(f.size for f in _output_folders(root))


def _full(quota: int) -> InsufficientStorageError:
    return InsufficientStorageError(
        f"the outputs folder is full (VIDGROUND_MAX_OUTPUTS_MB = {quota / 2**20:g} MB, and "
        f"everything in it was made in the last {QUOTA_GRACE_S / 60:g} minutes); download "
        "what you need and retry later, or ask fewer spans")


def new_output(folders: OutputFolders) -> tuple[str, FilePath]:
    """A fresh output folder (expired ones are deleted first, and the oldest ones while the
    folder is over its quota); 507 when the quota is still used up."""
    root, quota = folders.root, folders.quota
    sweep_outputs(root, OUTPUT_RETENTION_S, quota=quota)
    if quota is not None and outputs_bytes(root) >= quota:
        raise _full(quota)
    output_id = secrets.token_hex(16)
    folder = root / output_id
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        if disk_full(exc):
            raise InsufficientStorageError(_DISK_FULL) from None
        raise
    return output_id, folder


_DISK_FULL = ("the server's disk is full: nothing was kept of this request's files; retry "
              "later (the server's operator needs to free space)")


def _fits(folders: OutputFolders, folder: FilePath) -> None:
    """After ``folder`` was written: make room for it, or delete it and answer 507."""
    root, quota = folders.root, folders.quota
    if quota is None:
        return
    sweep_outputs(root, OUTPUT_RETENTION_S, quota=quota, keep=folder)
    if outputs_bytes(root) > quota:
        raise _full(quota)


def _made_in(folders: OutputFolders, work: Callable[[FilePath], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work(folder)`` in a new output folder; on any failure (a full disk: 507; a client
    that hung up; the quota) the folder is deleted, so nothing half-written stays."""
    output_id, folder = new_output(folders)
    try:
        out = work(folder)
        _fits(folders, folder)
    except BaseException as exc:
        _remove(folder)
        if isinstance(exc, InsufficientStorageError):
            raise
        if disk_full(exc) or (isinstance(exc, (OSError, VidgroundError))
                              and _disk_nearly_full(folder.parent)):
            log.warning("output %s: the disk is full (%s)", output_id, type(exc).__name__)
            raise InsufficientStorageError(_DISK_FULL) from None
        raise
    return {"output_id": output_id, **out}


def _disk_nearly_full(folder: FilePath) -> bool:
    """Less than 1 MB free where ``folder`` lives (a writer that hid ENOSPC in its own
    error)."""
    try:
        return shutil.disk_usage(folder).free < 1024 * 1024
    except OSError:
        return False


def output_url(output_id: str, path: FilePath) -> str:
    return f"/api/v1/outputs/{output_id}/{path.name}"


# -- evidence and clips ---------------------------------------------------------------------

def _info(video: FilePath | VideoInfo) -> VideoInfo:
    return video if isinstance(video, VideoInfo) else probe(video)


def make_evidence(folders: OutputFolders, video: FilePath | VideoInfo, spans: list[Span],
                  title: str | None, cancelled: Cancelled = _never) -> dict[str, Any]:
    """Evidence JPEGs and a contact sheet of the first :data:`MAX_EVIDENCE_SPANS` of
    ``spans`` in a new output folder, with URLs (stops, deleting the folder, once
    ``cancelled()``)."""
    from ..outputs.evidence import contact_sheet, evidence_frames, save_evidence

    spans = list(spans)[:MAX_EVIDENCE_SPANS]

    def work(folder: FilePath) -> dict[str, Any]:
        info = _info(video)
        frames = []
        for first in range(0, len(spans), EVIDENCE_STEP):
            if cancelled():
                raise OutputCancelled()
            step = evidence_frames(info, spans[first:first + EVIDENCE_STEP])
            step = [dataclasses.replace(f, span_index=f.span_index + first) for f in step]
            frames.extend(save_evidence(step, folder))
        sheet = None
        if frames:
            sheet = folder / "contact_sheet.jpg"
            contact_sheet(frames, title=title).save(sheet, "JPEG", quality=90)
        return {"frames": [f.to_dict() | {"path": None, "url": output_url(folder.name, f.path)}
                           for f in frames if f.path is not None],
                "contact_sheet": output_url(folder.name, sheet) if sheet else None}

    return _made_in(folders, work)


def make_clips(folders: OutputFolders, video: FilePath | VideoInfo, spans: list[Span], *,
               pad: float = 0.0, mode: Literal["exact", "fast"] = "exact",
               cancelled: Cancelled = _never) -> dict[str, Any]:
    """One clip for each of the first :data:`MAX_CLIPS` of ``spans`` in a new output folder,
    with URLs (stops between clips, deleting the folder, once ``cancelled()``)."""
    from ..outputs.clips import CONTAINERS, clip_name, cut

    spans = list(spans)[:MAX_CLIPS]

    def work(folder: FilePath) -> dict[str, Any]:
        info = _info(video)
        ext = FilePath(info.path).suffix.lower() if mode == "fast" else ".mp4"
        ext = ext if ext in CONTAINERS else ".mp4"
        clips = []
        for number, span in enumerate(spans, 1):
            if cancelled():
                raise OutputCancelled()
            clips.append(cut(info, span, folder / clip_name("clip", number, span, ext),
                             pad=pad, mode=mode))
        return {"clips": [c.to_dict() | {"path": None, "url": output_url(folder.name, c.path)}
                          for c in clips]}

    return _made_in(folders, work)


def attach_outputs(folders: OutputFolders, response: dict[str, Any], video: FilePath | VideoInfo, *,
                   clips: bool = False, evidence: bool = False) -> dict[str, Any]:
    """``response`` (an inference response) with ``clips`` and/or ``evidence`` links added
    for its segments, under the routes' limits: clips of the first :data:`MAX_CLIPS`
    segments, evidence of the first :data:`MAX_EVIDENCE_SPANS` (``outputs_limited`` says when
    segments were left out)."""
    spans = [Span(s["start"], s["end"], s.get("label")) for s in response.get("segments", [])]
    out = dict(response)
    with _heavy:
        if clips:
            out["clips"] = make_clips(folders, video, spans)["clips"] if spans else []
        if evidence:
            out["evidence"] = (make_evidence(folders, video, spans, None) if spans
                               else {"frames": [], "contact_sheet": None})
    limited = {name: limit for name, limit, wanted in (("clips", MAX_CLIPS, clips),
                                                        ("evidence", MAX_EVIDENCE_SPANS,
                                                         evidence))
               if wanted and len(spans) > limit}
    if limited:
        out["outputs_limited"] = limited
    return out
