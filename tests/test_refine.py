"""The refiner and phase splitting as units: dense times, the virtual clock, boundaries moved to
the right frame by a model double that looks at the pictures, the call budget, verification;
and the phase splitter on the question shapes users write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from media import make_video, object_visible, read_painted_index

from vidground.backends.base import BaseBackend
from vidground.frame import Frame
from vidground.grounding.phases import phase_question, split_phases
from vidground.grounding.prompts import Prompt
from vidground.grounding.refine import (
    CallCounter,
    Refiner,
    RefineSettings,
    dense_times,
    on_virtual_clock,
    real_end,
    real_start,
)
from vidground.timecode import Span
from vidground.video.probe import probe

FPS = 10
TRUE = (1.3, 2.6)  # the red square is on screen for frames 13..25


class LookingModel(BaseBackend):
    """Answers like a perfect model on the frames it is shown (times as labelled), and a yes/no
    question by whether the square is in most frames. Only the answers are faked."""

    model_name = "looking"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: object = None) -> str:
        self.calls.append(len(frames))
        seen = [f.time for f in frames if object_visible(f.image)]
        if "yes or no" in prompt.user.lower():
            return "Yes." if len(seen) * 2 > len(frames) else "No."
        if not seen:
            return "Answer: NOT FOUND"
        return f"Answer: {seen[0]:.1f} - {seen[-1]:.1f} seconds"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("refine") / "a.mp4", duration=4.0, fps=FPS,
                      intervals=[TRUE]).path


def refiner(path: Path, model: LookingModel, calls: int = 8, coarse: Sequence[float] = ()
            ) -> tuple[Refiner, CallCounter]:
    counter = CallCounter(calls)
    return Refiner(model, probe(path), "When is the red square visible?", language="en",
                   size=(160, 120), settings=RefineSettings(radius_s=0.6, max_frames=16),
                   counter=counter, coarse_times=coarse), counter


def test_dense_times_are_native_frame_centres_within_the_budget(video: Path) -> None:
    info = probe(video)
    times = dense_times(info, 1.0, 1.5, 16)
    assert times == pytest.approx([1.05, 1.15, 1.25, 1.35, 1.45, 1.55])
    strided = dense_times(info, 0.0, 4.0, 10)
    assert len(strided) <= 10 and strided == sorted(strided)
    assert all(0 <= t < info.duration for t in strided)
    assert dense_times(info, 3.9, 9.0, 16) == pytest.approx([3.95])  # clamped to the video


def test_virtual_clock_maps_answers_back_to_real_frame_times() -> None:
    import numpy as np

    frames = [Frame(1.0 + i * 0.1, np.zeros((2, 2, 3), np.uint8), i) for i in range(5)]
    virtual = on_virtual_clock(frames)
    assert [f.time for f in virtual] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert real_start(frames, 1.4) == pytest.approx(1.1)
    assert real_end(frames, 2.0, 0.1) == pytest.approx(1.3)  # half-open: the next frame
    assert real_end(frames, 4.0, 0.1) == pytest.approx(1.5)  # past the clip's last frame
    assert real_start(frames, -3) == 1.0 and real_start(frames, 99) == pytest.approx(1.4)


def test_refine_moves_coarse_boundaries_to_the_true_frames(video: Path) -> None:
    model = LookingModel()
    ref, counter = refiner(video, model, coarse=[0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25])
    span = ref.refine(Span(1.75, 2.25))  # what a 2 fps pass can say
    assert span.start == pytest.approx(TRUE[0], abs=1e-6)
    assert span.end == pytest.approx(TRUE[1], abs=1e-6)
    assert 1 <= counter.calls <= 8 and counter.frames == sum(model.calls)


def test_refine_keeps_the_coarse_span_when_the_budget_is_spent(video: Path) -> None:
    model = LookingModel()
    ref, counter = refiner(video, model, calls=0)
    assert ref.refine(Span(1.5, 2.5)) == Span(1.5, 2.5)
    assert model.calls == [] and counter.calls == 0


def test_verify_scores_spans_by_what_the_frames_show(video: Path) -> None:
    model = LookingModel()
    ref, counter = refiner(video, model)
    assert ref.verify(Span(*TRUE)) == 1.0
    assert ref.verify(Span(3.0, 3.9)) == 0.0
    assert counter.calls == 2


@pytest.mark.parametrize(("query", "phases"), [
    ("When does she start to open the door and when does she finish?",
     ["start to open the door", "finish"]),
    ("When does the player begin the jump, and when does he stop?",
     ["begin the jump", "stop"]),
    ("请识别视频中人物开始伸手拿手机的时间点，以及完成拾起动作的时间点",
     ["开始伸手拿手机", "完成拾起动作"]),
    ("When does the dog jump?", []),
    ("When does it start?", []),  # one phase is an ordinary question
    ("When does it start, and when does it start?", []),  # the same phase twice is one
])
def test_split_phases(query: str, phases: list[str]) -> None:
    assert split_phases(query) == phases


def test_phase_questions_name_the_phase_in_the_question_language() -> None:
    en = phase_question("finish", "When does she start to open the door and finish?", "en")
    zh = phase_question("完成拾起动作", "开始伸手拿手机，以及完成拾起动作", "zh")
    assert "finish" in en and en != "finish"
    assert "完成拾起动作" in zh


def test_refine_inside_bounds_never_looks_outside_them(video: Path) -> None:
    """With ``bounds`` (a ``time_range``) cutting the event, the refiner asks only about
    frames inside them and the span ends at their edge, not at the event's true end."""
    seen: list[float] = []

    class Recording(LookingModel):
        def generate(self, frames: Sequence[Frame], prompt: Prompt, *,
                     max_new_tokens: int = 512, on_token: object = None) -> str:
            seen.extend(read_painted_index(f.image) / FPS for f in frames)
            return super().generate(frames, prompt, max_new_tokens=max_new_tokens)

    counter = CallCounter(8)
    ref = Refiner(Recording(), probe(video), "When is the red square visible?", language="en",
                  size=(160, 120), settings=RefineSettings(radius_s=0.6, max_frames=16),
                  counter=counter, coarse_times=[0.25, 0.75, 1.25, 1.75], bounds=(0.0, 2.0))
    span = ref.refine(Span(1.25, 1.75))
    assert span.start == pytest.approx(TRUE[0], abs=1e-6)
    assert span.end == pytest.approx(2.0, abs=1e-6)  # the range's end, the event goes on
    assert seen and max(seen) < 2.0, max(seen)


@pytest.mark.parametrize(("cut", "start"), [(1.2, 1.2), (1.1, 1.1), (1.0, TRUE[0]), (1.3, TRUE[0])],
                         ids=["one-frame-away", "two-frames-away", "three-frames-away", "on-it"])
def test_a_refined_boundary_snaps_to_a_hard_cut_one_or_two_frames_away(
        video: Path, cut: float, start: float) -> None:
    counter = CallCounter(8)
    ref = Refiner(LookingModel(), probe(video), "When is the red square visible?",
                  language="en", size=(160, 120),
                  settings=RefineSettings(radius_s=0.6, max_frames=16), counter=counter,
                  coarse_times=[0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25], cuts=[cut, 3.9])
    span = ref.refine(Span(1.75, 2.25))
    assert span.start == pytest.approx(start, abs=1e-6)
    assert span.end == pytest.approx(TRUE[1], abs=1e-6)  # no cut near the end
    assert counter.snapped == (1 if start != TRUE[0] else 0)
