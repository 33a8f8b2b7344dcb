"""Fine-tuning Qwen3-VL on your own grounding data: LoRA / QLoRA, trained as vidground asks.

``vidground finetune --data TRAIN --val VAL --out DIR`` (see docs/finetune.md). Modules:

``config``    :class:`FinetuneConfig` and :class:`FinetuneError` (leaf)
``examples``  annotated samples -> examples: locate's sampling, frame size, prompt and answer form
``encode``    examples -> token ids with the prompt masked out of the loss, batches
``model``     base model (4-bit with QLoRA), the LoRA adapter, merging
``train``     :func:`finetune`: evaluate, train with transformers' Trainer, evaluate again
``cli``       ``vidground finetune`` and ``vidground finetune merge``

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

from .config import DEFAULT_TARGETS, FinetuneConfig, FinetuneError

__all__ = ["DEFAULT_TARGETS", "FinetuneConfig", "FinetuneError"]
