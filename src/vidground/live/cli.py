"""``vidground watch SOURCE "QUESTION"``: watch a live source and say when the event happens.

With ``--json`` one JSON line per event (``started`` / ``ended``) on stdout; status lines
(connected, dropped, reconnecting, the final figures) go to stderr. Register on the main app
with :func:`register`, or use :data:`watch_app` alone. Heavy modules load when the command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..cli_support import run_action, stderr, stdout

watch_app = typer.Typer(help="Watch a live camera or stream.", rich_markup_mode=None,
                        add_completion=False, pretty_exceptions_enable=False)


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(event, ensure_ascii=False), flush=True)
        return
    if event["event"] == "started":
        stdout.print(f"started  {event['start']:.3f}s  {escape(event['query'])}")
    else:
        clip = f"  clip {escape(str(event['clip']))}" if event.get("clip") else ""
        stdout.print(f"ended    {event['start']:.3f}s - {event['end']:.3f}s{clip}")
    sys.stdout.flush()


def _status(kind: str, detail: dict[str, Any]) -> None:
    if kind == "stopped":
        stderr.print(f"[dim]stopped: {escape(json.dumps(detail.get('stats', {})))}[/]")
    else:
        stderr.print(f"[dim]{kind}: {escape(str(detail.get('detail', '')))}[/]")


def watch_command(
    source: Annotated[str, typer.Argument(help="rtsp://, http(s)://...m3u8, an HTTP stream, "
                                               "/dev/video0 or a growing file")],
    query: Annotated[str, typer.Argument(help="what to watch for, in plain language")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per event")] = False,
    webhook: Annotated[list[str] | None, typer.Option(
        "--webhook", help="POST each event here (repeatable); signed with "
                          "VIDGROUND_WEBHOOK_SECRET")] = None,
    mqtt: Annotated[list[str] | None, typer.Option(
        "--mqtt", help="publish each event to mqtt://HOST:PORT/TOPIC (repeatable)")] = None,
    window: Annotated[float, typer.Option("--window", help="seconds one model call sees")
                      ] = 4.0,
    every: Annotated[float, typer.Option("--every", help="seconds between windows")] = 1.0,
    sample_fps: Annotated[float, typer.Option("--fps", help="frames per second shown to the "
                                                            "model")] = 2.0,
    max_interval: Annotated[float, typer.Option(
        "--max-interval", help="ask the model at least this often (s) when nothing moves")
    ] = 10.0,
    gate: Annotated[bool, typer.Option(help="ask only when the picture changed")] = True,
    calls_per_minute: Annotated[int, typer.Option(
        "--calls-per-minute", help="most model calls per minute for this stream")] = 30,
    buffer: Annotated[float, typer.Option("--buffer", help="seconds of frames kept for "
                                                           "exact ends and clips")] = 30.0,
    clips: Annotated[Path | None, typer.Option("--clips", help="folder for event clips")
                     ] = None,
    store: Annotated[Path | None, typer.Option(
        "--store", help="append every event to this JSONL file")] = None,
    dead_letter: Annotated[Path | None, typer.Option(
        "--dead-letter", help="JSONL file of events no receiver took")] = None,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="host, address or network the source/webhook may name (adds to "
                        "VIDGROUND_STREAM_ALLOW); repeatable")] = None,
    from_start: Annotated[bool, typer.Option(
        "--from-start", help="read an HLS event playlist from its first segment")] = False,
    max_seconds: Annotated[float | None, typer.Option(
        "--max-seconds", help="stop after this much stream time")] = None,
    max_events: Annotated[int | None, typer.Option(
        "--max-events", help="stop after this many ended events")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="transformers or openai")
                       ] = None,
    model: Annotated[str | None, typer.Option("--model", help="model id or local path")] = None,
    openai_base_url: Annotated[str | None, typer.Option(
        "--openai-base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    openai_model: Annotated[str | None, typer.Option(
        "--openai-model", help="model name the server serves")] = None,
) -> None:
    """Watch SOURCE and print an event when QUERY starts and when it ends."""

    def work() -> None:
        run_watch(source, query, as_json=as_json, webhooks=webhook or [], mqtts=mqtt or [],
                  window=window, every=every, sample_fps=sample_fps, max_interval=max_interval,
                  gate=gate, calls_per_minute=calls_per_minute, buffer=buffer, clips=clips,
                  store=store, dead_letter=dead_letter, allow=allow or [],
                  from_start=from_start, max_seconds=max_seconds, max_events=max_events,
                  settings_overrides={"backend": backend, "model": model,
                                      "openai_base_url": openai_base_url,
                                      "openai_model": openai_model})

    run_action(work, as_json=as_json)


watch_app.command("watch")(watch_command)


def run_watch(source: str, query: str, *, as_json: bool = False, webhooks: list[str],
              mqtts: list[str], window: float = 4.0, every: float = 1.0,
              sample_fps: float = 2.0, max_interval: float = 10.0, gate: bool = True,
              calls_per_minute: int = 30, buffer: float = 30.0, clips: Path | None = None,
              store: Path | None = None, dead_letter: Path | None = None,
              allow: list[str] | None = None, from_start: bool = False,
              max_seconds: float | None = None, max_events: int | None = None,
              settings_overrides: dict[str, Any] | None = None, backend: Any = None,
              on_event: Callable[[dict[str, Any]], None] | None = None,
              quiet: bool = False) -> Any:
    """What ``vidground watch`` does (the library's way in too): returns the WatchStats.
    ``backend``: a ready backend instead of one built from ``settings_overrides``;
    ``on_event``: also told every event; ``quiet``: nothing printed."""
    import os

    from ..config import Settings
    from ..errors import OptionsError, QueryError
    from .alerts import AlertHub, JsonlStore, MqttSink, WebhookSink
    from .sources import AllowList, LiveSource, resolve_source
    from .watcher import WatchConfig, Watcher

    if not query.strip():
        raise QueryError("the question is empty; say what to watch for")
    for name, value in (("--window", window), ("--every", every), ("--fps", sample_fps),
                        ("--buffer", buffer), ("--max-interval", max_interval)):
        if not value > 0:
            raise OptionsError(f"{name} must be a positive number of seconds, got {value}")
    if calls_per_minute < 1:
        raise OptionsError("--calls-per-minute must be at least 1")
    allowed = AllowList.from_env(allow or [])
    spec = resolve_source(source, allowed, from_start=from_start)
    if backend is None:
        from ..grounding import Grounder

        values = {k: v for k, v in (settings_overrides or {}).items() if v is not None}
        backend = Grounder(settings=Settings(**values)).backend
    secret = os.environ.get("VIDGROUND_WEBHOOK_SECRET")
    sinks: list[Any] = [JsonlStore(store)] if store else []
    sinks += [WebhookSink(url, secret=secret, dead_letter=dead_letter, allow=allowed)
              for url in webhooks]
    sinks += [MqttSink(url, dead_letter=dead_letter, allow=allowed) for url in mqtts]
    hub = AlertHub(sinks)

    def emit(event: dict[str, Any]) -> None:
        if not quiet:
            _print_event(event, as_json)
        hub.send(event)
        if on_event is not None:
            on_event(event)

    config = WatchConfig(window_s=window, every_s=every, sample_fps=sample_fps,
                         max_interval_s=max_interval, gate=gate,
                         max_calls_per_minute=calls_per_minute, buffer_s=buffer,
                         clip_dir=clips)
    watcher = Watcher(LiveSource(spec), backend, query, config=config, on_event=emit,
                      on_status=None if quiet else _status)
    try:
        return watcher.run(max_stream_s=max_seconds, max_events=max_events)
    finally:
        hub.close()


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the main ``vidground`` app."""
    app.command("watch")(watch_command)
