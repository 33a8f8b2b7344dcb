"""``vidground batch``: a thin shell over :mod:`.pipeline`; imports Typer and Rich only until
the command runs (Ray is imported then)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..cli_support import run_action, stderr, stdout

batch_app = typer.Typer(add_completion=False, no_args_is_help=True)


@batch_app.command()
def batch(
    source: Annotated[Path, typer.Argument(
        help="a manifest (.jsonl, .csv, .parquet: columns video, query[, options]) or a "
             "folder of videos (with --query)")],
    query: Annotated[str | None, typer.Option(
        "--query", help="the question to ask about every video of a folder")] = None,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="results folder: results.jsonl, results.parquet, summary.json "
                            "(run again with the same folder to resume)")] = Path("batch-out"),
    options: Annotated[str | None, typer.Option(
        "--options", help='default options for every row, a JSON object (the API\'s '
                          'options), e.g. \'{"refine": false}\'')] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="an existing Ray cluster (ray://host:10001 or host:6379; "
                          "'auto'); default: start a local Ray")] = None,
    num_cpus: Annotated[int | None, typer.Option(
        "--num-cpus", help="CPUs of the local Ray (default: all)")] = None,
    actors: Annotated[int | None, typer.Option(
        "--actors", help="locate actors (default: the cluster's CPUs / --actor-cpus)")] = None,
    actor_cpus: Annotated[float, typer.Option(
        "--actor-cpus", help="CPUs each actor reserves (decoding runs there)")] = 1.0,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", help="model requests in flight per actor")] = 4,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="rows per actor call (default: --concurrency)")] = None,
    openai_base_url: Annotated[str | None, typer.Option(
        "--openai-base-url", help="the model server; env VIDGROUND_OPENAI_BASE_URL")] = None,
    openai_model: Annotated[str | None, typer.Option(
        "--openai-model", help="model name on it; env VIDGROUND_OPENAI_MODEL")] = None,
    openai_api_key: Annotated[str | None, typer.Option(
        "--openai-api-key", help="env VIDGROUND_OPENAI_API_KEY")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
) -> None:
    """Ask many questions about many videos on Ray: a manifest, or a folder and one question.
    Every row's result (the API's response object) or error goes to OUT; rows already answered
    there are skipped."""
    from ..config import Settings
    from ..errors import OptionsError, VidgroundError
    from .manifest import read_rows

    def work() -> Any:
        try:
            defaults = json.loads(options) if options else {}
        except json.JSONDecodeError as exc:
            raise OptionsError(f"--options is not JSON: {exc}") from None
        if not isinstance(defaults, dict):
            raise OptionsError("--options must be a JSON object")
        rows = read_rows(source, query, defaults)
        overrides: dict[str, Any] = {k: v for k, v in {
            "openai_base_url": openai_base_url, "openai_model": openai_model,
            "openai_api_key": openai_api_key}.items() if v}
        settings = Settings(**{"backend": "openai", **overrides})
        try:
            from .pipeline import BatchConfig, run_batch
        except ImportError as exc:
            raise VidgroundError(f"vidground batch needs Ray Data ({exc}): pip install "
                                 "'vidground[ray]'") from None

        config = BatchConfig(address=address, num_cpus=num_cpus, actors=actors,
                             actor_cpus=actor_cpus, concurrency=concurrency,
                             batch_size=batch_size)
        return run_batch(rows, settings, out, config, progress=None if quiet else _printer())

    summary = run_action(work, as_json=as_json)
    if as_json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        codes = ", ".join(f"{c} {n}" for c, n in sorted(summary.error_codes.items()))
        stdout.print(f"{summary.total} rows: {summary.ok} answered, {summary.skipped} already "
                     f"done, {summary.errors} failed{f' ({escape(codes)})' if codes else ''} "
                     f"in {summary.wall_s:.1f} s ({summary.rows_per_s:.2f} rows/s)\n"
                     f"results: {escape(summary.out)}/results.jsonl, results.parquet")
    if summary.errors:
        raise typer.Exit(1)


def _printer() -> Any:
    last = [0.0]

    def show(p: Any) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0 and p.done < p.total:
            return
        last[0] = now
        eta = "-" if p.eta_s is None else time.strftime("%H:%M:%S", time.gmtime(p.eta_s))
        stderr.print(f"batch: {p.done}/{p.total} rows ({p.skipped} skipped, {p.errors} "
                     f"failed) · {p.rate:.2f} rows/s · ETA {eta}")

    return show
