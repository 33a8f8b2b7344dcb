"""Which engine holds the index: SQLite (one file, ``<data_dir>/search.sqlite3``, FTS5
trigram index) unless ``VIDGROUND_INDEX`` (or, when that is unset, ``VIDGROUND_JOB_STORE``)
names a ``postgresql://`` URL: then PostgreSQL (tables ``vg_search_*``, a ``pg_trgm`` index).
``VIDGROUND_INDEX`` set to anything else is the SQLite file's path. ``VIDGROUND_EMBED_MODEL``
(a text-embedding model folder) gives the opened index its embedder (:mod:`.embeddings`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Settings
from .postgres import PostgresSearchStore
from .sqlite import SQLiteSearchStore
from .store import SearchStore

if TYPE_CHECKING:
    from .embeddings import Embedder

#: ``open_store``'s default: the embedder ``VIDGROUND_EMBED_MODEL`` names (or none).
CONFIGURED = "configured"
#: Index file name under the data directory.
SQLITE_NAME = "search.sqlite3"


def index_location(settings: Settings | None = None) -> str:
    """The PostgreSQL URL or SQLite path the index lives at (see the module docstring)."""
    settings = settings or Settings()
    named = os.environ.get("VIDGROUND_INDEX", "").strip()
    if named:
        return named
    job_store = (settings.job_store or "").strip()
    if _is_postgres(job_store):
        return job_store
    return str(Path(settings.data_dir).expanduser() / SQLITE_NAME)


def _is_postgres(where: str) -> bool:
    return where.startswith(("postgresql://", "postgres://"))


def open_store(where: str | Settings | None = None, *, check: str = "full",
               embedder: Embedder | None | str = CONFIGURED) -> SearchStore:
    """The index at ``where`` (a ``postgresql://`` URL or a SQLite path), or where
    :func:`index_location` says for these settings. ``check``: how closely a SQLite file is
    checked at open (:data:`vidground.search.sqlite.CHECKS`; ``quick`` for a one-off search,
    ``full`` before writing and for a long-lived server). ``embedder``: the model segments
    and queries are embedded with (default: ``VIDGROUND_EMBED_MODEL``'s; None: text alone)."""
    from .embeddings import configured_embedder

    location = where if isinstance(where, str) else index_location(where)
    chosen = configured_embedder() if isinstance(embedder, str) else embedder
    store: SearchStore
    if _is_postgres(location):
        store = PostgresSearchStore(location)
    else:
        store = SQLiteSearchStore(Path(location).expanduser(), check=check)
    store.embedder = chosen
    return store
