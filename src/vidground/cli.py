"""The ``vidground`` command: a thin shell over the library (``locate``, ``info``, ``serve``,
``doctor``). Results go to stdout, progress and errors to stderr; no raw tracebacks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .config import Settings
from .errors import OptionsError, VidgroundError
from .outputs.cli import EvidenceOpt, ExportOpt
from .progress import ProgressEvent
from .timecode import OUTPUT_FORMATS

app = typer.Typer(
    name="vidground",
    help="Find when things happen in a video, with Qwen3-VL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)
stdout = Console(highlight=False, soft_wrap=True)

T = TypeVar("T")

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="transformers (local Qwen3-VL) or openai (vLLM, SGLang, DashScope...)")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="model id or local path (default: 4B with a GPU, 2B on CPU)")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--openai-base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps")]


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def _run(action: Callable[[], T]) -> T:
    """Run ``action``; turn our errors into a one-line message and exit code 2."""
    try:
        return action()
    except VidgroundError as exc:
        stderr.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        stderr.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if os.environ.get("VIDGROUND_DEBUG"):
            raise
        stderr.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                     "Run again with VIDGROUND_DEBUG=1 for the traceback, and please report it.",
                     highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def _progress_display(enabled: bool) -> Iterator[Callable[[ProgressEvent], None]]:
    """A Rich progress bar on stderr fed by the pipeline's progress events."""
    if not enabled:
        yield lambda event: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:.0f}/{task.total:.0f}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(event: ProgressEvent) -> None:
            if event.stage == "done":
                return
            if event.stage not in tasks:
                tasks[event.stage] = bar.add_task(event.message or event.stage,
                                                  total=event.total)
            bar.update(tasks[event.stage], completed=event.done, total=event.total,
                       description=event.message or event.stage)

        yield update


def _parse_rate(value: str) -> float | str:
    if value == "adaptive":
        return value
    try:
        return float(value)
    except ValueError:
        raise OptionsError(f"--fps must be a number or 'adaptive', got {value!r}") from None


@app.command()
def locate(
    video: Annotated[Path, typer.Argument(help="the video file")],
    query: Annotated[str, typer.Argument(help="what to find, in plain language")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API response object")] = False,
    fps: Annotated[str, typer.Option("--fps", help="frames per second to sample, or 'adaptive'")
                   ] = "2",
    max_frames: Annotated[int, typer.Option("--max-frames", help="most frames per model call")
                          ] = 768,
    output_format: Annotated[str, typer.Option(
        "--format", help=f"time format: {', '.join(OUTPUT_FORMATS)}")] = "HH:MM:SS.sss",
    reasoning: Annotated[bool, typer.Option(help="ask for the model's reasoning")] = True,
    all_occurrences: Annotated[bool, typer.Option("--all", help="every occurrence")] = False,
    refine: Annotated[bool, typer.Option(help="re-ask around boundaries")] = True,
    snap_keyframes: Annotated[bool, typer.Option(
        help="sample keyframes when every sampling interval holds one (much faster)")] = True,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    openai_base_url: BaseUrlOpt = None,
    device: DeviceOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
    export: ExportOpt = None,
    evidence: EvidenceOpt = None,
) -> None:
    """Find when QUERY happens in VIDEO and print the time span(s), answer and reasoning."""
    from .grounding import Grounder
    from .options import LocateOptions

    def work() -> None:
        options = LocateOptions.from_mapping({
            "frame_sampling_rate": _parse_rate(fps), "max_frames": max_frames,
            "output_format": output_format, "return_reasoning": reasoning,
            "all_occurrences": all_occurrences, "refine": refine,
            "snap_to_keyframes": snap_keyframes,
        })
        settings = _settings(backend=backend, model=model, openai_base_url=openai_base_url,
                             device=device)
        grounder = Grounder(settings=settings)
        with _progress_display(not quiet and stderr.is_terminal) as report:
            result = grounder.locate(video, query, options, progress=report)
        if as_json:
            print(json.dumps(result.to_response(), ensure_ascii=False, indent=2))
        else:
            _print_grounding(result)
        if export or evidence:
            from .outputs.cli import write_outputs
            from .outputs.results import Result

            write_outputs(Result.from_grounding(result), export, evidence)

    _run(work)


def _print_grounding(result: Any) -> None:
    if result.spans:
        for span in result.spans:
            label = f"  ({span.label})" if span.label else ""
            stdout.print(f"{result.format(span.start)} - {result.format(span.end)}{label}")
    else:
        stdout.print("not found: the model did not place the event in this video")
    stdout.print(f"\nanswer: {result.answer}")
    if result.reasoning:
        stdout.print(f"reasoning: {result.reasoning}")
    t = result.timings
    stderr.print(f"[dim]{result.model} · {int(t.get('frames', 0))} frames · decode "
                 f"{t.get('decode_s', 0):.2f}s · model {t.get('model_s', 0):.2f}s[/]")


@app.command()
def info(
    video: Annotated[Path, typer.Argument(help="the video file")],
    as_json: Annotated[bool, typer.Option("--json", help="print VideoInfo as JSON")] = False,
) -> None:
    """Print what a video file is: duration, frame rate, size, codec, start time, rotation."""
    from .timecode import format_time
    from .video.probe import probe

    def work() -> None:
        facts = probe(video)
        if as_json:
            print(json.dumps(facts.to_dict(), indent=2))
            return
        stdout.print(f"{facts.path}\n  duration   {format_time(facts.duration)}"
                     f" ({facts.duration:.3f} s)\n  frames     {facts.frame_count} at "
                     f"{facts.fps:.3f} fps\n  size       {facts.width}x{facts.height}"
                     f" (rotation {facts.rotation})\n  codec      {facts.codec} in "
                     f"{facts.container}\n  start time {facts.start_time:.3f} s\n"
                     f"  audio      {'yes' if facts.has_audio else 'no'}")

    _run(work)


@app.command()
def doctor(
    backend: BackendOpt = None,
    model: ModelOpt = None,
    openai_base_url: BaseUrlOpt = None,
) -> None:
    """Check that the model backend works: reachable, model present, accepts images, latency."""
    from .doctor import check_backend

    def work() -> bool:
        checks = check_backend(_settings(backend=backend, model=model,
                                         openai_base_url=openai_base_url))
        for check in checks:
            mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
            latency = f" ({check.latency_ms:.0f} ms)" if check.latency_ms is not None else ""
            stdout.print(f"{mark}  {check.name}{latency}: {check.detail}")
        return all(c.ok for c in checks)

    if not _run(work):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 7860)")] = None,
    media_root: Annotated[Path | None, typer.Option(
        help="folder that video_path is resolved in")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="uploads and the jobs database")] = None,
    api_key: Annotated[str | None, typer.Option(help="require 'Authorization: Bearer KEY'")
                       ] = None,
    preload: Annotated[bool, typer.Option(help="load the model at start")] = False,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    openai_base_url: BaseUrlOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Serve the web page and the REST API (default http://127.0.0.1:7860)."""
    from .server.app import run_server

    settings = _run(lambda: _settings(
        host=host, port=port, media_root=media_root, data_dir=data_dir, api_key=api_key,
        preload_model=preload or None, backend=backend, model=model,
        openai_base_url=openai_base_url, device=device))
    _run(lambda: run_server(settings))


@app.command()
def worker(
    media_root: Annotated[Path | None, typer.Option(
        help="folder that video_path is resolved in: the same (shared) folder as the servers'"
    )] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="the servers' (shared) data dir: uploads are read from <data-dir>/uploads")] = None,
    job_store: Annotated[str | None, typer.Option(
        help="postgresql://user:password@host/db (default VIDGROUND_JOB_STORE, else the "
             "SQLite file in the data dir)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="jobs run at once by this process (default VIDGROUND_WORKERS, 1)")] = None,
    preload: Annotated[bool, typer.Option(help="load the model at start")] = True,
    drain_s: Annotated[float, typer.Option(
        help="on SIGTERM, wait this long for running jobs")] = 30.0,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    openai_base_url: BaseUrlOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run queued jobs from the job store, without serving HTTP (scale out: N workers)."""
    import logging

    from .worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per model request
    settings = _run(lambda: _settings(
        media_root=media_root, data_dir=data_dir, job_store=job_store, workers=workers,
        preload_model=preload, backend=backend, model=model, openai_base_url=openai_base_url,
        device=device))
    _run(lambda: run_worker(settings, drain_s=drain_s))


cache_app = typer.Typer(help="The disk cache of decoded frames and visual features.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")
CacheDirOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="the cache folder (default VIDGROUND_CACHE_DIR or <data dir>/cache)")]


@cache_app.command("info")
def cache_info(
    cache_dir: CacheDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
) -> None:
    """Show where the cache is, how full it is, and its entries per kind."""
    from . import cache

    def work() -> None:
        facts = cache.info(_settings(cache_dir=cache_dir))
        if as_json:
            print(json.dumps(facts, indent=2))
            return
        state = "on" if facts["enabled"] else "off (VIDGROUND_CACHE_MAX_GB=0)"
        stdout.print(f"{facts['dir']}  ({state})\n  {facts['entries']} entries, "
                     f"{facts['bytes'] / 1e6:.1f} MB of {facts['max_bytes'] / 1e9:g} GB")
        for kind, k in sorted(facts["kinds"].items()):
            stdout.print(f"  {kind:<9} {k['entries']:>6} entries  {k['bytes'] / 1e6:>10.1f} MB")

    _run(work)


@cache_app.command("clear")
def cache_clear(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="only entries unused for this long, e.g. 12h, 7d, 2w")] = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Delete cached frames and features (all, or those unused for --older-than)."""
    from . import cache

    def work() -> None:
        age = cache.parse_age(older_than) if older_than is not None else None
        count, size = cache.clear(_settings(cache_dir=cache_dir), age)
        stdout.print(f"deleted {count} entries ({size / 1e6:.1f} MB)")

    _run(work)


# `vidground eval` (benchmarks): its module imports only Typer and Rich until a command runs.
from .evaluation.cli import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")


# `vidground export`, `cut` and `describe` (results people can use: docs/outputs.md).
from .outputs.cli import register as _register_outputs  # noqa: E402

_register_outputs(app, _run, _settings)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)


if __name__ == "__main__":
    main()
