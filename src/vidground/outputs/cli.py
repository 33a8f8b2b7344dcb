"""The ``vidground export``, ``cut`` and ``describe`` commands and the ``--export`` /
``--evidence`` outputs of ``locate``. :func:`register` adds the commands to the main app; this
module imports only Typer and Rich until a command runs (no PyAV, no OpenTimelineIO).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..cli_support import stderr, stdout
from ..errors import OptionsError

if TYPE_CHECKING:
    from ..timecode import Span
    from .clips import Mode
    from .describe import Description
    from .results import Result


ExportOpt = Annotated[list[str] | None, typer.Option(
    "--export", help="also write FORMAT[:PATH] (srt, vtt, chapters, csv, jsonl, edl, otio, "
                     "youtube; PATH '-' is stdout); repeatable")]
EvidenceOpt = Annotated[Path | None, typer.Option(
    "--evidence", help="write each span's first/middle/last frame (JPEG) and a contact sheet "
                       "to this folder")]
RelinkOpt = Annotated[str | None, typer.Option(
    "--relink", help="EDL/OTIO (and CSV/JSONL video) name the video as the file of the same "
                     "name in this folder, e.g. where the footage is on the editor's machine "
                     "(default: its absolute path here)")]


def parse_target(spec: str, stem: str) -> tuple[str, str]:
    """``srt`` -> (``srt``, ``<stem>.srt``); ``edl:cuts.edl`` -> (``edl``, ``cuts.edl``)."""
    from .exports import check_format, suffix

    name, _, path = spec.partition(":")
    fmt = check_format(name)
    return fmt, path or f"{stem}{suffix(fmt)}"


def write_exports(results: Sequence[Result], specs: Sequence[str], stem: str,
                  relink: str | None = None) -> None:
    """Write every ``FORMAT[:PATH]`` export; ``-`` prints to stdout; notes go to stderr.
    ``relink``: the folder EDL/OTIO name the videos in (relative: from the current folder)."""
    from .exports import export, export_file, youtube_problems

    folder = relink_folder(relink)
    for spec in specs:
        fmt, path = parse_target(spec, stem)
        if path == "-":
            sys.stdout.write(export(results, fmt, relink=folder))
            continue
        written = export_file(results, fmt, path, relink=folder)
        stderr.print(f"wrote {written} ({fmt})")
        if fmt == "youtube":
            for problem in youtube_problems(written.read_text(encoding="utf-8")):
                stderr.print(f"[yellow]note:[/] {problem}")


def write_evidence_dir(video: str | Path, spans: Sequence[Span], folder: Path,
                       title: str | None) -> None:
    from .evidence import write_evidence

    frames, sheet = write_evidence(video, spans, folder, title=title)
    for frame in frames:
        stderr.print(f"wrote {frame.path} ({frame.role} frame of span {frame.span_index} "
                     f"at {frame.frame_time:.3f} s)")
    if sheet is not None:
        stderr.print(f"wrote {sheet} (contact sheet)")
    else:
        stderr.print("no spans: no evidence frames written")


def relink_folder(relink: str | None) -> str | None:
    """``--relink DIR``: a Windows or absolute path as given, a relative one from here."""
    from .exports import local_path

    if not relink or local_path(relink).is_absolute():
        return relink or None
    return str(Path(relink).absolute())


def local_result(result: Result) -> Result:
    """``result`` with its video named by its absolute path (as ``vidground export`` of the
    saved response names it), so both write the same files."""
    from dataclasses import replace

    from .results import absolute_video

    return replace(result, video=absolute_video(result.video))


def write_outputs(result: Result, exports: Sequence[str] | None, evidence: Path | None,
                  relink: str | None = None, *, suffix: str = "") -> None:
    """What ``--export`` and ``--evidence`` ask for, after ``locate`` or ``describe``; default
    file names are the video's stem plus ``suffix`` (describe's ``.describe``, so the exports
    of ``locate`` and ``describe`` of one video do not overwrite each other)."""
    stem = (Path(result.video).stem if result.video else "result") + suffix
    if exports:
        write_exports([local_result(result)], exports, stem, relink)
    if evidence is not None and result.video:
        write_evidence_dir(result.video, result.spans, evidence, result.query)


#: The files ``describe --subtitles`` writes besides ``<stem>.describe.json``: (part, format,
#: file name after the stem). Chapters take the name a ``--export chapters`` of the events
#: would (the same chapters, started at shot changes).
DESCRIBE_FILES = (("subtitles", "srt", ".subtitles.srt"), ("subtitles", "vtt", ".subtitles.vtt"),
                  ("chapters", "chapters", ".chapters.vtt"), ("shots", "csv", ".shots.csv"))
#: Exports of a description written from its chapters rather than its events
CHAPTER_FORMATS = ("chapters", "youtube")


def write_description(description: Description, exports: Sequence[str] | None,
                      evidence: Path | None, relink: str | None, *, files: bool) -> None:
    """``describe``'s outputs: ``--export`` of the events (chapter formats from its chapters),
    ``--evidence``, and with ``files`` (``--subtitles``) the whole response as
    ``<stem>.describe.json`` and each part of :data:`DESCRIBE_FILES` it holds."""
    from .exports import export_file

    stem = (Path(description.video.path).stem or "result") + ".describe"
    result, parts = description.to_result(), description.part_results()
    chapter_specs = [s for s in exports or () if parse_target(s, stem)[0] in CHAPTER_FORMATS]
    event_specs = [s for s in exports or () if s not in chapter_specs]
    write_outputs(result, event_specs, evidence, relink, suffix=".describe")
    if chapter_specs:
        write_exports([local_result(parts["chapters"])], chapter_specs, stem, relink)
    if not files:
        return
    whole = Path(f"{stem}.json")
    whole.write_text(json.dumps(description.to_response(), ensure_ascii=False, indent=2)
                     + "\n", encoding="utf-8")
    stderr.print(f"wrote {whole} (the whole description: events, chapters, subtitles, shots)")
    for part, fmt, ending in DESCRIBE_FILES:
        if part in parts:
            written = export_file([local_result(parts[part])], fmt, f"{stem}{ending}",
                                  relink=relink_folder(relink))
            stderr.print(f"wrote {written} ({part}, {fmt})")


def parse_span(text: str) -> Span:
    """``12.345-13.120`` or ``00:00:12.345-00:00:13.120`` (seconds or clock times)."""
    from ..timecode import Span, parse_timecode

    start, sep, end = text.partition("-")
    if not sep:
        raise OptionsError(f"--span needs START-END, e.g. 12.345-13.120, got {text!r}")
    try:
        a, b = parse_timecode(start), parse_timecode(end)
    except ValueError as exc:
        raise OptionsError(f"--span {text!r}: {exc}") from None
    if b < a:
        raise OptionsError(f"--span {text!r} ends before it starts")
    return Span(a, b)


def register(app: typer.Typer, run: Callable[[Callable[[], Any]], Any],
             settings: Callable[..., Any]) -> None:
    """Add ``export``, ``cut`` and ``describe`` to ``app``; ``run`` maps errors to exit
    codes, ``settings`` builds Settings from CLI overrides (both from :mod:`vidground.cli`)."""

    @app.command("export")
    def export_cmd(
        result: Annotated[Path, typer.Argument(help="a result: 'locate --json' output, a job "
                                                    "or job list from the API, or JSON Lines")],
        to: Annotated[list[str], typer.Option(
            "--to", help="FORMAT[:PATH]: srt, vtt, chapters, csv, jsonl, edl, otio, youtube "
                         "(PATH '-' is stdout); repeatable")],
        video: Annotated[str | None, typer.Option(
            "--video", help="the source video's path (named in EDL/OTIO) when the result "
                            "does not say")] = None,
        query: Annotated[str | None, typer.Option(
            "--query", help="cue text for spans without a label when the result has no "
                            "question")] = None,
        relink: RelinkOpt = None,
    ) -> None:
        """Write a saved result as subtitles, chapters, a table or an editor timeline."""
        from dataclasses import replace

        from .results import absolute_video, load_results

        def work() -> None:
            results = load_results(result)
            if video or query:
                results = [replace(r, query=query or r.query,
                                   video=absolute_video(video) if video else r.video)
                           for r in results]
            write_exports(results, to, result.stem, relink)

        run(work)

    @app.command()
    def cut(
        video: Annotated[Path, typer.Argument(help="the video file")],
        span: Annotated[list[str] | None, typer.Option(
            "--span", help="START-END in seconds or HH:MM:SS.sss; repeatable")] = None,
        from_result: Annotated[Path | None, typer.Option(
            "--from", help="cut every span of this result file")] = None,
        pad: Annotated[float, typer.Option(help="seconds added before and after")] = 0.0,
        fast: Annotated[bool, typer.Option(
            "--fast/--exact", help="--exact (default) re-encodes so the clip starts and ends "
                                   "on the span's frames; --fast copies packets from the "
                                   "keyframe before (no re-encode, starts earlier)")] = False,
        out: Annotated[Path | None, typer.Option(
            "--out", help="the clip file (one span) or folder (default: the current folder)")
                       ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the clips as JSON")
                           ] = False,
    ) -> None:
        """Cut clips of VIDEO: one per --span, or every span of a result (--from)."""
        from .clips import CONTAINERS, cut, cut_many
        from .results import load_results

        def work() -> None:
            spans = [parse_span(s) for s in span or []]
            if from_result is not None:
                spans += [s for r in load_results(from_result) for s in r.spans]
            if not spans:
                raise OptionsError("nothing to cut: give --span START-END or --from RESULT.json")
            mode: Mode = "fast" if fast else "exact"
            if out is not None and out.suffix.lower() in CONTAINERS and len(spans) == 1:
                clips = [cut(video, spans[0], out, pad=pad, mode=mode)]
            else:
                clips = cut_many(video, spans, out or Path.cwd(), pad=pad, mode=mode)
            if as_json:
                print(json.dumps([c.to_dict() for c in clips], indent=2))
            for c in clips:
                earlier = (f", starts {c.starts_earlier_s:.3f} s before the span (keyframe)"
                           if c.starts_earlier_s > 0 else "")
                stderr.print(f"wrote {c.path} ({c.mode}: {c.start:.3f}-{c.end:.3f} s, "
                             f"{c.frames} frames{', with audio' if c.has_audio else ''}"
                             f"{earlier})")
                if c.note:
                    stderr.print(f"[yellow]note:[/] {c.note}")

        run(work)

    @app.command("describe")
    def describe_cmd(
        video: Annotated[Path, typer.Argument(help="the video file")],
        as_json: Annotated[bool, typer.Option("--json", help="print the response object")
                           ] = False,
        fps: Annotated[float, typer.Option("--fps", help="frames per second to sample")] = 1.0,
        max_frames: Annotated[int, typer.Option(
            "--max-frames", help="most frames shown for the whole video, shared by its "
                                 "windows")] = 256,
        refine: Annotated[bool, typer.Option(help="re-ask around each event's boundaries")
                          ] = True,
        language: Annotated[str, typer.Option(help="en or zh")] = "en",
        subtitles: Annotated[bool, typer.Option(
            "--subtitles", help="one output with everything: the events, subtitles from the "
                                "speech (a transcript with VIDGROUND_SPEECH_MODEL), chapters "
                                "started at shot changes and the shots, printed with --json "
                                "and written as <video>.describe.json, .subtitles.srt/.vtt, "
                                ".chapters.vtt, .shots.csv (needs vidground[perception])")
                             ] = False,
        shots: Annotated[bool, typer.Option(
            "--shots", help="find the shots too (TransNetV2) and start each chapter at a "
                            "shot change nearby (needs vidground[perception])")] = False,
        export: ExportOpt = None,
        evidence: EvidenceOpt = None,
        relink: RelinkOpt = None,
        backend: Annotated[str | None, typer.Option("--backend", help="transformers or openai")
                           ] = None,
        model: Annotated[str | None, typer.Option("--model", help="model id or local path")
                         ] = None,
        openai_base_url: Annotated[str | None, typer.Option(
            "--openai-base-url", help="OpenAI-compatible server URL")] = None,
        device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda...")
                          ] = None,
    ) -> None:
        """List what happens when in VIDEO: every event the model sees, with its times."""
        from ..grounding import Grounder
        from ..timecode import format_time
        from .describe import describe, describe_options

        def work() -> None:
            options = describe_options({
                "frame_sampling_rate": fps, "max_frames": max_frames, "refine": refine,
                "language": language})
            grounder = Grounder(settings=settings(backend=backend, model=model,
                                                  openai_base_url=openai_base_url,
                                                  device=device))
            include = ["subtitles", "shots"] if subtitles else ["shots"] if shots else []
            result = describe(grounder, video, options, include=include)
            if as_json:
                print(json.dumps(result.to_response(), ensure_ascii=False, indent=2))
            else:
                for event in result.events:
                    stdout.print(f"{format_time(event.start)} - {format_time(event.end)}  "
                                 f"{event.label}")
                if not result.events:
                    stdout.print("no events: the model listed nothing it could place in time")
                _print_extras(result)
            write_description(result, export, evidence, relink, files=subtitles)

        run(work)


def _print_extras(description: Description) -> None:
    """The chapters moved to shot changes, the shots and the subtitles, after the events."""
    from ..timecode import format_time

    if description.shots is not None:
        moved = [c for c in description.chapters if c.shot]
        stdout.print(f"{len(description.shots.shots)} shots; {len(moved)} of "
                     f"{len(description.chapters)} chapters start at a shot change")
    if description.subtitles is not None:
        subs = description.subtitles
        stdout.print(f"subtitles ({subs.source}): {len(subs.spans)} cues")
        for span in subs.spans:
            stdout.print(f"  {format_time(span.start)} - {format_time(span.end)}  "
                         f"{span.label or ''}")
