"""``vidground watch`` end to end (issue 25): a generated clip streamed live as HLS by
``ffmpeg -re`` over a local http.server, the fake model server that looks at the frames, a
webhook receiver checking signatures. "started" must come within the window plus a few seconds
of the event appearing; "ended" must put both boundaries on the true frames."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest
from typer.testing import CliRunner

from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live_media import HlsStream, Mosquitto, WebhookReceiver
from tests.support.media import make_video
from vidground.backends.openai_compat import OpenAICompatBackend
from vidground.live.alerts import SIGNATURE_HEADER, verify_signature
from vidground.live.cli import run_watch, watch_app
from vidground.live.sources import AllowList, LiveSource, resolve_source
from vidground.live.watcher import Watcher

FPS = 24
QUERY = "When is the red square visible?"


def truth(duration: float, start: float, end: float) -> tuple[float, float]:
    """First frame showing the square and the first frame after the last one, as make_video
    draws them (its clock accumulates 1/fps)."""
    t, shown = 0.0, []
    for i in range(int(round(duration * FPS))):
        if start <= t < end:
            shown.append(i)
        t += 1 / FPS
    return shown[0] / FPS, (shown[-1] + 1) / FPS


def clip(tmp_path: Path, duration: float, event: tuple[float, float]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_video(tmp_path / "clip.ts", duration=duration, fps=FPS, gop=12,
                      intervals=(event,), paint_index=False, size=(160, 120)).path


@pytest.fixture()
def model() -> Any:
    with FakeOpenAIServer() as srv:
        yield srv


def test_watch_cli_started_ended_webhook_store(tmp_path: Path, model: FakeOpenAIServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDGROUND_WEBHOOK_SECRET", "s3cret")
    duration, event = 9.0, (3.0, 5.5)
    first, after = truth(duration, *event)
    with WebhookReceiver() as hook, Mosquitto(tmp_path / "broker") as broker, \
            HlsStream(clip(tmp_path, duration, event), tmp_path / "hls") as hls:
        subscriber, published = broker.subscribe("cams/door")
        result = CliRunner().invoke(watch_app, [
            hls.url, QUERY, "--json", "--webhook", hook.url, "--allow", "127.0.0.1",
            "--mqtt", f"mqtt://127.0.0.1:{broker.port}/cams/door",
            "--from-start", "--clips", str(tmp_path / "clips"),
            "--store", str(tmp_path / "events.jsonl"), "--max-seconds", str(duration - 0.1),
            "--backend", "openai", "--openai-base-url", model.base_url,
            "--openai-model", model.model])
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 10
        while (len(hook.received) < 2 or len(published) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        subscriber.loop_stop()
        subscriber.disconnect()
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in lines] == ["started", "ended"]
    started, ended = lines
    for key in ("monitor", "query", "start", "end", "wall_start", "wall_end", "score",
                "evidence", "clip"):
        assert key in started and key in ended
    # "started" as soon as seen: within the window (4 s) plus a few seconds of the event
    # reaching the watcher (the wall time its first frame was decoded)
    assert started["emitted_wall"] - ended["wall_start"] < 4.0 + 3.0
    assert started["start"] <= ended["end"] and started["end"] is None
    # "ended": frame-exact, within one frame of the truth
    assert abs(ended["start"] - first) <= 1 / FPS + 1e-6, (ended, first)
    assert abs(ended["end"] - after) <= 1 / FPS + 1e-6, (ended, after)
    assert ended["refined"] is True
    # the clip holds exactly the event's frames
    with av.open(ended["clip"]) as container:
        count = sum(1 for _ in container.decode(video=0))
    assert abs(count - round((after - first) * FPS)) <= 1
    # the webhook got both, signed, each with its idempotency key
    assert len(hook.received) == 2
    for headers, body in hook.received:
        assert verify_signature(body, headers.get(SIGNATURE_HEADER), "s3cret")
        assert not verify_signature(body, headers.get(SIGNATURE_HEADER), "wrong")
        sent = json.loads(body)
        assert headers["Idempotency-Key"] == f"{sent['id']}:{sent['event']}"
    assert [json.loads(b)["event"] for _, b in hook.received] == ["started", "ended"]
    assert [json.loads(p) for p in published] == [json.loads(b) for _, b in hook.received]
    stored = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in stored] == ["started", "ended"]


def test_stream_cut_mid_event_reconnects(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """The server refuses everything while the event is on, until the watcher has lost the
    stream and been refused a reconnect (its "reconnecting" status: waited on, not slept
    for); then it comes back, and the event still ends on its true frames."""
    duration, event = 11.0, (3.0, 7.5)
    first, after = truth(duration, *event)
    events: list[dict[str, Any]] = []
    started, refused = threading.Event(), threading.Event()
    seen: list[str] = []

    def on_event(found: dict[str, Any]) -> None:
        events.append(found)
        started.set()

    backend = OpenAICompatBackend(model.base_url, model=model.model)
    with HlsStream(clip(tmp_path, duration, event), tmp_path / "hls") as hls:
        def status(kind: str, detail: dict[str, Any]) -> None:
            seen.append(kind)
            if kind == "reconnecting" and hls.down:  # a fresh open, refused by the outage
                refused.set()

        def cut() -> None:
            started.wait(30)
            hls.down = True
            refused.wait(30)
            hls.down = False

        spec = resolve_source(hls.url, AllowList.from_env(["127.0.0.1"]), from_start=True)
        watcher = Watcher(LiveSource(spec), backend, QUERY, on_event=on_event,
                          on_status=status)
        cutter = threading.Thread(target=cut, daemon=True)
        cutter.start()
        stats = watcher.run(max_stream_s=duration - 0.1)
        cutter.join(timeout=40)
    backend.close()
    assert started.is_set() and refused.is_set(), seen
    assert seen.index("dropped") < seen.index("reconnecting"), seen
    assert stats.drops >= 1 and stats.reconnects >= 1, stats
    assert [e["event"] for e in events] == ["started", "ended"], events
    assert abs(events[1]["start"] - first) <= 1 / FPS + 1e-6
    assert abs(events[1]["end"] - after) <= 1 / FPS + 1e-6


def test_slow_model_skips_windows_within_budget(tmp_path: Path,
                                                model: FakeOpenAIServer) -> None:
    """A model slower than the windows: windows are skipped and counted, calls stay within
    the per-minute budget, nothing queues."""
    model.configure(delay_s=1.6)
    duration = 7.0
    backend = OpenAICompatBackend(model.base_url, model=model.model)
    with HlsStream(clip(tmp_path, duration, (2.0, 4.0)), tmp_path / "hls") as hls:
        stats = run_watch(hls.url, QUERY, webhooks=[], mqtts=[], allow=["127.0.0.1"],
                          from_start=True, max_seconds=duration - 0.1, backend=backend,
                          every=0.5, gate=False, calls_per_minute=3, window=2.0)
    backend.close()
    assert stats.model_calls + stats.refine_calls <= 3
    assert stats.skipped_busy + stats.skipped_budget >= 3
    assert model.chat_count == stats.model_calls + stats.refine_calls
    assert model.max_in_flight == 1


def test_gate_saves_calls_on_a_still_stream(tmp_path: Path, model: FakeOpenAIServer) -> None:
    duration = 6.0
    backend = OpenAICompatBackend(model.base_url, model=model.model)
    results = {}
    for gate in (True, False):
        with HlsStream(clip(tmp_path / str(gate), duration, (99.0, 100.0)),
                       tmp_path / f"hls{gate}") as hls:
            results[gate] = run_watch(hls.url, QUERY, webhooks=[], mqtts=[],
                                      allow=["127.0.0.1"], from_start=True,
                                      max_seconds=duration - 0.1, backend=backend, gate=gate,
                                      every=0.5, max_interval=30.0)
    backend.close()
    assert results[True].model_calls <= 2 < results[False].model_calls
    assert results[True].gate_quiet >= 4
    assert results[True].events_started == results[False].events_started == 0


def test_growing_file(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """A file still being written (ffmpeg -re to MPEG-TS) is followed live; ended is exact."""
    import shutil
    import subprocess

    duration, event = 8.0, (3.0, 5.0)
    first, after = truth(duration, *event)
    growing = tmp_path / "growing.ts"
    writer = subprocess.Popen([shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-loglevel",
                               "error", "-re", "-i", str(clip(tmp_path, duration, event)),
                               "-c", "copy", "-flush_packets", "1", "-f", "mpegts",
                               str(growing)])
    events: list[dict[str, Any]] = []
    backend = OpenAICompatBackend(model.base_url, model=model.model)
    try:
        deadline = time.monotonic() + 10
        while (not growing.exists() or growing.stat().st_size < 4096) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        began = time.time()
        stats = run_watch(str(growing), QUERY, webhooks=[], mqtts=[], backend=backend,
                          on_event=events.append, quiet=True)
    finally:
        writer.wait(timeout=30)
        backend.close()
    assert [e["event"] for e in events] == ["started", "ended"], events
    assert events[0]["emitted_wall"] - began < event[0] + 4.0 + 3.0  # followed, not at EOF
    assert abs(events[1]["start"] - first) <= 1 / FPS + 1e-6
    assert abs(events[1]["end"] - after) <= 1 / FPS + 1e-6
    assert stats.stream_s >= duration - 0.2


def test_rtsp(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """RTSP (GStreamer's RTSP server on 127.0.0.1): started, and a frame-exact ended."""
    from tests.support.live_media import RtspStream

    duration, event = 8.0, (3.0, 5.0)
    first, after = truth(duration, *event)
    events: list[dict[str, Any]] = []
    backend = OpenAICompatBackend(model.base_url, model=model.model)
    with RtspStream(clip(tmp_path, duration, event)) as rtsp:
        stats = run_watch(rtsp.url, QUERY, webhooks=[], mqtts=[], allow=["127.0.0.1"],
                          max_seconds=duration - 0.3, backend=backend,
                          on_event=events.append, quiet=True)
    backend.close()
    assert [e["event"] for e in events] == ["started", "ended"], (events, stats)
    assert abs(events[1]["start"] - first) <= 1 / FPS + 1e-6
    assert abs(events[1]["end"] - after) <= 1 / FPS + 1e-6


def test_event_longer_than_the_buffer(tmp_path: Path, model: FakeOpenAIServer) -> None:
    """The start is re-asked right after "started", while its frames are still buffered: an
    event longer than --buffer still ends frame-exact at both ends."""
    duration, event = 11.0, (2.5, 8.0)
    first, after = truth(duration, *event)
    events: list[dict[str, Any]] = []
    backend = OpenAICompatBackend(model.base_url, model=model.model)
    with HlsStream(clip(tmp_path, duration, event), tmp_path / "hls") as hls:
        run_watch(hls.url, QUERY, webhooks=[], mqtts=[], allow=["127.0.0.1"],
                  from_start=True, max_seconds=duration - 0.1, backend=backend, buffer=3.0,
                  on_event=events.append, quiet=True)
    backend.close()
    assert [e["event"] for e in events] == ["started", "ended"], events
    assert events[1]["refined"] is True
    assert abs(events[1]["start"] - first) <= 1 / FPS + 1e-6
    assert abs(events[1]["end"] - after) <= 1 / FPS + 1e-6


def test_model_failures_are_counted_and_the_watch_goes_on(tmp_path: Path,
                                                          model: FakeOpenAIServer) -> None:
    duration, event = 9.0, (4.5, 6.5)
    first, after = truth(duration, *event)
    events: list[dict[str, Any]] = []
    statuses: list[str] = []
    model.configure(always_500=True)
    backend = OpenAICompatBackend(model.base_url, model=model.model, max_retries=0)
    with HlsStream(clip(tmp_path, duration, event), tmp_path / "hls") as hls:
        def recover() -> None:
            deadline = time.monotonic() + 30
            while "model_error" not in statuses and time.monotonic() < deadline:
                time.sleep(0.05)
            model.configure(always_500=False)

        fixer = threading.Thread(target=recover, daemon=True)
        fixer.start()
        from vidground.live.sources import AllowList, LiveSource, resolve_source
        from vidground.live.watcher import Watcher

        source = LiveSource(resolve_source(hls.url, AllowList(("127.0.0.1",)),
                                           from_start=True))
        watcher = Watcher(source, backend, QUERY, on_event=events.append,
                          on_status=lambda kind, _d: statuses.append(kind))
        stats = watcher.run(max_stream_s=duration - 0.1)
        fixer.join(timeout=10)
    backend.close()
    assert stats.model_errors >= 1 and "model_error" in statuses
    assert [e["event"] for e in events] == ["started", "ended"], (events, stats)
    assert abs(events[1]["start"] - first) <= 1 / FPS + 1e-6
    assert abs(events[1]["end"] - after) <= 1 / FPS + 1e-6
