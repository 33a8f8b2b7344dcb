"""Carry a live source's clock over a restart of the process that watches it.

A server that runs a monitor saves :func:`source_clock` with every beat; the process that
takes the monitor over (after a crash, on another machine) opens a :class:`ResumedSource` with
it: stream time continues from where the last one was (the stream's own timestamps, which an
HLS or RTSP server keeps running), frames the last process already saw are dropped as
repeats, and an HLS source opens far enough back in the playlist to cover the outage (as a
reconnect does), so an event that began while nobody watched is still seen.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .sources import LiveSource


def source_clock(source: LiveSource) -> dict[str, Any] | None:
    """The clock of ``source`` as JSON (None before its first frame)."""
    base = getattr(source, "_base", None)
    if base is None:
        return None
    return {"base": float(base), "last": float(getattr(source, "_last", -1.0)),
            "last_wall": float(getattr(source, "_last_wall", 0.0))}


class ResumedSource(LiveSource):
    """A :class:`LiveSource` that carries on the clock ``clock`` (from :func:`source_clock`
    of the source it replaces); with ``clock=None`` it is a plain source."""

    def __init__(self, *args: Any, clock: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resumed = False
        if clock:
            self._base = float(clock["base"])
            self._last = float(clock["last"])
            self._last_wall = float(clock["last_wall"])
            self._resumed = True

    def _open(self, stop: threading.Event) -> Any:
        if self._resumed and self.stats.connects == 0 and "reconnect" in self.spec.options:
            # the first open of a resumed HLS source reaches back over the outage, like a
            # reconnect (repeats are dropped by the clock)
            import av

            options = dict(self.spec.options)
            outage = max(0.0, time.time() - self._last_wall) if self._last_wall else 0.0
            options["live_start_index"] = str(-min(30, int(outage) + 4))
            return av.open(self.spec.url, mode="r", format=self.spec.format, options=options,
                           timeout=(10.0, 10.0))
        return super()._open(stop)
