"""Library search with embeddings (issue 27): a tiny random BERT made offline
(tests/support/tiny_embedder.py: its tokenizer reads "a crimson automobile halts" as "a red car
stops", so the two get one vector while sharing no three letters) gives every segment a vector
on a real SQLite file and a real PostgreSQL server; a query only the vectors can match ranks
its segment first, both engines rank alike, and an index with vectors still answers text
searches without the model."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video
from pg_server import PostgresServer
from tiny_embedder import make_tiny_embedder

from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.search.embeddings import EMBED_MODEL_ENV, Embedder
from vidground.search.engines import open_store
from vidground.search.index import index_paths
from vidground.search.query import search
from vidground.search.store import RRF_K, Hit, SearchStore, Segment, VideoRecord, fuse
from vidground.search.terms import terms

HIDDEN = 32
TARGET = ("/vglib/cars.mp4", 3.0, 4.0, "a red car stops")
LIBRARY = [
    (VideoRecord("/vglib/cars.mp4", "c"), [Segment(0.0, 2.0, "a blue kite flies"),
                                         Segment(3.0, 4.0, "a red car stops")]),
    (VideoRecord("/vglib/park.mp4", "p"), [Segment(1.0, 2.5, "the dog sleeps on the mat"),
                                         Segment(4.0, 6.0, "people walking in the park")]),
    (VideoRecord("/vglib/sea/boat.mp4", "b"), [Segment(0.5, 1.5, "a boat sails over the sea"),
                                             Segment(2.0, 3.0, "the sun rises over the hill"),
                                             Segment(5.0, 6.0, "a green car runs")]),
]
#: shares no trigram with any stored text; its tokens are those of "a red car stops"
ONLY_VECTORS = "a crimson automobile halts"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_embedder(tmp_path_factory.mktemp("embed") / "tiny-bert", hidden=HIDDEN)


@pytest.fixture(scope="module")
def embedder(model: Path) -> Embedder:
    return Embedder(model)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "search.sqlite3")
    return request.getfixturevalue("pg").new_database("vectors")


def stored_dims(store: SearchStore, where: str) -> list[int]:
    """The byte length / 4 of every stored vector, read from the tables themselves."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where) as conn:
            rows = conn.execute("SELECT octet_length(embedding) FROM vg_search_vectors"
                                ).fetchall()
    else:
        conn = sqlite3.connect(where)
        try:
            rows = conn.execute("SELECT length(embedding) FROM segment_vectors").fetchall()
        finally:
            conn.close()
    return [int(r[0]) // 4 for r in rows]


def key(hit: Hit) -> tuple[str, float, float, str]:
    return (hit.video, hit.start, hit.end, hit.text)


def test_vectors_are_stored_and_a_query_only_they_match_ranks_first(
        where: str, embedder: Embedder) -> None:
    with open_store(where, embedder=embedder) as store:
        store.put_many(LIBRARY)
        assert store.vectors_model() == embedder.name == "tiny-bert"
        counts = store.counts()
        assert counts["vectors"] == counts["segments"] == 7
        assert stored_dims(store, where) == [HIDDEN] * 7
        # the text index alone finds nothing for it ...
        assert store.find(terms(ONLY_VECTORS), 10) == []
        # ... the vectors do, and the fused ranking puts it first
        hits = search(store, ONLY_VECTORS, top=3)
        assert key(hits[0]) == TARGET and hits[0].source == "event"
        [(_, nearest)] = [(h, h.score) for h in store.nearest(
            embedder.embed([ONLY_VECTORS])[0], 1)]
        assert nearest == pytest.approx(1.0, abs=1e-5)  # the same tokens: the same vector
        # a query both lists agree on: its segment first, with both ranks' score
        both = search(store, "red car stops", top=3)
        assert key(both[0]) == TARGET and both[0].score == pytest.approx(2 / (RRF_K + 1))
        # --in confines the vector list too
        assert [h.video for h in search(store, ONLY_VECTORS, top=10, within="/vglib/sea")] == \
            ["/vglib/sea/boat.mp4"] * 3


def test_both_engines_rank_alike(pg: PostgresServer, tmp_path: Path,
                                 embedder: Embedder) -> None:
    """The vector ranking (and so the fused one where the text lists agree) is the same on
    SQLite and PostgreSQL; their text scores differ by design (BM25 / matched length)."""
    queries = (ONLY_VECTORS, "kite", "the dog on a mat", "boat sails", "sun over the hill")
    vectors = embedder.embed(list(queries))
    near, fused = [], []
    for where in (str(tmp_path / "s.sqlite3"), pg.new_database("alike")):
        with open_store(where, embedder=embedder) as store:
            store.put_many(LIBRARY)
            near.append([[(key(h), round(h.score, 5)) for h in store.nearest(v, 7)]
                         for v in vectors])
            fused.append([[key(h) for h in search(store, q, top=5)]
                          for q in (ONLY_VECTORS, "kite")])
    assert near[0] == near[1]
    assert all(len(ranking) == 7 for ranking in near[0])
    assert len({tuple(r) for r in near[0]}) > 1  # the queries do not all rank alike
    assert fused[0] == fused[1]


def test_without_a_model_an_index_with_vectors_answers_by_text(where: str,
                                                              embedder: Embedder) -> None:
    with open_store(where, embedder=embedder) as store:
        store.put_many(LIBRARY)
    with open_store(where, embedder=None) as store:
        assert store.vectors_model() == "tiny-bert"
        assert search(store, ONLY_VECTORS, top=5) == []
        first = search(store, "red car", top=5)[0]
        assert key(first) == TARGET
        # a video written without the model has no vectors until indexed with it again
        store.put(VideoRecord("/vglib/new.mp4", "n"), [Segment(0, 1, "a cat runs")])
        assert store.counts()["vectors"] == 7
    with open_store(where, embedder=embedder) as store:
        assert store.fill_vectors("/vglib/new.mp4") == 1
        assert store.fill_vectors("/vglib/new.mp4") == 0
        assert store.counts()["vectors"] == 8


def test_another_model_replaces_the_vectors(where: str, embedder: Embedder,
                                            tmp_path: Path) -> None:
    other = Embedder(make_tiny_embedder(tmp_path / "wider", hidden=48, seed=1))
    with open_store(where, embedder=embedder) as store:
        store.put_many(LIBRARY)
    with open_store(where, embedder=other) as store:
        assert search(store, ONLY_VECTORS, top=1) == []  # no vectors of this model: text alone
        store.put(VideoRecord("/vglib/new.mp4", "n"), [Segment(0, 1, "a cat runs")])
        assert store.vectors_model() == "wider"
        assert store.counts()["vectors"] == 1  # the old model's vectors went
        for record, _ in LIBRARY:
            store.fill_vectors(record.path)
        assert stored_dims(store, where) == [48] * 8
        assert key(search(store, ONLY_VECTORS, top=1)[0]) == TARGET


def test_fusion_adds_reciprocal_ranks() -> None:
    a, b, c = (Hit(f"/v/{n}.mp4", 0, 1, 1.0, n, "event") for n in "abc")
    fused = fuse([[a, b], [b, c]], top=3, k=60)
    assert [h.text for h in fused] == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61) and fused[2].score == pytest.approx(1 / 62)


def test_indexing_with_a_model_newly_set_adds_vectors_only(
        tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lib").mkdir()
    make_video(tmp_path / "lib" / "red.mp4", duration=3.0, fps=10, intervals=((1.0, 2.0),),
               color=(255, 0, 0))
    index = str(tmp_path / "search.sqlite3")
    with FakeOpenAIServer(events={"red square": (255, 0, 0)}) as server:
        grounder = Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                              openai_model=server.model, openai_max_retries=0))
        opts = LocateOptions(frame_sampling_rate=2.0)
        monkeypatch.delenv(EMBED_MODEL_ENV, raising=False)
        with open_store(index) as store:
            assert store.embedder is None
            first = index_paths([tmp_path / "lib"], store=store, grounder=grounder,
                                options=opts, sources="events")
            assert len(first.indexed) == 1 and store.counts()["vectors"] == 0
        calls = server.chat_count
        monkeypatch.setenv(EMBED_MODEL_ENV, str(model))
        with open_store(index) as store:  # the configured model
            assert store.embedder is not None and store.embedder.name == "tiny-bert"
            again = index_paths([tmp_path / "lib"], store=store, grounder=grounder,
                                options=opts, sources="events")
            assert again.skipped == [os.path.realpath(tmp_path / "lib" / "red.mp4")]
            assert server.chat_count == calls  # nothing described again
            counts = store.counts()
            assert counts["vectors"] == counts["segments"] >= 2
            assert search(store, "red square", top=1)[0].source == "event"
    monkeypatch.setenv(EMBED_MODEL_ENV, str(tmp_path / "no-such-model"))
    from vidground.errors import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError) as info:
        open_store(index)
    assert EMBED_MODEL_ENV in info.value.message


def test_vectors_written_by_another_connection_are_seen(where: str,
                                                        embedder: Embedder) -> None:
    """A long-lived reader (a server) keeps the vectors it read only until the index changes,
    whoever changes it."""
    with open_store(where, embedder=embedder) as reader, \
            open_store(where, embedder=embedder) as writer:
        writer.put_many(LIBRARY[:1])
        assert key(search(reader, ONLY_VECTORS, top=1)[0]) == TARGET  # read and kept
        writer.remove(["/vglib/cars.mp4"])
        assert search(reader, ONLY_VECTORS, top=1) == []
        writer.put(VideoRecord("/vglib/again.mp4", "a"), [Segment(7, 8, "a red car stops")])
        [hit] = search(reader, ONLY_VECTORS, top=1)
        assert (hit.video, hit.start) == ("/vglib/again.mp4", 7)
