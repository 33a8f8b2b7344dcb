"""Structured answers (opt-in): a grounding answer as JSON that a schema holds the model to.

With ``VIDGROUND_STRUCTURED_OUTPUT=true`` (``--structured``), a *grounding* question (the
prompt :func:`~vidground.grounding.prompts.build_prompt` writes; yes/no checks and ``describe``
stay free text) is asked for :data:`grounding_schema`'s JSON::

    {"spans": [{"start": 12.5, "end": 18.0}], "reasoning": "he jumps at 12.5 s"}

* OpenAI-compatible servers get ``response_format`` = ``{"type": "json_schema", ...}``
  (:func:`response_format`; vLLM and SGLang constrain decoding to it). A server that refuses
  it (HTTP 400/422 naming ``response_format``, ``json_schema``, guided or structured decoding)
  is asked again in free text, and the backend remembers: the refusal is logged once.
* The local backend constrains ``generate`` with a grammar compiled from the same schema by
  `xgrammar <https://github.com/mlc-ai/xgrammar>`_ (:class:`JsonConstraint`; the optional
  extra ``vidground[structured]``, imported on first use).

``reasoning`` is in the schema only when the prompt asks for reasoning. The schema bounds the
answer part: times are numbers in ``[0, MAX_TIME_S]`` (at most six decimals), at most
``MAX_SPANS`` spans; a reasoning cut short by ``max_new_tokens`` leaves the JSON unfinished, and
:func:`~vidground.grounding.answer.parse_answer` still reads its spans (it reads the JSON's
``start``/``end`` keys and ``reasoning``).

Who wants structure is decided per call: the backend's setting, unless the code asking runs
inside :func:`structured_answers` (a locate option, an evaluation grid axis).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..errors import BackendError
from ..prompt import REASONING_LABEL, Prompt

log = logging.getLogger(__name__)

SCHEMA_NAME = "grounding_answer"
#: the largest time a structured answer may state, in seconds (bounds the digits of a number)
MAX_TIME_S = 1_000_000
MAX_SPANS = 64
#: the grammar library the local backend uses, and the extra that installs it
GRAMMAR_LIBRARY = "xgrammar"
EXTRA_HINT = ("pip install 'vidground[structured]' (xgrammar), or turn structured answers off "
              "(VIDGROUND_STRUCTURED_OUTPUT=false, --no-structured)")
#: How a grounding prompt's instruction begins (English, Chinese): ``build_prompt``'s first line.
GROUNDING_LEADS = ("Event:", "事件：")
#: words in a server's error that say it refused the JSON-schema request, not the rest
_REFUSAL_WORDS = ("response_format", "json_schema", "json schema", "guided", "structured",
                  "grammar", "xgrammar")


def grounding_schema(*, reasoning: bool = True, max_spans: int = MAX_SPANS) -> dict[str, Any]:
    """The JSON schema of a structured grounding answer: ``spans``, then ``reasoning`` (a
    string, required) when ``reasoning``."""
    time = {"type": "number", "minimum": 0, "maximum": MAX_TIME_S}
    span = {"type": "object", "properties": {"start": time, "end": time},
            "required": ["start", "end"], "additionalProperties": False}
    properties: dict[str, Any] = {"spans": {"type": "array", "items": span,
                                            "maxItems": max_spans}}
    if reasoning:
        properties["reasoning"] = {"type": "string"}
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def asks_reasoning(prompt: Prompt) -> bool:
    """Whether a grounding prompt asks for a reasoning line."""
    return any(label in prompt.user for label in REASONING_LABEL.values())


def schema_for(prompt: Prompt) -> dict[str, Any]:
    """The schema a grounding ``prompt`` is answered in."""
    return grounding_schema(reasoning=asks_reasoning(prompt))


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI ``response_format`` asking for ``schema``."""
    return {"type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}


def is_grounding_prompt(prompt: Prompt) -> bool:
    """Whether ``prompt`` asks when an event happens (the prompt structure applies to)."""
    return prompt.user.lstrip().startswith(GROUNDING_LEADS)


def structured_prompt(prompt: Prompt) -> Prompt:
    """``prompt`` with a last line asking for the JSON form (with ``reasoning`` when the prompt
    asked for reasoning)."""
    zh = prompt.language == "zh"
    reasoning = asks_reasoning(prompt)
    example: dict[str, Any] = {"spans": [{"start": 12.5, "end": 18.0}]}
    if reasoning:
        example["reasoning"] = ("球员在 12.5 秒起跳，18.0 秒落地。" if zh
                                else "the player jumps at 12.5 s and lands at 18.0 s.")
    form = json.dumps(example, ensure_ascii=False)
    if zh:
        line = (f"请改用 JSON 作答，格式严格如下：{form}。每次发生写 spans 中的一项，按时间顺序；"
                '如果视频中没有发生该事件，写 "spans": []。')
    else:
        line = (f"Write the answer as JSON instead, exactly like: {form} - one item in \"spans\" "
                "per occurrence, in time order; \"spans\": [] if the event does not happen.")
    return dataclasses.replace(prompt, user=f"{prompt.user}\n{line}")


def refuses_structure(status: int, message: str) -> bool:
    """Whether an HTTP error is a server refusing ``response_format`` (then ask in free text)."""
    return status in (400, 422, 501) and any(w in message.lower() for w in _REFUSAL_WORDS)


# ---------------------------------------------------------------------------------------------
# who wants structure: a backend's setting, or the caller's choice for the code it runs
# ---------------------------------------------------------------------------------------------

_wanted: ContextVar[bool | None] = ContextVar("vidground_structured", default=None)


@contextmanager
def structured_answers(on: bool | None) -> Iterator[None]:
    """Inside the block, grounding questions are (``True``) or are not (``False``) asked for
    structured answers, whatever the backend's setting; ``None`` leaves the setting."""
    token = _wanted.set(on)
    try:
        yield
    finally:
        _wanted.reset(token)


def structure_wanted(default: bool) -> bool:
    """The choice of the enclosing :func:`structured_answers`, else ``default``."""
    chosen = _wanted.get()
    return default if chosen is None else chosen


class Refusals:
    """A server's refusal of structured answers: remembered, logged once (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reason: str | None = None

    @property
    def refused(self) -> bool:
        return self.reason is not None

    def refuse(self, where: str, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
        log.warning("the model server at %s refused structured answers (%s); asking in free "
                    "text from now on", where, reason)


# ---------------------------------------------------------------------------------------------
# local constrained decoding (xgrammar)
# ---------------------------------------------------------------------------------------------


def grammar_library() -> Any:
    """The ``xgrammar`` module; :class:`BackendError` saying how to install it when missing."""
    try:
        return importlib.import_module(GRAMMAR_LIBRARY)
    except ImportError as exc:
        raise BackendError(f"structured answers on the local backend need the {GRAMMAR_LIBRARY} "
                           f"library: {EXTRA_HINT}") from exc


def grammar_library_installed() -> bool:
    """Whether the grammar library can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(GRAMMAR_LIBRARY) is not None
    except (ImportError, ValueError):  # a broken install, or blocked in sys.modules
        return False


class JsonConstraint:
    """JSON schemas compiled for one tokenizer (each once); :meth:`logits_processor` gives a
    fresh transformers logits processor for each ``generate`` call."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        xgr = grammar_library()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(info)  # it caches what it compiled

    def logits_processor(self, schema: dict[str, Any]) -> Any:
        """A new processor holding one call's decoding to ``schema``."""
        from xgrammar.contrib.hf import LogitsProcessor

        compiled = self._compiler.compile_json_schema(json.dumps(schema),
                                                      any_whitespace=False)
        return LogitsProcessor(compiled)


__all__ = ["GROUNDING_LEADS", "JsonConstraint", "MAX_SPANS", "MAX_TIME_S", "Refusals",
           "SCHEMA_NAME", "asks_reasoning", "grammar_library", "grammar_library_installed",
           "grounding_schema", "is_grounding_prompt", "refuses_structure", "response_format",
           "schema_for", "structure_wanted", "structured_answers", "structured_prompt"]
