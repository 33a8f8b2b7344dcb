"""sample_times(): how many frames, and where."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidground.video.probe import VideoInfo
from vidground.video.sampling import frame_count_for, last_frame_time, sample_times


def _info(duration: float, fps: float = 30.0, frames: int | None = None) -> VideoInfo:
    count = frames if frames is not None else max(1, round(duration * fps))
    return VideoInfo(path="x.mp4", duration=duration, fps=fps, frame_count=count, width=640,
                     height=360, codec="h264", container="mp4")


def test_two_fps_centres() -> None:
    times = sample_times(_info(10.0), fps=2.0)
    assert len(times) == 20
    assert times[0] == pytest.approx(0.25) and times[-1] == pytest.approx(9.75)
    assert all(b - a == pytest.approx(0.5) for a, b in zip(times, times[1:], strict=False))


def test_short_video_gets_min_frames() -> None:
    assert len(sample_times(_info(1.0), fps=1.0, min_frames=4)) == 4


def test_long_video_capped_by_max_frames() -> None:
    times = sample_times(_info(3600.0), fps=2.0, max_frames=768)
    assert len(times) == 768
    assert times[-1] < 3600.0


def test_never_beyond_last_frame() -> None:
    info = _info(0.2, fps=10.0)  # two frames: at 0.0 and 0.1
    times = sample_times(info, fps=30.0, min_frames=4)
    assert len(times) == 2
    assert max(times) <= last_frame_time(info) + 1e-9


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fps"):
        frame_count_for(10.0, fps=0)
    with pytest.raises(ValueError, match="min_frames"):
        frame_count_for(10.0, min_frames=10, max_frames=4)


@given(duration=st.floats(0.05, 20_000), fps=st.floats(0.01, 10), min_frames=st.integers(1, 64),
       extra=st.integers(0, 1000), video_fps=st.sampled_from([10.0, 24.0, 29.97, 60.0]))
def test_sampling_properties(duration: float, fps: float, min_frames: int, extra: int,
                             video_fps: float) -> None:
    max_frames = min_frames + extra
    info = _info(duration, video_fps)
    times = sample_times(info, fps=fps, min_frames=min_frames, max_frames=max_frames)
    n = len(times)
    upper = min(max_frames, info.frame_count)
    assert 1 <= n <= upper
    assert n >= min(min_frames, upper) or n == upper - 1
    if n % 2:  # odd only when no even count fits the bounds
        assert not (n - 1 >= max(min_frames, 2) or n + 1 <= upper)
    assert times == sorted(times)
    assert times[0] >= 0 and times[-1] <= last_frame_time(info) + 1e-6
    wanted = round(duration * fps)
    if min_frames <= wanted <= upper:
        assert abs(n - wanted) <= 1


def test_snap_moves_each_time_to_the_keyframe_in_its_interval() -> None:
    from vidground.video.sampling import snap_to_keyframes

    keys = [0.0, 1.0, 2.0, 3.0, 4.0]
    # the first and last stay (often black or a fade); the others go to their keyframe
    assert snap_to_keyframes([0.5, 1.5, 2.5, 3.5], keys, 1.0) == [0.5, 1.0, 2.0, 3.5]
    assert snap_to_keyframes([1.0, 3.0, 5.0], [0, 2, 3.5, 4], 2.0) == [1.0, 3.5, 5.0]
    assert snap_to_keyframes([0.4, 1.4, 2.4], [0.0, 1.2, 1.6, 2.0], 1.0) == [0.4, 1.2, 2.4]


def test_snap_gives_up_when_an_interval_has_no_keyframe() -> None:
    from vidground.video.sampling import snap_to_keyframes

    assert snap_to_keyframes([0.5, 1.5, 2.5, 3.5], [0.0, 1.0], 1.0) is None  # [2, 3) has none
    assert snap_to_keyframes([0.5, 1.5, 2.5], [], 1.0) is None
    assert snap_to_keyframes([0.5, 1.5], [0.0, 1.0], 1.0) is None  # no inner time to move
    assert snap_to_keyframes([], [0.0], 1.0) is None


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60),
       st.integers(1, 40), st.floats(0.5, 100))
def test_snapped_times_stay_in_their_intervals(keys: list[float], n: int,
                                               duration: float) -> None:
    from vidground.video.sampling import interval_centres, snap_to_keyframes

    keys = sorted(set(keys))
    times = interval_centres(duration, n)
    step = duration / n
    snapped = snap_to_keyframes(times, keys, step)
    if snapped is None:
        return
    assert len(snapped) == len(times)
    assert snapped[0] == times[0] and snapped[-1] == times[-1]
    assert all(s in keys for s in snapped[1:-1])
    assert all(a < b for a, b in zip(snapped, snapped[1:], strict=False))
    assert all(t - step / 2 <= s < t + step / 2 for t, s in zip(times, snapped, strict=True))
