"""Library search (issue 27): index a folder of three tiny generated videos through the fake
model server (it lists the coloured squares it sees as events), then search it — on a real
SQLite file and on a real PostgreSQL server. Incremental re-index, dropped files, Chinese, the
``--in`` confinement, query limits, ``--ground``, ``kill -9`` mid-index, a damaged file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video
from pg_server import PostgresServer
from typer.testing import CliRunner

from vidground.config import Settings
from vidground.errors import OptionsError, QueryError, VideoError
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.search.cli import search_app
from vidground.search.engines import index_location, open_store
from vidground.search.index import index_paths
from vidground.search.query import ground_hits, search
from vidground.search.sqlite import SQLiteSearchStore
from vidground.search.store import SearchStore, Segment, VideoRecord
from vidground.search.terms import MAX_QUERY_CHARS

RED, BLUE, YELLOW = (255, 0, 0), (0, 0, 255), (255, 255, 0)
EVENTS = {"red square": RED, "blue square": BLUE, "黄色方块": YELLOW}
#: name -> (relative path, colour, when the square shows)
VIDEOS = {"red": ("red.mp4", RED, (1.0, 2.0)), "blue": ("blue.mp4", BLUE, (2.0, 3.0)),
          "yellow": ("sub/yellow.mp4", YELLOW, (0.5, 1.5))}
OPTIONS = LocateOptions(frame_sampling_rate=2.0)
FRAME = 0.101  # the videos are 10 fps: refined times are within one frame of the truth


@pytest.fixture(scope="module")
def events_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events=EVENTS) as server:
        yield server


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    for rel, color, when in VIDEOS.values():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(folder / rel, duration=3.0, fps=10, intervals=(when,), color=color)
    return folder


@pytest.fixture()
def library(made: Path, tmp_path: Path) -> Path:
    """A fresh copy of the three videos (same content identity: copy2 keeps the times)."""
    return Path(shutil.copytree(made, tmp_path / "library", copy_function=shutil.copy2))


def grounder_for(server: FakeOpenAIServer) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                      openai_model=server.model, openai_max_retries=0))


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh index location: a SQLite path or a PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "index" / "search.sqlite3")
    return request.getfixturevalue("pg").new_database("search")


@pytest.fixture()
def store(where: str) -> Iterator[SearchStore]:
    with open_store(where) as opened:
        yield opened


def path_of(library: Path, name: str) -> str:
    return os.path.realpath(library / VIDEOS[name][0])


def build(store: SearchStore, library: Path, server: FakeOpenAIServer, **kw: object):
    return index_paths([library], store=store, grounder=grounder_for(server), options=OPTIONS,
                       **kw)  # type: ignore[arg-type]


def test_index_then_search_finds_the_right_video_and_moment_first(
        store: SearchStore, library: Path, events_server: FakeOpenAIServer) -> None:
    seen: list[tuple[int, int, str]] = []
    report = build(store, library, events_server,
                   progress=lambda p: seen.append((p.done, p.total, p.status)))
    assert sorted(report.indexed) == sorted(path_of(library, n) for n in VIDEOS)
    assert not report.failed and seen[-1][:2] == (3, 3)
    assert store.counts()["videos"] == 3
    for name, query in (("blue", "when is the blue square visible?"), ("red", "Red squares")):
        hits = search(store, query, top=5)
        first = hits[0]
        start, end = VIDEOS[name][2]
        assert first.video == path_of(library, name), hits
        assert first.start == pytest.approx(start, abs=FRAME)
        assert first.end == pytest.approx(end, abs=FRAME)
        assert first.source == "event" and name in first.text and first.score > 0
        assert first.to_dict()["why"] == {"text": first.text, "source": "event"}
        assert all(h.score <= first.score for h in hits)
    # the video's facts are searchable too (file name, codec, size)
    [facts] = search(store, "yellow.mp4 h264", top=1)
    assert facts.video == path_of(library, "yellow") and facts.source == "facts"


def test_reindex_skips_unchanged_reuses_renamed_and_drops_removed(
        store: SearchStore, library: Path, events_server: FakeOpenAIServer) -> None:
    build(store, library, events_server)
    calls = events_server.chat_count
    again = build(store, library, events_server)
    assert len(again.skipped) == 3 and not again.indexed
    assert events_server.chat_count == calls  # nothing was asked of the model
    (library / "blue.mp4").unlink()
    os.rename(library / "red.mp4", library / "renamed.mp4")
    third = build(store, library, events_server)
    assert sorted(third.removed) == sorted([str(library.resolve() / "blue.mp4"),
                                            str(library.resolve() / "red.mp4")])
    assert third.reused == [str(library.resolve() / "renamed.mp4")]
    assert events_server.chat_count == calls  # the renamed file kept its segments
    assert sorted(store.paths()) == sorted([str(library.resolve() / "renamed.mp4"),
                                            path_of(library, "yellow")])
    assert all(h.video != str(library.resolve() / "blue.mp4")
               for h in search(store, "blue square", top=10))
    [hit] = search(store, "renamed.mp4", top=1)
    assert hit.source == "facts"
    # an edited file (new content, same name) is described again
    make_video(library / "renamed.mp4", duration=3.0, fps=10, intervals=((0.0, 1.0),),
               color=BLUE)
    fourth = build(store, library, events_server)
    assert fourth.indexed == [str(library.resolve() / "renamed.mp4")]
    first = search(store, "blue square", top=1)[0]
    assert first.video.endswith("renamed.mp4")
    assert (first.start, first.end) == (pytest.approx(0.0, abs=FRAME),
                                        pytest.approx(1.0, abs=FRAME))


def test_chinese_queries(store: SearchStore, library: Path,
                         events_server: FakeOpenAIServer) -> None:
    build(store, library, events_server)
    for query in ("黄色方块", "黄色方块什么时候出现", "黄色"):  # the last: shorter than a trigram
        first = search(store, query, top=3)[0]
        assert first.video == path_of(library, "yellow"), query
        assert (first.start, first.end) == (pytest.approx(0.5, abs=FRAME),
                                            pytest.approx(1.5, abs=FRAME))
    assert search(store, "紫色圆圈", top=3) == []


def test_in_confines_results_to_a_folder(store: SearchStore) -> None:
    store.put_many([(VideoRecord("/m/lib/a.mp4", "a"), [Segment(1, 2, "a cat jumps")]),
                    (VideoRecord("/m/lib2/b.mp4", "b"), [Segment(3, 4, "a cat sleeps")]),
                    (VideoRecord("/m/lib/sub/c.mp4", "c"), [Segment(5, 6, "a cat eats")])])
    assert len(search(store, "cat", top=10)) == 3
    assert sorted(h.video for h in search(store, "cat", top=10, within="/m/lib")) == [
        "/m/lib/a.mp4", "/m/lib/sub/c.mp4"]  # not /m/lib2: a folder is not a string prefix
    assert [h.video for h in search(store, "cat", top=10, within="/m/lib/sub/")] == [
        "/m/lib/sub/c.mp4"]
    assert search(store, "cat", top=10, within="/elsewhere") == []
    # a term with LIKE wildcards matches only itself (queries split on them; stores escape)
    assert store.find(["%"], 10) == [] and store.find(["c_t"], 10) == []
    assert sorted(h.text for h in store.find(["ca"], 10)) == ["a cat eats", "a cat jumps",
                                                              "a cat sleeps"]


def test_query_limits(store: SearchStore) -> None:
    for bad in ("", "   ", "x" * (MAX_QUERY_CHARS + 1), "when is the", "a\x00b"):
        with pytest.raises(QueryError):
            search(store, bad)
    for top in (0, -1, 10_001):
        with pytest.raises(OptionsError):
            search(store, "cat", top=top)


def test_ground_keeps_only_what_the_model_confirms(library: Path, tmp_path: Path,
                                                   events_server: FakeOpenAIServer) -> None:
    with open_store(str(tmp_path / "i.sqlite3")) as store:
        build(store, library, events_server)
        hits = search(store, "red square", top=10)
    assert {h.video for h in hits} >= {path_of(library, "red"), path_of(library, "blue")}
    confirmed = ground_hits(grounder_for(events_server), hits, "red square")
    assert [h.video for h in confirmed] == [path_of(library, "red")]
    [hit] = confirmed
    assert hit.confirmed is True and hit.to_dict()["confirmed"] is True
    assert (hit.start, hit.end) == (pytest.approx(1.0, abs=FRAME), pytest.approx(2.0, abs=FRAME))


def env_for(server: FakeOpenAIServer, index: str) -> dict[str, str]:
    return {"VIDGROUND_BACKEND": "openai", "VIDGROUND_OPENAI_BASE_URL": server.base_url,
            "VIDGROUND_OPENAI_MODEL": server.model, "VIDGROUND_OPENAI_MAX_RETRIES": "0",
            "VIDGROUND_INDEX": index}


def test_commands_index_and_search(library: Path, tmp_path: Path,
                                   events_server: FakeOpenAIServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env_for(events_server, str(tmp_path / "i.sqlite3")).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    out = runner.invoke(search_app, ["index", str(library), "--fps", "2", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout[out.stdout.index("{"):])
    assert len(body["indexed"]) == 3 and body["index"]["videos"] == 3
    out = runner.invoke(search_app, ["search", "blue square", "--top", "2", "--json"])
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["video"] == path_of(library, "blue") and hits[0]["why"]["source"] == "event"
    out = runner.invoke(search_app, ["search", "square", "--in", str(library / "sub"),
                                     "--json"])
    assert json.loads(out.stdout)["hits"] == []
    out = runner.invoke(search_app, ["search", "red square", "--ground", "--json"])
    grounded = json.loads(out.stdout)["hits"]
    assert [h["video"] for h in grounded] == [path_of(library, "red")], out.output
    out = runner.invoke(search_app, ["search", "x" * 600, "--json"])
    assert out.exit_code == 2 and json.loads(out.stdout)["error"]["code"] == "invalid_query"
    out = runner.invoke(search_app, ["index", str(tmp_path / "nothing-here"), "--json"])
    assert out.exit_code == 2 and "does not exist" in json.loads(out.stdout)["error"]["message"]


def test_the_index_location_follows_the_settings(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDGROUND_INDEX", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert index_location(settings) == str(tmp_path / "search.sqlite3")
    pg_url = "postgresql://u@db:5432/x"
    assert index_location(Settings(data_dir=tmp_path, job_store=pg_url)) == pg_url
    assert index_location(Settings(data_dir=tmp_path, job_store=str(tmp_path / "j.db"))) == \
        str(tmp_path / "search.sqlite3")
    monkeypatch.setenv("VIDGROUND_INDEX", "/tmp/elsewhere.sqlite3")
    assert index_location(Settings(data_dir=tmp_path, job_store=pg_url)) == \
        "/tmp/elsewhere.sqlite3"


# -- crashes and damage (SQLite) -----------------------------------------------------------

def _count(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # its tables are not made yet
        return 0


def _wait(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert proc.poll() is None, f"the indexer exited early ({proc.returncode})"
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_kill_9_mid_index_then_resume(library: Path, tmp_path: Path) -> None:
    index = tmp_path / "search.sqlite3"
    with FakeOpenAIServer(events=EVENTS, delay_s=0.3) as slow:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from vidground.search.cli import search_app; search_app()",
             "index", str(library), "--fps", "2"],
            env={**os.environ, **env_for(slow, str(index))}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:  # killed while the second video is being described
            _wait(lambda: _count(index, "SELECT count(*) FROM videos") >= 1, proc,
                  "the first video was never committed")
            time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        with SQLiteSearchStore(index) as store:
            assert store.warnings == []  # not damaged
            done = store.paths()
            assert 1 <= len(done) < 3
            assert all(any(s.kind == "event" for s in store.segments(p)) for p in done)
            report = index_paths([library], store=store, grounder=grounder_for(slow),
                                 options=OPTIONS)
            assert sorted(report.skipped) == sorted(done)
            assert len(report.indexed) == 3 - len(done) and store.counts()["videos"] == 3


WRITER = """
import sys
from vidground.search.sqlite import SQLiteSearchStore
from vidground.search.store import Segment, VideoRecord
store = SQLiteSearchStore(sys.argv[1])
n = 0
while True:
    batch = []
    for _ in range(5):
        n += 1
        text = f"video {n} segment {{}} 一个人打开门"
        batch.append((VideoRecord(f"/v/{n}.mp4", str(n)),
                      [Segment(i, i + 1, text.format(i)) for i in range(200)]))
    store.put_many(batch)
    print(n, flush=True)
"""


def test_kill_9_mid_write_leaves_every_video_whole(tmp_path: Path) -> None:
    index = tmp_path / "search.sqlite3"
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(index)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None and proc.stdout.readline()  # writing has begun
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        with SQLiteSearchStore(index) as store:
            assert store.warnings == []
            counts = store.counts()
            assert counts["videos"] > 0 and counts["segments"] == 200 * counts["videos"]
            hits = search(store, "打开门", top=1000)
            assert len(hits) == 1000 and all(len(store.segments(h.video)) == 200
                                             for h in hits[:5])
        index.unlink()
        for extra in ("-wal", "-shm"):
            Path(str(index) + extra).unlink(missing_ok=True)


def _stored(index: Path) -> None:
    with SQLiteSearchStore(index) as store:
        store.put_many([(VideoRecord(f"/v/{n}.mp4", str(n)),
                         [Segment(i, i + 1, f"video {n} moment {i} a red square")
                          for i in range(100)]) for n in range(20)])


def _damage_header(index: Path) -> None:
    data = bytearray(index.read_bytes())
    data[:16] = b"not a database!!"
    index.write_bytes(bytes(data))


def _damage_pages(index: Path) -> None:
    data = bytearray(index.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for n in range(2, len(data) // page, 3):  # every third page after the first
        data[n * page:n * page + 64] = b"\xa5" * 64
    index.write_bytes(bytes(data))


def _damage_fts(index: Path) -> None:
    conn = sqlite3.connect(index)
    conn.execute("DROP TRIGGER segments_ad")  # rows deleted behind the full-text index's back
    conn.execute("DELETE FROM segments WHERE id % 2 = 0")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", [_damage_header, _damage_pages, _damage_fts])
def test_a_damaged_index_is_moved_aside_and_rebuilt(tmp_path: Path,
                                                    damage: Callable[[Path], None]) -> None:
    index = tmp_path / "search.sqlite3"
    _stored(index)
    conn = sqlite3.connect(index)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    conn.close()
    damage(index)
    if damage is _damage_fts:  # only FTS5's own check (the full one, before writing) sees it
        with SQLiteSearchStore(index, check="quick") as store:
            assert store.warnings == []
    # a one-off search's quick check sees the others; the full check sees all three
    with SQLiteSearchStore(index, check="full" if damage is _damage_fts else "quick") as store:
        assert len(store.warnings) == 1 and "damaged" in store.warnings[0]
        assert store.counts() == {"videos": 0, "segments": 0, "vectors": 0}  # none half-written
        store.put(VideoRecord("/v/new.mp4", "n"), [Segment(0, 1, "a blue square")])
        assert [h.video for h in search(store, "blue square")] == ["/v/new.mp4"]
    aside = [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert aside and all(name.startswith("search.sqlite3.damaged-") for name in aside)
    with SQLiteSearchStore(index) as store:  # the new file is sound
        assert store.warnings == [] and store.counts()["videos"] == 1


def test_an_unreachable_postgres_index_is_an_actionable_error() -> None:
    from server_utils import free_port

    from vidground.search.store import SearchIndexError
    from vidground.server.statuses import status_for

    with pytest.raises(SearchIndexError) as info:
        open_store(f"postgresql://u@127.0.0.1:{free_port()}/x")
    assert "VIDGROUND_INDEX" in info.value.message and status_for(info.value) == 503



def test_a_locked_index_is_an_actionable_error(tmp_path: Path) -> None:
    from vidground.search.store import SearchIndexError
    from vidground.server.statuses import status_for

    index = tmp_path / "search.sqlite3"
    with SQLiteSearchStore(index, busy_timeout_ms=200) as store:
        other = sqlite3.connect(index, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        try:
            with pytest.raises(SearchIndexError) as info:
                store.put(VideoRecord("/v/a.mp4", "a"), [Segment(0, 1, "a cat")])
            assert "retry" in info.value.message and status_for(info.value) == 503
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.put(VideoRecord("/v/a.mp4", "a"), [Segment(0, 1, "a cat")])  # free again
        assert store.counts() == {"videos": 1, "segments": 1, "vectors": 0}


def test_a_busy_index_is_not_taken_for_a_damaged_one(tmp_path: Path) -> None:
    index = tmp_path / "search.sqlite3"
    _stored(index)
    other = sqlite3.connect(index, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing while this one opens
    try:
        with SQLiteSearchStore(index, busy_timeout_ms=200) as store:
            assert store.warnings == [] and store.counts()["videos"] == 20
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not [p for p in tmp_path.iterdir() if ".damaged-" in p.name]


def test_a_file_that_is_not_a_video_is_reported_and_the_run_goes_on(
        library: Path, tmp_path: Path, events_server: FakeOpenAIServer) -> None:
    (library / "notes.mp4").write_text("not a video")
    with open_store(str(tmp_path / "i.sqlite3")) as store:
        report = build(store, library, events_server)
        assert [p for p, _ in report.failed] == [str(library.resolve() / "notes.mp4")]
        assert len(report.indexed) == 3 and store.counts()["videos"] == 3
        with pytest.raises(VideoError):  # a server's media root: nothing outside it
            index_paths([library], store=store, grounder=grounder_for(events_server),
                        root=tmp_path / "elsewhere")


def test_a_very_common_term_does_not_drown_a_rare_one(tmp_path: Path) -> None:
    with SQLiteSearchStore(tmp_path / "i.sqlite3") as store:
        store.put_many([(VideoRecord(f"/v/{n}.mp4", str(n)),
                         [Segment(0, 1, f"a man walks {n}")]) for n in range(20)]
                       + [(VideoRecord("/v/kite.mp4", "k"), [Segment(5, 6, "a kite flies")])])
        assert store._selective(["man", "kite"]) == ["kite"]  # "man": in 20 of 21 segments
        assert store._selective(["man"]) == ["man"]
        assert [h.video for h in search(store, "man kite", top=1)] == ["/v/kite.mp4"]


def test_common_terms_answer_when_the_rare_ones_match_nothing(tmp_path: Path) -> None:
    # "red" and "square" are in every segment, "seen" in none: dropping the common terms
    # left a query of "seen" alone, which found nothing (the search API's "when is the red
    # square seen?" on a small library)
    with SQLiteSearchStore(tmp_path / "i.sqlite3") as store:
        store.put_many([(VideoRecord(f"/v/{n}.mp4", str(n)),
                         [Segment(n, n + 1, f"a red square moves {n}")]) for n in range(5)])
        assert store._selective(["red", "square", "seen"]) == ["seen"]
        hits = search(store, "when is the red square seen?", top=3)
        assert len(hits) == 3 and all("red square" in h.text for h in hits)
