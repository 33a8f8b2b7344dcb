"""Shot changes for the model's windows and boundaries (issue 24 item 4).

TransNetV2 (:mod:`vidground.perception.shots`) finds hard cuts to the frame and gradual
transitions as spans. Here they serve the pipeline: window borders move to a transition near
them (:func:`vidground.grounding.windows.split_windows` takes them as ``cuts``), and a refined
boundary one or two frames from a hard cut moves onto it (:func:`snap_to_cut`): a model
looking at dense frames around a cut easily lands a frame or two off it, while an event that
starts or stops with a cut does so exactly there.

Running TransNetV2 costs about 0.3 to 3 times real time on a CPU, so by default
(``use_shots=None``) shots are used only when they are already in the cache for this file
(``vidground shots VIDEO`` or an earlier ``use_shots=true``); ``True`` detects them when they
are not, ``False`` never uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..video.probe import VideoInfo

#: A boundary this many frames from a hard cut, or closer, moves onto it.
SNAP_FRAMES = 2


@dataclass(frozen=True)
class ShotCuts:
    """``cuts``: hard cuts (the new shot's first frame, seconds); ``borders``: where windows
    may end: every hard cut and the start of every gradual transition."""

    cuts: tuple[float, ...] = ()
    borders: tuple[float, ...] = ()


def shot_cuts(info: VideoInfo, use_shots: bool | None) -> ShotCuts:
    """The video's shot changes as ``use_shots`` allows (see the module docstring); empty
    when not allowed or not detected. ``True`` without the perception extra raises
    :class:`~vidground.errors.ModelNotAvailableError` saying what to install."""
    if use_shots is False:
        return ShotCuts()
    if use_shots:
        from ..perception.shots import detect_shots

        found = detect_shots(info)
    else:
        from ..perception.shots import stored_shots

        stored = stored_shots(info)
        if stored is None:
            return ShotCuts()
        found = stored
    cuts = tuple(t.start for t in found.transitions if t.kind == "cut")
    borders = tuple(sorted(t.start for t in found.transitions))
    return ShotCuts(cuts, borders)


def snap_to_cut(t: float, cuts: tuple[float, ...] | list[float], frame_s: float,
                frames: int = SNAP_FRAMES) -> float | None:
    """The hard cut within ``frames`` frames of ``t`` (the nearest), or None when there is
    none or ``t`` is already on it.

    >>> snap_to_cut(2.08, (2.0, 5.0), 0.04)
    2.0
    >>> snap_to_cut(2.2, (2.0,), 0.04) is None, snap_to_cut(2.0, (2.0,), 0.04) is None
    (True, True)
    """
    reach = frames * frame_s + 1e-6
    near = [c for c in cuts if abs(c - t) <= reach]
    if not near:
        return None
    cut = min(near, key=lambda c: abs(c - t))
    return None if abs(cut - t) < 1e-6 else cut


__all__ = ["SNAP_FRAMES", "ShotCuts", "shot_cuts", "snap_to_cut"]
