"""Training examples built exactly the way ``vidground locate`` asks.

For each annotated sample (video, query, spans) the video is probed and planned with
:func:`vidground.grounding.plan_sampling` (the same times, frame size and windows ``locate``
uses for these :class:`~vidground.LocateOptions`); the prompt is
:func:`vidground.grounding.prompts.build_prompt` with the arguments ``locate`` passes; the
target is the answer in the form that prompt asks for: ``Answer: 12.5 - 18.0 seconds`` (one
decimal; ``; `` between spans when every occurrence is asked for; ``Answer: NOT FOUND`` when the
window does not hold the event; ``答案：… 秒`` for a Chinese query). Frames are decoded when an
example is used, through the frame cache (:func:`vidground.cache.frames.cached_decode`), as
``locate`` decodes them.

A long video that ``locate`` would ask about in several windows gives one example per window:
the spans that overlap the window, clipped to it (``locate`` merges the windows' answers).
Two things are not trained: the refinement and verification re-asks (``refine``/``verify``),
and the per-phase questions ``locate`` asks for "when does she start ..., and when does she
finish?" queries (the whole query is the question).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import Prompt
from ..cache.frames import cached_decode
from ..cache.store import DiskCache
from ..evaluation.records import Sample
from ..grounding import plan_sampling
from ..grounding.prompts import build_prompt, detect_language
from ..options import LocateOptions
from ..prompt import ANSWER_LABEL, NOT_FOUND_EN, NOT_FOUND_ZH
from ..timecode import Span
from ..video.decode import Frame
from ..video.probe import VideoInfo, probe
from .config import FinetuneError


@dataclass(frozen=True)
class Example:
    """One model call to learn: which frames, the prompt, and the answer to give."""

    sample_id: str
    info: VideoInfo
    times: tuple[float, ...]
    size: tuple[int, int]
    prompt: Prompt
    target: str
    spans: tuple[Span, ...]

    def frames(self, cache: DiskCache | None) -> list[Frame]:
        """The decoded frames, from the frame cache when it holds them."""
        return cached_decode(cache, self.info, list(self.times), size=self.size)


def answer_text(spans: Sequence[Span], language: str, *, all_occurrences: bool) -> str:
    """The answer line the grounding prompt asks for (see :mod:`vidground.grounding.prompts`).

    >>> answer_text([Span(1.25, 3.0)], "en", all_occurrences=False)
    'Answer: 1.2 - 3.0 seconds'
    >>> answer_text([], "zh", all_occurrences=False)
    '答案：未找到'
    """
    label = ANSWER_LABEL["zh" if language == "zh" else "en"]
    if not spans:
        return f"{label} {NOT_FOUND_EN}" if language != "zh" else f"{label}{NOT_FOUND_ZH}"
    chosen = spans if all_occurrences else spans[:1]
    unit = "秒" if language == "zh" else "seconds"
    parts = "; ".join(f"{s.start:.1f} - {s.end:.1f} {unit}" for s in chosen)
    return f"{label}{parts}" if language == "zh" else f"{label} {parts}"


def sample_examples(sample: Sample, options: LocateOptions, *,
                    cache: DiskCache | None = None,
                    backend_max_frames: int | None = None) -> list[Example]:
    """The examples of one sample: one per window ``locate`` would ask about."""
    if sample.video_path is None:
        raise FinetuneError(f"sample {sample.id}: its video {sample.video!r} was not found")
    info = probe(sample.video_path)
    truth = training_spans(sample, info.duration)
    plan = plan_sampling(info, options, backend_max_frames, cache=cache)
    language = detect_language(sample.query) if options.language == "auto" else options.language
    prompt = build_prompt(sample.query, language=language,
                          return_reasoning=options.return_reasoning,
                          all_occurrences=options.all_occurrences, duration=info.duration)
    examples = []
    for window in plan.windows:
        spans = tuple(truth) if len(plan.windows) == 1 else _clip(truth, window, plan.interval)
        target = answer_text(spans, prompt.language, all_occurrences=options.all_occurrences)
        examples.append(Example(sample.id, info, tuple(window), plan.size, prompt, target, spans))
    return examples


def training_spans(sample: Sample, duration: float | None) -> list[Span]:
    """The sample's spans to teach, in time order: each must be ``0 <= start <= end`` and start
    inside the video (an end past it is cut to the video's end: annotated and probed durations
    differ by a frame or two). Anything else is refused, naming the file and line, rather than
    taught (a negative span would train ``Answer: -5.0 - -1.0 seconds``)."""
    where = sample.where or f"sample {sample.id}"
    spans = []
    for start, end in sample.spans:
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise FinetuneError(f"{where}: span [{start}, {end}] of {sample.video!r} is not "
                                "0 <= start <= end seconds; fix the training file")
        if duration is not None and start >= duration > 0:
            raise FinetuneError(f"{where}: span [{start}, {end}] of {sample.video!r} starts "
                                f"after the video ends ({duration:.3f} s); fix the training "
                                "file")
        spans.append(Span(start, min(end, duration) if duration else end))
    return sorted(spans, key=lambda s: (s.start, s.end))


def build_examples(samples: Sequence[Sample], options: LocateOptions, *,
                   cache: DiskCache | None = None) -> list[Example]:
    """Every sample's examples, in order."""
    examples: list[Example] = []
    for sample in samples:
        examples.extend(sample_examples(sample, options, cache=cache))
    if not examples:
        raise FinetuneError("no training examples: the training data has no usable sample")
    return examples


def _clip(spans: Sequence[Span], window: Sequence[float], interval: float) -> tuple[Span, ...]:
    """The spans that overlap a window's time range, clipped to it."""
    lo, hi = float(window[0]), float(window[-1]) + interval
    kept = []
    for s in spans:
        if s.end >= lo and s.start <= hi:
            kept.append(Span(max(s.start, lo), min(s.end, hi)))
    return tuple(kept)
