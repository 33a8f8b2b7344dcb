"""The Ray Data pipeline of ``vidground batch``.

    rows ─► ray.data.from_items ─► map_batches(_Locator)   CPU actors, each holding one Grounder
                                                           (openai backend): identity (resume
                                                           key; done rows skipped), probe,
                                                           sample, decode, ask the model server
                                                           over HTTP with at most `concurrency`
                                                           requests in flight per actor, parse,
                                                           refine
         ─► driver: iter_rows ─► ResultWriter              JSONL as rows arrive, progress + ETA

(Probing was a separate stage of Ray tasks at first: on 2 CPUs the extra worker processes cost
more than the probe, which takes milliseconds; a stage of its own pays off only for
expensive per-video work.)

The model itself runs on an OpenAI-compatible server (vLLM, SGLang: docs/scaling-out.md), not in
Ray. Ray Data restarts an actor that dies and retries its task (its defaults for actor pools:
``max_restarts=-1``, ``max_task_retries=-1``), and the writer keeps one record per key, so a
killed worker costs a re-asked batch, not a lost or doubled row. Importing this module imports Ray.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray

from ..config import Settings
from ..errors import VidgroundError
from .manifest import BatchRow, row_key, video_identity
from .writer import SUMMARY, ResultWriter


@dataclass
class BatchProgress:
    """What the driver knows after each row: ``done`` of ``total`` (skipped included)."""

    done: int
    total: int
    skipped: int
    errors: int
    elapsed_s: float
    rate: float  # rows asked per second in this run
    eta_s: float | None


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    ok: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    rows_per_s: float = 0.0
    out: str = ""
    ray_address: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchConfig:
    """How to run: Ray's address (None: a local Ray), actors and their CPUs, requests in
    flight per actor, rows per actor call."""

    address: str | None = None
    num_cpus: int | None = None  # local Ray only
    actors: int | None = None
    actor_cpus: float = 1.0
    concurrency: int = 4
    batch_size: int | None = None


class _Locator:
    """A Ray Data actor: one Grounder (one HTTP client pool) answering its rows with at most
    ``concurrency`` model requests in flight."""

    def __init__(self, settings: dict[str, Any], concurrency: int, done: frozenset[str]
                 ) -> None:
        from ..grounding import Grounder

        self.done = done
        values = {**settings, "openai_max_concurrency": concurrency}
        self.grounder = Grounder(settings=Settings(**values))
        self.pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="locate")
        self.worker = {"host": socket.gethostname(), "pid": os.getpid()}

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        n = len(batch["index"])
        rows = [{k: batch[k][i] for k in batch} for i in range(n)]
        answered = list(self.pool.map(self._one, rows))
        return {"key": [key for key, _ in answered], "index": [int(r["index"]) for r in rows],
                "record": [json.dumps(rec, ensure_ascii=False, default=str) if rec else ""
                           for _, rec in answered]}

    def _one(self, row: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """(key, record); no record when the key is already done. The video's identity is
        read here, on the worker, not by the driver (it reads the file)."""
        from ..options import LocateOptions
        from ..video.probe import probe

        video, query = str(row["video"]), str(row["query"])
        options = json.loads(str(row["options"]))
        key = row_key(video_identity(video), query, options)
        if key in self.done:
            return key, None
        record: dict[str, Any] = {
            "key": key, "index": int(row["index"]), "video": video, "query": query,
            "options": options, "status": "ok", "response": None, "error": None,
            "elapsed_s": 0.0, "worker": self.worker}
        started = time.perf_counter()
        try:
            opts = LocateOptions.from_mapping(options)
            result = self.grounder.locate(probe(video), query, opts)
            record["response"] = result.to_response()
        except VidgroundError as exc:
            record.update(status="error", error={"code": exc.code, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 - recorded on the row, counted in the summary
            record.update(status="error", error={"code": "internal_error",
                                                 "message": f"{type(exc).__name__}: {exc}"})
        record["elapsed_s"] = round(time.perf_counter() - started, 4)
        return key, record


def run_batch(rows: list[BatchRow], settings: Settings, out: str | Path,
              config: BatchConfig | None = None,
              progress: Callable[[BatchProgress], None] | None = None) -> BatchSummary:
    """Answer every row on Ray, writing ``out/results.jsonl`` as rows finish and
    ``results.jsonl``, ``results.parquet`` and ``summary.json`` at the end; rows whose key
    already has an ``ok`` record in ``out`` are skipped."""
    from ..backends.openai_compat import OpenAICompatBackend  # noqa: F401 - fail early if absent

    cfg = config or BatchConfig()
    if settings.backend != "openai":
        raise VidgroundError(
            "vidground batch asks an OpenAI-compatible model server (vLLM, SGLang): set "
            "--backend openai (or VIDGROUND_BACKEND=openai) and --openai-base-url. Running the "
            "model inside Ray actors is described in docs/scaling-out.md.")
    writer = ResultWriter(out)
    started_ray = False
    started = time.perf_counter()
    summary = BatchSummary(total=len(rows), out=str(writer.out))
    try:
        if not ray.is_initialized():
            if cfg.address:
                ray.init(address=cfg.address, log_to_driver=False)
            else:
                ray.init(num_cpus=cfg.num_cpus, include_dashboard=False, log_to_driver=False)
            started_ray = True
        summary.ray_address = ray.get_runtime_context().gcs_address
        ds = _dataset(rows, settings, frozenset(writer.done), cfg)
        keys: dict[str, int] = {}  # key -> manifest index
        asked = 0
        for item in _rows(ds):
            keys.setdefault(str(item["key"]), int(item["index"]))
            if not item["record"]:
                summary.skipped += 1
            else:
                record = json.loads(item["record"])
                if writer.write(record):
                    asked += 1
                    if record["status"] == "ok":
                        summary.ok += 1
                    else:
                        summary.errors += 1
                        code = record["error"]["code"]
                        summary.error_codes[code] = summary.error_codes.get(code, 0) + 1
            if progress:
                progress(_progress(summary, asked, started))
        summary.wall_s = round(time.perf_counter() - started, 3)
        summary.rows_per_s = round(asked / summary.wall_s, 3) if summary.wall_s else 0.0
        writer.finish(sorted(keys, key=keys.__getitem__))
        (writer.out / SUMMARY).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
        return summary
    finally:
        writer.close()
        if started_ray:
            ray.shutdown()


def _dataset(rows: list[BatchRow], settings: Settings, done: frozenset[str],
             cfg: BatchConfig) -> Any:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    items = [{"index": r.index, "video": r.video, "query": r.query,
              "options": json.dumps(r.options, sort_keys=True)} for r in rows]
    cpus = float(ray.cluster_resources().get("CPU", 1))
    actors = cfg.actors or max(1, int(cpus // cfg.actor_cpus))
    batch_size = cfg.batch_size or max(1, cfg.concurrency)
    blocks = max(1, min(len(items), 4 * actors, 1000))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    return ds.map_batches(
        _Locator, fn_constructor_kwargs={"settings": settings.model_dump(),
                                         "concurrency": cfg.concurrency, "done": done},
        batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cfg.actor_cpus)


def _rows(ds: Any) -> Iterable[dict[str, Any]]:
    yield from ds.iter_rows()


def _progress(summary: BatchSummary, asked: int, started: float) -> BatchProgress:
    elapsed = time.perf_counter() - started
    done = summary.skipped + asked
    rate = asked / elapsed if elapsed > 0 else 0.0
    left = summary.total - done
    eta = left / rate if rate > 0 else None
    return BatchProgress(done, summary.total, summary.skipped, summary.errors, elapsed, rate,
                         eta)
