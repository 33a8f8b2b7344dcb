"""Qwen3-VL run locally with transformers.

torch and transformers are imported only inside this module's functions, and the model is loaded
on first use (or by :meth:`QwenTransformersBackend.load`), once, under a lock.

How time reaches the model
--------------------------
Qwen3-VL reads time only as text: its processor fuses consecutive frame pairs
(``temporal_patch_size`` = 2) and writes one ``<t seconds>`` label before each pair, where
``t = mean(index_a / fps, index_b / fps)`` printed with one decimal (an odd last frame is paired
with itself). We hand the processor our frames as one pre-sampled video with
``do_sample_frames=False`` and metadata ``fps = 1000`` and ``frames_indices = round(time * 1000)``
(``total_num_frames = max index + 1``), so each label is the mean of the pair's *real* times -
whatever the spacing (irregular sampling, variable frame rate). Labels are rounded half up
(e.g. frames at 3.3 s and 3.4 s -> ``<3.4 seconds>``): where binary floating point would print a
tie the other way, the second index of the pair is moved by one millisecond.

Trade-off: a pair has a single label, the mean of its two frames, at 0.1 s resolution. Two frames
far apart share one averaged label, so callers should send an even number of frames with pairs
close in time (see DESIGN.md).

Visual features
---------------
The vision tower runs apart from ``generate`` (``get_video_features``) and its output is handed
to ``generate`` as ``mm_encoder_outputs`` (transformers 5.x; with an older release whose
``forward`` does not take it, the pixels go to ``generate`` as before, uncached); with a cache
(:mod:`.vision_cache`) a set of frames the backend has seen is not encoded again. Both paths
give bit-identical tokens to ``generate(pixel_values_videos=...)``
(``tests/test_cache_features.py``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..cache import tally
from ..cache.frames import eviction_group
from ..config import DEFAULT_CPU_MODEL, DEFAULT_GPU_MODEL
from ..errors import BackendError, ModelNotAvailableError
from .base import BaseBackend, Prompt, TokenCallback
from .model_files import apply_adapter, normalize_source, resolve_adapter, resolve_model_dir
from .structured import (
    EXTRA_HINT,
    GRAMMAR_LIBRARY,
    JsonConstraint,
    grammar_library_installed,
    is_grounding_prompt,
    schema_for,
    structure_wanted,
    structured_prompt,
)
from .vision_cache import feature_key_parts, model_fingerprint, pixels_digest, video_features

if TYPE_CHECKING:
    from ..cache.store import DiskCache
    from ..config import Settings
    from ..video.decode import Frame

log = logging.getLogger(__name__)

#: Frame indices are milliseconds: the processor's ``index / fps`` is then the time in seconds.
TIME_BASE = 1000
_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32",
           "float16": "float16", "fp16": "float16", "half": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16"}


# --------------------------------------------------------------------------- device and dtype


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` if available, else ``"mps"``, else ``"cpu"``; others as given."""
    import torch

    name = (device or "auto").strip().lower()
    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} asked for, but CUDA is not available; "
                               "use VIDGROUND_DEVICE=cpu (or auto)")
        return name
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str | None, device: str):  # -> torch.dtype
    """``"auto"`` -> bf16 on CUDA when supported (else fp16), fp16 on MPS, fp32 on CPU."""
    import torch

    name = (dtype or "auto").strip().lower().removeprefix("torch.")
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.startswith("mps"):
            return torch.float16
        return torch.float32
    if name not in _DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return getattr(torch, _DTYPES[name])


def default_model() -> str:
    """The 4B model when CUDA is available, the 2B model otherwise."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    return DEFAULT_GPU_MODEL if has_cuda else DEFAULT_CPU_MODEL


# --------------------------------------------------------------------------- timestamps


def pair_labels(times: Sequence[float], temporal_patch_size: int = 2) -> list[str]:
    """The ``<t seconds>`` values the model is shown for frames at ``times``.

    One label per group of ``temporal_patch_size`` frames: the mean of the group's first and
    last times, rounded half up to 0.1 s (an incomplete last group repeats its last frame).
    Times are taken to the millisecond; negative times count as 0.
    """
    ms = [_to_ms(t) for t in times]
    labels = []
    for start in range(0, len(ms), temporal_patch_size):
        group = ms[start:start + temporal_patch_size]
        mean = Decimal(group[0] + group[-1]) / (2 * TIME_BASE)
        labels.append(str(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)))
    return labels


def frame_indices(times: Sequence[float], temporal_patch_size: int = 2) -> list[int]:
    """Video-metadata frame indices (at ``fps = TIME_BASE``) that make the processor print
    exactly :func:`pair_labels` for ``times``."""
    indices = [_to_ms(t) for t in times]
    wanted = pair_labels(times, temporal_patch_size)
    for group, label in enumerate(wanted):
        first = group * temporal_patch_size
        last = min(first + temporal_patch_size, len(indices)) - 1
        for _ in range(4):
            if _processor_label(indices[first], indices[last]) == label:
                break
            indices[last] += 1  # a one-millisecond nudge off a binary-float tie
    return indices


def _to_ms(time: float) -> int:
    """A frame time as whole milliseconds; negative times (pre-roll pts) count as 0."""
    return max(0, round(float(time) * TIME_BASE))


def _processor_label(index_a: int, index_b: int) -> str:
    """What Qwen3-VL's processor prints for a pair (``_calculate_timestamps`` + ``:.1f``)."""
    return f"{(index_a / TIME_BASE + index_b / TIME_BASE) / 2:.1f}"


def video_metadata(times: Sequence[float], temporal_patch_size: int = 2) -> dict[str, Any]:
    """The ``video_metadata`` entry that carries the real frame ``times`` to the processor."""
    indices = frame_indices(times, temporal_patch_size)
    return {"fps": float(TIME_BASE), "frames_indices": indices,
            "total_num_frames": max(max(indices), 0) + 1}


# --------------------------------------------------------------------------- streaming


class _CallbackStreamer:
    """A transformers streamer (``put``/``end``) that sends decoded text pieces to a callback.

    Text is held back while it ends in an incomplete UTF-8 sequence, so the pieces joined are
    exactly the final decoded answer.
    """

    def __init__(self, tokenizer, on_token: TokenCallback) -> None:
        self._tokenizer = tokenizer
        self._on_token = on_token
        self._ids: list[int] = []
        self._seen_prompt = False
        self.emitted = ""
        self.error: BaseException | None = None

    def put(self, value) -> None:
        """Receive the prompt (first call, ignored) and then each new token."""
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self._ids.extend(int(i) for i in value.reshape(-1).tolist())
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or not text.startswith(self.emitted):
            return
        self._emit(text[len(self.emitted):])

    def end(self) -> None:
        """Nothing to do: :meth:`finish` flushes with the final text."""

    def finish(self, final_text: str) -> None:
        """Send whatever of ``final_text`` has not been sent yet."""
        if final_text.startswith(self.emitted):
            self._emit(final_text[len(self.emitted):])

    def _emit(self, piece: str) -> None:
        """Send ``piece``; an exception from the callback is kept to re-raise unchanged."""
        if piece:
            self.emitted += piece
            try:
                self._on_token(piece)
            except BaseException as exc:
                self.error = exc
                raise


# --------------------------------------------------------------------------- backend


class QwenTransformersBackend(BaseBackend):
    """Qwen3-VL through transformers; implements :class:`~vidground.backends.base.Backend`."""

    def __init__(self, model: str | None = None, *, device: str = "auto", dtype: str = "auto",
                 model_source: str = "huggingface",
                 attn_implementation: str | None = None,
                 cache: DiskCache | None = None, adapter: str | None = None,
                 structured_output: bool = False) -> None:
        if structured_output and not grammar_library_installed():
            raise BackendError(f"structured answers on the local backend need the "
                               f"{GRAMMAR_LIBRARY} library: {EXTRA_HINT}")
        self._model_ref = str(model) if model else default_model()
        #: grounding answers constrained to the JSON schema of :mod:`.structured`
        self.structured_output = bool(structured_output)
        self._constraint: JsonConstraint | None = None
        self._adapter = str(adapter) if adapter else None  # a fine-tune (vidground finetune)
        self.cache = cache  # visual features (None: the vision tower runs for every call)
        self._fingerprint: dict[str, Any] | None = None
        self._takes_features = False
        self._device_setting = device
        self._dtype_setting = dtype
        self._source = normalize_source(model_source)
        self._attn_implementation = attn_implementation
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._model: Any = None
        self._processor: Any = None
        self.device: str | None = None
        self.dtype: Any = None
        self.load_count = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> QwenTransformersBackend:
        """Build from :class:`~vidground.config.Settings` (nothing is loaded yet)."""
        from ..cache import open_cache

        return cls(settings.model, device=settings.device, dtype=settings.dtype,
                   model_source=settings.model_source,
                   attn_implementation=settings.attn_implementation,
                   cache=open_cache(settings), adapter=settings.adapter,
                   structured_output=settings.structured_output)

    @property
    def model_name(self) -> str:
        """The model id or local path this backend runs (and its adapter, if any)."""
        return f"{self._model_ref} + adapter {self._adapter}" if self._adapter \
            else self._model_ref

    @property
    def is_loaded(self) -> bool:
        """True once the weights are in memory."""
        return self._model is not None

    # ---------------------------------------------------------------- loading

    def load(self) -> None:
        """Load processor and model now (idempotent, thread-safe)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load_locked()

    def _load_locked(self) -> None:
        """Resolve the weights, then load processor and model (caller holds the lock)."""
        try:
            import torch  # noqa: F401
            import transformers
        except ImportError as exc:
            raise BackendError(
                "the local backend needs torch and transformers: pip install "
                "'vidground[local]' — or use a model served elsewhere (vLLM, SGLang, "
                "DashScope) without torch: --backend openai --openai-base-url "
                "http://HOST:PORT/v1 (or VIDGROUND_BACKEND=openai)") from exc
        adapter_dir, adapter_kind = resolve_adapter(self._adapter) if self._adapter \
            else (None, None)
        # a merged fine-tune (`vidground finetune merge`) is a whole checkpoint of its own
        model_dir = adapter_dir if adapter_dir is not None and adapter_kind == "merged" \
            else resolve_model_dir(self._model_ref, self._source)
        device = resolve_device(self._device_setting)
        dtype = resolve_dtype(self._dtype_setting, device)
        kwargs: dict[str, Any] = {"dtype": dtype, "device_map": device}
        if self._attn_implementation:
            kwargs["attn_implementation"] = self._attn_implementation
        log.info("loading %s from %s on %s (%s)", self._model_ref, model_dir, device, dtype)
        try:
            processor = transformers.AutoProcessor.from_pretrained(model_dir)
            model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            attn = (f" It was asked for attn_implementation={self._attn_implementation!r}: "
                    "unset VIDGROUND_ATTN_IMPLEMENTATION to use the default."
                    if self._attn_implementation else "")
            raise ModelNotAvailableError(
                f"could not load the model from {model_dir}: {type(exc).__name__}: "
                f"{_short(exc)}. Check that the folder holds a complete Qwen3-VL checkpoint "
                f"and that transformers is recent enough (installed: "
                f"{transformers.__version__}).{attn}"
            ) from exc
        if adapter_dir is not None and adapter_kind == "lora":
            model = apply_adapter(model, adapter_dir)
        model.eval()
        self._fingerprint = model_fingerprint(self._model_ref, model_dir)
        if self._adapter and adapter_dir is not None:  # its weights decide the features too
            self._fingerprint["adapter"] = model_fingerprint(self._adapter, adapter_dir)
        # transformers 5.x takes precomputed visual features; older releases get the pixels
        self._takes_features = "mm_encoder_outputs" in inspect.signature(model.forward).parameters
        self._processor, self.device, self.dtype = processor, device, dtype
        self._model = model
        self.load_count += 1

    # ---------------------------------------------------------------- inputs

    def _messages(self, prompt: Prompt) -> list[dict[str, Any]]:
        """Chat messages: the system prompt, then the video and the question in the user turn."""
        messages: list[dict[str, Any]] = []
        if prompt.system:
            messages.append({"role": "system",
                             "content": [{"type": "text", "text": prompt.system}]})
        messages.append({"role": "user", "content": [{"type": "video"},
                                                     {"type": "text", "text": prompt.user}]})
        return messages

    def build_inputs(self, frames: Sequence[Frame], prompt: Prompt):  # -> BatchFeature
        """Tokenised prompt and pixel values, with the real frame times in the video metadata."""
        return self._build_inputs(frames, prompt)[0]

    def _build_inputs(self, frames: Sequence[Frame], prompt: Prompt):  # -> (BatchFeature, str)
        """:meth:`build_inputs` and a digest of the pixel values (the feature cache's key)."""
        if not frames:
            raise BackendError("no frames to show the model")
        self.load()
        started = time.perf_counter()
        processor = self._processor
        temporal = int(getattr(processor.video_processor, "temporal_patch_size", 2) or 2)
        times = [float(f.time) for f in frames]
        video = _stack_frames(frames)
        if len(frames) == 1:  # one frame is one temporal patch: show it twice, same label
            video, times = np.concatenate([video, video]), times * 2
        text = processor.apply_chat_template(self._messages(prompt), tokenize=False,
                                             add_generation_prompt=True)
        video_kwargs = _video_kwargs(processor.video_processor, video, temporal)
        try:
            inputs = processor(text=[text], videos=[video],
                               video_metadata=[video_metadata(times, temporal)],
                               return_tensors="pt", **video_kwargs)
        except (ValueError, RuntimeError, IndexError, TypeError) as exc:
            raise BackendError(f"Qwen3-VL preprocessing failed: {type(exc).__name__}: "
                               f"{_short(exc)}") from exc
        digest = pixels_digest(inputs["pixel_values_videos"]) if self.cache is not None else ""
        inputs = inputs.to(self._model.device)
        current = tally.current()
        if current is not None:
            current.add_prep(time.perf_counter() - started)
        return inputs, digest

    def _with_features(self, inputs, digest: str, group: str | None = None) -> dict[str, Any]:
        """``inputs`` with the video's pixels replaced by its visual features (from the cache,
        or computed by the vision tower; stored in the eviction ``group`` of the frames'
        video), as ``generate`` and ``forward`` take them. Call with the run lock held, under
        ``torch.inference_mode()``."""
        pixels = inputs.get("pixel_values_videos")
        if pixels is None or not self._takes_features:
            return dict(inputs)
        kwargs = {k: v for k, v in inputs.items() if k != "pixel_values_videos"}
        started = time.perf_counter()
        grid = inputs["video_grid_thw"]
        parts = None
        if self.cache is not None and self._fingerprint is not None:
            parts = feature_key_parts(self._fingerprint, digest, grid.tolist(), dtype=self.dtype,
                                      device=str(self._model.device),
                                      attn=getattr(self._model.config, "_attn_implementation",
                                                   None))
        features, _ = video_features(self._model, pixels, grid, cache=self.cache, parts=parts,
                                     group=group)
        current = tally.current()
        if current is not None:
            current.add_vision(time.perf_counter() - started)
        kwargs["mm_encoder_outputs"] = {"video": features}
        return kwargs

    def render_prompt(self, frames: Sequence[Frame], prompt: Prompt) -> str:
        """The exact text the model reads (``<t seconds>`` labels included), with each run of
        ``<|video_pad|>`` tokens shown once as ``<|video_pad|>×N``."""
        inputs = self.build_inputs(frames, prompt)
        text = self._processor.tokenizer.decode(inputs["input_ids"][0].tolist(),
                                                skip_special_tokens=False)
        return _collapse_pads(text, "<|video_pad|>")

    # ---------------------------------------------------------------- generation

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        """Answer ``prompt`` about ``frames`` (greedy decoding); stream pieces to ``on_token``.
        A grounding question with structured answers on is held to the JSON schema."""
        tokenizer = self._tokenizer()
        streamer = _CallbackStreamer(tokenizer, on_token) if on_token else None
        processors = None
        if self.wants_structure(prompt):
            processors = [self._json_constraint().logits_processor(schema_for(prompt))]
            prompt = structured_prompt(prompt)
        new_tokens = self.generate_ids(frames, prompt, max_new_tokens=max_new_tokens,
                                       streamer=streamer, logits_processor=processors)
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        if streamer is not None:
            streamer.finish(text)
        return text

    def wants_structure(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` is held to the JSON schema: a grounding question with structured
        answers on (the setting, or :func:`~.structured.structured_answers`)."""
        return structure_wanted(self.structured_output) and is_grounding_prompt(prompt)

    def _json_constraint(self) -> JsonConstraint:
        """The grounding schema compiled for this model's tokenizer (once)."""
        self.load()
        with self._load_lock:
            if self._constraint is None:
                head = self._model.get_output_embeddings()
                vocab = int(head.weight.shape[0]) if head is not None \
                    else len(self._processor.tokenizer)
                self._constraint = JsonConstraint(self._processor.tokenizer, vocab)
            return self._constraint

    def generate_ids(self, frames: Sequence[Frame], prompt: Prompt, *,
                     max_new_tokens: int = 512, streamer: Any = None,
                     logits_processor: list[Any] | None = None) -> list[int]:
        """The token ids greedy decoding answers with (what :meth:`generate` decodes);
        ``logits_processor``: transformers logits processors (a grammar constraint)."""
        inputs, digest = self._build_inputs(frames, prompt)
        try:
            with self._run_lock, _backend_errors("generation"):
                import torch

                with torch.inference_mode():
                    kwargs = self._with_features(inputs, digest, eviction_group(frames))
                    if logits_processor:
                        kwargs["logits_processor"] = logits_processor
                    output = self._model.generate(**kwargs, max_new_tokens=max_new_tokens,
                                                  do_sample=False, streamer=streamer)
        except BackendError:
            if streamer is not None and streamer.error is not None:
                raise streamer.error from None  # the caller's own exception (e.g. cancel)
            raise
        return output[0, inputs["input_ids"].shape[1]:].tolist()

    def _tokenizer(self) -> Any:
        self.load()
        return self._processor.tokenizer

    def yes_probability(self, frames: Sequence[Frame], prompt: Prompt) -> float:
        """P("yes") / (P("yes") + P("no")) for the first answer token (case and a leading space
        are folded in). For yes/no verification questions."""
        inputs, digest = self._build_inputs(frames, prompt)
        with self._run_lock, _backend_errors("scoring"):
            import torch

            with torch.inference_mode():
                logits = self._model(**self._with_features(
                    inputs, digest, eviction_group(frames))).logits[0, -1].float()
        probs = torch.softmax(logits, dim=-1)
        yes = _token_mass(probs, self._processor.tokenizer, ("yes", "Yes", " yes", " Yes", "YES"))
        no = _token_mass(probs, self._processor.tokenizer, ("no", "No", " no", " No", "NO"))
        total = yes + no
        return 0.5 if total <= 0 else yes / total


# --------------------------------------------------------------------------- helpers


def _stack_frames(frames: Sequence[Frame]) -> np.ndarray:
    """Frames as one T×H×W×3 uint8 array; all frames must have the same size."""
    shapes = {tuple(np.asarray(f.image).shape) for f in frames}
    if len(shapes) != 1:
        raise BackendError(f"all frames must have the same size, got {sorted(shapes)}")
    shape = shapes.pop()
    if len(shape) != 3 or shape[2] != 3:
        raise BackendError(f"frames must be RGB arrays of shape (H, W, 3), got {shape}")
    return np.ascontiguousarray(np.stack([np.asarray(f.image) for f in frames]), dtype=np.uint8)


def _video_kwargs(video_processor, video: np.ndarray, temporal: int) -> dict[str, Any]:
    """Processor options: never re-sample frames; keep their size when it is already a multiple
    of 32, else only round each side to the nearest multiple (no up- or down-scaling budget)."""
    kwargs: dict[str, Any] = {"do_sample_frames": False}
    if hasattr(video_processor, "cap_pixels_per_frame"):
        kwargs["cap_pixels_per_frame"] = False
    patch = int(getattr(video_processor, "patch_size", 16) or 16)
    merge = int(getattr(video_processor, "merge_size", 2) or 2)
    factor = patch * merge
    t, h, w = video.shape[:3]
    if h % factor == 0 and w % factor == 0:
        kwargs["do_resize"] = False
    else:
        t_bar = -(-t // temporal) * temporal
        kwargs["do_resize"] = True
        kwargs["size"] = {"shortest_edge": factor * factor * temporal,
                          "longest_edge": t_bar * (h + factor) * (w + factor)}
    return kwargs


def _collapse_pads(text: str, pad: str) -> str:
    """Replace each run of ``pad`` with ``pad×N``."""
    out, i = [], 0
    while True:
        j = text.find(pad, i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        n = 0
        while text.startswith(pad, j + n * len(pad)):
            n += 1
        out.append(f"{text[i:j]}{pad}×{n}")
        i = j + n * len(pad)


def _token_mass(probs, tokenizer, words: Sequence[str]) -> float:
    """Summed probability of the first token of each of ``words`` (each token counted once)."""
    ids = set()
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if encoded:
            ids.add(encoded[0])
    return float(sum(probs[i] for i in ids)) if ids else 0.0


def _short(exc: BaseException, limit: int = 300) -> str:
    """An exception's text, first line, at most ``limit`` characters."""
    text = (str(exc).strip().splitlines() or ["no details"])[0]
    return text if len(text) <= limit else text[:limit] + "…"


class _backend_errors:  # noqa: N801 - used like a function: ``with _backend_errors("…"):``
    """Turn torch/transformers failures into :class:`BackendError` with a readable message."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc is None or isinstance(exc, BackendError) or not isinstance(exc, Exception):
            return False
        if "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError":
            raise BackendError(
                f"the model ran out of memory during {self.what}: use fewer frames, a lower "
                "resolution or a smaller model (e.g. Qwen/Qwen3-VL-2B-Instruct)"
            ) from exc
        raise BackendError(f"Qwen3-VL {self.what} failed: {type(exc).__name__}: "
                           f"{_short(exc)}") from exc


__all__ = ["DEFAULT_CPU_MODEL", "DEFAULT_GPU_MODEL", "QwenTransformersBackend", "default_model",
           "frame_indices", "pair_labels", "resolve_device", "resolve_dtype", "video_metadata"]
