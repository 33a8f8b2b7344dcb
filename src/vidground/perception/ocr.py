"""Reading a picture's text with PP-OCR (RapidOCR): every line with its box
(:func:`read_lines`), or one known region without detection (:func:`read_region`, about ten
times cheaper: what the boundary search asks on every frame it looks at)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import ocr_engine

if TYPE_CHECKING:
    import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)
#: Lines OCR is less sure of than this are dropped.
MIN_LINE_SCORE = 0.5
#: One read at a time per process: the engine's parameters are per call but stored on it.
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class TextLine:
    """One line of text OCR read: what, how sure (0..1), where."""

    text: str
    score: float
    box: Box


def read_lines(image: np.ndarray) -> list[TextLine]:
    """Every text line in ``image`` (RGB uint8), top to bottom, left to right."""
    import numpy as np

    with _engine_lock:  # RapidOCR keeps each call's use_det/use_rec for the next one
        out = ocr_engine()(np.ascontiguousarray(image[..., ::-1]),  # RapidOCR takes BGR
                           use_det=True, use_cls=False, use_rec=True)
    if out.boxes is None or out.txts is None:
        return []
    lines = []
    for box, text, score in zip(out.boxes, out.txts, out.scores, strict=False):
        if not text or float(score) < MIN_LINE_SCORE:
            continue
        xs, ys = np.asarray(box)[:, 0], np.asarray(box)[:, 1]
        lines.append(TextLine(str(text), float(score),
                              (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                               int(ys.max()) + 1)))
    return sorted(lines, key=lambda ln: (ln.box[1] // 8, ln.box[0]))


def grow(box: Box, size: tuple[int, int], margin: float = 0.25) -> Box:
    """``box`` grown by ``margin`` of its height on every side, inside a (width, height)."""
    x0, y0, x1, y1 = box
    pad = max(4, int((y1 - y0) * margin))
    return (max(0, x0 - pad), max(0, y0 - pad), min(size[0], x1 + pad), min(size[1], y1 + pad))


def read_region(image: np.ndarray, box: Box) -> TextLine:
    """The text in ``box`` of ``image`` read as one line (recognition only)."""
    import numpy as np

    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])
    if crop.size == 0:
        return TextLine("", 0.0, box)
    with _engine_lock:
        out = ocr_engine()(crop, use_det=False, use_cls=False, use_rec=True)
    texts = list(out.txts or ())
    scores = list(out.scores or ())
    if not texts:
        return TextLine("", 0.0, box)
    return TextLine(str(texts[0]), float(scores[0]) if scores else 0.0, box)
