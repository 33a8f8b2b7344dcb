"""The ends of a gradual transition to the frame, from the pixels (issue 24: dissolves within
one frame).

TransNetV2 says *that* frames are in a transition, but its all-frames score rises late and falls
early on a dissolve whose first blended frames still look like the old shot (a weak dissolve
started 3 frames late in the benchmark). A cross-dissolve is a linear blend, though:
``frame(t) = (1 - w(t)) A + w(t) B``, ``w`` rising in equal steps from 0 (the old shot ``A``)
to 1 (the new shot ``B``). So, around a span TransNetV2 found:

1. the frames from a few before it to a few after it are decoded small (TransNetV2's 48x27:
   moving detail blurs away, the shots' colours and layout stay);
2. each frame's blend weight is measured: its projection on the line from ``A`` (the mean of the
   two frames before the window's span) to ``B`` (the two after),
   ``w(t) = <frame(t) - A, B - A> / |B - A|^2``;
3. the ramp that fits best gives the ends: ``w = 0`` up to the frame before the first blended
   frame, then up by ``1 / (n + 1)`` a frame over the ``n`` blended frames, ``1`` from the new
   shot's first frame; ``n = 0`` is a hard cut. It is fitted (least squares) on the
   frame-to-frame steps of ``w``, where each frame's motion is noise of its own, rather than on
   ``w``, where motion piles up as drift.

The fit is kept only where the pixels are a blend of the two shots (the ramp explains the steps:
root-mean-square misfit under :data:`MAX_RESIDUAL`) and ``A`` and ``B`` differ
(:data:`MIN_CONTRAST`); a fade through black, a wipe with much motion, or two transitions close
together keep TransNetV2's span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Frames either side of TransNetV2's span where the ends may be.
SEARCH = 4
#: Frames averaged for each reference picture (``A`` before, ``B`` after).
REFERENCE = 2
#: Largest root-mean-square misfit of a ramp's frame-to-frame steps (blend-weight units) that
#: is believed: the dissolves of the benchmark's 16 videos fit within 0.013, a hard cut 0.025.
MAX_RESIDUAL = 0.03
#: Smallest mean absolute difference (grey levels, 0..255) between the two shots.
MIN_CONTRAST = 4.0


@dataclass(frozen=True)
class Ramp:
    """A fitted blend: ``first`` is the first blended frame and ``after`` the new shot's first
    frame (indices into the frames fitted; ``first == after``: a hard cut); ``residual``: the
    root-mean-square misfit."""

    first: int
    after: int
    residual: float


def blend_weights(frames: np.ndarray) -> tuple[np.ndarray, float]:
    """Each frame's weight on the line from the first :data:`REFERENCE` frames' mean to the
    last ones' (``frames``: ``(n, ...)``); and the two references' mean absolute difference."""
    import numpy as np

    x = frames.reshape(len(frames), -1).astype(np.float64)
    a = x[:REFERENCE].mean(axis=0)
    b = x[-REFERENCE:].mean(axis=0)
    d = b - a
    norm = float(d @ d)
    if norm <= 0.0:
        return np.zeros(len(x)), 0.0
    return (x - a) @ d / norm, float(np.abs(d).mean())


def ramp(n: int, first: int, after: int) -> np.ndarray:
    """The blend weight of frames ``0..n-1`` for a dissolve whose blended frames are
    ``first..after-1``: 0 before, ``k / (after - first + 1)`` on the k-th, 1 from ``after``."""
    import numpy as np

    t = np.arange(n, dtype=np.float64)
    return np.clip((t - first + 1) / (after - first + 1), 0.0, 1.0)


def fit_ramp(weights: np.ndarray, first: int, after: int, search: int = SEARCH) -> Ramp:
    """The ramp (:func:`ramp`) nearest to ``weights`` with its first blended frame within
    ``search`` of ``first`` and the new shot's first frame within ``search`` of ``after``,
    fitted on the frame-to-frame steps (least squares: a ramp climbs ``1 / (n + 1)`` a frame
    over its ``n + 1`` steps and stays flat elsewhere; motion adds noise to each step, which
    the steps do not accumulate as the weights themselves do)."""
    import numpy as np

    n = len(weights)
    steps = np.diff(weights)  # steps[k]: from frame k to frame k + 1
    best: Ramp | None = None
    for lo in range(max(REFERENCE, first - search), min(n - REFERENCE, first + search) + 1):
        for hi in range(max(lo, after - search), min(n - REFERENCE, after + search) + 1):
            model = np.diff(ramp(n, lo, hi))
            misfit = float(np.sqrt(np.mean((steps - model) ** 2)))
            if best is None or misfit < best.residual - 1e-12:
                best = Ramp(lo, hi, misfit)
    if best is None:
        return Ramp(first, after, float("inf"))
    return best


def refine_span(frames: np.ndarray, first: int, after: int) -> Ramp | None:
    """The ends of the transition whose frames (``frames``, decoded small, from
    ``SEARCH + REFERENCE`` before TransNetV2's first transition frame ``first`` to as many
    after its end ``after``) are a cross-dissolve; None where they are not one (see the module
    docstring)."""
    weights, contrast = blend_weights(frames)
    if contrast < MIN_CONTRAST:
        return None
    fitted = fit_ramp(weights, first, after)
    return fitted if fitted.residual <= MAX_RESIDUAL else None


__all__ = ["MAX_RESIDUAL", "MIN_CONTRAST", "Ramp", "blend_weights", "fit_ramp", "ramp",
           "refine_span"]
