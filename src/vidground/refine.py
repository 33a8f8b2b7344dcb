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

from .answer import parse_answer, parse_yes_no
from .backends.base import Backend, Prompt
from .prompts import build_prompt, build_verify_prompt
from .timecode import Span
from .video.decode import Frame, decode_frames
from .video.probe import VideoInfo

FrameSize = tuple[int, int]


@dataclass(frozen=True)
class RefineSettings:
    """``radius_s``: how far either side of a coarse boundary to look; ``max_frames``: dense
    frames per refinement call; ``max_calls``: the most extra model calls for one query."""

    radius_s: float
    max_frames: int = 64
    max_calls: int = 8


@dataclass
class CallCounter:
    """Counts the extra model calls and frames that refinement and verification spend."""

    limit: int
    calls: int = 0
    frames: int = 0

    def take(self) -> bool:
        if self.calls >= self.limit:
            return False
        self.calls += 1
        return True


def dense_times(info: VideoInfo, lo: float, hi: float, max_frames: int) -> list[float]:
    """Times of (up to ``max_frames``) consecutive native frames covering ``[lo, hi]``."""
    lo, hi = max(0.0, lo), min(info.duration, hi)
    step = 1.0 / info.fps if info.fps > 0 else 0.04
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


class Refiner:
    """Re-asks the backend about short dense clips around span boundaries.

    A boundary the coarse pass placed at sample ``t[k]`` really lies between the neighbouring
    samples ``t[k-1]`` and ``t[k+1]``; that stretch is decoded densely (every native frame, or
    every n-th when it holds more than ``max_frames``, then narrowed with a second call).
    """

    def __init__(self, backend: Backend, info: VideoInfo, query: str, *, language: str,
                 size: FrameSize, settings: RefineSettings, counter: CallCounter,
                 coarse_times: Sequence[float] = (), max_new_tokens: int = 256,
                 on_call: Callable[[int], None] | None = None) -> None:
        self.backend = backend
        self.info = info
        self.query = query
        self.language = language
        self.size = size
        self.settings = settings
        self.counter = counter
        self.coarse_times = sorted(coarse_times)
        self.max_new_tokens = max_new_tokens
        self.on_call = on_call or (lambda n: None)
        self.frame_s = 1.0 / info.fps if info.fps > 0 else 0.04

    def refine(self, span: Span) -> Span:
        """``span`` with its start and end moved to the frames where the event really starts
        and stops; a boundary whose re-ask fails keeps its coarse value."""
        lo_s, hi_s = self._neighbours(span.start)
        lo_e, hi_e = self._neighbours(span.end)
        if lo_e <= hi_s or self._fits(lo_s, hi_e):
            found = self._ask(lo_s, hi_e)
            if found is None:
                return span
            start, end, step = found
            if step > 1.5 * self.frame_s:
                start = self._narrow_start(start, step)
                end = self._narrow_end(end, step)
            return _ordered(span, start, end)
        start_found = self._ask(lo_s, hi_s)
        start = span.start
        if start_found:
            start = start_found[0]
            if start_found[2] > 1.5 * self.frame_s:
                start = self._narrow_start(start, start_found[2])
        end_found = self._ask(lo_e, hi_e)
        end = span.end
        if end_found:
            end = end_found[1]
            if end_found[2] > 1.5 * self.frame_s:
                end = self._narrow_end(end, end_found[2])
        return _ordered(span, start, end)

    def _neighbours(self, t: float) -> tuple[float, float]:
        """The coarse samples on either side of the one nearest ``t`` (or ``radius_s``)."""
        times = self.coarse_times
        if len(times) < 2:
            r = self.settings.radius_s
            return max(0.0, t - r), min(self.info.duration, t + r)
        k = min(range(len(times)), key=lambda i: abs(times[i] - t))
        lo = times[k - 1] if k > 0 else 0.0
        hi = times[k + 1] if k + 1 < len(times) else self.info.duration
        return max(0.0, min(lo, t - self.frame_s)), min(self.info.duration,
                                                         max(hi, t + self.frame_s))

    def _narrow_start(self, start: float, step: float) -> float:
        found = self._ask(start - step - self.frame_s, start + step)
        return found[0] if found else start

    def _narrow_end(self, end: float, step: float) -> float:
        found = self._ask(end - step - self.frame_s, end + step)
        return found[1] if found else end

    def _fits(self, lo: float, hi: float) -> bool:
        return (hi - lo) / self.frame_s <= self.settings.max_frames

    def _ask(self, lo: float, hi: float) -> tuple[float, float, float] | None:
        """Ask about the dense clip ``[lo, hi]``: the event's (start, end) in real time and the
        spacing of the frames shown, or None when the model did not place it there."""
        if not self.counter.take():
            return None
        frames = decode_frames(self.info, dense_times(self.info, lo, hi, self.settings.max_frames),
                               size=self.size)
        if len(frames) < 2:
            return None
        self.counter.frames += len(frames)
        self.on_call(self.counter.calls)
        prompt = build_prompt(self.query, language=self.language, return_reasoning=False,
                              all_occurrences=False, duration=float(len(frames)))
        text = self.backend.generate(on_virtual_clock(frames), prompt,
                                     max_new_tokens=self.max_new_tokens)
        parsed = parse_answer(text, duration=float(len(frames)))
        if not parsed.spans:
            return None
        first = parsed.spans[0]
        step = (frames[-1].time - frames[0].time) / (len(frames) - 1)
        return real_start(frames, first.start), real_end(frames, first.end, self.frame_s), step

    def verify(self, span: Span, max_frames: int = 8) -> float | None:
        """Ask "is <event> happening in this clip?" about frames inside ``span``; a score in
        [0, 1] (the yes-probability where the backend gives one), or None when undecided."""
        if not self.counter.take():
            return None
        frames = decode_frames(self.info, _inside(span, max_frames), size=self.size)
        if not frames:
            return None
        self.counter.frames += len(frames)
        self.on_call(self.counter.calls)
        prompt = build_verify_prompt(self.query, language=self.language)
        yes_probability = getattr(self.backend, "yes_probability", None)
        if callable(yes_probability):
            score = yes_probability(frames, prompt)
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
