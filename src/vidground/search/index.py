"""Building the index: ``vidground index PATH...`` and the server's index job call
:func:`index_paths`.

For each video under the given files and folders: its content identity
(:func:`vidground.cache.identity.file_identity`) is compared with the stored one, and an
unchanged video is skipped; a renamed or copied one (same identity, new path) takes the stored
segments without asking the model; a new or changed one is probed and its time-coded text is
written in one transaction: the video's facts (kind ``facts``: file name, duration, size, frame
rate, codec, audio) and the asked sources (:mod:`.sources`): describe's events
(:func:`vidground.outputs.describe.describe`, kind ``event``), on-screen text (``text``),
speech (``speech``), shot boundaries (``shot``).

Each video records the sources it was indexed with: an unchanged video that lacks a source
now asked for gets that source alone (the others are kept, nothing is described again). With
an embedding model, segments written get vectors, and an unchanged video whose segments lack
them gets them. Videos stored under a given folder (or named) that are no longer there are
dropped.

Each video is committed on its own, so an interrupted run (Ctrl-C, ``kill -9``) resumes where it
stopped: the next run skips what was committed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache.identity import file_identity
from ..errors import VideoError, VideoNotFoundError, VidgroundError
from ..options import LocateOptions
from ..timecode import format_time
from . import sources as src
from .sources import SOURCES
from .store import SearchStore, Segment, VideoRecord, folder_prefix

if TYPE_CHECKING:
    from ..grounding import Grounder
    from ..video.probe import VideoInfo

#: Files taken from a folder (a file named directly is tried whatever its suffix).
VIDEO_EXTENSIONS = frozenset((".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp"))


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
    """What an index run did. ``indexed`` holds the videos described anew and those that got a
    newly asked source; ``sources``: the sources the run asked for; ``failed``: (path,
    message) of videos that could not be indexed (the run goes on without them)."""

    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "skipped": self.skipped, "reused": self.reused,
                "removed": self.removed,
                "failed": [{"video": p, "error": m} for p, m in self.failed],
                "warnings": self.warnings, "sources": self.sources}


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


@dataclass
class Plan:
    """What one run asks of every video: the sources, describe's options, the speech model."""

    sources: tuple[str, ...]
    options: LocateOptions
    speech_model: str | None = None
    text_step_s: float = src.TEXT_STEP_S


def source_segments(grounder: Grounder, info: VideoInfo, plan: Plan, wanted: Sequence[str]
                    ) -> tuple[list[Segment], list[str], list[str]]:
    """The segments of ``wanted`` sources for one probed video: (segments, the sources done,
    warnings). A perception source that fails is a warning, not done (the next run tries it
    again); describe's failure is raised (the model is down, or the video cannot be read)."""
    from ..outputs.describe import describe

    segments: list[Segment] = []
    done: list[str] = []
    warnings: list[str] = []
    for source in wanted:
        try:
            if source == "event":
                description = describe(grounder, info, plan.options)
                segments += [Segment(e.start, e.end, e.label or "", "event")
                             for e in description.events if e.label]
                warnings += list(description.warnings)
            elif source == "text":
                segments += src.text_segments(info, plan.text_step_s)
            elif source == "speech":
                if plan.speech_model is None:
                    continue
                segments += src.speech_segments(info, plan.speech_model)
            elif source == "shot":
                segments += src.shot_segments(info)
        except VidgroundError as exc:
            if source == "event":
                raise
            warnings.append(f"{source} was not indexed: {exc.message}")
            continue
        done.append(source)
    return segments, done, warnings


def index_paths(paths: Sequence[str | Path], *, store: SearchStore, grounder: Grounder,
                options: LocateOptions | Mapping[str, Any] | None = None,
                root: str | Path | None = None, sources: str | Sequence[str] | None = None,
                force: bool = False,
                progress: Callable[[IndexProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> IndexReport:
    """Index the videos under ``paths`` into ``store`` (see the module docstring).

    ``options``: describe's options (:func:`vidground.outputs.describe.describe_options`);
    ``root``: every path must lie inside it (the server's media root); ``sources``: names of
    :data:`~vidground.search.sources.SOURCES` (or ``"events,text"``; None: the defaults,
    :func:`~vidground.search.sources.default_sources`); ``force``: index again even when
    unchanged; ``progress`` is called before and after each video; ``should_stop`` (a job
    being cancelled) is asked between videos. One video's failure (not a video, the model's
    error) is recorded and the run goes on."""
    from ..outputs.describe import describe_options

    chosen = src.parse_sources(sources)
    src.check_installed(chosen)
    plan = Plan(chosen, describe_options(options), src.speech_model())
    files, folders, gone = find_videos(paths, root)
    for path in gone:
        if store.video(path) is None and not store.paths(folder_prefix(path)):
            raise VideoNotFoundError(f"{path} does not exist, and nothing indexed was there; "
                                     "check the path.")
    report = IndexReport(warnings=list(store.warnings), sources=list(chosen))
    if "speech" in chosen and plan.speech_model is None:
        report.warnings.append("speech was not indexed: no speech model is configured (set "
                               "VIDGROUND_SPEECH_MODEL to a faster-whisper model; speech "
                               "spans alone have no words to search)")
    stale = _missing(store, files, folders + gone)
    total = len(files)
    for done, path in enumerate(files):
        if should_stop is not None and should_stop():
            break
        if progress:
            progress(IndexProgress(done, total, path, "working"))
        status = _index_one(path, store, grounder, plan, force, report)
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


def _index_one(path: str, store: SearchStore, grounder: Grounder, plan: Plan, force: bool,
               report: IndexReport) -> str:
    from ..video.probe import probe

    warnings: list[str] = []
    try:
        identity = file_identity(path)
        base = store.video(path)
        if base is None or base.identity != identity or force:
            base = None if force else _reuse(path, identity, store)
        elif not _missing_sources(base, plan):
            store.fill_vectors(path)
            report.skipped.append(path)
            return "skipped"
        missing = _missing_sources(base, plan) if base is not None else list(plan.sources)
        if base is not None and not missing:
            store.fill_vectors(path)
            report.reused.append(path)
            return "reused"
        info = probe(path)
        segments, done, warnings = source_segments(grounder, info, plan, missing)
        model = grounder.backend.model_name if "event" in done else ""
        if base is None:
            store.put(VideoRecord(path, identity, info.duration, facts_of(info), model,
                                  tuple(done)),
                      [Segment(0.0, info.duration, facts_text(info), "facts"), *segments])
        else:  # the stored sources stay; the new ones join them
            have = set(base.sources) | set(done)
            store.replace_kinds(replace(base, model=model or base.model,
                                        sources=tuple(s for s in SOURCES if s in have)),
                                done, segments)
            store.fill_vectors(path)
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


def _missing_sources(record: VideoRecord, plan: Plan) -> list[str]:
    """The asked sources ``record`` was not indexed with (speech only with a model)."""
    return [s for s in plan.sources if s not in record.sources
            and (s != "speech" or plan.speech_model is not None)]


def _reuse(path: str, identity: str, store: SearchStore) -> VideoRecord | None:
    """A renamed or copied video (another path, this identity) lends ``path`` its segments;
    the record now stored for ``path``, or None."""
    twin = store.by_identity(identity)
    if twin is None:
        return None
    old, new = Path(twin.path).name, Path(path).name
    segments = [Segment(s.start, s.end, s.text.replace(old, new, 1), s.kind)
                if s.kind == "facts" else s for s in store.segments(twin.path)]
    record = replace(twin, path=path)
    store.put(record, segments)
    return record
