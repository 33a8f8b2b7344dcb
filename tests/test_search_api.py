"""Library search over HTTP (issue 27): a real ``vidground serve`` process (and a ``vidground
worker``) against the fake model server, which lists the coloured squares it sees as events.

``POST /api/v1/index`` builds the index as a job (progress, report), ``GET /api/v1/search``
ranks the moments (paths relative to the media root; a video indexed from outside the media
root never shows; ``in`` confined like ``video_path``; limits), ``POST /api/v1/search/ground``
asks the model about each hit's neighbourhood as a job; an index that cannot be reached is a
clear 503; the worker fleet runs index jobs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env, wait_for
from worker_utils import WorkerProcess

RED, BLUE, YELLOW = (255, 0, 0), (0, 0, 255), (255, 255, 0)
EVENTS = {"red square": RED, "blue square": BLUE, "黄色方块": YELLOW}
#: relative path -> (colour, when the square shows); 10 fps, 3 s
VIDEOS = {"red.mp4": (RED, (1.0, 2.0)), "blue.mp4": (BLUE, (2.0, 3.0)),
          "sub/yellow.mp4": (YELLOW, (0.5, 1.5))}
FPS = 10
FRAME = 1.0 / FPS + 1e-3
TIMEOUT = 10


def make_library(root: Path) -> None:
    for rel, (color, when) in VIDEOS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(root / rel, duration=3.0, fps=FPS, intervals=(when,), color=color)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(events=EVENTS) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: FakeOpenAIServer
           ) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("search-api"), env=openai_env(model))
    make_library(srv.media_root)
    with srv:
        yield srv


def get(srv: ServerProcess, path: str, **params: Any) -> requests.Response:
    return requests.get(srv.url(path), params=params, timeout=TIMEOUT)


def post(srv: ServerProcess, path: str, body: Any) -> requests.Response:
    return requests.post(srv.url(path), json=body, timeout=TIMEOUT)


def run_job(srv: ServerProcess, path: str, body: Any, timeout_s: float = 120) -> dict[str, Any]:
    """Queue a job, poll it to its end, return it (with ``stages`` seen while it ran)."""
    r = post(srv, path, body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    stages: list[tuple[str | None, float]] = []

    def final() -> dict[str, Any] | None:
        job = get(srv, f"/api/v1/jobs/{job_id}").json()
        stages.append((job["progress"]["stage"], job["progress"]["fraction"]))
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(final, timeout_s, 0.1)
    job["stages"] = stages
    return job


def error_of(r: requests.Response) -> str:
    return str(r.json()["error"]["code"])


@pytest.fixture(scope="module")
def indexed(server: ServerProcess) -> dict[str, Any]:
    """The media root indexed through ``POST /api/v1/index`` (after checking that searching
    before is a clear 404)."""
    r = get(server, "/api/v1/search", q="red square")
    assert r.status_code == 404 and error_of(r) == "search_index_missing", r.text
    assert "POST /api/v1/index" in r.json()["error"]["message"]
    job = run_job(server, "/api/v1/index", {"paths": "all", "fps": 2})
    assert job["status"] == "succeeded", (job, server.log())
    return job


def test_index_job_reports_progress_and_what_it_did(server: ServerProcess,
                                                    indexed: dict[str, Any]) -> None:
    result = indexed["result"]
    assert sorted(result["indexed"]) == sorted(VIDEOS), result
    assert result["failed"] == [] and result["index"]["videos"] == 3
    assert indexed["request"]["kind"] == "index" and indexed["progress"]["fraction"] == 1.0
    assert str(server.media_root) not in str(indexed)  # clients never see the server's folders
    # a second run: every video unchanged, skipped without asking the model
    again = run_job(server, "/api/v1/index", {"paths": ["sub", "red.mp4"]})
    assert again["status"] == "succeeded"
    assert sorted(again["result"]["skipped"]) == ["red.mp4", "sub/yellow.mp4"]
    assert again["result"]["indexed"] == []
    # what is stored: the defaults (events, and on-screen text: OCR is installed here), or
    # the sources asked for
    assert indexed["request"]["sources"] == ["event", "text"]
    asked = run_job(server, "/api/v1/index", {"paths": ["red.mp4"], "sources": ["events"],
                                               "shots": True, "force": True})
    assert asked["status"] == "succeeded", asked
    assert asked["request"]["sources"] == ["event", "shot"]


def test_search_finds_the_right_video_and_moment_first(server: ServerProcess,
                                                       indexed: dict[str, Any]) -> None:
    for rel, query in (("blue.mp4", "blue square"), ("red.mp4", "When is the red square visible?"),
                       ("sub/yellow.mp4", "黄色方块")):
        r = get(server, "/api/v1/search", q=query, top=3)
        assert r.status_code == 200, r.text
        body = r.json()
        first = body["hits"][0]
        start, end = VIDEOS[rel][1]
        assert body["query"] == query
        assert first["video"] == rel and first["name"] == Path(rel).name, body
        assert first["start"] == pytest.approx(start, abs=FRAME)
        assert first["end"] == pytest.approx(end, abs=FRAME)
        assert first["why"]["source"] == "event" and first["score"] > 0
        assert first["start_text"].startswith("00:00:0")
        assert len(body["hits"]) <= 3
    within = get(server, "/api/v1/search", q="visible", top=10, **{"in": "sub"}).json()["hits"]
    assert within and {h["video"] for h in within} == {"sub/yellow.mp4"}


def test_results_only_from_inside_the_media_root(server: ServerProcess, indexed: dict[str, Any],
                                                 model: FakeOpenAIServer,
                                                 tmp_path: Path) -> None:
    """A video indexed from outside the media root (``vidground index`` on the server, into
    the same index file) is never returned; ``in`` is confined like ``video_path``."""
    from vidground.config import Settings
    from vidground.grounding import Grounder
    from vidground.search.engines import open_store
    from vidground.search.index import index_paths

    outside = tmp_path / "outside" / "red_outside.mp4"
    outside.parent.mkdir()
    make_video(outside, duration=3.0, fps=FPS, intervals=((1.0, 2.0),), color=RED)
    grounder = Grounder(settings=Settings(backend="openai", openai_base_url=model.base_url,
                                          openai_model=model.model, openai_max_retries=0))
    with open_store(str(server.data_dir / "search.sqlite3")) as store:
        report = index_paths([outside], store=store, grounder=grounder,
                             options={"frame_sampling_rate": 2.0})
        assert report.indexed == [os.path.realpath(outside)]
    hits = get(server, "/api/v1/search", q="red square", top=1000).json()["hits"]
    assert hits and "red_outside.mp4" not in {h["name"] for h in hits}
    assert all(not h["video"].startswith(("/", "..")) for h in hits)
    for where, status, code in (("../", 403, "path_not_allowed"),
                                (str(outside.parent), 403, "path_not_allowed"),
                                ("http://example.com/x", 400, "invalid_path"),
                                ("no/such/folder", 404, "video_not_found")):
        r = get(server, "/api/v1/search", q="red square", **{"in": where})
        assert (r.status_code, error_of(r)) == (status, code), (where, r.text)
        assert str(server.media_root) not in r.text


def test_search_limits(server: ServerProcess, indexed: dict[str, Any]) -> None:
    r = get(server, "/api/v1/search", q="x" * 501)
    assert (r.status_code, error_of(r)) == (422, "invalid_query")
    assert "500" in r.json()["error"]["message"]
    for bad in ("", "   ", "the when does"):
        r = get(server, "/api/v1/search", q=bad)
        assert (r.status_code, error_of(r)) == (422, "invalid_query"), bad
    for top in (0, 1001, "x"):
        r = get(server, "/api/v1/search", q="red", top=top)
        assert r.status_code == 422, (top, r.text)
    assert get(server, "/api/v1/search").status_code == 422  # no q
    r = get(server, "/api/v1/search", q="red", ground="true")  # the model: a job, not a GET
    assert (r.status_code, error_of(r)) == (422, "invalid_options")
    assert "POST /api/v1/search/ground" in r.json()["error"]["message"]


def test_index_requests_are_checked_before_they_are_queued(server: ServerProcess) -> None:
    for body, status, code in (({"paths": ["../etc"]}, 403, "path_not_allowed"),
                               ({"paths": ["/etc"]}, 403, "path_not_allowed"),
                               ({"paths": ["gone.mp4"]}, 404, "video_not_found"),
                               ({"paths": []}, 422, "invalid_options"),
                               ({"paths": "everything"}, 422, "invalid_request"),
                               ({"paths": "all", "fps": 0}, 422, "invalid_request"),
                               ({"paths": "all", "extra": 1}, 422, "invalid_request"),
                               ({"paths": "all", "sources": ["colours"]}, 422,
                                "invalid_options")):
        r = post(server, "/api/v1/index", body)
        assert (r.status_code, error_of(r)) == (status, code), (body, r.text)


def test_grounded_search_job_keeps_what_the_model_confirms(server: ServerProcess,
                                                           indexed: dict[str, Any]) -> None:
    hits = get(server, "/api/v1/search", q="red square", top=10).json()["hits"]
    assert {"red.mp4", "blue.mp4"} <= {h["video"] for h in hits}  # "square" matches both
    job = run_job(server, "/api/v1/search/ground", {"query": "red square", "top": 10})
    assert job["status"] == "succeeded", (job, server.log())
    result = job["result"]
    assert [h["video"] for h in result["hits"]] == ["red.mp4"], result
    [hit] = result["hits"]
    assert hit["confirmed"] is True
    # frame-exact: the times are frames of the 10 fps video, within a frame of the truth
    for value, truth in ((hit["start"], 1.0), (hit["end"], 2.0)):
        assert value == pytest.approx(truth, abs=FRAME)
        assert value * FPS == pytest.approx(round(value * FPS), abs=1e-3)
    assert result["searched"] == len(hits)
    assert any(stage == "ground" for stage, _ in job["stages"]) or \
        job["progress"]["stage"] == "ground"
    r = post(server, "/api/v1/search/ground", {"query": "red square", "top": 51})
    assert r.status_code == 422
    r = post(server, "/api/v1/search/ground", {"query": "red", "in": "../"})
    assert (r.status_code, error_of(r)) == (403, "path_not_allowed")


def test_an_index_that_cannot_be_reached_is_a_clear_503(tmp_path: Path,
                                                        model: FakeOpenAIServer) -> None:
    dead = "postgresql://vg:secret@127.0.0.1:9/nothing"  # port 9 (discard): nothing listens
    with ServerProcess(tmp_path, env=openai_env(model, VIDGROUND_INDEX=dead)) as srv:
        r = get(srv, "/api/v1/search", q="red square")
        assert (r.status_code, error_of(r)) == (503, "search_index_unavailable"), r.text
        assert "secret" not in r.text


def test_the_worker_fleet_runs_index_jobs(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """A front end that runs no jobs queues the index job; a ``vidground worker`` sharing its
    job store and folders runs it; the front end then searches what the worker indexed."""
    env = openai_env(model, VIDGROUND_RUN_JOBS="false")
    with ServerProcess(tmp_path / "front", env=env) as front:
        make_library(front.media_root)
        worker_env = openai_env(model)
        with WorkerProcess(tmp_path / "worker", env=worker_env, media_root=front.media_root,
                           data_dir=front.data_dir):
            job = run_job(front, "/api/v1/index", {"paths": ["blue.mp4"], "fps": 2})
        assert job["status"] == "succeeded", job
        assert job["result"]["indexed"] == ["blue.mp4"]
        [hit] = get(front, "/api/v1/search", q="blue square", top=5).json()["hits"][:1]
        assert hit["video"] == "blue.mp4"


def test_an_index_job_shows_the_time_left_and_can_be_cancelled(
        server: ServerProcess, indexed: dict[str, Any], model: FakeOpenAIServer) -> None:
    model.configure(delay_s=0.1)  # a few seconds per video: time to read its progress
    try:
        r = post(server, "/api/v1/index", {"paths": "all", "force": True, "fps": 2})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        def after_first_video() -> dict[str, Any] | None:
            job = get(server, f"/api/v1/jobs/{job_id}").json()
            message = job["progress"]["message"] or ""
            ended = job["status"] not in ("queued", "running")
            return job if "left" in message or ended else None

        seen = wait_for(after_first_video, 120, 0.05)
        assert seen["status"] == "running", seen
        assert seen["progress"]["stage"] == "index" and 0 < seen["progress"]["fraction"] < 1
        assert "of 3" in seen["progress"]["message"] and "left" in seen["progress"]["message"]
        assert requests.delete(server.url(f"/api/v1/jobs/{job_id}"), timeout=TIMEOUT).ok

        def ended() -> dict[str, Any] | None:
            job = get(server, f"/api/v1/jobs/{job_id}").json()
            return job if job["status"] not in ("queued", "running") else None

        final = wait_for(ended, 120, 0.1)
        assert final["status"] == "cancelled", final
    finally:
        model.configure(delay_s=0.0)
    # what was committed stays searchable: every video is still in the index
    hits = get(server, "/api/v1/search", q="visible", top=20).json()["hits"]
    assert {h["video"] for h in hits} == set(VIDEOS)


def test_searches_share_one_open_index_and_see_a_replaced_one(tmp_path: Path) -> None:
    """The server keeps its index open between searches (opening checks the file), and opens
    it again when the file was replaced (a damaged one moved aside and rebuilt) or removed."""
    from vidground.config import Settings
    from vidground.search.engines import open_store
    from vidground.search.store import Segment, VideoRecord
    from vidground.server.search_service import Library, SearchIndexMissingError

    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    video = str(media.resolve() / "a.mp4")
    index = data / "search.sqlite3"

    def write(text: str) -> None:
        with open_store(str(index)) as store:
            store.put(VideoRecord(video, "id-" + text, 10.0), [Segment(1.0, 2.0, text)])

    library = Library(Settings(media_root=media, data_dir=data), None,  # type: ignore[arg-type]
                      media.resolve(), lambda text: text)
    with pytest.raises(SearchIndexMissingError):
        library.search("zebra crossing")
    write("a zebra crossing")
    [first] = library.search("zebra crossing")
    assert library.search("zebra") and library._reader is not None
    reader = library._reader
    write("a zebra crossing at night")  # same file: the open index sees the new rows
    assert library.search("night")[0].text == "a zebra crossing at night"
    assert library._reader is reader
    for suffix in ("", "-wal", "-shm"):  # replaced: moved aside, a new one built
        if Path(f"{index}{suffix}").exists():
            os.replace(f"{index}{suffix}", f"{index}.old{suffix}")
    write("a yellow taxi")
    assert [h.text for h in library.search("taxi")] == ["a yellow taxi"]
    assert library.search("zebra") == [] and library._reader is not reader
    index.unlink()
    with pytest.raises(SearchIndexMissingError):
        library.search("taxi")
    library.close()
    assert first.video == video


def test_the_same_over_a_postgresql_index(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """``VIDGROUND_INDEX`` naming a PostgreSQL database: the index job writes there, searches
    read it (through the one connection the server keeps)."""
    from pg_server import PostgresServer

    with PostgresServer() as pg:
        url = pg.new_database("search_api")
        with ServerProcess(tmp_path, env=openai_env(model, VIDGROUND_INDEX=url)) as srv:
            make_library(srv.media_root)
            job = run_job(srv, "/api/v1/index", {"paths": ["red.mp4", "sub"], "fps": 2})
            assert job["status"] == "succeeded", (job, srv.log())
            assert sorted(job["result"]["indexed"]) == ["red.mp4", "sub/yellow.mp4"]
            assert not (srv.data_dir / "search.sqlite3").exists()
            for query, rel in (("red square", "red.mp4"), ("黄色方块", "sub/yellow.mp4")):
                hits = get(srv, "/api/v1/search", q=query, top=3).json()["hits"]
                assert hits and hits[0]["video"] == rel, hits
                assert hits[0]["start"] == pytest.approx(VIDEOS[rel][1][0], abs=FRAME)
