"""The watcher: sliding windows over live frames, a cheap gate, the model, start/end events.

A reader thread decodes the source into a ring buffer of recent frames (``buffer_s`` seconds).
Every ``every_s`` of stream time the main loop looks at the newest ``window_s`` seconds: the
frame-difference gate (:class:`FrameGate`) says whether anything changed since the model last
looked; the model is asked only when it did, when an event is in progress (to see it end), or
when ``max_interval_s`` passed. One model call is in flight per stream at most, and at most
``max_calls_per_minute``: a window due while the model is busy or the budget spent is skipped
and counted, never queued.

The model is vidground's backend, asked the grounding prompt (``build_prompt``) and parsed with
``parse_answer``. "started" is emitted as soon as a window shows the event; "ended" when a later
window shows it over, with both boundaries re-asked on the buffered native frames (dense frames
on a virtual clock, as :mod:`vidground.grounding.refine` does) so they land on exact frames, and
an exact clip encoded from the buffer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..frame import Frame
from ..grounding.answer import parse_answer
from ..grounding.prompts import build_prompt, build_verify_prompt
from ..grounding.refine import on_virtual_clock, real_end, real_start
from .sources import LiveSource, StreamFrame

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class WatchConfig:
    """``window_s``: what one model call sees; ``every_s``: how often a window is considered;
    ``sample_fps``: frames per second of a window shown to the model; ``max_interval_s``: the
    longest time the model goes unasked while the gate is quiet; ``gate``: False asks at every
    window; ``max_calls_per_minute``: the model budget of this stream; ``buffer_s``: recent
    frames kept for refinement and clips; ``dense_frames``: frames per refinement call."""

    window_s: float = 4.0
    every_s: float = 1.0
    sample_fps: float = 2.0
    max_interval_s: float = 10.0
    gate: bool = True
    gate_threshold: float = 8.0
    max_calls_per_minute: int = 30
    buffer_s: float = 30.0
    max_buffer_frames: int = 3000
    refine: bool = True
    dense_frames: int = 16
    clip_dir: Path | None = None
    max_new_tokens: int = 128
    #: when set, the first frame showing an event is saved here as a JPEG and named in its
    #: evidence (``"image"``)
    evidence_dir: Path | None = None


@dataclass
class WatchStats:
    """What the watcher did, reported with every status line and at the end."""

    frames: int = 0
    windows: int = 0
    model_calls: int = 0
    refine_calls: int = 0
    gate_fired: int = 0
    gate_quiet: int = 0
    skipped_busy: int = 0
    skipped_budget: int = 0
    model_errors: int = 0
    events_started: int = 0
    events_ended: int = 0
    reconnects: int = 0
    drops: int = 0
    stream_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        minutes = self.stream_s / 60.0
        total = self.model_calls + self.refine_calls
        data["calls_per_stream_minute"] = round(total / minutes, 2) if minutes > 0 else None
        return data


class FrameGate:
    """Frame difference on an 8x8 grid of blocks of a small grey picture: fires when any
    block changed by more than ``threshold`` grey levels above that block's own noise floor
    (a running average of its changes, so a ticking clock overlay or sensor noise learns to be
    quiet)."""

    def __init__(self, threshold: float = 8.0, grid: int = 8) -> None:
        self.threshold = threshold
        self.grid = grid
        self._last: np.ndarray | None = None
        self._floor: np.ndarray | None = None

    def _blocks(self, image: np.ndarray) -> np.ndarray:
        grey = image[..., :3].astype(np.float32).mean(axis=2)
        h, w = grey.shape
        g = self.grid
        grey = grey[: h - h % g, : w - w % g]
        return grey.reshape(g, grey.shape[0] // g, g, grey.shape[1] // g).mean(axis=(1, 3))

    def update(self, image: np.ndarray) -> bool:
        blocks = self._blocks(image)
        if self._last is None:
            self._last, self._floor = blocks, np.zeros_like(blocks)
            return True
        diff = np.abs(blocks - self._last)
        assert self._floor is not None
        fired = bool((diff > self._floor * 2.0 + self.threshold).any())
        self._floor = self._floor * 0.9 + diff * 0.1
        self._last = blocks
        return fired


class CallBudget:
    """At most ``per_minute`` model calls in any 60 s of wall time."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: deque[float] = deque()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] >= 60.0:
            self._times.popleft()
        if len(self._times) >= self.per_minute:
            return False
        self._times.append(now)
        return True

    def recent(self, now: float | None = None) -> int:
        """Calls taken in the last 60 s."""
        now = time.monotonic() if now is None else now
        return sum(1 for t in self._times if now - t < 60.0)

    def give_back(self) -> None:
        """Return the last call taken (it cost nothing: the backend had no answer)."""
        if self._times:
            self._times.pop()


@dataclass
class _Active:
    start: float  # coarse start (stream s)
    wall_start: float
    last_seen: float
    score: float | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    event_id: str = ""
    start_tried: bool = False  # the start was re-asked while its frames were buffered
    refined_start: float | None = None


@dataclass
class _Answer:
    present: bool
    spans: list[tuple[float, float]]
    text: str
    last_time: float
    frames: list[StreamFrame]


class Watcher:
    """Watch ``source`` for ``query`` with ``backend``; events go to ``on_event``."""

    def __init__(self, source: LiveSource, backend: Any, query: str, *,
                 config: WatchConfig | None = None, monitor: str = "watch",
                 on_event: EventCallback | None = None,
                 on_status: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.source = source
        self.backend = backend
        self.query = query
        self.config = config or WatchConfig()
        self.monitor = monitor
        self.on_event = on_event or (lambda _e: None)
        self.on_status = on_status or (lambda _k, _d: None)
        self.stats = WatchStats()
        self.stop_event = threading.Event()
        self._buffer: deque[StreamFrame] = deque()
        self._cond = threading.Condition()
        self._source_done = False
        self._gate = FrameGate(self.config.gate_threshold)
        self._budget = CallBudget(self.config.max_calls_per_minute)
        self._prompt = build_prompt(query, return_reasoning=False, all_occurrences=True)
        self._active: _Active | None = None
        self._ended_at = -1.0  # exclusive end of the last event (stream s)
        self._count = 0
        self._ending: _Active | None = None
        self._finishing: _Active | None = None  # its "ended" is being made
        self._starting: _Active | None = None
        #: wall time of the last model answer, and the last error (source or model)
        self.last_check_wall: float | None = None
        self.last_error: str | None = None
        source.on_status = self._source_status

    # -- reading ------------------------------------------------------------------------

    def _source_status(self, kind: str, detail: str) -> None:
        if kind in ("dropped", "reconnecting", "gave_up"):
            self.last_error = detail
        self.stats.reconnects = self.source.stats.reconnects
        self.stats.drops = self.source.stats.drops
        self.on_status(kind, {"detail": detail, "monitor": self.monitor})

    def _read(self) -> None:
        try:
            for sf in self.source.frames(self.stop_event):
                with self._cond:
                    self._buffer.append(sf)
                    newest = sf.time
                    while self._buffer and (newest - self._buffer[0].time > self.config.buffer_s
                                            or len(self._buffer) > self.config.max_buffer_frames):
                        self._buffer.popleft()
                    self.stats.frames += 1
                    self.stats.stream_s = newest
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._source_done = True
                self._cond.notify_all()

    def _snapshot(self, lo: float, hi: float) -> list[StreamFrame]:
        with self._cond:
            return [f for f in self._buffer if lo <= f.time <= hi]

    # -- the loop -----------------------------------------------------------------------

    def run(self, *, max_stream_s: float | None = None, max_wall_s: float | None = None,
            max_events: int | None = None) -> WatchStats:
        """Watch until the source ends, ``stop()``, or a limit is reached; returns the stats."""
        reader = threading.Thread(target=self._read, name=f"live-{self.monitor}", daemon=True)
        reader.start()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"live-model-{self.monitor}")
        pending: Future[Any] | None = None
        pending_kind = ""
        next_tick: float | None = None
        last_ask = -1e9
        changed = False
        deadline = time.monotonic() + max_wall_s if max_wall_s else None
        try:
            while not self.stop_event.is_set():
                with self._cond:
                    self._cond.wait(timeout=0.2)
                    newest = self._buffer[-1].time if self._buffer else None
                    done = self._source_done
                if pending is not None and pending.done():
                    result, pending = self._result(pending), None
                    self._handle(pending_kind, result)
                if pending is None and self._starting is not None:
                    pending, pending_kind = pool.submit(self._refine_start, self._starting), ""
                    self._starting = None
                if pending is None and self._ending is not None:
                    pending, pending_kind = pool.submit(self._finish, self._ending), "end"
                    self._finishing, self._ending = self._ending, None
                if max_events is not None and self.stats.events_ended >= max_events:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                if done:
                    if pending is not None:
                        self._handle(pending_kind, self._result(pending))
                        pending = None
                    if self._ending is not None:
                        self._finishing, self._ending = self._ending, None
                        self._handle("end", self._finish(self._finishing))
                    if self._active is not None:
                        self._finishing = self._close_active(None)
                        self._handle("end", self._finish(self._finishing))
                    break
                if newest is None:
                    continue
                if max_stream_s is not None and newest >= max_stream_s:
                    self.stop_event.set()
                    continue
                if next_tick is None:
                    next_tick = newest + min(self.config.window_s, self.config.every_s)
                if newest < next_tick:
                    continue
                next_tick = newest + self.config.every_s
                self.stats.windows += 1
                frames = self._window(newest)
                if frames and self._gate.update(frames[-1].frame.image):
                    changed = True
                due = (not self.config.gate or changed or self._active is not None
                       or newest - last_ask >= self.config.max_interval_s)
                if not due:
                    self.stats.gate_quiet += 1
                    continue
                if pending is not None:
                    self.stats.skipped_busy += 1
                    continue
                if not self._budget.take():
                    self.stats.skipped_budget += 1
                    continue
                if changed:
                    self.stats.gate_fired += 1
                changed = False
                last_ask = newest
                self.stats.model_calls += 1
                pending, pending_kind = pool.submit(self._ask, frames), "ask"
        finally:
            self.stop_event.set()
            pool.shutdown(wait=True, cancel_futures=True)
            reader.join(timeout=15)
        self.stats.reconnects = self.source.stats.reconnects
        self.stats.drops = self.source.stats.drops
        self.on_status("stopped", {"monitor": self.monitor, "stats": self.stats.to_dict()})
        return self.stats

    def _result(self, future: Future[Any]) -> Any:
        """A model job's result; a failed call (server down, bad answer) is counted and
        reported, and the watch goes on (the next window asks again)."""
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - the model failing must not end the watch
            self.stats.model_errors += 1
            self.last_error = f"model: {type(exc).__name__}: {exc}"
            self.on_status("model_error", {"detail": f"{type(exc).__name__}: {exc}",
                                           "monitor": self.monitor})
            return None

    def stop(self) -> None:
        self.stop_event.set()

    def _window(self, newest: float) -> list[StreamFrame]:
        frames = self._snapshot(newest - self.config.window_s, newest)
        step = 1.0 / self.config.sample_fps
        picked: list[StreamFrame] = []
        for f in reversed(frames):  # newest first, so the newest frame is always shown
            if not picked or picked[-1].time - f.time >= step - 1e-6:
                picked.append(f)
        limit = getattr(self.backend, "max_frames_per_request", None)
        if limit:
            picked = picked[:limit]
        return picked[::-1]

    # -- the model ----------------------------------------------------------------------

    def _ask(self, frames: list[StreamFrame]) -> _Answer:
        text = self.backend.generate([f.frame for f in frames], self._prompt,
                                     max_new_tokens=self.config.max_new_tokens)
        parsed = parse_answer(text)
        spans = [(s.start, s.end) for s in parsed.spans]
        self.last_check_wall = time.time()
        return _Answer(present=bool(spans) and not parsed.not_found, spans=spans, text=text,
                       last_time=frames[-1].time, frames=frames)

    def _handle(self, kind: str, result: Any) -> None:
        if kind == "end":
            self._finishing = None  # before the emit: a checkpoint taken there is after it
        if kind == "" or result is None:
            return
        if kind == "end":
            self._emit(result)
            return
        answer: _Answer = result
        step = 1.0 / self.config.sample_fps
        fresh = [(a, b) for a, b in answer.spans if b >= self._ended_at]
        if self._active is None:
            if not fresh:
                return
            start = max(fresh[0][0], self._ended_at)
            first = min(answer.frames, key=lambda f: abs(f.time - start))
            self._count += 1
            event_id = hashlib.sha256(f"{self.monitor}\0{self.query}\0{start:.6f}\0"
                                      f"{first.wall:.6f}".encode()).hexdigest()[:24]
            evidence: dict[str, Any] = {"time": round(first.time, 3),
                                        "wall": round(first.wall, 3),
                                        "answer": answer.text.strip()[:500]}
            image = self._save_evidence(first, event_id)
            if image is not None:
                evidence["image"] = image
            self._active = _Active(start=first.time, wall_start=first.wall,
                                   last_seen=fresh[-1][1], score=None, event_id=event_id,
                                   evidence=[evidence])
            self.stats.events_started += 1
            self._emit(self._event("started", self._active, None, None, refined=False))
            if self.config.refine:  # now, while its frames are buffered (a long event)
                self._starting = self._active
            ongoing = fresh[-1][1] >= answer.last_time - 0.5 * step
            if ongoing:
                return
        active = self._active
        if answer.last_time <= active.last_seen:
            # a window from before what was last seen of the event cannot show it over (a
            # resumed watcher looks again at frames from before its checkpoint)
            return
        if fresh:
            active.last_seen = max(active.last_seen, fresh[-1][1])
        ongoing = bool(fresh) and fresh[-1][1] >= answer.last_time - 0.5 * step
        if not ongoing:
            self._ending = self._close_active(answer)

    def _save_evidence(self, frame: StreamFrame, event_id: str) -> str | None:
        """The frame as a JPEG in ``evidence_dir`` (its path), or None (none asked, or the
        write failed: reported, the event still goes out)."""
        if self.config.evidence_dir is None:
            return None
        from PIL import Image

        path = self.config.evidence_dir / f"{self.monitor}-{event_id[:8]}-start.jpg"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(frame.frame.image[..., :3])).save(
                path, format="JPEG", quality=85)
        except Exception as exc:  # noqa: BLE001 - an event without its picture
            self.on_status("evidence_error", {"detail": f"{type(exc).__name__}: {exc}",
                                              "monitor": self.monitor})
            return None
        return str(path)

    # -- resuming -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """What a new watcher needs to carry on where this one stopped (JSON): the end of
        the last event and the event in progress, if any (it is not announced again)."""
        # an event being closed is still in progress until its "ended" went out
        active = self._active or self._ending or self._finishing
        return {"ended_at": self._ended_at, "count": self._count,
                "active": None if active is None else asdict(active)}

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Carry on from :meth:`checkpoint` (call before :meth:`run`)."""
        self._ended_at = float(checkpoint.get("ended_at", -1.0))
        self._count = int(checkpoint.get("count", 0))
        active = checkpoint.get("active")
        if active:
            fields = {k: v for k, v in active.items() if k in _Active.__dataclass_fields__}
            self._active = _Active(**fields)

    def _close_active(self, answer: _Answer | None) -> _Active:
        active = self._active
        assert active is not None
        self._active = None
        self._ended_at = active.last_seen + 1e-6
        if self._starting is active:
            self._starting = None  # refined with the end, from the same buffer
        return active

    def _refine_start(self, active: _Active) -> None:
        step = 1.0 / self.config.sample_fps
        frames = self._snapshot(active.start - 3 * step, active.start + step)
        active.refined_start = self._boundary(frames, active.start - 2 * step,
                                              active.start + 0.5 * step, "start")
        active.start_tried = True

    def _finish(self, active: _Active) -> dict[str, Any]:
        """Refine the event's boundaries on the buffered frames, cut its clip: the "ended"."""
        step = 1.0 / self.config.sample_fps
        start, end = active.start, active.last_seen
        frames = self._snapshot(start - 3 * step, end + 3 * step)
        native = _native_step(frames)
        refined = False
        if self.config.refine and frames:
            s = active.refined_start if active.start_tried else self._boundary(
                frames, start - 2 * step, start + 0.5 * step, "start")
            e = self._boundary(frames, end - 0.5 * step, end + 2 * step, "end")
            refined = s is not None and e is not None and e > s
            start = s if s is not None and (e is None or e > s) else start
            end = e if e is not None and e > start else end + native
        else:
            end = end + native
        self._ended_at = max(self._ended_at, end if refined else active.last_seen + step)
        clip = None
        if self.config.clip_dir is not None:
            clip_frames = [f for f in frames if start - 1e-6 <= f.time < end - 1e-6]
            try:
                clip = str(cut_clip(clip_frames, self.config.clip_dir /
                                    f"{self.monitor}-{active.event_id[:8]}.mp4", native)
                           ) if clip_frames else None
            except Exception as exc:  # noqa: BLE001 - the event goes out without its clip
                self.on_status("clip_error", {"detail": f"{type(exc).__name__}: {exc}",
                                              "monitor": self.monitor})
        active.score = self._score([f for f in frames if start - 1e-6 <= f.time < end])
        wall_end = _wall_at(frames, end)
        self.stats.events_ended += 1
        event = self._event("ended", active, end, wall_end, refined=refined, clip=clip,
                            start=start, wall_start=_wall_at(frames, start) or active.wall_start)
        # stream time the watcher never saw (a drop): a boundary there is only a bound
        event["gaps"] = [[round(a.time, 3), round(b.time, 3)] for a, b in zip(
            frames, frames[1:], strict=False) if b.time - a.time > max(0.5, 4 * native)]
        return event

    def _boundary(self, frames: list[StreamFrame], lo: float, hi: float, kind: str
                  ) -> float | None:
        """The exact frame time of a boundary in ``[lo, hi]``: dense re-asks, narrowing
        to the two shown frames around it until consecutive native frames are shown (at most
        3 calls). A start is the first frame showing the event; an end the first frame after
        the last one showing it."""
        window = [f for f in frames if lo - 1e-6 <= f.time <= hi + 1e-6]
        native = _native_step(frames)
        for _ in range(3):
            if len(window) < 2:
                return None
            stride = max(1, -(-len(window) // self.config.dense_frames))
            shown = window[::stride]
            if shown[-1] is not window[-1]:
                shown.append(window[-1])
            if not self._budget.take():
                self.stats.skipped_budget += 1
                return None
            self.stats.refine_calls += 1
            dense = [f.frame for f in shown]
            try:
                text = self.backend.generate(on_virtual_clock(dense), self._prompt,
                                             max_new_tokens=self.config.max_new_tokens)
            except Exception as exc:  # noqa: BLE001 - an unrefined boundary, not a lost event
                self.stats.model_errors += 1
                self.on_status("model_error", {"detail": f"{type(exc).__name__}: {exc}",
                                               "monitor": self.monitor})
                return None
            parsed = parse_answer(text)
            if not parsed.spans:
                return None
            if kind == "start":
                j = min(len(shown) - 1, max(0, int(round(parsed.spans[0].start))))
                if stride == 1 or j == 0:
                    return real_start(dense, parsed.spans[0].start)
                pair = (shown[j - 1].time, shown[j].time)
            else:
                k = min(len(shown) - 1, max(0, int(round(parsed.spans[-1].end))))
                if stride == 1 or k == len(shown) - 1:
                    return real_end(dense, parsed.spans[-1].end, native)
                pair = (shown[k].time, shown[k + 1].time)
            window = [f for f in window if pair[0] - 1e-6 <= f.time <= pair[1] + 1e-6]
        return None

    def _score(self, frames: list[StreamFrame]) -> float | None:
        """P(yes) that the event shows in its frames, from backends that can tell it (the
        local one); None otherwise or when the budget is spent."""
        ask = getattr(self.backend, "yes_probability", None)
        if not frames or ask is None or not self._budget.take():
            return None
        step = max(1, len(frames) // self.config.dense_frames)
        try:
            p = ask([f.frame for f in frames[::step]], build_verify_prompt(self.query))
        except Exception:  # noqa: BLE001 - no score, the event still goes out
            self.stats.model_errors += 1
            p = None
        if p is None:
            self._budget.give_back()
            return None
        self.stats.refine_calls += 1
        return round(float(p), 4)

    # -- events -------------------------------------------------------------------------

    def _event(self, kind: str, active: _Active, end: float | None, wall_end: float | None, *,
               refined: bool, clip: str | None = None, start: float | None = None,
               wall_start: float | None = None) -> dict[str, Any]:
        s = active.start if start is None else start
        ws = active.wall_start if wall_start is None else wall_start
        return {"event": kind, "id": active.event_id, "monitor": self.monitor,
                "query": self.query, "start": round(s, 6),
                "end": None if end is None else round(end, 6),
                "wall_start": round(ws, 3),
                "wall_end": None if wall_end is None else round(wall_end, 3),
                "score": active.score, "refined": refined, "evidence": active.evidence,
                "clip": clip, "emitted_wall": round(time.time(), 3)}

    def _emit(self, event: dict[str, Any]) -> None:
        self.on_event(event)


def _native_step(frames: Sequence[StreamFrame]) -> float:
    if len(frames) < 2:
        return 1 / 25
    diffs = np.diff([f.time for f in frames])
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else 1 / 25


def _wall_at(frames: Sequence[StreamFrame], t: float) -> float | None:
    if not frames:
        return None
    near = min(frames, key=lambda f: abs(f.time - t))
    return near.wall + (t - near.time)


def cut_clip(frames: Sequence[StreamFrame], path: Path, frame_s: float) -> Path:
    """Encode ``frames`` (buffered, in time order) as an H.264 MP4 (MPEG-4 Part 2 when this
    FFmpeg has no libx264), each frame at its own stream time from 0."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    from fractions import Fraction

    first = frames[0].time
    h, w = frames[0].frame.image.shape[:2]
    with av.open(str(path), mode="w") as out:
        # a video encoder's name (add_stream's overloads type only literal names)
        stream = cast(av.VideoStream, out.add_stream(
            codec, rate=Fraction(1 / frame_s).limit_denominator(1001)))
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        last_pts = -1
        for f in frames:
            image: np.ndarray = f.frame.image[: stream.height, : stream.width]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            pts = max(last_pts + 1, int(round((f.time - first) * 1000)))
            vf.pts, vf.time_base, last_pts = pts, Fraction(1, 1000), pts
            out.mux(stream.encode(vf))
        out.mux(stream.encode())
    return path


__all__ = ["CallBudget", "FrameGate", "Frame", "WatchConfig", "WatchStats", "Watcher",
           "cut_clip"]
