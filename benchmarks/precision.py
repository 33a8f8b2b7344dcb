"""How precise are the boundaries? Single-pass 1 fps / 2 fps vs adaptive vs adaptive + refine.

Encodes a set of synthetic videos (30 fps) with a red square visible during known intervals —
some shorter than a second, falling between two 1 fps samples — and asks the pipeline with a
model that really looks at the frames (the local fake OpenAI-compatible server from the tests).
Prints, per strategy: median and worst boundary error (ms), R@1 at IoU 0.5 / 0.7, mIoU, missed
events, model calls and frames sent (refinement frames included).

    python benchmarks/precision.py [--videos 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402

from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402
from vidground.timecode import Span  # noqa: E402

FPS = 30
STRATEGIES = {
    "1 fps": LocateOptions(frame_sampling_rate=1.0, refine=False, verify=False),
    "2 fps": LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False),
    "adaptive": LocateOptions(frame_sampling_rate="adaptive", refine=False, verify=False),
    "adaptive+refine": LocateOptions(frame_sampling_rate="adaptive", refine=True, verify=False),
}


@dataclass
class Case:
    path: Path
    truth: Span
    sub_second: bool


def make_cases(folder: Path, count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        duration = rng.choice([10.0, 15.0, 20.0])
        length = rng.uniform(0.25, 0.8) if i % 3 == 0 else rng.uniform(1.0, 4.0)
        # boundaries half-way between frames, so no frame time sits on an interval's edge
        start = (round(rng.uniform(0.5, duration - length - 0.5) * FPS) + 0.5) / FPS
        end = (round((start + length) * FPS) + 0.5) / FPS
        video = make_video(folder / f"case{i}.mp4", duration=duration, fps=FPS, size=(128, 96),
                           intervals=[(start, end)], seed=i, paint_index=False)
        cases.append(Case(video.path, shown_span(video.times, start, end), length < 1.0))
    return cases


def shown_span(frame_times: tuple[float, ...], start: float, end: float) -> Span:
    """The truth as frames show it: from the first frame showing the square to the first frame
    after the last one showing it (frame times are what the encoder really wrote)."""
    shown = [i for i, t in enumerate(frame_times) if start <= t < end]
    after = shown[-1] + 1
    return Span(frame_times[shown[0]],
                frame_times[after] if after < len(frame_times) else frame_times[-1] + 1 / FPS)


def evaluate(grounder: Grounder, cases: list[Case], options: LocateOptions) -> dict[str, float]:
    errors: list[float] = []
    ious: list[float] = []
    calls = frames = missed = 0
    for case in cases:
        g = grounder.locate(case.path, "When is the red square visible?", options)
        calls += int(g.timings["model_calls"])
        frames += int(g.timings["frames"] + g.timings["refine_frames"])
        if not g.spans:
            missed += 1
            ious.append(0.0)
            errors.extend([case.truth.duration, case.truth.duration])
            continue
        span = g.spans[0]
        ious.append(span.iou(case.truth))
        errors.extend([abs(span.start - case.truth.start), abs(span.end - case.truth.end)])
    n = len(cases)
    return {
        "median_ms": statistics.median(errors) * 1000,
        "worst_ms": max(errors) * 1000,
        "r1_05": sum(i >= 0.5 for i in ious) / n,
        "r1_07": sum(i >= 0.7 for i in ious) / n,
        "miou": sum(ious) / n,
        "missed": missed,
        "calls": calls,
        "frames": frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(color=(255, 0, 0)) as server:
        cases = make_cases(Path(tmp), args.videos, args.seed)
        subs = sum(c.sub_second for c in cases)
        print(f"{len(cases)} videos at {FPS} fps ({subs} with sub-second events); "
              f"one frame = {1000 / FPS:.1f} ms")
        grounder = Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                              openai_model=server.model))
        header = (f"{'strategy':<16} {'median ms':>9} {'worst ms':>9} {'R1@0.5':>7} "
                  f"{'R1@0.7':>7} {'mIoU':>6} {'missed':>6} {'calls':>6} {'frames':>7}")
        print(header)
        results = {}
        for name, options in STRATEGIES.items():
            r = results[name] = evaluate(grounder, cases, options)
            print(f"{name:<16} {r['median_ms']:>9.1f} {r['worst_ms']:>9.1f} {r['r1_05']:>7.2f} "
                  f"{r['r1_07']:>7.2f} {r['miou']:>6.3f} {r['missed']:>6d} {r['calls']:>6d} "
                  f"{r['frames']:>7d}")
        base, best = results["1 fps"], results["adaptive+refine"]
        print(f"adaptive+refine vs 1 fps: frames x{best['frames'] / base['frames']:.2f}, "
              f"median error x{best['median_ms'] / max(base['median_ms'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
