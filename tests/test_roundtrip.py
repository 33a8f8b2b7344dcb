"""Round trips keep their context (issue 20 item 5): ``vidground export`` of a saved
``locate --json`` response writes the very files ``locate --export`` writes, naming the
question and the video (by its absolute path, or relinked), on a real video with the fake
model, through the real command."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import srt
from fake_openai_server import FakeOpenAIServer
from media import make_video

QUERY = "When is the red square visible?"
TARGETS = {"srt": "x.srt", "vtt": "x.vtt", "chapters": "x.chapters.vtt", "csv": "t.csv",
           "jsonl": "t.jsonl", "edl": "cuts.edl", "otio": "t.otio", "youtube": "y.txt"}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", *args], capture_output=True,
                          text=True, timeout=180, cwd=cwd, env=dict(os.environ))


def exports(flag: str, folder: str) -> list[str]:
    return [arg for fmt, name in TARGETS.items() for arg in (flag, f"{fmt}:{folder}/{name}")]


def test_export_of_a_saved_response_writes_what_locate_writes(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    work = tmp_path / "work"
    work.mkdir()
    make_video(work / "m.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    model = ("--backend", "openai", "--openai-base-url", fake_model.base_url, "--fps", "5")
    # the video as typed on the command line: relative to the current folder
    located = run_cli("locate", "m.mp4", QUERY, "--json", *model, *exports("--export", "a"),
                      cwd=work)
    assert located.returncode == 0, located.stderr
    (work / "r.json").write_text(located.stdout, encoding="utf-8")
    # exported elsewhere, from another folder: the same bytes
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exported = run_cli("export", str(work / "r.json"), *exports("--to", "b"), cwd=elsewhere)
    assert exported.returncode == 0, exported.stderr
    for name in TARGETS.values():
        first, again = (work / "a" / name).read_bytes(), (elsewhere / "b" / name).read_bytes()
        assert first == again, f"{name} differs:\n{first.decode()}\n---\n{again.decode()}"

    video_url = (work / "m.mp4").as_uri()
    [cue] = list(srt.parse((work / "a" / "x.srt").read_text(encoding="utf-8")))
    assert cue.content == QUERY
    edl = (work / "a" / "cuts.edl").read_text(encoding="utf-8")
    assert edl.startswith(f"TITLE: {QUERY}\n")
    assert "001  m        V     C        00:00:01:00 00:00:02:00" in edl
    assert f"* FROM CLIP: {video_url}\n" in edl
    [row] = list(csv.DictReader(io.StringIO((work / "a" / "t.csv").read_text(encoding="utf-8"))))
    assert (row["query"], row["video"]) == (QUERY, str(work / "m.mp4"))
    [clip] = otio.adapters.read_from_file(str(work / "a" / "t.otio")).find_clips()
    assert clip.media_reference.target_url == video_url

    relinked = run_cli("export", "r.json", "--to", "edl:-", "--to", "otio:c.otio",
                       "--relink", "/Volumes/footage", cwd=work)
    assert relinked.returncode == 0, relinked.stderr
    assert "* FROM CLIP: file:///Volumes/footage/m.mp4\n" in relinked.stdout
    [clip] = otio.adapters.read_from_file(str(work / "c.otio")).find_clips()
    assert clip.media_reference.target_url == "file:///Volumes/footage/m.mp4"
    # locate takes --relink too: the same lines as the relinked export of its saved response
    located_relinked = run_cli("locate", "m.mp4", QUERY, *model, "--export", "edl:-",
                               "--relink", "/Volumes/footage", "--quiet", cwd=work)
    assert located_relinked.returncode == 0, located_relinked.stderr
    assert "* FROM CLIP: file:///Volumes/footage/m.mp4\n" in located_relinked.stdout


def test_locate_and_describe_exports_of_one_video_do_not_overwrite(
        tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    """Default export names: ``m.srt`` from locate, ``m.describe.srt`` from describe (issue 20
    item 7: the second run used to overwrite the first's file)."""
    fake_model.configure(delay_s=0.0, answer=None)
    make_video(tmp_path / "m.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    model = ("--backend", "openai", "--openai-base-url", fake_model.base_url)
    located = run_cli("locate", "m.mp4", QUERY, *model, "--fps", "5", "--export", "srt",
                      "--quiet", cwd=tmp_path)
    assert located.returncode == 0, located.stderr
    described = run_cli("describe", "m.mp4", *model, "--export", "srt", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert (tmp_path / "m.srt").is_file() and (tmp_path / "m.describe.srt").is_file()
    [cue] = list(srt.parse((tmp_path / "m.srt").read_text(encoding="utf-8")))
    assert cue.content == QUERY  # locate's file is still locate's
