"""Coarse-to-fine: place span boundaries to within one frame, and check each span.

A model that saw one frame every half second can only say an event starts "at about 12.5 s".
For each boundary we decode the frames around it densely (up to the native frame rate) and ask
again about that short clip. Dense frames are shown to the model on a *virtual clock* of one
second per frame, so neighbouring frames get distinct ``<t seconds>`` labels (Qwen3-VL prints
one decimal and fuses frame pairs, which would blur 33 ms steps); the answer is mapped back to
the real frame times.

Spans are half-open ``[start, end)``: the start is the first frame where the event is visible,
the end is the time of the first frame after the last one where it is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..backends.base import Backend
from ..backends.fitting import RequestTooLargeError
from ..cache import DiskCache
from ..cache.frames import cached_decode
from ..timecode import Span
from ..video.decode import Frame
from ..video.probe import VideoInfo
from .answer import parse_answer, parse_yes_no
from .prompts import Prompt, build_prompt, build_verify_prompt
from .shot_cuts import snap_to_cut

FrameSize = tuple[int, int]
#: re-asks of one clip with fewer frames when the backend says its request is too large
_MAX_FIT_TRIES = 4


@dataclass(frozen=True)
class RefineSettings:
    """``radius_s``: how far either side of a coarse boundary to look; ``max_frames``: dense
    frames per refinement call; ``max_calls``: the most extra model calls for one query."""

    radius_s: float
    max_frames: int = 16
    max_calls: int = 8


@dataclass
class CallCounter:
    """Counts the extra model calls and frames that refinement and verification spend, within
    ``limit`` calls (and within the ``parent`` counter's, when there is one: a span's own budget
    inside its question's). ``refused`` counts the calls the budget did not allow: work the
    budget cut short; ``snapped`` the boundaries moved onto a hard cut."""

    limit: int
    calls: int = 0
    frames: int = 0
    refused: int = 0
    parent: CallCounter | None = None
    snapped: int = 0

    def take(self) -> bool:
        if self.calls >= self.limit or (self.parent is not None and not self.parent.take()):
            self.refused += 1
            return False
        self.calls += 1
        return True

    def add_frames(self, count: int) -> None:
        self.frames += count
        if self.parent is not None:
            self.parent.add_frames(count)

    def add_snapped(self, count: int) -> None:
        self.snapped += count
        if self.parent is not None:
            self.parent.add_snapped(count)


def dense_times(info: VideoInfo, lo: float, hi: float, max_frames: int) -> list[float]:
    """Times of (up to ``max_frames``) consecutive native frames covering ``[lo, hi]``."""
    lo, hi = max(0.0, lo), min(info.duration, hi)
    step = info.frame_s
    count = int((hi - lo) / step) + 1
    stride = max(1, -(-count // max_frames))
    return [lo + (i * stride + 0.5) * step for i in range((count + stride - 1) // stride)
            if lo + (i * stride + 0.5) * step < info.duration]


def on_virtual_clock(frames: Sequence[Frame]) -> list[Frame]:
    """The same pictures labelled 0, 1, 2, ... seconds (see the module docstring)."""
    return [Frame(time=float(i), image=f.image, index=f.index) for i, f in enumerate(frames)]


def real_start(frames: Sequence[Frame], virtual: float) -> float:
    return frames[_nearest(frames, virtual)].time


def real_end(frames: Sequence[Frame], virtual: float, frame_s: float) -> float:
    """The model names the last frame where the event is visible; the half-open end is the
    next frame's time."""
    i = _nearest(frames, virtual)
    return frames[i + 1].time if i + 1 < len(frames) else frames[i].time + frame_s


def _nearest(frames: Sequence[Frame], virtual: float) -> int:
    return min(len(frames) - 1, max(0, int(round(virtual))))


@dataclass(frozen=True)
class _Found:
    """Where the model placed the event in a dense clip ``[lo, hi]`` shown every ``step`` s."""

    start: float
    end: float
    step: float
    lo: float
    hi: float
    touches_start: bool
    touches_end: bool


class Refiner:
    """Re-asks the backend about short dense clips around span boundaries.

    A start the coarse pass placed at sample ``t[k]`` really lies in ``(t[k-1], t[k]]``, an end
    in ``(t[k], t[k+1]]``; that bracket is decoded densely (every native frame, or every n-th
    when it holds more than ``max_frames``, then narrowed with another call), and widened when
    the event turns out to reach the bracket's edge (a coarse answer that was off).
    ``bounds`` (seconds): the part of the video it may look at (``LocateOptions.time_range``,
    clamped); no frame outside it is asked about and no boundary is moved outside it.
    ``cuts``: hard cuts (seconds, :mod:`.shot_cuts`); a refined boundary one or two frames
    from one moves onto it (counted in ``counter.snapped``).
    """

    def __init__(self, backend: Backend, info: VideoInfo, query: str, *, language: str,
                 size: FrameSize, settings: RefineSettings, counter: CallCounter,
                 coarse_times: Sequence[float] = (), max_new_tokens: int = 256,
                 on_call: Callable[[int], None] | None = None,
                 cache: DiskCache | None = None,
                 bounds: tuple[float, float] | None = None,
                 cuts: Sequence[float] = ()) -> None:
        self.backend = backend
        self.cuts = tuple(cuts)
        self.cache = cache  # decoded frames (None: always decode)
        self.info = info
        self.query = query
        self.language = language
        self.size = size
        self.settings = settings
        self.counter = counter
        self.coarse_times = sorted(coarse_times)
        self.max_new_tokens = max_new_tokens
        self.on_call = on_call or (lambda n: None)
        self.frame_s = info.frame_s
        # the part of the video it may look at (``LocateOptions.time_range``): never outside
        self.lo, self.hi = bounds if bounds is not None else (0.0, info.duration)

    def refine(self, span: Span) -> Span:
        """``span`` with its start and end moved to the frames where the event really starts
        and stops; a boundary whose re-ask fails keeps its coarse value. The span stays inside
        the refiner's ``bounds``; a boundary one or two frames from a hard cut moves onto it."""
        return self._snapped(self._boundaries(span)).clamp(self.lo, self.hi)

    def _snapped(self, span: Span) -> Span:
        """``span`` with each boundary within :data:`~.shot_cuts.SNAP_FRAMES` frames of a
        hard cut (inside the bounds) moved onto it."""
        cuts = [c for c in self.cuts if self.lo <= c <= self.hi]
        start, end = span.start, span.end
        moved = 0
        cut = snap_to_cut(start, cuts, self.frame_s)
        if cut is not None and cut < end:
            start, moved = cut, moved + 1
        cut = snap_to_cut(end, cuts, self.frame_s)
        if cut is not None and cut > start:
            end, moved = cut, moved + 1
        if not moved:
            return span
        self.counter.add_snapped(moved)
        return span.with_(start=start, end=end)

    def _boundaries(self, span: Span) -> Span:
        start_lo, start_hi = self._bracket(span.start, before=True)
        end_lo, end_hi = self._bracket(span.end, before=False)
        if end_lo <= start_hi and self._fits(start_lo, end_hi):
            # the brackets meet (a short span): one dense clip shows both boundaries
            found = self._ask(start_lo, end_hi)
            if found is None:
                return span
            return _ordered(span, self._settle(found, "start"), self._settle(found, "end"))
        found_start = self._ask(start_lo, start_hi)
        start = self._settle(found_start, "start") if found_start else span.start
        found_end = self._ask(end_lo, end_hi)
        end = self._settle(found_end, "end") if found_end else span.end
        return _ordered(span, start, end)

    def _bracket(self, t: float, *, before: bool) -> tuple[float, float]:
        """Where a boundary the coarse pass put at (the sample nearest) ``t`` can really be:
        a start lies after the previous sample, an end before the next one."""
        times = self.coarse_times
        if len(times) < 2:
            r = self.settings.radius_s
            return max(self.lo, t - r), min(self.hi, t + r)
        k = min(range(len(times)), key=lambda i: abs(times[i] - t))
        if before:
            lo, hi = (times[k - 1] if k > 0 else self.lo), max(times[k], t)
        else:
            lo, hi = min(times[k], t), (times[k + 1] if k + 1 < len(times) else self.hi)
        return max(self.lo, lo - self.frame_s), min(self.hi, hi + self.frame_s)

    def _settle(self, found: _Found, side: str) -> float:
        """Follow one boundary from a dense answer: look further out when the event already
        touches the clip's edge, look closer when the frames were strided; stops when the
        call budget is spent."""
        value = found.start if side == "start" else found.end
        width = found.hi - found.lo
        if side == "start" and found.touches_start and found.lo > self.lo:
            lo, hi = max(self.lo, found.lo - width), found.lo + self.frame_s
        elif side == "end" and found.touches_end and found.hi < self.hi:
            lo, hi = found.hi - self.frame_s, min(self.hi, found.hi + width)
        elif found.step > 1.5 * self.frame_s:
            lo = max(self.lo, value - found.step - self.frame_s)
            hi = min(self.hi, value + found.step)
        else:
            return value
        again = self._ask(lo, hi)
        return self._settle(again, side) if again else value

    def _fits(self, lo: float, hi: float) -> bool:
        return (hi - lo) / self.frame_s <= self.settings.max_frames

    def _ask(self, lo: float, hi: float) -> _Found | None:
        """Ask about the dense clip ``[lo, hi]``: where the event is in it (real times), or
        None when the model did not place it there or the call budget is spent."""
        if not self.counter.take():
            return None
        count = self.settings.max_frames
        for _ in range(_MAX_FIT_TRIES):
            times = [t for t in dense_times(self.info, max(lo, self.lo), min(hi, self.hi),
                                            count) if t < self.hi]
            frames = cached_decode(self.cache, self.info, times, size=self.size)
            if len(frames) < 2:
                return None
            prompt = build_prompt(self.query, language=self.language, return_reasoning=False,
                                  all_occurrences=False, duration=float(len(frames)))
            try:
                text = self.backend.generate(on_virtual_clock(frames), prompt,
                                             max_new_tokens=self.max_new_tokens)
                break
            except RequestTooLargeError as exc:  # fewer dense frames, as many as fit
                if exc.fits < 1:
                    raise
                if exc.fits < 2:
                    return None  # one frame shows no boundary: the coarse one stays
                count = min(exc.fits, len(frames) - 1)
        else:
            return None
        self.counter.add_frames(len(frames))
        self.on_call(self.counter.calls)
        parsed = parse_answer(text, duration=float(len(frames)))
        if not parsed.spans:
            return None
        first = parsed.spans[0]
        return _Found(
            start=real_start(frames, first.start), end=real_end(frames, first.end, self.frame_s),
            step=(frames[-1].time - frames[0].time) / (len(frames) - 1),
            lo=lo, hi=hi, touches_start=_nearest(frames, first.start) == 0,
            touches_end=_nearest(frames, first.end) == len(frames) - 1)

    def verify(self, span: Span, max_frames: int = 8) -> float | None:
        """Ask "is <event> happening in this clip?" about frames inside ``span``; a score in
        [0, 1] (the yes-probability where the backend gives one), or None when undecided."""
        if not self.counter.take():
            return None
        prompt = build_verify_prompt(self.query, language=self.language)
        for _ in range(_MAX_FIT_TRIES):
            frames = cached_decode(self.cache, self.info, _inside(span, max_frames),
                                   size=self.size)
            if not frames:
                return None
            try:
                score = self._verdict(frames, prompt, span)
                break
            except RequestTooLargeError as exc:  # fewer frames, as many as fit
                if exc.fits < 1:
                    raise
                max_frames = min(exc.fits, len(frames) - 1)
        else:
            return None
        self.counter.add_frames(len(frames))
        self.on_call(self.counter.calls)
        return score

    def _verdict(self, frames: Sequence[Frame], prompt: Prompt, span: Span) -> float | None:
        score = self.backend.yes_probability(frames, prompt)
        if score is not None:
            return float(score)
        text = self.backend.generate(frames, prompt, max_new_tokens=32)
        return _score_from_text(text, span)


def _inside(span: Span, count: int) -> list[float]:
    if span.duration <= 0:
        return [span.start]
    step = span.duration / count
    return [span.start + (i + 0.5) * step for i in range(count)]


def _score_from_text(text: str, span: Span) -> float | None:
    verdict = parse_yes_no(text)
    if verdict is not None:
        return 1.0 if verdict else 0.0
    parsed = parse_answer(text)
    if parsed.not_found:
        return 0.0
    return 1.0 if parsed.spans else None


def _ordered(span: Span, start: float, end: float) -> Span:
    if end <= start:
        return span
    return span.with_(start=start, end=end)


__all__ = ["CallCounter", "Prompt", "RefineSettings", "Refiner", "dense_times",
           "on_virtual_clock"]
