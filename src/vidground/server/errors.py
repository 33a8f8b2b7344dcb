"""The errors the server adds to :mod:`vidground.errors`, in one place: each says what went
wrong and what to do, and carries the HTTP status and the ``code`` of the JSON error body (the
table in docs/api.md lists them all; a test keeps it in step)."""

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
