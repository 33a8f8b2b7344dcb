"""``finetune``: build the examples, evaluate the base, train the LoRA adapter with
transformers' ``Trainer``, evaluate again, and report both in one table.

Why ``Trainer`` and not TRL's ``SFTTrainer``: see docs/finetune.md (in short, our examples are
built by vidground's own sampling, decoding and processor call, with labels already masked, so
every part SFTTrainer adds - dataset formatting, chat templating, its vision collator - would be
switched off; what is left is ``Trainer``).

Layout of ``OUT``::

    OUT/adapter/             the LoRA adapter (adapter_config.json, adapter_model.safetensors)
                             and vidground_finetune.json (base model, settings, losses)
    OUT/checkpoints/         Trainer checkpoints (adapter, optimizer, scheduler, RNG, step)
    OUT/eval/before|after/   ``vidground eval`` predictions and report.json on --val
    OUT/report.json          the training summary and both evaluations
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..evaluation.loaders import Dataset, guess_kind, load_dataset
from .config import FinetuneConfig, FinetuneError
from .examples import Example, build_examples
from .model import add_lora, base_model_ref, load_base, training_precision, write_meta

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class StepLog:
    """One logged training step."""

    step: int
    max_steps: int
    loss: float
    learning_rate: float
    epoch: float


@dataclass
class FinetuneResult:
    """What a fine-tune produced."""

    adapter_dir: Path
    base_model: str
    examples: int
    start_step: int
    global_step: int
    losses: list[StepLog] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    report_path: Path | None = None

    def comparison(self) -> dict[str, Any] | None:
        """A ``vidground eval``-shaped report with two runs, ``before`` and ``after``."""
        if self.before is None or self.after is None:
            return None
        runs = []
        for name, report in (("before (base)", self.before), ("after (adapter)", self.after)):
            runs.append({**report["runs"][0], "name": name})
        return {"dataset": self.after["dataset"], "runs": runs}


def load_split(path: Path, kind: str | None, videos: Path | None, *,
               allow_outside: bool = False) -> Dataset:
    """A training or validation file in any format ``vidground eval`` reads; videos are looked
    for in ``videos`` (default: the annotation file's folder), and must lie inside it unless
    ``allow_outside`` (``--allow-outside-videos``)."""
    data = load_dataset(kind or guess_kind(path), path, videos or path.parent,
                        allow_outside=allow_outside)
    if not data.samples:
        raise FinetuneError(f"none of the {data.total} samples of {path} has its video in "
                            f"{data.videos}; pass --videos")
    return data


def finetune(config: FinetuneConfig, *, log: LogFn | None = None,
             on_step: Callable[[StepLog], None] | None = None) -> FinetuneResult:
    """Run the whole fine-tune that ``config`` describes (see the module docstring)."""
    say = log or (lambda text: None)
    checkpoint = _resume_point(config)  # refused at once when there is nothing to resume
    if config.qlora:
        from ..backends.qwen_transformers import resolve_device
        from .model import quantization

        quantization(resolve_device(config.device))  # refused at once where it cannot run
    base = base_model_ref(config)
    train = load_split(config.data, config.dataset, config.videos,
                       allow_outside=config.allow_outside_videos)
    val = load_split(config.val, config.dataset, config.val_videos or config.videos,
                     allow_outside=config.allow_outside_videos) \
        if config.val is not None else None
    settings = Settings(backend="transformers", model=base, device=config.device, adapter=None)
    from ..cache import open_cache

    cache = open_cache(settings)
    examples = build_examples(train.samples, config.options, cache=cache)
    say(f"{len(examples)} training examples from {len(train.samples)} samples of {config.data}"
        + (f" ({len(train.missing)} skipped: video not found)" if train.missing else ""))
    config.out.mkdir(parents=True, exist_ok=True)

    before = None
    if val is not None and config.evaluate:
        say(f"evaluating the base model on {len(val.samples)} samples of {config.val}")
        before = _evaluate(settings, val, config, "before", overwrite=not config.resume)

    started = time.perf_counter()
    start_step, global_step, losses = _train(config, base, examples, cache, checkpoint, say,
                                             on_step)
    train_s = time.perf_counter() - started

    after = None
    if val is not None and config.evaluate:
        say(f"evaluating the fine-tuned model on {len(val.samples)} samples of {config.val}")
        after = _evaluate(settings.model_copy(update={"adapter": str(config.adapter_dir)}),
                          val, config, "after", overwrite=True)
    result = FinetuneResult(config.adapter_dir, base, len(examples), start_step, global_step,
                            losses, before, after)
    summary = {"base_model": base, "adapter": str(config.adapter_dir),
               "examples": len(examples), "start_step": start_step,
               "global_step": global_step, "train_s": round(train_s, 3),
               "losses": [s.__dict__ for s in losses], "config": config.to_dict(),
               "evaluation": result.comparison()}
    result.report_path = config.out / "report.json"
    result.report_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n",
                                  encoding="utf-8")
    return result


def _train(config: FinetuneConfig, base: str, examples: list[Example], cache: Any,
           checkpoint: Path | None, say: LogFn, on_step: Callable[[StepLog], None] | None
           ) -> tuple[int, int, list[StepLog]]:
    """Train (from ``checkpoint`` when resuming) and save the adapter; (first step, last
    step, the logged losses)."""
    import torch
    from transformers import set_seed

    set_seed(config.seed)
    model, processor, device = load_base(base, device=config.device, qlora=config.qlora)
    model = add_lora(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    say(f"LoRA r={config.lora_rank} alpha={config.alpha} on {base} ({device}): "
        f"{trainable:,} of {total:,} parameters train")
    trainer, losses = make_trainer(config, model, processor, examples, cache=cache,
                                   device=device, on_step=on_step)
    start_step = _checkpoint_step(checkpoint) if checkpoint else 0
    if checkpoint:
        say(f"resuming from {checkpoint} (step {start_step})")
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    global_step = int(trainer.state.global_step)
    config.adapter_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(config.adapter_dir))
    write_meta(config.adapter_dir, base, config, global_step=global_step,
               losses=[s.loss for s in losses])
    say(f"adapter saved to {config.adapter_dir} after step {global_step}")
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return start_step, global_step, losses


def make_trainer(config: FinetuneConfig, model: Any, processor: Any, examples: list[Example],
                 *, cache: Any = None, device: str = "cpu",
                 on_step: Callable[[StepLog], None] | None = None) -> tuple[Any, list[StepLog]]:
    """A transformers ``Trainer`` for ``model`` (with its LoRA adapter) on ``examples``, and
    the list it appends each logged step to."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    from .encode import Collator, ExampleDataset, ExampleEncoder

    encoder = ExampleEncoder(processor, cache=cache)
    losses: list[StepLog] = []

    class Steps(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                entry = StepLog(int(state.global_step), int(state.max_steps),
                                float(logs["loss"]), float(logs.get("learning_rate", 0.0)),
                                float(logs.get("epoch", 0.0)))
                losses.append(entry)
                if on_step is not None:
                    on_step(entry)

    precision: dict[str, Any] = training_precision(device)  # bf16/fp16 flags, as keywords
    args = TrainingArguments(
        output_dir=str(config.checkpoints_dir), num_train_epochs=config.epochs,
        max_steps=config.max_steps, per_device_train_batch_size=config.batch,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
        lr_scheduler_type=config.scheduler, **_warmup(TrainingArguments, config.warmup_ratio),
        weight_decay=0.0, max_grad_norm=1.0, logging_steps=1, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        report_to=[], remove_unused_columns=False, label_names=["labels"],
        **_checkpointing(TrainingArguments, config.gradient_checkpointing), seed=config.seed,
        data_seed=config.seed, dataloader_num_workers=0, disable_tqdm=True,
        use_cpu=not device.startswith("cuda"),
        optim="paged_adamw_8bit" if config.qlora else "adamw_torch", **precision)
    trainer = Trainer(model=model, args=args, train_dataset=ExampleDataset(examples, encoder),
                      data_collator=Collator(encoder.pad_id), callbacks=[Steps()])
    trainer.remove_callback(PrinterCallback)  # our callback reports the steps
    return trainer, losses


def _warmup(arguments: type[Any], ratio: float) -> dict[str, Any]:
    """transformers 5 takes a warm-up ratio as a float ``warmup_steps``; 4.x as
    ``warmup_ratio``."""
    import inspect

    if "warmup_ratio" in inspect.signature(arguments.__init__).parameters:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def _checkpointing(arguments: type[Any], enabled: bool) -> dict[str, Any]:
    """Gradient (activation) checkpointing, non-reentrant, under the name this transformers
    release uses (5.x renamed ``gradient_checkpointing`` to ``activation_checkpointing``)."""
    import inspect

    name = "activation_checkpointing" \
        if "activation_checkpointing" in inspect.signature(arguments.__init__).parameters \
        else "gradient_checkpointing"
    return {name: enabled, f"{name}_kwargs": {"use_reentrant": False}}


def _resume_point(config: FinetuneConfig) -> Path | None:
    """The newest checkpoint to resume from (with ``resume``), else None."""
    if not config.resume:
        return None
    found = sorted(config.checkpoints_dir.glob("checkpoint-*"), key=_checkpoint_step)
    if not found:
        raise FinetuneError(f"--resume: no checkpoint in {config.checkpoints_dir} yet; run "
                            "without --resume to start")
    return found[-1]


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _evaluate(settings: Settings, data: Dataset, config: FinetuneConfig, name: str, *,
              overwrite: bool) -> dict[str, Any]:
    """``vidground eval``'s run and report on ``data`` with the training's locate options."""
    import torch

    from ..evaluation.evaluate import evaluate
    from ..evaluation.grid import plan_runs
    from ..grounding import Grounder

    grounder = Grounder(settings=settings)
    runs = plan_runs(base=config.options.to_mapping())
    report = evaluate(data, grounder, runs, config.out / "eval" / name,
                      limit=config.eval_limit, seed=config.seed, overwrite=overwrite)
    del grounder
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return report
