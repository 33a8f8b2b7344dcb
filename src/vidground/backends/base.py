"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..video.decode import Frame


@dataclass(frozen=True)
class Prompt:
    """What the model is asked. ``user`` comes after the frames in the user turn."""

    system: str
    user: str
    language: str = "en"


TokenCallback = Callable[[str], None]


@runtime_checkable
class Backend(Protocol):
    """A vision-language model that reads timestamped frames and answers in text.

    ``frames`` are in time order and already resized for the model; each frame's ``time`` is the
    real time the model must be told (Qwen3-VL's ``<t seconds>`` form).
    """

    @property
    def model_name(self) -> str: ...

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        """Answer ``prompt`` about ``frames``; ``on_token`` receives streamed text pieces."""
        ...
