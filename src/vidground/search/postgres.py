"""The search index in PostgreSQL (``VIDGROUND_INDEX`` or ``VIDGROUND_JOB_STORE`` a
``postgresql://`` URL): tables ``vg_search_videos`` and ``vg_search_segments`` and a
``pg_trgm`` GIN index on the lower-cased text (a column, ``folded``, lower-cased by Python as
the query is, whatever the database's locale; no row is lower-cased at query time), so the
same substring terms as SQLite's trigram index (Chinese included) are looked up through an
index. A segment's score is the summed length of the query terms it contains (longer terms are
rarer), shorter texts first among equals (higher is better; not on the same scale as SQLite's
BM25). Every video is written in one transaction.

With an embedding model, each segment's vector is a float32 blob in ``vg_search_vectors``
(deleted with its segment by a foreign key), ranked by exact cosine similarity in this process
(:mod:`.vectors`: the vectors are read once and kept until the table changes). pgvector would
rank them inside the database; it is not used (see docs/search.md).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import VidgroundError
from .store import Hit, SearchIndexError, SearchStore, Segment, VideoRecord
from .vectors import VectorMatrix, to_blob

T = TypeVar("T")
#: An advisory lock number: one process creates the tables at a time.
SCHEMA_LOCK = 0x76675F73  # "vg_s"
SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE TABLE IF NOT EXISTS vg_search_videos (
        id BIGSERIAL PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        identity TEXT NOT NULL,
        duration DOUBLE PRECISION NOT NULL DEFAULT 0,
        facts JSONB NOT NULL DEFAULT '{}',
        model TEXT NOT NULL DEFAULT '',
        indexed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS vg_search_videos_identity ON vg_search_videos (identity)",
    """CREATE TABLE IF NOT EXISTS vg_search_segments (
        id BIGSERIAL PRIMARY KEY,
        video_id BIGINT NOT NULL REFERENCES vg_search_videos (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL,
        text TEXT NOT NULL,
        folded TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS vg_search_segments_video "
    "ON vg_search_segments (video_id, start_s)",
    "CREATE INDEX IF NOT EXISTS vg_search_segments_trgm "
    "ON vg_search_segments USING gin (folded gin_trgm_ops)",
    """CREATE TABLE IF NOT EXISTS vg_search_vectors (
        segment_id BIGINT PRIMARY KEY REFERENCES vg_search_segments (id) ON DELETE CASCADE,
        embedding BYTEA NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS vg_search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
#: Added to a table made before sources were recorded.
MIGRATE_SOURCES = ("ALTER TABLE vg_search_videos ADD COLUMN IF NOT EXISTS sources JSONB "
                   "NOT NULL DEFAULT '[\"event\"]'")


def _count_write(cur: Any) -> None:
    """Count a write in ``vg_search_meta``'s ``generation`` (last in its transaction: the row
    stays locked until the commit), so every process knows its vectors read are stale."""
    cur.execute("INSERT INTO vg_search_meta (key, value) VALUES ('generation', '1') ON CONFLICT "
                "(key) DO UPDATE SET value = (vg_search_meta.value::bigint + 1)::text")


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresSearchStore(SearchStore):
    """The index in the PostgreSQL database at ``url``."""

    def __init__(self, url: str, *, connect_timeout_s: float = 15.0) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise VidgroundError("a PostgreSQL search index needs psycopg 3: pip install "
                                 "'vidground[postgres]'") from None
        self.warnings = []
        self._lock = threading.RLock()
        self._errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,
                                                         psycopg.InterfaceError)
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise SearchIndexError(f"the search index URL is not a valid PostgreSQL URL: {exc}"
                                   ) from None
        self._where = (f"PostgreSQL database {info.get('dbname', '?')} on "
                       f"{info.get('host', 'localhost')}:{info.get('port', 5432)}")
        try:
            self._conn = psycopg.connect(url, autocommit=True,
                                         connect_timeout=max(1, int(connect_timeout_s)))
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split()) or "no reason given"
            raise SearchIndexError(f"cannot connect to the search index ({self._where}): "
                                   f"{reason} (check the server and the URL in "
                                   "VIDGROUND_INDEX or VIDGROUND_JOB_STORE)") from None

        def create(cur: Any) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for step in SCHEMA:
                cur.execute(step)
            cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                        "'vg_search_videos' AND column_name = 'sources' AND table_schema = "
                        "current_schema()")
            if not cur.fetchone()[0]:
                cur.execute(MIGRATE_SOURCES)

        try:
            self._run(create, tx=True)
        except BaseException:
            self._conn.close()
            raise
        self._matrix = VectorMatrix()

    def describe(self) -> str:
        return self._where

    def _run(self, fn: Callable[[Any], T], *, tx: bool = False) -> T:
        try:
            with self._lock:
                if tx:
                    with self._conn.transaction(), self._conn.cursor() as cur:
                        return fn(cur)
                with self._conn.cursor() as cur:
                    return fn(cur)
        except self._errors as exc:
            raise SearchIndexError(f"the search index ({self._where}) is not reachable: "
                                   f"{type(exc).__name__}; retry shortly") from exc

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def work(cur: Any) -> list[tuple[Any, ...]]:
            cur.execute(sql, tuple(args))
            return list(cur.fetchall())

        return self._run(work)

    def _one(self, sql: str, args: Sequence[Any]) -> VideoRecord | None:
        rows = self._rows("SELECT path, identity, duration, facts, model, sources FROM "
                          f"vg_search_videos WHERE {sql}", args)
        if not rows:
            return None
        path, identity, duration, facts, model, sources = rows[0]
        return VideoRecord(path=path, identity=identity, duration=duration,
                           facts=facts if isinstance(facts, dict) else json.loads(facts),
                           model=model, sources=tuple(sources if isinstance(sources, list)
                                                      else json.loads(sources)))

    def video(self, path: str) -> VideoRecord | None:
        return self._one("path = %s", (path,))

    def by_identity(self, identity: str) -> VideoRecord | None:
        return self._one("identity = %s ORDER BY indexed_at DESC LIMIT 1", (identity,))

    def segments(self, path: str) -> list[Segment]:
        rows = self._rows("SELECT s.start_s, s.end_s, s.text, s.kind FROM vg_search_segments s "
                          "JOIN vg_search_videos v ON v.id = s.video_id WHERE v.path = %s "
                          "ORDER BY s.start_s, s.id", (path,))
        return [Segment(*row) for row in rows]

    def paths(self, within: str | None = None) -> list[str]:
        sql = "SELECT path FROM vg_search_videos"
        args: tuple[str, ...] = ()
        if within:
            sql, args = sql + " WHERE substr(path, 1, length(%s)) = %s", (within, within)
        return [r[0] for r in self._rows(sql + " ORDER BY path", args)]

    def counts(self) -> dict[str, int]:
        [(videos, segments, vectors)] = self._rows(
            "SELECT (SELECT count(*) FROM vg_search_videos), "
            "(SELECT count(*) FROM vg_search_segments), "
            "(SELECT count(*) FROM vg_search_vectors)", ())
        return {"videos": int(videos), "segments": int(segments), "vectors": int(vectors)}

    def _meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._rows("SELECT key, value FROM vg_search_meta",
                                                       ())}

    def vectors_model(self) -> str:
        return self._meta().get("embed_model", "")

    def nearest(self, vector: Sequence[float], top: int, within: str | None = None
                ) -> list[Hit]:
        meta = self._meta()
        dim = meta.get("embed_dim")
        if dim is None:
            return []
        # every write counts itself in ``generation``: the vectors read stay good until then
        key = (meta.get("generation"), meta.get("embed_model"), dim)
        allowed = None
        if within:
            allowed = [r[0] for r in self._rows(
                "SELECT s.id FROM vg_search_segments s JOIN vg_search_videos v ON "
                "v.id = s.video_id WHERE substr(v.path, 1, length(%s)) = %s", (within, within))]
        found = self._matrix.nearest(
            key, lambda: self._rows(
                "SELECT segment_id, embedding FROM vg_search_vectors ORDER BY segment_id", ()),
            int(dim), vector, top, allowed)
        if not found:
            return []
        rows = {r[0]: r[1:] for r in self._rows(
            "SELECT s.id, v.path, s.start_s, s.end_s, s.text, s.kind FROM vg_search_segments s "
            "JOIN vg_search_videos v ON v.id = s.video_id WHERE s.id = ANY(%s)",
            ([i for i, _ in found],))}
        return [Hit(video=rows[i][0], start=rows[i][1], end=rows[i][2], score=score,
                    text=rows[i][3], source=rows[i][4]) for i, score in found if i in rows]

    def find(self, found_terms: Sequence[str], top: int, within: str | None = None
             ) -> list[Hit]:
        terms = list(found_terms)
        likes = [_like(t) for t in terms]
        matched = " OR ".join("s.folded LIKE %s" for _ in terms)
        weight = " + ".join("(CASE WHEN strpos(s.folded, %s) > 0 THEN %s ELSE 0 END)"
                            for _ in terms)
        weight_args: list[Any] = [x for t in terms for x in (t, float(len(t)))]
        where, args = "", []
        if within:
            where, args = " AND substr(v.path, 1, length(%s)) = %s", [within, within]
        # shorter texts first among equal matches: the match is more of what they say
        sql = (f"SELECT v.path, s.start_s, s.end_s, ({weight})::float8 "
               "+ 1.0 / (10 + length(s.text)) AS score, s.text, s.kind "
               "FROM vg_search_segments s JOIN vg_search_videos v ON v.id = s.video_id "
               f"WHERE ({matched}){where} ORDER BY score DESC, s.id LIMIT %s")
        rows = self._rows(sql, [*weight_args, *likes, *args, top])
        return [Hit(video=r[0], start=r[1], end=r[2], score=float(r[3]), text=r[4],
                    source=r[5]) for r in rows]

    def put(self, record: VideoRecord, segments: Sequence[Segment]) -> None:
        self.put_many([(record, segments)])

    def put_many(self, items: Sequence[tuple[VideoRecord, Sequence[Segment]]]) -> None:
        vectors = self._embed([s for _, segments in items for s in segments])

        def work(cur: Any) -> None:
            self._adopt_model(cur)
            done = 0
            for record, segments in items:
                cur.execute("DELETE FROM vg_search_videos WHERE path = %s", (record.path,))
                cur.execute("INSERT INTO vg_search_videos (path, identity, duration, facts, "
                            "model, sources) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                            (record.path, record.identity, record.duration,
                             json.dumps(record.facts, ensure_ascii=False), record.model,
                             json.dumps(list(record.sources))))
                [video_id] = cur.fetchone()
                self._insert(cur, video_id, segments,
                             vectors[done:done + len(segments)] if vectors else None)
                done += len(segments)
            _count_write(cur)

        self._run(work, tx=True)

    def replace_kinds(self, record: VideoRecord, kinds: Sequence[str],
                      segments: Sequence[Segment]) -> None:
        vectors = self._embed(segments)

        def work(cur: Any) -> None:
            cur.execute("SELECT id FROM vg_search_videos WHERE path = %s FOR UPDATE",
                        (record.path,))
            row = cur.fetchone()
            if row is None:
                raise SearchIndexError(f"{record.path} is no longer in the index (another "
                                       "process removed it); run `vidground index` again.")
            self._adopt_model(cur)
            cur.execute("DELETE FROM vg_search_segments WHERE video_id = %s AND kind = ANY(%s)",
                        (row[0], list(kinds)))
            cur.execute("UPDATE vg_search_videos SET identity = %s, duration = %s, facts = %s, "
                        "model = %s, sources = %s, indexed_at = now() WHERE id = %s",
                        (record.identity, record.duration,
                         json.dumps(record.facts, ensure_ascii=False), record.model,
                         json.dumps(list(record.sources)), row[0]))
            self._insert(cur, row[0], segments, vectors)
            _count_write(cur)

        self._run(work, tx=True)

    def fill_vectors(self, path: str) -> int:
        if self.embedder is None:
            return 0
        same = self.vectors_model() == self.embedder.name
        rows = self._rows(
            "SELECT s.id, s.text FROM vg_search_segments s JOIN vg_search_videos v ON "
            "v.id = s.video_id LEFT JOIN vg_search_vectors x ON x.segment_id = s.id "
            "WHERE v.path = %s " + ("AND x.segment_id IS NULL " if same else "")
            + "ORDER BY s.id", (path,))
        if not rows:
            return 0
        vectors = self._embed([Segment(0, 0, text) for _, text in rows]) or []

        def work(cur: Any) -> None:
            self._adopt_model(cur)
            cur.executemany(  # a segment deleted meanwhile gets none
                "INSERT INTO vg_search_vectors (segment_id, embedding) SELECT %s, %s WHERE "
                "EXISTS (SELECT 1 FROM vg_search_segments WHERE id = %s) ON CONFLICT "
                "(segment_id) DO UPDATE SET embedding = excluded.embedding",
                [(i, to_blob(v), i) for (i, _), v in zip(rows, vectors, strict=True)])
            _count_write(cur)

        self._run(work, tx=True)
        return len(rows)

    def _embed(self, segments: Sequence[Segment]) -> list[Any] | None:
        if self.embedder is None or not segments:
            return None
        return list(self.embedder.embed([s.text for s in segments]))

    def _adopt_model(self, cur: Any) -> None:
        """In a write: make the embedder's model the index's; another model's vectors go."""
        if self.embedder is None:
            return
        want = {"embed_model": self.embedder.name, "embed_dim": str(self.embedder.dim)}
        cur.execute("SELECT key, value FROM vg_search_meta WHERE key IN ('embed_model', "
                    "'embed_dim')")
        if dict(cur.fetchall()) == want:
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK + 1,))
        cur.execute("SELECT key, value FROM vg_search_meta WHERE key IN ('embed_model', "
                    "'embed_dim')")
        if dict(cur.fetchall()) == want:  # another writer adopted it meanwhile
            return
        cur.execute("DELETE FROM vg_search_vectors")
        cur.executemany("INSERT INTO vg_search_meta (key, value) VALUES (%s, %s) ON CONFLICT "
                        "(key) DO UPDATE SET value = excluded.value", list(want.items()))

    @staticmethod
    def _insert(cur: Any, video_id: int, segments: Sequence[Segment],
                vectors: Sequence[Any] | None) -> None:
        rows = [(video_id, s.kind, s.start, s.end, s.text, s.text.lower()) for s in segments]
        sql = ("INSERT INTO vg_search_segments (video_id, kind, start_s, end_s, text, folded) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
        if not vectors:
            cur.executemany(sql, rows)
            return
        for row, vector in zip(rows, vectors, strict=True):
            cur.execute(sql + " RETURNING id", row)
            [segment_id] = cur.fetchone()
            cur.execute("INSERT INTO vg_search_vectors (segment_id, embedding) VALUES (%s, %s)",
                        (segment_id, to_blob(vector)))

    def remove(self, paths: Sequence[str]) -> int:
        def work(cur: Any) -> int:
            cur.execute("DELETE FROM vg_search_videos WHERE path = ANY(%s)", (list(paths),))
            removed = int(cur.rowcount)
            _count_write(cur)
            return removed

        return self._run(work, tx=True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
