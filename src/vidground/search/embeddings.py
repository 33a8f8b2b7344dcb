"""Text embeddings for the search index (optional): ``VIDGROUND_EMBED_MODEL`` names a local
text-embedding model folder (a sentence-transformers or plain transformers model: its
``config.json``, weights and tokenizer), and every segment written gets a vector; searches then
fuse the text rank with vector similarity (:meth:`vidground.search.store.SearchStore.rank`).

The model is run with transformers alone: the token embeddings of the last layer pooled as the
folder's sentence-transformers ``1_Pooling/config.json`` says (``[CLS]`` or the mean over the
tokens; the mean when the folder has no such file), then L2-normalised, so the dot product of
two vectors is their cosine similarity. Nothing is downloaded; torch and transformers load on
first use.

>>> embedder = configured_embedder()            # None when VIDGROUND_EMBED_MODEL is unset
>>> embedder.embed(["a red car stops"]).shape    # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotAvailableError

if TYPE_CHECKING:
    import numpy as np

EMBED_MODEL_ENV = "VIDGROUND_EMBED_MODEL"
#: Texts embedded per forward pass.
BATCH = 32
#: Tokens kept of each text (segments are short; a long OCR block is cut).
MAX_TOKENS = 256


class Embedder:
    """A text-embedding model in the folder ``path``; :attr:`name` (the folder's name) is what
    an index records its vectors were made with."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not (self.path / "config.json").is_file():
            raise ModelNotAvailableError(
                f"the embedding model folder {self.path} has no config.json; set "
                f"{EMBED_MODEL_ENV} to a downloaded text-embedding model folder (e.g. "
                "`hf download sentence-transformers/all-MiniLM-L6-v2 --local-dir minilm`) "
                "or unset it for text search alone")
        self.name = self.path.resolve().name
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, str] | None = None

    def _load(self) -> tuple[Any, Any, str]:
        with self._lock:
            if self._loaded is None:
                try:
                    from transformers import AutoModel, AutoTokenizer
                    from transformers.utils import logging as hf_logging

                    bars = hf_logging.is_progress_bar_enabled()
                    hf_logging.disable_progress_bar()  # no bar on a search's stderr
                    try:
                        tokenizer = AutoTokenizer.from_pretrained(self.path)
                        model = AutoModel.from_pretrained(self.path).eval()
                    finally:
                        if bars:
                            hf_logging.enable_progress_bar()
                except Exception as exc:  # noqa: BLE001 - missing files, bad folder
                    raise ModelNotAvailableError(
                        f"cannot load the embedding model {self.path} ({exc}); set "
                        f"{EMBED_MODEL_ENV} to a text-embedding model folder with its "
                        "tokenizer (torch and transformers: pip install 'vidground[local]'), "
                        "or unset it for text search alone") from exc
                self._loaded = (tokenizer, model, pooling(self.path))
            return self._loaded

    @property
    def dim(self) -> int:
        """The vectors' length."""
        _, model, _ = self._load()
        return int(model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 vector per text, shape ``(len(texts), dim)``."""
        import numpy as np
        import torch

        tokenizer, model, mode = self._load()
        out: list[np.ndarray] = []
        for lo in range(0, len(texts), BATCH):
            batch = [t or " " for t in texts[lo:lo + BATCH]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS,
                            return_tensors="pt")
            if "token_type_ids" in enc and "token_type_ids" not in _inputs(model):
                enc.pop("token_type_ids")
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            out.append(pooled.numpy().astype(np.float32))
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out)


def _inputs(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def pooling(folder: Path) -> str:
    """``cls`` or ``mean``, as the folder's sentence-transformers pooling config says."""
    config = folder / "1_Pooling" / "config.json"
    if config.is_file():
        try:
            if json.loads(config.read_text()).get("pooling_mode_cls_token"):
                return "cls"
        except (OSError, ValueError):
            pass
    return "mean"


def embed_model_path() -> str | None:
    """``VIDGROUND_EMBED_MODEL`` when set."""
    value = os.environ.get(EMBED_MODEL_ENV, "").strip()
    return value or None


@functools.lru_cache(maxsize=2)
def _embedder(path: str) -> Embedder:
    return Embedder(path)


def configured_embedder() -> Embedder | None:
    """The process's embedder for ``VIDGROUND_EMBED_MODEL`` (loaded once), or None."""
    path = embed_model_path()
    return _embedder(os.path.realpath(path)) if path else None

