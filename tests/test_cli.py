"""The ``vidground`` command, run as a real subprocess: results on stdout, errors as one
readable line on stderr with exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_audio_only, make_empty, make_text_file, make_truncated, make_video


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_locate_prints_the_span_answer_and_reasoning(tmp_path: Path,
                                                     fake_model: FakeOpenAIServer) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    out = run_cli("locate", str(video.path), "When is the red square visible?", "--backend",
                  "openai", "--openai-base-url", fake_model.base_url)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first == "00:00:01.000 - 00:00:02.000"
    assert "answer:" in out.stdout
    assert "Traceback" not in out.stderr


def test_locate_json_is_the_api_response(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    out = run_cli("locate", str(video.path), "When is the red square visible?", "--json",
                  "--fps", "1", "--max-frames", "16", "--format", "seconds", "--backend",
                  "openai", "--openai-base-url", fake_model.base_url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["timestamp_range"] == ["1.000", "2.000"]
    assert body["segments"][0]["start"] == pytest.approx(1.0, abs=1e-6)
    assert body["video"]["duration"] == pytest.approx(4.0, abs=0.05)
    assert {"response", "reasoning", "model", "timings"} <= set(body)


def test_info_json_prints_the_probed_video(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mkv", duration=2.0, fps=25, size=(160, 120))
    out = run_cli("info", str(video.path), "--json")
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert (facts["width"], facts["height"]) == (160, 120)
    assert facts["fps"] == pytest.approx(25.0)
    assert facts["codec"] == "h264"
    plain = run_cli("info", str(video.path))
    assert "160x120" in plain.stdout


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "audio", "truncated"])
def test_bad_videos_give_one_readable_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.mp4"
    if kind == "text":
        make_text_file(path)
    elif kind == "empty":
        make_empty(path)
    elif kind == "audio":
        path = make_audio_only(tmp_path / "sound.m4a")
    elif kind == "truncated":
        good = make_video(tmp_path / "good.mp4", duration=3.0)
        make_truncated(good.path, path, keep=0.02)
    out = run_cli("locate", str(path), "When does it happen?", "--backend", "openai",
                  "--openai-base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("error:")
    assert "Traceback" not in out.stderr
    assert str(path.name) in out.stderr or "video" in out.stderr.lower()


def test_empty_query_and_bad_options_are_refused(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=2.0)
    empty = run_cli("locate", str(video.path), "  ")
    assert empty.returncode == 2 and "query is empty" in empty.stderr
    bad_fps = run_cli("locate", str(video.path), "when?", "--fps", "fast")
    assert bad_fps.returncode == 2 and "--fps" in bad_fps.stderr
    bad_format = run_cli("locate", str(video.path), "when?", "--format", "mm:ss")
    assert bad_format.returncode == 2 and "output_format" in bad_format.stderr


def test_unreachable_backend_is_explained(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=2.0)
    out = run_cli("locate", str(video.path), "when?", "--backend", "openai",
                  "--openai-base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2
    assert "127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr
