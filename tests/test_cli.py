"""The ``vidground`` command, run as a real subprocess: results on stdout, errors as one
readable line on stderr with exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_audio_only, make_empty, make_text_file, make_truncated, make_video

README = Path(__file__).resolve().parents[1] / "README.md"


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


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
    # the message names the flag the user typed, not the API's option key
    assert bad_format.returncode == 2 and "--format must be one of" in bad_format.stderr
    assert "output_format" not in bad_format.stderr


def test_unreachable_backend_is_explained(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=2.0)
    out = run_cli("locate", str(video.path), "when?", "--backend", "openai",
                  "--openai-base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2
    assert "127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr


# -- issue 11, item 7: what the command promises and how it talks ----------------------------------


def test_version_and_short_help() -> None:
    from vidground import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"vidground {__version__}"
    for args in (("-h",), ("locate", "-h"), ("cache", "clear", "-h")):
        out = run_cli(*args)
        assert out.returncode == 0, (args, out.stderr)
        assert "Usage: vidground" in out.stdout


def _commands() -> list[tuple[str, ...]]:
    """Every command and sub-command path of ``vidground``."""
    import typer

    from vidground.cli import app

    paths: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append((*path, name))
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def _help(*path: str) -> str:
    out = run_cli(*path, "--help", env={"COLUMNS": "200"})
    assert out.returncode == 0, (path, out.stderr)
    return out.stdout


def _readme_promises() -> dict[tuple[str, ...], set[str]]:
    """Flags the README promises, by the command they belong to: every inline-code or
    code-block ``vidground <command> ...`` line, the flags listed for ``locate`` in "Using it",
    and the settings listed as flags under "Settings"."""
    text = README.read_text()
    commands = {path for path in _commands()}
    promised: dict[tuple[str, ...], set[str]] = {}

    def add(path: tuple[str, ...], flags: list[str]) -> None:
        promised.setdefault(path, set()).update(flags)

    snippets = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^\$?\s*(vidground .+)$", text,
                                                             re.M)
    for snippet in snippets:
        words = snippet.split()
        if len(words) < 2 or words[0] != "vidground":
            continue
        path = tuple(words[1:3]) if tuple(words[1:3]) in commands else tuple(words[1:2])
        if path in commands:
            add(path, re.findall(r"--[a-z][a-z0-9-]+", snippet))
    using = text.split("## Using it", 1)[1].split("From Python", 1)[0]
    locate_part = using.split("`vidground info", 1)[0]
    add(("locate",), re.findall(r"--[a-z][a-z0-9-]+", locate_part))
    settings = text.split("### Settings", 1)[1].split("\n\n", 2)[1].split(";", 1)[0]
    names = re.findall(r"`([A-Z][A-Z_]+)`", settings)
    assert len(names) >= 10, names
    add(("settings",), ["--" + n.lower().replace("_", "-") for n in names])
    return promised


def test_every_flag_the_readme_promises_is_in_the_help() -> None:
    promised = _readme_promises()
    assert {"--openai-model", "--openai-api-key", "--verify", "--no-verify", "--split-phases",
            "--no-split-phases"} <= promised[("locate",)]
    missing = []
    for path, flags in promised.items():
        if path == ("settings",):  # each setting is a flag of locate or serve
            shown = _help("locate") + _help("serve")
        else:  # a group (``eval DATASET ...``) offers its sub-commands' flags
            subs = [c for c in _commands() if len(c) == len(path) + 1 and c[:-1] == path]
            shown = _help(*path) + "".join(_help(*c) for c in subs)
        missing += [f"vidground {' '.join(path)} {flag}" for flag in sorted(flags)
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", shown)]
    assert not missing, missing


def test_help_has_no_type_noise_on_flags() -> None:
    for path in [(), *_commands()]:
        assert "<bool>" not in _help(*path), path
    assert "the end is exclusive" in re.sub(r"[\s│]+", " ", _help("locate"))


def test_json_errors_are_json_on_stdout(tmp_path: Path) -> None:
    missing = run_cli("locate", str(tmp_path / "nope.mp4"), "when?", "--json")
    assert missing.returncode == 2
    body = json.loads(missing.stdout)
    assert body["error"]["code"] == "video_not_found"
    assert "nope.mp4" in body["error"]["message"]
    usage = run_cli("locate", str(tmp_path / "nope.mp4"), "when?", "--json",
                    "--max-frames", "many")
    assert usage.returncode == 2
    assert "--max-frames" in json.loads(usage.stdout)["error"]["message"]
    info = run_cli("info", str(tmp_path / "nope.mp4"), "--json")
    assert info.returncode == 2 and json.loads(info.stdout)["error"]["code"] == "video_not_found"


def test_messages_keep_brackets_and_long_commands_whole(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=2.0)
    # Rich would read "[modelscope]" as markup and print "pip install 'vidground'"
    hint = run_cli("locate", str(video.path), "when?", "--backend", "transformers",
                   "--model-source", "modelscope", "--model", "Qwen/Qwen3-VL-2B-Instruct")
    assert hint.returncode == 2
    assert "pip install 'vidground[modelscope]'" in hint.stderr
    # output to a pipe is not wrapped at 80 columns: the message stays one line
    far = run_cli("locate", str(video.path), "when?", "--backend", "openai",
                  "--openai-base-url", "http://127.0.0.1:9/v1")
    lines = far.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) > 100, lines
    assert "`vllm serve Qwen/Qwen3-VL-4B-Instruct`" in lines[0]


def test_answer_line_states_the_final_times(tmp_path: Path,
                                            fake_model: FakeOpenAIServer) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=4.0, fps=25, intervals=[(1.08, 2.12)])
    out = run_cli("locate", str(video.path), "When is the red square visible?", "--fps", "1",
                  "--backend", "openai", "--openai-base-url", fake_model.base_url)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    start, end = first.split(" - ")
    answer = next(line for line in out.stdout.splitlines() if line.startswith("answer:"))
    assert f"{start} to {end}" in answer, (first, answer)
    json_out = run_cli("locate", str(video.path), "When is the red square visible?", "--fps",
                       "1", "--json", "--format", "seconds", "--backend", "openai",
                       "--openai-base-url", fake_model.base_url)
    body = json.loads(json_out.stdout)
    a, b = body["timestamp_range"]
    assert f"from {a} to {b} seconds" in body["response"]
    assert body["raw_answer"] and body["raw_answer"] != body["response"]


def test_doctor_labels_checks_it_did_not_run_skip() -> None:
    out = run_cli("doctor", "--backend", "openai", "--openai-base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("FAIL  server reachable")
    assert any(line.startswith("SKIP  model listed") for line in lines)
    assert not any(line.startswith("FAIL  model listed") for line in lines)


def test_bad_setting_values_name_the_flag_or_variable() -> None:
    flag = run_cli("serve", "--upload-retention-hours", "-1")
    assert flag.returncode == 2 and "Traceback" not in flag.stderr
    assert flag.stderr.startswith("error: --upload-retention-hours:"), flag.stderr
    env = run_cli("doctor", env={"VIDGROUND_PORT": "abc"})
    assert env.returncode == 2 and env.stderr.startswith("error: VIDGROUND_PORT:"), env.stderr


def test_every_model_command_takes_the_same_model_flags() -> None:
    flags = ["--backend", "--model", "--model-source", "--device", "--openai-base-url",
             "--openai-model", "--openai-api-key"]
    for command in ("locate", "serve", "worker", "doctor"):
        shown = _help(command)
        missing = [f for f in flags if not re.search(rf"(?<![\w-]){f}(?![\w-])", shown)]
        assert not missing, (command, missing)


def test_without_torch_the_local_backend_offers_the_remote_one(tmp_path: Path) -> None:
    """A machine without PyTorch (a thin client): the message says how to get it and how to do
    without it (issue 20 item 7)."""
    video = make_video(tmp_path / "clip.mp4", duration=1.0)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from vidground.cli import main\n"
            f"sys.argv = ['vidground', 'locate', {str(video.path)!r}, 'when?', '--json',"
            " '--backend', 'transformers']\n"
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    message = json.loads(done.stdout)["error"]["message"]
    assert "pip install 'vidground[local]'" in message
    assert "--backend openai --openai-base-url" in message


def test_help_at_80_columns_shows_every_option_name_whole() -> None:
    """Rich's option table cut long names at 80 columns ("--max-frames-per-…"); every option of
    every command must be readable as typed (issue 20 item 7)."""
    import typer
    from typer.testing import CliRunner

    from vidground.cli import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0

    def walk(command: Any, path: list[str]) -> None:
        nonlocal checked
        shown = runner.invoke(app, [*path, "--help"], terminal_width=80,
                              env={"COLUMNS": "80"})
        assert shown.exit_code == 0, (path, shown.output)
        for param in command.params:
            for name in [*param.opts, *getattr(param, "secondary_opts", [])]:
                if name.startswith("--"):
                    assert name in shown.output, (path, name)
                    checked += 1
        assert "…" not in shown.output, (path, shown.output)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    assert checked > 60  # every command's flags were looked at


def test_cache_clear_says_what_it_will_delete(tmp_path: Path) -> None:
    """``cache clear`` names what it deletes before deleting it (issue 22 item 7)."""
    from vidground.cache import open_cache
    from vidground.config import Settings

    store = open_cache(Settings(cache_dir=tmp_path / "c"))
    assert store is not None
    cleared = run_cli("cache", "clear", "--cache-dir", str(tmp_path / "c"))
    assert cleared.returncode == 0, cleared.stderr
    assert "will delete" in cleared.stdout and str(tmp_path / "c") in cleared.stdout
    assert "deleted 0 entries" in cleared.stdout
