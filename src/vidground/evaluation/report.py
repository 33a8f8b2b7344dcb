"""Scores, the JSON report and the Rich table.

The report holds everything needed to trust (or redo) a number: the scores of every metric
protocol, the full configuration (dataset, annotation file and its SHA-256, model, backend,
options, vidground version and git commit, library versions), the skipped samples and, per
sample, the ground truth, the prediction, the model's answer and the IoU.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .metrics import PROTOCOLS, REFERENCES, TABLE_COLUMNS, ProtocolScores, score
from .predictions import parse_raw, timelens_dump_id
from .records import Prediction, Sample

LIBRARIES = ("torch", "torchvision", "transformers", "accelerate", "av", "numpy", "pillow",
             "httpx", "qwen-vl-utils")

#: Metric tables shown by default for each dataset (the JSON report always has all of them).
DEFAULT_METRICS = {
    "charades-sta": ("videomind", "timelens"),
    "timelens": ("timelens",),
    "activitynet": ("videomind", "timelens"),
    "qvhighlights": ("qvhighlights",),
    "jsonl": ("timelens", "videomind"),
}


def pair_up(samples: Sequence[Sample], predictions: Sequence[Prediction]
            ) -> tuple[list[tuple[Sample, Prediction]], list[Sample]]:
    """Each sample with its prediction, and the samples that have none.

    A prediction is found by the sample's id, else by video, query and ground-truth span (how
    TimeLens' dump keys them: ActivityNet repeats sentences with different spans), else by video
    and query. Raw answers (:data:`.predictions.RAW_ANSWER_KEYS`) are parsed here, with the
    sample's duration when the line gives none."""
    by_id = {p.id: p for p in predictions}
    pairs, unanswered = [], []
    for sample in samples:
        pred = by_id.get(sample.id)
        if pred is None and sample.spans:
            pred = by_id.get(timelens_dump_id(sample.video, sample.query, sample.spans[0]))
        if pred is None:
            pred = by_id.get(f"{sample.video}\x00{sample.query}")
        if pred is None:
            unanswered.append(sample)
        else:
            duration = pred.duration if pred.duration is not None else sample.duration
            pairs.append((sample, parse_raw(pred, duration)))
    return pairs, unanswered


def score_all(pairs: Sequence[tuple[Sample, Prediction]], dataset: str | None
              ) -> dict[str, ProtocolScores]:
    """Every metric protocol's scores."""
    return {name: score(name, pairs, dataset=dataset) for name in PROTOCOLS}


def per_sample_rows(pairs: Sequence[tuple[Sample, Prediction]],
                    scores: dict[str, ProtocolScores]) -> list[dict[str, Any]]:
    """One row per sample: ground truth, prediction, answer, error and each protocol's IoU."""
    rows = []
    for sample, pred in pairs:
        row = {**sample.to_dict(), "pred": [list(s) for s in pred.spans],
               "scores": list(pred.scores), "answer": pred.answer, "error": pred.error,
               "predicted_duration": pred.duration}
        for name, result in scores.items():
            row[f"{name}_iou"] = result.per_sample.get(sample.id, {}).get("iou")
        rows.append(row)
    return rows


_SECRET_NAME = re.compile(r"key|secret|password|token", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings fit for a report: secrets (API keys, passwords, tokens) and credentials in URLs
    (``postgresql://user:pw@host``) replaced by ``***``."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if value is not None and _SECRET_NAME.search(name):
            out[name] = "***"
        elif isinstance(value, str):
            out[name] = _URL_CREDENTIALS.sub("***@", value)
        else:
            out[name] = value
    return out


def environment() -> dict[str, Any]:
    """vidground's version and git commit, Python, the platform and library versions."""
    from .. import __version__

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"vidground": __version__, "git_commit": _git_commit(), "python": sys.version.split()[0],
            "platform": platform.platform(), "libraries": versions,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _git_commit() -> str | None:
    """The commit of the vidground source tree, with ``-dirty`` for local changes; None when
    vidground is not run from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                                capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = commit.stdout.strip()
    return f"{sha}-dirty" if status.stdout.strip() else sha or None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_entry(name: str, pairs: Sequence[tuple[Sample, Prediction]], dataset: str | None, *,
              settings: dict[str, Any] | None = None, predictions_path: str | None = None,
              unanswered: Sequence[Sample] = (), extra: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """One run's part of the report: scores of every protocol and the per-sample rows."""
    scores = score_all(pairs, dataset)
    errors = [p.id for _, p in pairs if p.error]
    return {"name": name, "settings": settings or {}, "predictions": predictions_path,
            "n": len(pairs), "errors": len(errors), "unanswered": [s.id for s in unanswered],
            "scores": {k: v.to_dict() for k, v in scores.items()}, **(extra or {}),
            "samples": per_sample_rows(pairs, scores)}


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def tables(report: dict[str, Any], metrics: Sequence[str]):  # -> list[rich.table.Table]
    """One Rich table per metric protocol; one row per run; scores in percent like the
    papers."""
    from rich.table import Table

    out = []
    for protocol in metrics:
        columns = TABLE_COLUMNS[protocol]
        table = Table(title=f"{report.get('dataset', '')} · {protocol} metrics "
                            f"({_reference(protocol)})", title_justify="left")
        table.add_column("run", no_wrap=True)
        table.add_column("n", justify="right")
        for column in columns:
            table.add_column(column, justify="right")
        table.add_column("failed", justify="right")
        for run in report["runs"]:
            result = run["scores"][protocol]
            table.add_row(run["name"], str(result["n"]),
                          *(f"{100 * result['metrics'][c]:.2f}" for c in columns),
                          str(result["failed"]))
        out.append(table)
    return out


def _reference(protocol: str) -> str:
    return REFERENCES[protocol].split(" + ")[0].split(" @ ")[0]


def missing_durations(report: dict[str, Any]) -> tuple[int, int]:
    """How many scored samples of the report's runs had no duration for the VideoMind
    protocol, and how many were scored."""
    missing = sum(int(r["scores"]["videomind"].get("missing_duration", 0)) for r in report["runs"])
    return missing, sum(int(r["scores"]["videomind"]["n"]) for r in report["runs"])
