"""Shot boundaries (issue 24): TransNetV2 (bundled weights) over every frame of a video with a
hard cut and a cross-dissolve at known frames; exports through vidground's exporters."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from perception_media import PerceptionVideo, shared_video
from typer.testing import CliRunner

from vidground.perception.cli import perception_app
from vidground.perception.shots import detect_shots, shots_between, transitions_from

# the suite shares two cores with other work: one thread per model is faster there than
# two threads spinning against each other (and keeps the timings steady)
os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")


@pytest.fixture(scope="module")
def video() -> PerceptionVideo:
    return shared_video()


def test_cut_and_dissolve(video: PerceptionVideo) -> None:
    found = detect_shots(video.path)
    assert found.frames == video.frames
    hard, gradual = video.transitions
    assert [t.kind for t in found.transitions] == ["cut", "gradual"], found.transitions
    cut, dissolve = found.transitions
    # the hard cut: exactly the new shot's first frame
    assert cut.start == cut.end
    assert abs(cut.start * video.fps - hard.first) < 0.5
    # the dissolve: its frames, within one frame at either end
    assert abs(dissolve.start * video.fps - gradual.first) <= 1.0 + 1e-6
    assert abs(dissolve.end * video.fps - (gradual.last + 1)) <= 1.0 + 1e-6
    assert [s.label for s in found.shots] == ["shot 1", "shot 2", "shot 3"]
    assert found.shots[0].start == 0.0 and found.shots[-1].end == pytest.approx(
        video.duration)
    assert found.shots[1].start == cut.start and found.shots[1].end == dissolve.start
    assert found.shots[2].start == dissolve.end


def test_transitions_from_scores() -> None:
    times = [i / 25 for i in range(12)]
    single = np.zeros(12, np.float32)
    many = np.zeros(12, np.float32)
    single[2] = 0.9                  # hard cut: frame 2 is the old shot's last frame
    single[7], many[5:10] = 0.8, 0.7  # gradual over frames 5..9
    found = transitions_from(times, single, many, end=12 / 25)
    assert [(t.kind, round(t.start * 25), round(t.end * 25)) for t in found] == [
        ("cut", 3, 3), ("gradual", 5, 10)]
    shots = shots_between(found, 12 / 25)
    assert [(round(s.start * 25), round(s.end * 25)) for s in shots] == [(0, 3), (3, 5),
                                                                         (10, 12)]
    assert transitions_from(times, np.zeros(12), np.ones(12), end=0.48) == []
    # a slow dissolve: single-frame peak 0.45 inside 7 frames of high all-frames score
    slow_single, slow_many = np.zeros(12, np.float32), np.zeros(12, np.float32)
    slow_many[3:10], slow_single[6] = 0.6, 0.45
    (slow,) = transitions_from(times, slow_single, slow_many, end=0.48)
    assert (slow.kind, round(slow.start * 25), round(slow.end * 25)) == ("gradual", 3, 10)
    # text popping up: all-frames score high, single-frame peak low: no transition
    slow_single[6] = 0.3
    assert transitions_from(times, slow_single, slow_many, end=0.48) == []
    slow_single[6], slow_many[3:10], slow_many[3:7] = 0.45, 0.0, 0.6  # too short a run
    assert transitions_from(times, slow_single, slow_many, end=0.48) == []
    assert [(s.start, s.end) for s in shots_between([], 4.0)] == [(0.0, 4.0)]


def test_command_exports(video: PerceptionVideo, tmp_path) -> None:
    edl, csv_file = tmp_path / "cuts.edl", tmp_path / "shots.csv"
    result = CliRunner().invoke(perception_app, [
        "shots", str(video.path), "--json", "--export", f"edl:{edl}", "--export",
        f"csv:{csv_file}"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert len(body["segments"]) == 3 and body["detector"] == "shots"
    assert [t["kind"] for t in body["transitions"]] == ["cut", "gradual"]
    assert body["segments"][1]["start"] == pytest.approx(video.transitions[0].first / video.fps)
    lines = edl.read_text().splitlines()
    assert lines[0].startswith("TITLE:")
    assert sum(1 for ln in lines if ln[:3].isdigit()) == 3  # one event per shot
    assert "shot 2" in csv_file.read_text()
    bad = CliRunner().invoke(perception_app, ["shots", str(video.path), "--export", "srt"])
    assert bad.exit_code == 2 and "srt" in bad.output


def test_loading_transnetv2_leaves_the_process_as_it_was() -> None:
    """TransNetV2's constructor turns on deterministic algorithms and seeds every generator:
    loading it must not change them for the rest of the process."""
    import random

    import torch

    from vidground.perception import models

    models.shot_model.cache_clear()
    before = (torch.are_deterministic_algorithms_enabled(), random.getstate(),
              np.random.get_state()[1].tolist(), torch.random.get_rng_state().tolist())
    models.shot_model()
    after = (torch.are_deterministic_algorithms_enabled(), random.getstate(),
             np.random.get_state()[1].tolist(), torch.random.get_rng_state().tolist())
    assert after == before
