"""Frames at requested times, each with its real presentation timestamp.

How a request is served
-----------------------
1. **Index** (:mod:`.index`; demux only): every packet's pts and keyframe flag. This gives the true
   display times of all frames, so each requested time maps to one exact frame: the frame
   *displayed* at ``t``, i.e. the last frame whose presentation time is ``<= t`` (times before the
   first frame give the first frame, times after the last give the last). The index of the last
   few files is kept while the file is unchanged (a long video asked in many windows, refined
   and verified is scanned once); :func:`keyframe_times` reads it for sampling.
2. **Plan** (:mod:`.plan`, pure): wanted frames are grouped by GOP; a run seeks to a keyframe
   and decodes forward, and neighbouring GOPs share a run where that is cheaper than a seek.
   A run seeks to its keyframe's *dts* (what MPEG-TS seeks by; never after the keyframe) and
   drops the packets before the keyframe undecoded, stepping back a few GOPs where a seek lands
   late. Raw elementary streams (no timestamps, no seeking) are one run from the start, frames
   numbered in output order at the stream's frame rate.
3. **Decode**: runs are independent (each starts at a keyframe), so several are decoded at once,
   one open file and decoder per thread (PyAV releases the GIL while FFmpeg decodes), and their
   frames are handed out in time order; at most ``2 x workers`` runs are held, so memory stays
   bounded. Packets of frames nothing references and nobody asked for are skipped
   (``skip_frame = NONREF``, only for packets whose pts is not wanted); each wanted frame is
   converted (and resized in swscale) as soon as it comes out. Each decoder uses FFmpeg's slice
   threading: on the 2-vCPU development VM frame threading made 720p H.264 decoding slower, not
   faster (see benchmarks/decode.py). Independent runs scale with cores that decode
   independently; on that VM two decoders together gain only about 1.15x (measured with two
   processes as well, so it is the VM's cores, not the GIL). A packet the decoder rejects
   (damaged data) is skipped, as players do; a time whose frame was lost gets the last good
   frame before it, with that frame's true time.

Frame times are ``(pts - start) * time_base`` with ``start`` the video stream's start time, as
:class:`~vidground.video.probe.VideoInfo` reports it, so they equal what a player shows.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.stream
import numpy as np

from ..errors import VideoError
from ..frame import Frame
from .index import FrameIndex, cached_index, frame_numbers
from .plan import TIME_SLACK, DecodeRun, plan_decode
from .probe import VideoInfo, check_frame, open_input, oversized, probe, video_stream

__all__ = ["DECODER_VERSION", "DecodeRun", "Frame", "decode_frames", "decode_threads",
           "iter_frames", "keyframe_times", "plan_decode"]

ProgressFn = Callable[[int, int], None]
log = logging.getLogger(__name__)
#: "discard every packet" for streams we do not decode: an enum in PyAV >= 18 (which refuses
#: the plain string), the string in older releases
DISCARD_ALL: Any = getattr(getattr(av.stream, "Discard", None), "all", "all")

#: Decoding threads (independent runs at once); ``VIDGROUND_DECODE_THREADS`` overrides.
DEFAULT_DECODE_THREADS = min(4, os.cpu_count() or 1)
#: Decoders for which skipping non-reference packets is known to be exact.
NONREF_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vp9", "vp8"})
#: Part of the frame cache's key (:mod:`vidground.cache.frames`): bump it when a change here
#: alters which picture a time gets, its time or its pixels, so old cached frames are not used.
DECODER_VERSION = 1


def _target_size(info: VideoInfo, size: tuple[int, int] | None) -> tuple[int, int] | None:
    """Decoder output (width, height) before rotation, for a wanted display ``size``."""
    if size is None:
        return None
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive (width, height), got {size}")
    return (h, w) if info.rotation % 180 == 90 else (w, h)


class _Decoder:
    """Decodes wanted frames of one open file, run by run."""

    def __init__(self, info: VideoInfo, size: tuple[int, int] | None,
                 index: FrameIndex | None = None) -> None:
        self.info = info
        self.out_size = _target_size(info, size)
        self.container, self.stream = self._open()
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 1_000_000)
        self.start_pts = round(info.start_time / self.time_base)
        # AVI stores no presentation times; FFmpeg guesses them, right for MPEG-4 part 2 but
        # wrong for H.264/HEVC with B-frames: there, frames are numbered in output order from
        # the (closed-GOP) keyframe a run starts at.
        self.count_frames = (self.container.format.name == "avi"
                             and self.stream.codec_context.name in ("h264", "hevc"))
        # a sibling decoder of the same file passes the index it already scanned
        self.index = index or cached_index(self.container, self.stream, info.path,
                                            self.count_frames)
        # A raw elementary stream has no timestamps at all and cannot seek: frames are numbered
        # in output order, at the stream's frame rate, and decoded in one pass from the start.
        self.untimed = self.index.untimed
        if self.untimed:
            self.index = frame_numbers(self.index)
            self.time_base = 1 / Fraction(info.safe_fps).limit_denominator(1001)
            self.start_pts = 0
            self.count_frames = True
        self.damaged = 0  # packets the decoder rejected (see _decode)
        ctx = self.stream.codec_context
        self.can_skip = (self.index.complete and ctx.name in NONREF_CODECS
                         and not self.count_frames)

    def _open(self) -> tuple[av.container.InputContainer, av.VideoStream]:
        """Open the file for decoding its video stream only, with slice threading."""
        container = open_input(self.info.path, self.info.max_pixels)
        stream = video_stream(container, Path(self.info.path))
        for other in container.streams:  # only this stream's packets are wanted
            if other.index != stream.index:
                other.discard = DISCARD_ALL
        stream.thread_type = "SLICE"
        return container, stream

    def close(self) -> None:
        self.container.close()

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def pts_of(self, t: float) -> int:
        return self.start_pts + int(np.floor((t + TIME_SLACK) / self.time_base))

    def wanted_pts(self, t: float) -> int | None:
        """Exact pts of the frame displayed at ``t``, when the index knows it."""
        pts = self.index.pts
        if not pts or not self.index.complete:
            return None
        i = bisect.bisect_right(pts, self.pts_of(t)) - 1
        return pts[max(i, 0)]

    def plan(self, times: Sequence[float]) -> list[DecodeRun]:
        if self.untimed:  # one pass from the start: such a stream cannot seek
            return [DecodeRun(0.0, tuple(sorted(times)), False)]
        keys = [self.seconds(p) for p in self.index.keyframes]
        known = self.index.complete and not self.count_frames
        frames = [self.seconds(p) for p in self.index.pts] if known else None
        return plan_decode(keys, times, frame_times=frames, frame_duration=self.info.frame_s)

    def image(self, frame: av.VideoFrame) -> np.ndarray:
        rgb: np.ndarray
        if self.out_size is None:
            rgb = frame.to_ndarray(format="rgb24")
        else:
            w, h = self.out_size
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="BICUBIC")
        if self.info.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.info.rotation // 90))
        return rgb

    def make_frame(self, frame: av.VideoFrame) -> Frame:
        check_frame(frame, Path(self.info.path).name, self.info.max_pixels)
        pts = _frame_pts(frame)
        return Frame(time=self.seconds(pts), image=self.image(frame),
                     index=self.index.rank.get(pts))

    def run(self, run: DecodeRun) -> Iterator[tuple[float, Frame]]:
        """Yield ``(requested time, frame)`` for each time of ``run`` (in order)."""
        targets = list(run.times)
        wanted = {p for p in map(self.wanted_pts, targets) if p is not None}
        key_pts = self.start_pts + round(run.keyframe / self.time_base)
        if self.untimed:  # cannot seek: read from the first byte again
            self.container.close()
            self.container, self.stream = self._open()
            packets = self.container.demux(self.stream)
        elif (exact_key := self._indexed_keyframe(key_pts)) is not None:
            packets = self._packets_from(exact_key)
        else:
            self._seek(key_pts)
            packets = self.container.demux(self.stream)
        previous: av.VideoFrame | None = None
        served: tuple[int, Frame] | None = None
        for frame in self._frames(run, wanted, packets):
            pts = _frame_pts(frame)
            if previous is None and self._overshot(pts, targets[0]):
                yield from self._restart(run, targets)
                return
            while targets:
                exact = self.wanted_pts(targets[0])
                if pts == exact or previous is None and pts > self.pts_of(targets[0]):
                    pick = frame
                elif previous is not None and pts > self.pts_of(targets[0]):
                    pick = previous  # (with no previous frame, the test above took it)
                else:
                    break
                served = self._serve(pick, served)
                yield targets.pop(0), served[1]
            if not targets:
                return
            previous = frame
        if previous is None:
            raise VideoError(f"No frame of {Path(self.info.path).name} could be decoded near "
                             f"{targets[0]:.3f}s; the file may be truncated or corrupt.")
        for t in targets:  # past the last frame: the last frame stays on screen
            served = self._serve(previous, served)
            yield t, served[1]

    def _serve(self, frame: av.VideoFrame,
               served: tuple[int, Frame] | None) -> tuple[int, Frame]:
        """The converted ``frame``, reusing the last one when it is the same picture."""
        pts = _frame_pts(frame)
        if served is not None and served[0] == pts:
            return served
        return pts, self.make_frame(frame)

    def _overshot(self, first_pts: int, t: float) -> bool:
        """The seek landed after the frame wanted at ``t`` (a bad index in the file)."""
        exact = self.wanted_pts(t)
        if exact is not None:
            return first_pts > exact
        return first_pts > self.pts_of(t) and bool(self.index.pts) and first_pts > self.index.pts[0]

    def _restart(self, run: DecodeRun, targets: list[float]) -> Iterator[tuple[float, Frame]]:
        """Serve ``targets`` decoding from the very first frame (slow, always right)."""
        first = self.seconds(self.index.keyframes[0]) if self.index.keyframes else 0.0
        if run.keyframe <= first:
            raise VideoError(f"Cannot find the frame at {targets[0]:.3f}s in "
                             f"{Path(self.info.path).name}; its index is broken.")
        yield from self.run(DecodeRun(first, tuple(targets), False))

    def _counted_frames(self, packets: Iterator[av.Packet]) -> Iterator[av.VideoFrame]:
        """Decode ``packets`` (from the seek point), stamping frames with the index times in
        output order (the first packet after a seek is a keyframe, shown first in its closed
        GOP; an untimed stream starts at frame 0)."""
        position: int | None = 0 if self.untimed else None
        for packet in packets:
            if position is None and packet.dts is not None and packet.size:
                position = bisect.bisect_left(self.index.pts, packet.dts)
            for frame in self._decode(packet):
                if position is None or position >= len(self.index.pts):
                    return
                frame.pts = self.index.pts[position]
                position += 1
                yield frame

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """The frames ``packet`` completes. A damaged packet (the decoder rejects its data) is
        skipped, as players do: the frames around it still carry their true times, and a time
        whose frame was lost is served by the last good frame before it."""
        ctx = self.stream.codec_context
        try:
            return ctx.decode(packet)
        except av.InvalidDataError as exc:
            if ctx.width * ctx.height > self.info.max_pixels:  # refused for its size
                raise oversized(Path(self.info.path).name, self.info.max_pixels) from exc
            self.damaged += 1
            return []
        except av.ArgumentError as exc:  # a picture over the limit, refused before allocation
            raise oversized(Path(self.info.path).name, self.info.max_pixels) from exc

    def _seek(self, pts: int) -> None:
        first = self.index.keyframes[0] if self.index.keyframes else self.start_pts
        self.container.seek(max(pts, first), stream=self.stream, backward=True, any_frame=False)

    def _indexed_keyframe(self, pts: int) -> int | None:
        """The index's keyframe at ``pts`` (give or take one tick of float rounding), when the
        index is exact enough to find it among the demuxed packets."""
        keys = self.index.keyframes
        if not self.index.complete or self.count_frames or not keys:
            return None
        i = bisect.bisect_left(keys, pts - 1)
        return keys[i] if i < len(keys) and abs(keys[i] - pts) <= 1 else None

    def _packets_from(self, key_pts: int) -> Iterator[av.Packet]:
        """Demuxed packets from the keyframe ``key_pts`` on.

        Seeks to the keyframe's dts (MPEG-TS seeks by dts, and a keyframe's dts is never after
        its pts) and drops the packets before it, undecoded. Where the seek lands after it
        (some demuxers, broken indexes), seeks again one, two and four GOPs earlier, then from
        the first keyframe: dropping packets costs only demuxing."""
        keys = self.index.keyframes
        at = bisect.bisect_left(keys, key_pts)
        key_dts = self.index.key_dts.get(key_pts, key_pts)
        tried: set[int] = set()
        for back in (0, 1, 2, 4, len(keys)):
            start = keys[max(0, at - back)]
            if start in tried:
                continue
            tried.add(start)
            self.container.seek(self.index.key_dts.get(start, start), stream=self.stream,
                                backward=True, any_frame=False)
            found = False
            for packet in self.container.demux(self.stream):
                if not found:
                    if packet.pts == key_pts and packet.is_keyframe:
                        found = True
                    elif packet.dts is not None and packet.dts > key_dts:
                        break  # landed after the keyframe: seek earlier
                    else:
                        continue
                yield packet
            if found:
                return
        raise VideoError(f"Cannot find the keyframe at {self.seconds(key_pts):.3f}s in "
                         f"{Path(self.info.path).name}; its index is broken.")

    def _frames(self, run: DecodeRun, wanted: set[int],
                packets: Iterator[av.Packet]) -> Iterator[av.VideoFrame]:
        if self.count_frames:
            yield from self._counted_frames(packets)
            return
        ctx = self.stream.codec_context
        # Set, not assumed: a run that stopped early (all its times served) leaves the decoder
        # as it was, and the next run on it must not skip a wanted B-frame.
        ctx.skip_frame = mode = "DEFAULT"
        for packet in packets:
            if run.keyframes_only and not packet.is_keyframe and packet.size:
                continue
            if self.can_skip:
                want: Literal["DEFAULT", "NONREF"] = \
                    "DEFAULT" if packet.pts in wanted or packet.is_keyframe else "NONREF"
                if want != mode:
                    ctx.skip_frame = mode = want
            yield from self._decode(packet)


def keyframe_times(video: str | Path | VideoInfo) -> list[float] | None:
    """Times of the keyframes (seconds from the first frame, ascending), or None when the file's
    timestamps do not tell them exactly (packets without pts, AVI with B-frames)."""
    info = _as_info(video)
    try:
        decoder = _Decoder(info, None)
    except av.FFmpegError as exc:
        raise VideoError(f"Cannot read {Path(info.path).name}: {exc}") from exc
    try:
        if not decoder.index.complete or decoder.count_frames:
            return None
        return [decoder.seconds(p) for p in decoder.index.keyframes]
    finally:
        decoder.close()


def _frame_pts(frame: av.VideoFrame) -> int:
    pts = frame.pts if frame.pts is not None else frame.dts
    if pts is None:
        raise VideoError("A decoded frame has no timestamp; the file is corrupt or unsupported.")
    return int(pts)


def _as_info(video: str | Path | VideoInfo) -> VideoInfo:
    return video if isinstance(video, VideoInfo) else probe(video)


def decode_threads() -> int:
    """How many runs are decoded at once (``VIDGROUND_DECODE_THREADS``, default: cores, at
    most 4)."""
    value = os.environ.get("VIDGROUND_DECODE_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError as exc:
            raise ValueError(f"VIDGROUND_DECODE_THREADS must be a whole number, got {value!r}"
                             ) from exc
    return DEFAULT_DECODE_THREADS


def iter_frames(video: str | Path | VideoInfo, times: Sequence[float], *,
                size: tuple[int, int] | None = None, progress: ProgressFn | None = None,
                threads: int | None = None) -> Iterator[tuple[float, Frame]]:
    """Yield ``(requested time, frame)`` in ascending time order, one pair per requested time
    (two times showing the same picture yield the same :class:`Frame` object). Memory stays
    bounded by the frames of a few decode runs: good for long videos. ``size`` is the wanted
    display (width, height); ``progress(done, total)`` is called after each distinct frame;
    ``threads``: runs decoded at once (default :func:`decode_threads`)."""
    info = _as_info(video)
    ordered = sorted(float(t) for t in times)
    if not ordered:
        return
    for t in ordered:
        if not np.isfinite(t):
            raise ValueError(f"frame times must be finite numbers, got {t}")
    try:
        decoder = _Decoder(info, size)
    except av.FFmpegError as exc:
        raise VideoError(f"Cannot read {Path(info.path).name}: {exc}") from exc
    try:
        done, total, last_id = 0, len({decoder.wanted_pts(t) for t in ordered}), None
        runs = decoder.plan(ordered)
        workers = min(threads or decode_threads(), len(runs))
        if workers > 1 and not decoder.count_frames:
            pairs = _parallel_runs(decoder, runs, size, workers)
        else:
            pairs = (pair for run in runs for pair in decoder.run(run))
        # Closed before ``decoder``: stopping early must join the worker threads (which may
        # still be decoding with ``decoder``) before its file is closed.
        with closing(pairs):
            for t, frame in pairs:
                if progress is not None and id(frame) != last_id:
                    done = min(done + 1, total)
                    progress(done, total)
                last_id = id(frame)
                yield t, frame
    except av.FFmpegError as exc:
        raise VideoError(f"Decoding {Path(info.path).name} failed: the file is corrupt or "
                         f"truncated ({exc}).") from exc
    finally:
        decoder.close()
        if decoder.damaged:
            log.warning("%s: skipped %d damaged packet(s); times near them are served by the "
                        "closest good frame before", Path(info.path).name, decoder.damaged)


def _parallel_runs(first: _Decoder, runs: Sequence[DecodeRun], size: tuple[int, int] | None,
                   workers: int) -> Generator[tuple[float, Frame], None, None]:
    """Decode ``runs`` on ``workers`` threads, one decoder (open file) per thread, and yield
    their frames in run order. At most ``2 * workers`` runs are in flight or waiting."""
    free: queue.SimpleQueue[_Decoder] = queue.SimpleQueue()
    free.put(first)  # the planning decoder serves too
    opened: list[_Decoder] = []

    def decode(run: DecodeRun) -> list[tuple[float, Frame]]:
        try:
            dec = free.get_nowait()
        except queue.Empty:  # at most ``workers`` decoders exist: one per busy thread
            dec = _Decoder(first.info, size, index=first.index)
            opened.append(dec)
        try:
            return list(dec.run(run))
        finally:
            free.put(dec)

    pending: deque[Future[list[tuple[float, Frame]]]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="vidground-decode")
    try:
        todo = iter(runs)
        for run in todo:
            pending.append(pool.submit(decode, run))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(decode, nxt))
            yield from result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        for dec in opened:
            first.damaged += dec.damaged
            dec.close()


def decode_frames(video: str | Path | VideoInfo, times: Sequence[float], *,
                  size: tuple[int, int] | None = None, progress: ProgressFn | None = None,
                  unique: bool = True, threads: int | None = None) -> list[Frame]:
    """Decode the frames displayed at ``times`` (seconds from the first frame).

    Each frame is the one on screen at that time (the last frame whose presentation time is
    ``<= t``) and carries its own exact time. Frames come back in the order of ``times``.
    ``unique=True`` (default): a frame shown at several requested times is returned once, at the
    place of its first request, so the result may be shorter than ``times``; ``unique=False``:
    exactly one frame per requested time (repeats share one object). ``size`` (width, height) is
    the wanted display size (after rotation); None keeps the original size. ``threads``: decode
    runs at once (default :func:`decode_threads`).
    """
    by_time: dict[float, Frame] = dict(iter_frames(video, times, size=size, progress=progress,
                                                   threads=threads))
    result: list[Frame] = []
    seen: set[int] = set()
    for t in times:
        frame = by_time[float(t)]
        if unique and id(frame) in seen:
            continue
        seen.add(id(frame))
        result.append(frame)
    return result
