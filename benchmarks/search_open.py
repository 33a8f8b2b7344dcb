"""What the server saves by keeping its search index open between searches.

100,000 synthetic segments (1,000 videos of 100, eight words each from 5,000) in a SQLite
index; 40 two-word queries, each either opening the index (``check="quick"``, what every
search paid before), searching and closing it, or searching the index kept open (what
``Library`` does now). Prints p50/p95 in milliseconds.

    .venv/bin/python benchmarks/search_open.py
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vidground.search.engines import open_store  # noqa: E402
from vidground.search.query import search  # noqa: E402
from vidground.search.store import Segment, VideoRecord  # noqa: E402


def timed(queries: list[str], run: Callable[[str], object]) -> str:
    took = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return f"p50 {statistics.median(took):.1f} ms, p95 {took[int(len(took) * 0.95) - 1]:.1f} ms"


def main() -> None:
    rnd = random.Random(0)
    words = [f"w{i}x" for i in range(5000)]
    path = Path(tempfile.mkdtemp(prefix="vg-open-")) / "search.sqlite3"
    with open_store(str(path)) as store:
        store.put_many([(VideoRecord(f"/media/v{v}.mp4", f"id{v}", 100.0),
                         [Segment(i, i + 1, " ".join(rnd.choices(words, k=8)))
                          for i in range(100)]) for v in range(1000)])
    queries = [" ".join(rnd.choices(words, k=2)) for _ in range(40)]

    def reopened(query: str) -> object:
        with open_store(str(path), check="quick") as store:
            return search(store, query, 10, "/media")

    kept = open_store(str(path), check="quick")
    print("open, search, close:", timed(queries, reopened))
    print("kept open:          ", timed(queries, lambda q: search(kept, q, 10, "/media")))
    kept.close()


if __name__ == "__main__":
    main()
