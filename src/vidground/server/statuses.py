"""The HTTP status of each error, in one table: errors are grouped by meaning in
:mod:`vidground.errors` and know nothing about HTTP; the edge looks an error's class up along its
MRO here, so the most specific entry wins (a :class:`~vidground.errors.VideoNotFoundError` is a
:class:`~vidground.errors.NotFoundError` before it is a :class:`~vidground.errors.VideoError`).

This module imports no web framework: the worker records a failed job's status with it too.
"""

from __future__ import annotations

from ..errors import (
    BusyError,
    ConflictError,
    EventNotFoundError,
    InvalidInputError,
    MalformedInputError,
    NotAllowedError,
    NotFoundError,
    SetupError,
    StorageFullError,
    TooLargeError,
    UnavailableError,
    VidgroundError,
)
from .errors import UnauthorizedError, UnsupportedMediaError

#: Error group (or the one error that needs its own status) -> HTTP status.
STATUS_BY_GROUP: dict[type[VidgroundError], int] = {
    VidgroundError: 400,
    InvalidInputError: 422,
    MalformedInputError: 400,
    UnsupportedMediaError: 415,
    NotFoundError: 404,
    EventNotFoundError: 404,
    NotAllowedError: 403,
    UnauthorizedError: 401,
    TooLargeError: 413,
    ConflictError: 409,
    BusyError: 429,
    UnavailableError: 503,
    StorageFullError: 507,
    SetupError: 500,
}


def status_for(exc: VidgroundError | type[VidgroundError]) -> int:
    """The HTTP status that answers ``exc`` (an error or its class): the entry of the first
    class along its MRO that :data:`STATUS_BY_GROUP` names."""
    cls = exc if isinstance(exc, type) else type(exc)
    for klass in cls.__mro__:
        status = STATUS_BY_GROUP.get(klass)
        if status is not None:
            return status
    return 500  # not a VidgroundError: only a programming error gets here
