"""What a fine-tune is asked to do, in one record (the ``vidground finetune`` flags).

A leaf module: it imports only the options and errors, so the CLI can build and check a
:class:`FinetuneConfig` before torch is imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VidgroundError
from ..options import LocateOptions

#: Linear layers of Qwen3-VL's language model that get LoRA by default (attention and MLP).
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                    "gate_proj", "up_proj", "down_proj")
#: Linear layers of the vision tower's blocks (only with ``train_vision``).
VISION_TARGETS: tuple[str, ...] = ("qkv", "proj", "linear_fc1", "linear_fc2")

#: Locate options a fine-tune uses unless told otherwise: our data has spans but no reasoning
#: text, so the prompt is the one ``locate --no-reasoning`` sends ("write only the answer line")
#: and the target is exactly that line.
TRAIN_OPTION_DEFAULTS: dict[str, Any] = {"return_reasoning": False}


class FinetuneError(VidgroundError):
    """A fine-tuning input or setting that cannot be used (the message says what to change)."""

    code = "finetune_error"


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tune.

    ``options`` are the :class:`~vidground.LocateOptions` whose sampling, frame size and prompt
    the training samples are built with (and with which ``--val`` is evaluated before and
    after). ``lora_targets`` are module names in the language model; ``train_vision`` adds
    LoRA to the vision tower's blocks too (frozen otherwise). ``max_steps`` > 0 overrides
    ``epochs``. ``qlora`` loads the base in 4 bits (bitsandbytes, CUDA only).
    ``allow_outside_videos`` lets the annotations name videos outside the video folder
    (absolute paths, ``..``), which are refused otherwise.
    """

    data: Path
    out: Path
    val: Path | None = None
    dataset: str | None = None
    videos: Path | None = None
    val_videos: Path | None = None
    base: str | None = None
    options: LocateOptions = field(default_factory=lambda: LocateOptions(**TRAIN_OPTION_DEFAULTS))
    lora_rank: int = 16
    lora_alpha: int | None = None
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    train_vision: bool = False
    qlora: bool = False
    epochs: float = 3.0
    max_steps: int = -1
    lr: float = 1e-4
    batch: int = 1
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    gradient_checkpointing: bool = True
    save_steps: int = 100
    save_total_limit: int = 2
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    evaluate: bool = True
    eval_limit: int | None = None
    allow_outside_videos: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.lora_rank >= 1, f"--lora-rank must be at least 1, got {self.lora_rank}"),
            (self.lora_alpha is None or self.lora_alpha >= 1,
             f"--lora-alpha must be at least 1, got {self.lora_alpha}"),
            (0.0 <= self.lora_dropout < 1.0,
             f"--lora-dropout must be in [0, 1), got {self.lora_dropout}"),
            (bool(self.lora_targets), "--lora-targets names no module"),
            (self.epochs > 0 or self.max_steps > 0, "--epochs must be above 0"),
            (self.lr > 0, f"--lr must be above 0, got {self.lr}"),
            (self.batch >= 1, f"--batch must be at least 1, got {self.batch}"),
            (self.grad_accum >= 1, f"--grad-accum must be at least 1, got {self.grad_accum}"),
            (0.0 <= self.warmup_ratio < 1.0,
             f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.save_steps >= 1, f"--save-steps must be at least 1, got {self.save_steps}"),
            (self.save_total_limit >= 1,
             f"--save-total-limit must be at least 1, got {self.save_total_limit}"),
            (self.eval_limit is None or self.eval_limit >= 1,
             f"--eval-limit must be at least 1, got {self.eval_limit}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FinetuneError(message)

    @property
    def alpha(self) -> int:
        """LoRA alpha: as given, else twice the rank."""
        return self.lora_alpha or 2 * self.lora_rank

    @property
    def adapter_dir(self) -> Path:
        return self.out / "adapter"

    @property
    def checkpoints_dir(self) -> Path:
        return self.out / "checkpoints"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (paths as text, options as a mapping)."""
        values = asdict(self)
        values["options"] = self.options.to_mapping()
        return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
                for k, v in values.items()}
