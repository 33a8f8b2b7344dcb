"""One decoded picture and its real time: the value every stage after decoding passes on (a leaf
module: numpy only, so the prompts, backends' contract and tests need no video library)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture. ``time`` is the frame's real presentation time in seconds from the
    first displayed frame; ``image`` is RGB ``uint8`` of shape (H, W, 3); ``index`` is the frame's
    position in display order when known."""

    time: float
    image: np.ndarray
    index: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])
