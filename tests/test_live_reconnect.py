"""A reconnect of an HTTP (HLS) source reaches back over the outage by whole segments, so it can
deliver frames from long before the last one seen: they are repeats, not a restarted clock, and
must not come out again as new stream time (before, frames more than ``RESTART_S`` back were
taken for a restart and replayed, so an event already announced was announced again). An RTSP
reconnect, whose clock starts again, is still rebased. The source's connection and decoding are
stood in for here (the timestamps are the point); the real streams are in test_live_watch.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from vidground.frame import Frame
from vidground.live.sources import LiveSource, SourceSpec, StreamFrame


class Scripted(LiveSource):
    """Each connection delivers the next list of pts (seconds), then drops."""

    def __init__(self, spec: SourceSpec, connections: list[list[float]]) -> None:
        super().__init__(spec, backoff_s=0.0, backoff_max_s=0.0, max_reconnects=0)
        self.connections = list(connections)
        self.wall = 1000.0  # the wall clock runs on, one frame interval per frame

    def _open(self, stop: threading.Event) -> Any:
        if not self.connections:
            raise OSError("gone")
        return self.connections.pop(0)

    def _decode(self, container: Any, stop: threading.Event) -> Iterator[StreamFrame]:
        image = np.zeros((2, 2, 3), np.uint8)
        for pts in container:
            self.wall += 0.5
            t = self._stream_time(pts, self.wall)
            if t is not None:
                yield StreamFrame(Frame(time=t, image=image), self.wall)


class _Closing(list):  # type: ignore[type-arg]
    def close(self) -> None:
        return None


def times(spec: SourceSpec, connections: list[list[float]]) -> list[float]:
    source = Scripted(spec, [_Closing(c) for c in connections])
    return [round(f.time, 3) for f in source.frames(threading.Event())]


def frames(lo: float, hi: float) -> list[float]:
    return [round(lo + i * 0.5, 3) for i in range(int(round((hi - lo) / 0.5)))]


HLS = SourceSpec(url="http://127.0.0.1/live.m3u8", kind="network",
                 options={"reconnect": "1"})
RTSP = SourceSpec(url="rtsp://127.0.0.1/live", kind="network", options={})


def test_an_hls_reconnect_reaching_far_back_delivers_no_frame_twice() -> None:
    # seen up to 30 s; the reconnect reaches back to 2 s (28 s: long segments, a long outage)
    got = times(HLS, [frames(0.0, 30.0), frames(2.0, 40.0)])
    assert got == frames(0.0, 40.0)  # every frame once, on the stream's own clock


def test_an_rtsp_reconnect_with_a_new_clock_is_rebased() -> None:
    got = times(RTSP, [frames(0.0, 30.0), frames(0.0, 5.0)])
    assert len(got) == len(frames(0.0, 30.0)) + len(frames(0.0, 5.0))
    assert got == sorted(got) and got[60] > 29.5  # continues after the first session
