"""Errors a person can act on.

Every failure a user can cause or meet is a :class:`VidgroundError` subclass whose message says
what went wrong and what to do about it. The CLI prints the message; the API maps ``code`` and
``http_status`` to a JSON error body.
"""

from __future__ import annotations


class VidgroundError(Exception):
    """Base class of every error vidground raises on purpose."""

    code: str = "vidground_error"
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VideoError(VidgroundError):
    """The video cannot be used: missing, not a video, corrupt, too large..."""

    code = "invalid_video"
    http_status = 422


class VideoNotFoundError(VideoError):
    code = "video_not_found"
    http_status = 404


class VideoTooLargeError(VideoError):
    code = "video_too_large"
    http_status = 413


class QueryError(VidgroundError):
    """The question is empty, too long or otherwise unusable."""

    code = "invalid_query"
    http_status = 422


class OptionsError(VidgroundError):
    """An option has a value the pipeline cannot use."""

    code = "invalid_options"
    http_status = 422


class BackendError(VidgroundError):
    """The model backend failed: weights missing, server unreachable, bad answer..."""

    code = "backend_error"
    http_status = 503


class ModelNotAvailableError(BackendError):
    """The model weights are not on disk and cannot be downloaded."""

    code = "model_not_available"
    http_status = 503


class NotFoundError(VidgroundError):
    """The event asked about does not happen in the video (raised only where asked to)."""

    code = "event_not_found"
    http_status = 404
