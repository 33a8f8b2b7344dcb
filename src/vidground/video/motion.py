"""Where things move: a cheap per-second motion curve, and adaptive sampling times from it.

Two ways to measure motion, both far cheaper than what the model costs:

* ``pixels`` (default up to ``PIXEL_PASS_MAX_FRAMES`` native frames, about 11 minutes at
  30 fps): decode small grey frames at ``pixel_fps`` (8) and take the mean absolute difference
  between neighbours, above the video's own noise floor. The frames on both sides of each marked
  change become *anchors*: times the model always sees, so a change between two sparse samples
  (a sub-second event) is never skipped, and refinement starts from a bracket 1/8 s wide.
* ``packets`` (longer videos, and ``method="packets"``): demux only, no decoding. The compressed
  size of a predicted frame is what the encoder needed to describe the change since its
  references, so bytes per bin of non-key packets follow motion; keyframes placed off the
  stream's regular cadence mark scene cuts. Runs at thousands of times real time, but frame-type
  noise (B- vs P-frames) makes it coarser than ``pixels``.

>>> curve = motion_curve(probe("match.mp4"))  # doctest: +SKIP
>>> adaptive_times(curve, budget=120)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

from ..errors import VideoError
from .probe import VideoInfo, open_video, video_stream

MotionMethod = Literal["auto", "packets", "pixels"]
PIXEL_PASS_MAX_FRAMES = 20_000
CHANGE_THRESHOLD = 0.35
#: Part of the motion cache's key (:mod:`vidground.cache.motion`): bump it when a change here
#: alters the curve a video gets.
MOTION_VERSION = 1


@dataclass(frozen=True)
class MotionCurve:
    """Motion per bin of ``bin_s`` seconds, normalised to [0, 1] (1 = the most motion in this
    video), plus the times of scene cuts. ``values[i]`` covers ``[i*bin_s, (i+1)*bin_s)``."""

    bin_s: float
    values: tuple[float, ...]
    cuts: tuple[float, ...]
    duration: float
    method: str
    anchors: tuple[float, ...] = ()  # frame times on both sides of each change, strongest first

    def per_second(self) -> list[float]:
        """The curve resampled to one value per whole second (what the UI plots)."""
        seconds = max(1, math.ceil(self.duration))
        per_bin = np.asarray(self.values, dtype=float)
        out = []
        for s in range(seconds):
            lo, hi = int(s / self.bin_s), max(int(s / self.bin_s) + 1, int((s + 1) / self.bin_s))
            chunk = per_bin[lo:hi]
            out.append(float(chunk.max()) if chunk.size else 0.0)
        return out

    def to_dict(self) -> dict[str, object]:
        return {"bin_s": self.bin_s, "per_second": [round(v, 4) for v in self.per_second()],
                "cuts": [round(c, 3) for c in self.cuts], "method": self.method}


def motion_curve(info: VideoInfo, *, method: MotionMethod = "auto", bin_s: float = 0.25,
                 pixel_fps: float = 8.0) -> MotionCurve:
    """Measure how much changes in each ``bin_s`` of the video (see the module docstring)."""
    if method == "auto":
        native_frames = info.frame_count or info.duration * info.safe_fps
        method = "pixels" if native_frames <= PIXEL_PASS_MAX_FRAMES else "packets"
    if method == "packets":
        packets = _packet_sizes(info)
        if packets and not all(key for _, _, key in packets):
            return _curve_from_packets(packets, info.duration, bin_s)
    return _curve_from_pixels(info, bin_s, min(pixel_fps, info.fps or pixel_fps))


def _packet_sizes(info: VideoInfo) -> list[tuple[float, int, bool]]:
    """(time from the first frame, bytes, is keyframe) for every video packet, without decoding."""
    try:
        with open_video(info.path, info.max_pixels) as container:
            stream = video_stream(container, Path(info.path))
            assert stream.time_base is not None  # FFmpeg gives every demuxed stream one
            tb = float(stream.time_base)
            rows = [(float(p.pts) * tb - info.start_time, p.size, bool(p.is_keyframe))
                    for p in container.demux(stream) if p.pts is not None and p.size]
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"could not read the packets of {Path(info.path).name}: {exc}"
                         ) from exc
    return rows


def _curve_from_packets(packets: list[tuple[float, int, bool]], duration: float,
                        bin_s: float) -> MotionCurve:
    """Bytes above the usual size of their kind (predicted frames, keyframes) per bin. A change
    worth less than a quarter of a typical keyframe's bytes never counts as full motion, so
    encoder noise in a static video stays near zero."""
    n_bins = max(1, math.ceil(duration / bin_s))
    inter = np.zeros(n_bins)
    keys = np.zeros(n_bins)
    key_sizes = [size for _, size, key in packets if key]
    usual_key = float(np.median(key_sizes)) if key_sizes else 0.0
    first = min((t for t, _, _ in packets), default=0.0)
    for t, size, key in packets:
        b = min(n_bins - 1, max(0, int(t / bin_s)))
        if key:  # the first picture is no change; later keyframes grow with new content
            keys[b] += max(0.0, size - usual_key) if t > first else 0.0
        else:
            inter[b] += size
    excess = np.maximum(inter - np.median(inter), 0.0) + keys
    scale = max(float(excess.max()), 0.25 * usual_key)
    values = excess / scale if scale > 0 else excess
    cuts = _irregular_keyframes([t for t, _, key in packets if key], duration)
    for cut in cuts:
        values[min(n_bins - 1, int(cut / bin_s))] = 1.0
    return MotionCurve(bin_s, tuple(float(v) for v in values), tuple(cuts), duration, "packets")


def _irregular_keyframes(key_times: list[float], duration: float) -> list[float]:
    """Keyframes that break the stream's usual keyframe interval: encoder-detected scene cuts.
    With too few keyframes to know the interval, every keyframe after the first counts."""
    times = sorted(t for t in key_times if 0 < t < duration)
    if len(times) < 3:
        return times
    gaps = np.diff([0.0, *times])
    usual = float(np.median(gaps))
    return [t for t, gap in zip(times, gaps, strict=True) if gap < 0.75 * usual]


def _curve_from_pixels(info: VideoInfo, bin_s: float, pixel_fps: float) -> MotionCurve:
    """Streamed: only the previous small grey frame is kept, so memory does not grow with the
    video's length."""
    from .decode import iter_frames

    step = 1.0 / pixel_fps
    times = list(np.arange(0.5 * step, max(info.duration, step), step))
    pairs: list[tuple[float, float]] = []  # (time before, time after) of each change
    changes: list[float] = []
    previous: tuple[float, np.ndarray] | None = None
    last_id = None
    for _, frame in iter_frames(info, times, size=(64, 64)):
        if id(frame) == last_id:
            continue
        last_id = id(frame)
        grey = frame.image.astype(np.float32).mean(axis=2)
        if previous is not None:
            changes.append(float(np.abs(grey - previous[1]).mean()) / 255.0)
            pairs.append((previous[0], frame.time))
        previous = (frame.time, grey)
    n_bins = max(1, math.ceil(info.duration / bin_s))
    diffs = np.zeros(n_bins)  # the largest change seen in each bin, above the noise floor
    raw = np.asarray(changes)
    above = _normalise(np.maximum(raw - np.median(raw), 0.0)) if raw.size else raw
    strongest: list[tuple[float, float, float]] = []
    cuts = []
    for value, change, (before, after) in zip(above, raw, pairs, strict=True):
        b = min(n_bins - 1, int(after / bin_s))
        diffs[b] = max(diffs[b], value)
        if value >= CHANGE_THRESHOLD:
            strongest.append((float(value), before, after))
        if change > 0.3:
            cuts.append(after)
    strongest.sort(reverse=True)
    anchors = tuple(t for _, before, after in strongest for t in (before, after))
    return MotionCurve(bin_s, tuple(float(v) for v in diffs), tuple(cuts), info.duration,
                       "pixels", anchors)


def _normalise(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    if top <= 0:
        return np.zeros_like(values, dtype=float)
    return values / top


def adaptive_times(curve: MotionCurve, budget: int, *, min_fps: float = 0.5,
                   max_fps: float = 3.0, last_time: float | None = None) -> list[float]:
    """Spend ``budget`` frames: the curve's anchors (at most half the budget), then about
    ``min_fps`` where nothing moves, up to ``max_fps`` where things move or the scene cuts.
    Returns sorted times (seconds) within the video.

    The density per bin is ``min_fps + (max_fps - min_fps) * motion`` (motion spread one bin to
    each side, so the frames before and after a change are both seen), scaled to the budget and
    clamped; times are placed by inverting the cumulative density.
    """
    end = curve.duration if last_time is None else min(curve.duration, last_time + 1e-9)
    anchors = list(dict.fromkeys(curve.anchors))[: max(0, budget // 2)]
    budget = max(1, budget - len(anchors))
    values = np.asarray(curve.values, dtype=float)
    spread = np.maximum(values, np.maximum(np.roll(values, 1), np.roll(values, -1)))
    if spread.size > 1:
        spread[0] = max(values[0], values[1])
        spread[-1] = max(values[-1], values[-2])
    density = min_fps + (max_fps - min_fps) * spread
    density = _fit_density(density, curve.bin_s, budget, min_fps, max_fps)
    cumulative = np.concatenate([[0.0], np.cumsum(density * curve.bin_s)])
    total = cumulative[-1]
    n = max(1, min(budget, int(round(total))))
    targets = (np.arange(n) + 0.5) * total / n
    edges = np.arange(len(density) + 1) * curve.bin_s
    times = np.interp(targets, cumulative, edges)
    return sorted({round(float(min(t, end)), 6) for t in [*times, *anchors]})


def _fit_density(density: np.ndarray, bin_s: float, budget: int, lo: float,
                 hi: float) -> np.ndarray:
    """Scale ``density`` (frames per second) so it sums to ``budget`` frames, within [lo, hi]
    where possible (a budget below ``lo`` everywhere lowers the floor instead)."""
    for _ in range(30):
        total = float((density * bin_s).sum())
        if total <= 0 or abs(total - budget) < 0.5:
            break
        density = density * (budget / total)
        floor = min(lo, budget / max(bin_s * len(density), 1e-9))
        density = np.clip(density, floor, max(hi, floor))
    return density
