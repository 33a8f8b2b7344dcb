"""Where the model weights are: a local directory, the Hugging Face cache/hub, or ModelScope.

``resolve_model_dir(model, source)`` returns a local directory that holds ``config.json`` and the
weights, or raises :class:`~vidground.errors.ModelNotAvailableError` with a message that says
how to get them. Offline it fails fast: the local cache is tried first, and the network is not
touched at all when ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelNotAvailableError

SOURCES = ("huggingface", "modelscope")
_SOURCE_ALIASES = {"hf": "huggingface", "hub": "huggingface", "ms": "modelscope"}
#: Seconds allowed for the first request to the hub (model lookup); downloads are not capped.
HUB_TIMEOUT_S = 10.0


def resolve_model_dir(model: str, source: str = "huggingface", *,
                      local_only: bool = False) -> Path:
    """Return a local directory holding the checkpoint ``model`` (a local path or a model id).

    With ``local_only`` nothing is downloaded: only a local path or the source's cache counts.
    """
    model = str(model)
    local = _as_local_path(model)
    if local is not None:
        return _check_local_dir(local, model)
    source = normalize_source(source)
    if source == "modelscope":
        return _modelscope_snapshot(model, local_only=local_only)
    return _huggingface_snapshot(model, local_only=local_only)


def normalize_source(source: str | None) -> str:
    """``"huggingface"`` or ``"modelscope"`` (a few aliases accepted); anything else raises."""
    name = (source or "huggingface").strip().lower()
    name = _SOURCE_ALIASES.get(name, name)
    if name not in SOURCES:
        raise ModelNotAvailableError(
            f"unknown model source {source!r}; use one of {', '.join(SOURCES)} "
            "(VIDGROUND_MODEL_SOURCE)"
        )
    return name


def how_to_get(model: str) -> str:
    """The ways to make ``model`` available, as text for an error message."""
    name = Path(model).name or model
    return (
        "To fix it, either:\n"
        f"  1. download it on a machine with internet access:\n"
        f"       hf download {model} --local-dir ./{name}\n"
        f"     (the `hf` command of pip install huggingface_hub), copy the folder here and "
        "pass\n"
        f"     --model /path/to/{name}  (or set VIDGROUND_MODEL=/path/to/{name});\n"
        "  2. download from ModelScope instead: VIDGROUND_MODEL_SOURCE=modelscope "
        "(needs: pip install 'vidground[modelscope]');\n"
        "  3. use a remote OpenAI-compatible server (vLLM, SGLang, DashScope):\n"
        "       --backend openai --openai-base-url http://HOST:PORT/v1"
    )


def hub_offline() -> bool:
    """True when the environment forbids Hugging Face hub network access."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _as_local_path(model: str) -> Path | None:
    """``model`` as a local path if it names one (existing, or clearly written as a path)."""
    path = Path(model).expanduser()
    if path.exists():
        return path
    looks_like_path = (
        model.startswith(("/", "./", "../", "~", ".\\"))
        or path.is_absolute()
        or "\\" in model
        or model.count("/") > 1
    )
    if looks_like_path:
        raise ModelNotAvailableError(
            f"model directory {model!r} does not exist.\n{how_to_get(_default_id_for(model))}"
        )
    return None


def _default_id_for(model: str) -> str:
    """A hub id to show in hints when the user gave a path (the name of the path if Qwen-like)."""
    name = Path(model).name
    return f"Qwen/{name}" if name.lower().startswith("qwen") else "Qwen/Qwen3-VL-2B-Instruct"


def _check_local_dir(path: Path, model: str) -> Path:
    """A local checkpoint directory must exist and contain ``config.json``."""
    if not path.is_dir():
        raise ModelNotAvailableError(
            f"model path {model!r} is a file; pass the directory that holds config.json "
            "and the *.safetensors weights"
        )
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(
            f"model directory {model!r} has no config.json, so it is not a Hugging Face "
            "checkpoint. Pass the folder that `hf download … --local-dir` "
            "created (it holds config.json, tokenizer and *.safetensors files)."
        )
    return path


def _huggingface_snapshot(model_id: str, *, local_only: bool = False) -> Path:
    """The Hugging Face cache first, then (unless offline or ``local_only``) a download."""
    try:
        import huggingface_hub
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - installed with transformers
        raise ModelNotAvailableError(
            "huggingface_hub is not installed: pip install 'vidground[local]'"
        ) from exc
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or a broken cache entry
        pass
    if local_only:
        raise ModelNotAvailableError(
            f"model {model_id!r} is not in the local Hugging Face cache.\n{how_to_get(model_id)}"
        )
    if hub_offline():
        raise ModelNotAvailableError(
            f"model {model_id!r} is not in the local Hugging Face cache and downloads are "
            f"disabled (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set).\n{how_to_get(model_id)}"
        )
    _check_repo_online(huggingface_hub, model_id)
    try:
        return Path(snapshot_download(model_id, etag_timeout=HUB_TIMEOUT_S))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"downloading {model_id!r} from the Hugging Face hub failed "
            f"({type(exc).__name__}: {_first_line(exc)}).\n{how_to_get(model_id)}"
        ) from exc


def _check_repo_online(huggingface_hub, model_id: str) -> None:
    """One short request that tells 'no network' and 'no such model' apart before downloading."""
    errors = huggingface_hub.errors
    try:
        huggingface_hub.HfApi().model_info(model_id, timeout=HUB_TIMEOUT_S)
    except errors.GatedRepoError as exc:
        raise ModelNotAvailableError(
            f"model {model_id!r} is gated: accept its licence on huggingface.co and log in "
            f"(hf auth login / HF_TOKEN).\n{how_to_get(model_id)}"
        ) from exc
    except errors.RepositoryNotFoundError as exc:
        raise ModelNotAvailableError(
            f"model {model_id!r} does not exist on the Hugging Face hub (check the name, e.g. "
            f"Qwen/Qwen3-VL-2B-Instruct).\n{how_to_get(model_id)}"
        ) from exc
    except Exception as exc:  # connection refused, DNS failure, timeout, proxy error...
        raise ModelNotAvailableError(
            f"model {model_id!r} is not downloaded and the Hugging Face hub cannot be reached "
            f"({type(exc).__name__}: {_first_line(exc)}).\n{how_to_get(model_id)}"
        ) from exc


def _modelscope_snapshot(model_id: str, *, local_only: bool = False) -> Path:
    """Download (or find in the ModelScope cache) ``model_id`` with the ``modelscope`` package."""
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError(
            "model source 'modelscope' needs the modelscope package: "
            "pip install 'vidground[modelscope]' (or pip install modelscope), or use "
            "VIDGROUND_MODEL_SOURCE=huggingface."
        ) from exc
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # not cached, or an old modelscope without local_files_only
        pass
    if local_only:
        raise ModelNotAvailableError(
            f"model {model_id!r} is not in the local ModelScope cache.\n{how_to_get(model_id)}"
        )
    try:
        return Path(snapshot_download(model_id))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"downloading {model_id!r} from ModelScope failed "
            f"({type(exc).__name__}: {_first_line(exc)}).\n{how_to_get(model_id)}"
        ) from exc


def resolve_adapter(adapter: str) -> tuple[Path, str]:
    """A fine-tune's output folder and its kind: ``"lora"`` (peft's ``adapter_config.json``,
    from ``vidground finetune``) or ``"merged"`` (a full checkpoint, from ``vidground
    finetune merge``). Local folders only."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ModelNotAvailableError(
            f"adapter {adapter!r} is not a folder: pass the adapter folder `vidground finetune` "
            "wrote (OUT/adapter, with adapter_config.json) or a merged checkpoint folder "
            "(VIDGROUND_ADAPTER)")
    if (path / "adapter_config.json").is_file():
        return path, "lora"
    if (path / "config.json").is_file():
        return path, "merged"
    raise ModelNotAvailableError(
        f"adapter folder {adapter!r} holds neither adapter_config.json (a LoRA adapter) nor "
        "config.json (a merged checkpoint); pass OUT/adapter of `vidground finetune`")


def apply_adapter(model, adapter_dir: Path):  # -> the model with the LoRA weights merged in
    """Load the LoRA adapter in ``adapter_dir`` onto ``model`` and merge it into the weights
    (inference then costs what the base costs). Needs peft."""
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelNotAvailableError("loading a LoRA adapter needs peft: "
                                     "pip install 'vidground[local]'") from exc
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelNotAvailableError(
            f"could not load the adapter in {adapter_dir} onto this model: "
            f"{type(exc).__name__}: {_first_line(exc)}. Was it trained on this base model "
            "(VIDGROUND_MODEL)?") from exc


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text, for compact messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


__all__ = ["SOURCES", "apply_adapter", "hub_offline", "how_to_get", "normalize_source",
           "resolve_adapter", "resolve_model_dir"]
