"""The motion curve of a video (adaptive sampling's cheap first pass), kept in the disk cache,
so a second question with ``frame_sampling_rate="adaptive"`` does not decode the video again.

The key is the video file's identity, the curve's parameters and :data:`MOTION_VERSION`; the
entry is the curve itself, in the meta (its payload is empty).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..video.motion import MOTION_VERSION, MotionCurve, MotionMethod, motion_curve
from ..video.probe import VideoInfo
from .identity import file_identity
from .store import DiskCache, Entry

KIND = "motion"


def cached_motion_curve(cache: DiskCache | None, info: VideoInfo, *,
                        method: MotionMethod = "auto", bin_s: float = 0.25,
                        pixel_fps: float = 8.0) -> MotionCurve:
    """:func:`~vidground.video.motion.motion_curve` through ``cache`` (None: just measure)."""
    def compute() -> MotionCurve:
        return motion_curve(info, method=method, bin_s=bin_s, pixel_fps=pixel_fps)

    if cache is None:
        return compute()
    identity = file_identity(info.path)
    parts = {"video": identity, "method": method, "bin_s": bin_s,
             "pixel_fps": pixel_fps, "version": MOTION_VERSION}
    curve, _ = cache.get_or_create(KIND, parts, compute, _encode, _decode, group=identity)
    return curve


def _encode(curve: MotionCurve) -> tuple[dict[str, Any], bytes]:
    return {"curve": asdict(curve)}, b""


def _decode(entry: Entry) -> MotionCurve:
    c = entry.meta["curve"]
    return MotionCurve(bin_s=float(c["bin_s"]), values=tuple(float(v) for v in c["values"]),
                       cuts=tuple(float(v) for v in c["cuts"]), duration=float(c["duration"]),
                       method=str(c["method"]), anchors=tuple(float(v) for v in c["anchors"]))
