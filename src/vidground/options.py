"""One record for every knob of a grounding request (the API's ``options`` object)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from .errors import OptionsError
from .timecode import OUTPUT_FORMATS, OutputFormat

Sampling = float | Literal["adaptive"]

MAX_QUERY_CHARS = 4000
#: The most extra model calls (refine + verify) one question may make, whatever
#: ``max_refine_calls`` times the number of spans comes to: spans past it keep their coarse times
#: and say so (``refined: false``), and the response carries a warning.
MAX_REFINE_CALLS_PER_QUESTION = 128


#: What each option means, in one line: the API's schema (``/docs``) and the CLI's help read
#: these, so an option is described in one place.
OPTION_DOCS = {
    "enable_temporal_grounding": "find the time span(s); false returns only the answer",
    "return_reasoning": "ask the model to explain its answer",
    "output_format": "how times are written: HH:MM:SS.sss, HH:MM:SS, seconds or frames",
    "frame_sampling_rate": "frames per second to show the model, or 'adaptive'",
    "min_frames": "fewest frames shown for a question",
    "max_frames": "most frames shown for a question, shared by its windows (a longer video is "
                  "sampled at a lower rate)",
    "max_frames_per_call": "most frames one model call sees (default: what fits the context "
                           "and the backend); more frames are asked in overlapping windows",
    "max_context_length": "token budget of one model call",
    "max_pixels_per_frame": "cap on the size of each frame given to the model",
    "refine": "re-ask around each boundary with dense frames",
    "verify": "re-ask whether each span really shows the event (its score)",
    "max_refine_calls": "most extra model calls for refine + verify of each span",
    "max_windows": "most windows a long video is split into",
    "all_occurrences": "return every occurrence, not only the first",
    "split_phases": "one labelled span per phase of a multi-phase question",
    "snap_to_keyframes": "fixed rate: when every sampling interval holds a keyframe, "
                         "sample the keyframes (only they are decoded: much faster)",
    "max_new_tokens": "longest answer the model may write",
    "language": "prompt language: auto, en or zh",
    "structured_output": "ask for JSON answers held to a schema (response_format / xgrammar); "
                         "null: the server's VIDGROUND_STRUCTURED_OUTPUT",
    "time_range": "[start, end] seconds: look only inside this part of the video (clamped to "
                  "it); spans are still in whole-video seconds",
    "use_shots": "shot changes (TransNetV2) place window borders at cuts and snap refined "
                 "boundaries to a hard cut 1-2 frames away; null: only when already detected "
                 "for this video (free), true: detect them if not (about 0.3-3x real time on "
                 "a CPU; needs vidground[perception]), false: never",
}


@dataclass(frozen=True)
class LocateOptions:
    """How to look at the video and what to return.

    ``frame_sampling_rate`` is frames per second, or ``"adaptive"`` (dense where things move).
    ``min_frames``/``max_frames`` bound the frames shown for the whole question: a video too long
    for ``max_frames`` at that rate is sampled at a lower one. One model call sees at most
    ``max_frames_per_call`` of them (default: what fits ``max_context_length`` and the backend);
    more are asked in overlapping windows (at most ``max_windows``).
    ``refine`` re-asks around each boundary with dense frames, ``verify`` re-asks whether each
    span really shows the event (its ``score``); together they make at most
    ``max_refine_calls`` extra model calls per span (and at most
    :data:`MAX_REFINE_CALLS_PER_QUESTION` in all). ``snap_to_keyframes``: with a fixed rate, when
    every sampling interval holds a keyframe, sample the keyframes (only they are decoded).
    ``time_range`` (``(start, end)`` seconds, ``start < end``): sample, ask and refine only
    inside that part of the video (clamped to it: see :meth:`range_in`); spans stay in
    whole-video seconds. ``use_shots``: shot changes (:mod:`vidground.perception.shots`)
    place window borders at cuts and snap refined boundaries to a hard cut one or two frames
    away; ``None`` uses them only when already detected for the video (a cache lookup),
    ``True`` detects them when not, ``False`` never uses them.
    """

    enable_temporal_grounding: bool = True
    return_reasoning: bool = True
    output_format: OutputFormat = "HH:MM:SS.sss"
    frame_sampling_rate: Sampling = 2.0
    min_frames: int = 4
    max_frames: int = 768
    max_frames_per_call: int | None = None
    max_context_length: int = 262_144
    max_pixels_per_frame: int | None = None
    refine: bool = True
    verify: bool = True
    max_refine_calls: int = 8
    max_windows: int = 32
    all_occurrences: bool = False
    split_phases: bool = True
    snap_to_keyframes: bool = True
    max_new_tokens: int = 512
    language: Literal["auto", "en", "zh"] = "auto"
    structured_output: bool | None = None
    time_range: tuple[float, float] | None = None
    use_shots: bool | None = None

    def __post_init__(self) -> None:
        if self.time_range is not None:  # a JSON list is accepted and kept as a tuple
            object.__setattr__(self, "time_range", _check_range(self.time_range))
        rate = self.frame_sampling_rate
        if isinstance(rate, str):
            if rate != "adaptive":
                raise OptionsError(
                    f"frame_sampling_rate must be a number of frames per second or 'adaptive', "
                    f"got {rate!r}"
                )
        elif isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0 < rate <= 60):
            raise OptionsError(
                f"frame_sampling_rate must be between 0 and 60 frames per second, got {rate!r}"
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise OptionsError(
                f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, "
                f"got {self.output_format!r}"
            )
        _check_int("min_frames", self.min_frames, 1, 4096)
        _check_int("max_frames", self.max_frames, 2, 4096)
        if self.min_frames > self.max_frames:
            raise OptionsError(
                f"min_frames ({self.min_frames}) is larger than max_frames ({self.max_frames})"
            )
        if self.max_frames_per_call is not None:
            _check_int("max_frames_per_call", self.max_frames_per_call, 2, 4096)
        _check_int("max_context_length", self.max_context_length, 1024, 4_000_000)
        _check_int("max_new_tokens", self.max_new_tokens, 1, 32_768)
        _check_int("max_refine_calls", self.max_refine_calls, 0, 256)
        _check_int("max_windows", self.max_windows, 1, 1024)
        if self.max_pixels_per_frame is not None:
            _check_int("max_pixels_per_frame", self.max_pixels_per_frame, 32 * 32, 4096 * 4096)
        if self.structured_output is not None and not isinstance(self.structured_output, bool):
            raise OptionsError(f"structured_output must be true, false or null, got "
                               f"{self.structured_output!r}")
        if self.use_shots is not None and not isinstance(self.use_shots, bool):
            raise OptionsError(f"use_shots must be true, false or null, got {self.use_shots!r}")
        if self.language not in ("auto", "en", "zh"):
            raise OptionsError(f"language must be 'auto', 'en' or 'zh', got {self.language!r}")

    def range_in(self, duration: float) -> tuple[float, float]:
        """The part of a ``duration``-second video to look at: ``time_range`` clamped to the
        video (the whole video when it is None). Raises :class:`OptionsError` when the range
        starts at or after the video's end."""
        if self.time_range is None:
            return 0.0, duration
        start, end = self.time_range
        if start >= duration:
            raise OptionsError(
                f"time_range starts at {start:g} s but the video is only {duration:.3f} s "
                f"long; give a start before {duration:.3f}"
            )
        return start, min(end, duration)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> LocateOptions:
        """Build from a plain mapping (API body, CLI flags), refusing unknown keys."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(
                f"unknown option(s): {', '.join(unknown)}; "
                f"known options: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        """Every option as a plain mapping (the API's ``options`` object)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (lo <= value <= hi):
        raise OptionsError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")


def _check_range(value: object) -> tuple[float, float]:
    """``value`` as ``(start, end)`` seconds, or :class:`OptionsError` saying what is wrong."""
    example = "e.g. [30, 45] for 0:30 to 0:45"
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise OptionsError(f"time_range must be two numbers [start, end] in seconds ({example}), "
                           f"got {value!r}")
    start, end = value
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise OptionsError(f"time_range's {name} must be a finite number of seconds "
                               f"({example}), got {v!r}")
    if start < 0:
        raise OptionsError(f"time_range's start must be 0 or later, got {start!r}")
    if end <= start:
        raise OptionsError(f"time_range's end ({end!r}) must be after its start ({start!r}); "
                           f"{example}")
    return float(start), float(end)


def check_query(query: object) -> str:
    """Return the stripped query or raise :class:`QueryError` with a reason."""
    from .errors import QueryError

    if not isinstance(query, str):
        raise QueryError(f"the query must be text, got {type(query).__name__}")
    text = query.strip()
    if not text:
        raise QueryError("the query is empty: ask what to find, e.g. 'when does the dog jump?'")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}"
        )
    if "\x00" in text:
        raise QueryError("the query contains a NUL character")
    return text
