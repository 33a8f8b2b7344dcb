"""``vidground eval``: run a benchmark, or score a predictions file. A thin shell over
:mod:`vidground.evaluation`; imports only Typer and Rich until a command runs.

``vidground eval DATASET ...`` is short for ``vidground eval run DATASET ...``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..cli_support import command_group, eta_bar, run_action, stderr, stdout

if TYPE_CHECKING:
    from .runner import RunProgress

T = TypeVar("T")


eval_app = command_group(
    "eval",
    "Score vidground on Charades-STA, TimeLens-Bench, ActivityNet Captions, QVHighlights "
    "or your own JSONL, with the reference metrics. 'vidground eval DATASET ...' runs; "
    "'vidground eval score PREDICTIONS --annotations FILE' only scores.")


def _run(action: Callable[[], T]) -> T:
    return run_action(action, interrupted="interrupted: the answers so far are kept; run the "
                      "same command to go on")


@eval_app.command("run")
def run_command(
    dataset: Annotated[str, typer.Argument(
        help="charades-sta, timelens (charades-/activitynet-/qvhighlights-timelens), "
             "activitynet, qvhighlights or jsonl")],
    annotations: Annotated[Path, typer.Option("--annotations", "-a",
                                              help="the annotation file")],
    videos: Annotated[Path, typer.Option("--videos", help="folder holding the videos")],
    durations: Annotated[Path | None, typer.Option(
        help="durations.json {vid: seconds} or a CSV with id,length (Charades)")] = None,
    video_ext: Annotated[str, typer.Option(
        help="extensions to try after each video id, in order")
                         ] = "mp4,mkv,webm,avi,mov,m4v,mpg,ts,flv",
    recursive: Annotated[bool, typer.Option(help="look for videos in sub-folders too")
                         ] = False,
    allow_outside_videos: Annotated[bool, typer.Option(
        help="let annotations name videos outside --videos (absolute paths, '..')")] = False,
    limit: Annotated[int | None, typer.Option(help="evaluate N samples drawn at random")
                     ] = None,
    seed: Annotated[int, typer.Option(help="seed of the --limit draw")] = 0,
    out: Annotated[Path | None, typer.Option(
        help="folder for predictions and report.json "
             "(default vidground-eval/<dataset>-<annotation file>-<model>)")] = None,
    protocol: Annotated[str, typer.Option(
        help="vidground (our pipeline with the locate options), timelens (TimeLens' "
             "evaluation script as of 2026-02-02) or timelens-legacy (its 2025-12 release)")
                   ] = "vidground",
    grid: Annotated[list[str] | None, typer.Option(
        help="KEY=V1,V2: one run per combination, e.g. --grid frame_sampling_rate=1,2,adaptive "
             "--grid refine=true,false --grid protocol=timelens,vidground")] = None,
    metrics: Annotated[str | None, typer.Option(
        help="tables to print: timelens,videomind,qvhighlights (default: per dataset)")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="samples in flight (default: the backend's max concurrency; 1 locally)")] = None,
    overwrite: Annotated[bool, typer.Option(help="discard earlier answers instead of resuming")
                         ] = False,
    fps: Annotated[str | None, typer.Option("--fps", help="frames per second, or 'adaptive'")
                   ] = None,
    max_frames: Annotated[int | None, typer.Option(help="most frames per model call")] = None,
    refine: Annotated[bool | None, typer.Option(help="re-ask around boundaries")] = None,
    verify: Annotated[bool | None, typer.Option(help="yes/no re-ask that may drop spans")
                      ] = None,
    all_occurrences: Annotated[bool, typer.Option("--all", help="every occurrence")] = False,
    option: Annotated[list[str] | None, typer.Option(
        "--set", help="any locate option, KEY=VALUE (e.g. --set max_refine_calls=4)")] = None,
    backend: Annotated[str | None, typer.Option(help="transformers or openai")] = None,
    model: Annotated[str | None, typer.Option(help="model id or local path")] = None,
    openai_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server")
                               ] = None,
    openai_model: Annotated[str | None, typer.Option(help="model name on that server")
                            ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1, mps")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print report.json to stdout")
                       ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Run a model over a benchmark and print the scores (resumable: run it again to go on)."""

    def work() -> None:
        from ..config import Settings
        from ..grounding import Grounder
        from .evaluate import evaluate
        from .grid import parse_value, plan_runs
        from .loaders import dataset_kind, load_dataset

        kind = dataset_kind(dataset)
        base: dict[str, Any] = {}
        if fps is not None:
            base["frame_sampling_rate"] = fps if fps == "adaptive" else parse_value(fps)
        for key, value in (("max_frames", max_frames), ("refine", refine), ("verify", verify)):
            if value is not None:
                base[key] = value
        if all_occurrences:
            base["all_occurrences"] = True
        for item in option or []:
            key, sep, text = item.partition("=")
            if not sep:
                from .records import EvaluationError

                raise EvaluationError(f"--set {item!r}: write KEY=VALUE")
            base[key.strip().replace("-", "_")] = parse_value(text)
        runs = plan_runs(grid or [], protocol=protocol, base=base)
        if base and all(r.protocol.name.startswith("timelens") for r in runs):
            stderr.print("[yellow]note:[/] locate options do not apply to the timelens "
                         "protocol (it has fixed settings of its own)", highlight=False)
        # Settings' text fields, by name (a **dict of str cannot be matched to them by type)
        overrides: dict[str, Any] = {
            "backend": backend, "model": model, "openai_base_url": openai_base_url,
            "openai_model": openai_model, "device": device}
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        settings = _reference_precision(settings, runs)
        data = load_dataset(kind, annotations, videos, durations=durations,
                            extensions=[e.strip() for e in video_ext.split(",") if e.strip()],
                            recursive=recursive, allow_outside=allow_outside_videos)
        grounder = Grounder(settings=settings)
        _say_missing(data)
        model_name = grounder.backend.model_name
        folder = out or Path("vidground-eval") / _slug(f"{kind}-{annotations.stem}-{model_name}")
        workers = concurrency or int(grounder.backend.max_concurrency or 1)
        stderr.print(f"[dim]{len(runs)} run(s) of {min(limit or data.total, len(data.samples))}"
                     f" samples with {model_name} ({settings.backend}), {workers} in flight; "
                     f"answers in {folder}[/]", highlight=False)
        with _progress(not quiet) as progress:
            report = evaluate(data, grounder, runs, folder, limit=limit, seed=seed,
                              concurrency=workers, overwrite=overwrite, progress=progress,
                              config={"command": "run", "protocol_default": protocol,
                                      "grid": list(grid or []), "locate_options": base})
        _show(report, metrics, kind, as_json, folder / "report.json")

    _run(work)


@eval_app.command("score")
def score_command(
    predictions: Annotated[Path, typer.Argument(help="a predictions JSONL (ours or another "
                                                     "tool's: id/qid or video+query, pred)")],
    annotations: Annotated[Path, typer.Option("--annotations", "-a",
                                              help="the annotation file")],
    dataset: Annotated[str | None, typer.Option(
        help="the annotation format (default: from the predictions file or the annotations)")
                       ] = None,
    durations: Annotated[Path | None, typer.Option(
        help="durations.json or CSV (VideoMind's protocol clamps to the duration)")] = None,
    metrics: Annotated[str | None, typer.Option(
        help="tables to print: timelens,videomind,qvhighlights (default: per dataset)")] = None,
    report_path: Annotated[Path | None, typer.Option("--report", help="write the JSON report")
                           ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON report to stdout")
                       ] = False,
) -> None:
    """Score an existing predictions file against the annotations; runs no model."""

    def work() -> None:
        from .evaluate import score_predictions
        from .loaders import dataset_kind
        from .report import write_report

        kind = dataset_kind(dataset) if dataset else None
        report = score_predictions(predictions, annotations, dataset=kind, durations=durations)
        _check_durations(report, _chosen(metrics, report["dataset"]))
        unanswered = report["runs"][0]["unanswered"]
        if unanswered:
            stderr.print(f"[yellow]note:[/] {len(unanswered)} of {report['samples_total']} "
                         "annotated samples have no prediction and are not scored "
                         f"(first: {unanswered[0]})", highlight=False)
        if report_path is not None:
            write_report(report_path, report)
        _show(report, metrics, report["dataset"], as_json, report_path)

    _run(work)


def _say_missing(data: Any) -> None:
    if not data.missing:
        return
    first = data.missing[0]
    stderr.print(f"[yellow]skipped {len(data.missing)} of {data.total} samples:[/] their video "
                 f"is not in the video folder (first: {first.video}); the list is in "
                 "report.json under missing_videos", highlight=False)


def _chosen(metrics: str | None, kind: str) -> list[str]:
    """The metric tables asked for (``--metrics``), else the dataset's usual ones."""
    from .metrics import PROTOCOLS
    from .records import EvaluationError
    from .report import DEFAULT_METRICS

    chosen = [m.strip() for m in metrics.split(",")] if metrics else list(DEFAULT_METRICS[kind])
    bad = [m for m in chosen if m not in PROTOCOLS]
    if bad:
        raise EvaluationError(f"--metrics: unknown {bad}; use {', '.join(PROTOCOLS)}")
    return chosen


def _check_durations(report: dict[str, Any], chosen: list[str]) -> None:
    """VideoMind clamps to each video's duration: refuse its table when some sample has none
    (no annotated duration, no --durations entry, none in the prediction line); say so when
    the table is not shown."""
    from .records import EvaluationError
    from .report import missing_durations

    missing, scored = missing_durations(report)
    if not missing:
        return
    first = next((row["video"] for run in report["runs"] for row in run["samples"]
                  if row["duration"] is None and row["predicted_duration"] is None), "?")
    what = (f"{missing} of {scored} samples have no video duration (first: {first}): neither "
            "the annotations, --durations nor the prediction lines give one")
    fix = ("pass --durations (VideoMind's durations.json {vid: seconds}, or Charades' "
           "Charades_v1_test.csv), add \"duration\" to each prediction line")
    if "videomind" in chosen:
        raise EvaluationError(f"the videomind metrics need each video's duration, and {what}. "
                              f"To score: {fix}, or leave the table out "
                              "(--metrics timelens)")
    stderr.print(escape(f"note: {what}; the report's videomind scores count them as misses "
                        f"({fix} to score them)"), highlight=False)


def _reference_precision(settings: Any, runs: list[Any]) -> Any:
    """TimeLens runs its models in bfloat16 with flash attention 2: give the local backend the
    same when a run uses a TimeLens protocol and the user chose neither."""
    import importlib.util

    from .protocols import TimeLensProtocol

    if settings.backend != "transformers" or not any(
            isinstance(r.protocol, TimeLensProtocol) for r in runs):
        return settings
    changes: dict[str, Any] = {}
    if settings.dtype == "auto":
        changes["dtype"] = "bfloat16"
    if settings.attn_implementation is None:
        if importlib.util.find_spec("flash_attn") is not None:
            changes["attn_implementation"] = "flash_attention_2"
        else:
            stderr.print("[yellow]note:[/] TimeLens evaluates with flash attention 2, which is "
                         "not installed here (pip install flash-attn); answers may differ in "
                         "a few samples", highlight=False)
    return settings.model_copy(update=changes) if changes else settings


def _show(report: dict[str, Any], metrics: str | None, kind: str, as_json: bool,
          path: Path | None) -> None:
    from .report import tables

    chosen = _chosen(metrics, kind)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    # a pipe or a file gets wide lines: run names are not wrapped into the score columns
    console = stdout if stdout.is_terminal else Console(highlight=False, width=200)
    for table in tables(report, chosen):
        console.print(table)
    if "qvhighlights" in chosen:
        _say_no_window(report)
    errors = sum(r["errors"] for r in report["runs"])
    if errors:
        stderr.print(f"[yellow]{errors} answer(s) failed (counted as misses); a re-run asks "
                     "them again[/]", highlight=False)
    if path is not None:
        stderr.print(f"[dim]report: {path}[/]", highlight=False)


def _say_no_window(report: dict[str, Any]) -> None:
    """Queries without a predicted window: moment_detr leaves them out of mAP."""
    for run in report["runs"]:
        empty = int(run["scores"]["qvhighlights"].get("no_window", 0))
        if empty:
            stderr.print(escape(f"note: [{run['name']}] {empty} queries have no predicted "
                                "window: left out of mAP as moment_detr does (its R1 cannot "
                                "score them; here they are R1 misses, and mAP_strict counts "
                                "them as AP 0)"), highlight=False)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[RunProgress], None]]:
    """A Rich bar with ETA on a terminal; otherwise a line at every tenth of the run."""
    if not enabled:
        yield lambda p: None
        return
    if stderr.is_terminal:
        with eta_bar() as bar:
            tasks: dict[str, Any] = {}

            def update(p: RunProgress) -> None:
                if p.run not in tasks:
                    tasks[p.run] = bar.add_task(p.run, total=p.total)
                bar.update(tasks[p.run], completed=p.done, total=p.total)

            yield update
        return
    last: dict[str, int] = {}
    started = time.monotonic()

    def lines(p: RunProgress) -> None:
        step = max(1, p.total // 10)
        if p.done == p.total or p.done - last.get(p.run, -step) >= step:
            last[p.run] = p.done
            eta = f", about {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            stderr.print(escape(f"[{p.run}] {p.done}/{p.total} samples ({p.resumed} resumed, "
                                f"{p.failed} failed), {time.monotonic() - started:.0f} s{eta}"),
                         highlight=False)

    yield lines


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "run"
