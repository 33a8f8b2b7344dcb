"""The page's HTML parts — status box, player, timeline, motion curve — as pure functions of a
result (testable without Gradio or a browser)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...timecode import check_format, format_time
from .media import MEDIA_ROUTE
from .texts import _t

if TYPE_CHECKING:
    from ...grounding import Grounding


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(seconds: float, step: float) -> str:
    seconds = max(0.0, seconds)
    whole = int(math.floor(seconds + 1e-9))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    frac = ""
    if step < 1:
        frac = f"{seconds - whole:.1f}"[1:]
    if h:
        return f"{h}:{m:02d}:{s:02d}{frac}"
    return f"{m}:{s:02d}{frac}"


def tick_step(duration: float, max_ticks: int = 10) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= max_ticks:
            return float(step)
    return float(math.ceil(duration / max_ticks / 3600) * 3600)


def status_html(kind: str, text: str) -> str:
    if not text:
        return ""
    icon = {"error": "⚠", "ok": "✔", "info": "ℹ"}.get(kind, "")
    return (f'<div class="vg-status vg-{kind}" id="vg-status-box" role="status">'
            f"{icon} {_esc(text)}</div>")


def player_html(video: dict[str, Any] | None, lang: str) -> str:
    if not video:
        return f'<div class="vg-player-empty">{_esc(_t(lang, "no_video"))}</div>'
    src = f"{MEDIA_ROUTE}/{video['token']}"
    return (
        '<div class="vg-player-wrap">'
        f'<video id="vg-player" src="{_esc(src)}" controls preload="auto" playsinline></video>'
        f'<div class="vg-player-name">{_esc(video["name"])}</div>'
        f'<div id="vg-player-note">{_esc(_t(lang, "cannot_play"))}</div>'
        "</div>"
    )


@dataclass(frozen=True)
class Overlay:
    """What the timeline draws besides the answer: shot changes (``cuts`` in seconds, each the
    new shot's first frame; ``gradual`` transitions as spans) and ``speech`` spans, over a
    video of ``duration`` seconds (issue 24: TransNetV2, Silero VAD)."""

    duration: float
    cuts: tuple[float, ...] = ()
    gradual: tuple[tuple[float, float], ...] = ()
    speech: tuple[tuple[float, float], ...] = ()
    #: the page text (a key of ``TEXTS``) saying why speech is missing (``no_sound``)
    note: str = ""


def overlay_of(duration: float, transitions: Any, speech: Any, note: str = "") -> Overlay:
    """An :class:`Overlay` from shot transitions (objects or dicts with ``kind``, ``start``,
    ``end``: ``cut`` or ``gradual``) and speech spans (objects with ``start``, ``end``)."""
    def get(t: Any, key: str) -> Any:
        return t[key] if isinstance(t, dict) else getattr(t, key)

    moves = [(get(t, "kind"), float(get(t, "start")), float(get(t, "end"))) for t in transitions]
    return Overlay(duration=float(duration),
                   cuts=tuple(start for kind, start, _ in moves if kind == "cut"),
                   gradual=tuple((start, end) for kind, start, end in moves if kind == "gradual"),
                   speech=tuple((float(s.start), float(s.end)) for s in speech), note=note)


def _pct(seconds: float, duration: float) -> float:
    return min(100.0, max(0.0, seconds / duration * 100))


def overlay_html(overlay: Overlay, duration: float, lang: str) -> str:
    """Shot ticks (a dark line per cut, a hatched band per gradual transition) and speech bands
    (green, along the bottom of the track), none of them catching clicks."""
    parts = []
    for start, end in overlay.speech:
        left = _pct(start, duration)
        width = max(0.0, _pct(end, duration) - left)
        title = f'{_t(lang, "speech")} {format_time(start)} – {format_time(end)}'
        parts.append(
            f'<div class="vg-speech" data-vg-start="{start:.6f}" data-vg-end="{end:.6f}" '
            f'title="{_esc(title)}" style="position:absolute;bottom:0;height:7px;'
            f"left:{left:.4f}%;width:{width:.4f}%;min-width:2px;background:#16a34a;"
            'opacity:0.85;border-radius:2px;pointer-events:none"></div>')
    for start, end in overlay.gradual:
        left = _pct(start, duration)
        width = max(0.0, _pct(end, duration) - left)
        parts.append(
            f'<div class="vg-shot vg-gradual" data-vg-start="{start:.6f}" '
            f'data-vg-end="{end:.6f}" title="{_esc(_t(lang, "gradual"))} '
            f'{_esc(format_time(start))} – {_esc(format_time(end))}" '
            f'style="position:absolute;top:0;bottom:0;left:{left:.4f}%;width:{width:.4f}%;'
            "min-width:2px;background:repeating-linear-gradient(45deg,rgba(17,24,39,0.55) 0 "
            '2px,transparent 2px 5px);pointer-events:none"></div>')
    for cut in overlay.cuts:
        parts.append(
            f'<div class="vg-shot vg-cut" data-vg-time="{cut:.6f}" '
            f'title="{_esc(_t(lang, "cut"))} {_esc(format_time(cut))}" '
            f'style="position:absolute;top:-3px;bottom:-3px;left:{_pct(cut, duration):.4f}%;'
            'width:2px;margin-left:-1px;background:#111827;pointer-events:none"></div>')
    return "".join(parts)


def overlay_legend(overlay: Overlay, lang: str) -> str:
    text = _t(lang, "overlay_legend", shots=len(overlay.cuts) + len(overlay.gradual) + 1,
              cuts=len(overlay.cuts), gradual=len(overlay.gradual),
              speech=len(overlay.speech))
    note = f" {_t(lang, overlay.note)}" if overlay.note else ""
    return f'<div class="vg-muted vg-overlay-legend">{_esc(text + note)}</div>'


def timeline_html(grounding: Grounding | None, fmt: str, lang: str,
                  overlay: Overlay | None = None) -> str:
    """A bar the width of the video with the found segments as clickable blocks, time ticks
    under it, and one ▶ button per segment; with ``overlay``, the video's shot changes and
    speech drawn on the bar too (also before any question)."""
    if grounding is None and overlay is None:
        return f'<div class="vg-empty-timeline">{_esc(_t(lang, "timeline_empty"))}</div>'
    if grounding is not None:
        duration = float(grounding.video.duration or 0.0)
        if not duration > 0:
            duration = max([s.end for s in grounding.spans] + [1.0])
        segments = grounding.to_response(check_format(fmt))["segments"]
    else:
        assert overlay is not None
        duration, segments = overlay.duration, []
    duration = duration if duration > 0 else 1.0
    parts = [f'<div class="vg-timeline" id="vg-timeline">'
             f'<div class="vg-timeline-title">{_esc(_t(lang, "timeline"))}</div>'
             f'<div class="vg-track" data-vg-duration="{duration:.6f}">']
    if grounding is not None and grounding.motion is not None:
        parts.append(motion_svg(grounding.motion.per_second(), duration))
    if overlay is not None:
        parts.append(overlay_html(overlay, duration, lang))
    for i, seg in enumerate(segments, 1):
        start, end = float(seg["start"]), float(seg["end"])
        left = min(100.0, max(0.0, start / duration * 100))
        width = min(100.0 - left, max(0.0, (end - start) / duration * 100))
        title = f'{_t(lang, "segment")} {i}: {seg["start_text"]} – {seg["end_text"]}'
        parts.append(
            f'<div class="vg-seg" role="button" tabindex="0" data-vg-index="{i}" '
            f'data-vg-start="{start:.6f}" data-vg-end="{end:.6f}" title="{_esc(title)}" '
            f'style="left:{left:.4f}%;width:{width:.4f}%"></div>'
        )
    parts.append('<div class="vg-playhead"></div></div><div class="vg-ticks">')
    step = tick_step(duration)
    n = int(math.floor(duration / step + 1e-9))
    ticks = [i * step for i in range(n + 1)]
    if duration - ticks[-1] > step * 0.35:
        ticks.append(duration)
    for j, t in enumerate(ticks):
        cls = "vg-tick" + (" vg-first" if j == 0 else "") + (
            " vg-last" if t >= duration - 1e-6 else "")
        parts.append(f'<span class="{cls}" style="left:{min(100.0, t / duration * 100):.4f}%">'
                     f"{_esc(_clock(t, step))}</span>")
    parts.append("</div>")
    if overlay is not None:
        parts.append(overlay_legend(overlay, lang))
    if segments:
        parts.append('<ul class="vg-seglist">')
        for i, seg in enumerate(segments, 1):
            start, end = float(seg["start"]), float(seg["end"])
            label = (f' <span class="vg-muted">{_esc(seg["label"])}</span>'
                     if seg.get("label") else "")
            parts.append(
                f'<li><button class="vg-play" type="button" data-vg-index="{i}" '
                f'data-vg-start="{start:.6f}" data-vg-end="{end:.6f}">'
                f'{_esc(_t(lang, "play"))}</button>'
                f'<span>{_esc(_t(lang, "segment"))} {i}: <code>{_esc(seg["start_text"])}</code>'
                f' – <code>{_esc(seg["end_text"])}</code> '
                f'<span class="vg-muted">({end - start:.2f} s)</span>{label}</span></li>'
            )
        parts.append("</ul>")
    elif grounding is not None:
        parts.append(f'<div class="vg-muted">{_esc(_t(lang, "not_found"))}</div>')
    parts.append("</div>")
    return "".join(parts)


def motion_svg(per_second: list[float], duration: float) -> str:
    """The per-second motion curve as a filled line behind the segments (adaptive sampling
    looked densely where it is high)."""
    if not per_second or not duration > 0:
        return ""
    points = ["0,100"]
    for s, value in enumerate(per_second):
        y = 100 - 90 * min(1.0, max(0.0, value))
        points.append(f"{min(100.0, s / duration * 100):.3f},{y:.2f}")
        points.append(f"{min(100.0, (s + 1) / duration * 100):.3f},{y:.2f}")
    points.append("100,100")
    return ('<svg class="vg-motion" viewBox="0 0 100 100" preserveAspectRatio="none" '
            'aria-hidden="true"><polygon points="' + " ".join(points) + '"/></svg>')


def ranges_text(grounding: Grounding, fmt: str, lang: str) -> str:
    segments = grounding.to_response(check_format(fmt))["segments"]
    if not segments:
        return _t(lang, "none")
    return "\n".join(f'{s["start_text"]} – {s["end_text"]}' for s in segments)


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{_clock(seconds, 0.5 if seconds < 60 else 1)}"


