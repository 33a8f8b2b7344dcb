"""Seconds and memory per question on a GPU: vidground's local path, real Qwen3-VL shapes.

What runs is what users run: ``Grounder.locate`` (probe, sampling, PyAV decoding into the frame
cache) over ``QwenTransformersBackend`` (the processor with the real frame times, the vision
tower through the feature cache, ``generate``), loaded with ``from_pretrained`` from a folder.
The models are random-weight Qwen3-VLs: the tiny one the tests build
(tests/support/tiny_qwen.py), and models with the exact architecture of Qwen3-VL-2B, 4B and
8B-Instruct, their config values
written below (nothing is downloaded). Time and memory do not depend on the weights' values;
the tokenizer is the tests' byte-level one (so the question and the ``<t seconds>`` labels
cost one token per byte, a few thousand, two to four times what the real tokenizer spends,
next to 10^5 visual tokens),
and since random weights never stop, every answer is exactly ``--tokens`` new tokens
(``min_new_tokens`` = ``max_new_tokens``; the ``new tok`` column counts the forward calls).

Per question it prints: frames, visual tokens, decode s (the Grounder's decoding; frames come
from the frame cache after the first question on a set of times), prep s (the processor on the
CPU, the pixel digest and the copy to the device), vision s (the vision tower, or the feature
cache's read on a hit), tower (how many times the vision tower ran), prefill s (the first
forward of ``generate``), gen s (the other ``--tokens - 1`` forwards), total s (``locate``),
peak GiB (``torch.cuda.max_memory_allocated`` during the question on CUDA; on the CPU the
process's peak RSS so far), cache hits and misses. Question 1 is the first on that video for
that model; question 2 is another question on the same video, with the feature cache.
Each (model, attention) pair gets its own feature cache; the frame cache is shared.

Stage times are measured from outside the backend: ``torch.cuda.synchronize`` and a timer
around the model's ``generate``, its ``forward`` (the first call is the prefill) and its vision
tower's ``forward``, wrapped on the loaded model; the Grounder's own timings give decode, prep
and vision (which include the cache's work).

    python benchmarks/gpu.py                       # CUDA: tiny, 2b, 4b, 8b; CPU: tiny, short clip
    python benchmarks/gpu.py --models 2b,8b --fps 1,2 --attn sdpa,eager --tokens 32
    python benchmarks/gpu.py --shapes              # only the shapes' parameter counts (meta
                                                   # device; every run prints them first)

On CUDA the defaults are a 5-minute 1280x720 25 fps H.264 clip at 1 and 2 fps with the
per-frame pixel budget at its default (768 tokens' worth, 1152x640 here); on the CPU a 6 s
640x360 clip. ``--budget-s`` skips what would start after that many seconds (printed as
skipped), so one device call fits its limit. benchmarks/gpu_device_run.sh is the prepared
command for a machine with a GPU; docs/performance.md has the method and the results.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from media import make_video  # noqa: E402

from vidground.backends.qwen_transformers import QwenTransformersBackend  # noqa: E402
from vidground.cache import DiskCache  # noqa: E402
from vidground.config import Settings  # noqa: E402
from vidground.errors import BackendError  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402

# --------------------------------------------------------------------------- the shapes

#: Text and vision parts of the published config.json of each Qwen3-VL-*-Instruct (vocabulary
#: 151936, head_dim 128, rope_theta 5e6, interleaved mrope [24, 20, 20], 262144 positions,
#: patch 16, temporal patch 2, merge 2, 2304 position embeddings, gelu_pytorch_tanh). Where
#: each value was read is in docs/performance.md ("Where the shapes come from").
_TEXT_COMMON: dict[str, Any] = {
    "vocab_size": 151936, "head_dim": 128, "hidden_act": "silu", "rms_norm_eps": 1e-6,
    "max_position_embeddings": 262144, "attention_bias": False,
    "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                        "mrope_section": [24, 20, 20], "mrope_interleaved": True},
}
_VISION_COMMON: dict[str, Any] = {
    "hidden_act": "gelu_pytorch_tanh", "in_channels": 3, "num_heads": 16, "patch_size": 16,
    "temporal_patch_size": 2, "spatial_merge_size": 2, "num_position_embeddings": 2304,
}


@dataclass(frozen=True)
class Shape:
    """One Qwen3-VL size: the text and vision config values that differ between sizes."""

    name: str
    text: dict[str, Any]
    vision: dict[str, Any]
    tie_word_embeddings: bool


SHAPES: dict[str, Shape] = {
    "2b": Shape("Qwen3-VL-2B-Instruct",
                {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
                 "num_attention_heads": 16, "num_key_value_heads": 8},
                {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096,
                 "out_hidden_size": 2048, "deepstack_visual_indexes": [5, 11, 17]},
                tie_word_embeddings=True),
    "4b": Shape("Qwen3-VL-4B-Instruct",
                {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
                 "num_attention_heads": 32, "num_key_value_heads": 8},
                {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096,
                 "out_hidden_size": 2560, "deepstack_visual_indexes": [5, 11, 17]},
                tie_word_embeddings=True),
    "8b": Shape("Qwen3-VL-8B-Instruct",
                {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                 "num_attention_heads": 32, "num_key_value_heads": 8},
                {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304,
                 "out_hidden_size": 4096, "deepstack_visual_indexes": [8, 16, 24]},
                tie_word_embeddings=False),
}
MODEL_NAMES = ("tiny", *SHAPES)
QUESTIONS = ("When is the red square visible?", "When does the red square first appear?")


def shape_config(shape: Shape, tokenizer: Any) -> Any:  # -> Qwen3VLConfig
    """The Qwen3VLConfig of ``shape``, special-token ids taken from the tests' tokenizer."""
    from tiny_qwen import SPECIAL_TOKENS
    from transformers import Qwen3VLConfig

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text = {**_TEXT_COMMON, **shape.text, "tie_word_embeddings": shape.tie_word_embeddings,
            "pad_token_id": ids["<|endoftext|>"], "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<|im_end|>"]}
    return Qwen3VLConfig(
        text_config=text, vision_config={**_VISION_COMMON, **shape.vision},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=shape.tie_word_embeddings)


def parameter_counts() -> dict[str, int]:
    """Parameters of each shape, counted on the meta device (nothing allocated)."""
    import torch
    from tiny_qwen import build_tokenizer
    from transformers import Qwen3VLForConditionalGeneration

    tokenizer = build_tokenizer()
    counts = {}
    for key, shape in SHAPES.items():
        with torch.device("meta"):
            model = Qwen3VLForConditionalGeneration(shape_config(shape, tokenizer))
        counts[key] = sum(p.numel() for p in model.parameters())  # tied weights counted once
    return counts


def real_processor(tokenizer: Any) -> Any:  # -> Qwen3VLProcessor
    """Qwen3-VL's processors with the published preprocessor values (vidground sets the frame
    size itself, so their size limits do not change what the model sees)."""
    from tiny_qwen import CHAT_TEMPLATE
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    norm = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    image = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2,
                                  size={"shortest_edge": 65536, "longest_edge": 16777216},
                                  **norm)
    video = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2,
                                  size={"shortest_edge": 4096, "longest_edge": 25165824},
                                  fps=2, min_frames=4, max_frames=768, **norm)
    return Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                            chat_template=CHAT_TEMPLATE)


def build_model(name: str, directory: Path, *, device: str, tokens: int) -> Path:
    """Write a random-weight checkpoint of ``name`` to ``directory`` (weights made on
    ``device`` in bf16 for the real shapes: an 8B model in fp32 on two CPU cores takes
    minutes) whose answers are exactly ``tokens`` tokens long."""
    import torch
    from tiny_qwen import build_tiny_qwen3vl, build_tokenizer
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    tokenizer = build_tokenizer()
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    generation = GenerationConfig(eos_token_id=[pad], pad_token_id=pad, do_sample=False,
                                  min_new_tokens=tokens, max_new_tokens=tokens)
    if name == "tiny":
        build_tiny_qwen3vl(directory)
        generation.save_pretrained(directory)
        return directory
    config = shape_config(SHAPES[name], tokenizer)
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Qwen3VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config = generation
    model.save_pretrained(directory)
    real_processor(tokenizer).save_pretrained(directory)
    del model
    _free(device)
    return directory


# --------------------------------------------------------------------------- measuring


class StageProbe:
    """Times the loaded model's ``generate``, first ``forward`` (the prefill) and vision tower
    from outside, synchronising the device around each; counts forwards and visual tokens."""

    def __init__(self, model: Any, device: str) -> None:
        import torch

        self._sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        self._video_token = int(model.config.video_token_id)
        self.reset()
        forward, generate = model.forward, model.generate
        visual = model.model.visual
        tower = visual.forward

        @functools.wraps(tower)
        def timed_tower(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            started = time.perf_counter()
            out = tower(*args, **kwargs)
            self._sync()
            seconds = time.perf_counter() - started
            self.tower_s += seconds
            self.tower_calls += 1
            if self._in_forward:
                self._tower_in_prefill += seconds
            return out

        @functools.wraps(forward)
        def timed_forward(*args: Any, **kwargs: Any) -> Any:
            self.forwards += 1
            if self.forwards > 1:
                return forward(*args, **kwargs)
            ids = kwargs.get("input_ids")
            if ids is not None:
                self.visual_tokens = int((ids == self._video_token).sum())
                self.prompt_tokens = int(ids.shape[-1])
            self._sync()
            started = time.perf_counter()
            self._in_forward = True
            try:
                out = forward(*args, **kwargs)
                self._sync()
            finally:
                self._in_forward = False
            self.prefill_s = time.perf_counter() - started - self._tower_in_prefill
            return out

        @functools.wraps(generate)
        def timed_generate(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            started = time.perf_counter()
            out = generate(*args, **kwargs)
            self._sync()
            self.generate_s += time.perf_counter() - started
            return out

        model.forward, model.generate, visual.forward = timed_forward, timed_generate, timed_tower

    def reset(self) -> None:
        self.forwards = 0
        self.prefill_s = self.generate_s = self.tower_s = self._tower_in_prefill = 0.0
        self.tower_calls = self.visual_tokens = self.prompt_tokens = 0
        self._in_forward = False

    @property
    def decode_tokens_s(self) -> float:
        """``generate`` minus its prefill (and any vision tower run inside it)."""
        return max(0.0, self.generate_s - self.prefill_s - self._tower_in_prefill)


COLUMNS = ("model", "attn", "fps", "q", "frames", "vis tok", "decode s", "prep s", "vision s",
           "tower", "prefill s", "gen s", "new tok", "total s", "peak GiB", "hits", "misses")
LABELS = ("model", "attn", "q")


@dataclass
class Run:
    """What a run measured: table rows, and lines for what did not run."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    environment: str = ""
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def add(self, row: dict[str, Any], path: Path | None) -> None:
        """Keep ``row``; rewrite ``path`` with every row so far (a run cut short keeps them)."""
        self.rows.append(row)
        if path is not None:
            path.write_text(json.dumps({"environment": self.environment, "rows": self.rows,
                                        "notes": self.notes}, indent=1))


def ask(grounder: Grounder, probe: StageProbe, video: Path, question: str,
        opts: LocateOptions, device: str) -> dict[str, Any]:
    """One question through ``Grounder.locate``; its stage figures."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    probe.reset()
    g = grounder.locate(video, question, opts)
    t = g.timings
    peak = (torch.cuda.max_memory_allocated() if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"frames": int(t["frames"]), "vis tok": probe.visual_tokens,
            "decode s": t["decode_s"], "prep s": t.get("prep_s", 0.0),
            "vision s": t.get("vision_s", 0.0), "tower": probe.tower_calls,
            "prefill s": probe.prefill_s, "gen s": probe.decode_tokens_s,
            "new tok": probe.forwards, "total s": t["total_s"], "peak GiB": peak / 2**30,
            "hits": int(t.get("cache_hits", 0)), "misses": int(t.get("cache_misses", 0)),
            "prompt tok": probe.prompt_tokens}


def warm_up(backend: QwenTransformersBackend, tokens: int) -> None:
    """One uncached call on other pictures: CUDA context, cuBLAS handles and kernel choice
    stay out of the first question's figures."""
    import numpy as np

    from vidground.backends.base import Prompt
    from vidground.video.decode import Frame

    rng = np.random.default_rng(0)
    frames = [Frame(time=float(t), image=rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
              for t in range(2)]
    cache, backend.cache = backend.cache, None
    try:
        backend.generate(frames, Prompt(system="", user="warm up"), max_new_tokens=tokens)
    finally:
        backend.cache = cache


def run_model(name: str, model_dir: Path, video: Path, args: argparse.Namespace,
              settings: Settings, work: Path, run: Run) -> None:
    """Every (attention, fps, question) of one model."""
    for attn in args.attn:
        if args.budget_s and run.elapsed() > args.budget_s:
            run.notes.append(f"{name} {attn}: skipped (past --budget-s {args.budget_s:g} s)")
            continue
        features = work / f"features-{name}-{attn}"
        backend = QwenTransformersBackend(str(model_dir), device=args.device, dtype=args.dtype,
                                          attn_implementation=attn,
                                          cache=DiskCache(features, 10**12))
        try:
            started = time.perf_counter()
            try:
                backend.load()
            except BackendError as exc:  # e.g. an attention implementation not installed
                run.notes.append(f"{name} {attn}: not loaded: {exc}")
                continue
            load_s = time.perf_counter() - started
            probe = StageProbe(backend._model, backend.device or args.device)
            warm_up(backend, args.tokens)
            print(f"# {name} {attn}: loaded in {load_s:.1f} s ({backend.dtype}, "
                  f"{backend.device})", flush=True)
            grounder = Grounder(backend=backend, settings=settings)
            failed = False
            for fps in args.fps:
                if failed:  # more frames than a rate that already failed
                    run.notes.append(f"{name} {attn} {fps:g} fps: skipped (a lower rate failed)")
                    continue
                if args.budget_s and run.elapsed() > args.budget_s:
                    run.notes.append(f"{name} {attn} {fps:g} fps: skipped (past --budget-s)")
                    continue
                opts = LocateOptions(frame_sampling_rate=fps, refine=False, verify=False,
                                     max_new_tokens=args.tokens, language="en")
                for q, question in enumerate(QUESTIONS, 1):
                    label = f"{name} {attn} {fps:g} fps q{q}"
                    try:
                        row = ask(grounder, probe, video, question, opts, backend.device or "")
                    except (BackendError, RuntimeError) as exc:  # torch's OOM is a RuntimeError
                        run.notes.append(f"{label}: {type(exc).__name__}: {exc}")
                        print(f"# {label}: {exc}", flush=True)
                        _free(args.device)
                        failed = True
                        break
                    row = {"model": name, "attn": attn, "fps": fps, "q": q, **row}
                    run.add(row, args.json)
                    print(format_row(row), flush=True)
        finally:
            del backend
            _free(args.device)
            shutil.rmtree(features, ignore_errors=True)


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- output


def format_row(row: dict[str, Any]) -> str:
    """One markdown table row, values in the order of :data:`COLUMNS`."""
    cells = []
    for col in COLUMNS:
        value = row[col]
        if isinstance(value, float):
            cells.append(f"{value:.3f}" if col != "fps" else f"{value:g}")
        else:
            cells.append(str(value))
    return "| " + " | ".join(cells) + " |"


def print_table(run: Run) -> None:
    print("\n| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in run.rows:
        print(format_row(row))
    for note in run.notes:
        print(f"- {note}")


def environment(device: str) -> str:
    import platform

    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
    return (f"python {platform.python_version()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, {gpu or 'cpu'}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cpu")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated, of {', '.join(MODEL_NAMES)} "
                             "(default: all on CUDA, tiny on the CPU)")
    parser.add_argument("--fps", default="1,2", help="sampling rates, comma-separated")
    parser.add_argument("--attn", default="sdpa,eager", help="attn_implementation values")
    parser.add_argument("--tokens", type=int, default=None,
                        help="new tokens per answer (default 16 on CUDA, 4 on the CPU)")
    parser.add_argument("--duration", type=float, default=None,
                        help="clip length in seconds (default 300 on CUDA, 6 on the CPU)")
    parser.add_argument("--size", default=None, help="clip size (default 1280x720 on CUDA, "
                                                     "640x360 on the CPU)")
    parser.add_argument("--video", type=Path, default=None,
                        help="an encoded clip to use instead of encoding one")
    parser.add_argument("--dtype", default=None, help="default bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--budget-s", type=float, default=0.0,
                        help="start nothing after this many seconds (0: no limit)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--shapes", action="store_true",
                        help="print each shape's parameter count and exit")
    args = parser.parse_args(argv)
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device.startswith("cuda")
    args.models = (args.models or (",".join(MODEL_NAMES) if cuda else "tiny")).split(",")
    unknown = sorted(set(args.models) - set(MODEL_NAMES))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {MODEL_NAMES}")
    args.fps = [float(f) for f in args.fps.split(",")]
    args.attn = [a for a in args.attn.split(",") if a]
    args.tokens = args.tokens or (16 if cuda else 4)
    args.duration = args.duration or (300.0 if cuda else 6.0)
    w, h = (args.size or ("1280x720" if cuda else "640x360")).split("x")
    args.size = (int(w), int(h))
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    return args


def encode_clip(path: Path, duration: float, size: tuple[int, int]) -> Path:
    """A 25 fps H.264 clip (2 s GOP, a moving band, a red square for a while). A long one is
    one encoded 30 s piece repeated by copying its packets with later timestamps (what a
    decoder does with it is the same as with 5 minutes encoded afresh; encoding them afresh
    takes minutes of Python drawing)."""
    started = time.perf_counter()
    pieces = max(1, round(duration / 30.0))
    piece = duration / pieces
    first = path if pieces == 1 else path.with_name(path.stem + ".piece.mp4")
    make_video(first, duration=piece, fps=25, size=size, gop=50, motion=True,
               intervals=[(piece * 0.4, piece * 0.45)])
    if pieces > 1:
        _repeat(first, path, pieces)
        first.unlink()
    print(f"# encoded {path.name}: {duration:g} s {size[0]}x{size[1]} in "
          f"{time.perf_counter() - started:.1f} s ({path.stat().st_size / 1e6:.1f} MB)",
          flush=True)
    return path


def _repeat(source: Path, target: Path, times: int) -> None:
    """``source``'s video packets ``times`` times over, each copy shifted by its duration."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        packets = [p for p in src.demux(stream) if p.size]
        step = packets[1].pts - packets[0].pts if len(packets) > 1 else 1
        span = max(p.pts for p in packets) + step - min(p.pts for p in packets)
        for k in range(times):
            for packet in packets:
                shifted = av.Packet(bytes(packet))
                shifted.pts, shifted.dts = packet.pts + k * span, packet.dts + k * span
                shifted.is_keyframe = packet.is_keyframe
                shifted.time_base = packet.time_base
                shifted.stream = copy
                out.mux(shifted)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for key, count in parameter_counts().items():
        print(f"# {key}: {SHAPES[key].name} shape, {count:,} parameters ({count / 1e9:.2f} B)")
    if args.shapes:
        return 0
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="vidground-gpu-")
    work = args.work or Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"# {environment(args.device)}; models {','.join(args.models)}; "
              f"fps {args.fps}; attn {args.attn}; {args.tokens} new tokens", flush=True)
        video = args.video or encode_clip(work / "clip.mp4", args.duration, args.size)
        settings = Settings(cache_dir=work / "frames", cache_max_gb=1000.0)
        run = Run(environment=environment(args.device))
        print("| " + " | ".join(COLUMNS) + " |", flush=True)
        for name in args.models:
            if args.budget_s and run.elapsed() > args.budget_s:
                run.notes.append(f"{name}: skipped (past --budget-s {args.budget_s:g} s)")
                continue
            started = time.perf_counter()
            model_dir = build_model(name, work / f"model-{name}", device=args.device,
                                    tokens=args.tokens)
            print(f"# {name}: random weights built and saved in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            try:
                run_model(name, model_dir, video, args, settings, work, run)
            finally:
                shutil.rmtree(model_dir, ignore_errors=True)
        print_table(run)
        print(f"\n{len(run.rows)} questions in {run.elapsed():.0f} s; peak GiB: "
              + ("torch.cuda.max_memory_allocated per question" if args.device.startswith("cuda")
                 else "process peak RSS so far (CPU)"))
        if args.json:
            args.json.write_text(json.dumps({"environment": run.environment, "rows": run.rows,
                                             "notes": run.notes}, indent=1))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
