"""The remote client's transport (issue 22.3): one pooled ``httpx.Client``, a blocking semaphore
and a bounded thread pool, next to the per-call pattern it replaced (an ``asyncio.run`` per call,
a new ``httpx.AsyncClient`` per call, a semaphore polled every 5 ms), in one run.

    .venv/bin/python benchmarks/remote_client.py --calls 200 --threads 8 --delay-ms 20

Against the fake OpenAI-compatible server of ``tests/support`` (4 frames of 64x64 per request):

* ``serial``: ``--calls`` calls of ``generate`` one after another (the per-call overhead);
* ``threads``: ``--threads`` threads calling ``generate`` together, ``--calls`` in all, the
  server answering after ``--delay-ms`` (several questions at once, as on a server);
* ``generate_many``: ``--calls`` requests in one call, ``--threads`` in flight.

Both rows prepare the same requests with the same backend (frames encoded, fitted); only how
the request travels differs. Prints wall seconds, ms per call and the most threads alive.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402

from vidground.backends.base import Prompt  # noqa: E402
from vidground.backends.openai_compat import OpenAICompatBackend, parse_completion  # noqa: E402
from vidground.frame import Frame  # noqa: E402

PROMPT = Prompt(system="You find when things happen.", user="When is the red square visible?")
FRAMES = [Frame(time=float(t), image=np.full((64, 64, 3), 60, np.uint8), index=t)
          for t in range(4)]


class PerCallClient:
    """The replaced pattern: every call runs its own event loop with its own AsyncClient and
    takes a slot of a threading semaphore by polling it every 5 ms."""

    def __init__(self, backend: OpenAICompatBackend) -> None:
        self.backend = backend
        self.slots = threading.BoundedSemaphore(backend.max_concurrency)

    async def _post(self, client: httpx.AsyncClient, content: bytes) -> str:
        while not self.slots.acquire(blocking=False):
            await asyncio.sleep(0.005)
        try:
            response = await client.post(f"{self.backend.base_url}/chat/completions",
                                         content=content,
                                         headers={"Content-Type": "application/json"})
        finally:
            self.slots.release()
        return parse_completion(response.text, self.backend.base_url)

    def generate(self) -> str:
        content = self.backend.prepare(FRAMES, PROMPT).content

        async def run() -> str:
            async with httpx.AsyncClient(timeout=30.0) as client:
                return await self._post(client, content)

        return asyncio.run(run())

    def generate_many(self, count: int) -> list[str]:
        async def run() -> list[str]:
            gate = asyncio.Semaphore(self.backend.max_concurrency)
            async with httpx.AsyncClient(timeout=30.0) as client:
                async def one() -> str:
                    async with gate:
                        prepared = await asyncio.to_thread(self.backend.prepare, FRAMES, PROMPT)
                        return await self._post(client, prepared.content)

                return list(await asyncio.gather(*(one() for _ in range(count))))

        return asyncio.run(run())


class ThreadPeak:
    """The most threads alive while the block runs (sampled every millisecond)."""

    def __enter__(self) -> ThreadPeak:
        self.peak = threading.active_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, threading.active_count() - 1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(work: Callable[[], Any]) -> tuple[float, int]:
    with ThreadPeak() as peak:
        started = time.perf_counter()
        work()
        wall = time.perf_counter() - started
    return wall, peak.peak


def in_threads(call: Callable[[], Any], calls: int, threads: int) -> None:
    per_thread = [calls // threads + (i < calls % threads) for i in range(threads)]
    workers = [threading.Thread(target=lambda n=n: [call() for _ in range(n)])
               for n in per_thread]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    with FakeOpenAIServer() as srv:
        backend = OpenAICompatBackend(srv.base_url, model="m", max_concurrency=args.threads)
        old = PerCallClient(backend)
        backend.generate(FRAMES, PROMPT)
        old.generate()  # both warmed up
        print(f"{args.calls} calls, {args.threads} in flight, fake server "
              f"(threads: {threading.active_count()} before, server's own included)")
        print(f"{'case':<15}{'client':<10}{'wall s':>8}{'ms/call':>9}{'threads':>9}")
        cases: list[tuple[str, float, Callable[[], Any], Callable[[], Any]]] = [
            ("serial", 0.0, lambda: [backend.generate(FRAMES, PROMPT)
                                     for _ in range(args.calls)],
             lambda: [old.generate() for _ in range(args.calls)]),
            ("threads", args.delay_ms / 1000,
             lambda: in_threads(lambda: backend.generate(FRAMES, PROMPT), args.calls,
                                args.threads),
             lambda: in_threads(old.generate, args.calls, args.threads)),
            ("generate_many", args.delay_ms / 1000,
             lambda: backend.generate_many([(FRAMES, PROMPT)] * args.calls),
             lambda: old.generate_many(args.calls)),
        ]
        for name, delay, pooled, per_call in cases:
            srv.configure(delay_s=delay)
            for label, work in (("pooled", pooled), ("per-call", per_call)):
                wall, peak = measure(work)
                print(f"{name:<15}{label:<10}{wall:>8.2f}{wall * 1000 / args.calls:>9.2f}"
                      f"{peak:>9}")
        backend.close()


if __name__ == "__main__":
    main()
