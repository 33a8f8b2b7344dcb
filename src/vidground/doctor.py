"""``vidground doctor``: is the configured model backend ready to answer? Checks a person can read.

``check_backend(settings)`` returns a list of :class:`Check` results, one per thing that must
work, each with a message saying what is wrong and how to fix it. It never downloads weights and
never raises for a failed check.

- ``openai`` backend: server reachable (``GET /v1/models``), model listed, accepts an image (a
  64x64 picture, ``max_tokens`` 5), round-trip latency.
- ``transformers`` backend: torch importable, transformers importable and new enough for
  Qwen3-VL, device usable, weights found locally (no download).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from .backends import backend_kind
from .errors import VidgroundError

if TYPE_CHECKING:
    from .config import Settings

#: the image request of the "accepts an image" check never waits longer than this
IMAGE_CHECK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Check:
    """One readiness check: ``ok`` and a ``detail`` a person can act on. A check that could not
    run because an earlier one failed is ``skipped`` (not ok, and labelled ``SKIP``)."""

    name: str
    ok: bool
    detail: str
    latency_ms: float | None = None
    skipped: bool = False

    @classmethod
    def skip(cls, name: str, why: str) -> Check:
        """A check not run because ``why`` (an earlier check failed)."""
        return cls(name, False, f"skipped: {why}", skipped=True)

    @property
    def label(self) -> str:
        """``ok``, ``SKIP`` or ``FAIL``."""
        return "ok" if self.ok else "SKIP" if self.skipped else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_backend(settings: Settings) -> list[Check]:
    """Every readiness check for ``settings.backend``, in order; failures carry the fix."""
    name = backend_kind(settings.backend)
    if name == "openai":
        return check_openai(settings)
    if name == "transformers":
        return check_transformers(settings)
    return [Check("backend", False, f"unknown backend {settings.backend!r}; use transformers "
                                    "or openai (VIDGROUND_BACKEND)")]


def all_ok(checks: list[Check]) -> bool:
    """Whether every check passed."""
    return all(c.ok for c in checks)


def format_checks(checks: list[Check]) -> str:
    """Plain-text report, one line per check (for the CLI)."""
    lines = []
    for c in checks:
        latency = f" ({c.latency_ms:.0f} ms)" if c.latency_ms is not None else ""
        lines.append(f"[{c.label}] {c.name}{latency}: {c.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible servers
# ---------------------------------------------------------------------------------------------


def check_openai(settings: Settings) -> list[Check]:
    """Reachable, model listed, accepts an image, latency — for the configured server."""
    from .backends.openai_compat import OpenAICompatBackend

    try:
        backend = OpenAICompatBackend.from_settings(settings)
    except VidgroundError as exc:
        return [Check("configuration", False, exc.message)]
    backend.max_retries = 0
    backend.timeout_s = min(backend.timeout_s, IMAGE_CHECK_TIMEOUT_S)

    start = time.perf_counter()
    try:
        models = backend.list_models()
    except VidgroundError as exc:
        why = "the server is not reachable"
        return [Check("server reachable", False, exc.message),
                Check.skip("model listed", why), Check.skip("accepts an image", why)]
    models_ms = _ms_since(start)
    checks = [Check("server reachable", True,
                    f"{backend.base_url} lists {len(models)} model(s)", models_ms)]
    model_check = _model_listed(settings.openai_model, models)
    checks.append(model_check)
    if not model_check.ok:
        checks.append(Check.skip("accepts an image", "no usable model"))
        return checks
    image_check = _accepts_image(backend)
    checks.append(image_check)
    if image_check.ok:
        checks.append(Check("round-trip latency", True,
                            f"GET /models {models_ms:.0f} ms; one-image request "
                            f"{image_check.latency_ms:.0f} ms", image_check.latency_ms))
    return checks


def _model_listed(wanted: str | None, models: list[str]) -> Check:
    """Whether the configured model (or, unconfigured, any model) is served."""
    if not models:
        return Check("model listed", False, "the server lists no models; is it still loading? "
                                            "Start it with `vllm serve Qwen/Qwen3-VL-4B-Instruct`")
    if wanted is None:
        return Check("model listed", True, f"no VIDGROUND_OPENAI_MODEL set; will use the first "
                                           f"listed: {models[0]}")
    if wanted in models:
        return Check("model listed", True, f"{wanted} is served")
    return Check("model listed", False,
                 f"{wanted!r} is not served; the server lists: {', '.join(models[:10])}. "
                 "Set VIDGROUND_OPENAI_MODEL to one of them (or serve that model)")


def _accepts_image(backend: Any) -> Check:
    """A real chat request with one 64x64 image and ``max_tokens`` 5; HTTP 200 with choices."""
    from .frame import Frame
    from .grounding.prompts import Prompt

    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[16:48, 16:48] = (220, 30, 30)
    prompt = Prompt(system="", user="What colour is the square? One word.")
    try:
        request = backend.prepare([Frame(0.0, image, 0)], prompt, max_new_tokens=5)
    except VidgroundError as exc:
        return Check("accepts an image", False, exc.message)
    url = f"{backend.base_url}/chat/completions"
    start = time.perf_counter()
    try:
        with backend.http_client() as client:
            response = client.post(url, json=request.body)
    except httpx.ConnectError as exc:
        return Check("accepts an image", False, backend.unreachable_message(exc))
    except httpx.TimeoutException:
        return Check("accepts an image", False,
                     f"no answer within {backend.timeout_s:g} s; the server may be overloaded "
                     "or still warming up")
    except httpx.HTTPError as exc:
        return Check("accepts an image", False, f"POST {url} failed: {exc}")
    latency = _ms_since(start)
    return _judge_image_response(response, latency)


def _judge_image_response(response: httpx.Response, latency: float) -> Check:
    """ok when the server answered 200 with at least one choice."""
    from .backends.openai_compat import server_message

    if response.status_code != 200:
        hint = ""
        if response.status_code in (400, 422):
            hint = (" — the model may not take images (serve a vision model such as "
                    "Qwen/Qwen3-VL-4B-Instruct, with --limit-mm-per-prompt allowing images)")
        return Check("accepts an image", False,
                     f"HTTP {response.status_code}: {server_message(response)}{hint}", latency)
    try:
        choices = response.json().get("choices")
    except (ValueError, AttributeError):
        choices = None
    if not choices:
        return Check("accepts an image", False,
                     f"the answer has no choices: {response.text[:200]!r}", latency)
    content = (choices[0].get("message") or {}).get("content") or ""
    shown = content.strip()[:40] if isinstance(content, str) else "(parts)"
    return Check("accepts an image", True, f"answered {shown!r} to a 64x64 image", latency)


# ---------------------------------------------------------------------------------------------
# local transformers backend
# ---------------------------------------------------------------------------------------------


def check_transformers(settings: Settings) -> list[Check]:
    """torch, transformers, device, weights on disk — without loading or downloading."""
    checks = [_import_check("torch", "torch", "pip install 'vidground[local]' (PyTorch)")]
    checks.append(_transformers_check())
    if checks[0].ok:
        checks.append(_device_check(settings.device))
    else:
        checks.append(Check.skip("device", "torch is not importable"))
    checks.append(_weights_check(settings))
    return checks


def _import_check(name: str, module: str, fix: str) -> Check:
    """Whether ``module`` imports, with its version."""
    start = time.perf_counter()
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # ImportError or a broken install
        return Check(f"{name} importable", False, f"{type(exc).__name__}: {exc}; {fix}")
    return Check(f"{name} importable", True, f"{module} {getattr(mod, '__version__', '?')}",
                 _ms_since(start))


def _transformers_check() -> Check:
    """transformers imports and knows Qwen3-VL (4.57 or newer)."""
    check = _import_check("transformers", "transformers", "pip install 'vidground[local]'")
    if not check.ok:
        return check
    import transformers

    if not hasattr(transformers, "Qwen3VLForConditionalGeneration"):
        return Check("transformers importable", False,
                     f"transformers {transformers.__version__} has no Qwen3-VL; "
                     "pip install -U 'transformers>=4.57'")
    return check


def _device_check(device: str) -> Check:
    """The device the local model would run on."""
    try:
        from .backends.qwen_transformers import resolve_device

        name = resolve_device(device)
    except VidgroundError as exc:
        return Check("device", False, exc.message)
    except Exception as exc:
        return Check("device", False, f"cannot pick a device: {type(exc).__name__}: {exc}")
    detail = name
    if name.startswith("cuda"):
        import torch

        index = torch.device(name).index or 0
        props = torch.cuda.get_device_properties(index)
        detail = f"{name}: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    elif name == "cpu":
        detail = "cpu (no GPU found: expect slow answers; the 2B model is the default)"
    return Check("device", True, detail)


def _weights_check(settings: Settings) -> Check:
    """Weights found on disk for the configured (or default) model; never downloads."""
    model = settings.model or _default_model()
    start = time.perf_counter()
    try:
        path = _local_weights(model, settings.model_source)
    except VidgroundError as exc:
        return Check("weights found locally", False, exc.message)
    except Exception as exc:
        return Check("weights found locally", False,
                     f"{model}: not found locally ({type(exc).__name__}: {exc}); download it "
                     f"with `hf download {model}` (or `modelscope download "
                     f"--model {model}`)")
    return Check("weights found locally", True, f"{model}: {path}", _ms_since(start))


def _local_weights(model: str, source: str) -> str:
    """Local directory of ``model``'s weights, looking only on disk."""
    from pathlib import Path

    if Path(model).expanduser().exists():
        from .backends.model_files import resolve_model_dir

        return str(resolve_model_dir(model, source))
    if source.lower() in ("modelscope", "ms"):
        from modelscope import snapshot_download as modelscope_snapshot

        path = Path(modelscope_snapshot(model, local_files_only=True))
    else:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(model, local_files_only=True))
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json")
    return str(path)


def _default_model() -> str:
    """The model the local backend would load when none is configured."""
    try:
        from .backends.qwen_transformers import default_model

        return default_model()
    except Exception:
        from .config import DEFAULT_CPU_MODEL

        return DEFAULT_CPU_MODEL


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


__all__ = ["Check", "all_ok", "check_backend", "check_openai", "check_transformers",
           "format_checks"]
