"""The base model, its LoRA adapter, and merging the two.

LoRA comes from ``peft``; only the adapter's weights train (every base weight is frozen, the
vision tower has no adapter unless ``train_vision``). QLoRA loads the base in 4 bits (NF4,
double quantisation, bf16 compute) through bitsandbytes, which needs a CUDA GPU.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..backends.model_files import resolve_model_dir
from ..backends.qwen_transformers import default_model, resolve_device, resolve_dtype
from .config import VISION_TARGETS, FinetuneConfig, FinetuneError

#: Written next to the adapter: what it was trained from and how.
META_FILE = "vidground_finetune.json"


def base_model_ref(config: FinetuneConfig) -> str:
    return config.base or default_model()


def training_precision(device: str) -> dict[str, bool]:
    """``bf16`` on GPUs that have it, ``fp16`` autocast on older CUDA GPUs, fp32 elsewhere."""
    import torch

    if device.startswith("cuda"):
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": False, "fp16": False}


def target_pattern(targets: tuple[str, ...], train_vision: bool) -> str:
    """The regular expression (peft matches it against whole module names) for LoRA layers:
    ``targets`` in the language model, plus the vision blocks' linears with ``train_vision``."""
    names = "|".join(re.escape(t) for t in targets)
    pattern = rf".*language_model\..*\.(?:{names})"
    if train_vision:
        vision = "|".join(re.escape(t) for t in VISION_TARGETS)
        pattern = rf"(?:{pattern})|(?:.*visual\.blocks\..*\.(?:{vision}))"
    return pattern


def load_base(model_ref: str, *, device: str = "auto", qlora: bool = False,
              model_source: str = "huggingface") -> tuple[Any, Any, str]:
    """(model, processor, device) for training: bf16 on CUDA when supported, fp32 on CPU;
    4-bit with ``qlora``."""
    import torch
    import transformers

    resolved = resolve_device(device)
    if resolved == "mps":
        resolved = "cpu"  # bf16/fp16 training on MPS is not what peft/Trainer document
    model_dir = resolve_model_dir(model_ref, model_source)
    kwargs: dict[str, Any] = {}
    if qlora:
        kwargs.update(quantization(resolved))
    else:
        kwargs["dtype"] = resolve_dtype("auto", resolved) if resolved.startswith("cuda") \
            else torch.float32
        kwargs["device_map"] = resolved
    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir, **kwargs)
    return model, processor, resolved


def quantization(device: str) -> dict[str, Any]:
    """from_pretrained arguments for a 4-bit base, or a clear error where it cannot run."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise FinetuneError(
            "--qlora needs a CUDA GPU: bitsandbytes' 4-bit weights do not run on this machine "
            f"(device {device!r}). Train without --qlora (LoRA on the full-precision base), "
            "or run on a machine with an NVIDIA GPU")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise FinetuneError("--qlora needs bitsandbytes: pip install bitsandbytes") from None
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute), "dtype": compute, "device_map": device}


def add_lora(model: Any, config: FinetuneConfig) -> Any:
    """``model`` wrapped with a fresh LoRA adapter; every other weight frozen."""
    try:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    except ImportError:
        raise FinetuneError("fine-tuning needs peft: pip install 'vidground[local]'") from None
    if config.qlora:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    for param in model.parameters():
        param.requires_grad_(False)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.alpha,
                      lora_dropout=config.lora_dropout, bias="none", task_type="CAUSAL_LM",
                      target_modules=target_pattern(config.lora_targets, config.train_vision))
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise FinetuneError(f"--lora-targets {','.join(config.lora_targets)}: {exc}. Name "
                            "linear layers of the language model, e.g. q_proj,v_proj") from None


def write_meta(directory: Path, base: str, config: FinetuneConfig, **extra: Any) -> Path:
    path = directory / META_FILE
    path.write_text(json.dumps({"base_model": base, "config": config.to_dict(), **extra},
                               ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def adapter_base(adapter_dir: Path) -> str | None:
    """The base model an adapter was trained on (our meta file, else peft's config)."""
    for name, key in ((META_FILE, "base_model"), ("adapter_config.json",
                                                  "base_model_name_or_path")):
        path = adapter_dir / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get(key)
            if value:
                return str(value)
    return None


def merge(adapter: str | Path, out: str | Path, *, base: str | None = None,
          device: str = "cpu", dtype: str = "auto") -> Path:
    """Write base + adapter as one full checkpoint (weights, config, processor) to ``out``."""
    import transformers

    from ..backends.model_files import apply_adapter, resolve_adapter

    adapter_dir, kind = resolve_adapter(str(adapter))
    if kind != "lora":
        raise FinetuneError(f"{adapter_dir} is already a full checkpoint; nothing to merge")
    ref = base or adapter_base(adapter_dir)
    if not ref:
        raise FinetuneError(f"{adapter_dir} does not say which base model it belongs to: "
                            "pass --base MODEL")
    model_dir = resolve_model_dir(ref)
    resolved = resolve_device(device)
    model = transformers.AutoModelForImageTextToText.from_pretrained(
        model_dir, dtype=resolve_dtype(dtype, resolved), device_map=resolved)
    model = apply_adapter(model, adapter_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    transformers.AutoProcessor.from_pretrained(model_dir).save_pretrained(out)
    (out / META_FILE).write_text(json.dumps({"base_model": ref, "merged_from": str(adapter_dir)},
                                            indent=2) + "\n", encoding="utf-8")
    return out
