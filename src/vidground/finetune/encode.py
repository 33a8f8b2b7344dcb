"""Examples -> model inputs with labels, and batches of them.

The prompt part is made by the local backend's own pieces (chat messages, the stacked frames,
the ``video_metadata`` that carries the real frame times, ``do_sample_frames=False`` and the
resize rule), so its token ids are exactly those :meth:`QwenTransformersBackend.build_inputs`
gives at inference (``tests/test_finetune.py`` checks this). The answer's tokens and the
end-of-turn token follow; ``labels`` are ``-100`` (no loss) over the whole prompt - system
text, frames, ``<t seconds>`` labels, question and the assistant header - and equal the ids
over the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends.base import Prompt
from ..backends.qwen_transformers import (
    QwenTransformersBackend,
    _stack_frames,
    _video_kwargs,
    video_metadata,
)
from ..cache.store import DiskCache
from ..video.decode import Frame
from .config import FinetuneError
from .examples import Example

IGNORE_INDEX = -100
END_OF_TURN = "<|im_end|>"
#: Per-token inputs the processor makes besides ``input_ids`` (extended with zeros).
_TOKEN_KEYS = ("attention_mask", "mm_token_type_ids", "token_type_ids")


class ExampleEncoder:
    """Turns an :class:`Example` into one training row (tensors without a batch axis)."""

    def __init__(self, processor: Any, *, cache: DiskCache | None = None) -> None:
        self.processor = processor
        self.cache = cache
        self._messages = QwenTransformersBackend("unused")._messages  # the backend's own turns
        tokenizer = processor.tokenizer
        end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
        if end is None or end == tokenizer.unk_token_id:
            raise FinetuneError(f"the tokenizer has no {END_OF_TURN} token: is this a Qwen3-VL "
                                "checkpoint?")
        self.end_id = int(end)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else end)

    def prompt_inputs(self, frames: Sequence[Frame], prompt: Prompt) -> dict[str, Any]:
        """What the backend feeds ``generate`` for these frames and prompt (batch axis kept)."""
        if not frames:
            raise FinetuneError("an example has no frames")
        processor = self.processor
        temporal = int(getattr(processor.video_processor, "temporal_patch_size", 2) or 2)
        times = [float(f.time) for f in frames]
        video = _stack_frames(frames)
        if len(frames) == 1:  # as the backend does: one frame is shown twice
            video, times = np.concatenate([video, video]), times * 2
        text = processor.apply_chat_template(self._messages(prompt), tokenize=False,
                                             add_generation_prompt=True)
        return dict(processor(text=[text], videos=[video],
                              video_metadata=[video_metadata(times, temporal)],
                              return_tensors="pt",
                              **_video_kwargs(processor.video_processor, video, temporal)))

    def answer_ids(self, target: str) -> list[int]:
        """The answer's token ids, then the end-of-turn token."""
        ids = self.processor.tokenizer.encode(target, add_special_tokens=False)
        return [int(i) for i in ids] + [self.end_id]

    def encode(self, example: Example) -> dict[str, Any]:
        """One row: ``input_ids``, ``attention_mask``, ``labels``, ``mm_token_type_ids``,
        ``pixel_values_videos`` and ``video_grid_thw``."""
        import torch

        inputs = self.prompt_inputs(example.frames(self.cache), example.prompt)
        prompt_ids = inputs["input_ids"][0]
        answer = torch.tensor(self.answer_ids(example.target), dtype=prompt_ids.dtype)
        row: dict[str, Any] = {
            "input_ids": torch.cat([prompt_ids, answer]),
            "labels": torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), answer]),
        }
        for key in _TOKEN_KEYS:
            if key in inputs:
                value = inputs[key][0]
                fill = torch.ones_like(answer) if key == "attention_mask" else \
                    torch.zeros_like(answer)
                row[key] = torch.cat([value, fill.to(value.dtype)])
        for key, value in inputs.items():
            if key not in row and key != "input_ids" and key not in _TOKEN_KEYS:
                row[key] = value  # pixel_values_videos (patches x dim), video_grid_thw (1 x 3)
        return row


class ExampleDataset:
    """A map-style dataset (what ``Trainer`` takes): rows encoded when they are read."""

    def __init__(self, examples: Sequence[Example], encoder: ExampleEncoder) -> None:
        self.examples = list(examples)
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.encoder.encode(self.examples[index])


class Collator:
    """Pads rows on the right into one batch; videos are concatenated in row order (the
    layout Qwen3-VL's processor gives a batch of videos)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(int(r["input_ids"].shape[0]) for r in rows)
        fills = {"input_ids": self.pad_id, "labels": IGNORE_INDEX}
        batch: dict[str, Any] = {}
        for key in rows[0]:
            values = [r[key] for r in rows]
            if key in ("pixel_values_videos", "video_grid_thw"):
                batch[key] = torch.cat(values, dim=0)
                continue
            fill = fills.get(key, 0)
            padded = torch.full((len(rows), longest), fill, dtype=values[0].dtype)
            for i, value in enumerate(values):
                padded[i, :value.shape[0]] = value
            batch[key] = padded
        return batch
