"""Progress reports from long work (decoding, inference) to whoever displays them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """``stage`` is one of ``probe``, ``decode``, ``model``, ``refine``, ``done``; ``done`` and
    ``total`` count units of that stage (frames, model calls, or generated characters)."""

    stage: str
    done: float
    total: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """A progress callback that does nothing."""


#: Where each pipeline stage sits in a request's overall progress (start, end fraction): one
#: table for the jobs' ``progress.fraction`` and the page's progress bar.
STAGE_SPANS: dict[str, tuple[float, float]] = {
    "probe": (0.0, 0.05), "decode": (0.05, 0.35), "model": (0.35, 0.75),
    "refine": (0.75, 0.99), "done": (1.0, 1.0)}
