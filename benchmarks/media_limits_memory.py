"""Peak memory of refusing (or serving) hostile pictures, issue 21 items 3 and 4.

    .venv/bin/python benchmarks/media_limits_memory.py
    .venv/bin/python benchmarks/media_limits_memory.py --compare /tmp/old_checkout/src

Makes (once, in the temp dir) the issue's two files:

* ``later_huge.mov`` (2.4 MB): a 64 x 64 PNG picture, then three 16000 x 16000 ones; the
  stream declares 64 x 64.
* ``declared_huge.mov`` (0.9 MB): two 12000 x 12000 PNG pictures, declared as such.

and runs each action in a fresh process (peak RSS: ``VmHWM``): ``probe``, an exact clip
(``cut``) and ``decode_frames`` of four frames, and the same decode and clip with probe's packet
scan bypassed (a VideoInfo of a small file pointed at the big one), which measures the
decoders' own limit (FFmpeg's ``max_pixels``). ``--compare SRC`` runs the same actions with
another checkout's ``src`` first on the path and prints both columns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

ACTION = r"""
import dataclasses, re, sys
from vidground.outputs.clips import cut
from vidground.timecode import Span
from vidground.video.decode import decode_frames
from vidground.video.probe import probe
action, path, small = sys.argv[1:4]
out = "ok"
try:
    if action == "probe":
        probe(path)
    elif action == "clip":
        cut(path, Span(0, 4), path + ".clip.mp4")
    elif action == "decode":
        decode_frames(path, [0.5, 1.5, 2.5, 3.5], size=(64, 64))
    else:  # the decoder alone: probe's facts of a small file, pointed at the big one
        info = dataclasses.replace(probe(small), path=path, duration=4.0, frame_count=4)
        if action == "decode-bypass":
            decode_frames(info, [0.5, 1.5, 2.5, 3.5], size=(64, 64))
        else:
            cut(info, Span(0, 4), path + ".clip.mp4")
except Exception as exc:
    out = "refused (" + type(exc).__name__ + ")"
# VmHWM, not ru_maxrss: a child's ru_maxrss keeps its parent's peak from before the exec
print(out, int(re.search(r"VmHWM:\s*(\d+)", open("/proc/self/status").read()).group(1)) // 1024)
"""

CASES = [("declared_huge.mov", "probe"), ("later_huge.mov", "probe"),
         ("later_huge.mov", "decode"), ("later_huge.mov", "clip"),
         ("later_huge.mov", "decode-bypass"), ("later_huge.mov", "clip-bypass")]


def make_files(folder: Path) -> None:
    from media import make_png_mov

    if not (folder / "small.mov").exists():
        make_png_mov(folder / "small.mov", [(64, 64)] * 4)
        make_png_mov(folder / "later_huge.mov", [(64, 64)] + [(16000, 16000)] * 3)
        make_png_mov(folder / "declared_huge.mov", [(12000, 12000)] * 2)


def run(src: Path, folder: Path, name: str, action: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", ACTION, action, str(folder / name),
                           str(folder / "small.mov")], env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    result, peak = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    return f"{result:<28} {int(peak):>6} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="another checkout's src folder")
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / "vidground-media-limits"
    folder.mkdir(exist_ok=True)
    make_files(folder)
    columns = [("this checkout", ROOT / "src")]
    if args.compare:
        columns.insert(0, ("compared", args.compare))
    print(f"{'file':<20} {'action':<14} " + " ".join(f"{label:<37}" for label, _ in columns))
    for name, action in CASES:
        cells = [run(src, folder, name, action) for _, src in columns]
        print(f"{name:<20} {action:<14} " + " ".join(f"{cell:<37}" for cell in cells))


if __name__ == "__main__":
    main()
