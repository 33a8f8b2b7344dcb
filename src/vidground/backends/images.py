"""JPEG encoding of frames for HTTP backends (OpenAI-compatible chat requests)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import PIL
from PIL import Image

#: Part of an encoding's cache spec: bump it when a change here alters the bytes of a frame.
JPEG_ENCODER_VERSION = 2


def to_pil(image: np.ndarray) -> Image.Image:
    """An RGB Pillow image from an (H, W, 3) ``uint8`` array (grey or RGBA arrays are converted)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an image of shape (H, W, 3), got {array.shape}")
    picture = Image.fromarray(array)
    # an RGB array is already what JPEG takes: .convert("RGB") would only copy it, and the
    # copy made encoding 2-3x slower (issue 22.7)
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def fit_max_side(image: Image.Image, max_side: int | None) -> Image.Image:
    """``image`` shrunk (aspect kept) so its longer side is at most ``max_side``; never enlarged."""
    if not max_side or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def encode_jpeg(image: np.ndarray, *, quality: int = 85, max_side: int | None = None) -> bytes:
    """JPEG bytes of an RGB frame, optionally shrunk to ``max_side`` pixels on its longer side."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    buffer = io.BytesIO()
    fit_max_side(to_pil(image), max_side).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def jpeg_spec(quality: int, max_side: int | None) -> dict[str, Any]:
    """What the bytes of :func:`encode_jpeg` depend on (the key of cached encodings)."""
    from PIL import features

    return {"format": "jpeg", "quality": int(quality), "max_side": max_side,
            "encoder": JPEG_ENCODER_VERSION, "pillow": PIL.__version__,
            "libjpeg": features.version("jpg")}


def frame_jpeg(frame: Any, *, quality: int = 85, max_side: int | None = None) -> bytes:
    """:func:`encode_jpeg` of ``frame.image``, read from ``frame.encodings`` when the frame
    carries them (frames from the frame cache, :mod:`vidground.cache.frames`) and given to
    them after encoding, so a repeat question sends the stored bytes without encoding."""
    encodings = getattr(frame, "encodings", None)
    if encodings is None:
        return encode_jpeg(frame.image, quality=quality, max_side=max_side)
    spec = jpeg_spec(quality, max_side)
    data: bytes | None = encodings.get(spec)
    if data is None:
        data = encode_jpeg(frame.image, quality=quality, max_side=max_side)
        encodings.put(spec, data)
    return data


def jpeg_base64(image: np.ndarray, *, quality: int = 85, max_side: int | None = None) -> str:
    """Base64 text (no data-URL prefix) of the frame's JPEG encoding."""
    return base64.b64encode(encode_jpeg(image, quality=quality, max_side=max_side)).decode("ascii")


def jpeg_data_url(image: np.ndarray, *, quality: int = 85, max_side: int | None = None) -> str:
    """``data:image/jpeg;base64,...`` URL of the frame, as an ``image_url`` content part takes."""
    return "data:image/jpeg;base64," + jpeg_base64(image, quality=quality, max_side=max_side)


def decode_data_url(url: str) -> Image.Image:
    """The picture inside a ``data:image/...;base64,`` URL (used by tests and the fake server)."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise ValueError("not a base64 data URL")
    return Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")
