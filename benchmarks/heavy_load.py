"""Heavy output work next to health (issue 21): N clients each ask clips of many spans of a
long video at once, while one client polls ``GET /api/v1/health`` and ``GET /api/v1/jobs``.

    .venv/bin/python benchmarks/heavy_load.py                          # this checkout
    .venv/bin/python benchmarks/heavy_load.py --src /tmp/old/src       # another tree's code

It starts the fake OpenAI-compatible model and a real ``vidground serve`` subprocess on a free
loopback port (127.0.0.1 only), encodes a ``--video-s`` second test video, then:

1. ``--clients`` clients each POST ``/api/v1/clips`` with ``--spans`` spans, and hang up after
   ``--client-timeout`` s without an answer (the heavy queue limit is raised to hold them all,
   so all of them are queued: the point is health *while* heavy work waits);
2. all the while, and ``--after`` s more once the clients are gone, one client polls health
   and the job list (each call bounded by ``--probe-timeout``).

It prints health's and the job list's p50/p99/max latency during the load and after it, how
many probes timed out, what the heavy clients got, and the heavy queue's depth as health saw
it. Everything is bounded: counts, timeouts and the total time.
"""

from __future__ import annotations

import argparse
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


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class Prober:
    """Polls health and the job list until stopped; records latencies per phase."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.phase = "load"
        self.latency: dict[str, dict[str, list[float]]] = {}
        self.timeouts: Counter[str] = Counter()
        self.queue_seen: list[int] = []
        self._stop = threading.Event()

    def _one(self, http: httpx.Client, path: str, name: str) -> None:
        started = time.perf_counter()
        try:
            r = http.get(path)
            took = time.perf_counter() - started
            if name == "health" and r.status_code == 200:
                queue = r.json().get("outputs_queue") or {}
                self.queue_seen.append(int(queue.get("waiting", -1)))
        except httpx.HTTPError:
            took = time.perf_counter() - started
            self.timeouts[f"{self.phase}/{name}"] += 1
        self.latency.setdefault(self.phase, {}).setdefault(name, []).append(took)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                self._one(http, "/api/v1/health", "health")
                self._one(http, "/api/v1/jobs?limit=5", "jobs")
                self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()


def heavy_client(base_url: str, body: dict, timeout_s: float, results: Counter[str],
                 lock: threading.Lock) -> None:
    try:
        r = httpx.post(base_url + "/api/v1/clips", json=body,
                       timeout=httpx.Timeout(10.0, read=timeout_s))
        outcome = str(r.status_code)
    except httpx.HTTPError:
        outcome = "hung up"
    with lock:
        results[outcome] += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--spans", type=int, default=20)
    ap.add_argument("--video-s", type=float, default=300.0)
    ap.add_argument("--client-timeout", type=float, default=20.0)
    ap.add_argument("--after", type=float, default=10.0)
    ap.add_argument("--probe-timeout", type=float, default=30.0)
    ap.add_argument("--src", type=Path, default=None,
                    help="serve another tree's code (e.g. the code before a change)")
    args = ap.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.spans <= 20:
        ap.error("--clients 1..200, --spans 1..20")

    base = Path(f"/tmp/vidground-heavy-load-{time.time_ns()}")
    with FakeOpenAIServer() as fake:
        env = openai_env(fake, VIDGROUND_HEAVY_QUEUE_LIMIT=str(args.clients + 8))
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        srv = ServerProcess(base, env=env)
        started = time.perf_counter()
        make_video(srv.media_root / "long.mp4", duration=args.video_s, fps=10, size=(320, 240),
                   intervals=[(10.0, 12.0)])
        print(f"video: {args.video_s:g} s, 320x240, 10 fps (encoded in "
              f"{time.perf_counter() - started:.1f} s); code: {args.src or ROOT / 'src'}")
        every = args.video_s / args.spans
        body = {"video_path": "long.mp4", "mode": "exact",
                "spans": [{"start": i * every, "end": i * every + min(10.0, every * 0.8)}
                          for i in range(args.spans)]}
        with srv:
            prober = Prober(srv.base_url, args.probe_timeout)
            probe_thread = threading.Thread(target=prober.run, daemon=True)
            results: Counter[str] = Counter()
            lock = threading.Lock()
            clients = [threading.Thread(target=heavy_client, daemon=True,
                                        args=(srv.base_url, body, args.client_timeout,
                                              results, lock))
                       for _ in range(args.clients)]
            load_started = time.perf_counter()
            for client in clients:
                client.start()
            time.sleep(0.5)
            probe_thread.start()
            for client in clients:
                client.join(args.client_timeout + 30)
            load_s = time.perf_counter() - load_started
            prober.phase = "after"
            time.sleep(args.after)
            prober.stop()
            probe_thread.join(args.probe_timeout + 5)
    print(f"{args.clients} clients x {args.spans} clips each; clients hang up after "
          f"{args.client_timeout:g} s; load phase {load_s:.1f} s, then {args.after:g} s after")
    print(f"heavy clients got: {dict(sorted(results.items()))}")
    seen = [q for q in prober.queue_seen if q >= 0]
    print("heavy queue waiting, as health saw it: "
          + (f"max {max(seen)}, last {seen[-1]}" if seen else "not reported"))
    print(f"{'phase':<6} {'route':<7} {'n':>4} {'p50 s':>8} {'p99 s':>8} {'max s':>8} "
          f"{'timeouts':>8}")
    for phase in ("load", "after"):
        for name in ("health", "jobs"):
            values = prober.latency.get(phase, {}).get(name, [])
            print(f"{phase:<6} {name:<7} {len(values):>4} {pct(values, 50):>8.3f} "
                  f"{pct(values, 99):>8.3f} {max(values, default=float('nan')):>8.3f} "
                  f"{prober.timeouts[f'{phase}/{name}']:>8}")
    health = prober.latency.get("load", {}).get("health", [])
    verdict = "PASS" if health and pct(health, 99) < 0.5 else "FAIL"
    print(f"health p99 during the load < 0.5 s: {verdict}")


if __name__ == "__main__":
    main()
