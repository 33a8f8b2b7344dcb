"""Splitting long videos into windows and merging what the windows report."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidground.grounding.windows import merge_spans, range_adaptive_times, split_windows, within
from vidground.timecode import Span


@given(n=st.integers(1, 400), per=st.integers(2, 64))
def test_windows_cover_every_time_within_the_limit(n: int, per: int) -> None:
    times = [i * 0.5 for i in range(n)]
    windows = split_windows(times, per)
    assert all(2 <= len(w) <= per or len(windows) == 1 for w in windows)
    assert sorted({t for w in windows for t in w}) == times
    for a, b in zip(windows, windows[1:], strict=False):
        assert b[0] <= a[-1]  # consecutive windows overlap


def test_window_border_moves_to_a_scene_cut() -> None:
    times = [float(i) for i in range(20)]
    windows = split_windows(times, 10, overlap=2, cuts=[8.5])
    assert windows[0][-1] == 9.0  # ends on the first frame after the cut
    assert windows[1][0] <= 8.0


def test_too_small_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="at least two"):
        split_windows([0.0, 1.0, 2.0], 1)


def test_merge_joins_overlapping_reports_and_keeps_separate_events() -> None:
    merged = merge_spans([Span(10, 12, score=0.4), Span(1, 2), Span(11.5, 13, "x", 0.9)])
    assert merged == [Span(1, 2), Span(10, 13, "x", 0.9)]
    assert merge_spans([Span(1, 2), Span(2.4, 3)], gap=0.5) == [Span(1, 3)]
    assert merge_spans([Span(1, 2), Span(2.6, 3)], gap=0.5) == [Span(1, 2), Span(2.6, 3)]


def test_within_clamps_spans_to_the_range_and_drops_those_outside() -> None:
    spans = [Span(0.5, 1.0), Span(1.5, 2.5), Span(3.0, 4.5), Span(5.0, 6.0), Span(2.0, 2.0)]
    assert within(spans, (2.0, 5.0)) == [Span(2.0, 2.5), Span(3.0, 4.5), Span(2.0, 2.0)]
    assert within([Span(1.0, 2.0)], (2.0, 3.0)) == []  # it ends where the range begins
    assert within(spans, None) == spans


def test_adaptive_times_in_a_range_stay_in_it_and_keep_its_anchors() -> None:
    from vidground.video.motion import MotionCurve

    values = tuple(1.0 if 24 <= i < 28 else 0.0 for i in range(40))  # motion at 6-7 s
    curve = MotionCurve(bin_s=0.25, values=values, cuts=(6.5,), duration=10.0, method="pixels",
                        anchors=(6.0, 6.96, 1.0))
    times = range_adaptive_times(curve, (5.1, 8.0), 8)
    assert times == sorted(times) and all(5.1 <= t < 8.0 for t in times), times
    assert {6.0, 6.96} <= set(times) and 1.0 not in times
    dense = [t for t in times if 6.0 <= t < 7.0]
    assert len(dense) >= len(times) // 2, times  # the moving second gets the frames
