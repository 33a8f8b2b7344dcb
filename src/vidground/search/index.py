"""Building the index: ``vidground index PATH...`` and the server's index job call
:func:`index_paths`.

For each video under the given files and folders: its content identity
(:func:`vidground.cache.identity.file_identity`) is compared with the stored one, and an
unchanged video is skipped; a renamed or copied one (same identity, new path) takes the stored
segments without asking the model; a new or changed one is probed and described
(:func:`vidground.outputs.describe.describe`), and its time-coded text is written in one
transaction: the events (kind ``event``), the video's facts (kind ``facts``: file name,
duration, size, frame rate, codec, audio) and, when asked, shot boundaries (kind ``shot``).
Videos stored under a given folder (or named) that are no longer there are dropped.

On-screen text and speech are kinds the store already has (``text``, ``speech``); they are
filled from describe alone for now (perception's results are not indexed yet).

Each video is committed on its own, so an interrupted run (Ctrl-C, ``kill -9``) resumes where it
stopped: the next run skips what was committed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache.identity import file_identity
from ..errors import VideoError, VideoNotFoundError, VidgroundError
from ..options import LocateOptions
from ..timecode import format_time
from .store import SearchStore, Segment, VideoRecord, folder_prefix

if TYPE_CHECKING:
    from ..grounding import Grounder
    from ..video.probe import VideoInfo

#: Files taken from a folder (a file named directly is tried whatever its suffix).
VIDEO_EXTENSIONS = frozenset((".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp"))
#: Sources :func:`index_paths` can store besides the facts.
SOURCES = ("event", "shot")


@dataclass
class IndexProgress:
    """Where an index run is: ``done`` of ``total`` videos, the one being worked on, and what
    happened to it (``indexed``, ``skipped``, ``reused``, ``failed``; ``working`` before)."""

    done: int
    total: int
    path: str
    status: str


@dataclass
class IndexReport:
    """What an index run did. ``failed``: (path, message) of videos that could not be indexed
    (the run goes on without them)."""

    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "skipped": self.skipped, "reused": self.reused,
                "removed": self.removed,
                "failed": [{"video": p, "error": m} for p, m in self.failed],
                "warnings": self.warnings}


def find_videos(paths: Iterable[str | Path], root: str | Path | None = None
                ) -> tuple[list[str], list[str], list[str]]:
    """(video files, folders, paths that do not exist) under ``paths``, resolved, in order,
    each once. A folder is walked (symbolic links to folders are not followed); a file inside
    ``root`` (when given) only."""
    inside = folder_prefix(root) if root is not None else None
    files: dict[str, None] = {}
    folders: list[str] = []
    gone: list[str] = []
    for given in paths:
        real = os.path.realpath(given)
        if inside is not None and not (real + os.sep).startswith(inside):
            raise VideoError(f"{given} is outside the folder searches are confined to "
                             f"({root}); give a path inside it.")
        if os.path.isdir(real):
            folders.append(real)
            for top, dirs, names in os.walk(real):
                dirs.sort()
                for name in sorted(names):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        found = os.path.realpath(os.path.join(top, name))
                        if inside is None or found.startswith(inside):
                            files.setdefault(found, None)
        elif os.path.isfile(real):
            files.setdefault(real, None)
        elif not os.path.lexists(given):
            gone.append(real)  # whatever was stored for it is dropped
        else:
            raise VideoError(f"{given} is neither a file nor a folder; give videos or folders.")
    return list(files), folders, gone


def facts_text(info: VideoInfo) -> str:
    """The searchable line of a video's facts (file name, length, size, rate, codec, audio)."""
    name = Path(info.path).name
    audio = "with audio" if info.has_audio else "no audio"
    return (f"{name} {format_time(info.duration)} {info.width}x{info.height} "
            f"{info.fps:g} fps {info.codec} {info.container} {audio}")


def facts_of(info: VideoInfo) -> dict[str, Any]:
    return {**info.summary(), "codec": info.codec, "container": info.container,
            "has_audio": info.has_audio, "rotation": info.rotation}


def describe_segments(grounder: Grounder, info: VideoInfo, options: LocateOptions | None,
                      sources: Sequence[str]) -> tuple[list[Segment], list[str]]:
    """The segments of one probed video and warnings (a source that could not run)."""
    from ..outputs.describe import describe

    segments = [Segment(0.0, info.duration, facts_text(info), "facts")]
    warnings: list[str] = []
    if "event" in sources:
        description = describe(grounder, info, options)
        segments += [Segment(e.start, e.end, e.label or "", "event")
                     for e in description.events if e.label]
        warnings += list(description.warnings)
    if "shot" in sources:
        segments += _shot_segments(info, warnings)
    return segments, warnings


def _shot_segments(info: VideoInfo, warnings: list[str]) -> list[Segment]:
    from ..perception.shots import detect_shots

    try:
        result = detect_shots(info)
    except VidgroundError as exc:
        warnings.append(f"{Path(info.path).name}: shot boundaries were not indexed: "
                        f"{exc.message}")
        return []
    return [Segment(t.start, t.end, f"shot change ({t.kind})", "shot")
            for t in result.transitions]


def index_paths(paths: Sequence[str | Path], *, store: SearchStore, grounder: Grounder,
                options: LocateOptions | Mapping[str, Any] | None = None,
                root: str | Path | None = None, sources: Sequence[str] = ("event",),
                force: bool = False,
                progress: Callable[[IndexProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> IndexReport:
    """Index the videos under ``paths`` into ``store`` (see the module docstring).

    ``options``: describe's options (:func:`vidground.outputs.describe.describe_options`);
    ``root``: every path must lie inside it (the server's media root); ``sources``: of
    :data:`SOURCES`; ``force``: describe again even when unchanged; ``progress`` is called
    before and after each video; ``should_stop`` (a job being cancelled) is asked between
    videos. One video's failure (not a video, the model's error) is recorded and the run goes
    on."""
    from ..outputs.describe import describe_options
    from ..video.probe import probe

    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise VideoError(f"unknown index source(s) {sorted(unknown)}; use {list(SOURCES)}.")
    opts = describe_options(options)
    files, folders, gone = find_videos(paths, root)
    for path in gone:
        if store.video(path) is None and not store.paths(folder_prefix(path)):
            raise VideoNotFoundError(f"{path} does not exist, and nothing indexed was there; "
                                     "check the path.")
    report = IndexReport(warnings=list(store.warnings))
    stale = _missing(store, files, folders + gone)
    total = len(files)
    for done, path in enumerate(files):
        if should_stop is not None and should_stop():
            break
        if progress:
            progress(IndexProgress(done, total, path, "working"))
        status = _index_one(path, store, grounder, opts, sources, force, probe, report)
        if progress:
            progress(IndexProgress(done + 1, total, path, status))
    if stale:  # after the new files: a renamed one took its old path's segments first
        store.remove(stale)
    report.removed = stale
    return report


def _missing(store: SearchStore, files: list[str], folders: list[str]) -> list[str]:
    """Stored videos under ``folders`` (or named by them) whose files are gone."""
    present = set(files)
    stale: list[str] = []
    for folder in folders:
        stale += [p for p in store.paths(folder_prefix(folder)) if p not in present]
        if store.video(folder) is not None and not os.path.exists(folder):
            stale.append(folder)  # a file named directly that is gone
    return list(dict.fromkeys(p for p in stale if not os.path.exists(p)))


def _index_one(path: str, store: SearchStore, grounder: Grounder, opts: LocateOptions,
               sources: Sequence[str], force: bool, probe: Callable[[str], VideoInfo],
               report: IndexReport) -> str:
    try:
        identity = file_identity(path)
        stored = store.video(path)
        if stored is not None and stored.identity == identity and not force:
            report.skipped.append(path)
            return "skipped"
        twin = None if force else store.by_identity(identity)
        if twin is not None:
            old, new = Path(twin.path).name, Path(path).name
            segments = [Segment(s.start, s.end, s.text.replace(old, new, 1), s.kind)
                        if s.kind == "facts" else s for s in store.segments(twin.path)]
            store.put(VideoRecord(path, identity, twin.duration, twin.facts, twin.model),
                      segments)
            report.reused.append(path)
            return "reused"
        info = probe(path)
        segments, warnings = describe_segments(grounder, info, opts, sources)
        store.put(VideoRecord(path, identity, info.duration, facts_of(info),
                              grounder.backend.model_name), segments)
    except OSError as exc:
        report.failed.append((path, f"cannot read the file: {exc.strerror or exc}"))
        return "failed"
    except VidgroundError as exc:
        if exc.code in ("search_index_unavailable", "backend_error", "model_not_available"):
            raise  # the index or the model is down: every other video would fail the same way
        report.failed.append((path, exc.message))
        return "failed"
    report.indexed.append(path)
    report.warnings += [f"{Path(path).name}: {w}" for w in warnings]
    return "indexed"
