"""The local Qwen3-VL backend, end to end on a tiny random Qwen3-VL built by ``tiny_qwen``.

The backend code that loads and runs real checkpoints is the code under test: the tiny model is
saved with ``save_pretrained`` and loaded back with ``from_pretrained``. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_qwen import build_tiny_qwen3vl  # noqa: E402

from vidground.backends import create_backend  # noqa: E402
from vidground.backends.base import Backend, Prompt  # noqa: E402
from vidground.backends.model_files import resolve_model_dir  # noqa: E402
from vidground.backends.qwen_transformers import (  # noqa: E402
    QwenTransformersBackend,
    _backend_errors,
    frame_indices,
    pair_labels,
    resolve_device,
    resolve_dtype,
)
from vidground.backends.structured import (  # noqa: E402
    MAX_SPANS,
    MAX_TIME_S,
    grammar_library,
    structured_answers,
)
from vidground.config import DEFAULT_CPU_MODEL, Settings  # noqa: E402
from vidground.errors import BackendError, ModelNotAvailableError  # noqa: E402
from vidground.grounding.answer import parse_answer  # noqa: E402
from vidground.grounding.prompts import build_prompt  # noqa: E402
from vidground.video.decode import Frame  # noqa: E402

PROMPT = Prompt(system="You are a video assistant.",
                user="When does the red square appear? 红色方块什么时候出现？", language="en")
LABEL = re.compile(r"<(-?\d+\.\d) seconds>")
FIX_HINTS = ("hf download", "--local-dir", "--model", "VIDGROUND_MODEL=",
             "VIDGROUND_MODEL_SOURCE=modelscope", "vidground[modelscope]", "--backend openai",
             "--openai-base-url")


# --------------------------------------------------------------------------- fixtures
# Session-scoped here because tests/conftest.py belongs to the pipeline; move them there to share.


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-VL checkpoint on disk, built once per session."""
    return build_tiny_qwen3vl(tmp_path_factory.mktemp("models") / "tiny-qwen3vl")


@pytest.fixture(scope="session")
def tiny_backend(tiny_qwen_dir: Path) -> QwenTransformersBackend:
    """One loaded backend shared by the tests that do not look at loading."""
    backend = QwenTransformersBackend(str(tiny_qwen_dir), device="cpu")
    backend.load()
    return backend


def make_frames(times: Sequence[float], size: tuple[int, int] = (64, 64)) -> list[Frame]:
    """Random RGB frames (height, width = ``size``) at ``times``."""
    rng = np.random.default_rng(7)
    return [Frame(time=t, image=rng.integers(0, 256, (*size, 3), dtype=np.uint8), index=i)
            for i, t in enumerate(times)]


def labels_in(text: str) -> list[str]:
    """The ``<t seconds>`` values of a rendered prompt, in order."""
    return LABEL.findall(text)


# --------------------------------------------------------------------------- generation


def test_generate_returns_text(tiny_backend: QwenTransformersBackend) -> None:
    answer = tiny_backend.generate(make_frames([0.0, 0.5, 1.0, 1.5]), PROMPT, max_new_tokens=8)
    assert isinstance(answer, str)
    assert isinstance(tiny_backend, Backend)
    assert tiny_backend.is_loaded


def test_generate_is_deterministic(tiny_backend: QwenTransformersBackend) -> None:
    frames = make_frames([0.0, 0.5, 1.0, 1.5])
    first = tiny_backend.generate(frames, PROMPT, max_new_tokens=6)
    assert tiny_backend.generate(frames, PROMPT, max_new_tokens=6) == first


def test_streaming_pieces_join_to_the_answer(tiny_backend: QwenTransformersBackend) -> None:
    pieces: list[str] = []
    answer = tiny_backend.generate(make_frames([0.0, 1.0, 2.0, 3.0]), PROMPT,
                                   max_new_tokens=12, on_token=pieces.append)
    assert pieces, "on_token was never called"
    assert "".join(pieces) == answer


def test_an_exception_from_on_token_reaches_the_caller_unchanged(
        tiny_backend: QwenTransformersBackend) -> None:
    class Cancelled(Exception):
        pass

    def cancel(piece: str) -> None:
        raise Cancelled(piece)

    with pytest.raises(Cancelled):
        tiny_backend.generate(make_frames([0.0, 0.5]), PROMPT, max_new_tokens=8, on_token=cancel)
    assert isinstance(tiny_backend.generate(make_frames([0.0, 0.5]), PROMPT, max_new_tokens=2),
                      str)  # still usable afterwards (the run lock was released)


def test_frames_not_multiple_of_32_are_rounded_not_rejected(
        tiny_backend: QwenTransformersBackend) -> None:
    inputs = tiny_backend.build_inputs(make_frames([0.0, 0.5], size=(50, 70)), PROMPT)
    # 50x70 -> 64x64 (nearest multiples of 32): one pair of 4x4 patches
    assert inputs["video_grid_thw"].tolist() == [[1, 4, 4]]
    assert isinstance(tiny_backend.generate(make_frames([0.0, 0.5], size=(50, 70)), PROMPT,
                                            max_new_tokens=3), str)


def test_frames_keep_their_size(tiny_backend: QwenTransformersBackend) -> None:
    inputs = tiny_backend.build_inputs(make_frames([0.0, 0.5, 1.0, 1.5], size=(96, 160)), PROMPT)
    assert inputs["video_grid_thw"].tolist() == [[2, 96 // 16, 160 // 16]]


def test_frames_of_different_sizes_are_a_backend_error(
        tiny_backend: QwenTransformersBackend) -> None:
    frames = make_frames([0.0]) + make_frames([0.5], size=(32, 32))
    with pytest.raises(BackendError, match="same size"):
        tiny_backend.generate(frames, PROMPT)


def test_no_frames_is_a_backend_error(tiny_backend: QwenTransformersBackend) -> None:
    with pytest.raises(BackendError, match="no frames"):
        tiny_backend.generate([], PROMPT)


def test_yes_probability_is_a_probability(tiny_backend: QwenTransformersBackend) -> None:
    p = tiny_backend.yes_probability(make_frames([0.0, 0.5]), PROMPT)
    assert 0.0 <= p <= 1.0


def test_failures_become_backend_errors() -> None:
    with pytest.raises(BackendError, match="out of memory"), _backend_errors("generation"):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(BackendError, match="generation failed: IndexError"), \
            _backend_errors("generation"):
        raise IndexError("index 3 is out of bounds")


# --------------------------------------------------------------------------- timestamps


def test_prompt_carries_uniform_timestamps(tiny_backend: QwenTransformersBackend) -> None:
    text = tiny_backend.render_prompt(make_frames([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), PROMPT)
    assert labels_in(text) == ["0.5", "2.5", "4.5"]
    text = tiny_backend.render_prompt(make_frames([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
                                      PROMPT)
    assert labels_in(text) == ["0.8", "1.8", "2.8", "3.8"]  # pair means 0.75, 1.75… half up


def test_prompt_carries_irregular_timestamps(tiny_backend: QwenTransformersBackend) -> None:
    text = tiny_backend.render_prompt(make_frames([0.0, 0.1, 3.3, 3.4, 10.0, 10.2]), PROMPT)
    assert labels_in(text) == ["0.1", "3.4", "10.1"]
    assert "<0.1 seconds><|vision_start|><|video_pad|>×4<|vision_end|><3.4 seconds>" in text


def test_prompt_carries_vfr_timestamps_and_odd_frame(
        tiny_backend: QwenTransformersBackend) -> None:
    # variable frame rate pts, odd count: the last frame is paired with itself
    text = tiny_backend.render_prompt(make_frames([0.033, 0.067, 1.001, 1.034, 7.52]), PROMPT)
    assert labels_in(text) == ["0.1", "1.0", "7.5"]


def test_single_frame_gets_its_own_time(tiny_backend: QwenTransformersBackend) -> None:
    text = tiny_backend.render_prompt(make_frames([12.34]), PROMPT)
    assert labels_in(text) == ["12.3"]


def test_rendered_prompt_is_the_chat_format(tiny_backend: QwenTransformersBackend) -> None:
    """The reference rendering of a Qwen3-VL video turn: the chat template writes
    ``<|vision_start|><|video_pad|><|vision_end|>`` and the processor replaces that whole wrapper
    with one ``<t seconds><|vision_start|><|video_pad|>…<|vision_end|>`` per temporal patch
    (``Qwen3VLProcessor.replace_video_token`` of Qwen's release; the same in vLLM and mistral.rs).
    Some transformers 5.x releases left the template's outer ``<|vision_start|>`` in front of the
    first label; the test asserts the reference, not one version's output."""
    text = tiny_backend.render_prompt(make_frames([0.0, 0.5]), PROMPT)  # mean 0.25 -> "0.3"
    user_turn = ("<|im_start|>user\n<0.3 seconds><|vision_start|><|video_pad|>×4<|vision_end|>"
                 f"{PROMPT.user}<|im_end|>\n")
    assert text == ("<|im_start|>system\nYou are a video assistant.<|im_end|>\n" + user_turn
                    + "<|im_start|>assistant\n")


def test_metadata_indices_give_half_up_labels_through_the_real_processor(
        tiny_backend: QwenTransformersBackend) -> None:
    """The labels in the text the model reads (the backend's own processor call, through
    ``render_prompt``), not the processor's private timestamp helper."""
    rng = np.random.default_rng(3)
    cases = [rng.uniform(0, 3600, size=n).round(rng.integers(1, 4)) for n in range(1, 40)]
    cases += [np.arange(0, 20, 0.05)[:k] for k in (2, 7, 40)]  # many exact .x5 ties
    for times in cases:
        times = sorted(float(t) for t in times)
        text = tiny_backend.render_prompt(make_frames(times, size=(32, 32)), PROMPT)
        assert labels_in(text) == pair_labels(times), times


def test_pair_labels() -> None:
    assert pair_labels([0.0, 0.1, 3.3, 3.4, 10.0, 10.2]) == ["0.1", "3.4", "10.1"]
    assert pair_labels([0.0, 0.5]) == ["0.3"]
    assert pair_labels([1.0, 2.0, 5.0]) == ["1.5", "5.0"]
    assert pair_labels([-0.02, 0.04]) == ["0.0"]  # pre-roll pts clamp to 0
    assert frame_indices([-0.02, 0.04]) == [0, 40]


# --------------------------------------------------------------------------- loading


def test_model_is_loaded_once_across_calls_and_threads(
        tiny_qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    original = transformers.AutoModelForImageTextToText.from_pretrained
    calls: list[str] = []
    entered: list[int] = []
    both_in = threading.Event()

    def counting(*args, **kwargs):
        calls.append(str(args[0]))
        # the load does not finish before the second call has begun (was: a 0.2 s sleep
        # that made the overlap likely)
        assert both_in.wait(30), "the second call never began"
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", counting)
    backend = QwenTransformersBackend(str(tiny_qwen_dir), device="auto", dtype="auto")
    assert not backend.is_loaded
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        entered.append(1)
        if len(entered) == 2:
            both_in.set()
        try:
            results.append(backend.generate(make_frames([0.0, 0.5]), PROMPT, max_new_tokens=4))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(results) == 2 and results[0] == results[1]
    backend.generate(make_frames([0.0, 0.5]), PROMPT, max_new_tokens=2)
    backend.load()
    assert len(calls) == 1 and backend.load_count == 1 and backend.is_loaded


def test_auto_device_and_dtype_on_cpu(tiny_backend: QwenTransformersBackend) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this test is about machines without CUDA")
    assert resolve_device("auto") in {"cpu", "mps"}
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert tiny_backend.device == "cpu" and tiny_backend.dtype == torch.float32
    # the weights themselves (private): no public call shows the dtype transformers actually
    # loaded them in, and ``tiny_backend.dtype`` is only what the backend asked for
    assert next(tiny_backend._model.parameters()).dtype == torch.float32
    with pytest.raises(BackendError, match="unknown dtype"):
        resolve_dtype("float7", "cpu")


def test_from_settings_and_lazy_creation(tiny_qwen_dir: Path) -> None:
    backend = create_backend(Settings(backend="transformers", model=str(tiny_qwen_dir),
                                      device="cpu", dtype="float32"))
    assert isinstance(backend, QwenTransformersBackend)
    assert backend.model_name == str(tiny_qwen_dir)
    assert not backend.is_loaded  # nothing loaded until first use


def test_default_model_on_cpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("default differs with CUDA")
    assert QwenTransformersBackend().model_name == DEFAULT_CPU_MODEL
    assert QwenTransformersBackend.from_settings(Settings()).model_name == DEFAULT_CPU_MODEL


# --------------------------------------------------------------------------- weights


def test_missing_weights_offline_fail_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = QwenTransformersBackend("vidground-tests/no-such-model", device="cpu")
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as info:
        backend.generate(make_frames([0.0, 0.5]), PROMPT)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "vidground-tests/no-such-model" in message and "HF_HUB_OFFLINE" in message
    for hint in FIX_HINTS:
        assert hint in message, hint
    assert not backend.is_loaded


def test_unreachable_hub_fails_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError, match="cannot be reached") as info:
        resolve_model_dir("vidground-tests/no-such-model")
    assert time.monotonic() - start < 10
    for hint in FIX_HINTS:
        assert hint in str(info.value), hint


def test_local_only_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ModelNotAvailableError, match="not in the local Hugging Face cache"):
        resolve_model_dir("vidground-tests/no-such-model", local_only=True)


def test_bad_attn_implementation_says_how_to_fix(tiny_qwen_dir: Path) -> None:
    backend = QwenTransformersBackend(str(tiny_qwen_dir), device="cpu",
                                      attn_implementation="no_such_attention")
    with pytest.raises(BackendError, match="VIDGROUND_ATTN_IMPLEMENTATION"):
        backend.load()


def test_local_dir_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        QwenTransformersBackend(str(tmp_path)).load()


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nope" / "Qwen3-VL-2B-Instruct"))
    with pytest.raises(ModelNotAvailableError, match="is a file"):
        (tmp_path / "f").write_text("x")
        resolve_model_dir(str(tmp_path / "f"))


def test_local_dir_is_used_as_is(tiny_qwen_dir: Path) -> None:
    assert resolve_model_dir(str(tiny_qwen_dir)) == tiny_qwen_dir
    assert resolve_model_dir(str(tiny_qwen_dir), "modelscope") == tiny_qwen_dir


def test_modelscope_without_the_package_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import modelscope -> ImportError
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'vidground\[modelscope\]'"):
        resolve_model_dir("Qwen/Qwen3-VL-2B-Instruct", "modelscope")
    backend = QwenTransformersBackend("Qwen/Qwen3-VL-2B-Instruct", model_source="modelscope")
    with pytest.raises(ModelNotAvailableError, match="modelscope"):
        backend.load()


def test_unknown_model_source_is_an_error() -> None:
    with pytest.raises(ModelNotAvailableError, match="unknown model source"):
        QwenTransformersBackend("x/y", model_source="ftp")


def test_hf_hub_offline_is_set_for_tests() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_importing_and_creating_the_backend_imports_no_torch(tiny_qwen_dir: Path) -> None:
    import subprocess

    code = ("import sys\n"
            "from vidground.backends import create_backend\n"
            "from vidground.config import Settings\n"
            f"b = create_backend(Settings(model={str(tiny_qwen_dir)!r}))\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules, b.is_loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


# --------------------------------------------------------------------------- structured answers


def _span_ok(span: object) -> bool:
    """One item of the grounding schema's ``spans``: exactly start and end, numbers in range."""
    return (isinstance(span, dict) and list(span) == ["start", "end"]
            and all(isinstance(span[k], (int, float)) and not isinstance(span[k], bool)
                    and 0 <= span[k] <= MAX_TIME_S for k in span))


def test_a_random_model_held_to_the_schema_answers_schema_valid_json(
        tiny_backend: QwenTransformersBackend) -> None:
    frames = make_frames([0.0, 1.0, 2.0, 3.0])
    prompt = build_prompt("When does the red square appear?", return_reasoning=False,
                          duration=4.0)
    free = tiny_backend.generate(frames, prompt, max_new_tokens=40)
    with pytest.raises(ValueError):
        json.loads(free)  # unconstrained, the random model writes no JSON
    pieces: list[str] = []
    with structured_answers(True):
        text = tiny_backend.generate(frames, prompt, max_new_tokens=400, on_token=pieces.append)
    answer = json.loads(text)
    assert list(answer) == ["spans"]
    assert isinstance(answer["spans"], list) and len(answer["spans"]) <= MAX_SPANS
    assert all(_span_ok(span) for span in answer["spans"])
    assert "".join(pieces) == text
    parse_answer(text, duration=4.0)  # the parser takes it


def test_the_schema_puts_spans_before_the_reasoning(tiny_backend: QwenTransformersBackend) -> None:
    prompt = build_prompt("When does the red square appear?", duration=4.0)
    with structured_answers(True):
        text = tiny_backend.generate(make_frames([0.0, 1.0]), prompt, max_new_tokens=16)
    assert text.startswith('{"spans": [')


def test_structure_leaves_other_prompts_alone(tiny_backend: QwenTransformersBackend) -> None:
    frames = make_frames([0.0, 0.5])
    free = tiny_backend.generate(frames, PROMPT, max_new_tokens=6)
    with structured_answers(True):
        assert tiny_backend.generate(frames, PROMPT, max_new_tokens=6) == free
    assert not tiny_backend.structured_output


def test_structured_without_the_grammar_library_says_how_to_install_it(
        tiny_qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgrammar", None)
    with pytest.raises(BackendError, match=r"pip install 'vidground\[structured\]'"):
        create_backend(Settings(model=str(tiny_qwen_dir), structured_output=True))
    with pytest.raises(BackendError, match="VIDGROUND_STRUCTURED_OUTPUT=false"):
        grammar_library()
    assert create_backend(Settings(model=str(tiny_qwen_dir))).structured_output is False
