"""OCR's hits as candidates for the vision-language model (issue 24 item 3).

A question that quotes on-screen text (``When does "PAYMENT FAILED" appear for the second
time?``) is first looked up by OCR (:mod:`vidground.perception.quoted`): every span in which
the phrase is on screen, to the frame. With a model configured, the model then sees those hits
as candidates and chooses: it is shown only the frames around each hit (the last frame before
it, its first, middle and last frames, the first frame after it, at their real times) and a
prompt line listing the hits, and its answer picks the hits that answer the question. The
chosen hits keep OCR's frame-exact times; the answer says both detectors answered. When the
model places the event on none of them, OCR's hits stay the answer and a warning says so.

With no model at hand (no local weights, no server named) the OCR answer is given alone, as
before; :func:`model_at_hand` decides that without loading or downloading anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..prompt import Prompt
from ..timecode import Span

if TYPE_CHECKING:
    from ..config import Settings
    from ..video.probe import VideoInfo

#: The most OCR hits shown to the model (the earliest; a phrase on screen more often than
#: this is listed by OCR alone past them).
MAX_CANDIDATES = 12


def model_at_hand(settings: Settings) -> bool:
    """Whether ``settings`` name a model that can answer without a download: a model server
    (the ``openai`` backend), or local weights already on disk (a folder, or the hub's or
    ModelScope's cache). Nothing is loaded or fetched."""
    from ..backends import backend_kind

    kind = backend_kind(settings.backend)
    if kind == "openai":
        return True
    if kind != "transformers":
        return False
    if settings.adapter:
        return True  # a fine-tune the user pointed at: their model, ask it
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec(
            "transformers") is None:
        return False
    from ..backends.model_files import resolve_model_dir
    from ..errors import VidgroundError

    try:
        if settings.model:
            ref = settings.model
        else:
            from ..backends.qwen_transformers import default_model

            ref = default_model()
        resolve_model_dir(ref, settings.model_source, local_only=True)
    except VidgroundError:
        return False
    return True


def candidate_times(spans: Sequence[Span], info: VideoInfo,
                    bounds: tuple[float, float] | None = None) -> list[float]:
    """The frames shown for ``spans``: for each, the last frame before it, its first, middle
    and last frames, and the first frame after it (inside ``bounds``, default the video), as
    the middles of those frames, sorted and distinct."""
    lo, hi = bounds if bounds is not None else (0.0, info.duration)
    step = info.frame_s
    count = info.frame_count or int(round(info.duration / step))
    first = math.ceil(lo / step - 1e-6)
    last = min(count, math.ceil(hi / step - 1e-6)) - 1
    indices: set[int] = set()
    for span in spans:
        start = round(span.start / step)
        end = max(start + 1, round(span.end / step))  # the first frame after it
        for index in (start - 1, start, (start + end - 1) // 2, end - 1, end):
            indices.add(min(max(index, first), max(first, last)))
    return [round((i + 0.5) * step, 6) for i in sorted(indices)]


def candidate_prompt(prompt: Prompt, spans: Sequence[Span], phrases: Sequence[str]) -> Prompt:
    """``prompt`` with a line listing OCR's hits (``1) 0.68 - 2.36 s``) as the candidates the
    model chooses among, in the prompt's language."""
    quoted = "、".join(f"“{p}”" for p in phrases) if prompt.language == "zh" \
        else ", ".join(f'"{p}"' for p in phrases)
    if prompt.language == "zh":
        listed = "；".join(f"{i}) {s.start:.2f} - {s.end:.2f} 秒" for i, s in enumerate(spans, 1))
        line = (f"屏幕文字识别（OCR）在这些时间读到了 {quoted}：{listed}。你看到的是这些时间前后的"
                "画面（每帧标有它的真实时间）。请从这些候选中选出回答问题的时间段，用上面的格式作答；"
                "若都不是，回答未找到。")
    else:
        listed = "; ".join(f"{i}) {s.start:.2f} - {s.end:.2f} seconds"
                           for i, s in enumerate(spans, 1))
        line = (f"On-screen text recognition (OCR) read {quoted} at these times: {listed}. "
                "You are shown the frames around those times (each labelled with its real "
                "time). Choose the candidate(s) that answer the question and answer in the "
                "format above; if none does, answer NOT FOUND.")
    return replace(prompt, user=f"{prompt.user}\n\n{line}")


def chosen(candidates: Sequence[Span], answered: Sequence[Span]) -> list[Span]:
    """The ``candidates`` the model's ``answered`` spans land on (overlap, or a point inside),
    in time order."""
    picked = []
    for span in candidates:
        for said in answered:
            overlaps = min(span.end, said.end) - max(span.start, said.start) > 0
            point = said.start == said.end and span.start <= said.start <= span.end
            if overlaps or point:
                picked.append(span)
                break
    return picked


__all__ = ["MAX_CANDIDATES", "candidate_prompt", "candidate_times", "chosen", "model_at_hand"]
