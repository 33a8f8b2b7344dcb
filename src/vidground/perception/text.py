"""When is a phrase on screen? OCR over sampled frames, then each boundary to the frame.

1. **Scan**: frames every ``step_s`` seconds (default 0.5 s, at the video's size up to
   1280 px) are read whole by PP-OCR (detection + recognition). A sample whose picture has
   not changed since the last frame read (every 16 px block within 3 grey levels: a screen
   recording, a slide) keeps that frame's lines without reading again. The scan is cached by
   file identity, so a second phrase about the same video costs no OCR.
2. **Match**: each sample's lines (and all its lines joined, for a phrase split over lines) are
   compared with the phrase fuzzily (:mod:`.matching`); consecutive matching samples form a
   run.
3. **Boundaries**: between a sample without the phrase and one with it, every frame in between
   is decoded (one seek) and a binary search finds the first frame showing it, with OCR as the
   judge: recognition only, on the box where the phrase was read (grown a little), so each
   look costs a tenth of a full read. Where that region read does not hold the phrase even on
   the frame it was found in (text that moves), the judge reads whole frames instead. A run
   reaching the video's first or last sample ends at the video's start or end.

Spans are ``[first frame showing it, first frame after it)`` in seconds, as frame times
(:class:`~vidground.frame.Frame`'s true times), so they are exact to the frame when the judge
agrees with the eye. Text shown for less than ``step_s`` may fall between two samples and be
missed; lower ``step_s`` for such flashes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from ..timecode import Span
from .matching import MATCH_SCORE, normalize, phrase_score
from .ocr import Box, TextLine, grow, read_lines, read_region
from .results_cache import cached, stored

if TYPE_CHECKING:
    import numpy as np

    from ..frame import Frame
    from ..video.probe import VideoInfo

ProgressFn = Callable[[int, int], None]
#: Seconds between the frames OCR reads whole.
DEFAULT_STEP_S = 0.5
#: Frames are read at most this many pixels on their long side.
MAX_SIDE = 1280
#: Frames decoded at once while narrowing a boundary.
GRID = 32
#: Two lines of consecutive samples are the same text (for ``--all``) at this similarity.
SAME_TEXT = 84.0
#: ``--all`` keeps lines OCR read with at least this mean confidence.
ALL_MIN_SCORE = 0.8
#: Side of the pixel blocks compared to tell a still picture from a changed one.
BLOCK = 16
#: A sample whose every block is within this many grey levels of the last frame read is not
#: read again (a screen recording, a slide, a paused scene).
UNCHANGED_LEVEL = 3.0


@dataclass(frozen=True)
class Sample:
    """OCR of the frame at ``time``; ``reused``: the picture had not changed since the last
    frame read, so its lines were kept without reading again."""

    time: float
    lines: tuple[TextLine, ...]
    reused: bool = False


@dataclass
class Run:
    """Consecutive samples ``first..last`` showing ``phrase`` (in ``first_box``/``last_box``)."""

    first: int
    last: int
    phrase: str
    first_box: Box
    last_box: Box
    texts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


@dataclass
class TextFinding:
    """What :func:`find_text` found: spans and how much work it took."""

    spans: list[Span]
    samples: int
    sample_reads: int = 0
    region_reads: int = 0
    frame_reads: int = 0
    cached_scan: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"segments": [s.to_dict() for s in self.spans],
                "ocr": {"samples": self.samples, "sample_reads": self.sample_reads,
                        "region_reads": self.region_reads,
                        "frame_reads": self.frame_reads, "cached_scan": self.cached_scan}}


def ocr_size(info: VideoInfo, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The (width, height) frames are read at: the display size, shrunk to ``max_side``."""
    w, h = info.display_size
    scale = min(1.0, max_side / max(w, h))
    return max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)


def sample_times(info: VideoInfo, step_s: float,
                 bounds: tuple[float, float] | None = None) -> list[float]:
    """``0, step, 2 step, ...`` inside the video, and its last frame; with ``bounds``
    (seconds), the multiples of ``step`` inside them (the whole video's grid, so a range's
    samples are the whole scan's), its first instant and its last frame."""
    if not (step_s > 0 and math.isfinite(step_s)):
        raise QueryError(f"the OCR step must be a positive number of seconds, got {step_s}")
    last = max(0.0, info.duration - info.frame_s)
    if bounds is not None:
        lo = max(0.0, bounds[0])
        hi = max(lo, min(last, bounds[1] - info.frame_s))
        grid = [i * step_s for i in range(int(math.ceil(lo / step_s - 1e-9)),
                                          int(math.floor(hi / step_s + 1e-9)) + 1)]
        return sorted({round(t, 6) for t in [lo, *grid, hi] if lo <= t <= hi})
    n = int(math.floor(last / step_s + 1e-9)) + 1
    times = [i * step_s for i in range(n)]
    if last - times[-1] > 1e-6:
        times.append(last)
    return times


def scan(info: VideoInfo, step_s: float = DEFAULT_STEP_S, *,
         progress: ProgressFn | None = None,
         bounds: tuple[float, float] | None = None) -> tuple[list[Sample], bool]:
    """OCR of the frames every ``step_s`` seconds (cached); ``(samples, hit)``.
    ``progress(done, total)`` is called after each sampled frame when the scan runs.
    ``bounds`` (seconds): only the frames inside them, read from the whole video's scan when
    that is cached (with the sample either side, for the boundary search), else scanned and
    cached apart."""
    size = ocr_size(info)
    params: dict[str, Any] = {"step_s": step_s, "size": list(size)}
    if bounds is not None:
        whole = stored("ocr-scan", info.path, params)
        if whole is not None:
            return _around(_samples(whole), bounds), True
        params["bounds"] = [round(bounds[0], 6), round(bounds[1], 6)]

    def compute() -> list[dict[str, Any]]:
        from ..video.decode import iter_frames

        out: list[dict[str, Any]] = []
        last_id = None
        previous: tuple[np.ndarray, list[list[Any]]] | None = None
        for _, frame in iter_frames(info, sample_times(info, step_s, bounds), size=size,
                                    progress=progress):
            if id(frame) == last_id:
                continue
            last_id = id(frame)
            sig = signature(frame.image)
            if previous is not None and unchanged(previous[0], sig):
                lines, reused = previous[1], True  # the same picture: the same text
            else:
                lines = [[ln.text, ln.score, list(ln.box)] for ln in read_lines(frame.image)]
                reused = False
                previous = (sig, lines)
            out.append({"time": frame.time, "lines": lines, "reused": reused})
        return out

    raw, hit = cached("ocr-scan", info.path, params, compute)
    return _samples(raw), hit


def _samples(raw: list[dict[str, Any]]) -> list[Sample]:
    return [Sample(float(s["time"]), tuple(TextLine(t, float(sc), _box(b))
                                           for t, sc, b in s["lines"]),
                   bool(s.get("reused"))) for s in raw]


def _around(samples: list[Sample], bounds: tuple[float, float]) -> list[Sample]:
    """The samples inside ``bounds`` and the one either side of them (a phrase already on
    screen before the range is then seen to be, and its boundary search starts outside)."""
    lo, hi = bounds
    inside = [i for i, s in enumerate(samples) if lo <= s.time < hi]
    if not inside:  # a range between two samples: the two around it
        after = next((i for i, s in enumerate(samples) if s.time >= hi), len(samples))
        return samples[max(0, after - 1):after + 1]
    return samples[max(0, inside[0] - 1):inside[-1] + 2]


def signature(image: np.ndarray) -> np.ndarray:
    """The mean brightness of each :data:`BLOCK` x ``BLOCK`` pixel block of ``image``."""
    import numpy as np

    grey = image.astype(np.float32).mean(axis=2)
    h, w = (grey.shape[0] // BLOCK) * BLOCK, (grey.shape[1] // BLOCK) * BLOCK
    if not h or not w:
        return grey
    return grey[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))


def unchanged(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether no block changed by :data:`UNCHANGED_LEVEL` grey levels or more: a line of text
    appearing, even 12 px high, moves its blocks' means by tens of levels; compression noise
    of a still picture by about one."""
    import numpy as np

    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0.0)) < UNCHANGED_LEVEL


def _box(values: Sequence[Any]) -> Box:
    x0, y0, x1, y1 = (int(v) for v in values)
    return x0, y0, x1, y1


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


def best_match(phrase: str, lines: Sequence[TextLine]) -> tuple[float, Box, str] | None:
    """The line (or all lines joined) that holds ``phrase`` best: (score, box, text)."""
    best: tuple[float, Box, str] | None = None
    for line in lines:
        score = phrase_score(phrase, line.text)
        if score >= MATCH_SCORE and (best is None or score > best[0]):
            best = (score, line.box, line.text)
    if best is None and len(lines) > 1:
        joined = " ".join(ln.text for ln in lines)
        score = phrase_score(phrase, joined)
        if score >= MATCH_SCORE:
            best = (score, _union([ln.box for ln in lines]), joined)
    return best


def phrase_runs(phrase: str, samples: Sequence[Sample]) -> list[Run]:
    runs: list[Run] = []
    for i, sample in enumerate(samples):
        hit = best_match(phrase, sample.lines)
        if hit is None:
            continue
        score, box, text = hit
        conf = max((ln.score for ln in sample.lines if ln.text in text), default=1.0)
        if runs and runs[-1].last == i - 1:
            run = runs[-1]
            run.last, run.last_box = i, box
        else:
            run = Run(i, i, phrase, box, box)
            runs.append(run)
        run.texts.append(text)
        run.scores.append(score / 100 * conf)
    return runs


def text_runs(samples: Sequence[Sample]) -> list[Run]:
    """Every line of text followed through consecutive samples (same text, overlapping box)."""
    from rapidfuzz import fuzz

    open_runs: list[Run] = []
    done: list[Run] = []
    for i, sample in enumerate(samples):
        still: list[Run] = []
        for line in sample.lines:
            key = normalize(line.text)
            if not key:
                continue
            match = next((r for r in open_runs if r.last == i - 1 and r not in still
                          and _overlap(r.last_box, line.box) > 0.3
                          and fuzz.ratio(normalize(r.phrase), key) >= SAME_TEXT), None)
            if match is None:
                match = Run(i, i, line.text, line.box, line.box)
            match.last, match.last_box = i, line.box
            match.texts.append(line.text)
            match.scores.append(line.score)
            still.append(match)
        done.extend(r for r in open_runs if r not in still)
        open_runs = still
    done.extend(open_runs)
    for run in done:
        run.phrase = Counter(run.texts).most_common(1)[0][0]
    # a lone character read once off a texture is noise, not text on screen
    done = [r for r in done if sum(r.scores) / len(r.scores) >= ALL_MIN_SCORE
            and (len(normalize(r.phrase)) > 1 or r.last > r.first)]
    return sorted(done, key=lambda r: (r.first, r.first_box[1], r.first_box[0]))


def _overlap(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return inter / smaller if smaller > 0 else 0.0


class Judge:
    """Says whether a frame shows ``phrase`` by reading the region it was found in."""

    def __init__(self, phrase: str, box: Box, size: tuple[int, int]) -> None:
        self.phrase = phrase
        self.region = grow(box, size)
        self.whole = False
        self.region_reads = 0
        self.frame_reads = 0

    def __call__(self, frame: Frame) -> bool:
        if self.whole:
            self.frame_reads += 1
            return best_match(self.phrase, read_lines(frame.image)) is not None
        self.region_reads += 1
        return phrase_score(self.phrase, read_region(frame.image, self.region).text
                            ) >= MATCH_SCORE

    def calibrate(self, present: Frame) -> None:
        """Read whole frames from now on if the region read misses the phrase where it is."""
        if not self(present):
            self.whole = True


def first_true(info: VideoInfo, size: tuple[int, int], lo: float, hi: float,
               test: Callable[[Frame], bool], *, want: bool) -> float:
    """The time of the first frame after ``lo`` (where ``test`` is ``not want``) whose test is
    ``want``, ``hi``'s frame's being ``want``: a binary search over the frames in between,
    decoded ``GRID`` at a time."""
    from ..video.decode import decode_frames

    frame_s = info.frame_s
    while True:
        count = int(round((hi - lo) / frame_s))
        points = min(GRID, max(2, count + 1))
        times = [lo + (hi - lo) * k / (points - 1) for k in range(points)]
        frames = decode_frames(info, times, size=size)  # unique, in time order
        a, b = 0, len(frames) - 1  # frames[a] is not ``want``, frames[b] is
        if b <= 0:
            return frames[-1].time
        while b - a > 1:
            mid = (a + b) // 2
            if test(frames[mid]) == want:
                b = mid
            else:
                a = mid
        if count < points or frames[b].time - frames[a].time <= frame_s * 1.5:
            return frames[b].time
        lo, hi = frames[a].time, frames[b].time


def refine(info: VideoInfo, samples: Sequence[Sample], run: Run, size: tuple[int, int],
           bounds: tuple[float, float] | None = None) -> tuple[Span, int, int]:
    """The span of ``run`` to the frame; (span, region reads, whole-frame reads). A run
    reaching the first or last sample starts or ends at the edge of ``bounds`` (default: the
    video)."""
    from ..video.decode import decode_frames

    reads = [0, 0]

    def judge_for(box: Box, at: float) -> Judge:
        judge = Judge(run.phrase, box, size)
        judge.calibrate(decode_frames(info, [at], size=size)[0])
        return judge

    def count(judge: Judge) -> None:
        reads[0] += judge.region_reads
        reads[1] += judge.frame_reads

    lo, hi = bounds if bounds is not None else (0.0, info.duration)
    if run.first == 0:  # on screen from the start (or, first sample before it, earlier)
        start = min(lo, samples[0].time)
    else:
        judge = judge_for(run.first_box, samples[run.first].time)
        start = first_true(info, size, samples[run.first - 1].time, samples[run.first].time,
                           judge, want=True)
        count(judge)
    if run.last == len(samples) - 1:
        end = hi
    else:
        judge = judge_for(run.last_box, samples[run.last].time)
        end = first_true(info, size, samples[run.last].time, samples[run.last + 1].time,
                         judge, want=False)
        count(judge)
    label = Counter(run.texts).most_common(1)[0][0]
    score = round(sum(run.scores) / len(run.scores), 4)
    return Span(start, max(start, end), label=label, score=score), reads[0], reads[1]


def _info(video: str | Path | VideoInfo) -> VideoInfo:
    from ..video.probe import VideoInfo, probe

    return video if isinstance(video, VideoInfo) else probe(video)


def find_text(video: str | Path | VideoInfo, phrase: str, *,
              step_s: float = DEFAULT_STEP_S, progress: ProgressFn | None = None,
              bounds: tuple[float, float] | None = None) -> TextFinding:
    """Every span in which ``phrase`` is on screen (see the module docstring);
    ``progress(done, total)`` follows the scan. ``bounds`` (seconds, inside the video): look
    only there (spans in whole-video seconds, clamped to them)."""
    if not normalize(phrase):
        raise QueryError("give the words to look for on screen, e.g. "
                         "vidground text video.mp4 \"PAYMENT FAILED\"")
    info = _info(video)
    samples, hit = scan(info, step_s, progress=progress, bounds=bounds)
    return _refined(info, samples, phrase_runs(phrase, samples), hit, bounds)


def all_text(video: str | Path | VideoInfo, *, step_s: float = DEFAULT_STEP_S,
             progress: ProgressFn | None = None) -> TextFinding:
    """Every line of text the video shows, each with the span it is on screen."""
    info = _info(video)
    samples, hit = scan(info, step_s, progress=progress)
    return _refined(info, samples, text_runs(samples), hit)


def _refined(info: VideoInfo, samples: list[Sample], runs: list[Run], hit: bool,
             bounds: tuple[float, float] | None = None) -> TextFinding:
    size = ocr_size(info)
    finding = TextFinding([], samples=len(samples), cached_scan=hit,
                          sample_reads=sum(not s.reused for s in samples))
    for run in runs:
        span, region, whole = refine(info, samples, run, size, bounds)
        if bounds is not None:  # a run on a sample just outside the range may end before it
            if span.end <= bounds[0] and span.start < bounds[0] or span.start >= bounds[1]:
                continue
            span = span.clamp(*bounds)
        finding.spans.append(span)
        finding.region_reads += region
        finding.frame_reads += whole
    finding.spans.sort(key=lambda s: (s.start, s.end))
    return finding
