"""Live sources (issue 25): confinement of what a source may name, the stream clock across
reconnects, the frame-difference gate and the call budget. No network beyond 127.0.0.1."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from vidground.live.alerts import WebhookSink
from vidground.live.sources import (
    AllowList,
    LiveSource,
    SourceError,
    SourceSpec,
    check_url,
    resolve_source,
)
from vidground.live.watcher import CallBudget, FrameGate

LOCAL = AllowList(("127.0.0.1",))


@pytest.mark.parametrize("source", [
    "file:///etc/passwd",
    "FILE:///etc/passwd",
    "concat:/etc/passwd|/etc/hosts",
    "data:video/mp4;base64,AAAA",
    "pipe:0",
    "ftp://example.com/a.ts",
    "gopher://127.0.0.1/",
])
def test_bad_schemes_refused(source: str) -> None:
    with pytest.raises(SourceError):
        resolve_source(source, LOCAL)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "rtsp://10.0.0.5/stream",
    "http://192.168.1.1/live.m3u8",
    "http://127.0.0.1:8080/live.m3u8",  # loopback without the allow-list entry
    "http://localhost:8080/live.m3u8",
    "http://[::1]:8080/live.m3u8",
    "http://0.0.0.0/x.m3u8",
    "http://[::ffff:127.0.0.1]/x.m3u8",
])
def test_internal_targets_refused_by_default(url: str) -> None:
    with pytest.raises(SourceError):
        resolve_source(url, AllowList(()))


def test_allow_list_lets_loopback_in_and_keeps_others_out() -> None:
    spec = resolve_source("http://127.0.0.1:9/live.m3u8", LOCAL)
    assert spec.kind == "network" and spec.options["protocol_whitelist"].startswith("http")
    # an allow-list names the only hosts accepted at all
    with pytest.raises(SourceError, match="allow-list"):
        check_url("http://93.184.216.34/live.m3u8", LOCAL)
    with pytest.raises(SourceError):
        resolve_source("http://169.254.169.254/", LOCAL)
    # CIDR entries and scheme-qualified entries
    assert check_url("rtsp://10.1.2.3/cam", AllowList(("10.0.0.0/8",)))
    with pytest.raises(SourceError):
        check_url("http://10.1.2.3/cam", AllowList(("rtsp://10.0.0.0/8",)))


def test_allow_list_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDGROUND_STREAM_ALLOW", " 127.0.0.1 , cam.local ")
    allow = AllowList.from_env(["10.0.0.0/8"])
    assert allow.entries == ("127.0.0.1", "cam.local", "10.0.0.0/8")
    assert resolve_source("rtsp://127.0.0.1:8554/x", allow).options["rtsp_transport"] == "tcp"


def test_local_paths(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not allowed here"):
        resolve_source("/dev/video0", LOCAL, allow_local=False)
    assert resolve_source("/dev/video0", LOCAL).format == "v4l2"
    with pytest.raises(SourceError, match="neither"):
        resolve_source(str(tmp_path / "missing.ts"), LOCAL)
    clip = tmp_path / "growing.ts"
    clip.write_bytes(b"\0" * 188)
    assert resolve_source(str(clip), LOCAL).kind == "file"


def test_webhook_target_confined() -> None:
    with pytest.raises(SourceError):
        WebhookSink("http://169.254.169.254/hook", allow=AllowList(()))
    with pytest.raises(SourceError):
        WebhookSink("file:///tmp/x", allow=LOCAL)


def test_stream_clock_is_continuous_across_restarts() -> None:
    src = LiveSource(SourceSpec(url="x", kind="network"))
    assert src._stream_time(100.0, 1000.0) == 0.0
    assert src._stream_time(100.5, 1000.5) == 0.5
    assert src._stream_time(100.5, 1000.6) is None  # a repeat after a reconnect is dropped
    assert src._stream_time(100.25, 1000.6) is None
    assert src._stream_time(120.0, 1020.0) == pytest.approx(20.0)
    # the source restarted its clock at 0 two seconds later: time goes on from 20 + the gap
    restarted = src._stream_time(0.0, 1022.0)
    assert restarted == pytest.approx(22.0)
    assert src._stream_time(0.04, 1022.04) == pytest.approx(22.04)


def test_source_gives_up_after_bounded_reconnects() -> None:
    statuses: list[str] = []
    spec = resolve_source("http://127.0.0.1:9/nothing.m3u8", LOCAL, timeout_s=1.0)
    src = LiveSource(spec, max_reconnects=2, backoff_s=0.05,
                     on_status=lambda kind, _d: statuses.append(kind))
    frames = list(src.frames(threading.Event()))
    assert frames == []
    assert statuses.count("reconnecting") == 2 and statuses[-1] == "gave_up"


def _picture(square: bool, noise: int = 0, seed: int = 0) -> np.ndarray:
    image = np.full((120, 160, 3), 48, dtype=np.uint8)
    if square:
        image[40:80, 60:100] = (255, 0, 0)
    if noise:
        grain = np.random.default_rng(seed).integers(-noise, noise + 1, image.shape)
        image = np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return image


def test_gate_fires_on_change_not_on_noise() -> None:
    gate = FrameGate(threshold=8.0)
    assert gate.update(_picture(False, 10, 0))  # the first picture always counts
    quiet = [gate.update(_picture(False, 10, seed)) for seed in range(1, 30)]
    assert not any(quiet)
    assert gate.update(_picture(True, 10, 99))
    assert not gate.update(_picture(True, 10, 100))
    assert gate.update(_picture(False, 10, 101))


def test_gate_learns_a_ticking_overlay() -> None:
    gate = FrameGate(threshold=8.0)
    fired = []
    for i in range(40):
        image = _picture(False)
        image[:12, :40] = 255 if i % 2 else 0  # a clock overlay changing every frame
        fired.append(gate.update(image))
    assert not any(fired[-20:])


def test_call_budget() -> None:
    budget = CallBudget(3)
    assert [budget.take(0.0), budget.take(1.0), budget.take(2.0), budget.take(3.0)] == [
        True, True, True, False]
    assert budget.take(60.5)  # the first call left the last minute
    assert not budget.take(60.6)


@pytest.mark.parametrize("source", ["file:///etc/passwd", "http://169.254.169.254/x.m3u8",
                                    "rtsp://203.0.113.9/cam"])
def test_watch_cli_refuses_hostile_sources(source: str, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Exit code 2 and a JSON error naming the source problem; nothing is opened."""
    import json

    from typer.testing import CliRunner

    from vidground.live.cli import watch_app

    monkeypatch.setenv("VIDGROUND_STREAM_ALLOW", "127.0.0.1")
    result = CliRunner().invoke(watch_app, [source, "a person enters", "--json",
                                            "--backend", "openai"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout.splitlines()[0])["error"]
    assert error["code"] == "invalid_source"


def test_watch_cli_checks_options() -> None:
    from typer.testing import CliRunner

    from vidground.live.cli import watch_app

    result = CliRunner().invoke(watch_app, ["http://127.0.0.1:9/x.m3u8", "q", "--window", "0",
                                            "--allow", "127.0.0.1"])
    assert result.exit_code == 2 and "--window" in result.output
    result = CliRunner().invoke(watch_app, ["http://127.0.0.1:9/x.m3u8", "  ", "--allow",
                                            "127.0.0.1"])
    assert result.exit_code == 2 and "empty" in result.output


def test_score_from_a_backend_that_can_tell() -> None:
    from vidground.frame import Frame
    from vidground.live.sources import StreamFrame
    from vidground.live.watcher import Watcher

    class Scoring:
        model_name = "scoring"
        asked: list[int] = []

        def yes_probability(self, frames: list, prompt: object) -> float:
            self.asked.append(len(frames))
            return 0.875

    class Silent(Scoring):
        def yes_probability(self, frames: list, prompt: object) -> None:
            return None

    frames = [StreamFrame(Frame(i / 24, _picture(True)), 1000 + i / 24) for i in range(48)]
    source = LiveSource(SourceSpec(url="x", kind="network"))
    scoring = Watcher(source, Scoring(), "When is the red square visible?")
    assert scoring._score(frames) == 0.875 and Scoring.asked == [16]
    assert scoring.stats.refine_calls == 1
    silent = Watcher(source, Silent(), "q")
    assert silent._score(frames) is None and silent.stats.refine_calls == 0
    assert silent._budget.take()  # the unused call was given back: the budget is whole
    assert len(silent._budget._times) == 1
