"""Read, hear and cut (issue 24): how exact and how fast are the perception detectors on this CPU?

    .venv/bin/python benchmarks/perception.py                 # 3 videos of 10 s (a few minutes)
    .venv/bin/python benchmarks/perception.py --videos 1 --seconds 8

Generates (seeded) videos of 480x270 at 25 fps, each with English and Chinese text, large
(34 px) and small (16 px), rendered with DejaVu Sans / Noto Sans CJK on known frames for 0.5 to
1.8 s; a hard cut and a 12-frame dissolve at known frames; two espeak-ng sentences muxed as AAC
at known times (their voiced extent measured on the samples). Then, with an empty cache:

* text: ``find_text`` for every phrase: recall per kind, start/end error in frames (median and
  worst), and, side by side, how many of those events a 1 fps sampling (what the vision-model
  path looks at) even samples, and its boundary error bound;
* shots: ``detect_shots``: precision/recall of hard cuts (to within one frame) and gradual
  transitions (overlapping the truth), boundary errors in frames;
* speech: ``speech_spans`` (Silero VAD): start/end error in ms;
* speed: seconds of each detector and the video's duration over it (x real time).

Goals: text and cuts within one frame, speech within 200 ms, every phrase found.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
os.environ.setdefault("VIDGROUND_CACHE_DIR", tempfile.mkdtemp(prefix="vidground-bench-"))

from perception_media import (  # noqa: E402
    TextEvent,
    Transition,
    make_perception_video,
)

ENGLISH = ["PAYMENT FAILED", "Order shipped", "Try again later", "Welcome back",
           "Upload complete", "Card declined"]
CHINESE = ["支付失败", "订单已发货", "请稍后再试", "欢迎回来", "上传完成", "银行卡被拒"]
ROWS = (18, 80, 150, 215)
KINDS = (("en", 34), ("zh", 34), ("en", 16), ("zh", 16))
SENTENCES = ["hello world", "payment failed, please try again", "your order has shipped",
             "thank you for waiting"]


def plan(seed: int, frames: int, fps: int) -> dict:
    rng = random.Random(seed)
    texts = []
    phrases = {"en": rng.sample(ENGLISH, 2), "zh": rng.sample(CHINESE, 2)}
    for row, (lang, px) in zip(ROWS, rng.sample(KINDS, len(KINDS)), strict=True):
        phrase = phrases[lang].pop()
        length = rng.randint(int(0.5 * fps), int(1.8 * fps))
        first = rng.randint(3, frames - length - 3)
        texts.append(TextEvent(phrase, first, first + length - 1, px=px,
                               xy=(rng.randint(10, 120), row)))
    cut = rng.randint(int(frames * 0.2), int(frames * 0.4))
    dissolve = rng.randint(int(frames * 0.6), int(frames * 0.75))
    transitions = (Transition(cut, cut), Transition(dissolve, dissolve + 11))
    seconds = frames / fps
    speech = ((rng.choice(SENTENCES), round(rng.uniform(0.3, seconds * 0.3), 2)),
              (rng.choice(SENTENCES), round(rng.uniform(seconds * 0.55, seconds * 0.65), 2)))
    return {"texts": tuple(texts), "transitions": transitions, "speech": speech}


def one_fps_samples(event: TextEvent, fps: float, frames: int) -> bool:
    """Whether a 1 fps sampling (t = 0, 1, 2 ... s) lands on a frame showing ``event``."""
    return any(event.first <= int(t * fps + 1e-6) <= event.last
               for t in range(int(frames / fps) + 1))


def fmt(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()

    from vidground.perception import models
    from vidground.perception.shots import detect_shots
    from vidground.perception.speech import speech_spans
    from vidground.perception.text import find_text
    from vidground.video.probe import probe

    frames = int(args.seconds * args.fps)
    work = Path(tempfile.mkdtemp(prefix="vidground-perception-bench-"))
    t0 = time.monotonic()
    models.ocr_engine()
    models.shot_model()
    models.vad_model()
    load_s = time.monotonic() - t0

    text_err: list[float] = []
    found_by_kind: dict[str, list[int]] = {}
    sampled_1fps = total_events = 0
    cut_err: list[float] = []
    grad_err: list[float] = []
    tp_cut = fp_cut = fn_cut = tp_grad = fp_grad = fn_grad = 0
    speech_err: list[float] = []
    seconds = {"text": 0.0, "shots": 0.0, "speech": 0.0}
    duration_total = 0.0
    misses: list[str] = []
    for k in range(args.videos):
        spec = plan(args.seed + k, frames, args.fps)
        video = make_perception_video(work / f"v{k}.mp4", frames=frames, fps=args.fps,
                                      seed=args.seed + k, **spec)
        info = probe(video.path)
        duration_total += info.duration
        # text
        started = time.monotonic()
        for event in video.texts:
            kind = f"{'Chinese' if event.cjk else 'English'} {event.px}px"
            spans = find_text(info, event.text).spans
            hit = [s for s in spans if s.start * video.fps <= event.last + 1
                   and s.end * video.fps >= event.first]
            found_by_kind.setdefault(kind, [0, 0])[1] += 1
            total_events += 1
            sampled_1fps += one_fps_samples(event, video.fps, video.frames)
            if hit:
                found_by_kind[kind][0] += 1
                text_err.append(abs(hit[0].start * video.fps - event.first))
                text_err.append(abs(hit[0].end * video.fps - (event.last + 1)))
            else:
                misses.append(f"video {k}: {event.text!r} ({kind}) frames {event.first}.."
                              f"{event.last}")
            if len(spans) > len(hit):
                misses.append(f"video {k}: {event.text!r}: {len(spans) - len(hit)} extra span(s)")
        seconds["text"] += time.monotonic() - started
        # shots
        started = time.monotonic()
        shots = detect_shots(info)
        seconds["shots"] += time.monotonic() - started
        matched: set[int] = set()
        for truth in video.transitions:
            if truth.hard:
                near = [t for t in shots.transitions if t.kind == "cut"
                        and abs(t.start * video.fps - truth.first) <= 1.0 + 1e-6]
                if near:
                    tp_cut += 1
                    matched.add(id(near[0]))
                    cut_err.append(abs(near[0].start * video.fps - truth.first))
                else:
                    fn_cut += 1
                    misses.append(f"video {k}: hard cut at frame {truth.first} missed")
            else:
                near = [t for t in shots.transitions if t.kind == "gradual"
                        and t.start * video.fps <= truth.last + 1
                        and t.end * video.fps >= truth.first]
                if near:
                    tp_grad += 1
                    matched.add(id(near[0]))
                    grad_err.append(abs(near[0].start * video.fps - truth.first))
                    grad_err.append(abs(near[0].end * video.fps - (truth.last + 1)))
                else:
                    fn_grad += 1
                    misses.append(f"video {k}: dissolve {truth.first}..{truth.last} missed")
        for t in shots.transitions:
            if id(t) not in matched:
                misses.append(f"video {k}: extra {t.kind} at {t.start * video.fps:.0f}")
                if t.kind == "cut":
                    fp_cut += 1
                else:
                    fp_grad += 1
        # speech
        started = time.monotonic()
        heard = speech_spans(info).spans
        seconds["speech"] += time.monotonic() - started
        for truth in video.speech:
            near = [s for s in heard if s.start <= truth.end and s.end >= truth.start]
            if near:
                speech_err.append(abs(near[0].start - truth.start) * 1000)
                speech_err.append(abs(near[0].end - truth.end) * 1000)
            else:
                misses.append(f"video {k}: speech {truth.text!r} not heard")
        print(f"video {k + 1}/{args.videos} done ({time.monotonic() - t0:.0f} s)",
              file=sys.stderr)

    def prf(tp: int, fp: int, fn: int) -> str:
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        return f"{p:.2f} / {r:.2f}"

    print(f"\n{args.videos} videos x {args.seconds:g} s, {args.fps} fps, 480x270, "
          f"{os.cpu_count()} CPUs, {models.threads()} thread(s) per model, load average "
          f"{os.getloadavg()[0]:.1f}; models loaded in {load_s:.1f} s\n")
    print("| measure | vidground perception | 1 fps sampling (vision-model path) |")
    print("|---|---|---|")
    found = sum(v[0] for v in found_by_kind.values())
    print(f"| text events found | {found}/{total_events} | {sampled_1fps}/{total_events} "
          f"sampled at all |")
    for kind, (hit, total) in sorted(found_by_kind.items()):
        print(f"| recall, {kind} | {hit}/{total} | |")
    print(f"| text boundary error, frames (median / worst) | {fmt(text_err)} | up to "
          f"{args.fps} (1 s) |")
    print(f"| hard cuts, precision / recall | {prf(tp_cut, fp_cut, fn_cut)} | |")
    print(f"| hard cut error, frames (median / worst) | {fmt(cut_err)} | up to {args.fps} |")
    print(f"| gradual transitions, precision / recall | {prf(tp_grad, fp_grad, fn_grad)} | |")
    print(f"| gradual boundary error, frames (median / worst) | {fmt(grad_err)} | |")
    print(f"| speech span error, ms (median / worst) | {fmt(speech_err, 0)} | |")
    for name, secs in seconds.items():
        print(f"| {name}: seconds, x real time | {secs:.1f} s, "
              f"{duration_total / secs if secs else 0:.2f}x | |")
    if misses:
        print("\nmissed / extra:\n  " + "\n  ".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
