"""``vidground index PATH...`` and ``vidground search "QUERY"``: register them on the main app
with :func:`register`, or use :data:`search_app` alone (tests do)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..cli_support import eta_bar, run_action, stderr, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def index_cmd(
    paths: Annotated[list[Path], typer.Argument(help="video files and folders (walked)")],
    force: Annotated[bool, typer.Option(
        "--force", help="describe every video again, changed or not")] = False,
    sources: Annotated[str | None, typer.Option(
        "--sources", help="what to index, comma-separated: events, text (on-screen), speech "
                          "(with VIDGROUND_SPEECH_MODEL), shots (default: events, text when "
                          "OCR is installed, speech when a speech model is set)")] = None,
    shots: Annotated[bool, typer.Option(
        "--shots", help="also store shot boundaries (needs vidground[perception])")] = False,
    fps: Annotated[float | None, typer.Option(
        "--fps", help="frames per second describe looks at (default: describe's)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index videos for `vidground search`: unchanged ones are skipped, removed ones dropped;
    stop any time and run it again to resume."""

    def work() -> None:
        from ..config import Settings
        from ..grounding import Grounder
        from .engines import open_store
        from .index import IndexProgress, index_paths
        from .sources import parse_sources

        settings = Settings()
        options: dict[str, Any] = {} if fps is None else {"frame_sampling_rate": fps}
        chosen = parse_sources(sources) + (("shot",) if shots else ())
        with open_store(settings) as store, eta_bar() as bar:
            for warning in store.warnings:
                stderr.print(f"[yellow]warning:[/] {escape(warning)}")
            task = bar.add_task("indexing", total=None)

            def on_progress(p: IndexProgress) -> None:
                name = Path(p.path).name
                bar.update(task, total=p.total, completed=p.done,
                           description=escape(f"{p.status} {name}"[:60]))

            report = index_paths(paths, store=store, grounder=Grounder(settings=settings),
                                 options=options, sources=chosen, force=force,
                                 progress=on_progress)
            counts = store.counts()
        if as_json:
            print(json.dumps({**report.to_dict(), "index": counts}, ensure_ascii=False,
                             indent=2))
            return
        stdout.print(f"indexed {len(report.indexed)}, unchanged {len(report.skipped)}, "
                     f"renamed {len(report.reused)}, removed {len(report.removed)}, failed "
                     f"{len(report.failed)}; the index holds {counts['videos']} videos, "
                     f"{counts['segments']} segments")
        for path, message in report.failed:
            stderr.print(f"[red]failed:[/] {escape(path)}: {escape(message)}")
        for warning in report.warnings:
            stderr.print(f"[yellow]warning:[/] {escape(warning)}")

    run_action(work, as_json=as_json,
               interrupted="interrupted: what was indexed is kept; run the same command again "
                           "to resume")


def search_cmd(
    query: Annotated[str, typer.Argument(help="what to look for (any language)")],
    top: Annotated[int, typer.Option("--top", help="how many moments to show")] = 10,
    within: Annotated[Path | None, typer.Option(
        "--in", help="only videos inside this folder")] = None,
    ground: Annotated[bool, typer.Option(
        "--ground", help="ask the model to confirm each hit and give frame-exact times, "
                         "looking only at the hit ± 2 s (drops the hits it does not find "
                         "there)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Which indexed videos show QUERY, and when: ranked moments with the text that matched."""

    def work() -> None:
        from ..config import Settings
        from ..timecode import format_time
        from .engines import open_store
        from .query import ground_hits, search

        settings = Settings()
        with open_store(settings, check="quick") as store:
            for warning in store.warnings:
                stderr.print(f"[yellow]warning:[/] {escape(warning)}")
            hits = search(store, query, top, within)
        if ground and hits:
            from ..grounding import Grounder

            with stderr.status("asking the model about each hit's neighbourhood") as shown:
                hits = ground_hits(Grounder(settings=settings), hits, query,
                                   progress=lambda e: shown.update(escape(e.message)))
        if as_json:
            print(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]},
                             ensure_ascii=False, indent=2))
            return
        if not hits:
            stdout.print("no indexed video matches; index more with `vidground index PATH`.")
        for hit in hits:
            stdout.print(f"{escape(hit.video)}  {format_time(hit.start)} - "
                         f"{format_time(hit.end)}  ({hit.score:.2f})  [{hit.source}] "
                         f"{escape(hit.text)}")

    run_action(work, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add ``index`` and ``search`` to ``app``."""
    app.command("index")(index_cmd)
    app.command("search")(search_cmd)


#: The two commands as their own app (``python -m`` or tests).
search_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                         rich_markup_mode=None, no_args_is_help=True,
                         help="Index videos and search them.")
register(search_app)
