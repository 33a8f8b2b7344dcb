"""The errors the server adds to :mod:`vidground.errors`, in one place: each says what went
wrong and what to do, and carries the ``code`` of the JSON error body (the table in docs/api.md
lists them all; a test keeps it in step). Each subclasses the group of :mod:`vidground.errors`
it belongs to; the HTTP status comes from that group (:mod:`vidground.server.statuses`)."""

from __future__ import annotations

import errno
import sqlite3

from ..errors import (
    BusyError,
    ConflictError,
    InvalidInputError,
    MalformedInputError,
    NotAllowedError,
    NotFoundError,
    StorageFullError,
    TooLargeError,
    UnavailableError,
)

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


class InvalidPathError(MalformedInputError):
    """``video_path`` is not a usable relative path (NUL byte, URL, empty, too long)."""

    code = "invalid_path"


class PathNotAllowedError(NotAllowedError):
    """``video_path`` points outside the media root (``..``, absolute path, symlink)."""

    code = "path_not_allowed"


class UploadTooLargeError(TooLargeError):
    code = "upload_too_large"


class UnsupportedMediaError(InvalidInputError):
    """The uploaded bytes are not a video we can read."""

    code = "unsupported_media"


class BadUploadError(MalformedInputError):
    code = "invalid_upload"


class VideoInUseError(ConflictError):
    code = "video_in_use"


class UnauthorizedError(NotAllowedError):
    code = "unauthorized"


class QueueFullError(BusyError):
    code = "queue_full"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(UnavailableError):
    code = "shutting_down"


class InsufficientStorageError(StorageFullError):
    """The disk (or the outputs quota, ``VIDGROUND_MAX_OUTPUTS_MB``) is full: nothing was kept
    of what this request started to write."""

    code = "insufficient_storage"
    retry_after = 60


class OutputNotFoundError(NotFoundError):
    code = "output_not_found"


class JobNotDoneError(ConflictError):
    code = "job_not_finished"


# -- jobs and job stores --------------------------------------------------------------------


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class JobFinishedError(ConflictError):
    code = "job_finished"


class JobQueueFullError(BusyError):
    """More jobs than ``job_queue_limit`` would be queued (checked in the insert's transaction)."""

    code = "too_many_jobs"
    retry_after = 30


class JobStoreUnavailableError(UnavailableError):
    code = "job_store_unavailable"
    retry_after = 5


class JobStoreVersionError(UnavailableError):
    code = "job_store_too_new"


class WorkerVideoError(InvalidInputError):
    """This process cannot read the job's video (a worker without the shared media/data path).
    The attempt is given back to the queue, so a worker that can read it may take it."""

    code = "video_not_on_worker"
