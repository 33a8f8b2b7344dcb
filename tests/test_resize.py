"""Qwen3-VL frame sizing (qwen-vl-utils' smart_resize and fetch_video budgets), in
vidground.backends.geometry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidground.backends.geometry import (
    VIDEO_MAX_TOKEN_NUM,
    VIDEO_MIN_TOKEN_NUM,
    frame_size_for,
    smart_resize,
    tokens_per_frame,
)

sides = st.integers(min_value=16, max_value=8000)


# no per-example deadline: pure arithmetic, whose time measures only how loaded the machine is
@settings(deadline=None)
@given(sides, sides, st.integers(4, 2000), st.integers(0, 4000))
def test_smart_resize_properties(h: int, w: int, lo_tokens: int, extra: int) -> None:
    if max(h, w) / min(h, w) > 50:
        return
    lo, hi = lo_tokens * 1024, (lo_tokens + extra) * 1024
    rh, rw = smart_resize(h, w, 32, lo, hi)
    assert rh % 32 == 0 and rw % 32 == 0 and rh >= 32 and rw >= 32
    rounded = max(32, round(h / 32) * 32) * max(32, round(w / 32) * 32)
    if rounded > hi:  # shrunk: within the maximum (floor to 32)
        assert rh * rw <= hi or min(rh, rw) == 32
    elif rounded < lo:  # grown: at least the minimum (ceil to 32, may pass the maximum)
        assert rh * rw >= lo
    else:
        assert rh * rw == rounded
    # the aspect ratio is kept to within one 32-pixel step on each side
    if min(rh, rw) > 32:  # a side held at the 32-pixel floor cannot keep the ratio
        assert abs(rh / rw - h / w) <= (h / w) * (32 / rh + 32 / rw) * 1.5 + 1e-9


@pytest.mark.parametrize(("h", "w", "lo", "hi", "expected"), [
    (720, 1280, 128 * 1024, 768 * 1024, (640, 1152)),
    (120, 160, 128 * 1024, 768 * 1024, (320, 448)),
    (1080, 1920, 4 * 1024, 16384 * 1024, (1088, 1920)),
    (32, 32, 4 * 1024, 16384 * 1024, (64, 64)),
])
def test_smart_resize_known_values(h: int, w: int, lo: int, hi: int,
                                   expected: tuple[int, int]) -> None:
    assert smart_resize(h, w, 32, lo, hi) == expected


def test_smart_resize_matches_qwen_vl_utils() -> None:
    qwen = pytest.importorskip("qwen_vl_utils.vision_process")
    for h, w in [(720, 1280), (480, 854), (1080, 1920), (2160, 3840), (120, 160), (1920, 1080)]:
        for lo, hi in [(128 * 1024, 768 * 1024), (4 * 1024, 16384 * 1024), (65536, 200000)]:
            assert smart_resize(h, w, 32, lo, hi) == qwen.smart_resize(h, w, 32, lo, hi)


def test_smart_resize_rejects() -> None:
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 5000)
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)
    with pytest.raises(ValueError, match="smaller than min_pixels"):
        smart_resize(100, 100, 32, 2048, 1024)


@given(st.integers(64, 4000), st.integers(64, 4000), st.integers(1, 2000),
       st.sampled_from([None, 32_768, 131_072, 262_144]))
def test_frame_size_budgets(w: int, h: int, n: int, context: int | None) -> None:
    if max(h, w) / min(h, w) > 50:
        return
    fw, fh = frame_size_for(w, h, n, max_context_tokens=context)
    assert fw % 32 == 0 and fh % 32 == 0
    assert fw * fh <= VIDEO_MAX_TOKEN_NUM * 1024
    total = (context or 128_000) * 1024 * 0.9
    per_frame_cap = max(total / n * 2, VIDEO_MIN_TOKEN_NUM * 1024 * 1.05)
    grown = w * h < VIDEO_MIN_TOKEN_NUM * 1024  # small videos are scaled up, rounding up
    rounding = 32 * max(fw, fh)  # sides snap to multiples of 32: one more row or column
    assert fw * fh <= per_frame_cap + rounding or grown or min(fw, fh) == 32


def test_frame_size_for_long_video_shrinks() -> None:
    big = frame_size_for(1280, 720, 16, max_context_tokens=262_144)
    small = frame_size_for(1280, 720, 768, max_context_tokens=32_768)
    assert big == (1152, 640)
    assert small[0] * small[1] < big[0] * big[1]
    assert small[0] * small[1] >= VIDEO_MIN_TOKEN_NUM * 1024 * 0.7


def test_frame_size_for_pixel_cap_and_tokens() -> None:
    w, h = frame_size_for(1920, 1080, 8, max_pixels_per_frame=256 * 1024)
    assert w * h <= 256 * 1024 and (w, h) == (672, 384)
    assert tokens_per_frame(w, h) == (21 * 12) / 2
