"""The two things ``vidground eval`` does, as library calls: run and score, or score only.

>>> from vidground import Grounder
>>> from vidground.evaluation import load_dataset, evaluate, plan_runs
>>> data = load_dataset("charades-sta", "charades_sta_test.txt", "videos/")  # doctest: +SKIP
>>> report = evaluate(data, Grounder(), plan_runs(), "runs/charades")       # doctest: +SKIP
>>> report["runs"][0]["scores"]["videomind"]["metrics"]["R1@0.7"]           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .grid import RunSpec
from .loaders import Dataset, guess_kind, read_annotations
from .predictions import read_predictions
from .records import EvaluationError
from .report import environment, file_sha256, pair_up, redact, run_entry, write_report
from .runner import ProgressFn, run_predictions, select_samples

if TYPE_CHECKING:
    from ..grounding import Grounder


def evaluate(dataset: Dataset, grounder: Grounder, runs: Sequence[RunSpec],
             out_dir: str | Path, *, limit: int | None = None, seed: int = 0,
             concurrency: int = 1, overwrite: bool = False, progress: ProgressFn | None = None,
             config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every run in ``runs`` over ``dataset`` (``limit`` samples drawn with ``seed``),
    writing ``<out_dir>/<run>.predictions.jsonl`` and ``<out_dir>/report.json``; returns the
    report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = select_samples(dataset.samples, limit, seed)
    if not samples:
        raise EvaluationError(f"none of the {dataset.total} samples has its video; "
                              "check --videos and --video-ext")
    backend = grounder.settings.backend
    model = _model_name(grounder)
    meta = {"dataset": dataset.kind, "annotations": str(dataset.annotations), "model": model,
            "backend": backend}
    entries = []
    for spec in runs:
        path = out / f"{spec.slug}.predictions.jsonl"
        if overwrite and path.exists():
            path.unlink()
        outcome = run_predictions(grounder, samples, spec, path, meta=meta,
                                  concurrency=concurrency, progress=progress)
        pairs, unanswered = pair_up(samples, list(outcome.predictions.values()))
        entries.append(run_entry(spec.name, pairs, dataset.kind, settings=outcome.settings,
                                 predictions_path=str(path), unanswered=unanswered,
                                 extra={"resumed": outcome.resumed, "asked": outcome.asked,
                                        "elapsed_s": round(outcome.elapsed_s, 3)}))
    report = {
        "dataset": dataset.kind,
        "config": {
            **meta, "annotations_sha256": file_sha256(dataset.annotations),
            "videos": str(dataset.videos) if dataset.videos else None,
            "limit": limit, "seed": seed, "concurrency": concurrency,
            "settings": redact(grounder.settings.model_dump(mode="json")),
            **(config or {}), "environment": environment()},
        "samples_total": dataset.total, "samples_selected": len(samples),
        "missing_videos": {"count": len(dataset.missing),
                           "samples": [{"id": s.id, "video": s.video} for s in dataset.missing]},
        "runs": entries,
    }
    write_report(out / "report.json", report)
    return report


def score_predictions(predictions: str | Path, annotations: str | Path, *,
                      dataset: str | None = None, durations: str | Path | None = None
                      ) -> dict[str, Any]:
    """Score an existing predictions file (ours or another tool's, see
    :mod:`.predictions`) against ``annotations``, running no model."""
    from .loaders import read_durations

    meta, preds = read_predictions(predictions)
    kind = dataset or (meta or {}).get("dataset") or guess_kind(annotations)
    table = read_durations(durations) if durations else None
    samples = read_annotations(kind, annotations, durations=table)
    pairs, unanswered = pair_up(samples, preds)
    if not pairs:
        raise EvaluationError(f"none of the {len(preds)} predictions in {predictions} matches "
                              f"a sample of {annotations} (by id, or by video and query)")
    name = (meta or {}).get("run") or Path(predictions).name
    return {"dataset": kind,
            "config": {"predictions": str(predictions), "annotations": str(annotations),
                       "annotations_sha256": file_sha256(annotations),
                       "produced_by": meta, "environment": environment()},
            "samples_total": len(samples), "samples_selected": len(pairs),
            "missing_videos": {"count": 0, "samples": []},
            "runs": [run_entry(name, pairs, kind, settings=(meta or {}).get("settings"),
                               predictions_path=str(predictions), unanswered=unanswered)]}


def _model_name(grounder: Grounder) -> str:
    """The backend's model name (an OpenAI-compatible server is asked for it once)."""
    return str(grounder.backend.model_name)
