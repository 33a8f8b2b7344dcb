"""The files made from results — exact clips and evidence frames — in output folders under
``<data_dir>/outputs/<32 hex>/`` (deleted a day after they were made), with the URLs that serve
them (``GET /api/v1/outputs/{id}/{name}``). Used by the outputs routes and by the service for
an inference request's ``outputs: {clips, evidence}``."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any, Literal

from ..timecode import Span
from .ids import OUTPUT_ID_RE

if TYPE_CHECKING:
    from .service import Service

#: Clips and evidence encode and decode on the CPU: at most this many requests at once.
HEAVY_AT_ONCE = 2
#: Output folders older than this are deleted (checked whenever a new one is made).
OUTPUT_RETENTION_S = 24 * 3600.0
_heavy = threading.BoundedSemaphore(HEAVY_AT_ONCE)


def outputs_dir(svc: Service) -> FilePath:
    return FilePath(svc.data_dir) / "outputs"


def new_output(svc: Service) -> tuple[str, FilePath]:
    """A fresh output folder (older ones past ``OUTPUT_RETENTION_S`` are deleted first)."""
    sweep_outputs(outputs_dir(svc), OUTPUT_RETENTION_S)
    output_id = secrets.token_hex(16)
    folder = outputs_dir(svc) / output_id
    folder.mkdir(parents=True, exist_ok=False)
    return output_id, folder


def sweep_outputs(root: FilePath, max_age_s: float) -> int:
    """Delete output folders under ``root`` last changed more than ``max_age_s`` ago."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - max_age_s
    removed = 0
    for folder in root.iterdir():
        try:
            if folder.is_dir() and OUTPUT_ID_RE.fullmatch(folder.name) \
                    and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def output_url(output_id: str, path: FilePath) -> str:
    return f"/api/v1/outputs/{output_id}/{path.name}"


def make_evidence(svc: Service, video: FilePath, spans: list[Span], title: str | None
                  ) -> dict[str, Any]:
    """Evidence JPEGs and a contact sheet of ``spans`` in a new output folder, with URLs."""
    from ..outputs.evidence import write_evidence

    output_id, folder = new_output(svc)
    with _heavy:
        frames, sheet = write_evidence(video, spans, folder, title=title)
    return {"output_id": output_id,
            "frames": [f.to_dict() | {"path": None, "url": output_url(output_id, f.path)}
                       for f in frames if f.path is not None],
            "contact_sheet": output_url(output_id, sheet) if sheet else None}


def make_clips(svc: Service, video: FilePath, spans: list[Span], *, pad: float = 0.0,
               mode: Literal["exact", "fast"] = "exact") -> dict[str, Any]:
    """One clip per span in a new output folder, with URLs."""
    from ..outputs.clips import cut_many

    output_id, folder = new_output(svc)
    with _heavy:
        clips = cut_many(video, spans, folder, pad=pad, mode=mode, stem="clip")
    return {"output_id": output_id,
            "clips": [c.to_dict() | {"path": None, "url": output_url(output_id, c.path)}
                      for c in clips]}


def attach_outputs(svc: Service, response: dict[str, Any], video: FilePath, *,
                   clips: bool = False, evidence: bool = False) -> dict[str, Any]:
    """``response`` (an inference response) with ``clips`` and/or ``evidence`` links added
    for its segments (what an inference option ``clips: true`` would return)."""
    spans = [Span(s["start"], s["end"], s.get("label")) for s in response.get("segments", [])]
    out = dict(response)
    if clips:
        out["clips"] = make_clips(svc, video, spans)["clips"] if spans else []
    if evidence:
        out["evidence"] = (make_evidence(svc, video, spans, None) if spans
                           else {"frames": [], "contact_sheet": None})
    return out
