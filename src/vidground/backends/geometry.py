"""Qwen3-VL's picture geometry: frame sizes computed the way qwen-vl-utils
(``vision_process.py``) does, and what a frame costs in tokens. The backend owns it (nothing in
``video/`` knows about models); the pipeline asks it what size to decode frames at.

Qwen3-VL cuts pictures into 16x16 patches and merges 2x2 patches into one token, so both sides
must be multiples of 32 (``FACTOR``); one video token covers 32x32 pixels of two consecutive
frames (frames are fused in pairs). Per frame, qwen-vl-utils keeps between
``VIDEO_MIN_TOKEN_NUM`` and ``VIDEO_MAX_TOKEN_NUM`` tokens' worth of pixels, and all frames
together within 90% of the model's context (``total_pixels``).
"""

from __future__ import annotations

import math

PATCH_SIZE = 16
SPATIAL_MERGE_SIZE = 2
FACTOR = PATCH_SIZE * SPATIAL_MERGE_SIZE  # 32
FRAME_FACTOR = 2  # frames per temporal patch
MAX_RATIO = 200
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
#: qwen-vl-utils' default ``MODEL_SEQ_LEN`` when no context length is given.
DEFAULT_CONTEXT_TOKENS = 128_000
#: Share of the context the video may use (qwen-vl-utils: 0.9).
CONTEXT_SHARE = 0.9


def round_by_factor(number: float, factor: int) -> int:
    """The multiple of ``factor`` closest to ``number``."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """The smallest multiple of ``factor`` >= ``number``."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """The largest multiple of ``factor`` <= ``number``."""
    return math.floor(number / factor) * factor


def smart_resize(height: int, width: int, factor: int = FACTOR, min_pixels: int | None = None,
                 max_pixels: int | None = None) -> tuple[int, int]:
    """``(height, width)`` with both sides multiples of ``factor``, the aspect ratio kept as
    closely as possible and ``min_pixels <= h * w <= max_pixels`` (qwen-vl-utils' algorithm).

    Raises ValueError for empty sizes, ``min_pixels > max_pixels`` or an aspect ratio above 200.
    """
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor**2
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor**2
    if height <= 0 or width <= 0:
        raise ValueError(f"picture size must be positive, got {width}x{height}")
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) is smaller than min_pixels ({min_pixels})")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio must be at most {MAX_RATIO}, "
                         f"got {max(height, width) / min(height, width):.1f}")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, floor_by_factor(height / beta, factor))
        w_bar = max(factor, floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def video_pixel_budget(n_frames: int, *, max_pixels_per_frame: int | None = None,
                       max_context_tokens: int | None = None, total_pixels: int | None = None,
                       min_pixels: int | None = None,
                       factor: int = FACTOR) -> tuple[int, int]:
    """``(min_pixels, max_pixels)`` per frame for ``n_frames`` frames, as fetch_video computes
    them: at most ``VIDEO_MAX_TOKEN_NUM`` tokens per frame and ``total_pixels`` over all frames
    (two frames share one token grid), never below 1.05 x the minimum."""
    frame_min = min_pixels if min_pixels is not None else VIDEO_MIN_TOKEN_NUM * factor**2
    frame_max = VIDEO_MAX_TOKEN_NUM * factor**2
    if total_pixels is None:
        context = max_context_tokens or DEFAULT_CONTEXT_TOKENS
        total_pixels = int(context * factor**2 * CONTEXT_SHARE)
    n = max(1, int(n_frames))
    max_pixels = max(min(frame_max, total_pixels / n * FRAME_FACTOR), int(frame_min * 1.05))
    if max_pixels_per_frame is not None:
        max_pixels = min(max_pixels, max_pixels_per_frame)
    max_pixels = int(max(max_pixels, factor**2))
    return min(frame_min, max_pixels), max_pixels


def frame_size_for(width: int, height: int, n_frames: int, *,
                   max_pixels_per_frame: int | None = None,
                   max_context_tokens: int | None = None, total_pixels: int | None = None,
                   min_pixels: int | None = None, factor: int = FACTOR) -> tuple[int, int]:
    """``(width, height)`` to give each of ``n_frames`` frames of a ``width`` x ``height`` video
    so Qwen3-VL sees them at the size qwen-vl-utils would pick (both sides multiples of 32)."""
    lo, hi = video_pixel_budget(n_frames, max_pixels_per_frame=max_pixels_per_frame,
                                max_context_tokens=max_context_tokens,
                                total_pixels=total_pixels, min_pixels=min_pixels, factor=factor)
    h, w = smart_resize(height, width, factor=factor, min_pixels=lo, max_pixels=hi)
    return w, h


def tokens_per_frame(width: int, height: int, factor: int = FACTOR) -> float:
    """Visual tokens one frame of this (already resized) size costs: a 32x32 cell of a frame
    pair is one token, so half a token per cell per frame."""
    return (width // factor) * (height // factor) / FRAME_FACTOR
