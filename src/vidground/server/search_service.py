"""Library search for the server (issue 27): what ``GET /api/v1/search``, the page's Search tab
and the library jobs (``POST /api/v1/index``, ``POST /api/v1/search/ground``) share.

:class:`Library` confines every path to the media root (``in`` and the folders to index, like
``video_path``; hits of videos outside it are never returned), names videos by their path
relative to the media root (clients never learn where the server keeps its files), and runs the
two job kinds on the job queue, so a server or any worker of the fleet builds the index or
grounds the hits (:meth:`Library.run`, called by :meth:`Service.infer
<vidground.server.service.Service.infer>` for a request whose ``kind`` it owns).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, OptionsError, VideoNotFoundError
from ..options import LocateOptions, check_query
from ..progress import ProgressEvent
from ..timecode import format_time
from .errors import InvalidPathError, PathNotAllowedError
from .storage import MAX_PATH_CHARS, URL_RE

if TYPE_CHECKING:
    from ..config import Settings
    from ..grounding import Grounder
    from ..search.store import Hit, SearchStore

log = logging.getLogger("vidground.server")

#: The ``kind`` of a stored job request that :class:`Library` runs (other jobs are questions).
INDEX_JOB, GROUND_JOB = "index", "search_ground"
JOB_KINDS = (INDEX_JOB, GROUND_JOB)
#: The most paths one index request names (a folder counts once, however many videos it has).
MAX_INDEX_PATHS = 1000
#: The most hits one grounded search asks the model about (each is a few model calls).
MAX_GROUND_TOP = 50


class SearchIndexMissingError(NotFoundError):
    """Nothing has been indexed yet (the server's SQLite index file does not exist)."""

    code = "search_index_missing"


def media_item(root: Path, given: str, what: str = "in") -> Path:
    """The file or folder ``given`` names inside the media ``root`` (resolved, symbolic links
    followed): the same gate as ``video_path`` (no URL, NUL byte or ``..``; nothing that
    resolves outside the root), but a folder is accepted too."""
    if not isinstance(given, str) or not given.strip():
        raise InvalidPathError(f"{what} is empty; give a path relative to the media root")
    if len(given) > MAX_PATH_CHARS:
        raise InvalidPathError(f"{what} is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in given:
        raise InvalidPathError(f"{what} contains a NUL byte")
    if URL_RE.match(given.strip()):
        raise InvalidPathError(f"{what} must be a path relative to the media root, not a URL")
    if ".." in PurePosixPath(given.replace("\\", "/")).parts:
        raise PathNotAllowedError(f"{what} may not contain '..'; it must stay inside the "
                                  "media root")
    try:
        resolved = (root / given).resolve()
        exists = resolved.exists()
    except (OSError, RuntimeError, ValueError) as exc:
        raise InvalidPathError(f"{what} cannot be resolved: {type(exc).__name__}") from None
    if not resolved.is_relative_to(root):
        raise PathNotAllowedError(f"{what} points outside the media root; only files and "
                                  "folders inside the media root (VIDGROUND_MEDIA_ROOT) can "
                                  "be used")
    if not exists:
        raise VideoNotFoundError(f"no such file or folder in the media root: {given}")
    return resolved


class Library:
    """The searchable library of the server's media root: search it, build its index (a job),
    ground a search's hits with the model (a job). One per :class:`Service`."""

    def __init__(self, settings: Settings, grounder: Grounder, media_root: Path,
                 public: Callable[[str], str]) -> None:
        self.settings = settings
        self.grounder = grounder
        self.media_root = media_root
        #: turns a message into what a client may read (no server folders)
        self.public = public
        # searches share one open index (opening checks the file: tens of milliseconds at
        # 100k segments), opened again when the file was replaced (moved aside as damaged,
        # rebuilt) or after an error
        self._reader: SearchStore | None = None
        self._reader_key: tuple[str, object] | None = None
        self._reader_lock = threading.Lock()

    # -- the index -------------------------------------------------------------------------
    def open(self, *, check: str = "quick", create: bool = False) -> SearchStore:
        """The index where the settings say (``VIDGROUND_INDEX``, else the PostgreSQL job
        store, else ``<data_dir>/search.sqlite3``). A SQLite index that does not exist yet is
        :class:`SearchIndexMissingError` unless ``create`` (indexing makes it)."""
        from ..search.engines import index_location, open_store
        from ..search.store import SearchIndexError

        location = index_location(self.settings)
        postgres = location.startswith(("postgresql://", "postgres://"))
        if not postgres and not create and not Path(location).expanduser().exists():
            raise SearchIndexMissingError(
                "nothing is indexed yet: index the media root first (POST /api/v1/index "
                "with {\"paths\": \"all\"}, or `vidground index` on the server)")
        try:
            store = open_store(location, check=check)
        except SearchIndexError as exc:
            raise SearchIndexError(self.public(exc.message)) from None
        for warning in store.warnings:  # a damaged file moved aside: the server's log says
            log.warning("search index: %s", warning)
        return store

    def folder(self, within: str | None) -> Path:
        """The folder (or file) searches are confined to: ``within`` inside the media root, or
        the media root itself."""
        return self.media_root if within is None else media_item(self.media_root, within)

    # -- searching -------------------------------------------------------------------------
    def search(self, query: str, top: int = 10, within: str | None = None) -> list[Hit]:
        """The ``top`` best moments for ``query`` among the indexed videos inside the media
        root (inside ``within`` when given), best first."""
        from ..search.query import search
        from ..search.store import SearchIndexError
        from ..search.terms import terms

        terms(query)  # an empty or over-long query is refused before the index is opened
        folder = self.folder(within)
        store = self._searching()
        try:
            return search(store, query, top, folder)
        except SearchIndexError:
            self._forget(store)
            raise

    def _searching(self) -> SearchStore:
        """The shared open index for searches (see ``__init__``)."""
        from ..search.engines import index_location

        location = index_location(self.settings)
        try:
            stat = os.stat(Path(location).expanduser())
            identity: object = (stat.st_dev, stat.st_ino)
        except (OSError, ValueError):
            identity = None  # PostgreSQL, or a file that is not there (open says so)
        key = (location, identity)
        with self._reader_lock:
            if self._reader is None or self._reader_key != key:
                # the old one is not closed here: a search may still be reading it (it is
                # closed once nothing holds it)
                self._reader, self._reader_key = self.open(), key
            return self._reader

    def _forget(self, store: SearchStore) -> None:
        with self._reader_lock:
            if self._reader is store:
                self._reader = None

    def close(self) -> None:
        """Close the shared index (the server stops)."""
        with self._reader_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def relative(self, video: str) -> str:
        """``video`` (an absolute path inside the media root) as clients name it."""
        return Path(video).relative_to(self.media_root).as_posix()

    def public_hit(self, hit: Hit) -> dict[str, Any]:
        """A hit as the API answers it: the video relative to the media root, its file name,
        the times in seconds and as ``HH:MM:SS.sss``."""
        body = hit.to_dict()
        body["video"] = self.relative(hit.video)
        body["name"] = Path(hit.video).name
        body["start_text"] = format_time(hit.start)
        body["end_text"] = format_time(hit.end)
        return body

    def response(self, query: str, hits: list[Hit]) -> dict[str, Any]:
        return {"query": query, "hits": [self.public_hit(h) for h in hits]}

    # -- jobs ------------------------------------------------------------------------------
    def index_request(self, paths: list[str] | str, *, force: bool = False,
                      shots: bool = False, fps: float | None = None,
                      sources: Sequence[str] | None = None) -> dict[str, Any]:
        """The stored request of an index job, checked now (every path inside the media root
        and there; ``"all"``: the whole media root; ``sources`` known and their models
        installed, :func:`~vidground.search.sources.parse_sources`'s defaults when None). The
        job checks the paths again where it runs."""
        from ..search.sources import check_installed, parse_sources

        chosen = list(parse_sources(sources))
        if shots and "shot" not in chosen:
            chosen.append("shot")
        check_installed(chosen)
        if paths == "all":
            named: list[str] | str = "all"
        elif isinstance(paths, list) and 1 <= len(paths) <= MAX_INDEX_PATHS:
            named = [self.relative(str(media_item(self.media_root, p, "a path")))
                     for p in paths]
        else:
            raise OptionsError(f"paths must be \"all\" or a list of 1 to {MAX_INDEX_PATHS} "
                               "files and folders relative to the media root")
        options = describe_values(fps)
        return {"kind": INDEX_JOB, "paths": named, "force": bool(force),
                "sources": chosen, "options": options}

    def ground_request(self, query: str, *, top: int = 5, within: str | None = None,
                       options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The stored request of a grounded search (checked now: the query, ``top``, the
        folder, the options)."""
        from ..search.terms import terms

        terms(check_query(query))
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_GROUND_TOP:
            raise OptionsError(f"top must be between 1 and {MAX_GROUND_TOP} for a grounded "
                               f"search (each hit is a few model calls); got {top!r}")
        values = dict(options or {})
        LocateOptions.from_mapping(values)
        request: dict[str, Any] = {"kind": GROUND_JOB, "query": query, "top": top,
                                   "options": values}
        if within is not None:
            self.folder(within)
            request["in"] = within
        return request

    @staticmethod
    def owns(request: Mapping[str, Any]) -> bool:
        """Is ``request`` (a stored job request) one of the library's jobs?"""
        return request.get("kind") in JOB_KINDS

    def run(self, request: Mapping[str, Any], progress: Callable[[ProgressEvent], None]
            ) -> dict[str, Any]:
        """Run a library job where it was claimed (a server or a worker): its result."""
        if request["kind"] == INDEX_JOB:
            return self.run_index(request, progress)
        return self.run_ground(request, progress)

    def run_index(self, request: Mapping[str, Any], progress: Callable[[ProgressEvent], None]
                  ) -> dict[str, Any]:
        """Index the request's paths (see :func:`vidground.search.index.index_paths`):
        progress is ``index`` with the videos done, the one at work and the time left."""
        from ..search.index import IndexProgress, index_paths

        named = request["paths"]
        paths = ([self.media_root] if named == "all"
                 else [media_item(self.media_root, p, "a path") for p in named])
        started = time.monotonic()

        def on_progress(p: IndexProgress) -> None:
            where = self.relative(p.path)
            if p.status == "working":
                text = f"{p.done + 1} of {p.total}: {where}"
            else:
                text = f"{p.done} of {p.total} done ({where}: {p.status})"
            left = eta_s(time.monotonic() - started, p.done, p.total)
            if left is not None:
                text += f", about {format_eta(left)} left"
            progress(ProgressEvent("index", p.done, p.total, text))

        with self.open(check="full", create=True) as store:
            report = index_paths(paths, store=store, grounder=self.grounder,
                                 options=request.get("options") or {}, root=self.media_root,
                                 sources=request.get("sources") or ("event",),
                                 force=bool(request.get("force")), progress=on_progress)
            counts = store.counts()
        body = report.to_dict()
        for key in ("indexed", "skipped", "reused", "removed"):
            body[key] = [self.relative(p) for p in body[key]]
        body["failed"] = [{"video": self.relative(f["video"]), "error": self.public(f["error"])}
                          for f in body["failed"]]
        body["warnings"] = [self.public(w) for w in body["warnings"]]
        return {**body, "index": counts}

    def run_ground(self, request: Mapping[str, Any], progress: Callable[[ProgressEvent], None]
                   ) -> dict[str, Any]:
        """Search, then ask the model about each hit's neighbourhood
        (:func:`vidground.search.query.ground_hits`): the hits it confirms, with its
        frame-exact times."""
        from ..search.query import ground_hits

        query = request["query"]
        hits = self.search(query, int(request.get("top") or 5), request.get("in"))
        options = LocateOptions.from_mapping(request.get("options") or {})
        confirmed = ground_hits(self.grounder, hits, query, options, progress=progress)
        return {**self.response(query, confirmed), "searched": len(hits)}


def describe_values(fps: float | None) -> dict[str, Any]:
    """Describe's options an index request sets (only the frame rate, when given)."""
    if fps is None:
        return {}
    LocateOptions(frame_sampling_rate=fps)  # the option's own range check
    return {"frame_sampling_rate": fps}


def eta_s(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the rate so far (None before the first video is done)."""
    if done <= 0 or total <= done:
        return None
    return elapsed / done * (total - done)


def format_eta(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["GROUND_JOB", "INDEX_JOB", "JOB_KINDS", "Library", "SearchIndexMissingError",
           "media_item"]
