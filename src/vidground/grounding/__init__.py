"""The grounding pipeline: from a video and a question to spans.

- :mod:`.pipeline` — :class:`Grounder` (plan the sampling and windows, decode, ask, parse,
  refine, merge) and its result :class:`Grounding`;
- :mod:`.prompts` — what the model is asked (English and Chinese), :class:`Prompt`;
- :mod:`.answer` — reading the times out of what models really write; restating them;
- :mod:`.refine` — dense re-asks around each boundary, and verification;
- :mod:`.phases` — one question per phase of a multi-phase question;
- :mod:`.windows` — long videos in overlapping windows, spans merged.

``from vidground.grounding import Grounder`` works as it always did. The names are loaded on
first use, so ``vidground.grounding.prompts`` and ``.answer`` import without PyAV or a model
library (the pipeline itself needs PyAV).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Grounder, Grounding, SamplingPlan, plan_sampling

__all__ = ["Grounder", "Grounding", "SamplingPlan", "plan_sampling"]

_STAGES = frozenset({"pipeline", "prompts", "answer", "refine", "phases", "windows"})


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if name in _STAGES:
        return importlib.import_module(f".{name}", __name__)
    pipeline = importlib.import_module(".pipeline", __name__)
    try:
        return getattr(pipeline, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
