"""The errors the server adds to :mod:`vidground.errors`, in one place: each says what went
wrong and what to do, and carries the HTTP status and the ``code`` of the JSON error body (the
table in docs/api.md lists them all; a test keeps it in step). The job stores' own errors live
with them, in :mod:`.jobstore.base`."""

from __future__ import annotations

from ..errors import NotFoundError, OptionsError, VidgroundError


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


class OutputNotFoundError(NotFoundError):
    code = "output_not_found"


class JobNotDoneError(OptionsError):
    code = "job_not_finished"
    http_status = 409
