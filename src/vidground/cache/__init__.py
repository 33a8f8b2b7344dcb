"""Ask again, pay once: decoded frames and Qwen3-VL's visual features kept on disk.

- :mod:`.store`: the content-addressed, size-capped, LRU disk cache (atomic writes, one
  computation per key across threads and processes, damaged entries dropped and recomputed).
- :mod:`.identity`: a video file's identity (size, mtime, sampled blocks; not its path).
- :mod:`.frames`: the decoded, resized frames of a sampling plan (every backend, the refiner and
  the page use them), stored as lossless WebP, and the JPEG bytes the remote backend sends
  (``encoded`` entries); a video's entries are one eviction group (:mod:`.store`).
- :mod:`.tally`: per-request hits, misses and vision seconds for the response's ``timings``.
- Visual features of the local backend live in :mod:`vidground.backends.vision_cache`, in the
  eviction group of the video their frames came from (:func:`.frames.eviction_group`).

The cache lives in ``VIDGROUND_CACHE_DIR`` (default ``<data dir>/cache``) and holds at most
``VIDGROUND_CACHE_MAX_GB`` gigabytes (``0`` turns it off).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .identity import file_identity
from .store import DiskCache, make_key
from .tally import Tally, current, track

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

_caches: dict[str, DiskCache] = {}
_failed: set[str] = set()
_registry_lock = threading.Lock()


def cache_dir(settings: Settings) -> Path:
    """Where ``settings`` put the cache."""
    return Path(settings.cache_dir or Path(settings.data_dir) / "cache").expanduser()


def open_cache(settings: Settings | None = None) -> DiskCache | None:
    """The process's cache for ``settings`` (one instance per folder, so counters are shared),
    or None when it is off (``cache_max_gb = 0``) or its folder cannot be created."""
    if settings is None:
        from ..config import Settings

        settings = Settings()
    max_bytes = int(float(settings.cache_max_gb) * 1e9)
    if max_bytes <= 0:
        return None
    root = os.path.realpath(cache_dir(settings))
    with _registry_lock:
        cache = _caches.get(root)
        if cache is not None:
            cache.max_bytes = max_bytes
            return cache
        if root in _failed:
            return None
        try:
            cache = _caches[root] = DiskCache(root, max_bytes)
        except OSError as exc:
            _failed.add(root)
            log.warning("cache: cannot use %s (%s); running without a cache. Set "
                        "VIDGROUND_CACHE_DIR to a writable folder.", root, exc)
            return None
    return cache


def stats(settings: Settings | None = None) -> dict[str, Any]:
    """Hits, misses, bytes on disk and more of the cache ``settings`` name (for
    ``/api/v1/health``); ``{"enabled": False, ...}`` when the cache is off."""
    cache = open_cache(settings)
    if cache is None:
        from ..config import Settings

        chosen = settings or Settings()
        return {"enabled": False, "dir": str(cache_dir(chosen)), "max_bytes": 0,
                "entries": 0, "bytes": 0, "hits": 0, "misses": 0}
    return cache.stats()


def _at(settings: Settings | None) -> DiskCache:
    """The cache folder ``settings`` name, opened even when the cache is turned off."""
    if settings is None:
        from ..config import Settings

        settings = Settings()
    cache = open_cache(settings)
    if cache is not None:
        return cache
    try:
        return DiskCache(cache_dir(settings), 0)
    except OSError as exc:
        from ..errors import OptionsError

        raise OptionsError(f"cannot open the cache folder {cache_dir(settings)}: {exc}; "
                           "set VIDGROUND_CACHE_DIR to a writable folder") from exc


def info(settings: Settings | None = None) -> dict[str, Any]:
    """What the cache folder holds: entries and bytes per kind, oldest and newest use."""
    cache = _at(settings)
    return {**cache.info(), "enabled": cache.max_bytes > 0}


def clear_plan(settings: Settings | None = None, older_than_s: float | None = None
               ) -> dict[str, Any]:
    """What :func:`clear` with the same arguments would delete, deleting nothing: the folder,
    entries and bytes in all and per kind (``vidground cache clear`` says it first)."""
    import time

    cache = _at(settings)
    now = time.time()
    kinds: dict[str, dict[str, int]] = {}
    for kind, _, stat in cache.entries():
        if older_than_s is not None and now - stat.st_mtime < older_than_s:
            continue
        k = kinds.setdefault(kind, {"entries": 0, "bytes": 0})
        k["entries"] += 1
        k["bytes"] += stat.st_size
    return {"dir": str(cache.root), "older_than_s": older_than_s,
            "entries": sum(k["entries"] for k in kinds.values()),
            "bytes": sum(k["bytes"] for k in kinds.values()), "kinds": kinds}


def describe_clear(plan: dict[str, Any]) -> str:
    """One line saying what a :func:`clear_plan` covers, e.g. ``will delete 12 entries
    (340.2 MB) from /home/me/.local/share/vidground/cache: frames 10 (300.0 MB), ...``."""
    age = plan.get("older_than_s")
    which = f" unused for {age:g} s" if age is not None else ""
    kinds = ", ".join(f"{kind} {k['entries']} ({k['bytes'] / 1e6:.1f} MB)"
                      for kind, k in sorted(plan["kinds"].items()))
    return (f"will delete {plan['entries']} entries{which} ({plan['bytes'] / 1e6:.1f} MB) "
            f"from {plan['dir']}" + (f": {kinds}" if kinds else ""))


def clear(settings: Settings | None = None, older_than_s: float | None = None
          ) -> tuple[int, int]:
    """Delete the cache's entries (only those unused for ``older_than_s`` seconds when given);
    returns ``(entries, bytes)`` deleted."""
    return _at(settings).clear(older_than_s)


_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_age(text: str) -> float:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` (or plain seconds) as seconds."""
    from ..errors import OptionsError

    value = text.strip().lower()
    unit = _AGE_UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise OptionsError(f"cannot read the age {text!r}; write e.g. 90s, 30m, 12h, 7d or "
                           "2w") from None
    if seconds < 0 or seconds != seconds:
        raise OptionsError(f"the age must not be negative, got {text!r}")
    return seconds


__all__ = ["DiskCache", "Tally", "cache_dir", "clear", "clear_plan", "current", "describe_clear",
           "file_identity", "info", "make_key", "open_cache", "parse_age", "stats", "track"]
