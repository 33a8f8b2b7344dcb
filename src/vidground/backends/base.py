"""The contract every model backend keeps: :class:`Backend` (what the pipeline calls) and
:class:`BaseBackend` (the optional capabilities, each declared with its default, so a backend
states what it can do instead of the pipeline probing for attributes).

==========================  =====================================================  ==========
member                      meaning                                                default
==========================  =====================================================  ==========
``model_name``              the model's id, shown in responses                     (required)
``generate``                answer a prompt about timestamped frames               (required)
``max_concurrency``         how many requests may be in flight at once             1
``max_frames_per_request``  most frames one request may carry (None: no limit)     None
``generate_many``           several (frames, prompt) requests, answers in order    one by one
``yes_probability``         P(yes) of a yes/no question (None: not available)      None
``is_loaded``               the weights are in memory (remote backends: True)      True
``load``                    load the weights now (the server's preload)            nothing
``structured_output``       grounding answers asked as JSON held to a schema       False
``needs_pixels``            reads decoded pixels (False: the frame cache's stored  True
                            JPEG bytes are enough, so a repeat decodes nothing)
==========================  =====================================================  ==========

``structured_output`` is the backend's default; code run inside
:func:`vidground.backends.structured.structured_answers` chooses for itself. A backend that
cannot hold answers to a schema keeps ``False`` and answers in free text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ..frame import Frame
from ..prompt import Prompt

__all__ = ["Backend", "BaseBackend", "Frame", "Prompt", "TokenCallback"]

TokenCallback = Callable[[str], None]


@runtime_checkable
class Backend(Protocol):
    """A vision-language model that reads timestamped frames and answers in text.

    ``frames`` are in time order and already resized for the model; each frame's ``time`` is the
    real time the model must be told (Qwen3-VL's ``<t seconds>`` form).
    """

    @property
    def model_name(self) -> str: ...

    max_concurrency: int
    max_frames_per_request: int | None
    needs_pixels: bool

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        """Answer ``prompt`` about ``frames``; ``on_token`` receives streamed text pieces."""
        ...

    def generate_many(self, requests: Sequence[tuple[Sequence[Frame], Prompt]], *,
                      max_new_tokens: int = 512) -> list[str]: ...

    def yes_probability(self, frames: Sequence[Frame], prompt: Prompt) -> float | None: ...

    @property
    def is_loaded(self) -> bool: ...

    def load(self) -> None: ...


class BaseBackend:
    """The optional part of :class:`Backend` with its defaults; subclasses override what they
    can do better (the local backend scores yes/no from token probabilities; the remote one
    sends several requests at once)."""

    max_concurrency: int = 1
    max_frames_per_request: int | None = None
    structured_output: bool = False
    needs_pixels: bool = True

    @property
    def model_name(self) -> str:
        raise NotImplementedError

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        raise NotImplementedError

    def generate_many(self, requests: Sequence[tuple[Sequence[Frame], Prompt]], *,
                      max_new_tokens: int = 512) -> list[str]:
        """Answer each request in turn (backends that can overlap them override this)."""
        return [self.generate(frames, prompt, max_new_tokens=max_new_tokens)
                for frames, prompt in requests]

    def yes_probability(self, frames: Sequence[Frame], prompt: Prompt) -> float | None:
        """P(yes) for a yes/no ``prompt``; None when the backend cannot tell (then the answer's
        text decides)."""
        return None

    @property
    def is_loaded(self) -> bool:
        return True

    def load(self) -> None:
        """Load the weights now (nothing to do for a backend without local weights)."""


class _Adapted(BaseBackend):
    """A backend written against the two required members only (``model_name``,
    ``generate``), given the declared defaults for the rest; the optional members it does
    define are used."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        for name in ("max_concurrency", "max_frames_per_request", "structured_output",
                     "needs_pixels"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))
        for name in ("generate_many", "yes_probability", "load"):
            if callable(getattr(inner, name, None)):
                setattr(self, name, getattr(inner, name))

    @property
    def model_name(self) -> str:
        return str(self._inner.model_name)  # type: ignore[attr-defined]

    @property
    def is_loaded(self) -> bool:
        return bool(getattr(self._inner, "is_loaded", True))

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        generate = self._inner.generate  # type: ignore[attr-defined]
        return str(generate(frames, prompt, max_new_tokens=max_new_tokens, on_token=on_token))


def as_backend(backend: object) -> BaseBackend:
    """``backend`` with every member of the contract: a :class:`BaseBackend` as it is, any
    other object with ``model_name`` and ``generate`` wrapped with the defaults."""
    if isinstance(backend, BaseBackend):
        return backend
    if not (hasattr(backend, "model_name") and callable(getattr(backend, "generate", None))):
        raise TypeError("a backend needs a model_name and a generate(frames, prompt, ...) "
                        "method; see vidground.backends.base.BaseBackend")
    return _Adapted(backend)
