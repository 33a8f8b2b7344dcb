"""Reading JSON whose every failure says which file and line to fix.

``json.loads`` fails in three ways besides bad syntax, none of them a ``JSONDecodeError``:
nesting deeper than Python's recursion limit (``RecursionError``), an integer of more than 4300
digits (``ValueError``), and memory. Each becomes an :class:`~.records.EvaluationError` that
names the place.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .records import EvaluationError, Pair


def load_json_text(text: str, where: str) -> Any:
    """``json.loads`` whose every failure is an :class:`EvaluationError` naming ``where``:
    bad syntax, nesting too deep for Python, a number of more than 4300 digits."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg})") from None
    except (RecursionError, ValueError) as exc:
        raise unreadable_json(exc, where) from None


def unreadable_json(exc: BaseException, where: str) -> EvaluationError:
    """The error for JSON that parses but cannot be held: nesting too deep for Python, an
    integer of more than 4300 digits."""
    if isinstance(exc, RecursionError):
        return EvaluationError(f"{where}: the JSON is nested too deeply to read; fix the file")
    return EvaluationError(f"{where}: a value cannot be read ({_short(exc)}); fix the file")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


def number_at(value: Any, where: str) -> float:
    """``value`` as a finite number, or an :class:`EvaluationError` naming ``where``."""
    if isinstance(value, bool):
        raise EvaluationError(f"{where}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EvaluationError(f"{where}: {value!r:.60} is not a number") from None
    if not math.isfinite(number):
        raise EvaluationError(f"{where}: {value!r:.60} is not a finite number")
    return number


def pair_at(value: Any, where: str) -> Pair:
    """``value`` as a ``[start, end]`` pair of finite numbers (extra items ignored)."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise EvaluationError(f"{where}: {value!r:.60} is not a [start, end] pair")
    return (number_at(value[0], where), number_at(value[1], where))
