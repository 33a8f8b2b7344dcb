"""The search index in one SQLite file: ``videos``, ``segments`` and an FTS5 trigram index over
the segments' text (external content, kept in step by triggers), so any substring of three
characters or more (Chinese included) is found through the index and ranked by BM25.

With an embedding model (:mod:`.embeddings`), each segment's vector is a float32 blob in
``segment_vectors`` (deleted with its segment by a foreign key, so no extension is needed to
write or drop a video); :mod:`.vectors` ranks them by exact cosine similarity.

Safety: WAL journal, one transaction per video, so a process killed mid-write (``kill -9``)
leaves each video whole or absent. At open, ``PRAGMA quick_check`` and FTS5's own
``integrity-check`` run (a search-only open, ``check="quick"``, runs the first alone); a file
that fails either (or is not a database at all) is moved aside (``search.sqlite3.damaged-
<time>``, with its ``-wal``/``-shm``) and a fresh index is made, so a damaged index is rebuilt
by the next ``vidground index``, never served half-written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .store import Hit, SearchIndexError, SearchStore, Segment, VideoRecord
from .terms import SHORT
from .vectors import VectorMatrix, to_blob

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 15_000
#: A term in more than this share of the segments is left out of a query that has rarer
#: terms: its BM25 weight is near nothing, and ranking every segment it is in is what makes
#: a query slow.
COMMON_SHARE = 0.2
#: What is checked at open: ``full`` (``quick_check`` and FTS5's ``integrity-check``: about a
#: second per 100k segments), ``quick`` (``quick_check`` alone: a tenth of that) or ``none``.
CHECKS = ("full", "quick", "none")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    identity TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    facts TEXT NOT NULL DEFAULT '{}',
    model TEXT NOT NULL DEFAULT '',
    indexed_at REAL NOT NULL,
    sources TEXT NOT NULL DEFAULT '["event"]'
);
CREATE INDEX IF NOT EXISTS videos_identity ON videos (identity);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_video ON segments (video_id, start_s);
CREATE VIRTUAL TABLE IF NOT EXISTS segments_fts USING fts5 (
    text, content='segments', content_rowid='id', tokenize='trigram');
CREATE VIRTUAL TABLE IF NOT EXISTS segments_vocab USING fts5vocab (segments_fts, 'row');
CREATE TRIGGER IF NOT EXISTS segments_ai AFTER INSERT ON segments BEGIN
    INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS segments_ad AFTER DELETE ON segments BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE IF NOT EXISTS segment_vectors (
    segment_id INTEGER PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
    embedding BLOB NOT NULL
);
"""
#: What a version-1 file (before sources and vectors) gets at open.
MIGRATE_1 = """ALTER TABLE videos ADD COLUMN sources TEXT NOT NULL DEFAULT '["event"]';"""
TABLES = ("meta", "videos", "segments", "segments_fts", "segments_vocab", "segment_vectors")


def _fts_query(found_terms: Sequence[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in found_terms)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SQLiteSearchStore(SearchStore):
    """The index in the SQLite file at ``path`` (made, with its folder, when missing)."""

    def __init__(self, path: str | Path, *, check: str = "full",
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self._busy_ms = busy_timeout_ms
        self.warnings = []
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchIndexError(f"cannot make the index folder {self.path.parent}: "
                                   f"{exc.strerror}; set VIDGROUND_INDEX to a writable path."
                                   ) from None
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}")
        if check != "none" and self.path.exists():
            problem = self._damage(full=check == "full")
            if problem:
                self._move_aside(problem)
        self._conn = self._connect()
        self._matrix = VectorMatrix()
        self._writes = 0  # this connection's commits (data_version counts the others')

    # -- opening ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
            marks = ",".join("?" * len(TABLES))
            made = conn.execute(f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                f"name IN ({marks})", TABLES).fetchone()[0] == len(TABLES)
            stale = _has_table(conn, "videos") and not _has_column(conn, "videos", "sources")
            if not made or stale:  # a write: only when needed (a busy index waits for nothing)
                migrate = MIGRATE_1 if stale else ""
                conn.executescript("BEGIN IMMEDIATE;" + migrate + SCHEMA + "INSERT OR REPLACE "
                                   "INTO meta (key, value) VALUES ('version', "
                                   f"'{SCHEMA_VERSION}'); COMMIT;")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise SearchIndexError(f"the search index {self.path} is busy (another process "
                                       "is writing it); retry shortly.") from None
            raise SearchIndexError(f"cannot open the search index {self.path}: {exc}; set "
                                   "VIDGROUND_INDEX to a writable file path.") from None
        except sqlite3.Error as exc:
            raise SearchIndexError(f"cannot open the search index {self.path}: {exc}; set "
                                   "VIDGROUND_INDEX to a writable file path.") from None
        return conn

    def _damage(self, *, full: bool) -> str | None:
        """Why the existing file cannot be trusted, or None when it passes the checks (with
        ``full``, FTS5's own check too)."""
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000,
                                   isolation_level=None)
        except sqlite3.Error as exc:
            return str(exc)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                return "; ".join(str(r[0]) for r in rows[:3])
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
            if full and "segments_fts" in tables:
                # FTS5's check that the index matches the segments it was built from
                conn.execute("INSERT INTO segments_fts (segments_fts, rank) "
                             "VALUES ('integrity-check', 1)")
            return None
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # another process is writing
                return None
            return str(exc)
        except sqlite3.Error as exc:
            return str(exc)
        finally:
            conn.close()

    def _move_aside(self, problem: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(target) + suffix))
        self.warnings.append(f"the search index {self.path} was damaged ({problem}); it was "
                             f"moved to {target.name} and a new, empty index was started: "
                             "run `vidground index` again on your folders.")

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    # -- reading ---------------------------------------------------------------------------
    def _one(self, sql: str, args: Sequence[object]) -> VideoRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT path, identity, duration, facts, model, sources FROM videos WHERE {sql}",
                tuple(args)).fetchone()
        if row is None:
            return None
        return VideoRecord(path=row[0], identity=row[1], duration=row[2],
                           facts=json.loads(row[3]), model=row[4],
                           sources=tuple(json.loads(row[5])))

    def video(self, path: str) -> VideoRecord | None:
        return self._one("path = ?", (path,))

    def by_identity(self, identity: str) -> VideoRecord | None:
        return self._one("identity = ? ORDER BY indexed_at DESC LIMIT 1", (identity,))

    def segments(self, path: str) -> list[Segment]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.start_s, s.end_s, s.text, s.kind FROM segments s JOIN videos v "
                "ON v.id = s.video_id WHERE v.path = ? ORDER BY s.start_s, s.id",
                (path,)).fetchall()
        return [Segment(*row) for row in rows]

    def paths(self, within: str | None = None) -> list[str]:
        sql = "SELECT path FROM videos"
        args: tuple[str, ...] = ()
        if within:
            sql, args = sql + " WHERE substr(path, 1, length(?)) = ?", (within, within)
        with self._lock:
            return [r[0] for r in self._conn.execute(sql + " ORDER BY path", args)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            videos = self._conn.execute("SELECT count(*) FROM videos").fetchone()[0]
            segments = self._conn.execute("SELECT count(*) FROM segments").fetchone()[0]
            vectors = self._conn.execute("SELECT count(*) FROM segment_vectors").fetchone()[0]
        return {"videos": int(videos), "segments": int(segments), "vectors": int(vectors)}

    def vectors_model(self) -> str:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'embed_model'"
                                     ).fetchone()
        return str(row[0]) if row else ""

    def nearest(self, vector: Sequence[float], top: int, within: str | None = None
                ) -> list[Hit]:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'embed_dim'"
                                     ).fetchone()
            if row is None:
                return []
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            allowed = None
            if within:
                allowed = [r[0] for r in self._conn.execute(
                    "SELECT s.id FROM segments s JOIN videos v ON v.id = s.video_id "
                    "WHERE substr(v.path, 1, length(?)) = ?", (within, within))]
            found = self._matrix.nearest(
                (version, self._writes), lambda: self._conn.execute(
                    "SELECT segment_id, embedding FROM segment_vectors ORDER BY segment_id"),
                int(row[0]), vector, top, allowed)
            return self._hits(found)

    def _hits(self, found: list[tuple[int, float]]) -> list[Hit]:
        if not found:
            return []
        marks = ",".join("?" * len(found))
        rows = {r[0]: r[1:] for r in self._conn.execute(
            "SELECT s.id, v.path, s.start_s, s.end_s, s.text, s.kind FROM segments s JOIN "
            f"videos v ON v.id = s.video_id WHERE s.id IN ({marks})",
            [i for i, _ in found])}
        return [Hit(video=rows[i][0], start=rows[i][1], end=rows[i][2], score=score,
                    text=rows[i][3], source=rows[i][4]) for i, score in found if i in rows]

    def find(self, found_terms: Sequence[str], top: int, within: str | None = None
             ) -> list[Hit]:
        long_terms = [t for t in found_terms if len(t) >= SHORT]
        selective = self._selective(long_terms)
        hits = self._find(found_terms, selective, top, within)
        if not hits and selective != long_terms:
            # the rarer terms matched nothing (e.g. "seen" in "when is the red square
            # seen?"): the common ones are all the query has
            hits = self._find(found_terms, long_terms, top, within)
        return hits

    def _find(self, found_terms: Sequence[str], indexed: list[str], top: int,
              within: str | None) -> list[Hit]:
        where, args = "", []
        if within:
            where, args = " AND substr(v.path, 1, length(?)) = ?", [within, within]
        if indexed and not within:  # the best rows first, then their videos: ranks fewer
            sql = ("SELECT v.path, s.start_s, s.end_s, -f.rank, s.text, s.kind FROM "
                   "(SELECT rowid, rank FROM segments_fts WHERE segments_fts MATCH ? "
                   "ORDER BY rank LIMIT ?) f JOIN segments s ON s.id = f.rowid "
                   "JOIN videos v ON v.id = s.video_id ORDER BY f.rank, s.id")
            params: list[object] = [_fts_query(indexed), top]
        elif indexed:
            sql = ("SELECT v.path, s.start_s, s.end_s, -segments_fts.rank, s.text, s.kind "
                   "FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid "
                   "JOIN videos v ON v.id = s.video_id WHERE segments_fts MATCH ?" + where +
                   " ORDER BY segments_fts.rank, s.id LIMIT ?")
            params = [_fts_query(indexed), *args, top]
        else:  # one- or two-character terms: not in the trigram index, a scan
            matched = " + ".join("(s.text LIKE ? ESCAPE '\\')" for _ in found_terms)
            sql = (f"SELECT v.path, s.start_s, s.end_s, ({matched}) AS score, s.text, s.kind "
                   "FROM segments s JOIN videos v ON v.id = s.video_id "
                   f"WHERE score > 0{where} ORDER BY score DESC, s.id LIMIT ?")
            params = [*(_like(t) for t in found_terms), *args, top]
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [Hit(video=r[0], start=r[1], end=r[2], score=float(r[3]), text=r[4],
                    source=r[5]) for r in rows]

    def _selective(self, terms: list[str]) -> list[str]:
        """``terms`` without those in more than :data:`COMMON_SHARE` of the segments, unless
        every term is that common."""
        if len(terms) < 2:
            return terms
        with self._lock:
            total = self._conn.execute("SELECT count(*) FROM segments").fetchone()[0]
            common = []
            for term in terms:
                grams = {term[i:i + SHORT] for i in range(len(term) - SHORT + 1)}
                marks = ",".join("?" * len(grams))
                row = self._conn.execute(f"SELECT min(doc), count(*) FROM segments_vocab "
                                         f"WHERE term IN ({marks})", tuple(grams)).fetchone()
                # the rarest of its trigrams bounds how many segments hold the term
                if row[1] == len(grams) and row[0] > COMMON_SHARE * total:
                    common.append(term)
        return [t for t in terms if t not in common] or terms

    # -- writing ---------------------------------------------------------------------------
    def put(self, record: VideoRecord, segments: Sequence[Segment]) -> None:
        self.put_many([(record, segments)])

    def put_many(self, items: Sequence[tuple[VideoRecord, Sequence[Segment]]]) -> None:
        vectors = self._embed([s for _, segments in items for s in segments])
        with self._lock, self._writing(), _transaction(self._conn, immediate=True):
            self._adopt_model()
            done = 0
            for record, segments in items:
                self._conn.execute("DELETE FROM videos WHERE path = ?", (record.path,))
                cur = self._conn.execute(
                    "INSERT INTO videos (path, identity, duration, facts, model, indexed_at, "
                    "sources) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.path, record.identity, record.duration,
                     json.dumps(record.facts, ensure_ascii=False), record.model, time.time(),
                     json.dumps(list(record.sources))))
                self._insert(int(cur.lastrowid or 0), segments,
                             vectors[done:done + len(segments)] if vectors else None)
                done += len(segments)
            self._writes += 1

    def replace_kinds(self, record: VideoRecord, kinds: Sequence[str],
                      segments: Sequence[Segment]) -> None:
        vectors = self._embed(segments)
        with self._lock, self._writing(), _transaction(self._conn, immediate=True):
            row = self._conn.execute("SELECT id FROM videos WHERE path = ?",
                                     (record.path,)).fetchone()
            if row is None:
                raise SearchIndexError(f"{record.path} is no longer in the index (another "
                                       "process removed it); run `vidground index` again.")
            self._adopt_model()
            marks = ",".join("?" * len(kinds))
            self._conn.execute(f"DELETE FROM segments WHERE video_id = ? AND kind IN ({marks})",
                               (row[0], *kinds))
            self._conn.execute(
                "UPDATE videos SET identity = ?, duration = ?, facts = ?, model = ?, "
                "sources = ?, indexed_at = ? WHERE id = ?",
                (record.identity, record.duration, json.dumps(record.facts, ensure_ascii=False),
                 record.model, json.dumps(list(record.sources)), time.time(), row[0]))
            self._insert(int(row[0]), segments, vectors)
            self._writes += 1

    def fill_vectors(self, path: str) -> int:
        if self.embedder is None:
            return 0
        with self._lock:
            same = self.vectors_model() == self.embedder.name
            rows = self._conn.execute(
                "SELECT s.id, s.text FROM segments s JOIN videos v ON v.id = s.video_id "
                "LEFT JOIN segment_vectors x ON x.segment_id = s.id WHERE v.path = ? "
                + ("AND x.segment_id IS NULL " if same else "") + "ORDER BY s.id",
                (path,)).fetchall()
        if not rows:
            return 0
        vectors = self._embed([Segment(0, 0, text) for _, text in rows]) or []
        with self._lock, self._writing(), _transaction(self._conn, immediate=True):
            self._adopt_model()
            self._conn.executemany(  # a segment deleted meanwhile gets none
                "INSERT OR REPLACE INTO segment_vectors (segment_id, embedding) SELECT ?, ? "
                "WHERE EXISTS (SELECT 1 FROM segments WHERE id = ?)",
                [(i, to_blob(v), i) for (i, _), v in zip(rows, vectors, strict=True)])
            self._writes += 1
        return len(rows)

    def _embed(self, segments: Sequence[Segment]) -> list[Any] | None:
        """The vectors of ``segments`` (before a write's transaction: the model is slow), or
        None without an embedder."""
        if self.embedder is None or not segments:
            return None
        return list(self.embedder.embed([s.text for s in segments]))

    def _adopt_model(self) -> None:
        """In a write: make the embedder's model the index's; another model's vectors go."""
        if self.embedder is None:
            return
        name, dim = self.embedder.name, self.embedder.dim
        stored = dict(self._conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('embed_model', 'embed_dim')"))
        if stored == {"embed_model": name, "embed_dim": str(dim)}:
            return
        self._conn.execute("DELETE FROM segment_vectors")
        self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               [("embed_model", name), ("embed_dim", str(dim))])

    def _insert(self, video_id: int, segments: Sequence[Segment],
                vectors: Sequence[Any] | None) -> None:
        rows = [(video_id, s.kind, s.start, s.end, s.text) for s in segments]
        sql = "INSERT INTO segments (video_id, kind, start_s, end_s, text) VALUES (?, ?, ?, ?, ?)"
        if not vectors:
            self._conn.executemany(sql, rows)
            return
        for row, vector in zip(rows, vectors, strict=True):
            cur = self._conn.execute(sql, row)
            self._conn.execute("INSERT INTO segment_vectors (segment_id, embedding) "
                               "VALUES (?, ?)", (cur.lastrowid, to_blob(vector)))

    def remove(self, paths: Sequence[str]) -> int:
        removed = 0
        with self._lock, self._writing(), _transaction(self._conn, immediate=True):
            for path in paths:
                removed += self._conn.execute("DELETE FROM videos WHERE path = ?",
                                              (path,)).rowcount
            self._writes += 1
        return removed

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full
            raise SearchIndexError(f"cannot write the search index {self.path}: {exc}; retry "
                                   "when the other `vidground index` has finished (or free "
                                   "disk space).") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?",
                             (name,)).fetchone()[0])


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


@contextmanager
def _transaction(conn: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
