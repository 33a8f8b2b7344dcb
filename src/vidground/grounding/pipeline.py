"""The pipeline: probe -> sample times -> decode -> ask the model -> parse spans -> Grounding.

>>> from vidground import locate
>>> g = locate("match.mp4", "When does the player first attempt a three-pointer?")  # doctest: +SKIP
>>> g.timestamp_range()  # doctest: +SKIP
('00:02:15.678', '00:02:17.234')
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends import Backend, create_backend
from ..backends.base import as_backend
from ..backends.fitting import FitTally, RequestTooLargeError, current_fit, track_fit
from ..backends.geometry import CONTEXT_SHARE, frame_size_for, tokens_per_frame
from ..backends.structured import structured_answers
from ..cache import DiskCache, Tally, open_cache, track
from ..cache.motion import cached_motion_curve
from ..config import Settings
from ..errors import BackendError, ModelNotAvailableError
from ..options import MAX_REFINE_CALLS_PER_QUESTION, LocateOptions, check_query
from ..progress import ProgressCallback, ProgressEvent, ignore_progress
from ..timecode import OUTPUT_FORMATS, OutputFormat, Span, format_time
from ..video.decode import Frame, keyframe_times
from ..video.motion import MotionCurve, adaptive_times
from ..video.probe import VideoInfo, probe
from ..video.sampling import sample_times, snap_to_keyframes
from .answer import ParsedAnswer, exclusive_end_note, parse_answer, restate_times
from .candidates import (
    MAX_CANDIDATES,
    candidate_prompt,
    candidate_times,
    chosen,
    model_at_hand,
)
from .phases import phase_question, split_phases
from .prompts import Prompt, build_prompt, detect_language
from .refine import CallCounter, Refiner, RefineSettings
from .shot_cuts import shot_cuts
from .window_frames import WindowFrames
from .windows import (
    frames_in_windows,
    merge_spans,
    range_adaptive_times,
    range_sample_times,
    split_windows,
    within,
)


@dataclass(frozen=True)
class Grounding:
    """The answer to one question about one video.

    ``spans`` are in seconds from the first displayed frame, in time order; empty when the event
    was not found. ``answer`` is the answer to show: the model's sentence with the times it
    named replaced by the final (refined) ones, written in ``options.output_format``
    (:meth:`answer_in` gives it in another format); ``reasoning`` is the model's explanation
    (when asked for), ``raw_answer`` the model's own, unedited text.
    """

    query: str
    spans: tuple[Span, ...]
    answer: str
    reasoning: str | None
    video: VideoInfo
    model: str
    timings: dict[str, float | int] = field(default_factory=dict)
    frame_times: tuple[float, ...] = ()
    raw_answer: str = ""
    options: LocateOptions = field(default_factory=LocateOptions)
    motion: MotionCurve | None = None
    answers: dict[str, str] = field(default_factory=dict)  # the answer in every output format
    warnings: tuple[str, ...] = ()  # what the caller should know (e.g. a budget cut refinement)

    @property
    def found(self) -> bool:
        return bool(self.spans)

    def format(self, seconds: float, output_format: str | None = None) -> str:
        return format_time(seconds, output_format or self.options.output_format,
                           fps=self.video.fps)

    def answer_in(self, output_format: str | None = None) -> str:
        """The answer with its times written in ``output_format`` (default: the request's)."""
        return self.answers.get(output_format or self.options.output_format, self.answer)

    def timestamp_range(self, output_format: str | None = None) -> tuple[str, str] | None:
        """The first span as formatted text, or ``None`` when nothing was found."""
        if not self.spans:
            return None
        first = self.spans[0]
        return self.format(first.start, output_format), self.format(first.end, output_format)

    def to_response(self, output_format: OutputFormat | None = None) -> dict[str, Any]:
        """The API's response object (also what ``vidground locate --json`` prints)."""
        fmt = output_format or self.options.output_format
        rng = self.timestamp_range(fmt)
        return {
            "query": self.query,
            "response": self.answer_in(fmt),
            "raw_answer": self.raw_answer,
            "timestamp_range": list(rng) if rng else None,
            "reasoning": self.reasoning,
            "segments": [s.to_dict(fmt, fps=self.video.fps) for s in self.spans],
            "video": {**self.video.summary(), "name": Path(self.video.path).name,
                      "path": os.path.abspath(self.video.path)},
            "model": self.model,
            "timings": dict(self.timings),
            "motion": self.motion.to_dict() if self.motion is not None else None,
            "warnings": list(self.warnings),
        }


class Grounder:
    """Answers "when" questions about videos with one model backend, loaded once and shared.

    Thread-safe: several threads may call :meth:`locate` at once; the backend decides how many
    model calls really run in parallel.
    """

    def __init__(self, backend: Backend | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._backend: Backend | None = as_backend(backend) if backend is not None else None
        self._lock = threading.Lock()
        self._cache: DiskCache | None = None
        self._cache_opened = False

    @property
    def backend(self) -> Backend:
        """The model backend, created on first use."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = create_backend(self.settings)
        return self._backend

    @property
    def cache(self) -> DiskCache | None:
        """The disk cache of decoded frames (and, for the local backend, visual features)
        that ``settings`` name, or None when it is off."""
        if not self._cache_opened:
            with self._lock:
                if not self._cache_opened:
                    self._cache = open_cache(self.settings)
                    self._cache_opened = True
        return self._cache

    @property
    def backend_ready(self) -> bool:
        return self._backend is not None

    def locate(self, video: str | Path | VideoInfo, query: str,
               options: LocateOptions | None = None, *,
               progress: ProgressCallback | None = None) -> Grounding:
        """Find when ``query`` happens in ``video`` (a path, or the :class:`VideoInfo` of a
        video already probed: it is not probed again). Raises :class:`VidgroundError`
        subclasses with a readable message for bad input, missing models and backend failures.

        A question about the phases of an action ("when does she start ..., and when does she
        finish?") gets one labelled span per phase, asked about the same decoded frames."""
        wanted = (options or LocateOptions()).structured_output
        with tallied() as run, structured_answers(wanted):
            grounding = self._locate(video, query, options, progress, run.fit)
        grounding.timings.update(run.timings())
        return grounding

    def plan(self, info: VideoInfo, opts: LocateOptions) -> SamplingPlan:
        """:func:`plan_sampling` for this grounder's backend and cache."""
        return plan_sampling(info, opts, self.backend.max_frames_per_request, cache=self.cache)

    def _answer_quoted(self, info: VideoInfo, text: str, opts: LocateOptions,
                       report: ProgressCallback) -> Grounding | None:
        """A question quoting a phrase (``When does "PAYMENT FAILED" appear?``) answered to the
        frame by OCR (or by word times when it asks what is said), before any model loads, so
        it is answered with no model at all; with a model at hand, the model chooses among
        OCR's hits (:meth:`_choose_among`). None when nothing is quoted, the perception extra
        is missing or the phrase was not found (then the model is asked as usual)."""
        from ..perception.quoted import answer_quoted, quoted_phrases

        if not opts.enable_temporal_grounding or not quoted_phrases(text):
            return None
        started = time.perf_counter()
        report(ProgressEvent("model", 0, 1, "reading the screen"))
        try:
            bounds = opts.range_in(info.duration) if opts.time_range is not None else None
            answer = answer_quoted(info, text, bounds=bounds)
        except ModelNotAvailableError:
            return None
        report(ProgressEvent("model", 1, 1, "reading the screen"))
        if answer is None or not answer.found:
            return None
        answers = answer.answers(info.fps)
        ocr = Grounding(query=text, spans=answer.spans,
                        answer=answers.get(opts.output_format, answer.sentence()),
                        reasoning=None, video=info, model=answer.model,
                        timings={"perception_s": round(time.perf_counter() - started, 3),
                                 "model_calls": 0, "frames": 0},
                        raw_answer=answer.sentence(), options=opts, answers=answers)
        if answer.detector != "ocr" or not (self.backend_ready or model_at_hand(self.settings)):
            return ocr
        return self._choose_among(info, text, opts, answer, ocr, report)

    def _choose_among(self, info: VideoInfo, text: str, opts: LocateOptions, answer: Any,
                      ocr: Grounding, report: ProgressCallback) -> Grounding:
        """OCR's hits (``answer``, a :class:`~vidground.perception.quoted.QuotedAnswer`) shown
        to the model as candidates (:mod:`.candidates`): the hits it chooses, at OCR's times;
        OCR's answer ``ocr``, with a warning, when it chooses none or cannot be asked."""
        shown = answer.spans[:MAX_CANDIDATES]
        times = candidate_times(shown, info, opts.range_in(info.duration)
                                if opts.time_range is not None else None)
        n = max(2, len(times))  # a plan of n frames says their size and how many fit a call
        sized = self.plan(info, replace(opts, frame_sampling_rate=1.0, min_frames=n,
                                        max_frames=n, snap_to_keyframes=False, time_range=None))
        plan = SamplingPlan(times, split_windows(times, max(2, len(sized.windows[0]))),
                            sized.size, sized.interval)
        language = detect_language(text) if opts.language == "auto" else opts.language
        prompt = candidate_prompt(build_prompt(
            text, language=language, return_reasoning=opts.return_reasoning,
            all_occurrences=opts.all_occurrences, duration=info.duration), shown, answer.phrases)
        try:
            asked = self.ask_windows(info, plan, [prompt], opts, progress=report)[0]
        except BackendError as exc:  # no model after all (weights, server): OCR's answer
            reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            return replace(ocr, warnings=(f"the model could not be asked to choose among OCR's "
                                          f"hits ({reason}); the answer is OCR's alone",))
        coarse = _CoarseResult.parse(asked, info)
        picked = chosen(shown, coarse.spans)
        timings = {**ocr.timings, "decode_s": round(asked.decode_s, 4),
                   "model_s": round(asked.model_s, 4), "model_calls": len(plan.windows),
                   "frames": len(times), "candidates": len(shown)}
        raw = "\n\n".join(coarse.raw)
        if not picked:
            return replace(ocr, timings=timings, raw_answer=raw, warnings=(
                f"{self.backend.model_name} placed the event on none of OCR's {len(shown)} "
                "hit(s) of the quoted text; the answer is OCR's alone",))
        final = answer.chosen(tuple(picked if opts.all_occurrences else picked[:1]),
                              self.backend.model_name)
        answers = final.answers(info.fps)
        return replace(ocr, spans=final.spans, model=final.model, timings=timings,
                       answer=answers.get(opts.output_format, final.sentence()),
                       answers=answers, raw_answer=raw, frame_times=tuple(times),
                       reasoning=coarse.reasoning if opts.return_reasoning else None)

    def _locate(self, video: str | Path | VideoInfo, query: str, options: LocateOptions | None,
                progress: ProgressCallback | None, fit: FitTally) -> Grounding:
        opts = options or LocateOptions()
        report = progress or ignore_progress
        text = check_query(query)
        started = time.perf_counter()

        report(ProgressEvent("probe", 0, 1, "reading the video"))
        info = video if isinstance(video, VideoInfo) else probe(video)
        report(ProgressEvent("probe", 1, 1, "reading the video"))
        quoted = self._answer_quoted(info, text, opts, report)
        if quoted is not None:
            return quoted
        plan = self.plan(info, opts)
        language = detect_language(text) if opts.language == "auto" else opts.language
        phases = split_phases(text) if opts.split_phases and opts.enable_temporal_grounding \
            else []
        questions = [phase_question(p, text, language) for p in phases] or [text]
        prompts = [build_prompt(q, language=language, return_reasoning=opts.return_reasoning,
                                all_occurrences=opts.all_occurrences, duration=info.duration)
                   for q in questions]
        asked = self.ask_windows(info, plan, prompts, opts, progress=report, fit=fit)
        coarse = [_CoarseResult.parse(a, info) for a in asked]

        refine_started = time.perf_counter()
        counter = CallCounter(MAX_REFINE_CALLS_PER_QUESTION)
        spans: list[Span] = []
        labels: Sequence[str | None] = phases or [None]
        for question, label, result in zip(questions, labels, coarse, strict=True):
            found = self._spans(info, question, language, plan, result, opts, counter, report)
            spans.extend(s.with_(label=label) if label else s for s in found)
        refine_s = time.perf_counter() - refine_started
        warnings = budget_warnings(spans, opts)

        answers, reasoning = _summarise(coarse, spans, phases, language, info,
                                        tolerance=max(1.0, 2 * plan.interval))
        timings: dict[str, float | int] = {
            "decode_s": round(sum(r.decode_s for r in coarse), 4),
            "model_s": round(sum(r.model_s for r in coarse), 4),
            "refine_s": round(refine_s, 4),
            "total_s": round(time.perf_counter() - started, 4),
            "frames": len(plan.times),
            "windows": len(plan.windows),
            "model_calls": len(plan.windows) * len(prompts) + fit.split + counter.calls,
            "refine_calls": counter.calls,
            "shot_cuts": len(plan.cuts),
            "snapped_to_cuts": counter.snapped,
            "refine_frames": counter.frames,
            "spans_cut_short": sum(1 for s in spans if s.refined is False),
            **fit.timings(),
        }
        report(ProgressEvent("done", 1, 1, "done"))
        return Grounding(
            query=text,
            spans=tuple(spans),
            answer=answers[opts.output_format],
            reasoning=reasoning if opts.return_reasoning else None,
            video=info,
            model=self.backend.model_name,
            timings=timings,
            frame_times=tuple(plan.times),
            raw_answer="\n\n".join(raw for r in coarse for raw in r.raw),
            options=opts,
            motion=plan.motion,
            answers=answers,
            warnings=warnings,
        )

    def _spans(self, info: VideoInfo, question: str, language: str, plan: SamplingPlan,
               coarse: _CoarseResult, opts: LocateOptions, counter: CallCounter,
               report: ProgressCallback) -> list[Span]:
        """One question's spans: merged across windows, the first only unless every occurrence
        was asked for, then refined and verified."""
        if not opts.enable_temporal_grounding:
            return []
        spans = merge_spans(within(coarse.spans, plan.bounds), gap=plan.interval)
        if not opts.all_occurrences:
            spans = spans[:1]
        if spans and (opts.refine or opts.verify):
            spans = self.refine_spans(info, question, language, plan, spans, opts, counter,
                                      report)
        return spans

    def ask_windows(self, info: VideoInfo, plan: SamplingPlan, prompts: Sequence[Prompt],
                    opts: LocateOptions, *, progress: ProgressCallback | None = None,
                    fit: FitTally | None = None,
                    budget: CallCounter | None = None) -> list[WindowAnswers]:
        """Every prompt's answers about every window of ``plan``, in time order: each window's
        frames decoded once through the frame cache (one window in memory at a time, or one
        batch of windows for backends that take several requests at once), a window too large
        for one request asked in pieces, several requests at once where the backend can.

        ``fit`` records the pieces (default: the tally of the enclosing :func:`tallied`);
        ``budget``, when given, is charged one call per request, and a pass that would overrun
        it raises :class:`RequestTooLargeError` before asking."""
        report = progress or ignore_progress
        fit = fit or current_fit() or FitTally()
        results = [WindowAnswers() for _ in prompts]
        batch_size = max(1, int(self.backend.max_concurrency or 1))
        frames = WindowFrames(self.cache, info, plan.size, pixels=self.backend.needs_pixels)
        total_frames = frames.distinct(plan.windows)  # the frames windows share: decoded once
        fitting = _Pieces()
        for first in range(0, len(plan.windows), batch_size):
            batch = plan.windows[first:first + batch_size]
            decode_started = time.perf_counter()
            windows: list[list[Frame]] = []
            for window in batch:
                def on_decoded(done: int, total: int, base: int = frames.decoded) -> None:
                    report(ProgressEvent("decode", base + done, total_frames, "decoding frames"))

                windows.append(frames.decode(window, progress=on_decoded))
            decode_s = time.perf_counter() - decode_started
            for prompt, result in zip(prompts, results, strict=True):
                result.decode_s += decode_s / len(prompts)
                model_started = time.perf_counter()
                report(ProgressEvent("model", first, len(plan.windows),
                                     f"asking {self.backend.model_name}"))
                texts = self._ask_fitting(windows, prompt, opts, fitting, fit, budget)
                result.model_s += time.perf_counter() - model_started
                report(ProgressEvent("model", first + len(batch), len(plan.windows),
                                     f"asking {self.backend.model_name}"))
                result.texts.extend(texts)
        return results

    def _ask_fitting(self, windows: Sequence[Sequence[Frame]], prompt: Prompt,
                     opts: LocateOptions, pieces: _Pieces, fit: FitTally,
                     budget: CallCounter | None = None) -> list[str]:
        """The answers about ``windows``; a window too large for one request (the backend
        says how many frames fit) is asked in overlapping pieces of that many frames, and so
        are the later windows. Fails only when not even one frame fits, or when the pieces
        would overrun ``budget``."""
        for _ in range(_MAX_FIT_ROUNDS):
            requests = [piece for window in windows for piece in pieces.split(window)]
            _check_budget(budget, len(requests))
            try:
                texts = self._generate(requests, prompt, opts.max_new_tokens)
            except RequestTooLargeError as exc:
                if exc.fits < 1 or not pieces.lower(exc.fits):
                    raise
                continue
            fit.add_split(len(requests) - len(windows))
            if budget is not None:
                budget.calls += len(requests)
            return texts
        raise RequestTooLargeError(  # pragma: no cover - each round lowers the piece size
            f"the requests did not fit the server's cap after {_MAX_FIT_ROUNDS} splits; raise "
            "VIDGROUND_OPENAI_MAX_REQUEST_MB or send smaller frames (max_pixels_per_frame)")

    def _generate(self, requests: Sequence[Sequence[Frame]], prompt: Prompt,
                  max_new_tokens: int) -> list[str]:
        """One answer per request, several at once where the backend can."""
        if len(requests) > 1:
            return list(self.backend.generate_many([(frames, prompt) for frames in requests],
                                                   max_new_tokens=max_new_tokens))
        return [self.backend.generate(frames, prompt, max_new_tokens=max_new_tokens)
                for frames in requests]

    def refine_spans(self, info: VideoInfo, query: str, language: str, plan: SamplingPlan,
                     spans: Sequence[Span], opts: LocateOptions, counter: CallCounter,
                     report: ProgressCallback) -> list[Span]:
        """Move boundaries to the right frames (``refine``), score and drop spans that fail a
        yes/no re-ask (``verify``), within ``max_refine_calls`` extra calls per span (and the
        question's ``counter``). Each span says whether its refinement ran to the end."""
        base = counter.calls  # what the counter's earlier work spent
        planned = min(counter.limit - base, opts.max_refine_calls * len(spans))

        def on_call(_calls: int) -> None:
            report(ProgressEvent("refine", min(counter.calls - base, planned), planned,
                                 "refining boundaries"))

        kept: list[Span] = []
        for span in spans:
            own = CallCounter(opts.max_refine_calls, parent=counter)
            refiner = Refiner(self.backend, info, query, language=language, size=plan.size,
                              settings=RefineSettings(radius_s=max(0.5, plan.interval),
                                                      max_calls=opts.max_refine_calls),
                              counter=own, coarse_times=plan.times, on_call=on_call,
                              cache=self.cache, bounds=plan.bounds, cuts=plan.cuts)
            if opts.refine:
                span = refiner.refine(span).with_(refined=own.refused == 0)
            if opts.verify:
                score = refiner.verify(span)
                if score is not None and score < 0.5:
                    continue
                span = span.with_(score=None if score is None else round(score, 4))
            kept.append(span)
        return kept


_MAX_FIT_ROUNDS = 16


def _check_budget(budget: CallCounter | None, requests: int) -> None:
    """Refuse ``requests`` calls, before any is made, when ``budget`` has not that many left
    (windows split into many pieces to fit a model server's size cap)."""
    if budget is not None and budget.calls + requests > budget.limit:
        raise RequestTooLargeError(
            f"asking this video's windows takes {requests} more model calls (windows split to "
            f"fit the model server's request-size cap count too), and this request may make "
            f"{budget.limit - budget.calls} more of its {budget.limit}; raise "
            "VIDGROUND_OPENAI_MAX_REQUEST_MB if the server takes larger requests, or send fewer "
            "or smaller frames (max_frames, max_pixels_per_frame)")


class RunTally:
    """What one request did besides asking: cache hits and misses, vision and preparation
    seconds (:mod:`vidground.cache.tally`), requests refitted or split to fit the server's cap
    (``fit``), and its wall time."""

    def __init__(self, cache: Tally, fit: FitTally) -> None:
        self.cache = cache
        self.fit = fit
        self.started = time.perf_counter()

    def timings(self) -> dict[str, float | int]:
        """The response's ``timings`` entries for the cache and the total time."""
        return {"cache_hits": self.cache.hits, "cache_misses": self.cache.misses,
                "vision_s": round(self.cache.vision_s, 4),
                "prep_s": round(self.cache.prep_s, 4),
                "total_s": round(time.perf_counter() - self.started, 4)}


@contextmanager
def tallied() -> Iterator[RunTally]:
    """Count what the request run inside the block does (see :class:`RunTally`)."""
    with track() as cache, track_fit() as fit:
        yield RunTally(cache, fit)


@dataclass
class WindowAnswers:
    """One prompt's answers over a plan's windows: one text per request (a window, or a piece
    of one too large for a request), in time order, and the seconds spent on them."""

    texts: list[str] = field(default_factory=list)
    decode_s: float = 0.0
    model_s: float = 0.0


@dataclass
class _Pieces:
    """The most frames one request may carry, learned from the backend's size errors."""

    most: int | None = None

    def lower(self, fits: int) -> bool:
        """Ask at most ``fits`` frames per request from now on; False if that is no lower."""
        if self.most is not None and fits >= self.most:
            return False
        self.most = fits
        return True

    def split(self, frames: Sequence[Frame]) -> list[Sequence[Frame]]:
        """``frames`` in pieces of at most ``most`` frames that overlap like windows do."""
        if self.most is None or len(frames) <= self.most:
            return [frames]
        if self.most == 1:
            return [[frame] for frame in frames]
        index = split_windows(list(range(len(frames))), self.most)
        # split_windows hands back the indices it was given (ints, typed as its times)
        return [[frames[int(i)] for i in piece] for piece in index]


@dataclass
class _CoarseResult:
    """What the first pass over all windows found."""

    spans: list[Span] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    answer: str = ""
    reasoning: str | None = None
    decode_s: float = 0.0
    model_s: float = 0.0

    @classmethod
    def parse(cls, answers: WindowAnswers, info: VideoInfo) -> _CoarseResult:
        """The spans and the answer to show, read from every window's answer."""
        result = cls(decode_s=answers.decode_s, model_s=answers.model_s)
        for text in answers.texts:
            result.add(text, parse_answer(text, duration=info.duration, fps=info.fps))
        return result

    def add(self, text: str, parsed: ParsedAnswer) -> None:
        """Keep the answer of the first window, or of the first window that found a span."""
        first_window = not self.raw
        first_found = bool(parsed.spans) and not self.spans
        self.raw.append(text)
        self.spans.extend(parsed.spans)
        if first_window or first_found:
            self.answer = parsed.answer or text.strip()
            self.reasoning = parsed.reasoning


@dataclass(frozen=True)
class SamplingPlan:
    """Which times to show the model, at what size, in which windows."""

    times: list[float]
    windows: list[list[float]]
    size: tuple[int, int]
    interval: float
    motion: MotionCurve | None = None
    #: the part of the video looked at (``time_range`` clamped to it); None: all of it
    bounds: tuple[float, float] | None = None
    #: hard cuts (seconds) refined boundaries snap to (``use_shots``); () when none are known
    cuts: tuple[float, ...] = ()


def plan_sampling(info: VideoInfo, opts: LocateOptions,
                  backend_max_frames: int | None = None, *,
                  cache: DiskCache | None = None) -> SamplingPlan:
    """Fixed-rate or adaptive times, the frame size for the model, and the windows.

    The question sees at most ``max_frames`` frames in all (a longer video is sampled at a lower
    rate); one window holds at most ``max_frames_per_call`` of them, what fits in
    ``max_context_length`` tokens, and what the backend takes in one request
    (``backend_max_frames``); there are at most ``max_windows`` windows (overlaps counted).
    ``cache`` keeps the adaptive pass's motion curve between questions. With ``time_range``,
    all of this happens inside that part of the video (``SamplingPlan.bounds``)."""
    bounds = opts.range_in(info.duration) if opts.time_range is not None else None
    length = bounds[1] - bounds[0] if bounds is not None else info.duration
    width, height = info.display_size
    per_call_cap = min(opts.max_frames, opts.max_frames_per_call or opts.max_frames)
    size = frame_size_for(width, height, per_call_cap,
                          max_pixels_per_frame=opts.max_pixels_per_frame,
                          max_context_tokens=opts.max_context_length)
    fitting = int(opts.max_context_length * CONTEXT_SHARE / max(tokens_per_frame(*size), 0.5))
    per_call = max(2, min(per_call_cap, fitting, backend_max_frames or per_call_cap))
    limit = max(2, min(opts.max_frames, frames_in_windows(opts.max_windows, per_call)))
    motion = None
    if opts.frame_sampling_rate == "adaptive":
        motion = cached_motion_curve(cache, info)
        budget = min(limit, max(opts.min_frames, math.ceil(length)))
        times = (adaptive_times(motion, budget) if bounds is None
                 else range_adaptive_times(motion, bounds, budget))
    else:
        if bounds is None:
            times = sample_times(info, fps=float(opts.frame_sampling_rate),
                                 min_frames=min(opts.min_frames, limit), max_frames=limit)
        else:
            times = range_sample_times(info, bounds, fps=float(opts.frame_sampling_rate),
                                       min_frames=min(opts.min_frames, limit), max_frames=limit)
        if opts.snap_to_keyframes and len(times) > 2:  # the ends never move
            keyframes = keyframe_times(info)
            if keyframes:
                step = length / len(times)
                times = snap_to_keyframes(times, keyframes, step) or times
    if len(times) <= per_call:
        size = frame_size_for(width, height, max(len(times), 1),
                              max_pixels_per_frame=opts.max_pixels_per_frame,
                              max_context_tokens=opts.max_context_length)
    interval = length / max(len(times), 1)
    shots = shot_cuts(info, opts.use_shots)  # window borders go to shot changes, a quarter
    borders = sorted({*(motion.cuts if motion else ()), *shots.borders})  # window away or less
    windows = split_windows(times, per_call, cuts=borders,
                            cut_reach=per_call // 4 if shots.borders else None)
    if len(windows) > opts.max_windows:  # borders moved to scene cuts: one window too many
        windows = split_windows(times, per_call)
    return SamplingPlan(times, windows, size, interval, motion, bounds, shots.cuts)


def budget_warnings(spans: Sequence[Span], opts: LocateOptions, *, noun: str = "span",
                    ceiling: str = f"{MAX_REFINE_CALLS_PER_QUESTION} per question",
                    advice: str = "; raise max_refine_calls (--max-refine-calls) for "
                                  "frame-exact times") -> tuple[str, ...]:
    """A warning when a call budget left spans (``noun``: spans, describe's events) with
    their coarse times; locate and describe both say it this way."""
    short = [s for s in spans if s.refined is False]
    if not short:
        return ()
    return (f"refinement of {len(short)} of {len(spans)} {noun}(s) was cut short by the call "
            f"budget ({opts.max_refine_calls} per {noun}, {ceiling}): their times are the "
            f"coarse pass's, within one sampling interval{advice}",)


def _summarise(coarse: Sequence[_CoarseResult], spans: Sequence[Span], phases: Sequence[str],
               language: str, info: VideoInfo, *, tolerance: float
               ) -> tuple[dict[str, str], str | None]:
    """The answer to show in every output format, and the reasoning.

    A plain question: the model's own sentence with the times it named replaced by the final
    spans' (or, where that cannot be done, the final times written out); a plain not-found
    when verification dropped its spans. A phase question: one line per phase."""
    fps = info.fps if info.fps and info.fps > 0 else None
    formats = [f for f in OUTPUT_FORMATS if f != "frames" or fps]
    if not phases:
        result = coarse[0]
        if result.spans and not spans:
            return dict.fromkeys(formats, not_found_answer(language)), result.answer
        if not spans:
            return dict.fromkeys(formats, result.answer or not_found_answer(language)), \
                result.reasoning
        answers = {}
        for fmt in formats:
            restated = restate_times(result.answer, tuple(spans), fmt, fps=fps,
                                     duration=info.duration, language=language,
                                     tolerance=tolerance, mark_exclusive_end=True)
            answers[fmt] = restated or _stated(result.answer, spans, fmt, fps, language)
        return answers, result.reasoning
    reasons = [r.reasoning for r in coarse if r.reasoning]
    answers = {}
    for fmt in formats:
        lines = []
        for phase in phases:
            found = [s for s in spans if s.label == phase]
            where = (", ".join(_range_text(s, fmt, fps, language) for s in found)
                     if found else not_found_answer(language))
            lines.append(f"{phase}: {where}")
        answers[fmt] = "\n".join(lines)
    return answers, "\n".join(reasons) or None


def _range_text(span: Span, output_format: str, fps: float | None,
                language: str = "en") -> str:
    """``span`` written out; in frames, as frame numbers whose end is marked exclusive (the
    first frame after the event)."""
    start = format_time(span.start, output_format, fps=fps)
    end = format_time(span.end, output_format, fps=fps)
    if output_format != "frames":
        return f"{start} - {end}"
    if language == "zh":
        return f"第{start}帧 - 第{end}帧{exclusive_end_note(language)}"
    return f"frames {start} - {end}{exclusive_end_note(language)}"


def _stated(answer: str, spans: Sequence[Span], output_format: str, fps: float | None,
            language: str) -> str:
    """The final times written out, when the model's sentence cannot be rewritten: after the
    sentence when it names no time, instead of it when its times do not match the spans."""
    times = "; ".join(_range_text(s, output_format, fps, language) for s in spans)
    probe_text = parse_answer(answer)
    if answer.strip() and not probe_text.spans:
        return f"{answer.strip()} ({times})"
    return f"出现在 {times}。" if language == "zh" else f"Found at {times}."


def not_found_answer(language: str) -> str:
    if language == "zh":
        return "视频中未找到所描述的事件。"
    return "The event described was not found in the video."


_default_grounders: dict[tuple[str, str | None], Grounder] = {}
_default_lock = threading.Lock()


def locate(video: str | Path, query: str, *, backend: str | None = None, model: str | None = None,
           progress: ProgressCallback | None = None, **options: Any) -> Grounding:
    """Find when ``query`` happens in ``video`` with the default (or named) backend and model.

    Keyword ``options`` are :class:`LocateOptions` fields, e.g. ``frame_sampling_rate=1.0``.
    The backend is created once per (backend, model) pair and reused by later calls.
    """
    settings = Settings()
    changes: dict[str, Any] = {}
    if backend:
        changes["backend"] = backend
    if model:
        changes["model"] = model
    if changes:
        settings = settings.model_copy(update=changes)
    key = (settings.backend, settings.model)
    with _default_lock:
        grounder = _default_grounders.get(key)
        if grounder is None:
            grounder = _default_grounders[key] = Grounder(settings=settings)
    return grounder.locate(video, query, LocateOptions.from_mapping(options), progress=progress)
