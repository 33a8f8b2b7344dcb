"""What every ``vidground`` command group shares (the main CLI, ``eval``, ``finetune``,
``export``/``cut``/``describe``): the consoles, the one way an error reaches the terminal (a
readable line, exit 2; exit 1 for an internal error; 130 on Ctrl-C; with ``as_json`` also a
JSON object on stdout), and a group that runs its ``run`` command by default. A leaf of the
CLI: the command modules import it, never each other."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperGroup

from .errors import VidgroundError

if TYPE_CHECKING:  # the Click that TyperGroup is built on: Typer's own copy since 0.2x
    from typer._click import Context as ClickContext

T = TypeVar("T")

#: progress, errors and hints; never hard-wrapped, so a long command in a message stays whole
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
#: results
stdout = Console(highlight=False, soft_wrap=True)

INTERNAL_HINT = "Run again with VIDGROUND_DEBUG=1 for the traceback, and please report it."


def run_action(action: Callable[[], T], *, as_json: bool = False,
               interrupted: str = "interrupted") -> T:
    """Run ``action``; our errors become a readable message and exit code 2, anything else
    exit code 1 (``VIDGROUND_DEBUG=1`` re-raises it), Ctrl-C prints ``interrupted`` and exits
    130."""
    try:
        return action()
    except VidgroundError as exc:
        fail(exc.code, exc.message, 2, as_json)
    except KeyboardInterrupt:
        fail("interrupted", interrupted, 130, as_json)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if os.environ.get("VIDGROUND_DEBUG"):
            raise
        fail("internal_error", f"{type(exc).__name__}: {exc}", 1, as_json, hint=INTERNAL_HINT)
    raise AssertionError("unreachable")  # pragma: no cover


def fail(code: str, message: str, exit_code: int, as_json: bool = False, hint: str = ""
         ) -> None:
    """Print an error (stderr; with ``as_json`` a JSON object on stdout) and exit."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))
    label = "internal error" if code == "internal_error" else "error"
    text = f"[bold red]{label}:[/] {escape(message)}"
    stderr.print(text + (f"\n{escape(hint)}" if hint else ""))
    raise typer.Exit(exit_code)


class RunByDefault(TyperGroup):
    """A group whose arguments, when they do not start with one of its commands, go to its
    ``run`` command (``vidground eval DATASET ...`` is ``vidground eval run DATASET ...``)."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def command_group(name: str, help: str) -> typer.Typer:
    """A ``vidground NAME`` command group whose plain ``vidground NAME ARGS`` runs its ``run``
    command (``eval``, ``finetune``)."""
    return typer.Typer(name=name, cls=RunByDefault, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, rich_markup_mode=None, help=help)


def eta_bar() -> Progress:
    """A progress bar on stderr: what is running, done/total, time so far and time left."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=stderr)
