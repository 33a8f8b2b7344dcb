"""When is someone speaking, and what do they say?

- :func:`speech_spans`: Silero VAD over the whole audio track (decoded by PyAV, resampled to
  16 kHz mono with ``av.AudioResampler``), one span per stretch of speech.
- :func:`transcribe`: with a speech model (``VIDGROUND_SPEECH_MODEL``: a CTranslate2 Whisper
  folder or a size name already downloaded), faster-whisper's transcript, one span per
  segment with its words and their times.

Times are seconds on the video's clock (the audio's own start offset relative to the video's
first frame is kept), so they line up with frame times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VideoError
from ..timecode import Span
from .models import require, vad_model, whisper_model
from .results_cache import cached

if TYPE_CHECKING:
    import numpy as np

    from ..video.probe import VideoInfo

RATE = 16000
#: Longest audio read (seconds): 6 hours, 1.4 GB of float32 at 16 kHz is too much beyond.
MAX_AUDIO_S = 6 * 3600.0
SPEECH_MODEL_ENV = "VIDGROUND_SPEECH_MODEL"


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "word": self.word,
                "probability": round(self.probability, 4)}


@dataclass
class SpeechResult:
    """Speech spans (``label`` ``"speech"``) or transcript segments (``label`` = their text,
    ``words`` per segment)."""

    spans: list[Span]
    words: list[list[Word]] = field(default_factory=list)
    model: str | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        segments = [s.to_dict() for s in self.spans]
        for seg, words in zip(segments, self.words, strict=False):
            seg["words"] = [w.to_dict() for w in words]
        return {"segments": segments, "model": self.model, "language": self.language}


def _info(video: str | Path | VideoInfo) -> VideoInfo:
    from ..video.probe import VideoInfo, probe

    return video if isinstance(video, VideoInfo) else probe(video)


def load_audio(info: VideoInfo) -> np.ndarray:
    """The whole audio track as float32 mono at 16 kHz; sample 0 is the video's time 0."""
    import av
    import numpy as np

    from ..video.probe import open_input, usable_audio

    chunks: list[np.ndarray] = []
    first: float | None = None
    with open_input(info.path) as container:
        stream = usable_audio(container)
        if stream is None:
            raise VideoError(f"{Path(info.path).name} has no audio track to listen to; "
                             "speech needs a video with sound")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        total = 0
        try:
            for frame in container.decode(stream):
                if first is None and frame.pts is not None and frame.time_base is not None:
                    first = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1)
                    chunks.append(data)
                    total += len(data)
                if total > MAX_AUDIO_S * RATE:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode the audio of {Path(info.path).name}: {exc}"
                             ) from exc
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    offset = int(round(((first or 0.0) - info.start_time) * RATE))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    return audio


def speech_spans(video: str | Path | VideoInfo, *, threshold: float = 0.5,
                 min_silence_ms: int = 300) -> SpeechResult:
    """Stretches of speech (Silero VAD), cached by file identity."""
    info = _info(video)

    def compute() -> list[list[float]]:
        torch = require("torch", "torch")
        silero = require("silero_vad", "silero-vad")
        audio = load_audio(info)
        if not len(audio):
            return []
        stamps = silero.get_speech_timestamps(
            torch.from_numpy(audio), vad_model(), threshold=threshold, sampling_rate=RATE,
            min_silence_duration_ms=min_silence_ms, speech_pad_ms=30)
        return [[s["start"] / RATE, s["end"] / RATE] for s in stamps]

    raw, _ = cached("vad", info.path, {"threshold": threshold,
                                       "min_silence_ms": min_silence_ms}, compute)
    spans = [Span(float(a), float(b), label="speech") for a, b in raw]
    return SpeechResult(spans, model="silero-vad")


def speech_model_name() -> str | None:
    """``VIDGROUND_SPEECH_MODEL`` when set (a CTranslate2 Whisper folder or a size name)."""
    value = os.environ.get(SPEECH_MODEL_ENV, "").strip()
    return value or None


def transcribe(video: str | Path | VideoInfo, model: str, *, language: str | None = None,
               max_new_tokens: int | None = None) -> SpeechResult:
    """faster-whisper's transcript of the audio with word times, cached by file identity and
    model; each segment is a span labelled with its text."""
    info = _info(video)
    ident = os.path.realpath(model) if os.path.isdir(model) else model

    def compute() -> dict[str, Any]:
        audio = load_audio(info)
        whisper = whisper_model(model)
        segments, meta = whisper.transcribe(
            audio, language=language, beam_size=1, temperature=0.0, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=max_new_tokens)
        out = []
        for seg in segments:
            words = [[w.start, w.end, w.word, w.probability] for w in (seg.words or ())]
            out.append({"start": seg.start, "end": seg.end, "text": seg.text.strip(),
                        "words": words})
        return {"segments": out, "language": meta.language}

    raw, _ = cached("transcript", info.path, {"model": ident, "language": language,
                                              "max_new_tokens": max_new_tokens}, compute)
    # the model's clock can run past the audio (padding, a confused model): keep what is
    # inside the video, in time order
    end_s = info.duration

    def inside(t: Any) -> float:
        return min(max(0.0, float(t)), end_s)

    pairs: list[tuple[Span, list[Word]]] = []
    for seg in raw["segments"]:
        start = inside(seg["start"])
        if start >= end_s:
            continue
        span = Span(start, max(start, inside(seg["end"])), label=seg["text"] or None)
        words = [Word(inside(a), max(inside(a), inside(b)), str(w), float(p))
                 for a, b, w, p in seg["words"] if inside(a) < end_s]
        pairs.append((span, words))
    pairs.sort(key=lambda pair: (pair[0].start, pair[0].end))
    return SpeechResult([p[0] for p in pairs], [p[1] for p in pairs], model=Path(model).name,
                        language=raw.get("language"))


def spoken_spans(phrase: str, words: list[Word]) -> list[Span]:
    """Where the transcript's ``words`` say ``phrase`` (fuzzy, as on-screen text is matched):
    the shortest run of words from each start that holds it, runs not overlapping."""
    from .matching import MATCH_SCORE, normalize, phrase_score

    want = len(normalize(phrase))
    if not want:
        return []
    spans: list[Span] = []
    i = 0
    while i < len(words):
        text, hit = "", None
        for j in range(i, len(words)):
            text += words[j].word
            if len(normalize(text)) > 2 * want + 8:
                break
            if len(normalize(text)) >= 0.8 * want and phrase_score(phrase, text) >= MATCH_SCORE:
                hit = j
                break
        if hit is None:
            i += 1
            continue
        first = i  # drop leading words the phrase does not need
        while first < hit:
            rest = "".join(w.word for w in words[first + 1: hit + 1])
            if len(normalize(rest)) < 0.8 * want or phrase_score(phrase, rest) < MATCH_SCORE:
                break
            first += 1
        said = "".join(w.word for w in words[first: hit + 1]).strip()
        spans.append(Span(words[first].start, max(words[first].start, words[hit].end),
                          label=said))
        i = hit + 1
    return spans


def find_spoken(video: str | Path | VideoInfo, phrase: str, model: str, *,
                language: str | None = None) -> list[Span]:
    """When ``phrase`` is said, from :func:`transcribe`'s word times."""
    found = transcribe(video, model, language=language)
    return spoken_spans(phrase, [w for ws in found.words for w in ws])
