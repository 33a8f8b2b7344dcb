"""Requests sized to a server's cap: the error a too-large request raises and the per-question
record of what was done to make requests fit (for the response's ``timings``).

A backend that sends frames over HTTP first lowers the JPEG quality and size of a request's
frames within limits (:class:`FitTally.refitted`); when even that is too large, it raises
:class:`RequestTooLargeError` saying how many frames would fit, and the pipeline splits the
window into requests of that many frames (:class:`FitTally.split`). A context variable carries
the tally, as :mod:`vidground.cache.tally` does for the cache: ``with track_fit() as fit: ...``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ..errors import BackendError


class RequestTooLargeError(BackendError):
    """One request would carry more frames or bytes than the configured caps allow.

    ``fits`` is how many of its frames one request can carry (0: not even one frame fits)."""

    code = "request_too_large"
    http_status = 413

    def __init__(self, message: str, fits: int = 0) -> None:
        super().__init__(message)
        self.fits = int(fits)


@dataclass
class FitTally:
    """What was done for one question to keep every request under the cap."""

    refitted: int = 0  # requests whose frames were re-encoded smaller (quality and/or size)
    split: int = 0  # extra requests made by splitting windows that did not fit
    min_quality: int | None = None  # lowest JPEG quality sent
    min_side: int | None = None  # shortest "longest side" of the frames sent, in pixels
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_refit(self, quality: int, side: int) -> None:
        with self._lock:
            self.refitted += 1
            self.min_quality = quality if self.min_quality is None else min(self.min_quality,
                                                                            quality)
            self.min_side = side if self.min_side is None else min(self.min_side, side)

    def add_split(self, extra_requests: int) -> None:
        with self._lock:
            self.split += extra_requests

    def timings(self) -> dict[str, int]:
        """The ``timings`` entries: counts always, the lowest quality and size when refitted."""
        out = {"requests_refitted": self.refitted, "requests_split": self.split}
        if self.min_quality is not None and self.min_side is not None:
            out |= {"fit_jpeg_quality": self.min_quality, "fit_image_side": self.min_side}
        return out


_current: ContextVar[FitTally | None] = ContextVar("vidground_fit_tally", default=None)


@contextmanager
def track_fit() -> Iterator[FitTally]:
    """Collect what the code run inside the block did to fit requests under the cap."""
    tally = FitTally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def current_fit() -> FitTally | None:
    """The tally of the question being answered, if any."""
    return _current.get()


__all__ = ["FitTally", "RequestTooLargeError", "current_fit", "track_fit"]
