"""Rows per second for one manifest three ways: ``vidground batch`` on a local Ray, the
PostgreSQL job queue with two ``vidground worker`` processes, and a plain loop over
``Grounder.locate`` — the same videos, questions, options and fake model latency (issue 26).

    .venv/bin/python benchmarks/batch.py                       # 40 rows, model 0.5 s per call
    .venv/bin/python benchmarks/batch.py --rows 80 --delay-s 1.0 --in-flight 4

The model is tests/support/fake_openai_server.py (a real local HTTP server that decodes the
frames and sleeps ``--delay-s`` per call, serving calls concurrently), so what is measured is
vidground's side: decoding, requests, scheduling. Every mode has the same model requests in
flight (``--in-flight``, default 4) except the loop (one at a time, as a script would):

* ray:   local Ray (``--num-cpus``, default 2), 2 actors × in-flight/2 requests each; the Ray
         start (once per session, not per batch) is reported apart
* queue: PostgreSQL (Debian's server, a fresh database), one front end taking the manifest as
         one job batch over HTTP, 2 workers × in-flight/2 jobs each; worker start is excluded
* loop:  ``for row in rows: grounder.locate(...)`` in this process

The frame cache is off everywhere (``VIDGROUND_CACHE_MAX_GB=0``): every row decodes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "src"))
os.environ["VIDGROUND_CACHE_MAX_GB"] = "0"

import httpx  # noqa: E402
import psycopg  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402
from pg_server import PostgresServer  # noqa: E402
from server_utils import ServerProcess, openai_env  # noqa: E402
from worker_utils import WorkerProcess  # noqa: E402

from vidground.batch.manifest import BatchRow, read_rows  # noqa: E402
from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402

OPTIONS = {"refine": False, "verify": False, "output_format": "seconds"}


def make_manifest(base: Path, n_rows: int, n_videos: int) -> Path:
    media = base / "media"
    media.mkdir()
    for v in range(n_videos):
        make_video(media / f"v{v}.mp4", duration=4.0, fps=10, size=(160, 120),
                   intervals=[(0.5 + 0.25 * v, 2.0 + 0.25 * v)])
    lines = [json.dumps({"video": f"media/v{i % n_videos}.mp4",
                         "query": f"When is the red square visible? ({i})", "options": OPTIONS})
             for i in range(n_rows)]
    path = base / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings(fake: FakeOpenAIServer, in_flight: int) -> Settings:
    return Settings(backend="openai", openai_base_url=fake.base_url, openai_model=fake.model,
                    openai_max_retries=0, openai_max_concurrency=in_flight, cache_max_gb=0)


def bench_ray(rows: list[BatchRow], fake: FakeOpenAIServer, base: Path, in_flight: int,
              num_cpus: int) -> dict[str, float]:
    import ray

    from vidground.batch.pipeline import BatchConfig, run_batch

    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    start_s = time.perf_counter() - t0
    try:
        cfg = BatchConfig(actors=2, actor_cpus=num_cpus / 2, concurrency=max(1, in_flight // 2))
        t0 = time.perf_counter()
        summary = run_batch(rows, settings(fake, in_flight), base / "ray-out", cfg)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return {"ok": summary.ok, "wall_s": wall, "extra_s": start_s}


def bench_queue(rows: list[BatchRow], fake: FakeOpenAIServer, base: Path, in_flight: int
                ) -> dict[str, float]:
    media, data = base, base / "queue-data"
    with PostgresServer() as pg:
        url = pg.new_database("batchbench")
        env = openai_env(fake, VIDGROUND_JOB_STORE=url, VIDGROUND_CACHE_MAX_GB="0",
                         VIDGROUND_WORKERS=str(max(1, in_flight // 2)))
        (base / "front").mkdir()
        front = ServerProcess(base / "front", env={**env, "VIDGROUND_RUN_JOBS": "false"},
                              media_root=media, data_dir=data)
        workers = [WorkerProcess(base / f"w{i}", env=env, media_root=media, data_dir=data)
                   for i in range(2)]
        with front:
            t0 = time.perf_counter()
            for w in workers:
                w.start(wait=False)
            for w in workers:
                w.wait_ready()
            start_s = time.perf_counter() - t0
            try:
                reqs = [{"video_path": str(Path(r.video).relative_to(base)), "query": r.query,
                         "options": r.options} for r in rows]
                t0 = time.perf_counter()
                httpx.post(front.url("/api/v1/jobs"), json={"requests": reqs},
                           timeout=60).raise_for_status()
                deadline = time.monotonic() + 900
                while _finished(url) < len(rows) and time.monotonic() < deadline:
                    time.sleep(0.05)
                wall = time.perf_counter() - t0
            finally:
                for w in workers:
                    w.stop()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT COUNT(*) FROM jobs WHERE status='succeeded'").fetchone()
    return {"ok": int(row[0]) if row else 0, "wall_s": wall, "extra_s": start_s}


def _finished(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM jobs WHERE status IN "
                           "('succeeded', 'failed', 'cancelled')").fetchone()
    return int(row[0]) if row else 0


def bench_loop(rows: list[BatchRow], fake: FakeOpenAIServer) -> dict[str, float]:
    grounder = Grounder(settings=settings(fake, 1))
    t0 = time.perf_counter()
    ok = sum(1 for r in rows
             if grounder.locate(r.video, r.query, LocateOptions.from_mapping(r.options)).found)
    return {"ok": ok, "wall_s": time.perf_counter() - t0, "extra_s": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--delay-s", type=float, default=0.5, help="fake model time per call")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="model requests in flight (ray and queue)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--modes", nargs="+", default=["ray", "queue", "loop"])
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="vidground-bench-batch-"))
    rows = read_rows(make_manifest(base, args.rows, args.videos))
    results: dict[str, dict[str, float]] = {}
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as fake:
        fake.configure(delay_s=args.delay_s)
        for mode in args.modes:
            if mode == "ray":
                results[mode] = bench_ray(rows, fake, base, args.in_flight, args.num_cpus)
            elif mode == "queue":
                results[mode] = bench_queue(rows, fake, base, args.in_flight)
            elif mode == "loop":
                results[mode] = bench_loop(rows, fake)
            print(f"{mode}: {results[mode]}", file=sys.stderr)
    print(f"\n{args.rows} rows over {args.videos} videos, fake model {args.delay_s:g} s per "
          f"call, {args.in_flight} in flight (loop: 1), {os.cpu_count()} CPU cores")
    print(f"{'mode':<28} {'ok':>4} {'wall s':>8} {'rows/s':>7} {'start s':>8}")
    names = {"ray": "vidground batch (local Ray)", "queue": "PostgreSQL queue, 2 workers",
             "loop": "plain loop"}
    for mode, r in results.items():
        print(f"{names[mode]:<28} {int(r['ok']):>4} {r['wall_s']:>8.2f} "
              f"{args.rows / r['wall_s']:>7.2f} {r['extra_s']:>8.2f}")


if __name__ == "__main__":
    main()
