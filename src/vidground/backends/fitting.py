"""Requests sized to a server's cap: how a request is made to fit (:func:`fit_request`), the error
a too-large request raises and the per-question record of what was done to make requests fit
(for the response's ``timings``).

A backend that sends frames over HTTP first lowers the JPEG quality and size of a request's
frames within limits (:func:`fit_steps`, :class:`FitTally.refitted`); when even that is too
large, it raises :class:`RequestTooLargeError` saying how many frames would fit, and the
pipeline splits the window into requests of that many frames (:class:`FitTally.split`). A
context variable carries the tally, as :mod:`vidground.cache.tally` does for the cache:
``with track_fit() as fit: ...``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import BackendError, TooLargeError
from ..frame import Frame


class RequestTooLargeError(TooLargeError, BackendError):
    """One request would carry more frames or bytes than the configured caps allow.

    ``fits`` is how many of its frames one request can carry (0: not even one frame fits)."""

    code = "request_too_large"

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


# ---------------------------------------------------------------------------------------------
# sizing one request under the caps
# ---------------------------------------------------------------------------------------------

#: A request over the byte cap is re-encoded at these JPEG qualities (those below the configured
#: one) down to ``MIN_FIT_QUALITY``, then with its frames' longest side scaled by these factors
#: down to ``MIN_FIT_SCALE``; past that :class:`RequestTooLargeError` says how many frames fit.
FIT_QUALITIES = (75, 65, 55, 50)
MIN_FIT_QUALITY = 50
FIT_SCALES = (0.85, 0.7)
MIN_FIT_SCALE = 0.7
#: frames encoded to predict which re-encoding fits before encoding all of them
FIT_SAMPLE = 12

R = TypeVar("R")


@dataclass(frozen=True)
class Built(Generic[R]):
    """One request built at one encoding: the request, its size as sent, each frame's size."""

    request: R
    size: int
    frame_sizes: list[int]


#: ``build(quality, side)``: the request with its frames encoded at that JPEG quality and side
Builder = Callable[[int, int], Built[R]]
#: ``sample(frames, quality, side)``: the encoded sizes of ``frames`` at that encoding
Sampler = Callable[[Sequence[Frame], int, int], list[int]]


def fit_steps(quality: int, side: int, *, min_quality: int = MIN_FIT_QUALITY,
              min_scale: float = MIN_FIT_SCALE) -> list[tuple[int, int]]:
    """The (JPEG quality, longest side) encodings tried in turn to fit a request under the cap:
    the configured ones first, then lower qualities down to ``min_quality``, then smaller sides
    (at ``min_quality``) down to ``min_scale`` of ``side``. Never raises quality or size."""
    floor_q = min(quality, min_quality)
    steps = [(quality, side)]
    steps += [(q, side) for q in FIT_QUALITIES if floor_q <= q < quality]
    if steps[-1][0] != floor_q:
        steps.append((floor_q, side))
    for scale in FIT_SCALES:
        if scale >= min_scale - 1e-9:
            smaller = max(1, int(side * scale))
            if smaller < steps[-1][1]:
                steps.append((floor_q, smaller))
    return steps


def check_frame_count(count: int, cap: int | None) -> None:
    """:class:`RequestTooLargeError` when ``count`` frames exceed the per-request ``cap``
    (None: no cap, as a backend's ``max_frames_per_request`` reads)."""
    if cap is not None and count > cap:
        raise RequestTooLargeError(
            f"{count} frames in one request exceed the cap of {cap}; send fewer frames per "
            "request or raise VIDGROUND_OPENAI_MAX_FRAMES_PER_REQUEST", fits=cap)


def fit_request(frames: Sequence[Frame], build: Builder[R], sample: Sampler, *, quality: int,
                side: int, max_bytes: int, empty_size: Callable[[], int]) -> R:
    """The request for ``frames`` at the first encoding of :func:`fit_steps` whose body is at
    most ``max_bytes`` (what that cost goes to the question's tally). A few sample frames
    predict which encodings cannot fit, so those are skipped without encoding every frame.
    When even the smallest encoding is too large, :class:`RequestTooLargeError` says how many
    frames fit (``empty_size()``: the size of the body without any frame)."""
    steps = fit_steps(quality, side)
    built = build(*steps[0])
    if built.size <= max_bytes or not frames:
        return built.request
    overhead = built.size - sum(built.frame_sizes)
    picked = list(frames[::max(1, -(-len(frames) // FIT_SAMPLE))])
    for i, (step_quality, step_side) in enumerate(steps[1:], start=2):
        if i < len(steps):  # the last step is always tried in full
            mean = sum(sample(picked, step_quality, step_side)) / len(picked)
            if overhead + mean * len(frames) > max_bytes:
                continue
        built = build(step_quality, step_side)
        if built.size <= max_bytes:
            tally = current_fit()
            if tally is not None:
                tally.add_refit(step_quality, step_side)
            return built.request
    last_quality, last_side = steps[-1]
    raise too_large_error(len(frames), built, empty_size(), max_bytes, last_quality, last_side)


def too_large_error(count: int, built: Built[Any], empty: int, max_bytes: int, quality: int,
                    side: int) -> RequestTooLargeError:
    """The error for ``count`` frames that do not fit even at the smallest encoding: how many
    frames would fit (at the largest frame's size), and which setting to change."""
    per_frame = (built.size - empty - sum(built.frame_sizes)) / count
    largest = max(built.frame_sizes) + per_frame
    fits = max(0, min(count - 1, int((max_bytes - empty) // largest)))
    cap = f"{max_bytes / 1e6:.1f} MB request cap"
    setting = (f"raise VIDGROUND_OPENAI_MAX_REQUEST_MB (now {max_bytes / 1024 / 1024:g}) if "
               "the server takes more, or send smaller frames (max_pixels_per_frame, "
               "VIDGROUND_OPENAI_MAX_IMAGE_SIDE)")
    if fits == 0:
        return RequestTooLargeError(
            f"one frame encodes to {largest / 1e6:.2f} MB of base64 even at JPEG quality "
            f"{quality} and {side} px, so not even one frame per request fits the {cap}; "
            f"{setting}", fits=0)
    return RequestTooLargeError(
        f"{count} frames encode to {built.size / 1e6:.1f} MB even at JPEG quality {quality} "
        f"and {side} px, over the {cap}; at most {fits} frames fit in one request (vidground "
        f"splits its windows by itself); {setting}", fits=fits)


__all__ = ["FIT_QUALITIES", "FIT_SCALES", "MIN_FIT_QUALITY", "MIN_FIT_SCALE", "Built",
           "FitTally", "RequestTooLargeError", "check_frame_count", "current_fit", "fit_request",
           "fit_steps", "too_large_error", "track_fit"]
