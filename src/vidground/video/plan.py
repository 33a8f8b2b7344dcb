"""Which stretches of a video to decode for a set of wanted times (pure: no I/O).

Wanted frames are grouped by GOP (keyframe to next keyframe). A run starts with a seek to a
keyframe; the next GOP joins the same run (decode straight through, no seek) when the frames
between the last wanted frame and the next keyframe cost less than a seek. A run whose wanted
frames are all keyframes only feeds keyframe packets to the decoder.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

#: A seek (flush, re-open the GOP, refill the threads) costs about this many decoded frames.
SEEK_COST_FRAMES = 6
#: A time this close below a frame's start names that frame: times computed in floats
#: (12 * 0.37 = 4.4399999...) still name the frame that starts at 4.44.
TIME_SLACK = 1e-6
#: Most wanted frames a merged (decode-straight-through) run collects, so a run held in memory
#: while others decode stays small.
MAX_RUN_TIMES = 64


@dataclass(frozen=True)
class DecodeRun:
    """One stretch of decoding: seek to ``keyframe`` (a keyframe time, seconds) and decode
    forward until every time in ``times`` (sorted) is served. ``keyframes_only``: every wanted
    frame is a keyframe, so only keyframe packets need decoding."""

    keyframe: float
    times: tuple[float, ...]
    keyframes_only: bool = False


def plan_decode(keyframes: Sequence[float], times: Sequence[float], *,
                frame_times: Sequence[float] | None = None, frame_duration: float = 1 / 30,
                seek_cost_frames: float = SEEK_COST_FRAMES,
                max_run_times: int = MAX_RUN_TIMES) -> list[DecodeRun]:
    """Split sorted ``times`` into decode runs, each starting at a keyframe (all in seconds).

    ``keyframes`` are sorted keyframe times; ``frame_times`` (all frames, sorted), when known,
    tells which wanted frames are keyframes. Consecutive GOPs are merged into one run when the
    frames between the last wanted time and the next run's keyframe are fewer than
    ``seek_cost_frames`` (dense requests: decode straight through) and the merged run would
    hold at most ``max_run_times`` times; otherwise a new run seeks.
    """
    if not times:
        return []
    kfs = list(keyframes) or [0.0]
    groups: list[tuple[int, list[float]]] = []
    for t in sorted(times):
        gop = max(0, bisect.bisect_right(kfs, t + TIME_SLACK) - 1)
        if groups and groups[-1][0] == gop:
            groups[-1][1].append(t)
        else:
            groups.append((gop, [t]))

    key_set = set(kfs)
    runs: list[DecodeRun] = []
    for gop, group in groups:
        only_keys = frame_times is not None and all(
            _displayed(frame_times, t) in key_set for t in group)
        if runs and len(runs[-1].times) + len(group) <= max_run_times:
            last = runs[-1]
            gap = (kfs[gop] - last.times[-1]) / frame_duration
            if last.keyframes_only and only_keys:  # keyframe-only decoding: continuing is cheap
                runs[-1] = DecodeRun(last.keyframe, last.times + tuple(group), True)
                continue
            if not last.keyframes_only and not only_keys and gap <= seek_cost_frames:
                runs[-1] = DecodeRun(last.keyframe, last.times + tuple(group), False)
                continue
        runs.append(DecodeRun(kfs[gop], tuple(group), only_keys))
    return runs


def _displayed(frame_times: Sequence[float], t: float) -> float:
    """Time of the frame displayed at ``t`` (the first frame for times before it)."""
    i = bisect.bisect_right(frame_times, t + TIME_SLACK) - 1
    return frame_times[max(i, 0)]
