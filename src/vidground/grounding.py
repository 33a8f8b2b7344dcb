"""The pipeline: probe -> sample times -> decode -> ask the model -> parse spans -> Grounding.

>>> from vidground import locate
>>> g = locate("match.mp4", "When does the player first attempt a three-pointer?")  # doctest: +SKIP
>>> g.timestamp_range()  # doctest: +SKIP
('00:02:15.678', '00:02:17.234')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .answer import parse_answer
from .backends import Backend, create_backend
from .backends.base import Prompt
from .config import Settings
from .options import LocateOptions, check_query
from .progress import ProgressCallback, ProgressEvent, ignore_progress
from .prompts import build_prompt
from .timecode import OutputFormat, Span, format_time
from .video.decode import Frame, decode_frames
from .video.probe import VideoInfo, probe
from .video.resize import frame_size_for
from .video.sampling import sample_times


@dataclass(frozen=True)
class Grounding:
    """The answer to one question about one video.

    ``spans`` are in seconds from the first displayed frame, in time order; empty when the event
    was not found. ``answer`` is the model's plain answer, ``reasoning`` its explanation (when
    asked for), ``raw_answer`` the model's whole text.
    """

    query: str
    spans: tuple[Span, ...]
    answer: str
    reasoning: str | None
    video: VideoInfo
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    frame_times: tuple[float, ...] = ()
    raw_answer: str = ""
    options: LocateOptions = field(default_factory=LocateOptions)

    @property
    def found(self) -> bool:
        return bool(self.spans)

    def format(self, seconds: float, output_format: str | None = None) -> str:
        return format_time(seconds, output_format or self.options.output_format,
                           fps=self.video.fps)

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
            "response": self.answer,
            "timestamp_range": list(rng) if rng else None,
            "reasoning": self.reasoning,
            "segments": [s.to_dict(fmt, fps=self.video.fps) for s in self.spans],
            "video": self.video.summary(),
            "model": self.model,
            "timings": dict(self.timings),
        }


class Grounder:
    """Answers "when" questions about videos with one model backend, loaded once and shared.

    Thread-safe: several threads may call :meth:`locate` at once; the backend decides how many
    model calls really run in parallel.
    """

    def __init__(self, backend: Backend | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._backend = backend
        self._lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        """The model backend, created on first use."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = create_backend(self.settings)
        return self._backend

    @property
    def backend_ready(self) -> bool:
        return self._backend is not None

    def locate(self, video: str | Path, query: str, options: LocateOptions | None = None, *,
               progress: ProgressCallback | None = None) -> Grounding:
        """Find when ``query`` happens in ``video``. Raises :class:`VidgroundError` subclasses
        with a readable message for bad input, missing models and backend failures."""
        opts = options or LocateOptions()
        report = progress or ignore_progress
        text = check_query(query)
        started = time.perf_counter()

        report(ProgressEvent("probe", 0, 1, "reading the video"))
        info = probe(video)
        report(ProgressEvent("probe", 1, 1, "reading the video"))

        decode_started = time.perf_counter()
        frames = self._sample_frames(info, opts, report)
        decode_s = time.perf_counter() - decode_started

        prompt = build_prompt(text, language=opts.language, return_reasoning=opts.return_reasoning,
                              all_occurrences=opts.all_occurrences, duration=info.duration)
        model_started = time.perf_counter()
        raw = self._ask(frames, prompt, opts, report)
        model_s = time.perf_counter() - model_started

        parsed = parse_answer(raw, duration=info.duration, fps=info.fps)
        spans = parsed.spans if opts.enable_temporal_grounding else ()
        if not opts.all_occurrences:
            spans = spans[:1]
        answer = parsed.answer or raw.strip()
        timings = {
            "decode_s": round(decode_s, 4),
            "model_s": round(model_s, 4),
            "total_s": round(time.perf_counter() - started, 4),
            "frames": float(len(frames)),
            "model_calls": 1.0,
        }
        report(ProgressEvent("done", 1, 1, "done"))
        return Grounding(
            query=text,
            spans=tuple(spans),
            answer=answer,
            reasoning=parsed.reasoning if opts.return_reasoning else None,
            video=info,
            model=self.backend.model_name,
            timings=timings,
            frame_times=tuple(f.time for f in frames),
            raw_answer=raw,
            options=opts,
        )

    def _sample_frames(self, info: VideoInfo, opts: LocateOptions,
                       report: ProgressCallback) -> list[Frame]:
        rate = opts.frame_sampling_rate
        fps = 1.0 if rate == "adaptive" else float(rate)
        width, height = frame_size_for(
            info.display_size[0], info.display_size[1], opts.max_frames,
            max_pixels_per_frame=opts.max_pixels_per_frame,
            max_context_tokens=opts.max_context_length,
        )
        tokens_per_frame = (width // 32) * (height // 32)
        times = sample_times(info, fps=fps, min_frames=opts.min_frames, max_frames=opts.max_frames,
                             max_context_tokens=opts.max_context_length,
                             tokens_per_frame=tokens_per_frame)
        width, height = frame_size_for(
            info.display_size[0], info.display_size[1], len(times),
            max_pixels_per_frame=opts.max_pixels_per_frame,
            max_context_tokens=opts.max_context_length,
        )

        def on_decoded(done: int, total: int) -> None:
            report(ProgressEvent("decode", done, total, "decoding frames"))

        return decode_frames(info, times, size=(width, height), progress=on_decoded)

    def _ask(self, frames: Sequence[Frame], prompt: Prompt, opts: LocateOptions,
             report: ProgressCallback) -> str:
        received = 0

        def on_token(piece: str) -> None:
            nonlocal received
            received += len(piece)
            report(ProgressEvent("model", received, None, "the model is answering"))

        report(ProgressEvent("model", 0, None, f"asking {self.backend.model_name}"))
        return self.backend.generate(frames, prompt, max_new_tokens=opts.max_new_tokens,
                                     on_token=on_token)


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
