"""The errors the server adds to :mod:`vidground.errors`, in one place: each says what went
wrong and what to do, and carries the HTTP status and the ``code`` of the JSON error body (the
table in docs/api.md lists them all; a test keeps it in step)."""

from __future__ import annotations

import errno
import sqlite3

from ..errors import NotFoundError, OptionsError, VidgroundError

#: ``errno`` values that mean "no room to write": no space, quota exceeded, file too large.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NO_ROOM_TEXT = ("no space left on device", "disk quota exceeded", "database or disk is full",
                 "file too large")


def disk_full(exc: BaseException | None) -> bool:
    """Was ``exc`` (or an exception it was raised from, or while handling) caused by a full
    disk, a full quota or a file-size limit? (SQLite's ``SQLITE_FULL``, ``ENOSPC`` from a write,
    from PyAV's muxer...)"""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in NO_ROOM:
            return True
        if isinstance(exc, (sqlite3.Error, OSError)) and any(
                text in str(exc).lower() for text in _NO_ROOM_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class InvalidPathError(VidgroundError):
    """``video_path`` is not a usable relative path (NUL byte, URL, empty, too long)."""

    code = "invalid_path"
    http_status = 400


class PathNotAllowedError(VidgroundError):
    """``video_path`` points outside the media root (``..``, absolute path, symlink)."""

    code = "path_not_allowed"
    http_status = 403


class UploadTooLargeError(VidgroundError):
    code = "upload_too_large"
    http_status = 413


class UnsupportedMediaError(VidgroundError):
    """The uploaded bytes are not a video we can read."""

    code = "unsupported_media"
    http_status = 415


class BadUploadError(VidgroundError):
    code = "invalid_upload"
    http_status = 400


class VideoInUseError(VidgroundError):
    code = "video_in_use"
    http_status = 409


class UnauthorizedError(VidgroundError):
    code = "unauthorized"
    http_status = 401


class QueueFullError(VidgroundError):
    code = "queue_full"
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(VidgroundError):
    code = "shutting_down"
    http_status = 503


class InsufficientStorageError(VidgroundError):
    """The disk (or the outputs quota, ``VIDGROUND_MAX_OUTPUTS_MB``) is full: nothing was kept
    of what this request started to write."""

    code = "insufficient_storage"
    http_status = 507
    retry_after = 60


class OutputNotFoundError(NotFoundError):
    code = "output_not_found"


class JobNotDoneError(OptionsError):
    code = "job_not_finished"
    http_status = 409


# -- jobs and job stores --------------------------------------------------------------------


class JobNotFoundError(VidgroundError):
    code = "job_not_found"
    http_status = 404


class JobFinishedError(VidgroundError):
    code = "job_finished"
    http_status = 409


class JobQueueFullError(VidgroundError):
    """More jobs than ``job_queue_limit`` would be queued (checked in the insert's transaction)."""

    code = "too_many_jobs"
    http_status = 429
    retry_after = 30


class JobStoreUnavailableError(VidgroundError):
    code = "job_store_unavailable"
    http_status = 503
    retry_after = 5


class JobStoreVersionError(VidgroundError):
    code = "job_store_too_new"
    http_status = 503


class WorkerVideoError(VidgroundError):
    """This process cannot read the job's video (a worker without the shared media/data path).
    The attempt is given back to the queue, so a worker that can read it may take it."""

    code = "video_not_on_worker"
    http_status = 422
