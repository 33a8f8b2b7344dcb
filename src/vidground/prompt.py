"""What a model is asked: a leaf value (like :class:`vidground.frame.Frame`) that the backends'
contract and the prompt builders share, with the fixed phrases the prompts ask the model to
write. Imports nothing of vidground, so every layer may use it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """What the model is asked. ``user`` comes after the frames in the user turn."""

    system: str
    user: str
    language: str = "en"


#: The fixed phrases a model is told to write when the event never happens.
NOT_FOUND_EN = "NOT FOUND"
NOT_FOUND_ZH = "未找到"

#: Section labels the prompts ask for (``grounding/answer.py`` splits on these and variants).
ANSWER_LABEL = {"en": "Answer:", "zh": "答案："}
REASONING_LABEL = {"en": "Reasoning:", "zh": "理由："}

__all__ = ["ANSWER_LABEL", "NOT_FOUND_EN", "NOT_FOUND_ZH", "REASONING_LABEL", "Prompt"]
