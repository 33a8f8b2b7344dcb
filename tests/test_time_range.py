"""``time_range``: look only inside part of the video (the library, the CLI's ``--from/--to``
and the API's ``options.time_range``), with the fake model that looks at the frames and a real
encoded clip in which the event happens twice."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import requests
from fake_openai_server import FakeOpenAIServer
from media import make_video, read_painted_index
from PIL import Image
from server_utils import ServerProcess, openai_env

from vidground.errors import OptionsError
from vidground.grounding import Grounder, plan_sampling
from vidground.options import LocateOptions
from vidground.video.probe import probe

FPS = 25
FRAME = 1 / FPS
QUERY = "When is the red square visible?"
#: the red square is visible twice; the range looks around the second time only
TWICE = ((1.0, 2.0), (5.24, 6.48))
RANGE = (4.0, 8.0)


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("range") / "twice.mp4"
    return make_video(path, duration=10.0, fps=FPS, intervals=TWICE).path


def _frame_times(fake: FakeOpenAIServer) -> list[float]:
    """The real times of every frame the fake model was shown, coarse pass and refinement
    (refinement labels its frames on a virtual clock, so the painted index is read back)."""
    times = []
    for record in fake.requests:
        for message in record.body["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else ():
                if part.get("type") == "image_url":
                    data = part["image_url"]["url"].split(",", 1)[1]
                    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
                    times.append(read_painted_index(np.asarray(image)) / FPS)
    return times


@pytest.mark.parametrize("rate", [2.0, "adaptive"])
def test_range_around_the_second_occurrence_returns_the_second(
        twice: Path, fake_grounder: Grounder, fake_model: FakeOpenAIServer,
        rate: float | str) -> None:
    # adaptive: at least 2 frames a second of the range (its 1 a second can miss 1.2 s)
    opts = LocateOptions(frame_sampling_rate=rate, min_frames=8)
    whole = fake_grounder.locate(twice, QUERY, opts)
    assert abs(whole.spans[0].start - TWICE[0][0]) <= FRAME + 1e-6  # the first, without range
    fake_model.reset_stats()
    g = fake_grounder.locate(twice, QUERY, replace(opts, time_range=RANGE))
    assert len(g.spans) == 1
    span = g.spans[0]  # whole-video seconds, refined to the frame
    assert abs(span.start - TWICE[1][0]) <= FRAME + 1e-6, span
    assert abs(span.end - TWICE[1][1]) <= FRAME + 1e-6, span
    assert g.timings["refine_calls"] >= 1
    assert all(RANGE[0] <= t < RANGE[1] for t in g.frame_times), g.frame_times
    shown = _frame_times(fake_model)
    assert shown and all(RANGE[0] <= t < RANGE[1] for t in shown), (min(shown), max(shown))
    assert g.to_response()["segments"][0]["start"] == pytest.approx(span.start)


def test_refinement_never_leaves_the_range(twice: Path, fake_grounder: Grounder,
                                           fake_model: FakeOpenAIServer) -> None:
    """The range cuts the second occurrence in two: its boundary is the range's edge, and no
    frame outside the range is asked about even though the event goes on past it."""
    fake_model.reset_stats()
    g = fake_grounder.locate(twice, QUERY, LocateOptions(time_range=(5.6, 9.0)))
    span = g.spans[0]
    assert span.start == pytest.approx(5.6, abs=FRAME + 1e-6)
    assert span.start >= 5.6 - 1e-9
    assert abs(span.end - TWICE[1][1]) <= FRAME + 1e-6
    assert min(_frame_times(fake_model)) >= 5.6 - FRAME / 2


def test_range_without_the_event_finds_nothing(twice: Path, fake_grounder: Grounder) -> None:
    g = fake_grounder.locate(twice, QUERY, LocateOptions(time_range=(2.5, 4.8)))
    assert g.spans == ()


def test_plan_keeps_the_rate_inside_the_range(twice: Path) -> None:
    info = probe(twice)
    plan = plan_sampling(info, LocateOptions(frame_sampling_rate=2.0, time_range=(4.0, 8.0)))
    assert plan.times == [4.25, 4.75, 5.25, 5.75, 6.25, 6.75, 7.25, 7.75]
    assert plan.bounds == (4.0, 8.0) and plan.interval == pytest.approx(0.5)
    past_end = plan_sampling(info, LocateOptions(frame_sampling_rate=2.0,
                                                 time_range=(8.0, 60.0)))
    assert past_end.bounds == (8.0, 10.0)  # clamped to the video
    assert all(8.0 <= t <= 10.0 - FRAME for t in past_end.times)


def test_a_range_after_the_video_is_refused_with_what_to_do(
        twice: Path, fake_grounder: Grounder) -> None:
    with pytest.raises(OptionsError, match=r"starts at 30 s but the video is only 10\.000 s"):
        fake_grounder.locate(twice, QUERY, LocateOptions(time_range=(30.0, 40.0)))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))


def test_cli_from_to(twice: Path, fake_model: FakeOpenAIServer) -> None:
    base = ("locate", str(twice), QUERY, "--json", "--format", "seconds", "--backend",
            "openai", "--openai-base-url", fake_model.base_url)
    out = _cli(*base, "--from", "00:00:04", "--to", "8")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["segments"][0]["start"] == pytest.approx(TWICE[1][0], abs=FRAME + 1e-6)
    only_from = _cli(*base, "--from", "4.5")  # to the video's end
    assert only_from.returncode == 0, only_from.stderr
    assert json.loads(only_from.stdout)["segments"][0]["end"] == pytest.approx(
        TWICE[1][1], abs=FRAME + 1e-6)
    bad = _cli(*base, "--from", "8", "--to", "4")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--from/--to" in bad.stderr and "must be after its start" in bad.stderr
    garbled = _cli(*base, "--from", "soon")
    assert garbled.returncode == 2 and "--from: not a time" in garbled.stderr


def test_api_options_time_range(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path, env=openai_env(fake_model))
    make_video(srv.media_root / "twice.mp4", duration=10.0, fps=FPS, intervals=TWICE)
    with srv:
        url = srv.url("/api/v1/inference")

        def ask(time_range: object) -> requests.Response:
            return requests.post(url, json={"video_path": "twice.mp4", "query": QUERY,
                                            "options": {"time_range": time_range,
                                                        "output_format": "seconds"}},
                                 timeout=60)

        ok = ask([4, 8])
        assert ok.status_code == 200, ok.text
        assert ok.json()["segments"][0]["start"] == pytest.approx(TWICE[1][0],
                                                                  abs=FRAME + 1e-6)
        for bad, fragment in (([8, 4], "must be after its start"), ([-1, 4], "0 or later"),
                              ([30, 40], "the video is only"), ([4], "time_range")):
            r = ask(bad)
            assert r.status_code == 422, (bad, r.text)
            assert fragment in r.text, (bad, r.text)
