"""Questions that quote a phrase (``When does "PAYMENT FAILED" appear on screen?``,
``“支付失败”什么时候出现？``) are answered by reading the screen: OCR finds the phrase's spans
to the frame, with or without a vision model. A question about what is *said* (``When does she
say "thank you"?``) is answered from the transcript's word times when a speech model is set
(``VIDGROUND_SPEECH_MODEL``), and left to the model otherwise. :func:`answer_quoted` is what
``locate`` calls before (or instead of) asking the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..timecode import OUTPUT_FORMATS, Span, format_time
from .matching import quoted_phrases
from .text import DEFAULT_STEP_S, find_text

if TYPE_CHECKING:
    from ..video.probe import VideoInfo

__all__ = ["QuotedAnswer", "answer_quoted", "asks_about_speech", "quoted_phrases"]

# the words that make a quoted phrase something said, not shown (English and Chinese)
_SPEECH_WORDS = re.compile(
    r"\b(?:says?|said|saying|speaks?|spoke|spoken|speaking|tells?|told|mentions?|mentioned|"
    r"pronounces?|hears?|heard|announces?|announced|shouts?|shouted|whispers?)\b|"
    r"说|讲|提到|念|喊|听到|播报", re.IGNORECASE)
_QUOTES = re.compile(r"\"[^\"]*\"|“[^”]*”|「[^」]*」|『[^』]*』|‘[^’]*’")


@dataclass(frozen=True)
class QuotedAnswer:
    """The spans in which the quoted ``phrases`` are on screen (``detector`` ``"ocr"``) or
    said (``"speech"``: word times of the transcript). ``chosen_by``: the vision-language model
    that chose these spans among OCR's hits (``detector`` ``"ocr+model"``), when one did."""

    spans: tuple[Span, ...]
    phrases: tuple[str, ...]
    detector: str = "ocr"
    #: what answered, for the response's ``model``
    model: str = "rapidocr (PP-OCR)"
    chosen_by: str | None = None

    def chosen(self, spans: tuple[Span, ...], model: str) -> QuotedAnswer:
        """These OCR hits, chosen by the vision-language ``model`` among all of them."""
        return QuotedAnswer(spans, self.phrases, detector="ocr+model",
                            model=f"{self.model} + {model}", chosen_by=model)

    @property
    def found(self) -> bool:
        return bool(self.spans)

    def sentence(self, output_format: str = "HH:MM:SS.sss", fps: float | None = None) -> str:
        """The answer to show, e.g. ``"PAYMENT FAILED" is on screen from 00:00:00.680 to
        00:00:02.360.`` (times in ``output_format``)."""
        said = ", ".join(f'"{p}"' for p in self.phrases)
        if not self.spans:
            return f"{said} is not on screen."
        parts = [f"from {format_time(s.start, output_format, fps=fps)} to "
                 f"{format_time(s.end, output_format, fps=fps)}" for s in self.spans]
        if self.chosen_by:
            return (f"{said} is on screen {', '.join(parts)} (read by OCR, chosen by "
                    f"{self.chosen_by}).")
        return f"{said} is on screen {', '.join(parts)}."

    def answers(self, fps: float | None = None) -> dict[str, str]:
        """:meth:`sentence` in every output format (what ``Grounding.answers`` holds)."""
        return {fmt: self.sentence(fmt, fps) for fmt in OUTPUT_FORMATS
                if fmt != "frames" or fps}

    def to_dict(self) -> dict[str, Any]:
        return {"segments": [s.to_dict() for s in self.spans], "detector": self.detector,
                "phrases": list(self.phrases), "model": self.model}


def answer_quoted(video: str | Path | VideoInfo, query: str, *,
                  step_s: float = DEFAULT_STEP_S,
                  bounds: tuple[float, float] | None = None) -> QuotedAnswer | None:
    """None when ``query`` quotes nothing; else every span in which a quoted phrase is on
    screen (each span's ``label`` is the text OCR read, ``score`` its match x confidence),
    in time order. An empty answer means OCR did not find the phrase on screen. ``bounds``
    (seconds, inside the video: ``LocateOptions.range_in``): look only there."""
    phrases = quoted_phrases(query)
    if not phrases:
        return None
    from ..video.probe import VideoInfo, probe

    info = video if isinstance(video, VideoInfo) else probe(video)
    spans: list[Span] = []
    if asks_about_speech(query):
        from .speech import find_spoken, speech_model_name

        model = speech_model_name()
        if model is None:
            return None  # a question about what is said, and nothing here hears words
        for phrase in phrases:
            spans.extend(_inside(find_spoken(info, phrase, model), bounds))
        spans.sort(key=lambda s: (s.start, s.end))
        return QuotedAnswer(tuple(spans), tuple(phrases), detector="speech",
                            model=f"faster-whisper ({Path(model).name})")
    for phrase in phrases:
        spans.extend(find_text(info, phrase, step_s=step_s, bounds=bounds).spans)
    spans.sort(key=lambda s: (s.start, s.end))
    return QuotedAnswer(tuple(spans), tuple(phrases))


def _inside(spans: list[Span], bounds: tuple[float, float] | None) -> list[Span]:
    """``spans`` that overlap ``bounds``, clamped to them (all of them when None)."""
    if bounds is None:
        return spans
    lo, hi = bounds
    return [s.clamp(lo, hi) for s in spans if s.start < hi and (s.end > lo or s.start >= lo)]


def asks_about_speech(query: str) -> bool:
    """Whether the question asks when a phrase is *said* rather than shown.

    >>> asks_about_speech('When does she say "thank you"?')
    True
    >>> asks_about_speech("他什么时候说“谢谢”？")
    True
    >>> asks_about_speech('When does "PAYMENT FAILED" appear on screen?')
    False
    """
    outside = _QUOTES.sub(" ", query)
    return bool(_SPEECH_WORDS.search(outside))
