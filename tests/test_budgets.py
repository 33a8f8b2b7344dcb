"""What the frame and call budgets mean (issue 20 items 4 and 6), on real encoded videos with the
fake model that looks at the frames.

- ``max_frames`` is the frames shown for the whole question, shared by its windows: a longer video
  is sampled at a lower rate; ``max_frames_per_call`` caps one model call.
- ``max_refine_calls`` is per span: ``--all`` refines every occurrence to the frame with the
  default options, each span says whether its refinement ran to the end, and a budget that cut
  it short is reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from media import make_video

from vidground.grounding import Grounder, plan_sampling
from vidground.options import MAX_REFINE_CALLS_PER_QUESTION, LocateOptions
from vidground.video.probe import probe

QUERY = "Every time the red square shows up"
FPS = 30
FRAME = 1 / FPS
#: three occurrences; the third ends on a frame that no 2 fps sample lands on
TRUTH = [(3.0, 4.5), (12.4, 13.2), (25.0, 25.9333)]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("budgets") / "three.mp4", duration=30.0, fps=FPS,
                      size=(96, 64), intervals=TRUTH).path


def test_every_occurrence_is_frame_exact_with_the_default_options(
        three: Path, fake_grounder: Grounder) -> None:
    g = fake_grounder.locate(three, QUERY, LocateOptions(all_occurrences=True))
    assert len(g.spans) == 3, g.spans
    for span, (start, end) in zip(g.spans, TRUTH, strict=True):
        assert abs(span.start - start) <= FRAME + 1e-6, (span, start)
        assert abs(span.end - end) <= FRAME + 1e-6, (span, end)
        assert span.refined is True
    assert g.warnings == ()
    assert g.timings["spans_cut_short"] == 0
    # the old shared budget (8 calls for the whole question) could not do this
    assert g.timings["refine_calls"] > LocateOptions().max_refine_calls
    response = g.to_response()
    assert [s["refined"] for s in response["segments"]] == [True, True, True]
    assert response["warnings"] == []


def test_a_budget_that_cuts_refinement_short_says_so(three: Path,
                                                     fake_grounder: Grounder) -> None:
    g = fake_grounder.locate(three, QUERY, LocateOptions(all_occurrences=True,
                                                         max_refine_calls=1))
    assert len(g.spans) == 3
    assert g.timings["refine_calls"] <= 3  # one per span
    short = [s for s in g.spans if s.refined is False]
    assert short, g.spans
    assert g.timings["spans_cut_short"] == len(short)
    (warning,) = g.warnings
    assert f"{len(short)} of 3 span(s)" in warning and "max_refine_calls" in warning
    assert g.to_response()["warnings"] == [warning]


def test_no_refinement_asked_leaves_refined_unset(three: Path,
                                                  fake_grounder: Grounder) -> None:
    g = fake_grounder.locate(three, QUERY, LocateOptions(all_occurrences=True, refine=False,
                                                         verify=False))
    assert [s.refined for s in g.spans] == [None, None, None]
    assert g.warnings == () and g.timings["refine_calls"] == 0


def test_the_question_has_a_ceiling_whatever_the_spans(three: Path) -> None:
    assert MAX_REFINE_CALLS_PER_QUESTION >= 8 * 3  # three default spans fit under it
    info = probe(three)
    assert info.duration == pytest.approx(30.0, abs=0.05)


def test_max_frames_is_a_budget_for_the_whole_question(tmp_path: Path,
                                                       fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "twenty.mp4", duration=20.0, fps=10, size=(96, 64),
                       intervals=[(16.0, 18.5)])  # seen by the sample at 16.25 s
    opts = LocateOptions(max_frames=8, refine=False, verify=False)
    plan = plan_sampling(probe(video.path), opts)
    assert len(plan.times) <= 8  # 2 fps would be 40: the rate drops to fit
    assert len(plan.windows) == 1
    g = fake_grounder.locate(video.path, "When is the red square visible?", opts)
    assert g.timings["frames"] <= 8 and g.timings["model_calls"] == 1
    assert len(g.spans) == 1 and abs(g.spans[0].start - 16.0) <= 20 / 8 + 1e-6


def test_max_frames_per_call_splits_the_budget_into_windows(tmp_path: Path,
                                                            fake_grounder: Grounder) -> None:
    video = make_video(tmp_path / "twenty.mp4", duration=20.0, fps=10, size=(96, 64),
                       intervals=[(17.0, 18.5)])
    opts = LocateOptions(max_frames=16, max_frames_per_call=4, refine=False, verify=False)
    plan = plan_sampling(probe(video.path), opts)
    assert len(plan.times) <= 16
    assert len(plan.windows) >= 4 and all(len(w) <= 4 for w in plan.windows)
    g = fake_grounder.locate(video.path, "When is the red square visible?", opts)
    assert g.timings["frames"] == len(plan.times)
    assert g.timings["windows"] == len(plan.windows)
