"""Perception results kept in the project's disk cache (:mod:`vidground.cache`), keyed by the
video file's identity (its content, not its path), the parameters and :data:`VERSION`, so asking
again about the same file (renamed or copied too) costs a lookup. Entries are JSON in the meta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..cache import file_identity, open_cache
from ..cache.store import Entry, make_key

#: Part of every key: bump it when a change alters what a detector returns.
VERSION = 1


def cached(kind: str, path: str, params: dict[str, Any], compute: Callable[[], Any]
           ) -> tuple[Any, bool]:
    """``(value, hit)``: ``compute()`` (a JSON value) for the video at ``path`` and
    ``params``, through the disk cache when it is on."""
    cache = open_cache()
    if cache is None:
        return compute(), False
    parts = {"video": file_identity(path), "version": VERSION, **params}

    def encode(value: Any) -> tuple[dict[str, Any], bytes]:
        return {"value": value}, b""

    def decode(entry: Entry) -> Any:
        return entry.meta["value"]

    return cache.get_or_create(f"perception-{kind}", parts, compute, encode, decode)


def stored(kind: str, path: str, params: dict[str, Any]) -> Any | None:
    """What :func:`cached` keeps for ``kind``, the video at ``path`` and ``params``, or None
    when nothing is stored (or the cache is off): a lookup that never computes."""
    cache = open_cache()
    if cache is None:
        return None
    parts = {"video": file_identity(path), "version": VERSION, **params}
    entry = cache.get(f"perception-{kind}", make_key(f"perception-{kind}", parts))
    return None if entry is None else entry.meta.get("value")
