"""Nearest segments by vector, for both engines: the index's vectors (float32 blobs, the layout
sqlite-vec reads) are read once into one matrix, kept while the index has not changed, and
ranked by an exact cosine similarity (the vectors are L2-normalised, so a dot product), ties
by segment id: SQLite and PostgreSQL rank the same vectors the same, with the same code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class VectorMatrix:
    """The stored vectors as ``(ids, matrix)``, read again only when ``key`` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Hashable | None = None
        self._ids: np.ndarray | None = None
        self._matrix: np.ndarray | None = None

    def nearest(self, key: Hashable, read: Callable[[], Iterable[tuple[int, bytes]]],
                dim: int, vector: Sequence[float], top: int,
                allowed: Iterable[int] | None = None) -> list[tuple[int, float]]:
        """``(segment id, cosine)`` of the ``top`` stored vectors nearest ``vector``, best
        first (ties: lower id first), only ids in ``allowed`` when given. ``read()`` yields
        ``(id, blob)`` rows; it is called when ``key`` differs from the last call's."""
        import numpy as np

        ids, matrix = self._load(key, read, dim)
        if not len(ids):
            return []
        query = np.asarray(vector, dtype=np.float32)
        if query.shape != (dim,):
            raise ValueError(f"the query vector has {query.shape} values; the index's have "
                             f"{dim}")
        scores = matrix @ query
        if allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64))
            ids, scores = ids[keep], scores[keep]
        if top < len(scores):  # the top's candidates (all those tied at the cut) first
            cut = np.partition(scores, len(scores) - top)[len(scores) - top]
            keep = scores >= cut
            ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:top]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _load(self, key: Hashable, read: Callable[[], Iterable[tuple[int, bytes]]], dim: int
              ) -> tuple[Any, Any]:
        import numpy as np

        with self._lock:
            if key != self._key or self._ids is None or self._matrix is None:
                rows = list(read())
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                blobs = b"".join(bytes(r[1]) for r in rows)
                matrix = np.frombuffer(blobs, dtype="<f4").reshape(len(rows), dim)
                self._ids, self._matrix = ids, matrix
                self._key = key
            return self._ids, self._matrix

    def forget(self) -> None:
        """Read the vectors again on the next call."""
        with self._lock:
            self._key = self._ids = self._matrix = None


def to_blob(vector: Any) -> bytes:
    """A vector as little-endian float32 bytes (sqlite-vec's ``float[N]`` blob layout)."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()
