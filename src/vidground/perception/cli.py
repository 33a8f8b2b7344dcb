"""``vidground text``, ``vidground shots`` and ``vidground speech``: the perception commands.

Each prints one line per segment (or, with ``--json``, an object shaped like ``locate``'s
response: ``segments[]`` with ``start``/``end`` seconds, ``label``, ``score``), and can write the
segments as files with ``--export FORMAT[:PATH]`` (the formats of ``vidground export``).
Register them on the main app with :func:`register` (or use :data:`perception_app` alone).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..cli_support import run_action, stderr, stdout
from ..errors import OptionsError, QueryError
from ..outputs.cli import ExportOpt
from ..timecode import Span

VideoArg = Annotated[Path, typer.Argument(help="the video file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _response(info: Any, spans: list[Span], *, query: str | None, model: str,
              started: float, **extra: Any) -> dict[str, Any]:
    return {"query": query,
            "segments": [s.to_dict(fps=info.fps) for s in spans],
            "video": {**info.summary(), "name": Path(info.path).name,
                      "path": os.path.abspath(info.path)},
            "model": model, "timings": {"total_s": round(time.monotonic() - started, 3)},
            **extra}


def _print(body: dict[str, Any], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    if not body["segments"]:
        stdout.print(escape(empty))
    for seg in body["segments"]:
        label = f"  {seg['label']}" if seg.get("label") else ""
        score = f"  ({seg['score']:.2f})" if isinstance(seg.get("score"), float) else ""
        if seg["start"] == seg["end"]:
            stdout.print(f"{seg['start_text']}{escape(label)}{score}")
        else:
            stdout.print(f"{seg['start_text']} - {seg['end_text']}{escape(label)}{score}")


def _export(info: Any, spans: list[Span], exports: list[str] | None, query: str | None
            ) -> None:
    if not exports:
        return
    from ..outputs.cli import write_exports
    from ..outputs.results import Result

    result = Result(tuple(spans), fps=info.fps, duration=info.duration, query=query,
                    video=os.path.abspath(info.path))
    write_exports([result], exports, str(Path(info.path).with_suffix("")))


def _check_exports(exports: list[str] | None, allowed: tuple[str, ...], what: str) -> None:
    from ..outputs.cli import parse_target

    for spec in exports or ():
        fmt, _ = parse_target(spec, "x")
        if fmt not in allowed:
            raise OptionsError(f"{what} exports as {', '.join(allowed)}; not {fmt!r}")


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on stderr while frames are analysed (only on a terminal: pipes and files get the
    result alone)."""
    if not stderr.is_terminal:
        yield None
        return
    from ..cli_support import eta_bar

    with eta_bar() as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _probe(video: Path) -> Any:
    from ..video.probe import probe

    return probe(video)


def text(
    video: VideoArg,
    phrase: Annotated[str | None, typer.Argument(
        help="the words to find on screen (fuzzy: OCR slips and spacing are forgiven)")] = None,
    all_text: Annotated[bool, typer.Option(
        "--all", help="list every line of text the video shows, with its spans")] = False,
    step: Annotated[float, typer.Option(
        "--step", help="seconds between the frames OCR reads whole (boundaries are still "
                       "found to the frame)")] = 0.5,
    as_json: JsonOpt = False,
    export: ExportOpt = None,
) -> None:
    """When is PHRASE on screen? OCR (PP-OCR, Chinese and English) to the frame."""
    def work() -> None:
        from . import text as ocr_text

        started = time.monotonic()
        if phrase is None and not all_text:
            raise QueryError('give a phrase, e.g. vidground text video.mp4 "PAYMENT FAILED", '
                             "or --all for every text on screen")
        info = _probe(video)
        with _progress("reading the screen") as progress:
            if phrase is not None:
                found = ocr_text.find_text(info, phrase, step_s=step, progress=progress)
            else:
                found = ocr_text.all_text(info, step_s=step, progress=progress)
        body = _response(info, found.spans, query=phrase, model="rapidocr (PP-OCR)",
                         started=started, detector="ocr", ocr=found.to_dict()["ocr"])
        _print(body, as_json, f"{phrase!r} is not on screen" if phrase else "no text on screen")
        _export(info, found.spans, export, phrase)

    run_action(work, as_json=as_json)


def shots(
    video: VideoArg,
    threshold: Annotated[float, typer.Option(
        "--threshold", help="transition score (0..1) a frame must pass")] = 0.5,
    as_json: JsonOpt = False,
    export: ExportOpt = None,
) -> None:
    """The shots of VIDEO (TransNetV2): hard cuts to the frame, gradual transitions as spans."""
    def work() -> None:
        from .shots import detect_shots

        started = time.monotonic()
        if not 0.0 < threshold < 1.0:
            raise OptionsError(f"--threshold must be between 0 and 1, got {threshold}")
        _check_exports(export, ("edl", "otio", "csv", "chapters", "jsonl", "youtube"), "shots")
        info = _probe(video)
        with _progress("finding shots") as progress:
            found = detect_shots(info, threshold=threshold, progress=progress)
        body = _response(info, found.shots, query=None, model="transnetv2",
                         started=started, detector="shots",
                         transitions=[t.to_dict() for t in found.transitions])
        _print(body, as_json, "no frames")
        _export(info, found.shots, export, None)

    run_action(work, as_json=as_json)


def speech(
    video: VideoArg,
    model: Annotated[str | None, typer.Option(
        "--model", help="speech model: a CTranslate2 Whisper folder or a size name already "
                        "downloaded (default VIDGROUND_SPEECH_MODEL; none: speech spans only)")
                     ] = None,
    language: Annotated[str | None, typer.Option(
        "--language", help="the speech's language (en, zh...; default: detected)")] = None,
    as_json: JsonOpt = False,
    export: ExportOpt = None,
) -> None:
    """When is someone speaking (Silero VAD), and with a speech model what they say."""
    def work() -> None:
        from . import speech as hearing

        started = time.monotonic()
        _check_exports(export, ("srt", "vtt", "csv", "jsonl"), "speech")
        info = _probe(video)
        name = model or hearing.speech_model_name()
        if name:
            found = hearing.transcribe(info, name, language=language)
        else:
            found = hearing.speech_spans(info)
        body = _response(info, found.spans, query=None, model=found.model or "",
                         started=started, detector="speech", language=found.language,
                         **{"words": [[w.to_dict() for w in ws] for ws in found.words]}
                         if name else {})
        if as_json and name:
            for seg, words in zip(body["segments"], body.pop("words"), strict=False):
                seg["words"] = words
        _print(body, as_json, "no speech")
        _export(info, found.spans, export, None)

    run_action(work, as_json=as_json)


COMMANDS: dict[str, Callable[..., None]] = {"text": text, "shots": shots, "speech": speech}


def register(app: typer.Typer) -> None:
    """Add ``text``, ``shots`` and ``speech`` to ``app`` (the ``vidground`` command)."""
    for name, command in COMMANDS.items():
        app.command(name)(command)


#: The three commands on their own (``python -m vidground.perception.cli --help``).
perception_app = typer.Typer(name="perception", no_args_is_help=True, add_completion=False,
                             pretty_exceptions_enable=False, rich_markup_mode=None,
                             help="On-screen text, shots and speech, on any CPU.")
register(perception_app)

if __name__ == "__main__":
    perception_app()
