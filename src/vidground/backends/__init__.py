"""Model backends, chosen by name: ``transformers`` (local Qwen3-VL) or ``openai``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import OptionsError
from .base import Backend, Prompt

if TYPE_CHECKING:
    from ..config import Settings

BACKEND_NAMES = ("transformers", "openai")
_ALIASES = {"local": "transformers", "hf": "transformers", "qwen": "transformers",
            "openai-compatible": "openai", "vllm": "openai", "sglang": "openai",
            "dashscope": "openai"}


def backend_kind(name: str) -> str:
    """``transformers`` or ``openai`` for a backend name or one of its aliases (``vllm``,
    ``local``...); an unknown name is returned as given, lower case."""
    return _ALIASES.get(name.lower(), name.lower())


def create_backend(settings: Settings) -> Backend:
    """Build the backend ``settings.backend`` names. Heavy imports happen here, not at import."""
    name = backend_kind(settings.backend)
    if name == "transformers":
        from .qwen_transformers import QwenTransformersBackend

        return QwenTransformersBackend.from_settings(settings)
    if name == "openai":
        from .openai_compat import OpenAICompatBackend

        return OpenAICompatBackend.from_settings(settings)
    raise OptionsError(
        f"unknown backend {settings.backend!r}; use one of {', '.join(BACKEND_NAMES)}"
    )


__all__ = ["BACKEND_NAMES", "Backend", "Prompt", "create_backend"]
