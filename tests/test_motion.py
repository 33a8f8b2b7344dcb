"""Motion curve and adaptive sampling on real encoded videos."""

from __future__ import annotations

from pathlib import Path

import pytest
from media import make_video

from vidground.video.motion import MotionCurve, adaptive_times, motion_curve
from vidground.video.probe import probe


def test_pixel_curve_peaks_where_the_square_appears_and_goes(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.mp4", duration=10.0, fps=25, intervals=[(4.02, 6.02)],
                       paint_index=False)
    curve = motion_curve(probe(video.path), method="pixels")
    per_second = curve.per_second()
    assert len(per_second) == 10
    assert per_second[4] == pytest.approx(1.0, abs=0.2)
    assert per_second[6] > 0.5
    assert max(per_second[:3] + per_second[8:]) < 0.2
    # anchors bracket each change with the samples on both sides of it
    assert any(a < 4.02 <= b for a, b in zip(curve.anchors[::2], curve.anchors[1::2],
                                              strict=True))
    assert all(abs(a - b) <= 0.13 for a, b in zip(curve.anchors[::2], curve.anchors[1::2],
                                                   strict=True))


def test_packet_curve_needs_no_decoding_and_sees_the_change(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.mp4", duration=10.0, fps=25, intervals=[(4.0, 6.0)],
                       paint_index=False, gop=50)
    curve = motion_curve(probe(video.path), method="packets")
    assert curve.method == "packets"
    per_second = curve.per_second()
    assert max(per_second[3:7]) == pytest.approx(1.0)
    assert max(per_second[:3]) < 0.5


def test_adaptive_times_spend_the_budget_where_things_move() -> None:
    values = [0.0] * 40
    values[20] = 1.0  # one change at 5.0-5.25 s in a 10 s video, 0.25 s bins
    curve = MotionCurve(0.25, tuple(values), (), 10.0, "test", anchors=(4.9, 5.1))
    times = adaptive_times(curve, budget=10)
    assert 4.9 in times and 5.1 in times
    assert len(times) <= 11
    near = [t for t in times if 4.5 <= t < 5.75]
    far = [t for t in times if t < 3.0]
    assert len(near) / 1.25 > 2 * len(far) / 3.0  # denser around the change
    assert times == sorted(times) and all(0 <= t <= 10.0 for t in times)


def test_static_video_is_sampled_evenly() -> None:
    curve = MotionCurve(0.25, (0.0,) * 80, (), 20.0, "test")
    times = adaptive_times(curve, budget=10)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 10
    assert max(gaps) - min(gaps) < 1e-6


@pytest.mark.parametrize("method", ["packets", "pixels"])
def test_invalid_utf8_in_a_handler_name_is_ignored(tmp_path: Path, method: str) -> None:
    """Issue 21 item 10: the packet pass opened the file without ignoring metadata that is not
    UTF-8 (a fuzzed handler name), so adaptive sampling of a long video failed with
    UnicodeDecodeError (a 500, or ``internal_error`` as a job)."""
    from media import make_patched

    made = make_video(tmp_path / "a.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    broken = make_patched(made.path, tmp_path / "b.mp4", b"VideoHandler", b"\xffideoHandler")
    curve = motion_curve(probe(broken), method=method)
    assert curve.duration == pytest.approx(4.0, abs=0.05) and len(curve.values) == 16
