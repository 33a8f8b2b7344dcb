"""Load test of the HTTP server: N concurrent clients send M inference requests.

    .venv/bin/python benchmarks/server_load.py                      # 50 clients, 500 requests
    .venv/bin/python benchmarks/server_load.py --queue-limit 10     # over the limit: 429s

It starts the fake OpenAI-compatible model (tests/support/fake_openai_server.py, no delay)
and a real ``vidground serve`` subprocess on a free loopback port, encodes a short test video, then:

1. a sequential warm-up/baseline (one client): the server's own overhead per request with no
   queueing — client latency minus the pipeline's ``timings.total_s``;
2. the load phase: ``--concurrency`` clients share ``--requests`` requests.

"Added latency" = client-measured latency minus ``timings.total_s`` (the pipeline's time:
probe, decode, model calls); under load it is mostly the wait in the bounded queue (one model,
``--workers`` at a time), which is the point of the queue. It prints p50/p99 of that, the
pipeline time, error counts by status (only 429 is acceptable, and only past the queue limit),
throughput, and the server process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402
from server_utils import ServerProcess, openai_env  # noqa: E402

QUERY = "When is the red square visible?"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_clients(base_url: str, total: int, concurrency: int, body: dict
                ) -> tuple[list[tuple[float, float, float]], Counter, float]:
    """Returns [(latency_s, pipeline_s)] of successes, status counts, wall time."""
    lock = threading.Lock()
    remaining = [total]
    ok: list[tuple[float, float, float]] = []
    statuses: Counter = Counter()

    def client() -> None:
        with httpx.Client(base_url=base_url, timeout=300) as http:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                started = time.perf_counter()
                try:
                    r = http.post("/api/v1/inference", json=body)
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = f"transport:{type(exc).__name__}"
                    r = None
                latency = time.perf_counter() - started
                with lock:
                    statuses[status] += 1
                    if r is not None and status == 200:
                        timings = r.json()["timings"]
                        ok.append((latency, float(timings["total_s"]),
                                   float(timings.get("queue_s", 0.0))))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok, statuses, time.perf_counter() - started


def report(name: str, ok: list[tuple[float, float, float]], statuses: Counter, wall: float) -> None:
    added = [(lat - pipe) * 1000 for lat, pipe, _ in ok]
    overhead = [(lat - pipe - queue) * 1000 for lat, pipe, queue in ok]
    queued = [queue * 1000 for _, _, queue in ok]
    latency = [lat * 1000 for lat, _, _ in ok]
    pipeline = [pipe * 1000 for _, pipe, _ in ok]
    n = sum(statuses.values())
    print(f"\n== {name}: {n} requests in {wall:.1f} s ({n / wall:.1f} req/s)")
    print(f"   status counts: {dict(statuses)}")
    if ok:
        print(f"   added by server  p50 {pct(added, 50):8.1f} ms   p99 {pct(added, 99):8.1f} ms"
              f"   mean {statistics.fmean(added):8.1f} ms")
        print(f"     of which queue wait p50 {pct(queued, 50):8.1f} ms   p99 "
              f"{pct(queued, 99):8.1f} ms")
        print(f"     the rest (HTTP, validation, probe) p50 {pct(overhead, 50):6.1f} ms   p99 "
              f"{pct(overhead, 99):6.1f} ms")
        print(f"   client latency   p50 {pct(latency, 50):8.1f} ms   p99 "
              f"{pct(latency, 99):8.1f} ms")
        print(f"   pipeline (timings.total_s) p50 {pct(pipeline, 50):6.1f} ms   p99 "
              f"{pct(pipeline, 99):6.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue-limit", type=int, default=64)
    ap.add_argument("--baseline", type=int, default=30, help="sequential requests first")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    import tempfile

    base = args.workdir or Path(tempfile.mkdtemp(prefix="vidground-load-"))
    body = {"video_path": "clip.mp4", "query": QUERY,
            "options": {"refine": False, "verify": False, "frame_sampling_rate": 2.0}}
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as fake:
        srv = ServerProcess(base, env=openai_env(
            fake, VIDGROUND_WORKERS=str(args.workers),
            VIDGROUND_QUEUE_LIMIT=str(args.queue_limit)))
        make_video(srv.media_root / "clip.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.5)])
        with srv:
            print(f"server pid {srv.pid} on {srv.base_url}; workers={args.workers} "
                  f"queue_limit={args.queue_limit}; fake model without delay")
            print(f"RSS after start: {srv.peak_rss_kb()} kB (VmHWM)")
            ok, statuses, wall = run_clients(srv.base_url, args.baseline, 1, body)
            report(f"baseline, 1 client x {args.baseline}", ok, statuses, wall)
            ok, statuses, wall = run_clients(srv.base_url, args.requests, args.concurrency,
                                             body)
            report(f"load, {args.concurrency} clients x {args.requests} requests", ok,
                   statuses, wall)
            errors = {k: v for k, v in statuses.items() if k != 200}
            bad = {k: v for k, v in errors.items() if k != 429}
            over_limit = args.concurrency > args.queue_limit + args.workers
            print(f"   errors: {sum(errors.values())} (429: {errors.get(429, 0)}, "
                  f"other: {sum(bad.values())}); clients over the queue limit: {over_limit}")
            peak = srv.peak_rss_kb()
            print(f"\nserver peak RSS (VmHWM): {peak} kB = {(peak or 0) / 1024:.1f} MiB")
            health = httpx.get(srv.url("/api/v1/health"), timeout=10).json()
            print(f"health after: queue {health['queue']}")
    if bad or (errors.get(429) and not over_limit):
        print("FAIL: unexpected errors")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
