"""``vidground finetune`` (train a LoRA/QLoRA adapter) and ``vidground finetune merge``.

A thin shell over :mod:`vidground.finetune`; imports only Typer and Rich until a command runs.
``vidground finetune --data ...`` is short for ``vidground finetune run --data ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..cli_support import command_group, eta_bar, run_action, stderr, stdout

if TYPE_CHECKING:
    from .train import StepLog

T = TypeVar("T")


finetune_app = command_group(
    "finetune",
    "Fine-tune Qwen3-VL on your own grounding data (LoRA, or QLoRA on a CUDA GPU), with "
    "the prompts, frames and answer form vidground uses; evaluates --val before and "
    "after. 'vidground finetune merge' writes base + adapter as one checkpoint. "
    "See docs/finetune.md.")


def _run(action: Callable[[], T]) -> T:
    return run_action(action, interrupted="interrupted: run the same command with --resume to "
                      "go on from the last checkpoint")


@finetune_app.command("run")
def run_command(
    data: Annotated[Path, typer.Option("--data", help="training annotations (any format "
                                                      "'vidground eval' reads)")],
    out: Annotated[Path, typer.Option("--out", help="folder for the adapter, checkpoints "
                                                    "and reports")],
    val: Annotated[Path | None, typer.Option(
        "--val", help="validation annotations, evaluated before and after")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="annotation format: jsonl, charades-sta, activitynet, timelens, qvhighlights "
             "(default: guessed from the file)")] = None,
    videos: Annotated[Path | None, typer.Option(
        help="folder holding the videos (default: the annotation file's folder)")] = None,
    val_videos: Annotated[Path | None, typer.Option(
        help="folder holding --val's videos (default: --videos)")] = None,
    allow_outside_videos: Annotated[bool, typer.Option(
        "--allow-outside-videos", help="let the annotations name videos outside the video "
                                       "folder (absolute paths, '..')")] = False,
    base: Annotated[str | None, typer.Option(
        "--base", help="base model id or local path (default: 4B with a GPU, 2B on CPU)")
                    ] = None,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank r")] = 16,
    lora_alpha: Annotated[int | None, typer.Option(help="LoRA alpha (default 2 x rank)")
                          ] = None,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout")] = 0.05,
    lora_targets: Annotated[str, typer.Option(
        help="comma-separated linear layers of the language model that get LoRA")
                            ] = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    train_vision: Annotated[bool, typer.Option(
        help="LoRA on the vision tower's blocks too (frozen by default)")] = False,
    qlora: Annotated[bool, typer.Option(
        help="4-bit base (bitsandbytes NF4); needs a CUDA GPU")] = False,
    epochs: Annotated[float, typer.Option(help="passes over the training examples")] = 3.0,
    max_steps: Annotated[int, typer.Option(help="stop after N optimizer steps (overrides "
                                                "--epochs)")] = -1,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 1e-4,
    batch: Annotated[int, typer.Option(help="examples per device step")] = 1,
    grad_accum: Annotated[int, typer.Option(help="steps accumulated per optimizer step")] = 1,
    warmup_ratio: Annotated[float, typer.Option(help="share of steps warming up")] = 0.03,
    scheduler: Annotated[str, typer.Option(help="learning-rate schedule: cosine, linear, "
                                                "constant...")] = "cosine",
    gradient_checkpointing: Annotated[bool, typer.Option(
        help="recompute activations in the backward pass (less memory)")] = True,
    save_steps: Annotated[int, typer.Option(help="save a checkpoint every N steps")] = 100,
    seed: Annotated[int, typer.Option(help="seed of LoRA init, data order and --eval-limit")
                    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1")] = "auto",
    resume: Annotated[bool, typer.Option(help="go on from the newest checkpoint in OUT")
                      ] = False,
    evaluate: Annotated[bool, typer.Option("--eval/--no-eval",
                                           help="evaluate --val before and after")] = True,
    eval_limit: Annotated[int | None, typer.Option(help="evaluate N --val samples drawn "
                                                        "at random")] = None,
    fps: Annotated[str | None, typer.Option("--fps", help="frames per second, or "
                                                          "'adaptive'")] = None,
    max_frames: Annotated[int | None, typer.Option(help="most frames per model call")
                          ] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--set", help="any locate option, KEY=VALUE (e.g. --set max_pixels_per_frame=200704); "
                      "training and evaluation both use them")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Train a LoRA adapter on TRAIN and compare the base and the adapter on VAL."""

    def work() -> None:
        from .config import FinetuneConfig
        from .train import finetune

        config = FinetuneConfig(
            data=data, out=out, val=val, dataset=dataset, videos=videos,
            val_videos=val_videos, allow_outside_videos=allow_outside_videos, base=base,
            options=_options(fps, max_frames, option),
            lora_rank=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
            lora_targets=tuple(t.strip() for t in lora_targets.split(",") if t.strip()),
            train_vision=train_vision, qlora=qlora, epochs=epochs, max_steps=max_steps, lr=lr,
            batch=batch, grad_accum=grad_accum, warmup_ratio=warmup_ratio,
            scheduler=scheduler, gradient_checkpointing=gradient_checkpointing,
            save_steps=save_steps, seed=seed, device=device, resume=resume,
            evaluate=evaluate, eval_limit=eval_limit)
        say = (lambda text: None) if quiet else \
            (lambda text: stderr.print(f"[dim]{escape(text)}[/]", highlight=False))
        with _steps(not quiet) as on_step:
            result = finetune(config, log=say, on_step=on_step)
        comparison = result.comparison()
        if comparison is not None:
            _show(comparison)
        stdout.print(f"adapter: {result.adapter_dir}  (steps {result.start_step} -> "
                     f"{result.global_step}; report {result.report_path})")
        stdout.print(f"use it: VIDGROUND_ADAPTER={result.adapter_dir} vidground locate ... "
                     f"--model {result.base_model}")

    _run(work)


@finetune_app.command("merge")
def merge_command(
    adapter: Annotated[Path, typer.Argument(help="the adapter folder (OUT/adapter)")],
    out: Annotated[Path, typer.Option("--out", help="folder for the merged checkpoint")],
    base: Annotated[str | None, typer.Option(
        "--base", help="base model (default: the one the adapter was trained on)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, bfloat16, float16, float32")] = "auto",
) -> None:
    """Write base + adapter as one full checkpoint (for --model, or any server)."""

    def work() -> None:
        from .model import merge

        path = merge(adapter, out, base=base, device=device, dtype=dtype)
        stdout.print(f"merged checkpoint: {path}  (use it: --model {path})")

    _run(work)


def _options(fps: str | None, max_frames: int | None, items: list[str] | None) -> Any:
    """The locate options of training and evaluation: no reasoning line unless --set."""
    from ..evaluation.grid import parse_value
    from ..options import LocateOptions
    from .config import TRAIN_OPTION_DEFAULTS, FinetuneError

    values: dict[str, Any] = dict(TRAIN_OPTION_DEFAULTS)
    if fps is not None:
        values["frame_sampling_rate"] = fps if fps == "adaptive" else parse_value(fps)
    if max_frames is not None:
        values["max_frames"] = max_frames
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FinetuneError(f"--set {item!r}: write KEY=VALUE")
        values[key.strip().replace("-", "_")] = parse_value(value)
    return LocateOptions.from_mapping(values)


@contextmanager
def _steps(enabled: bool) -> Iterator[Callable[[StepLog], None]]:
    """A Rich bar with the loss on a terminal; otherwise a line at every twentieth step."""
    if not enabled:
        yield lambda s: None
        return
    if stderr.is_terminal:
        with eta_bar() as bar:
            task = bar.add_task("training", total=None)

            def update(s: StepLog) -> None:
                bar.update(task, completed=s.step, total=s.max_steps,
                           description=f"training · loss {s.loss:.4f}")

            yield update
        return

    def lines(s: StepLog) -> None:
        every = max(1, s.max_steps // 20)
        if s.step % every == 0 or s.step == s.max_steps:
            stderr.print(escape(f"step {s.step}/{s.max_steps} loss {s.loss:.4f} "
                                f"lr {s.learning_rate:.2e} epoch {s.epoch:.2f}"),
                         highlight=False)

    yield lines


def _show(comparison: dict[str, Any]) -> None:
    from ..evaluation.report import DEFAULT_METRICS, tables

    console = stdout if stdout.is_terminal else Console(highlight=False, width=200)
    for table in tables(comparison, DEFAULT_METRICS.get(comparison["dataset"], ("timelens",))):
        console.print(table)
