"""Time formatting and parsing, and Span arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidground.timecode import OUTPUT_FORMATS, Span, check_format, format_time, parse_timecode


@pytest.mark.parametrize(
    ("seconds", "fmt", "fps", "expected"),
    [
        (0.0, "HH:MM:SS.sss", None, "00:00:00.000"),
        (135.678, "HH:MM:SS.sss", None, "00:02:15.678"),
        (3723.5, "HH:MM:SS.sss", None, "01:02:03.500"),
        (59.9996, "HH:MM:SS.sss", None, "00:01:00.000"),  # rounding carries into minutes
        (3599.9996, "HH:MM:SS.sss", None, "01:00:00.000"),  # ...and into hours
        (59.9994, "HH:MM:SS.sss", None, "00:00:59.999"),
        (360_000.25, "HH:MM:SS.sss", None, "100:00:00.250"),  # hours > 99 keep all digits
        (135.678, "HH:MM:SS", None, "00:02:15"),
        (59.9996, "HH:MM:SS", None, "00:00:59"),  # whole seconds truncate (the second shown)
        (3600.0, "HH:MM:SS", None, "01:00:00"),
        (360_061.0, "HH:MM:SS", None, "100:01:01"),
        (135.678, "seconds", None, "135.678"),
        (0.0, "seconds", None, "0.000"),
        (12.0, "seconds", None, "12.000"),
        (10.0, "frames", 30.0, "300"),
        (10.0, "frames", 29.97, "299"),
        (0.999, "frames", 1.0, "0"),
        (0.1 * 3, "frames", 10.0, "3"),  # 0.30000000000000004 * 10 must not be frame 2
    ],
)
def test_format_time(seconds: float, fmt: str, fps: float | None, expected: str) -> None:
    assert format_time(seconds, fmt, fps=fps) == expected


def test_format_time_rounding_at_59_9995() -> None:
    text = format_time(59.9995)
    assert text in {"00:00:59.999", "00:01:00.000"}  # a valid time either way, never "00:00:60"
    assert abs(parse_timecode(text) - 59.9995) <= 0.0005 + 1e-9


@pytest.mark.parametrize(
    ("seconds", "fmt", "fps"),
    [(-1.0, "seconds", None), (math.nan, "HH:MM:SS.sss", None), (math.inf, "HH:MM:SS", None),
     (1.0, "frames", None), (1.0, "frames", 0.0), (1.0, "minutes", None)],
)
def test_format_time_rejects(seconds: float, fmt: str, fps: float | None) -> None:
    with pytest.raises(ValueError):
        format_time(seconds, fmt, fps=fps)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:02:15.678", 135.678),
        ("1:23", 83.0),
        ("1:23.5", 83.5),
        ("00:12", 12.0),
        ("1:02:03", 3723.0),
        ("01:02:03.250", 3723.25),
        ("100:00:00.5", 360_000.5),
        ("00:00:12,500", 12.5),
        ("75:00", 4500.0),  # minutes past 59 are fine without an hour field
        ("12.5", 12.5),
        ("12", 12.0),
        ("12.5s", 12.5),
        ("12.5 sec", 12.5),
        ("12.5 seconds", 12.5),
        ("12.5秒", 12.5),
        ("12,5", 12.5),
        (".5", 0.5),
        ("  7  ", 7.0),
    ],
)
def test_parse_timecode(text: str, expected: float) -> None:
    assert parse_timecode(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "1:2", "00:60", "01:60:00", "-5", "1:23:45:67",
                                  "12.5 minutes", "1e3"])
def test_parse_timecode_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timecode(text)


def test_parse_frames() -> None:
    assert parse_timecode("f300", fps=30.0) == 10.0
    assert parse_timecode("300", fps=30.0, input_format="frames") == 10.0
    assert parse_timecode("300", fps=30.0) == 300.0  # without the format a number is seconds
    with pytest.raises(ValueError):
        parse_timecode("300", input_format="frames")
    with pytest.raises(ValueError):
        parse_timecode("1:00", fps=30.0, input_format="frames")
    with pytest.raises(ValueError):
        parse_timecode("1:00", input_format="minutes")


@given(t=st.floats(0, 1e6, allow_nan=False), fmt=st.sampled_from(OUTPUT_FORMATS),
       fps=st.sampled_from([24.0, 25.0, 29.97, 30.0, 60.0]))
def test_round_trip(t: float, fmt: str, fps: float) -> None:
    back = parse_timecode(format_time(t, fmt, fps=fps), fps=fps, input_format=fmt)
    step = {"HH:MM:SS.sss": 0.0005, "seconds": 0.0005, "HH:MM:SS": 1.0, "frames": 1 / fps}[fmt]
    if fmt in ("HH:MM:SS", "frames"):  # truncating formats: the frame / second that is shown
        assert back - 1e-6 <= t < back + step + 1e-6
    else:
        assert abs(back - t) <= step + 1e-9


def test_check_format() -> None:
    assert check_format("seconds") == "seconds"
    with pytest.raises(ValueError, match="HH:MM:SS.sss"):
        check_format("hms")


# --- Span -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((1.0, 3.0), (2.0, 4.0), 1 / 3),
        ((0.0, 10.0), (0.0, 10.0), 1.0),
        ((0.0, 10.0), (2.0, 4.0), 0.2),
        ((0.0, 1.0), (2.0, 3.0), 0.0),
        ((0.0, 1.0), (1.0, 2.0), 0.0),  # touching half-open spans do not overlap
        ((5.0, 5.0), (5.0, 5.0), 1.0),  # the same point
        ((5.0, 5.0), (6.0, 6.0), 0.0),
        ((5.0, 5.0), (0.0, 10.0), 0.0),  # a point has no length to share
    ],
)
def test_iou(a: tuple[float, float], b: tuple[float, float], iou: float) -> None:
    assert Span(*a).iou(Span(*b)) == pytest.approx(iou)
    assert Span(*b).iou(Span(*a)) == pytest.approx(iou)


@given(a=st.floats(0, 1000), la=st.floats(0, 100), b=st.floats(0, 1000), lb=st.floats(0, 100))
def test_iou_bounds(a: float, la: float, b: float, lb: float) -> None:
    x, y = Span(a, a + la), Span(b, b + lb)
    assert 0.0 <= x.iou(y) <= 1.0
    assert x.iou(y) == pytest.approx(y.iou(x))


@pytest.mark.parametrize(
    ("span", "lo", "hi", "expected"),
    [
        ((2.0, 8.0), 0.0, 10.0, (2.0, 8.0)),
        ((-2.0, 8.0), 0.0, 10.0, (0.0, 8.0)),
        ((2.0, 18.0), 0.0, 10.0, (2.0, 10.0)),
        ((12.0, 18.0), 0.0, 10.0, (10.0, 10.0)),
    ],
)
def test_clamp(span: tuple[float, float], lo: float, hi: float,
               expected: tuple[float, float]) -> None:
    clamped = Span(*span, label="x", score=0.5).clamp(lo, hi)
    assert (clamped.start, clamped.end) == expected
    assert (clamped.label, clamped.score) == ("x", 0.5)


def test_span_validation_and_helpers() -> None:
    with pytest.raises(ValueError):
        Span(3.0, 2.0)
    with pytest.raises(ValueError):
        Span(math.nan, 2.0)
    span = Span(2.0, 6.0)
    assert (span.duration, span.center) == (4.0, 4.0)
    assert span.intersection(Span(5.0, 9.0)) == 1.0
    assert span.with_(label="jump") == Span(2.0, 6.0, "jump")
    assert span.to_dict("seconds") == {"start": 2.0, "end": 6.0, "start_text": "2.000",
                                       "end_text": "6.000", "label": None, "score": None,
                                       "refined": None}
    assert span.to_dict()["start_text"] == "00:00:02.000"
