"""Which times to look at.

``sample_times`` returns the *centres* of ``n`` equal sampling intervals covering the video,
``(i + 0.5) * duration / n``: each picked frame stands for its interval, and neither the first
nor the last instant (often black or a fade) is over-represented. Times never pass the start of
the last frame.

``snap_to_keyframes`` then moves each time but the first and last to the keyframe inside its
interval when *every* such interval holds one (keyframes no further apart than the sampling
step: a phone video with 1 s GOPs sampled at 1 fps or less, or any usual video sampled sparsely
over hours). Every picked frame still stands for its own interval and carries its true time,
and the decoder then reads only keyframes, which costs no reference chain, plus one GOP at each
end (see ``benchmarks/decode.py --gop-seconds 1``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from .probe import VideoInfo


def frame_count_for(duration: float, *, fps: float = 2.0, min_frames: int = 4,
                    max_frames: int = 768, available_frames: int | None = None) -> int:
    """How many frames to sample: ``duration * fps`` within ``[min_frames, max_frames]``,
    never more than the video has, and even where the bounds allow it. (What fits a model's
    context is the pipeline's question, asked of :mod:`vidground.backends.geometry`.)"""
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if min_frames < 1 or max_frames < min_frames:
        raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    upper = max_frames
    if available_frames is not None:
        upper = min(upper, max(1, available_frames))
    upper = max(1, upper)
    n = min(max(round(max(duration, 0.0) * fps), min_frames, 1), upper)
    if n % 2:
        if n - 1 >= max(min_frames, 2):
            n -= 1
        elif n + 1 <= upper:
            n += 1
    return n


def sample_times(info: VideoInfo, *, fps: float = 2.0, min_frames: int = 4,
                 max_frames: int = 768) -> list[float]:
    """Times (seconds from the first frame, ascending) to decode for one model call; see
    :func:`frame_count_for` for how many."""
    n = frame_count_for(info.duration, fps=fps, min_frames=min_frames, max_frames=max_frames,
                        available_frames=info.frame_count or None)
    return interval_centres(info.duration, n, last_frame=last_frame_time(info))


def last_frame_time(info: VideoInfo) -> float:
    """Start of the last frame (estimated from the duration and frame rate)."""
    step = 1.0 / info.fps if info.fps > 0 else 0.0
    return max(0.0, info.duration - step)


def interval_centres(duration: float, n: int, *, last_frame: float | None = None) -> list[float]:
    """Centres of ``n`` equal intervals over ``[0, duration)``, capped at ``last_frame``."""
    if n <= 0:
        return []
    cap = duration if last_frame is None else last_frame
    step = max(duration, 0.0) / n
    return [round(min((i + 0.5) * step, cap), 6) for i in range(n)]


def snap_to_keyframes(times: Sequence[float], keyframes: Sequence[float],
                      step: float) -> list[float] | None:
    """``times`` (ascending, ``step`` apart: interval centres) each moved to the keyframe nearest
    to it within its interval ``[t - step/2, t + step/2)``, or None when some interval holds no
    keyframe (then snapping would not spare any decoding, so the grid stays uniform). The first
    and the last time stay where they are: the very first and last frames are often black or a
    fade, and decoding into one GOP at each end costs little."""
    if len(times) < 3 or not keyframes or step <= 0:
        return None
    snapped: list[float] = [times[0]]
    for t in times[1:-1]:
        lo = bisect.bisect_left(keyframes, t - step / 2)
        hi = bisect.bisect_left(keyframes, t + step / 2)
        if lo >= hi:
            return None
        best = min(keyframes[lo:hi], key=lambda k: (abs(k - t), k))
        if best <= snapped[-1]:
            return None
        snapped.append(best)
    if times[-1] <= snapped[-1]:
        return None
    return [*snapped, times[-1]]
