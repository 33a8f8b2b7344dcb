"""vidground: find when things happen in a video, with Qwen3-VL.

>>> import vidground
>>> g = vidground.locate("match.mp4", "When does the player first shoot a three?")  # doctest: +SKIP
>>> print(g.timestamp_range(), g.answer)  # doctest: +SKIP

Importing this package is light: torch and transformers load only when a local model is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    EventNotFoundError,
    ModelNotAvailableError,
    NotFoundError,
    OptionsError,
    QueryError,
    VideoError,
    VideoNotFoundError,
    VideoTooLargeError,
    VidgroundError,
)
from .options import LocateOptions
from .timecode import Span, format_time, parse_timecode

if TYPE_CHECKING:
    from .grounding import Grounder, Grounding, locate
    from .grounding.answer import parse_spans as parse_answer
    from .video.probe import VideoInfo, probe

__version__ = "0.1.0"

_LAZY = {
    "Grounder": ("grounding", "Grounder"),
    "Grounding": ("grounding", "Grounding"),
    "locate": ("grounding", "locate"),
    "parse_answer": ("grounding.answer", "parse_spans"),  # a model's text -> spans
    "VideoInfo": ("video.probe", "VideoInfo"),
    "probe": ("video.probe", "probe"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'vidground' has no attribute {name!r}")


__all__ = [
    "BackendError", "EventNotFoundError", "Grounder", "Grounding", "LocateOptions",
    "ModelNotAvailableError", "NotFoundError", "OptionsError", "QueryError", "Span", "VideoError",
    "VideoInfo",
    "VideoNotFoundError", "VideoTooLargeError", "VidgroundError", "format_time", "locate",
    "parse_answer", "parse_timecode", "probe",
]
