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


# -- dissolves to the frame (issue 24 benchmark goal: gradual transitions within one frame) --

def _textures(seed: int, frames: int, size: tuple[int, int] = (27, 48)) -> np.ndarray:
    """``frames`` pictures of a scene of a few random colour waves drifting across it (motion
    the fit must see through), values 0..255."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
    out = np.zeros((frames, size[0], size[1], 3))
    for _ in range(4):
        fx, fy, phase = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4), rng.uniform(0, 6)
        colour = rng.uniform(-40, 40, size=3)
        for k in range(frames):
            wave = np.sin(xs * fx + ys * fy + phase + 0.05 * k)
            out[k] += wave[..., None] * colour
    return out + rng.uniform(60, 190, size=3)


def test_a_blend_ramp_gives_a_dissolves_ends_to_the_frame() -> None:
    from vidground.perception.dissolves import refine_span

    n = 26
    old, new = _textures(1, n), _textures(2, n)
    for first, after in ((8, 20), (7, 11), (6, 18)):
        w = np.clip((np.arange(n) - first + 1) / (after - first + 1), 0, 1)
        frames = (1 - w)[:, None, None, None] * old + w[:, None, None, None] * new
        # TransNetV2's span is off by up to three frames either way: the ramp puts it right
        for guess in ((first + 3, after - 1), (first - 2, after + 2)):
            fitted = refine_span(frames, *guess)
            assert fitted is not None and (fitted.first, fitted.after) == (first, after)
    # a hard cut: no blended frame
    cut = np.concatenate([old[:13], new[13:]])
    fitted = refine_span(cut, 11, 15)
    assert fitted is not None and fitted.first == fitted.after == 13


def test_what_is_not_a_dissolve_keeps_the_networks_span() -> None:
    from vidground.perception.dissolves import refine_span

    n = 26
    old, new = _textures(1, n), _textures(2, n)
    # a fade to black and up again is no blend of the two shots: not refined
    w = np.concatenate([np.linspace(1, 0, 13), np.linspace(0, 1, 13)])
    fade = np.concatenate([old[:13], new[13:]]) * w[:, None, None, None]
    assert refine_span(fade, 6, 20) is None
    # two shots that look alike: no direction to measure the blend on
    assert refine_span(np.stack([old[0]] * n), 8, 20) is None


def test_a_weak_dissolve_is_placed_to_the_frame(tmp_path) -> None:
    """The benchmark's video that TransNetV2's all-frames score placed 3 frames late (its
    first blended frames still look like the old shot: the score passes 0.5 from the 4th):
    the blend ramp of its pixels puts both ends within one frame, and the hard cut stays."""
    from perception_media import TextEvent, Transition, make_perception_video

    texts = (TextEvent("欢迎回来", 140, 158, px=34, xy=(39, 18)),
             TextEvent("Welcome back", 40, 59, px=16, xy=(104, 80)),
             TextEvent("PAYMENT FAILED", 172, 185, px=34, xy=(17, 150)),
             TextEvent("支付失败", 62, 81, px=16, xy=(78, 215)))
    made = make_perception_video(tmp_path / "weak.mp4", frames=250, seed=31, texts=texts,
                                 transitions=(Transition(96, 96), Transition(178, 189)),
                                 speech=())
    found = detect_shots(made.path)
    assert [(t.kind, round(t.start * 25, 3)) for t in found.transitions][0] == ("cut", 96.0)
    (dissolve,) = [t for t in found.transitions if t.kind == "gradual"]
    assert abs(dissolve.start * made.fps - 178) <= 1.0 + 1e-6, dissolve
    assert abs(dissolve.end * made.fps - 190) <= 1.0 + 1e-6, dissolve
