"""Library search (issue 27): how fast is indexing, how fast are queries at 10k and 100k
segments on SQLite and PostgreSQL, and does the first hit name the right video and moment?

    .venv/bin/python benchmarks/search.py                    # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/search.py --videos 4 --sizes 10000 --no-postgres \
        --sources-videos 1 --vector-sizes 10000               # a quick look

1. Index throughput: ``--videos`` generated videos (6 s, 10 fps, 160x120, two coloured squares
   each at known times) indexed by :func:`vidground.search.index_paths` through the fake model
   server (tests/support/fake_openai_server.py, which looks at the frames); videos per minute
   for a first index and for a re-index of unchanged files, and where a first index's time goes
   (model calls, frame decoding, identity + probe, the index write).
2. Query latency: synthetic segments (5-10 words drawn by a Zipf law from 5,000 words, a
   quarter Chinese: 3-6 words by a Zipf law from 3,000 two-character words)
   inserted straight into the store, then ``--queries`` random two-word (or Chinese) queries
   through :func:`vidground.search.search` (top 10): p50/p95 in ms, on SQLite (FTS5 trigram)
   and PostgreSQL (pg_trgm GIN), next to the same terms as a plain ``LIKE`` scan of SQLite's
   segments table (what an index saves).
3. Retrieval: each known event asked by its name ("red square", "黄色方块"): recall@1 (the
   first hit is a moment of that event: right video, overlapping the true time) and recall@5
   (share of the event's moments among the first five, out of at most five).
4. On-screen text and speech: ``--sources-videos`` generated videos (6 s, 25 fps, 480x270,
   three lines of text drawn with real fonts, two sentences of espeak-ng speech) indexed with
   ``sources="text"`` (real PP-OCR every second, boundaries to the frame) and
   ``sources="speech"`` (faster-whisper with a tiny random Whisper: the pipeline's cost, not a
   real model's), and whether each line shown is found first at its moment.
5. Vectors: the same synthetic segments with random 384-value vectors (a stand-in embedder:
   latency does not depend on what the vectors mean), fused text + vector queries: p50/p95,
   the first query (which reads the vectors) apart; and a tiny 384-wide BERT's embedding rate.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
os.environ.setdefault("VIDGROUND_CACHE_DIR", tempfile.mkdtemp(prefix="vidground-bench-"))

COLORS = {"red square": (255, 0, 0), "blue square": (0, 0, 255),
          "green square": (0, 255, 0), "黄色方块": (255, 255, 0),
          "magenta square": (255, 0, 255), "青色方块": (0, 255, 255)}
WORDS = ("man", "woman", "dog", "cat", "car", "door", "window", "kitchen", "street", "phone",
         "laptop", "screen", "ball", "table", "chair", "bicycle", "guitar", "camera", "river",
         "mountain", "runs", "opens", "closes", "jumps", "falls", "walks", "talks", "laughs",
         "sits", "stands", "cooks", "drives", "reads", "writes", "throws", "catches", "red",
         "blue", "green", "yellow", "small", "large", "old", "young", "slowly", "quickly")
CHINESE = ("一个人打开门", "小狗在草地上奔跑", "汽车停在路边", "女人在厨房做饭", "孩子踢足球",
           "屏幕上显示支付失败", "老人坐在椅子上", "猫跳上桌子")


def make_events_video(path: Path, events: list[tuple[str, float, float]], fps: int = 10,
                      seconds: float = 6.0) -> None:
    import av
    from media import draw_frame

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={
            "preset": "ultrafast", "x264-params": "bframes=0"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(int(seconds * fps)):
            t = i / fps
            color = next((COLORS[n] for n, a, b in events if a <= t < b), None)
            frame = av.VideoFrame.from_ndarray(
                draw_frame((160, 120), i, color is not None, color or (0, 0, 0)),
                format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def library(folder: Path, n: int, seed: int = 7) -> dict[str, list[tuple[str, float, float]]]:
    rng = random.Random(seed)
    truth: dict[str, list[tuple[str, float, float]]] = {}
    names = list(COLORS)
    for k in range(n):  # every name in use once there are three videos
        first, second = names[(2 * k) % len(names)], names[(2 * k + 1) % len(names)]
        a = round(rng.uniform(0.5, 1.5), 1)
        b = round(rng.uniform(3.0, 4.0), 1)
        events = [(first, a, a + 1.2), (second, b, b + 1.5)]
        path = folder / f"clip{k:03d}.mp4"
        make_events_video(path, events)
        truth[os.path.realpath(path)] = events
    return truth


def bench_index(n: int) -> tuple[list[list[str]], dict[str, object]]:
    from fake_openai_server import FakeOpenAIServer

    from vidground.cache.identity import file_identity
    from vidground.config import Settings
    from vidground.grounding import Grounder
    from vidground.options import LocateOptions
    from vidground.outputs.describe import describe
    from vidground.search import index_paths, open_store
    from vidground.search.store import Segment, VideoRecord
    from vidground.video.probe import probe

    work = Path(tempfile.mkdtemp(prefix="vidground-search-bench-"))
    (work / "videos").mkdir()
    truth = library(work / "videos", n)
    options = LocateOptions(frame_sampling_rate=2.0)
    rows: list[list[str]] = []
    with FakeOpenAIServer(events=COLORS) as server, \
            open_store(str(work / "search.sqlite3"), embedder=None) as store:
        grounder = Grounder(settings=Settings(
            backend="openai", openai_base_url=server.base_url, openai_model=server.model,
            openai_max_retries=0, cache_max_gb=0))
        started = time.perf_counter()
        report = index_paths([work / "videos"], store=store, grounder=grounder, options=options,
                             sources="events")
        first = time.perf_counter() - started
        assert len(report.indexed) == n, report.to_dict()
        calls = server.chat_count
        started = time.perf_counter()
        again = index_paths([work / "videos"], store=store, grounder=grounder, options=options,
                            sources="events")
        second = time.perf_counter() - started
        assert len(again.skipped) == n
        rows.append(["first index", f"{n}", f"{first:.2f}", f"{n / first * 60:.0f}",
                     f"{calls / n:.1f}"])
        rows.append(["re-index, unchanged", f"{n}", f"{second:.4f}",
                     f"{n / max(second, 1e-9) * 60:.0f}", "0"])
        # where a first index's time goes: the same steps, timed one by one
        model_s = decode_s = prep_s = write_s = 0.0
        for path in truth:
            t0 = time.perf_counter()
            file_identity(path)
            info = probe(path)
            prep_s += time.perf_counter() - t0
            d = describe(grounder, info, options)
            model_s += float(d.timings.get("model_s", 0)) + float(d.timings.get("refine_s", 0))
            decode_s += float(d.timings.get("decode_s", 0))
            t0 = time.perf_counter()
            store.put(VideoRecord(path + ".copy", "x"),
                      [Segment(e.start, e.end, e.label or "") for e in d.events])
            write_s += time.perf_counter() - t0
        store.remove([p + ".copy" for p in truth])
        total = model_s + decode_s + prep_s + write_s
        split = {"model calls + refinement": model_s, "frame decoding (coarse pass)": decode_s,
                 "identity + probe": prep_s, "index write": write_s}
        recall = retrieval(store, truth)
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in split.items())
    return rows, {"split": shares, "recall": recall}


def retrieval(store, truth: dict[str, list[tuple[str, float, float]]]) -> dict[str, float]:
    from vidground.search import search

    at1, at5 = [], []
    for name in COLORS:
        moments = [(v, a, b) for v, events in truth.items() for n, a, b in events if n == name]
        if not moments:
            continue

        def right(hit, moments=moments) -> bool:
            return any(hit.video == v and hit.start < b and hit.end > a for v, a, b in moments)

        hits = search(store, name, top=5)
        at1.append(1.0 if hits and right(hits[0]) else 0.0)
        at5.append(sum(right(h) for h in hits) / min(5, len(moments)))
    return {"recall@1": statistics.mean(at1), "recall@5": statistics.mean(at5),
            "queries": len(at1)}


def vocabulary(size: int = 5000, seed: int = 3) -> list[str]:
    """The fixed words first, then made-up words (syllables), in Zipf rank order."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "da", "fo", "gu", "hi",
                 "ja", "ke", "li", "mo", "nu", "pa", "re", "si", "ta", "wo", "ze"]
    words = list(WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def chinese_words(size: int = 3000, seed: int = 4) -> list[str]:
    """Made-up two-character Chinese words (common CJK characters), in Zipf rank order."""
    rng = random.Random(seed)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
    words: dict[str, None] = {w: None for phrase in CHINESE for w in (phrase[:2], phrase[2:4])}
    while len(words) < size:
        words.setdefault(rng.choice(chars) + rng.choice(chars), None)
    return list(words)


VOCAB = vocabulary()
ZIPF = [1.0 / (rank + 1) for rank in range(len(VOCAB))]
CN_VOCAB = chinese_words()
CN_ZIPF = [1.0 / (rank + 1) for rank in range(len(CN_VOCAB))]


def chinese_sentence(rng: random.Random) -> str:
    return "".join(rng.choices(CN_VOCAB, CN_ZIPF, k=rng.randint(3, 6)))


def synthetic(n_segments: int, seed: int = 1):
    """Segments whose words follow a Zipf law over :data:`VOCAB` (a quarter Chinese)."""
    from vidground.search.store import Segment, VideoRecord

    rng = random.Random(seed)
    per_video = 100
    items = []
    for v in range(n_segments // per_video):
        segments = []
        for i in range(per_video):
            if rng.random() < 0.25:
                text = chinese_sentence(rng)
            else:
                text = " ".join(rng.choices(VOCAB, ZIPF, k=rng.randint(5, 10)))
            segments.append(Segment(i * 2.0, i * 2.0 + 1.5, text, "event"))
        items.append((VideoRecord(f"/library/{v // 100}/v{v:05d}.mp4", f"id{v}", 200.0),
                      segments))
    return items


def queries(n: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.25:
            phrase = chinese_sentence(rng)
            start = rng.randint(0, len(phrase) - 4)
            out.append(phrase[start:start + rng.randint(3, 4)])
        else:
            out.append(" ".join(rng.choices(VOCAB, ZIPF, k=2)))
    return out


def latency(store, qs: list[str]) -> tuple[float, float]:
    from vidground.search import search

    search(store, qs[0], top=10)  # warm
    times = []
    for q in qs:
        t0 = time.perf_counter()
        search(store, q, top=10)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def scan_latency(path: Path, qs: list[str]) -> tuple[float, float]:
    """The same terms as a LIKE scan of the segments table, no full-text index."""
    import sqlite3

    from vidground.search.terms import long_terms, terms

    conn = sqlite3.connect(path)
    times = []
    for q in qs:
        found = long_terms(terms(q))
        where = " OR ".join("text LIKE ?" for _ in found)
        t0 = time.perf_counter()
        conn.execute(f"SELECT id FROM segments WHERE {where} LIMIT 10",
                     [f"%{t}%" for t in found]).fetchall()
        conn.execute(f"SELECT count(*) FROM segments WHERE {where}",
                     [f"%{t}%" for t in found]).fetchall()  # ranking needs every match
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def bench_queries(sizes: list[int], n_queries: int, use_pg: bool) -> list[list[str]]:
    from vidground.search import open_store
    from vidground.search.sqlite import SQLiteSearchStore

    qs = queries(n_queries)
    rows: list[list[str]] = []
    pg = None
    if use_pg:
        from pg_server import PostgresServer

        pg = PostgresServer().start()
    try:
        for size in sizes:
            items = synthetic(size)
            work = Path(tempfile.mkdtemp(prefix="vidground-search-q-"))
            engines = [("SQLite FTS5 trigram", str(work / "s.sqlite3"))]
            if pg is not None:
                engines.append(("PostgreSQL pg_trgm", pg.new_database(f"bench{size}")))
            for label, where in engines:
                with open_store(where, embedder=None) as store:
                    t0 = time.perf_counter()
                    for i in range(0, len(items), 50):
                        store.put_many(items[i:i + 50])
                    load = time.perf_counter() - t0
                    p50, p95 = latency(store, qs)
                rows.append([label, f"{size:,}", f"{load:.1f}", f"{p50:.2f}", f"{p95:.2f}"])
            p50, p95 = scan_latency(work / "s.sqlite3", qs)
            rows.append(["SQLite LIKE scan (no index)", f"{size:,}", "-", f"{p50:.2f}",
                         f"{p95:.2f}"])
            for check in ("quick", "full"):
                t0 = time.perf_counter()
                SQLiteSearchStore(work / "s.sqlite3", check=check).close()
                opened = (time.perf_counter() - t0) * 1000
                rows.append([f"SQLite open, {check} check", f"{size:,}", "-", f"{opened:.0f}",
                             "-"])
    finally:
        if pg is not None:
            pg.stop()
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def bench_sources(n: int) -> list[list[str]]:
    """Index ``n`` generated videos with on-screen text and speech; rows of the table."""
    from fake_openai_server import FakeOpenAIServer
    from perception_media import DEFAULT_TEXTS, make_perception_video
    from tiny_whisper import make_tiny_whisper

    from vidground.config import Settings
    from vidground.grounding import Grounder
    from vidground.search import index_paths, open_store, search

    os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="vidground-search-sources-"))
    (work / "videos").mkdir()
    made = [make_perception_video(work / "videos" / f"clip{k}.mp4", seed=11 + k)
            for k in range(n)]
    whisper = make_tiny_whisper(work / "whisper")
    seconds = sum(m.duration for m in made)
    rows: list[list[str]] = []
    with FakeOpenAIServer(events=COLORS) as server, \
            open_store(str(work / "search.sqlite3"), embedder=None) as store:
        grounder = Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                              openai_model=server.model))
        for label, sources, env in (("on-screen text (PP-OCR, 1 s, frame-exact)", "text", None),
                                    ("speech (tiny random Whisper)", "speech", str(whisper))):
            if env:
                os.environ["VIDGROUND_SPEECH_MODEL"] = env
            t0, cpu0 = time.perf_counter(), time.process_time()
            report = index_paths([work / "videos"], store=store, grounder=grounder,
                                 sources=sources)
            took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            assert len(report.indexed) == n, report.to_dict()
            rows.append([label, f"{n}", f"{took:.1f}", f"{n / took * 60:.1f}",
                         f"{took / seconds:.2f}", f"{cpu / seconds:.2f}"])
        # every video shows the same lines: the first hit must be one of them, to the frame
        showing = {os.path.realpath(m.path): m for m in made}
        found = 0
        for event in DEFAULT_TEXTS:
            hits = search(store, event.text, top=1)
            video = showing.get(hits[0].video) if hits else None
            found += bool(video and hits[0].source == "text"
                          and abs(hits[0].start - event.first / video.fps) <= 1.01 / video.fps
                          and abs(hits[0].end - (event.last + 1) / video.fps)
                          <= 1.01 / video.fps)
        rows.append([f"lines found first, to the frame: {found} of {len(DEFAULT_TEXTS)}",
                     "", "", "", "", ""])
    os.environ.pop("VIDGROUND_SPEECH_MODEL", None)
    return rows


class RandomEmbedder:
    """Random unit vectors of ``dim`` values (query latency does not depend on meaning)."""

    name = "random-384"
    dim = 384

    def __init__(self, seed: int = 5) -> None:
        import numpy as np

        self._rng = np.random.default_rng(seed)

    def embed(self, texts):
        import numpy as np

        v = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_vectors(sizes: list[int], n_queries: int, use_pg: bool) -> list[list[str]]:
    from tiny_embedder import make_tiny_embedder

    from vidground.search import open_store, search
    from vidground.search.embeddings import Embedder

    qs = queries(n_queries)
    rows: list[list[str]] = []
    work = Path(tempfile.mkdtemp(prefix="vidground-search-v-"))
    bert = Embedder(make_tiny_embedder(work / "bert384", hidden=384))
    texts = [" ".join(random.Random(k).choices(VOCAB, ZIPF, k=8)) for k in range(2000)]
    bert.embed(texts[:32])
    t0 = time.perf_counter()
    bert.embed(texts)
    rate = len(texts) / (time.perf_counter() - t0)
    rows.append(["embedding, tiny BERT (1 layer, 384 wide)", f"{len(texts):,}", "-",
                 f"{rate:.0f} segments/s", "-", "-"])
    pg = None
    if use_pg:
        from pg_server import PostgresServer

        pg = PostgresServer().start()
    try:
        for size in sizes:
            items = synthetic(size)
            engines = [("SQLite + vectors", str(work / f"v{size}.sqlite3"))]
            if pg is not None:
                engines.append(("PostgreSQL + vectors", pg.new_database(f"vec{size}")))
            for label, where in engines:
                with open_store(where, embedder=RandomEmbedder()) as store:  # type: ignore[arg-type]
                    t0 = time.perf_counter()
                    for i in range(0, len(items), 50):
                        store.put_many(items[i:i + 50])
                    load = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    search(store, qs[0], top=10)
                    cold = (time.perf_counter() - t0) * 1000
                    p50, p95 = latency(store, qs)
                rows.append([label, f"{size:,}", f"{load:.1f}", f"{cold:.0f}", f"{p50:.2f}",
                             f"{p95:.2f}"])
    finally:
        if pg is not None:
            pg.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--sources-videos", type=int, default=3)
    parser.add_argument("--vector-sizes", default="10000,100000")
    args = parser.parse_args()

    rows, extra = bench_index(args.videos)
    print("## Index throughput (fake model server, describe at 2 fps, refinement on)\n")
    print(table(["run", "videos", "seconds", "videos/min", "model calls/video"], rows))
    print(f"\nwhere a first index's time goes: {extra['split']}")
    recall = extra["recall"]
    print(f"\n## Retrieval on the generated videos ({recall['queries']} event names)\n")
    print(table(["recall@1", "recall@5"], [[f"{recall['recall@1']:.2f}",
                                            f"{recall['recall@5']:.2f}"]]))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"\n## Query latency, top 10 ({args.queries} queries, a quarter Chinese)\n")
    print(table(["engine", "segments", "load s", "p50 ms", "p95 ms"],
                bench_queries(sizes, args.queries, not args.no_postgres)))
    if args.sources_videos:
        print("\n## On-screen text and speech (6 s videos, 480x270, SQLite)\n")
        print(table(["source", "videos", "seconds", "videos/min", "s per video second",
                     "CPU s per video second"],
                    bench_sources(args.sources_videos)))
    vector_sizes = [int(s) for s in args.vector_sizes.split(",") if s]
    if vector_sizes:
        print(f"\n## Text + vector queries, top 10 ({args.queries} queries, 384-value "
              "vectors)\n")
        print(table(["engine", "segments", "load s", "first query ms", "p50 ms", "p95 ms"],
                    bench_vectors(vector_sizes, args.queries, not args.no_postgres)))


if __name__ == "__main__":
    main()
