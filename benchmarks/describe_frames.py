"""Frames decoded and JPEG-encoded per ``describe`` of one clip, against the fake model server
(``tests/support/fake_openai_server.py``) with a byte cap per request, cache off and on.

Each frame should be decoded once (overlapping windows share theirs) and encoded once at the
setting it is sent with; what is encoded besides is one sample of frames to choose that setting
(issue 22.7). Before that change, the 20 s clip at a 150 kB cap took 214 encodes (543 at
60 kB) and 42 decodes for its 40 frames; ``python benchmarks/describe_frames.py`` prints the
figures now::

    cap_kB  cache  frames_sent  decoded  jpeg_encodes  requests
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="clip length (s)")
    parser.add_argument("--caps", default="150,60", help="request caps in kB, comma-separated")
    args = parser.parse_args()

    from fake_openai_server import FakeOpenAIServer
    from media import make_video

    import vidground.backends.images as images
    import vidground.cache.frames as frames_module
    from vidground.config import Settings
    from vidground.grounding import Grounder
    from vidground.options import LocateOptions
    from vidground.outputs.describe import describe

    counts: Counter[str] = Counter()
    encode, decode = images.encode_jpeg, frames_module.decode_frames

    def counted_encode(image: Any, **kwargs: Any) -> bytes:
        counts["encodes"] += 1
        return encode(image, **kwargs)

    def counted_decode(info: Any, times: Any, **kwargs: Any) -> Any:
        counts["decoded"] += len(times)
        return decode(info, times, **kwargs)

    images.encode_jpeg = counted_encode  # type: ignore[assignment]
    frames_module.decode_frames = counted_decode  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "noisy.mp4", duration=args.duration, fps=10,
                           size=(320, 240), noise=40, intervals=[(3.0, 5.0)]).path
        print("cap_kB  cache  frames_sent  decoded  jpeg_encodes  requests")
        with FakeOpenAIServer(events={"red square": (255, 0, 0)}) as server:
            for cap_kb in (int(c) for c in args.caps.split(",")):
                cap = cap_kb * 1000
                server.configure(max_body_bytes=cap)
                for cached in (False, True):
                    server.reset_stats()
                    counts.clear()
                    grounder = Grounder(settings=Settings(
                        backend="openai", openai_base_url=server.base_url,
                        openai_model=server.model, openai_max_retries=0,
                        openai_max_request_mb=cap / 1024 / 1024,
                        cache_dir=str(Path(tmp) / f"cache{cap_kb}"),
                        cache_max_gb=1.0 if cached else 0.0))
                    describe(grounder, video, LocateOptions(
                        frame_sampling_rate=2.0, max_frames_per_call=16, refine=False,
                        verify=False))
                    sent = {t for r in server.requests for t in r.times}
                    print(f"{cap_kb:>6}  {'on' if cached else 'off':>5}  {len(sent):>11}  "
                          f"{counts['decoded']:>7}  {counts['encodes']:>12}  "
                          f"{len(server.requests):>8}")


if __name__ == "__main__":
    main()
