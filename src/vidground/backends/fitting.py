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
    #: per configured (quality, side): the encoding step the question's requests start at
    _starts: dict[tuple[int, int], int] = field(default_factory=dict, repr=False,
                                                compare=False)
    _learning: dict[tuple[int, int], threading.Lock] = field(default_factory=dict, repr=False,
                                                             compare=False)

    def start_step(self, key: tuple[int, int]) -> int:
        """The step of :func:`fit_steps` the question's requests encoded at ``key`` start at:
        the lowest an earlier request needed (its frames have the same size; 0 at first)."""
        with self._lock:
            return self._starts.get(key, 0)

    def learn(self, key: tuple[int, int], step: int) -> None:
        with self._lock:
            self._starts[key] = max(step, self._starts.get(key, 0))

    def learning(self, key: tuple[int, int]) -> threading.Lock | None:
        """While the first request at ``key`` finds its encoding, the others wait on this lock
        (then start where it ended) instead of sampling the same steps themselves; None once
        a request has found it."""
        with self._lock:
            if key in self._starts:
                return None
            return self._learning.setdefault(key, threading.Lock())

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
    most ``max_bytes`` (what that cost goes to the question's tally), chosen before the frames
    are encoded in full, so each frame is encoded once (issue 22.7):

    * a request whose frames cannot reach the cap even as raw pixels is built at once;
    * otherwise a few sample frames (:data:`FIT_SAMPLE`) predict which encodings cannot fit, and
      only the first predicted to fit is built (the samples' bytes are reused where the frames
      keep their encodings, as the pipeline's do);
    * the question's later requests of frames of this size start at the encoding an earlier one
      needed (:meth:`FitTally.start_step`; the first one finds it while the others wait).

    When even the smallest encoding is too large, :class:`RequestTooLargeError` says how many
    frames fit (``empty_size()``: the size of the body without any frame)."""
    steps = fit_steps(quality, side)
    tally = current_fit()
    if tally is None or not frames:
        return _fit(frames, build, sample, steps, 0, max_bytes, empty_size, None)
    key = (int(quality), int(side))
    lock = tally.learning(key)
    if lock is None:
        return _fit(frames, build, sample, steps, tally.start_step(key), max_bytes,
                    empty_size, tally)
    with lock:  # the first request of this size finds the encoding; the others start there
        return _fit(frames, build, sample, steps, tally.start_step(key), max_bytes,
                    empty_size, tally)


#: bytes a request spends on each frame besides its base64 (its time label and JSON wrapper),
#: used to predict a request's size from its frames' sizes
FRAME_PART_BYTES = 112
#: an upper bound on a JPEG's size per pixel (quality <= 95; random noise at quality 85 takes
#: about a third of this), so a request under the cap even at this size needs no sample
_JPEG_BOUND_PER_PIXEL = 3
_JPEG_HEADER_BOUND = 2048


def _fit(frames: Sequence[Frame], build: Builder[R], sample: Sampler,
         steps: list[tuple[int, int]], first: int, max_bytes: int,
         empty_size: Callable[[], int], tally: FitTally | None) -> R:
    """:func:`fit_request` from step ``first`` on."""
    last = len(steps) - 1
    empty = empty_size() if frames else 0
    sampled = bool(frames) and not _surely_fits(frames, empty, max_bytes)
    picked = list(frames[::max(1, -(-len(frames) // FIT_SAMPLE))])

    def may_fit(step: int) -> bool:
        """Whether the sample predicts the request may fit at ``step`` (the last step is
        always tried in full: its build says how many frames fit)."""
        if not sampled or step >= last:
            return True
        mean = sum(sample(picked, *steps[step])) / len(picked)
        return empty + (mean + FRAME_PART_BYTES) * len(frames) <= max_bytes

    # the first step predicted to fit: sizes fall step by step, so halving the steps left
    # finds it with few samples (the configured encoding is asked about first)
    start = min(first, last)
    if not may_fit(start):
        low, high = start + 1, last
        while low < high:
            middle = (low + high) // 2
            if may_fit(middle):
                high = middle
            else:
                low = middle + 1
        start = low
    for step in range(start, last + 1):
        if step > start and not may_fit(step):
            continue
        built = build(*steps[step])
        if built.size <= max_bytes or not frames:
            if tally is not None:
                tally.learn(steps[0], step)
                if step > 0:
                    tally.add_refit(*steps[step])
            return built.request
    if tally is not None:
        tally.learn(steps[0], last)
    last_quality, last_side = steps[-1]
    raise too_large_error(len(frames), built, empty, max_bytes, last_quality, last_side)


def _surely_fits(frames: Sequence[Frame], empty: int, max_bytes: int) -> bool:
    """Whether ``frames`` fit under ``max_bytes`` even at an upper bound of their JPEG size
    (their pixel counts, read without touching the pixels)."""
    bound = empty
    for frame in frames:
        width, height = frame.size
        jpeg = width * height * _JPEG_BOUND_PER_PIXEL + _JPEG_HEADER_BOUND
        bound += -(-jpeg // 3) * 4 + FRAME_PART_BYTES  # base64
        if bound > max_bytes:
            return False
    return True


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
