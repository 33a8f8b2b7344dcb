"""The ``vidground`` command: a thin shell over the library (``locate``, ``info``, ``serve``,
``doctor``). Results go to stdout, progress and errors to stderr; no raw tracebacks. With
``--json`` an error is a JSON object on stdout too (``{"error": {"code", "message"}}``). Text
given to Rich is escaped (``[modelscope]`` is not markup) and never hard-wrapped."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .cli_support import run_action, stderr, stdout
from .config import Settings
from .errors import OptionsError
from .outputs.cli import EvidenceOpt, ExportOpt, RelinkOpt
from .progress import ProgressEvent
from .timecode import OUTPUT_FORMATS

if TYPE_CHECKING:  # Typer's own copy of Click since 0.2x (Click itself before)
    from typer._click import ClickException

app = typer.Typer(
    name="vidground",
    help="Find when things happen in a video, with Qwen3-VL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: Rich's option table cuts long option names at 80 columns
    # ("--max-frames-per-…"); plain help keeps every name whole and wraps the descriptions
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# soft_wrap: lines are never broken by Rich (a command in a message stays one piece when the
# output is a file or a pipe; a terminal wraps them visually)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"vidground {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="print the version and exit")] = None) -> None:
    """Find when things happen in a video, with Qwen3-VL."""

T = TypeVar("T")

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="transformers (local Qwen3-VL) or openai (vLLM, SGLang, DashScope...)")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="model id or local path (default: 4B with a GPU, 2B on CPU)")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--openai-base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps")]
ModelSourceOpt = Annotated[str | None, typer.Option(
    "--model-source", help="where model ids are downloaded from: huggingface or modelscope")]
DtypeOpt = Annotated[str | None, typer.Option(
    "--dtype", help="local backend: auto, bfloat16, float16 or float32")]
OpenAIModelOpt = Annotated[str | None, typer.Option(
    "--openai-model", help="model name the OpenAI-compatible server serves (default: the "
                           "first it lists)")]
OpenAIKeyOpt = Annotated[str | None, typer.Option(
    "--openai-api-key", help="API key of the OpenAI-compatible server (better: "
                             "VIDGROUND_OPENAI_API_KEY, not seen in the process list)")]

#: API option names -> the flags that set them, so messages name what a CLI user typed
_FLAGS = {"output_format": "--format", "frame_sampling_rate": "--fps",
          "max_frames": "--max-frames", "max_frames_per_call": "--max-frames-per-call",
          "return_reasoning": "--reasoning",
          "all_occurrences": "--all", "snap_to_keyframes": "--snap-keyframes",
          "split_phases": "--split-phases", "max_refine_calls": "--max-refine-calls",
          "time_range": "--from/--to", "use_shots": "--shots"}


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment with the flags given; a bad value names its flag."""
    from pydantic import ValidationError

    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "setting"
            where = (f"--{name.replace('_', '-')}" if name in values
                     else f"VIDGROUND_{name.upper()}")
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
        raise OptionsError("; ".join(problems)) from None


def _run(action: Callable[[], T], *, as_json: bool = False) -> T:
    """Run ``action`` the way every command does (:func:`vidground.cli_support.run_action`)."""
    return run_action(action, as_json=as_json)


def _flag_names(message: str) -> str:
    """``message`` with API option names replaced by the CLI flags that set them."""
    import re

    for key, flag in _FLAGS.items():
        message = re.sub(rf"(?<![\w-]){key}(?!\w)", flag, message)
    return message


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


def _time_range(start: str | None, end: str | None, video: Path) -> list[float] | None:
    """``--from``/``--to`` as the ``time_range`` option (seconds or HH:MM:SS.sss); a missing
    ``--to`` is the video's end, a missing ``--from`` its start."""
    from .timecode import parse_timecode

    if start is None and end is None:
        return None
    bounds: list[float] = []
    for flag, value in (("--from", start), ("--to", end)):
        if value is None:
            from .video.probe import probe

            bounds.append(0.0 if flag == "--from" else probe(video).duration)
            continue
        try:
            bounds.append(parse_timecode(value))
        except ValueError as exc:
            raise OptionsError(f"{flag}: {exc}") from None
    return bounds


@app.command()
def locate(
    video: Annotated[Path, typer.Argument(help="the video file")],
    query: Annotated[str, typer.Argument(help="what to find, in plain language")],
    as_json: Annotated[bool, typer.Option("--json", help="print the API response object")] = False,
    fps: Annotated[str, typer.Option("--fps", help="frames per second to sample, or 'adaptive'")
                   ] = "2",
    max_frames: Annotated[int, typer.Option(
        "--max-frames", help="most frames shown for the question, shared by its windows (a "
                             "longer video is sampled at a lower rate)")] = 768,
    max_frames_per_call: Annotated[int | None, typer.Option(
        "--max-frames-per-call", help="most frames one model call sees (default: what fits "
                                      "the context and the backend)")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help=f"time format: {', '.join(OUTPUT_FORMATS)} (frames: the first frame "
                         "of the span, and the first frame after it: the end is exclusive)")
    ] = "HH:MM:SS.sss",
    reasoning: Annotated[bool, typer.Option(help="ask for the model's reasoning")] = True,
    all_occurrences: Annotated[bool, typer.Option("--all", help="every occurrence")] = False,
    refine: Annotated[bool, typer.Option(help="re-ask around boundaries")] = True,
    verify: Annotated[bool, typer.Option(
        help="re-ask whether each span shows the event (its score); drop those that fail")
    ] = True,
    split_phases: Annotated[bool, typer.Option(
        help="one labelled span per phase of a question about an action's phases")] = True,
    max_refine_calls: Annotated[int, typer.Option(
        "--max-refine-calls", help="most extra model calls for --refine and --verify, per "
                                   "span")] = 8,
    snap_keyframes: Annotated[bool, typer.Option(
        help="sample keyframes when every sampling interval holds one (much faster)")] = True,
    structured: Annotated[bool | None, typer.Option(
        "--structured/--no-structured", help="ask for JSON answers held to a schema "
        "(response_format / xgrammar); env VIDGROUND_STRUCTURED_OUTPUT")] = None,
    range_from: Annotated[str | None, typer.Option(
        "--from", help="look only from this time on (seconds or HH:MM:SS.sss); times "
                       "printed stay whole-video times")] = None,
    range_to: Annotated[str | None, typer.Option(
        "--to", help="look only before this time (seconds or HH:MM:SS.sss)")] = None,
    use_shots: Annotated[bool | None, typer.Option(
        "--shots/--no-shots", help="shot changes place windows and snap boundaries to hard "
        "cuts; default: only when already detected (vidground shots VIDEO); --shots detects "
        "them (TransNetV2, slow on a CPU)")] = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    model_source: ModelSourceOpt = None,
    dtype: DtypeOpt = None,
    adapter: Annotated[str | None, typer.Option(
        "--adapter", help="local backend: a `vidground finetune` adapter folder (or merged "
                          "checkpoint); env VIDGROUND_ADAPTER")] = None,
    openai_base_url: BaseUrlOpt = None,
    openai_model: OpenAIModelOpt = None,
    openai_api_key: OpenAIKeyOpt = None,
    device: DeviceOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
    export: ExportOpt = None,
    evidence: EvidenceOpt = None,
    relink: RelinkOpt = None,
) -> None:
    """Find when QUERY happens in VIDEO and print the time span(s), answer and reasoning."""
    from .grounding import Grounder
    from .options import LocateOptions

    def work() -> None:
        try:
            options = LocateOptions.from_mapping({
                "frame_sampling_rate": _parse_rate(fps), "max_frames": max_frames,
                "max_frames_per_call": max_frames_per_call,
                "output_format": output_format, "return_reasoning": reasoning,
                "all_occurrences": all_occurrences, "refine": refine, "verify": verify,
                "split_phases": split_phases, "max_refine_calls": max_refine_calls,
                "snap_to_keyframes": snap_keyframes, "structured_output": structured,
                "time_range": _time_range(range_from, range_to, video),
                "use_shots": use_shots,
            })
        except OptionsError as exc:
            raise OptionsError(_flag_names(exc.message)) from None
        settings = _settings(backend=backend, model=model, openai_base_url=openai_base_url,
                             device=device, adapter=adapter, model_source=model_source,
                             dtype=dtype, openai_model=openai_model,
                             openai_api_key=openai_api_key)
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

            write_outputs(Result.from_grounding(result), export, evidence, relink)

    _run(work, as_json=as_json)


def _print_grounding(result: Any) -> None:
    """Spans, then the answer (stating the final times) and the reasoning; model text is
    escaped, so brackets in it are printed as written."""
    if result.spans:
        for span in result.spans:
            label = f"  ({escape(span.label)})" if span.label else ""
            stdout.print(f"{result.format(span.start)} - {result.format(span.end)}{label}")
    else:
        stdout.print("not found: the model did not place the event in this video")
    stdout.print(f"\nanswer: {escape(result.answer)}")
    if result.reasoning:
        stdout.print(f"reasoning: {escape(result.reasoning)}")
    t = result.timings
    stderr.print(f"[dim]{escape(result.model)} · {int(t.get('frames', 0))} frames · decode "
                 f"{t.get('decode_s', 0):.2f}s · model {t.get('model_s', 0):.2f}s[/]")
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}")


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
        stdout.print(f"{escape(str(facts.path))}\n  duration   {format_time(facts.duration)}"
                     f" ({facts.duration:.3f} s)\n  frames     {facts.frame_count} at "
                     f"{facts.fps:.3f} fps\n  size       {facts.width}x{facts.height}"
                     f" (rotation {facts.rotation})\n  codec      {facts.codec} in "
                     f"{facts.container}\n  start time {facts.start_time:.3f} s\n"
                     f"  audio      {'yes' if facts.has_audio else 'no'}")

    _run(work, as_json=as_json)


@app.command()
def doctor(
    backend: BackendOpt = None,
    model: ModelOpt = None,
    model_source: ModelSourceOpt = None,
    device: DeviceOpt = None,
    openai_base_url: BaseUrlOpt = None,
    openai_model: OpenAIModelOpt = None,
    openai_api_key: OpenAIKeyOpt = None,
) -> None:
    """Check that the model backend works: reachable, model present, accepts images, latency."""
    from .doctor import check_backend

    def work() -> bool:
        checks = check_backend(_settings(
            backend=backend, model=model, model_source=model_source, device=device,
            openai_base_url=openai_base_url, openai_model=openai_model,
            openai_api_key=openai_api_key))
        colours = {"ok": "green", "SKIP": "yellow", "FAIL": "red"}
        for check in checks:
            label = check.label
            latency = f" ({check.latency_ms:.0f} ms)" if check.latency_ms is not None else ""
            stdout.print(f"[{colours[label]}]{label}[/]  {escape(check.name)}{latency}: "
                         f"{escape(check.detail)}")
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
    allowed_hosts: Annotated[str | None, typer.Option(
        help="comma-separated Host names served besides loopback and the bind address "
             "('*': any, behind a proxy)")] = None,
    max_upload_mb: Annotated[int | None, typer.Option(help="largest upload (default 2048)")
                             ] = None,
    upload_retention_hours: Annotated[float | None, typer.Option(
        help="delete uploads unused for this long (default 168; 0 keeps them)")] = None,
    preload: Annotated[bool, typer.Option(help="load the model at start")] = False,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    model_source: ModelSourceOpt = None,
    dtype: DtypeOpt = None,
    openai_base_url: BaseUrlOpt = None,
    openai_model: OpenAIModelOpt = None,
    openai_api_key: OpenAIKeyOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Serve the web page and the REST API (default http://127.0.0.1:7860)."""
    from .server.app import run_server

    settings = _run(lambda: _settings(
        host=host, port=port, media_root=media_root, data_dir=data_dir, api_key=api_key,
        allowed_hosts=allowed_hosts, max_upload_mb=max_upload_mb,
        upload_retention_hours=upload_retention_hours,
        preload_model=preload or None, backend=backend, model=model, model_source=model_source,
        dtype=dtype, openai_base_url=openai_base_url, openai_model=openai_model,
        openai_api_key=openai_api_key, device=device))
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
    model_source: ModelSourceOpt = None,
    dtype: DtypeOpt = None,
    openai_base_url: BaseUrlOpt = None,
    openai_model: OpenAIModelOpt = None,
    openai_api_key: OpenAIKeyOpt = None,
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
        preload_model=preload, backend=backend, model=model, model_source=model_source,
        dtype=dtype, openai_base_url=openai_base_url, openai_model=openai_model,
        openai_api_key=openai_api_key, device=device))
    _run(lambda: run_worker(settings, drain_s=drain_s))


cache_app = typer.Typer(help="The disk cache of decoded frames and visual features.",
                        rich_markup_mode=None,
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
        stdout.print(f"{escape(str(facts['dir']))}  ({state})\n  {facts['entries']} entries, "
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
        settings = _settings(cache_dir=cache_dir)
        stdout.print(escape(cache.describe_clear(cache.clear_plan(settings, age))))
        count, size = cache.clear(settings, age)
        stdout.print(f"deleted {count} entries ({size / 1e6:.1f} MB)")

    _run(work)


# `vidground eval` (benchmarks): its module imports only Typer and Rich until a command runs.
from .evaluation.cli import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

# `vidground finetune` (LoRA/QLoRA, docs/finetune.md): imports only Typer and Rich until it runs.
from .finetune.cli import finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")

# `vidground text`, `shots`, `speech`: on-screen text, shot changes and speech with small CPU
# models (docs/perception.md); imported lazily inside each command.
from .perception.cli import register as _register_perception  # noqa: E402

_register_perception(app)

# `vidground batch` (bulk runs on Ray Data, docs/scaling-out.md): imports Typer and Rich only
# until it runs.
from .batch.cli import batch as _batch  # noqa: E402

app.command("batch")(_batch)

# `vidground watch` (live cameras and streams: docs/live.md): imports Typer and Rich only until
# it runs.
from .live.cli import register as _register_live  # noqa: E402

_register_live(app)

# `vidground index` and `vidground search` (a library's search index: docs/search.md).
from .search.cli import register as _register_search  # noqa: E402

_register_search(app)


# `vidground export`, `cut` and `describe` (results people can use: docs/outputs.md).
from .outputs.cli import register as _register_outputs  # noqa: E402

_register_outputs(app, _run, _settings)


def main() -> None:
    """Console entry point: the Typer app, with flags shown without a ``<bool>`` type and
    usage errors of a ``--json`` command as JSON on stdout."""
    command = typer.main.get_command(app)
    _plain_flags(command)
    try:
        code = command.main(prog_name="vidground", standalone_mode=False)
    except _USAGE_ERROR as exc:
        if "--json" in sys.argv[1:]:
            print(json.dumps({"error": {"code": "usage_error", "message": exc.format_message()}},
                             ensure_ascii=False))
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        stderr.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


#: Click's base exception for bad command lines, as Typer raises it (Typer may bundle Click)
_USAGE_ERROR = cast("type[ClickException]", next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))


def _plain_flags(command: Any) -> None:
    """No type column for on/off flags in ``--help`` (``--json <bool>`` says nothing)."""
    help_option = command.get_help_option(typer.Context(
        command, help_option_names=["-h", "--help"]))  # made once and kept by Click
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


if __name__ == "__main__":
    main()
