"""``vidground search --ground``: what looking only at each hit's neighbourhood saves.

One 60 s, 10 fps clip with a red square at 12-13 s and 41-42 s, one search hit at 11.5-13.5 s
(rough, as a describe at 2 fps leaves it); the fake OpenAI-compatible model server
(tests/support/fake_openai_server.py, which looks at the frames); no frame cache, so every
frame needed is decoded. Compared: :func:`vidground.search.query.ground_hits` (the hit ± 2 s,
``time_range``) and ``locate`` over the whole video (how ``--ground`` worked before). Prints
a Markdown table: frames decoded (counted at the real decoder), model calls, seconds (the
second of two runs), spans found.

    .venv/bin/python benchmarks/search_ground.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402

import vidground.cache.frames as cache_frames  # noqa: E402
from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402
from vidground.search.query import ground_hits  # noqa: E402
from vidground.search.store import Hit  # noqa: E402
from vidground.video.probe import probe  # noqa: E402


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="vg-ground-"))
    video = folder / "long.mp4"
    make_video(video, duration=60.0, fps=10, intervals=((12.0, 13.0), (41.0, 42.0)))
    decoded = [0]
    real = cache_frames.decode_frames

    def counting(v: Any, times: Any, **kw: Any) -> Any:
        frames = real(v, times, **kw)
        decoded[0] += len(frames)
        return frames

    cache_frames.decode_frames = counting  # type: ignore[assignment]
    opts = LocateOptions(frame_sampling_rate=2.0)
    with FakeOpenAIServer() as model:
        grounder = Grounder(settings=Settings(
            backend="openai", openai_base_url=model.base_url, openai_model=model.model,
            openai_max_retries=0, data_dir=folder, cache_max_gb=0))
        hit = Hit(str(video), 11.5, 13.5, 1.0, "the red square is visible", "event")

        def window() -> list[tuple[float, float]]:
            return [(h.start, h.end) for h in ground_hits(grounder, [hit], "red square", opts)]

        def whole() -> list[tuple[float, float]]:
            found = grounder.locate(probe(video), "red square",
                                    replace(opts, all_occurrences=True))
            return [(s.start, s.end) for s in found.spans]

        print("| ground | frames decoded | model calls | seconds | spans |")
        print("|---|---|---|---|---|")
        for name, run in (("the hit ± 2 s (now)", window), ("the whole video (before)", whole)):
            for _ in range(2):  # the second run is reported
                decoded[0] = 0
                model.reset_stats()
                started = time.perf_counter()
                spans = run()
                took = time.perf_counter() - started
            print(f"| {name} | {decoded[0]} | {model.chat_count} | {took:.2f} | {spans} |")


if __name__ == "__main__":
    main()
