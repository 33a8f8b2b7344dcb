"""Shot boundaries with TransNetV2 (Souček and Lokoč, 2020) over every frame of the video.

Every frame is decoded at the network's native 48x27 input by the project's decoder (true frame
times), streamed through the network in its own windows (100 frames, 25 of context either side,
50 predicted per window, the first and last frame repeated at the edges, as the reference
``predict_frames`` does), so memory stays bounded on long videos.

A transition is a run of frames whose single-frame score passes ``threshold`` (0.5, the
reference's; or, for a slow dissolve, 0.4 at the peak of a run of at least six frames whose
all-frames score passes 0.5), widened to the frames around it whose all-frames ("many-hot")
score passes ``threshold`` too:
a run of at most :data:`HARD_MAX_FRAMES` frames is a **hard cut**, at the first frame of the new
shot (a point: ``start == end``); a longer one is a **gradual** transition (dissolve, fade,
wipe), the span ``[its first frame, the first frame after it)``. A gradual transition's ends
are then put to the frame from its pixels where they are a cross-dissolve (:mod:`.dissolves`: a
blend ramp fitted to the frames around it; TransNetV2's score rises late on a dissolve whose
first frames still look like the old shot). Shots are the spans between transitions: a shot
ends where a transition starts and the next begins where it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..timecode import Span
from .models import shot_model, threads
from .results_cache import cached, stored

if TYPE_CHECKING:
    import numpy as np

    from ..video.probe import VideoInfo

#: TransNetV2's input frame (width, height).
INPUT_SIZE = (48, 27)
WINDOW, STEP, CONTEXT = 100, 50, 25
#: A transition this many frames long or shorter is a hard cut.
HARD_MAX_FRAMES = 2
DEFAULT_THRESHOLD = 0.5
#: A run of all-frames scores over the threshold this long whose single-frame peak passes
#: ``GRADUAL_PEAK`` x the threshold is a gradual transition too.
GRADUAL_MIN_FRAMES = 6
GRADUAL_PEAK = 0.8


@dataclass(frozen=True)
class Transition:
    """A shot change: ``kind`` ``"cut"`` (``start == end``: the new shot's first frame) or
    ``"gradual"`` (``[first transition frame, first frame after it)``)."""

    start: float
    end: float
    kind: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 6), "end": round(self.end, 6), "kind": self.kind,
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class ShotResult:
    shots: list[Span]
    transitions: list[Transition]
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"segments": [s.to_dict() for s in self.shots],
                "transitions": [t.to_dict() for t in self.transitions], "frames": self.frames}


def frame_times(info: VideoInfo) -> list[float]:
    """A time inside every frame of the stream (the middle of each frame period)."""
    count = max(1, info.frame_count or int(round(info.duration * info.safe_fps)))
    return [(i + 0.5) * info.frame_s for i in range(count)]


def _frames(info: VideoInfo, progress: Callable[[int, int], None] | None = None
            ) -> Iterator[tuple[float, np.ndarray]]:
    from ..video.decode import iter_frames

    last = None
    for _, frame in iter_frames(info, frame_times(info), size=INPUT_SIZE, progress=progress):
        if frame is last:
            continue
        last = frame
        yield frame.time, frame.image


def predict(info: VideoInfo, progress: Callable[[int, int], None] | None = None
            ) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Every frame's time, single-frame and many-hot transition probabilities;
    ``progress(done, total)`` after each decoded frame."""
    import numpy as np

    model = shot_model()  # first: without torch or TransNetV2 it says what to install
    import torch
    times: list[float] = []
    single: list[np.ndarray] = []
    many: list[np.ndarray] = []
    buffer: list[np.ndarray] = []

    def run(window: list[np.ndarray]) -> None:
        batch = torch.from_numpy(np.stack(window)[None])
        with torch.inference_mode():
            one, all_ = model.predict_raw(batch)
        single.append(one[0, CONTEXT:CONTEXT + STEP, 0].numpy().copy())
        many.append(all_[0, CONTEXT:CONTEXT + STEP, 0].numpy().copy())

    previous = torch.get_num_threads()
    torch.set_num_threads(threads())
    try:
        for t, image in _frames(info, progress):
            if not buffer:
                buffer = [image] * CONTEXT
            times.append(t)
            buffer.append(image)
            if len(buffer) >= WINDOW:
                run(buffer[:WINDOW])
                buffer = buffer[STEP:]
        while buffer and sum(len(s) for s in single) < len(times):
            buffer = buffer + [buffer[-1]] * (WINDOW - len(buffer))
            run(buffer)
            buffer = buffer[STEP:]
    finally:
        torch.set_num_threads(previous)
    n = len(times)
    if not n:
        return [], np.zeros(0, np.float32), np.zeros(0, np.float32)
    return times, np.concatenate(single)[:n], np.concatenate(many)[:n]


def transitions_from(times: list[float], single: np.ndarray, many: np.ndarray, end: float,
                     threshold: float = DEFAULT_THRESHOLD) -> list[Transition]:
    """Transitions from per-frame scores (see the module docstring)."""
    import numpy as np

    n = len(times)
    above = single > threshold
    # a slow dissolve spreads TransNetV2's single-frame score over its frames, so its peak can
    # stay under the threshold while the all-frames score stays high all along: such a run
    # of at least GRADUAL_MIN_FRAMES frames with a single-frame peak over GRADUAL_PEAK counts
    # (text appearing raises the all-frames score too, but its single-frame peak stays lower)
    for lo, hi in _runs(many > threshold):
        if hi - lo + 1 >= GRADUAL_MIN_FRAMES and not above[lo:hi + 1].any():
            peak = lo + int(np.argmax(single[lo:hi + 1]))
            if single[peak] > threshold * GRADUAL_PEAK:
                above[peak] = True
    found: list[Transition] = []
    i = 0
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        lo, hi = i, j
        while lo > 0 and many[lo - 1] > threshold and not above[lo - 1]:
            lo -= 1
        while hi + 1 < n and many[hi + 1] > threshold and not above[hi + 1]:
            hi += 1
        score = float(np.max(single[i:j + 1]))
        after = times[hi + 1] if hi + 1 < n else end
        if hi - lo + 1 <= HARD_MAX_FRAMES:
            peak = i + int(np.argmax(single[i:j + 1]))
            cut = times[peak + 1] if peak + 1 < n else end
            found.append(Transition(cut, cut, "cut", score))
        else:
            found.append(Transition(times[lo], after, "gradual", score))
        i = hi + 1
    # a widened run may reach into the next one: keep them in order, not overlapping
    merged: list[Transition] = []
    for tr in found:
        if merged and tr.start < merged[-1].end:
            continue
        merged.append(tr)
    return merged


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True in ``mask``."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, value in enumerate(mask.tolist()):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def refine_gradual(info: VideoInfo, times: list[float], transitions: list[Transition]
                   ) -> list[Transition]:
    """Each gradual transition's ends to the frame from its pixels where they are a
    cross-dissolve (:mod:`.dissolves`: a blend ramp fitted to the frames around it, decoded at
    the network's input size); a fitted blend of no frames is a hard cut. Others stay as
    TransNetV2 found them. ``times``: every frame's time."""
    import bisect

    import numpy as np

    from ..video.decode import decode_frames
    from .dissolves import REFERENCE, SEARCH, refine_span

    n = len(times)
    out: list[Transition] = []
    for tr in transitions:
        lo = bisect.bisect_left(times, tr.start - 1e-6)  # its first frame
        hi = bisect.bisect_left(times, tr.end - 1e-6)  # the new shot's first frame (or n)
        begin, stop = lo - SEARCH - REFERENCE, hi + SEARCH + REFERENCE
        if tr.kind != "gradual" or begin < 0 or stop > n:
            out.append(tr)
            continue
        wanted = times[begin:stop]
        frames = decode_frames(info, [t + 0.25 * info.frame_s for t in wanted],
                               size=INPUT_SIZE, unique=False)
        if [round(f.time, 4) for f in frames] != [round(t, 4) for t in wanted]:
            out.append(tr)  # not the frames the network saw (a variable frame rate)
            continue
        fitted = refine_span(np.stack([f.image for f in frames]), lo - begin, hi - begin)
        if fitted is None:
            out.append(tr)
            continue
        first, after = times[begin + fitted.first], times[begin + fitted.after]
        out.append(Transition(first, after, "gradual", tr.score) if after > first
                   else Transition(first, first, "cut", tr.score))
    kept: list[Transition] = []
    for tr in out:  # a refined span may now reach into its neighbour: keep the first
        if kept and tr.start < kept[-1].end:
            continue
        kept.append(tr)
    return kept


def shots_between(transitions: list[Transition], duration: float) -> list[Span]:
    spans: list[Span] = []
    start = 0.0
    for tr in transitions:
        if tr.start > start:
            spans.append(Span(start, tr.start))
        start = max(start, tr.end)
    if duration > start or not spans:
        spans.append(Span(start, max(start, duration)))
    return [s.with_(label=f"shot {k}", score=None) for k, s in enumerate(spans, 1)]


def detect_shots(video: str | Path | VideoInfo, *, threshold: float = DEFAULT_THRESHOLD,
                 progress: Callable[[int, int], None] | None = None) -> ShotResult:
    """Shots and the transitions between them (cached by file identity);
    ``progress(done, total)`` follows the frames when they are analysed."""
    from ..video.probe import VideoInfo, probe

    info = video if isinstance(video, VideoInfo) else probe(video)

    def compute() -> dict[str, Any]:
        times, single, many = predict(info, progress)
        return {"times": times, "single": [round(float(v), 5) for v in single],
                "many": [round(float(v), 5) for v in many]}

    raw, _ = cached("shots", info.path, {"input": list(INPUT_SIZE)}, compute)
    return _result(raw, info, threshold)


def stored_shots(info: VideoInfo, *, threshold: float = DEFAULT_THRESHOLD
                 ) -> ShotResult | None:
    """The shots :func:`detect_shots` found earlier for this file (cached by its identity),
    or None when they were never detected: nothing is computed, no model is loaded."""
    raw = stored("shots", info.path, {"input": list(INPUT_SIZE)})
    return None if raw is None else _result(raw, info, threshold)


def _result(raw: dict[str, Any], info: VideoInfo, threshold: float) -> ShotResult:
    import numpy as np

    times = [float(t) for t in raw["times"]]
    transitions = refine_gradual(info, times, transitions_from(
        times, np.asarray(raw["single"], np.float32), np.asarray(raw["many"], np.float32),
        info.duration, threshold))
    return ShotResult(shots_between(transitions, info.duration), transitions,
                      len(raw["times"]))
