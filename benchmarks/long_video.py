"""A 2-hour video end to end: time, windows, model calls, peak memory, and is the span right?

    .venv/bin/python benchmarks/long_video.py [--hours 2] [--fps 10] [--size 320x180]

Encodes (once, cached in the temp dir) a ``--hours`` long clip with a red square visible for
6 s near the end, then asks the whole pipeline (probe, sampling, windows, decode, the model,
refinement) with the model that looks at the frames (tests/support/fake_openai_server.py).
Prints the wall time, windows and model calls, the found span against the truth, and the
process's peak
RSS (of this process, which also runs the fake model server and its JPEG decoding) after each
run — frames are decoded one batch of windows at a time (as many as the backend has requests in
flight), so the peak is set by ``max_frames`` and the concurrency, not by the video's length:
compare ``--hours 0.5`` with ``--hours 2``. Runs fixed 1 fps (``max_frames`` lowers it to fit)
and adaptive.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402

from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clip(hours: float, fps: int, size: tuple[int, int], event: tuple[float, float]) -> Path:
    path = Path(tempfile.gettempdir()) / f"vidground_long_{hours:g}h_{fps}fps_{size[0]}.mp4"
    if not path.exists():
        start = time.perf_counter()
        print(f"encoding {path} ...", flush=True)
        tmp = path.with_suffix(".part.mp4")
        make_video(tmp, duration=hours * 3600, fps=fps, size=size, intervals=[event],
                   paint_index=False, gop=fps * 4)
        tmp.rename(path)
        print(f"encoded in {time.perf_counter() - start:.0f}s", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--max-frames", type=int, default=768)
    args = parser.parse_args()
    size = (int(args.size.split("x")[0]), int(args.size.split("x")[1]))
    duration = args.hours * 3600
    event = (duration - 600.25, duration - 594.25)  # 6 s, ten minutes before the end
    path = clip(args.hours, args.fps, size, event)

    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as server:
        grounder = Grounder(settings=Settings(
            backend="openai", openai_base_url=server.base_url, openai_model=server.model,
            openai_max_concurrency=4))
        print(f"{path.name}: {duration:.0f}s, {args.fps} fps, {size[0]}x{size[1]}; "
              f"truth {event[0]:.3f}-{event[1]:.3f}s; peak RSS before: {peak_rss_mib():.0f} MiB")
        print(f"{'sampling':10s} {'seconds':>8s} {'windows':>7s} {'calls':>5s} {'frames':>6s} "
              f"{'start err ms':>12s} {'end err ms':>10s} {'peak RSS MiB':>12s}")
        for name, rate in (("1 fps", 1.0), ("adaptive", "adaptive")):
            options = LocateOptions(frame_sampling_rate=rate, max_frames=args.max_frames,
                                    verify=False)
            start = time.perf_counter()
            g = grounder.locate(path, "When is the red square visible?", options)
            seconds = time.perf_counter() - start
            if g.spans:
                errors = (f"{abs(g.spans[0].start - event[0]) * 1000:12.0f} "
                          f"{abs(g.spans[0].end - event[1]) * 1000:10.0f}")
            else:
                errors = f"{'not found':>12s} {'':>10s}"
            print(f"{name:10s} {seconds:8.1f} {int(g.timings['windows']):7d} "
                  f"{int(g.timings['model_calls']):5d} {int(g.timings['frames']):6d} "
                  f"{errors} {peak_rss_mib():12.0f}", flush=True)


if __name__ == "__main__":
    main()
