"""Run a model over a dataset: resumable, several samples in flight, progress as it goes.

Each run appends to its own predictions file (:mod:`.predictions`). A re-run reads the file,
skips every sample already answered and asks only the rest; samples that failed (an error
recorded) are asked again. The file's first line records what produced it; resuming with
different settings is refused rather than mixing two runs' answers.

With a remote backend several samples are in flight at once (``concurrency``, by default the
backend's ``max_concurrency``); the local backend answers one at a time anyway.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VidgroundError
from .grid import RunSpec
from .predictions import PredictionWriter, read_predictions
from .records import EvaluationError, Prediction, Sample

if TYPE_CHECKING:
    from ..grounding import Grounder

#: Stop a run after this many backend failures in a row (the server is down, the model gone).
MAX_CONSECUTIVE_BACKEND_FAILURES = 5
#: Errors that say the backend itself is failing (a request too large for it is the sample's).
BACKEND_DOWN = ("BackendError", "ModelNotAvailableError")

ProgressFn = Callable[["RunProgress"], None]


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: ``done`` of ``total`` samples (``resumed`` of them from the file)."""

    run: str
    done: int
    total: int
    resumed: int
    failed: int
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        fresh = self.done - self.resumed
        if fresh <= 0 or self.done >= self.total:
            return None
        return self.elapsed_s / fresh * (self.total - self.done)


@dataclass
class RunOutcome:
    """What one run produced."""

    spec: RunSpec
    predictions_path: Path
    predictions: dict[str, Prediction]
    resumed: int
    asked: int
    elapsed_s: float
    settings: dict[str, Any] = field(default_factory=dict)


def select_samples(samples: Sequence[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """``limit`` samples drawn with ``random.Random(seed)``, kept in file order; all when
    ``limit`` is None."""
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 1:
        raise EvaluationError(f"--limit must be at least 1, got {limit}")
    picked = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in picked]


def run_predictions(grounder: Grounder, samples: Sequence[Sample], spec: RunSpec,
                    path: str | Path, *, meta: dict[str, Any], concurrency: int = 1,
                    progress: ProgressFn | None = None) -> RunOutcome:
    """Answer every sample not already answered in ``path``, appending as answers come."""
    path = Path(path)
    settings = spec.protocol.settings()
    meta = {**meta, "run": spec.name, "settings": settings}
    done = _resume(path, meta)
    wanted = {s.id for s in samples}
    done = {k: v for k, v in done.items() if k in wanted}
    todo = [s for s in samples if s.id not in done]
    resumed = len(done)
    started = time.perf_counter()
    failed = sum(1 for p in done.values() if not p.ok)

    def report() -> None:
        if progress is not None:
            progress(RunProgress(spec.name, len(done), len(samples), resumed, failed,
                                 time.perf_counter() - started))

    report()
    streak = 0
    with PredictionWriter(path, meta) as writer:
        for sample, prediction in _answers(grounder, spec, todo, max(1, concurrency)):
            writer.write(prediction)
            done[sample.id] = prediction
            failed += not prediction.ok
            down = bool(prediction.error and prediction.error.startswith(BACKEND_DOWN))
            streak = streak + 1 if down else 0
            report()
            if streak >= MAX_CONSECUTIVE_BACKEND_FAILURES:
                raise EvaluationError(
                    f"run {spec.name!r} stopped: {streak} backend failures in a row, the last: "
                    f"{prediction.error}. Fix the backend and run the same command again; the "
                    f"{len(done) - failed} answers so far are kept in {path}")
    return RunOutcome(spec, path, done, resumed, len(todo), time.perf_counter() - started,
                      settings)


def _resume(path: Path, meta: dict[str, Any]) -> dict[str, Prediction]:
    """Answered samples of an earlier run into ``path`` (failures excluded: they are asked
    again), after checking that the earlier run used the same settings."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    old_meta, predictions = read_predictions(path)
    if old_meta is not None:
        differ = [k for k in ("dataset", "model", "backend", "settings")
                  if old_meta.get(k) != meta.get(k)]
        if differ:
            raise EvaluationError(
                f"{path} holds answers of a run with other settings ({', '.join(differ)} "
                "differ); use another --out folder, or --overwrite to start again")
    return {p.id: p for p in predictions if p.ok}


def _answers(grounder: Grounder, spec: RunSpec, samples: Sequence[Sample],
             concurrency: int) -> Iterator[tuple[Sample, Prediction]]:
    """(sample, prediction) as they complete, with at most ``concurrency`` in flight."""
    if concurrency == 1:
        for sample in samples:
            yield sample, _predict(grounder, spec, sample)
        return
    queue = iter(samples)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="vidground-eval") as pool:
        pending: dict[Future[Prediction], Sample] = {}
        try:
            for sample in queue:
                pending[pool.submit(_predict, grounder, spec, sample)] = sample
                if len(pending) >= concurrency:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    sample = pending.pop(future)
                    yield sample, future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(_predict, grounder, spec, nxt)] = nxt
        finally:
            for future in pending:
                future.cancel()


def _predict(grounder: Grounder, spec: RunSpec, sample: Sample) -> Prediction:
    """One prediction; a failure becomes a prediction with ``error`` set."""
    started = time.perf_counter()
    try:
        return spec.protocol.predict(grounder, sample)
    except VidgroundError as exc:
        return Prediction(id=sample.id, video=sample.video, query=sample.query, spans=(),
                          error=f"{type(exc).__name__}: {exc.message}", duration=sample.duration,
                          timings={"total_s": round(time.perf_counter() - started, 4)})
