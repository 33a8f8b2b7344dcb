"""Export cost against the number of spans (issue 21 item 2): seconds per format at 1,000,
2,000, 4,000 and 8,000 spans, for the code before the fix and now, side by side, with the
ratio (before / now) and the growth from the smallest to the largest size (linear: 8x).

The code before is taken from git (``--before REV``, default the commit before issue 21's
export work) into a temporary folder; each side runs in its own process. Bounded: a format
stops growing on a side once one size took more than ``--budget-s`` (its larger sizes are
shown as ``-``), and every process is killed after ``--timeout-s``.

    python benchmarks/exports.py [--sizes 1000,2000,4000,8000] [--formats edl,otio,...]
                                 [--before aa9de7d] [--budget-s 20] [--timeout-s 300]

Spans are one second long, two seconds apart, labelled, at 29.97 fps (drop-frame timecode),
from one absolute video path. The default run takes about a minute on a 2-core VM (most of
it the EDL before: 8,000 spans took ~15 s).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "aa9de7d8600ee944e978310fd9c61e8273bdfb0c"  # the commit before issue 21's exports
FORMATS = ("srt", "vtt", "chapters", "csv", "jsonl", "edl", "otio", "youtube")


def measure(sizes: list[int], formats: list[str], budget_s: float) -> None:
    """Child side: print one JSON line per (format, size) with the best of up to 3 runs."""
    from vidground.outputs.exports import export
    from vidground.outputs.results import Result
    from vidground.timecode import Span

    for fmt in formats:
        over = False
        for n in sizes:
            if over:
                print(json.dumps({"format": fmt, "spans": n, "seconds": None}), flush=True)
                continue
            result = Result(tuple(Span(i * 2.0, i * 2.0 + 1.0, f"event {i}") for i in range(n)),
                            fps=30000 / 1001, duration=n * 2.0 + 10, query="the dog jumps",
                            video="/media/match day.mp4")
            best, size = float("inf"), 0
            for _ in range(3):
                started = time.perf_counter()
                text = export(result, fmt)
                best = min(best, time.perf_counter() - started)
                size = len(text.encode("utf-8"))
                if best > budget_s / 4:
                    break  # slow enough that one run says it
            print(json.dumps({"format": fmt, "spans": n, "seconds": best, "bytes": size}),
                  flush=True)
            over = best > budget_s


def src_at(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` (from ``git archive``) under ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_side(src: Path, args: argparse.Namespace) -> dict[tuple[str, int], dict]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--child", "--sizes", args.sizes, "--formats",
           args.formats, "--budget-s", str(args.budget_s)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                             timeout=args.timeout_s).stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        print(f"(stopped after {args.timeout_s} s: {src})", file=sys.stderr)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {(r["format"], r["spans"]): r for r in rows}


def cell(row: dict | None) -> str:
    return "-" if not row or row.get("seconds") is None else f"{row['seconds']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--before", default=BEFORE, help="git revision of the code before")
    parser.add_argument("--budget-s", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    if args.child:
        measure(sizes, formats, args.budget_s)
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = run_side(src_at(args.before, Path(tmp)), args)
    now = run_side(ROOT / "src", args)
    print(f"seconds per export, best of 3 (before: {args.before[:10]}; now: working tree)")
    print(f"{'format':9} {'spans':>6} {'before s':>9} {'now s':>8} {'before/now':>10} "
          f"{'now MB':>7}")
    for fmt in formats:
        for n in sizes:
            b, a = before.get((fmt, n)), now.get((fmt, n))
            ratio = (f"{b['seconds'] / a['seconds']:.1f}x" if b and a and b.get("seconds")
                     and a.get("seconds") else "-")
            mb = f"{a['bytes'] / 1e6:.2f}" if a and a.get("bytes") else "-"
            print(f"{fmt:9} {n:>6} {cell(b):>9} {cell(a):>8} {ratio:>10} {mb:>7}")
        for label, side in (("before", before), ("now", now)):
            first, last = side.get((fmt, sizes[0])), side.get((fmt, sizes[-1]))
            if first and last and first.get("seconds") and last.get("seconds"):
                print(f"{'':9} growth {sizes[0]:,} -> {sizes[-1]:,} spans, {label}: "
                      f"{last['seconds'] / first['seconds']:.1f}x "
                      f"(linear: {sizes[-1] / sizes[0]:.0f}x)")


if __name__ == "__main__":
    main()
