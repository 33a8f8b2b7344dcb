"""Qwen3-VL's visual features kept in the disk cache, so the vision tower runs once per picture set.

What is kept: the vision tower's outputs for one request's video - the merged embeddings that
replace the ``<|video_pad|>`` tokens (``pooler_output``) and the DeepStack features Qwen3-VL adds
to the first text layers (``deepstack_features``) - as safetensors, in the dtype the model
computed them in. ``generate`` then gets them as ``mm_encoder_outputs={"video": ...}``
(transformers 5.x) instead of ``pixel_values_videos``: it skips the vision tower and computes
the 3-D rotary positions (and ``rope_deltas``) from ``input_ids``, ``mm_token_type_ids`` and
``video_grid_thw`` as usual, so the answer is bit-identical (``tests/test_cache_features.py``).

The key is what determines the features: a digest of the exact ``pixel_values_videos`` the
processor made (so frame times, which reach the model only as text, do not matter, and a dense
refinement clip hits whatever its labels), the grid, the model (id, snapshot revision and the
identity of its weight files), the dtype, the device type, the attention implementation and
the torch and transformers versions. Another model, dtype or device is a miss.

An entry joins the eviction group of the video its frames came from
(:func:`~vidground.cache.frames.eviction_group`): a video's features go with its frames, and
writing them never evicts that video's first windows (:mod:`vidground.cache.store`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, cast

from ..cache.identity import file_identity
from ..cache.store import CorruptEntryError, DiskCache, Entry

KIND = "features"
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "config.json")
_SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{7,64})(?:/|$)")


def model_fingerprint(model_ref: str, model_dir: str | Path) -> dict[str, Any]:
    """The model's id, its hub revision (when loaded from a hub snapshot) and a digest of its
    weight files' identities (size, mtime, sampled blocks)."""
    directory = Path(model_dir)
    digest = hashlib.blake2b(digest_size=20)
    for pattern in _WEIGHT_FILES:
        for path in sorted(directory.glob(pattern)):
            digest.update(f"{path.name}={file_identity(path)};".encode())
    found = _SNAPSHOT.search(str(directory.resolve()).replace("\\", "/"))
    return {"model": model_ref, "revision": found.group(1) if found else None,
            "weights": digest.hexdigest()}


def pixels_digest(pixel_values: Any) -> str:
    """A digest of a (CPU) pixel tensor's dtype, shape and bytes."""
    import torch

    tensor = pixel_values.detach().contiguous()
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw 16-bit words
        tensor = tensor.view(torch.int16)
    digest.update(memoryview(tensor.numpy()).cast("B"))
    return digest.hexdigest()


def feature_key_parts(fingerprint: dict[str, Any], pixels: str, grid: list[list[int]], *,
                      dtype: Any, device: str, attn: str | None) -> dict[str, Any]:
    """Everything the vision tower's output for these pixels depends on."""
    import torch
    import transformers

    return {**fingerprint, "pixels": pixels, "grid": grid, "dtype": str(dtype),
            "device": str(device).split(":")[0], "attn": attn, "torch": torch.__version__,
            "transformers": transformers.__version__}


def video_features(model: Any, pixel_values: Any, grid_thw: Any, *, cache: DiskCache | None,
                   parts: dict[str, Any] | None, group: str | None = None) -> tuple[Any, bool]:
    """``(features, hit)``: the vision tower's output for one video, from ``cache`` when it
    holds it (``parts`` from :func:`feature_key_parts`), else computed (and stored in the
    eviction ``group`` of the video the pixels come from:
    :func:`~vidground.cache.frames.eviction_group`)."""
    def compute() -> Any:
        return model.model.get_video_features(pixel_values, grid_thw, return_dict=True)

    if cache is None or parts is None:
        return compute(), False
    device = pixel_values.device
    return cache.get_or_create(KIND, parts, compute, encode_features,
                               lambda entry: decode_features(entry, device), group=group)


def encode_features(features: Any) -> tuple[dict[str, Any], bytes]:
    """Meta and safetensors payload of one video's features."""
    from safetensors.torch import save

    embeds = features.pooler_output
    deepstack = features.deepstack_features or []
    tensors = {}
    for v, tensor in enumerate(embeds):
        tensors[f"embeds.{v}"] = tensor.detach().to("cpu").contiguous()
    for layer, per_video in enumerate(deepstack):
        for v, tensor in enumerate(per_video):
            tensors[f"deepstack.{layer}.{v}"] = tensor.detach().to("cpu").contiguous()
    meta = {"videos": len(embeds), "deepstack_layers": len(deepstack)}
    return meta, save(tensors)


def decode_features(entry: Entry, device: Any) -> Any:
    """The features of an entry, on ``device``, in the structure ``get_video_features``
    returns (a tuple per video, a list of tuples per DeepStack layer)."""
    from safetensors import SafetensorError
    from safetensors.torch import load
    from transformers.models.qwen3_vl.modeling_qwen3_vl import (
        BaseModelOutputWithDeepstackFeatures,
    )

    try:
        tensors = load(bytes(entry.payload))
    except SafetensorError as exc:
        raise CorruptEntryError(f"not a safetensors payload: {exc}") from exc
    videos, layers = int(entry.meta["videos"]), int(entry.meta["deepstack_layers"])
    embeds = tuple(tensors[f"embeds.{v}"].to(device) for v in range(videos))
    deepstack = [tuple(tensors[f"deepstack.{layer}.{v}"].to(device) for v in range(videos))
                 for layer in range(layers)]
    # get_video_features itself stores these per-video tuples in the two fields (wider than
    # their annotations, Tensor and list[Tensor]), and the model reads them back as such
    return BaseModelOutputWithDeepstackFeatures(pooler_output=cast(Any, embeds),
                                                deepstack_features=cast(Any, deepstack))
