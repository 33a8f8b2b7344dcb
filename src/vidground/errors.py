"""Errors a person can act on.

Every failure a user can cause or meet is a :class:`VidgroundError` subclass whose message says
what went wrong and what to do about it, and whose ``code`` names it for programs. Errors are
grouped by what they mean (the input cannot be used, a thing asked for does not exist, a limit
was passed, try again later...); a new error subclasses the closest group. Nothing here knows
about HTTP: the server maps each group to a status at the edge
(:func:`vidground.server.statuses.status_for`). The CLI prints the message.
"""

from __future__ import annotations


class VidgroundError(Exception):
    """Base class of every error vidground raises on purpose."""

    code: str = "vidground_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- groups by meaning -----------------------------------------------------------------------


class InvalidInputError(VidgroundError):
    """What was given cannot be used: a value out of range, a file that is not a video, a
    result without spans..."""


class MalformedInputError(InvalidInputError):
    """What was given is not even of the right form: not a path, not a multipart upload..."""


class NotFoundError(VidgroundError):
    """A thing asked for does not exist (any more): a video, a job, an output file."""


class NotAllowedError(VidgroundError):
    """The caller may not do this or reach that (outside the media root, no key)."""


class TooLargeError(VidgroundError):
    """The input is over a size limit (bytes, duration, frame size, segments)."""


class ConflictError(VidgroundError):
    """The thing is in a state that does not allow this now (a job not finished, a video a
    job still needs)."""


class BusyError(VidgroundError):
    """Too much is waiting already: try again later (``retry_after`` seconds, where known)."""


class UnavailableError(VidgroundError):
    """A service this needs is not there now: the model, a database, a server stopping."""


class StorageFullError(VidgroundError):
    """No room to write: the disk or a quota is full."""


class SetupError(VidgroundError):
    """This installation is set up wrong (a shared folder missing on this machine): only its
    operator can fix it."""


# -- the errors ------------------------------------------------------------------------------


class VideoError(InvalidInputError):
    """The video cannot be used: missing, not a video, corrupt, too large..."""

    code = "invalid_video"


class VideoNotFoundError(NotFoundError, VideoError):
    code = "video_not_found"


class VideoTooLargeError(TooLargeError, VideoError):
    code = "video_too_large"


class QueryError(InvalidInputError):
    """The question is empty, too long or otherwise unusable."""

    code = "invalid_query"


class OptionsError(InvalidInputError):
    """An option has a value the pipeline cannot use."""

    code = "invalid_options"


class BackendError(UnavailableError):
    """The model backend failed: weights missing, server unreachable, bad answer..."""

    code = "backend_error"


class ModelNotAvailableError(BackendError):
    """The model weights are not on disk and cannot be downloaded."""

    code = "model_not_available"


class EventNotFoundError(VidgroundError):
    """The event asked about does not happen in the video (raised only where asked to). An
    answer, not a missing thing: it is not a :class:`NotFoundError`."""

    code = "event_not_found"
