"""Search a whole library: which videos show something, and when (issue 27).

``vidground index PATH...`` stores each video's time-coded text (:mod:`.index`), ``vidground
search "QUERY"`` ranks the moments (:mod:`.query`); the index is SQLite with FTS5 or PostgreSQL
(:mod:`.engines`). The names below load on first use, so ``import vidground.search`` stays
light.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"open_store": "engines", "index_location": "engines", "index_paths": "index",
          "IndexReport": "index", "IndexProgress": "index", "search": "query",
          "ground_hits": "query", "Hit": "store", "Segment": "store", "VideoRecord": "store",
          "SearchStore": "store", "SearchIndexError": "store"}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(name)
