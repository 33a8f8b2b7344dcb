"""Job throughput with 1 vs 3 ``vidground worker`` processes sharing a PostgreSQL job store.

    .venv/bin/python benchmarks/workers.py                    # 30 jobs, model answers in 0.5 s
    .venv/bin/python benchmarks/workers.py --jobs 60 --delay-s 1.0 --workers 1 2 3

For each worker count it starts a fresh PostgreSQL database (a real server from Debian's
``postgresql`` package, on a free loopback port), one ``vidground serve`` front end that only
takes jobs (``VIDGROUND_RUN_JOBS=false``), and N ``vidground worker`` processes pointing at the
fake OpenAI-compatible model server (tests/support/fake_openai_server.py, which sleeps
``--delay-s`` per call like a remote vLLM would, and serves calls concurrently). Once the
workers are ready it
submits ``--jobs`` jobs as one batch over HTTP and times until the last one has finished. Each
worker runs one job at a time (``VIDGROUND_WORKERS=1``), as one per GPU would.

What it shows: workers spread the model waits; what it does not: decoding is CPU work, so on a
machine with few cores the gain flattens once decoding, not the model, is the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402
from pg_server import PostgresServer  # noqa: E402
from server_utils import ServerProcess, openai_env  # noqa: E402
from worker_utils import WorkerProcess  # noqa: E402

QUERY = "When is the red square visible?"
FAST = {"refine": False, "verify": False, "output_format": "seconds"}


def finished(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM jobs WHERE status IN "
                           "('succeeded', 'failed', 'cancelled')").fetchone()
    return int(row[0]) if row else 0


def run(n_workers: int, n_jobs: int, pg: PostgresServer, fake: FakeOpenAIServer,
        base: Path) -> dict[str, float]:
    url = pg.new_database(f"bench{n_workers}")
    media, data = base / "media", base / f"data{n_workers}"
    env = openai_env(fake, VIDGROUND_JOB_STORE=url, VIDGROUND_WORKERS="1")
    front_dir = base / f"front{n_workers}"
    front_dir.mkdir()
    front = ServerProcess(front_dir, env={**env, "VIDGROUND_RUN_JOBS": "false"},
                          media_root=media, data_dir=data)
    workers = [WorkerProcess(base / f"w{n_workers}-{i}", env=env, media_root=media,
                             data_dir=data) for i in range(n_workers)]
    with front:
        for w in workers:
            w.start(wait=False)
        for w in workers:
            w.wait_ready()
        try:
            reqs = [{"video_path": "a.mp4", "query": QUERY, "options": FAST}] * n_jobs
            started = time.perf_counter()
            r = httpx.post(front.url("/api/v1/jobs"), json={"requests": reqs}, timeout=60)
            r.raise_for_status()
            deadline = time.monotonic() + 600
            while finished(url) < n_jobs and time.monotonic() < deadline:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            done = finished(url)
        finally:
            for w in workers:
                w.stop()
    with psycopg.connect(url) as conn:
        ok = conn.execute("SELECT COUNT(*) FROM jobs WHERE status='succeeded'").fetchone()
    return {"wall_s": wall, "done": done, "succeeded": int(ok[0]) if ok else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--delay-s", type=float, default=0.5, help="fake model time per call")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="vidground-bench-workers-"))
    (base / "media").mkdir()
    make_video(base / "media" / "a.mp4", duration=2.0, fps=5, intervals=[(0.5, 1.0)])
    results = {}
    with PostgresServer() as pg, FakeOpenAIServer(color=(255, 0, 0),
                                                  object_name="red square") as fake:
        fake.configure(delay_s=args.delay_s)
        for n in args.workers:
            results[n] = run(n, args.jobs, pg, fake, base)
    print(f"\n{args.jobs} jobs, fake model {args.delay_s:g} s per call, "
          f"{os.cpu_count()} CPU cores, PostgreSQL job store")
    print(f"{'workers':>8} {'succeeded':>10} {'wall s':>8} {'jobs/s':>8} {'speed-up':>9}")
    first = results[args.workers[0]]["wall_s"]
    for n, r in results.items():
        print(f"{n:>8} {int(r['succeeded']):>10} {r['wall_s']:>8.2f} "
              f"{r['done'] / r['wall_s']:>8.2f} {first / r['wall_s']:>8.2f}x")


if __name__ == "__main__":
    main()
