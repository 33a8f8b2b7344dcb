"""How a sample is put to the model: vidground's own pipeline, or a published evaluation setup.

``vidground``
    :meth:`vidground.Grounder.locate` with the run's :class:`~vidground.LocateOptions` (sampling,
    refinement, verification... exactly what a user gets).
``timelens``
    The setup of TencentARC/TimeLens ``evaluation/eval_dataloader.py`` + ``evaluation/utils.py``
    (``scripts/eval_timelens_bench.sh`` defaults) as of its commit d8db2908 of 2026-02-02 ("Fix
    inference pixels setting"), the script that reproduces its Qwen3-VL and TimeLens-8B numbers
    today: one model call, no system prompt, the user turn is the video followed by
    ``GROUNDER_PROMPT``; frames as qwen-vl-utils' ``fetch_video`` (decord reader) picks them at
    ``fps=2`` (``smart_nframes``: between 4 and 768 frames, an even number; indices
    ``torch.linspace(0, total_frames - 1, n).round()`` in float32) and sizes them
    (``min_pixels = 64·32·32``, ``total_pixels = 14336·32·32`` for Qwen3-VL and TimeLens-8B,
    ``smart_resize`` to multiples of 32); greedy decoding, ``max_new_tokens=512``; the answer
    read by TimeLens' ``extract_time``. TimeLens loads the model in bfloat16 with flash
    attention 2; ``vidground eval`` gives the local backend the same unless told otherwise.
``timelens-legacy``
    The same as TimeLens' first release (df35740, 2025-12-17), which budgeted pixels with
    28×28 patches: ``64·28·28`` and ``14336·28·28``, about 25% fewer visual tokens (a 854×480,
    30 s video: 800×448, 10,500 tokens, where the current script gives 864×480, 12,150).

What is not bit-identical, and why it does not move scores in practice: frames are resized by
FFmpeg's scaler rather than torchvision's bicubic filter, frame ``i`` is found by its time
``i / fps`` (the same frame for constant-frame-rate files), and the processor's ``<t seconds>``
labels are rounded half up where Python's ``format`` rounds a binary tie the other way. With the
OpenAI-compatible backend frames travel as timestamped images unless the server takes video
(``VIDGROUND_OPENAI_VIDEO_MODE=video_url``); the local backend is the faithful one.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..options import LocateOptions
from .records import EvaluationError, Pair, Prediction, Sample

if TYPE_CHECKING:
    from ..grounding import Grounder
    from ..video.probe import VideoInfo

PROTOCOL_NAMES = ("vidground", "timelens", "timelens-legacy")

#: The TimeLens code each protocol follows: (commit, date, what changed).
TIMELENS_REFERENCE = {
    "timelens": {"repo": "TencentARC/TimeLens",
                 "commit": "d8db290801ef70da3aa54bb9d5505017dc7a75e7",
                 "date": "2026-02-02", "files": ["evaluation/eval_dataloader.py",
                                                 "evaluation/utils.py",
                                                 "scripts/eval_timelens_bench.sh"]},
    "timelens-legacy": {"repo": "TencentARC/TimeLens",
                        "commit": "df35740415e9b456ae3cda5cd563cf039eb19b87",
                        "date": "2025-12-17", "files": ["evaluation/eval_dataloader.py",
                                                        "evaluation/utils.py",
                                                        "scripts/eval_timelens_bench.sh"]},
}
#: Pixels per visual token in TimeLens' budgets: ``downsample_rate`` of its utils.py
#: (32 for Qwen3-VL / TimeLens-8B since 2026-02-02; 28 in the first release).
TIMELENS_DOWNSAMPLE = {"timelens": 32, "timelens-legacy": 28}

#: TimeLens' ``GROUNDER_PROMPT`` (evaluation/utils.py), used for Qwen3-VL and TimeLens-8B.
TIMELENS_PROMPT = (
    "Please find the visual event described by the sentence '{}', determining its starting and "
    "ending times. The format should be: 'The event happens in <start time> - <end time> "
    "seconds'."
)


class InferenceProtocol(Protocol):
    """Turns one sample into one prediction with a :class:`~vidground.Grounder`."""

    @property
    def name(self) -> str:
        """The protocol's name, as the report shows it (read-only: protocols are frozen)."""
        ...

    def settings(self) -> dict[str, Any]:
        """Everything that decides the answer, for the report and the resume check."""
        ...

    def predict(self, grounder: Grounder, sample: Sample) -> Prediction:
        """Ask the model about ``sample``; raises :class:`~vidground.VidgroundError` on
        failure."""
        ...


# ------------------------------------------------------------------------------ vidground


@dataclass(frozen=True)
class VidgroundProtocol:
    """vidground's pipeline, as :meth:`Grounder.locate` runs it."""

    options: LocateOptions = LocateOptions()
    name: str = "vidground"

    def settings(self) -> dict[str, Any]:
        return {"protocol": self.name, "options": asdict(self.options)}

    def predict(self, grounder: Grounder, sample: Sample) -> Prediction:
        g = grounder.locate(_path(sample), sample.query, self.options)
        return Prediction(
            id=sample.id, video=sample.video, query=sample.query,
            spans=tuple((s.start, s.end) for s in g.spans),
            scores=tuple(s.score for s in g.spans),
            answer=g.raw_answer or g.answer, duration=g.video.duration,
            timings={k: float(v) for k, v in g.timings.items()})


# ------------------------------------------------------------------------------- TimeLens


@dataclass(frozen=True)
class TimeLensProtocol:
    """TimeLens' evaluation setup (see the module docstring); the defaults are its own.
    ``downsample`` is the side of the pixel square one token of the budget stands for."""

    fps: float = 2.0
    min_tokens: int = 64
    total_tokens: int = 14336
    min_frames: int = 4
    max_frames: int = 768
    max_new_tokens: int = 512
    downsample: int = 32
    name: str = "timelens"

    def settings(self) -> dict[str, Any]:
        return {"protocol": self.name, "prompt": TIMELENS_PROMPT,
                "reference": TIMELENS_REFERENCE.get(self.name),
                "reference_dtype": "bfloat16", "reference_attn": "flash_attention_2",
                **{k: v for k, v in asdict(self).items() if k != "name"}}

    def frame_plan(self, info: VideoInfo) -> tuple[list[float], tuple[int, int]]:
        """The frame times and the (width, height) qwen-vl-utils would give this video."""
        if not info.fps or info.fps <= 0:
            raise EvaluationError(f"{info.path}: no frame rate, which the TimeLens protocol "
                                  "needs (it samples by frame index)")
        total = int(info.frame_count or round(info.duration * info.fps))
        n = smart_nframes(total, info.fps, fps=self.fps, min_frames=self.min_frames,
                          max_frames=self.max_frames)
        times = [i / info.fps for i in linspace_indices(total, n)]
        width, height = info.display_size
        return times, self.frame_size(width, height, n)

    def frame_size(self, width: int, height: int, n_frames: int) -> tuple[int, int]:
        """``(width, height)`` of each of ``n_frames`` frames: ``smart_resize`` to multiples of
        32 within ``min_tokens·d²`` and ``total_tokens·d²`` pixels, ``d`` = ``downsample``."""
        from ..backends.geometry import frame_size_for

        d = self.downsample
        return frame_size_for(width, height, n_frames, total_pixels=self.total_tokens * d * d,
                              min_pixels=self.min_tokens * d * d)

    def predict(self, grounder: Grounder, sample: Sample) -> Prediction:
        from ..grounding.prompts import Prompt
        from ..video.decode import decode_frames
        from ..video.probe import probe

        info = probe(_path(sample))
        times, size = self.frame_plan(info)
        frames = decode_frames(info, times, size=size)
        prompt = Prompt(system="", user=TIMELENS_PROMPT.format(sample.query))
        text = grounder.backend.generate(frames, prompt, max_new_tokens=self.max_new_tokens)
        return Prediction(id=sample.id, video=sample.video, query=sample.query,
                          spans=tuple(extract_time(text)), answer=text,
                          duration=info.duration, timings={"frames": float(len(frames))})


def smart_nframes(total_frames: int, video_fps: float, *, fps: float = 2.0,
                  min_frames: int = 4, max_frames: int = 768) -> int:
    """qwen-vl-utils' ``smart_nframes`` for an ``fps`` request: ``total / video_fps * fps``
    frames, at least ``min_frames`` (rounded up to even), at most ``max_frames`` and the video's
    frame count (rounded down to even), rounded down to an even number."""
    lo = math.ceil(min_frames / 2) * 2
    hi = math.floor(min(max_frames, total_frames) / 2) * 2
    wanted = total_frames / video_fps * fps
    n = min(min(max(wanted, lo), hi), total_frames)
    n = math.floor(n / 2) * 2
    if not 2 <= n <= total_frames:
        raise EvaluationError(f"a video of {total_frames} frames is too short for the TimeLens "
                              "protocol (qwen-vl-utils needs at least 2 frames)")
    return n


def linspace_indices(total_frames: int, n: int) -> list[int]:
    """``torch.linspace(0, total_frames - 1, n).round()`` exactly as torch computes it on the
    CPU, in float32: ``step = (end - start) / (n - 1)``; the first half ``start + step * i``,
    the second ``end - step * (n - 1 - i)`` (each a fused multiply-add: one rounding); then
    rounded half to even. Checked against torch in the tests."""
    import numpy as np

    if n == 1:
        return [0]
    start, end = np.float32(0), np.float32(total_frames - 1)
    step = np.float32((end - start) / np.float32(n - 1))
    i = np.arange(n)
    first = np.float64(start) + np.float64(step) * i.astype(np.float32).astype(np.float64)
    second = np.float64(end) - np.float64(step) * (n - 1 - i).astype(np.float32).astype(
        np.float64)
    values = np.where(i < n // 2, first, second).astype(np.float32)
    return [int(v) for v in np.round(values)]


_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{1,2}:\d{2}(?:\.\d+)?)\b")
_RANGE_PATTERNS = (re.compile(r"(\d+\.?\d*)\s*-\s*(\d+\.?\d*)"),
                   re.compile(r"(\d+\.?\d*)\s+to\s+(\d+\.?\d*)"))
_NUMBER = re.compile(r"\b(\d+\.\d+|\d+)\b")


def extract_time(text: str) -> list[Pair]:
    """The spans TimeLens' ``extract_time`` (timelens/utils.py) reads from an answer, in order.

    First every clock time (``HH:MM:SS(.s)`` or ``MM:SS(.s)``), paired up (an odd last one
    dropped); if none, every ``a - b`` range, or if none every ``a to b``; if still none, every
    number, paired up. Pairs are kept as written, reversed ones too.

    >>> extract_time("The event happens in 12.5 - 18.0 seconds.")
    [(12.5, 18.0)]
    >>> extract_time("from 00:01:02 to 1:10")
    [(62.0, 70.0)]
    >>> extract_time("no idea")
    []
    """
    text = text.lower()
    clocks = _CLOCK.findall(text)
    clocks = clocks[:len(clocks) // 2 * 2]
    if clocks:
        seconds = [_clock_seconds(c) for c in clocks]
        return [(seconds[i], seconds[i + 1]) for i in range(0, len(seconds), 2)]
    for pattern in _RANGE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return [(float(a), float(b)) for a, b in found]
    numbers = _NUMBER.findall(text)
    numbers = numbers[:len(numbers) // 2 * 2]
    return [(float(numbers[i]), float(numbers[i + 1])) for i in range(0, len(numbers), 2)]


def _clock_seconds(text: str) -> float:
    parts = text.split(":")
    if len(parts) == 3:
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    return int(parts[0]) * 60 + float(parts[1])


# ---------------------------------------------------------------------------------- helpers


def _path(sample: Sample) -> Path:
    if sample.video_path is None:
        raise EvaluationError(f"sample {sample.id}: its video was not found")
    return sample.video_path


def make_protocol(name: str, options: LocateOptions | None = None) -> InferenceProtocol:
    """``vidground`` (with ``options``), ``timelens`` or ``timelens-legacy`` (their own fixed
    settings)."""
    key = name.strip().lower()
    if key == "vidground":
        return VidgroundProtocol(options or LocateOptions())
    if key in TIMELENS_DOWNSAMPLE:
        return TimeLensProtocol(downsample=TIMELENS_DOWNSAMPLE[key], name=key)
    raise EvaluationError(f"unknown protocol {name!r}; use one of {', '.join(PROTOCOL_NAMES)}")
