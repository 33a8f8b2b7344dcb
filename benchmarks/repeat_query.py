"""Ask again, pay once: five different questions about one video, with the frame and feature cache.

The local backend on CPU, with a random-weight Qwen3-VL whose vision tower has the real
Qwen3-VL-2B's shape (depth 24, width 1024, MLP 4096, 16 heads, DeepStack at layers 5/11/17;
timing does not depend on the weights) and a tiny text part (2 layers, width 64), so the
figures show what the cache saves - decoding and the vision tower - rather than the language
model's time. Prints, per question: decode s, prep s (the processor's tokenising and pixel
preparation, and the digest the feature cache keys on), vision s, generate s (prefill and
decoding), total s; the first question against the mean of the later ones and their ratio for
what comes before generation (decode + prep + vision, and decode + vision alone); one question
answered again with the cache off; and
the cache's size on disk per minute of video (measured, and scaled to the real 2B's feature
width of 2048).

    python benchmarks/repeat_query.py [--duration 8] [--fps 1] [--questions 5]
                                      [--max-pixels 65536] [--tokens 8]

``--remote`` instead measures the remote (OpenAI-compatible) backend against the fake server in
``tests/support`` on a camera-like 1280x720 clip (``--remote-duration``, default 20 s, sampled at
2 fps): wall and process CPU (the in-process fake server's identical share included) of the first
question and of a repeat, and the cache's bytes per video-minute by kind, next to what the raw RGB
frames the cache used to store take (issue 22.7).

    python benchmarks/repeat_query.py --remote [--remote-duration 20]

The default run takes about a minute on a 2-core VM (most of it building the model and
running the vision tower for the first question and for the cache-off repeat). A warm-up call
on other pictures comes first, so the first question does not pay torch's start-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from media import make_video  # noqa: E402

from vidground.backends.qwen_transformers import QwenTransformersBackend  # noqa: E402
from vidground.cache import DiskCache  # noqa: E402
from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402

QUESTIONS = [
    "When is the red square visible?",
    "When does the red square first appear?",
    "When does the red square disappear?",
    "Find the span in which a red square is on screen.",
    "Is there a moment when the picture changes colour?",
    "When is the screen empty?",
    "When does something move?",
]
#: Qwen3-VL-2B-Instruct's vision tower (its config.json ``vision_config``).
VISION_2B = {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
             "hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "temporal_patch_size": 2,
             "spatial_merge_size": 2, "num_position_embeddings": 2304,
             "deepstack_visual_indexes": [5, 11, 17]}
OUT_HIDDEN_2B = 2048


def build_model(directory: Path, text_hidden: int) -> Path:
    """A random Qwen3-VL with the 2B's vision tower and a tiny text part, saved to disk."""
    import torch
    from tiny_qwen import SPECIAL_TOKENS, build_processor, build_tokenizer
    from transformers import GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = build_tokenizer()
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    config = Qwen3VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": text_hidden,
                     "intermediate_size": 2 * text_hidden, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "head_dim": text_hidden // 4, "max_position_embeddings": 32768,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [4, 2, 2],
                                         "mrope_interleaved": True},
                     "pad_token_id": ids["<|endoftext|>"], "bos_token_id": ids["<|im_start|>"],
                     "eos_token_id": ids["<|im_end|>"]},
        vision_config={**VISION_2B, "out_hidden_size": text_hidden},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).eval()
    pad = ids["<|endoftext|>"]
    model.generation_config = GenerationConfig(eos_token_id=[pad], pad_token_id=pad,
                                               do_sample=False)
    model.save_pretrained(directory)
    build_processor(tokenizer).save_pretrained(directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="video length, seconds")
    parser.add_argument("--fps", type=float, default=1.0, help="frames sampled per second")
    parser.add_argument("--questions", type=int, default=5, help=f"at most {len(QUESTIONS)}")
    parser.add_argument("--max-pixels", type=int, default=256 * 256,
                        help="most pixels per frame shown to the model")
    parser.add_argument("--tokens", type=int, default=8, help="tokens generated per answer")
    parser.add_argument("--text-hidden", type=int, default=64, help="text width (tiny)")
    parser.add_argument("--remote", action="store_true",
                        help="measure the remote backend (fake server) instead")
    parser.add_argument("--remote-duration", type=float, default=20.0,
                        help="--remote: video length, seconds")
    args = parser.parse_args()
    if args.remote:
        remote(args.remote_duration)
        return
    n = max(2, min(args.questions, len(QUESTIONS)))

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        model_dir = build_model(base / "model", args.text_hidden)
        print(f"random Qwen3-VL (2B vision tower, text width {args.text_hidden}) built in "
              f"{time.perf_counter() - started:.1f} s")
        video = make_video(base / "match.mp4", duration=args.duration, fps=25, size=(640, 360),
                           intervals=[(args.duration * 0.3, args.duration * 0.6)], gop=50,
                           motion=True)
        opts = LocateOptions(frame_sampling_rate=args.fps, refine=False, verify=False,
                             max_new_tokens=args.tokens, max_pixels_per_frame=args.max_pixels,
                             snap_to_keyframes=False)
        cache = DiskCache(base / "cache", 10**10)
        backend = QwenTransformersBackend(str(model_dir), device="cpu", dtype="float32",
                                          cache=cache)
        backend.load()
        _warm_up(backend)
        grounder = Grounder(backend=backend, settings=Settings(cache_dir=base / "cache"))
        rows = []
        for question in QUESTIONS[:n]:
            g = grounder.locate(video.path, question, opts)
            rows.append(_row(question, g.timings))
        frames = int(g.timings["frames"])
        size = _size(opts, video)
        uncached = Grounder(backend=QwenTransformersBackend(
            str(model_dir), device="cpu", dtype="float32", cache=None),
            settings=Settings(cache_max_gb=0))
        baseline = _row("(cache off) " + QUESTIONS[1], uncached.locate(
            video.path, QUESTIONS[1], opts).timings)
        info = cache.info()

    print(f"\n{args.duration:g} s video, 640x360, {frames} frames at {args.fps:g} fps, "
          f"frame size {size}; CPU, "
          f"{args.tokens} tokens per answer\n")
    header = (f"{'question':<52} {'decode s':>9} {'prep s':>7} {'vision s':>9} "
              f"{'generate s':>11} {'total s':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(_fmt(row))
    print(_fmt(baseline))
    first, later = rows[0], rows[1:]
    mean = {k: statistics.fmean(r[k] for r in later)  # type: ignore[misc]
            for k in ("decode", "prep", "vision", "generate", "total")}
    print("-" * len(header))
    print(_fmt({"q": "first question", **first}))
    print(_fmt({"q": f"later questions (mean of {len(later)})", **mean}))
    for parts in (("decode", "prep", "vision"), ("decode", "vision")):
        b_first, b_later, b_off = (sum(float(r[k]) for k in parts)  # type: ignore[arg-type]
                                   for r in (first, mean, baseline))
        print(f"\n{' + '.join(parts)}, first / later: {b_first:.3f} s / {b_later:.4f} s = "
              f"{b_first / max(b_later, 1e-9):.0f}x cheaper on the repeat (cache off, a repeat "
              f"costs {b_off:.3f} s: {b_off / max(b_later, 1e-9):.0f}x)", end="")
    print()
    minutes = args.duration / 60
    kinds = info["kinds"]
    frames_mb = kinds.get("frames", {}).get("bytes", 0) / 1e6
    feats_mb = kinds.get("features", {}).get("bytes", 0) / 1e6
    scale = OUT_HIDDEN_2B / args.text_hidden
    print(f"cache on disk: {info['bytes'] / 1e6:.1f} MB for {args.duration:g} s = "
          f"{info['bytes'] / 1e6 / minutes:.1f} MB per video-minute at {args.fps:g} fps "
          f"(frames {frames_mb / minutes:.1f} MB/min, features {feats_mb / minutes:.2f} MB/min)")
    print(f"features at the real 2B's width ({OUT_HIDDEN_2B}, 4 tensors per token): "
          f"{feats_mb * scale / minutes:.0f} MB/min in float32, "
          f"{feats_mb * scale / 2 / minutes:.0f} MB/min in bfloat16")


def remote(duration: float) -> None:
    """First and repeat question on the remote backend (fake server), and the cache's bytes
    per video-minute, by kind, next to the raw RGB the frames would take."""
    from fake_openai_server import FakeOpenAIServer

    from vidground.cache.store import DiskCache as Store

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(
            color=(255, 0, 0), object_name="red square") as fake:
        base = Path(tmp)
        video = make_video(base / "cam.mp4", duration=duration, fps=25, size=(1280, 720),
                           intervals=[(duration * 0.3, duration * 0.6)], noise=8, motion=True)
        opts = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False)
        settings = Settings(backend="openai", openai_base_url=fake.base_url,
                            openai_model=fake.model, openai_max_retries=0,
                            cache_dir=base / "cache")
        grounder = Grounder(settings=settings)
        rows = []
        for question in QUESTIONS[:3]:
            wall, cpu = time.perf_counter(), time.process_time()
            g = grounder.locate(video.path, question, opts)
            rows.append((question, time.perf_counter() - wall, time.process_time() - cpu,
                         int(g.timings["cache_hits"]), int(g.timings["cache_misses"])))
        uncached = Grounder(settings=Settings(backend="openai", openai_base_url=fake.base_url,
                                              openai_model=fake.model, openai_max_retries=0,
                                              cache_max_gb=0))
        wall, cpu = time.perf_counter(), time.process_time()
        uncached.locate(video.path, QUESTIONS[0], opts)
        rows.append(("(cache off) " + QUESTIONS[0], time.perf_counter() - wall,
                     time.process_time() - cpu, 0, 0))
        frames = len(g.frame_times)
        width, height = (int(v) for v in _size(opts, video).split("x"))
        kinds: dict[str, int] = {}
        for kind, _, st in Store(base / "cache", 10**12).entries():
            kinds[kind] = kinds.get(kind, 0) + st.st_size
    minutes = duration / 60
    print(f"\nremote backend (fake server), {duration:g} s 1280x720 camera-like clip, "
          f"{frames} frames at 2 fps, sent at {width}x{height}\n")
    print(f"{'question':<52} {'wall s':>7} {'cpu s':>7} {'hits':>5} {'misses':>7}")
    for q, w, c, h, m in rows:
        print(f"{q[:52]:<52} {w:>7.3f} {c:>7.3f} {h:>5} {m:>7}")
    raw = frames * width * height * 3
    print("\ncache bytes per video-minute: "
          + ", ".join(f"{k} {v / 1e6 / minutes:.1f} MB" for k, v in sorted(kinds.items()))
          + f"; total {sum(kinds.values()) / 1e6 / minutes:.1f} MB "
          f"(raw RGB of the same frames: {raw / 1e6 / minutes:.1f} MB)")


def _warm_up(backend: QwenTransformersBackend) -> None:
    """One uncached call on other pictures, so the first question does not also pay for
    torch's one-time start-up (thread pools, kernel selection)."""
    import numpy as np

    from vidground.backends.base import Prompt
    from vidground.video.decode import Frame

    rng = np.random.default_rng(0)
    frames = [Frame(time=float(t), image=rng.integers(0, 256, (192, 320, 3), dtype=np.uint8))
              for t in range(2)]
    cache, backend.cache = backend.cache, None
    try:
        backend.generate(frames, Prompt(system="", user="warm up"), max_new_tokens=1)
    finally:
        backend.cache = cache


def _row(question: str, timings: dict[str, float]) -> dict[str, float | str]:
    vision, prep = timings.get("vision_s", 0.0), timings.get("prep_s", 0.0)
    return {"q": question, "decode": timings["decode_s"], "prep": prep, "vision": vision,
            "generate": timings["model_s"] - vision - prep, "total": timings["total_s"]}


def _fmt(row: dict) -> str:  # type: ignore[type-arg]
    q = str(row["q"])
    q = q if len(q) <= 52 else q[:49] + "..."
    return (f"{q:<52} {row['decode']:>9.3f} {row['prep']:>7.3f} {row['vision']:>9.3f} "
            f"{row['generate']:>11.3f} {row['total']:>8.3f}")


def _size(opts: LocateOptions, video) -> str:  # type: ignore[no-untyped-def]
    from vidground.grounding import plan_sampling
    from vidground.video.probe import probe

    w, h = plan_sampling(probe(video.path), opts).size
    return f"{w}x{h}"


if __name__ == "__main__":
    main()
