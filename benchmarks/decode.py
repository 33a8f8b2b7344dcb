"""Decode N frames sampled at ~1 fps from a long 720p H.264 clip: vidground vs the alternatives.

    .venv/bin/python benchmarks/decode.py --minutes 10 --gop-seconds 8            # B-frames
    .venv/bin/python benchmarks/decode.py --minutes 10 --gop-seconds 8 --no-bframes
    .venv/bin/python benchmarks/decode.py --minutes 10 --gop-seconds 1   # phone-like GOPs

Encodes (once, cached in the temp dir) a ``--minutes`` long 1280x720 30 fps H.264 clip with a
fixed keyframe interval. ``--content textured`` (default) is camera-like: a detailed scene that
pans slowly, with sensor noise, x264 ``veryfast`` CRF 23 (about 1.4 Mbit/s) — it costs about
what real footage costs to decode. ``--content flat`` is the old synthetic clip (flat colours,
x264 ``ultrafast``: no CABAC, no deblocking), which decodes at several thousand frames per
second, so fixed per-frame overheads dominate it. Then it decodes the same frames with

* vidground ``decode_frames`` (GOP-planned, exact pts),
* qwen-vl-utils ``fetch_video`` (its default reader here: decord; includes its resize),
* decord ``VideoReader.get_batch``,
* OpenCV, seeking to each frame (``CAP_PROP_POS_FRAMES``) and a sequential ``grab`` loop,
* naive PyAV (decode every frame, keep the wanted ones).

When every 1-second sampling interval holds a keyframe (``--gop-seconds 1`` or less), one more
row times what ``vidground locate`` really decodes at a fixed rate: the same number of frames,
each moved to the keyframe of its interval (``snap_to_keyframes``), so only keyframes are
decoded. These are other frames than the rows above (same count, same one-per-interval
coverage), so that row is reported apart and never counts as the "same frames" comparison.
Each method starts without vidground's cached keyframe index.

Prints frames, seconds, x-realtime and the ratio of each to vidground, and checks that every
timestamp vidground returns is the true pts of the displayed frame (painted frame numbers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from media import make_video, paint_index, read_painted_index  # noqa: E402

from vidground.video.decode import decode_frames, keyframe_times  # noqa: E402
from vidground.video.index import clear_cache  # noqa: E402
from vidground.video.probe import probe  # noqa: E402
from vidground.video.sampling import (  # noqa: E402
    interval_centres,
    last_frame_time,
    snap_to_keyframes,
)

FPS = 30


def clip(minutes: float, gop_seconds: float, bframes: bool, content: str) -> Path:
    """The cached benchmark clip (encoded on first use)."""
    name = (f"vidground_bench_{content}_{minutes:g}min_gop{gop_seconds:g}"
            f"{'_b' if bframes else ''}.mp4")
    path = Path(tempfile.gettempdir()) / name
    if not path.exists():
        start = time.perf_counter()
        print(f"encoding {path} ...", flush=True)
        tmp = path.with_suffix(".part.mp4")
        if content == "textured":
            make_textured(tmp, minutes * 60, gop=int(gop_seconds * FPS), bframes=bframes)
        else:
            make_video(tmp, duration=minutes * 60, fps=FPS, size=(1280, 720), codec="h264",
                       gop=int(gop_seconds * FPS), bframes=bframes, motion=True,
                       intervals=[(minutes * 30, minutes * 30 + 5)])
        tmp.rename(path)
        print(f"encoded in {time.perf_counter() - start:.1f}s", flush=True)
    return path


def make_textured(path: Path, seconds: float, *, gop: int, bframes: bool,
                  size: tuple[int, int] = (1280, 720)) -> None:
    """A camera-like clip: a detailed scene panning slowly, sensor noise, frame numbers painted
    along the top (for the exactness check)."""
    w, h = size
    rng = np.random.default_rng(7)
    big_h, big_w = h * 2, w * 2
    scene = np.zeros((big_h, big_w, 3), np.float32)
    for scale, amp in ((64, 90), (16, 50), (4, 30), (1, 18)):  # detail at several scales
        small = rng.uniform(-1, 1, (big_h // scale + 2, big_w // scale + 2, 3))
        scene += amp * np.repeat(np.repeat(small, scale, 0), scale, 1)[:big_h, :big_w]
    scene_u8 = np.clip(scene + 120, 0, 255).astype(np.uint8)
    noise = [rng.integers(-6, 7, (h, w, 3), dtype=np.int16) for _ in range(8)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={
            "preset": "veryfast", "crf": "23",  # (a "bframes" option would be ignored)
            "x264-params": f"bframes={3 if bframes else 0}:keyint={gop}:min-keyint={gop}"
                           ":scenecut=0"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * FPS)):
            t = i / FPS
            x = int((np.sin(t / 7) * 0.5 + 0.5) * (big_w - w))
            y = int((np.cos(t / 11) * 0.5 + 0.5) * (big_h - h))
            image = np.clip(scene_u8[y:y + h, x:x + w].astype(np.int16) + noise[i % 8], 0, 255
                            ).astype(np.uint8)
            paint_index(image, i)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def frame_types(path: Path, frames: int) -> str:
    """Counts of picture types among the first ``frames`` frames, e.g. ``I 1, P 59, B 180``."""
    counts = {"I": 0, "P": 0, "B": 0}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= frames:
                break
            kind = PictureType(frame.pict_type).name
            counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def wanted_indices(n_total: int, sample_fps: float) -> list[int]:
    """The frame indices qwen-vl-utils picks: linspace over the video, an even count."""
    n = int(n_total / FPS * sample_fps) // 2 * 2
    return np.linspace(0, n_total - 1, n).round().astype(int).tolist()


def run_ours(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    return len(decode_frames(path, [i / FPS for i in idx], size=size))


def run_ours_1thread(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    return len(decode_frames(path, [i / FPS for i in idx], size=size, threads=1))


def snapped_times(path: Path, n: int) -> list[float] | None:
    """``vidground locate``'s fixed-rate sampling for ``n`` frames: interval centres moved to
    the keyframe in each interval, or None when some interval holds no keyframe."""
    info = probe(path)
    keys = keyframe_times(info)
    centres = interval_centres(info.duration, n, last_frame=last_frame_time(info))
    return snap_to_keyframes(centres, keys or [], info.duration / n)


def run_ours_snapped(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    times = snapped_times(path, len(idx))  # the keyframe scan is timed too
    return len(decode_frames(path, times, size=size)) if times else 0


def run_qwen(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    from qwen_vl_utils.vision_process import fetch_video

    video = fetch_video({"video": str(path), "fps": len(idx) / (max(idx) + 1) * FPS,
                         "max_frames": len(idx)}, image_patch_size=16)
    return int(video.shape[0])


def run_decord(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    import decord

    kwargs = {"width": size[0], "height": size[1]} if size else {}
    reader = decord.VideoReader(str(path), num_threads=0, **kwargs)
    return int(reader.get_batch(idx).asnumpy().shape[0])


def run_cv2_seek(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    got = 0
    for i in idx:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, image = cap.read()
        if ok:
            image = cv2.cvtColor(cv2.resize(image, size) if size else image, cv2.COLOR_BGR2RGB)
            got += 1
    cap.release()
    return got


def run_cv2_grab(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    wanted, got, i = set(idx), 0, 0
    last = max(idx)
    while i <= last and cap.grab():
        if i in wanted:
            ok, image = cap.retrieve()
            image = cv2.cvtColor(cv2.resize(image, size) if size else image, cv2.COLOR_BGR2RGB)
            got += 1
        i += 1
    cap.release()
    return got


def run_naive_pyav(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    wanted, got = set(idx), 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                kwargs = {"width": size[0], "height": size[1]} if size else {}
                frame.to_ndarray(format="rgb24", **kwargs)
                got += 1
            if i >= max(idx):
                break
    return got


def check_exact(path: Path, idx: list[int], size: tuple[int, int] | None) -> int:
    """Number of frames whose time or painted number is wrong (must be 0)."""
    frames = decode_frames(path, [i / FPS for i in idx], size=None)
    wrong = 0
    for i, frame in zip(idx, frames, strict=True):
        painted = read_painted_index(frame.image)
        if painted != i or abs(frame.time - i / FPS) > 1e-6 or frame.index != i:
            wrong += 1
    return wrong


def available(name: str) -> bool:
    try:
        __import__({"qwen-vl-utils": "qwen_vl_utils", "opencv": "cv2"}.get(name, name))
        return True
    except ImportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--gop-seconds", type=float, default=8.0)
    parser.add_argument("--sample-fps", type=float, default=1.0)
    parser.add_argument("--bframes", action=argparse.BooleanOptionalAction, default=True,
                        help="encode with B-frames (x264's default; most real files have them)")
    parser.add_argument("--content", choices=("textured", "flat"), default="textured")
    parser.add_argument("--resize", default="", help="WxH output size, e.g. 448x256")
    parser.add_argument("--skip", default="", help="comma list of methods to leave out")
    args = parser.parse_args()

    path = clip(args.minutes, args.gop_seconds, args.bframes, args.content)
    info = probe(path)
    idx = wanted_indices(info.frame_count, args.sample_fps)
    size = tuple(int(v) for v in args.resize.split("x")) if args.resize else None
    print(f"{path.name}: {info.duration:.0f}s {info.width}x{info.height} {info.fps:g} fps, "
          f"{info.frame_count} frames, GOP {args.gop_seconds:g}s, {args.content}, "
          f"{'B-frames' if args.bframes else 'no B-frames'}, "
          f"{len(idx)} frames wanted, size {size or 'native'}")
    print(f"picture types in the first GOP: {frame_types(path, int(args.gop_seconds * FPS))}")
    print(f"vidground exactness: {check_exact(path, idx, size)} wrong frames of {len(idx)}")

    methods: list[tuple[str, str, Callable[..., int]]] = [
        ("vidground decode_frames", "av", run_ours),
        ("vidground, 1 decode thread", "av", run_ours_1thread),
        ("qwen-vl-utils fetch_video", "qwen-vl-utils", run_qwen),
        ("decord get_batch", "decord", run_decord),
        ("opencv seek per frame", "opencv", run_cv2_seek),
        ("opencv grab loop", "opencv", run_cv2_grab),
        ("naive pyav decode-all", "av", run_naive_pyav),
    ]
    if snapped_times(path, len(idx)):  # every sampling interval holds a keyframe
        methods.insert(2, ("vidground keyframe-snapped", "av", run_ours_snapped))
    else:
        print("keyframe-snapped sampling: not used (GOPs longer than the sampling step)")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    results: list[tuple[str, int, float]] = []
    for name, module, fn in methods:
        if not available(module) or any(s in name for s in skip):
            print(f"{name:28s} skipped ({module} not installed or --skip)")
            continue
        clear_cache()  # no method profits from an earlier scan
        start = time.perf_counter()
        count = fn(path, idx, size)
        results.append((name, count, time.perf_counter() - start))
    ours = results[0][2]
    print(f"{'method':28s} {'frames':>6s} {'seconds':>8s} {'x-realtime':>10s} {'vs ours':>8s}")
    for name, count, seconds in results:
        print(f"{name:28s} {count:6d} {seconds:8.2f} {info.duration / seconds:10.1f} "
              f"{seconds / ours:7.2f}x")
    others = [r for r in results[1:] if r[1] == len(idx) and not r[0].startswith("vidground")]
    if others:
        best = min(others, key=lambda r: r[2])
        print(f"best alternative: {best[0]} ({best[2]:.2f}s); vidground is "
              f"{best[2] / ours:.2f}x faster")
        snapped = [r for r in results if r[0] == "vidground keyframe-snapped"]
        if snapped:
            print(f"keyframe-snapped sampling (other frames, same count): "
                  f"{best[2] / snapped[0][2]:.2f}x faster than {best[0]}")


if __name__ == "__main__":
    main()
