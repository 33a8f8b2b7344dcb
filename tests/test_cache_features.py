"""Visual features of the local backend kept on disk, on the tiny random Qwen3-VL: the answer is
bit-identical with and without the cache (and to plain ``generate(pixel_values_videos=...)``),
the vision tower does not run for pictures it has seen, and another model or dtype misses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from media import make_video  # noqa: E402
from tiny_qwen import build_tiny_qwen3vl  # noqa: E402

from vidground.backends.base import Prompt  # noqa: E402
from vidground.backends.qwen_transformers import QwenTransformersBackend  # noqa: E402
from vidground.cache import DiskCache, track  # noqa: E402
from vidground.cache.identity import file_identity  # noqa: E402
from vidground.cache.store import group_of, make_key  # noqa: E402
from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402
from vidground.options import LocateOptions  # noqa: E402
from vidground.video.decode import Frame  # noqa: E402

PROMPT = Prompt(system="You are a video assistant.", user="When does the red square appear?")
OTHER_PROMPT = Prompt(system="You are a video assistant.", user="Is anything moving?")
UNIFORM = [0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
IRREGULAR = [0.1, 0.13, 0.9, 2.35, 2.4, 5.0, 7.77]  # odd count: the last frame pairs with itself
TOKENS = 16


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("models")
    return (build_tiny_qwen3vl(base / "tiny-a", seed=1234),
            build_tiny_qwen3vl(base / "tiny-b", seed=99))


def _backend(model_dir: Path, cache: DiskCache | None, dtype: str = "float32"
             ) -> QwenTransformersBackend:
    backend = QwenTransformersBackend(str(model_dir), device="cpu", dtype=dtype, cache=cache)
    backend.load()
    return backend


def _frames(times: Sequence[float], seed: int = 7) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [Frame(time=t, image=rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), index=i)
            for i, t in enumerate(times)]


def _count_vision(backend: QwenTransformersBackend) -> list[int]:
    calls: list[int] = []
    backend._model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    return calls


def _plain_generate(backend: QwenTransformersBackend, frames: Sequence[Frame]) -> list[int]:
    """What transformers answers when given the pixels itself (no precomputed features)."""
    inputs = backend.build_inputs(frames, PROMPT)
    with torch.inference_mode():
        out = backend._model.generate(**inputs, max_new_tokens=TOKENS, do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("times", [UNIFORM, IRREGULAR], ids=["uniform", "irregular"])
def test_tokens_are_bit_identical_with_and_without_the_cache(
        tmp_path: Path, model_dirs: tuple[Path, Path], times: list[float]) -> None:
    frames = _frames(times)
    plain_backend = _backend(model_dirs[0], None)
    cached_backend = _backend(model_dirs[0], DiskCache(tmp_path / "cache", 10**9))
    vision = _count_vision(cached_backend)

    reference = _plain_generate(plain_backend, frames)
    without = plain_backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS)
    with track() as first:
        computed = cached_backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS)
    with track() as second:
        reused = cached_backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS)
    assert reference == without == computed == reused
    assert len(reference) == TOKENS
    assert (first.misses, first.hits, second.misses, second.hits) == (1, 0, 0, 1)
    assert len(vision) == 1  # the second answer did not run the vision tower
    assert first.vision_s > 0 and second.vision_s > 0

    # The logits themselves (not only the argmax) are equal, bit for bit, and they do depend on
    # the pictures: other frames give other logits, so this comparison can fail.
    def logits(backend: QwenTransformersBackend, pictures: Sequence[Frame]) -> torch.Tensor:
        inputs, digest = backend._build_inputs(pictures, PROMPT)
        with torch.inference_mode():
            return backend._model(**backend._with_features(inputs, digest)).logits

    plain_inputs = plain_backend.build_inputs(frames, PROMPT)
    with torch.inference_mode():
        plain_logits = plain_backend._model(**plain_inputs).logits
    assert torch.equal(logits(cached_backend, frames), plain_logits)
    assert not torch.equal(logits(cached_backend, _frames(times, seed=8)), plain_logits)
    assert cached_backend.yes_probability(frames, PROMPT) == \
        plain_backend.yes_probability(frames, PROMPT)


def test_a_new_question_or_new_labels_reuse_the_features(
        tmp_path: Path, model_dirs: tuple[Path, Path]) -> None:
    """Features depend on the pixels only: another question, or the same pictures on another
    clock (the refiner's virtual clock), hits."""
    backend = _backend(model_dirs[0], DiskCache(tmp_path / "cache", 10**9))
    vision = _count_vision(backend)
    frames = _frames(UNIFORM)
    relabelled = [Frame(time=float(i), image=f.image, index=f.index)
                  for i, f in enumerate(frames)]
    with track() as tally:
        backend.generate(frames, PROMPT, max_new_tokens=4)
        backend.generate(frames, OTHER_PROMPT, max_new_tokens=4)
        backend.generate(relabelled, PROMPT, max_new_tokens=4)
    assert (tally.misses, tally.hits, len(vision)) == (1, 2, 1)


def test_other_model_or_dtype_misses(tmp_path: Path, model_dirs: tuple[Path, Path]) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    frames = _frames(UNIFORM)
    with track() as tally:
        _backend(model_dirs[0], cache).generate(frames, PROMPT, max_new_tokens=2)
        _backend(model_dirs[1], cache).generate(frames, PROMPT, max_new_tokens=2)
        _backend(model_dirs[0], cache, dtype="bfloat16").generate(frames, PROMPT,
                                                                   max_new_tokens=2)
        _backend(model_dirs[0], cache).generate(frames, PROMPT, max_new_tokens=2)
    assert (tally.misses, tally.hits) == (3, 1)
    kinds = cache.info()["kinds"]
    assert kinds["features"]["entries"] == 3


def test_a_damaged_feature_entry_is_recomputed(tmp_path: Path,
                                               model_dirs: tuple[Path, Path]) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    backend = _backend(model_dirs[0], cache)
    frames = _frames(UNIFORM)
    expected = backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS)
    (entry,) = [p for kind, p, _ in cache.entries() if kind == "features"]
    data = bytearray(entry.read_bytes())
    data[-7] ^= 0x40
    entry.write_bytes(bytes(data))
    with track() as tally:
        assert backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS) == expected
    assert (tally.misses, tally.hits) == (1, 0)
    assert cache.stats()["corrupt"] == 1


def test_second_question_about_a_video_skips_decoding_and_the_vision_tower(
        tmp_path: Path, model_dirs: tuple[Path, Path]) -> None:
    """The whole pipeline on a real video with the local backend: the second question hits
    the frame cache and the feature cache, and answers exactly as an uncached run does."""
    video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    settings = Settings(cache_dir=tmp_path / "cache")
    opts = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False,
                         max_new_tokens=12)
    cache = DiskCache(tmp_path / "cache", 10**9)
    cached = Grounder(backend=_backend(model_dirs[0], cache), settings=settings)
    uncached = Grounder(backend=_backend(model_dirs[0], None),
                        settings=Settings(cache_max_gb=0))
    first = cached.locate(video.path, "When is the red square visible?", opts)
    second = cached.locate(video.path, "When does the square disappear?", opts)
    assert first.timings["cache_misses"] == 2 and first.timings["cache_hits"] == 0
    assert second.timings["cache_hits"] == 2 and second.timings["cache_misses"] == 0
    assert second.timings["vision_s"] >= 0 and second.timings["prep_s"] > 0
    assert "decode_s" in second.timings
    reference = uncached.locate(video.path, "When does the square disappear?", opts)
    assert reference.timings["cache_hits"] == reference.timings["cache_misses"] == 0
    assert second.raw_answer == reference.raw_answer
    assert second.frame_times == reference.frame_times


def test_a_transformers_without_precomputed_features_gets_the_pixels(
        tmp_path: Path, model_dirs: tuple[Path, Path]) -> None:
    """Where ``forward`` takes no ``mm_encoder_outputs`` (transformers 4.x), the backend passes
    the pixels as before: same tokens, nothing cached."""
    cache = DiskCache(tmp_path / "cache", 10**9)
    backend = _backend(model_dirs[0], cache)
    frames = _frames(UNIFORM)
    expected = _plain_generate(backend, frames)
    backend._takes_features = False  # what load() finds on such a release
    with track() as tally:
        assert backend.generate_ids(frames, PROMPT, max_new_tokens=TOKENS) == expected
    assert (tally.hits, tally.misses) == (0, 0)
    assert "features" not in cache.info()["kinds"]


def test_a_videos_features_are_in_its_eviction_group(
        tmp_path: Path, model_dirs: tuple[Path, Path]) -> None:
    """The vision-feature entries join the eviction group of the video their frames came from
    (issue 22.4), so a video larger than the cap keeps its first windows' features as well as
    their frames for its second question. Ungrouped, every feature entry written evicted the
    least recently used entries: the video's own first windows, each gone before it was asked
    for again (0 feature hits)."""
    video = make_video(tmp_path / "v.mp4", duration=8.0, fps=10, intervals=[(1.0, 2.0)])
    opts = LocateOptions(frame_sampling_rate=2.0, max_frames_per_call=4, refine=False,
                         verify=False, max_new_tokens=4)
    question = "When is the red square visible?"
    group = group_of(make_key("any", {}, file_identity(video.path)))

    roomy = DiskCache(tmp_path / "roomy", 10**9)
    Grounder(backend=_backend(model_dirs[0], roomy),
             settings=Settings(cache_dir=tmp_path / "roomy")).locate(video.path, question, opts)
    entries = list(roomy.entries())
    kinds = [kind for kind, _, _ in entries]
    assert kinds.count("features") >= 3 and kinds.count("frames") >= 3  # several windows
    assert {group_of(path.stem) for _, path, _ in entries} == {group}
    total = sum(st.st_size for _, _, st in entries)

    cache = DiskCache(tmp_path / "cache", total // 2)  # half of one question's entries
    grounder = Grounder(backend=_backend(model_dirs[0], cache),
                        settings=Settings(cache_dir=tmp_path / "cache"))

    def feature_counts() -> tuple[int, int]:
        counts = cache.stats()["kinds"].get("features", {})
        return counts.get("hits", 0), counts.get("misses", 0)

    grounder.locate(video.path, question, opts)
    assert feature_counts() == (0, kinds.count("features"))
    second = grounder.locate(video.path, question, opts)
    hits, misses = feature_counts()
    assert hits >= 1 and hits + misses == 2 * kinds.count("features")
    assert second.timings["cache_hits"] >= 2  # the first window's frames and its features
    assert sum(st.st_size for _, _, st in cache.entries()) <= cache.max_bytes
    assert {group_of(path.stem) for _, path, _ in cache.entries()} == {group}


def test_eviction_group_of_frames(tmp_path: Path) -> None:
    """Frames from the frame cache name their video's group (also through a window's
    wrapper); frames made elsewhere, or from two videos, name none."""
    from vidground.cache.frames import cached_decode, eviction_group
    from vidground.grounding.window_frames import WindowFrames
    from vidground.video.probe import probe

    cache = DiskCache(tmp_path / "cache", 10**9)
    a = probe(make_video(tmp_path / "a.mp4", duration=2.0, fps=10).path)
    b = probe(make_video(tmp_path / "b.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)]).path)
    from_a = cached_decode(cache, a, [0.25, 0.75])
    from_b = cached_decode(cache, b, [0.25, 0.75])
    group_a = file_identity(a.path)
    assert eviction_group(from_a) == group_a != eviction_group(from_b)
    windows = WindowFrames(cache, a, from_a[0].size)
    assert eviction_group(windows.decode([0.25, 0.75, 1.25])) == group_a
    assert eviction_group([from_a[0], from_b[0]]) is None
    assert eviction_group(_frames([0.5, 1.0])) is None
