"""``--grid KEY=V1,V2`` options: every combination becomes one run (one row of the table).

Keys are :class:`~vidground.LocateOptions` fields, or ``protocol`` (``vidground``,
``timelens``, ``timelens-legacy``). The TimeLens protocols have fixed settings of their own, so
combinations that differ only in locate options collapse into one run each.

>>> [r.name for r in plan_runs(["protocol=timelens,vidground", "refine=true,false"])]
['timelens', 'vidground refine=true', 'vidground refine=false']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import OptionsError
from ..options import LocateOptions
from .protocols import PROTOCOL_NAMES, InferenceProtocol, make_protocol
from .records import EvaluationError


@dataclass(frozen=True)
class RunSpec:
    """One run: a display name, a file-safe slug and how samples are put to the model."""

    name: str
    slug: str
    protocol: InferenceProtocol
    changes: tuple[tuple[str, Any], ...] = ()


def parse_value(text: str) -> Any:
    """``true``/``false`` -> bool, ``none`` -> None, numbers -> int/float, else the text."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(low)
    except ValueError:
        return text.strip()


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["refine=true,false"]`` -> ``[("refine", [True, False])]``, keys checked."""
    known = {f.name for f in fields(LocateOptions)} | {"protocol"}
    axes: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if key == "fps":
            key = "frame_sampling_rate"
        if not sep or not values.strip():
            raise EvaluationError(f"--grid {item!r}: write KEY=VALUE1,VALUE2 "
                                  "(e.g. --grid refine=true,false)")
        if key not in known:
            raise EvaluationError(f"--grid {item!r}: unknown key {key!r}; use 'protocol' or a "
                                  f"locate option: {', '.join(sorted(known - {'protocol'}))}")
        if any(k == key for k, _ in axes):
            raise EvaluationError(f"--grid: {key!r} is given twice")
        parsed = [parse_value(v) for v in values.split(",") if v.strip()]
        if key == "protocol":
            bad = [v for v in parsed if v not in PROTOCOL_NAMES]
            if bad:
                raise EvaluationError(f"--grid protocol: unknown {bad}; use "
                                      f"{', '.join(PROTOCOL_NAMES)}")
        axes.append((key, parsed))
    return axes


def plan_runs(grid: Sequence[str] = (), *, protocol: str = "vidground",
              base: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """The runs for ``grid`` (one when empty), each on ``base`` locate options."""
    base = dict(base or {})
    axes = parse_grid(grid)
    keys = [k for k, _ in axes]
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for values in itertools.product(*(v for _, v in axes)):
        combo = dict(zip(keys, values, strict=True))
        name_protocol = str(combo.pop("protocol", protocol))
        changes = tuple(combo.items()) if name_protocol == "vidground" else ()
        try:
            options = LocateOptions.from_mapping({**base, **dict(changes)})
        except OptionsError as exc:
            raise EvaluationError(f"--grid: {exc.message}") from None
        label = " ".join(f"{k}={_show(v)}" for k, v in changes)
        name = f"{name_protocol} {label}".strip()
        if name in seen:
            continue
        seen.add(name)
        runs.append(RunSpec(name, _slug(name), make_protocol(name_protocol, options), changes))
    return runs


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name.replace(" ", "__")).strip("_") or "run"
