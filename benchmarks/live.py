"""Watch live (issue 25): how fast and how exact are live alerts, and what does the gate save?

    .venv/bin/python benchmarks/live.py                      # 2 streams of 14 s, with and
                                                             # without the gate (about 1 min)
    .venv/bin/python benchmarks/live.py --streams 1 --seconds 10 --model-delay 0.5

Each stream is a generated clip (160x120, 24 fps, seeded) with two appearances of a red square
of 1.5-3 s at random times, played live as HLS by ``ffmpeg -re`` (0.5 s segments) through a
local http.server; the model is the fake OpenAI-compatible server that looks at the frames
(``--model-delay`` seconds per answer). Every stream is watched twice, with the frame-difference
gate and with a model call at every window, and the table gives, per mode:

* latency: "started" emitted minus the wall time the event's first frame was decoded (p50/p95);
* precision: |refined start/end - truth| in frames (median and worst);
* missed / duplicate alerts against the true events;
* model calls (window asks + refinement) per stream-minute, and windows skipped;
* and the same calls per stream-minute on a still stream (camera noise, no event), where the
  gate matters most (any event reported there counts as a duplicate).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402
from live_media import HlsStream  # noqa: E402
from media import make_video  # noqa: E402

from vidground.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from vidground.live.cli import run_watch  # noqa: E402

FPS = 24
QUERY = "When is the red square visible?"


def true_frames(duration: float, intervals: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """(first frame, first frame after) of each interval, as make_video draws them."""
    out = []
    for a, b in intervals:
        t, shown = 0.0, []
        for i in range(int(round(duration * FPS))):
            if a <= t < b:
                shown.append(i)
            t += 1 / FPS
        out.append((shown[0], shown[-1] + 1))
    return out


def events_for(seed: int, duration: float) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    first = rng.uniform(2.0, duration / 2 - 3.0)
    second = rng.uniform(duration / 2 + 0.5, duration - 4.5)
    return [(round(s, 3), round(s + rng.uniform(1.5, 3.0), 3)) for s in (first, second)]


def watch_once(folder: Path, clip: Path, duration: float, backend: Any, gate: bool
               ) -> tuple[list[dict[str, Any]], Any]:
    events: list[dict[str, Any]] = []
    with HlsStream(clip, folder) as hls:
        stats = run_watch(hls.url, QUERY, webhooks=[], mqtts=[], allow=["127.0.0.1"],
                          from_start=True, max_seconds=duration - 0.1, backend=backend,
                          gate=gate, on_event=events.append, max_interval=10.0,
                          quiet=True)
    return events, stats


def score(events: list[dict[str, Any]], truth: list[tuple[int, int]], row: dict[str, Any]
          ) -> None:
    ended = [e for e in events if e["event"] == "ended"]
    started = {e["id"]: e for e in events if e["event"] == "started"}
    matched: set[int] = set()
    for e in ended:
        s, t = round(e["start"] * FPS), round(e["end"] * FPS)
        hit = next((k for k, (a, b) in enumerate(truth) if s < b and t > a), None)
        if hit is None or hit in matched:
            row["duplicate"] += 1
            continue
        matched.add(hit)
        a, b = truth[hit]
        row["start_err"].append(abs(e["start"] * FPS - a))
        row["end_err"].append(abs(e["end"] * FPS - b))
        if e["id"] in started:
            row["latency"].append(started[e["id"]]["emitted_wall"] - e["wall_start"])
    row["missed"] += len(truth) - len(matched)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=14.0)
    parser.add_argument("--model-delay", type=float, default=0.2)
    args = parser.parse_args()
    if not 1 <= args.streams <= 10 or not 10 <= args.seconds <= 60:
        parser.error("--streams 1..10 and --seconds 10..60 keep this bounded")
    rows = {gate: {"latency": [], "start_err": [], "end_err": [], "missed": 0, "duplicate": 0,
                   "calls": 0, "stream_s": 0.0, "skipped": 0, "truth": 0}
            for gate in (True, False)}
    with tempfile.TemporaryDirectory(prefix="vidground-live-bench-") as tmp, \
            FakeOpenAIServer(delay_s=args.model_delay) as srv:
        backend = OpenAICompatBackend(srv.base_url, model=srv.model)
        for n in range(args.streams):
            intervals = events_for(n, args.seconds)
            clip = make_video(Path(tmp) / f"clip{n}.ts", duration=args.seconds, fps=FPS,
                              gop=12, intervals=intervals, paint_index=False, size=(160, 120),
                              seed=n).path
            truth = true_frames(args.seconds, intervals)
            for gate in (True, False):
                started = time.monotonic()
                events, stats = watch_once(Path(tmp) / f"hls{n}{gate}", clip, args.seconds,
                                           backend, gate)
                row = rows[gate]
                score(events, truth, row)
                row["truth"] += len(truth)
                row["calls"] += stats.model_calls + stats.refine_calls
                row["stream_s"] += stats.stream_s
                row["skipped"] += stats.skipped_busy + stats.skipped_budget
                print(f"stream {n} gate={'on' if gate else 'off'}: {len(events)} events, "
                      f"{stats.model_calls}+{stats.refine_calls} calls, "
                      f"{time.monotonic() - started:.1f}s", file=sys.stderr)
        still = make_video(Path(tmp) / "still.ts", duration=args.seconds, fps=FPS, gop=12,
                           intervals=((999.0, 1000.0),), paint_index=False, size=(160, 120),
                           noise=6).path
        still_rate = {}
        for gate in (True, False):
            events, stats = watch_once(Path(tmp) / f"still{gate}", still, args.seconds,
                                       backend, gate)
            still_rate[gate] = (stats.model_calls + stats.refine_calls) / (stats.stream_s / 60)
            rows[gate]["duplicate"] += len([e for e in events if e["event"] == "ended"])
        backend.close()
    print(f"\n{args.streams} stream(s) x {args.seconds:g} s, model delay {args.model_delay} s, "
          f"window 4 s every 1 s at 2 fps\n")
    head = (f"{'mode':<10}{'latency p50':>12}{'p95':>7}{'start err':>11}{'end err':>9}"
            f"{'worst':>7}{'missed':>8}{'dup':>5}{'calls/min':>11}{'skipped':>9}")
    print(head)
    print("-" * len(head))
    for gate in (True, False):
        r = rows[gate]
        errs = r["start_err"] + r["end_err"]
        per_min = r["calls"] / (r["stream_s"] / 60) if r["stream_s"] else float("nan")
        print(f"{'gate' if gate else 'every win':<10}{pct(r['latency'], 0.5):>11.2f}s"
              f"{pct(r['latency'], 0.95):>6.2f}s"
              f"{statistics.median(r['start_err']) if r['start_err'] else float('nan'):>10.1f}f"
              f"{statistics.median(r['end_err']) if r['end_err'] else float('nan'):>8.1f}f"
              f"{max(errs) if errs else float('nan'):>6.1f}f"
              f"{r['missed']:>5}/{r['truth']:<2}{r['duplicate']:>5}{per_min:>11.1f}"
              f"{r['skipped']:>9}")
    print(f"\nstill stream (camera noise, nothing happens), model calls per stream-minute: "
          f"gate {still_rate[True]:.1f}, every window {still_rate[False]:.1f}")


if __name__ == "__main__":
    main()
