"""Per-request cache accounting: hits, misses, and the seconds the local backend spent preparing
pixels and in the vision tower, collected while one question is answered
(``with track() as tally: ...``).

A context variable carries the tally, so the cache and the backends add to the request that
called them without passing it around; threads started with a copied context (``asyncio``'s
``to_thread``) add to the same tally.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Tally:
    """What the cache did for one request."""

    hits: int = 0
    misses: int = 0
    vision_s: float = 0.0
    prep_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def add_vision(self, seconds: float) -> None:
        with self._lock:
            self.vision_s += seconds

    def add_prep(self, seconds: float) -> None:
        with self._lock:
            self.prep_s += seconds


_current: ContextVar[Tally | None] = ContextVar("vidground_cache_tally", default=None)


@contextmanager
def track() -> Iterator[Tally]:
    """Collect cache hits, misses and vision seconds of the code run inside the block (nested
    blocks each get their own tally)."""
    tally = Tally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def current() -> Tally | None:
    """The tally of the request being answered, if any."""
    return _current.get()
