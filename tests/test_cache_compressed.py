"""Issue 22.7: the frame cache stores frames compressed (losslessly: the pixels a hit returns
are exactly the decoded ones), keeps the JPEG bytes the remote backend sends so a repeat
question encodes nothing and decompresses no pixels, and a video larger than the cache's cap
still gets hits on its second question."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fake_openai_server import FakeOpenAIServer
from media import make_video

from vidground.backends import images
from vidground.cache import DiskCache, make_key, track
from vidground.cache import frames as frames_module
from vidground.cache.frames import WindowEncodings, cached_decode
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.video.decode import decode_frames
from vidground.video.probe import probe

SIZE = (160, 96)


def _kind_bytes(cache: DiskCache, kind: str) -> int:
    return sum(st.st_size for k, _, st in cache.entries() if k == kind)


def test_cached_frames_are_compressed_and_exact(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=3.0, fps=10, size=(320, 192), noise=8,
                      motion=True)
    info = probe(made.path)
    times = [0.1 * i for i in range(25)]
    truth = decode_frames(info, times, size=SIZE)
    cache = DiskCache(tmp_path / "cache", 10**9)
    first = cached_decode(cache, info, times, size=SIZE)
    with track() as tally:
        again = cached_decode(cache, info, times, size=SIZE)
    assert (tally.hits, tally.misses) == (1, 0)
    for a, b, c in zip(truth, first, again, strict=True):
        assert a.time == b.time == c.time and a.index == b.index == c.index
        assert c.size == a.size
        assert np.array_equal(a.image, b.image) and np.array_equal(a.image, c.image)
    raw = sum(f.image.nbytes for f in truth)
    stored = _kind_bytes(cache, "frames")
    assert stored < raw / 2, (stored, raw)  # raw RGB (the old format) is about `raw`


def _grounder(fake: FakeOpenAIServer, **settings: Any) -> Grounder:
    return Grounder(settings=Settings(backend="openai", openai_base_url=fake.base_url,
                                      openai_model=fake.model, openai_max_retries=0,
                                      **settings))


def test_repeat_remote_question_sends_stored_jpeg_bytes(
        tmp_path: Path, fake_model: FakeOpenAIServer, monkeypatch: Any) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    video = make_video(tmp_path / "v.mp4", duration=4.0, fps=10, intervals=[(1.0, 2.0)])
    opts = LocateOptions(frame_sampling_rate=2.0, refine=False, verify=False)
    calls = {"jpeg": 0, "pixels": 0}
    encode, decompress = images.encode_jpeg, frames_module._decompress

    def counting_encode(*args: Any, **kwargs: Any) -> bytes:
        calls["jpeg"] += 1
        return encode(*args, **kwargs)

    def counting_decompress(*args: Any, **kwargs: Any) -> Any:
        calls["pixels"] += 1
        return decompress(*args, **kwargs)

    monkeypatch.setattr(images, "encode_jpeg", counting_encode)
    monkeypatch.setattr(frames_module, "_decompress", counting_decompress)
    grounder = _grounder(fake_model, cache_dir=tmp_path / "cache")
    fake_model.reset_stats()
    first = grounder.locate(video.path, "When is the red square visible?", opts)
    encoded_first = calls["jpeg"]
    assert encoded_first == len(first.frame_times) > 0
    calls.update(jpeg=0, pixels=0)
    second = grounder.locate(video.path, "When does the red square show up?", opts)
    assert calls == {"jpeg": 0, "pixels": 0}  # sent from the cache: no encode, no pixels
    uncached = _grounder(fake_model, cache_max_gb=0).locate(
        video.path, "When is the red square visible?", opts)
    assert calls["jpeg"] == encoded_first
    bodies = [r.body for r in fake_model.requests]
    assert len(bodies) == 3
    assert bodies[0] == bodies[2]  # cached or not: the same request, byte for byte
    assert bodies[1]["messages"][-1]["content"][:-1] == bodies[0]["messages"][-1]["content"][:-1]
    assert second.spans == first.spans == uncached.spans


def test_encodings_are_kept_per_spec(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    window = WindowEncodings(cache, make_key("frames", {"x": 1}, "ab"), "ab", 2)
    q85, q50 = images.jpeg_spec(85, None), images.jpeg_spec(50, None)
    window.put(0, q85, b"zero")
    assert WindowEncodings(cache, window.frames_key, "ab", 2).get(0, q85) is None  # not whole
    window.put(1, q85, b"one")
    again = WindowEncodings(cache, window.frames_key, "ab", 2)
    assert again.get(0, q85) == b"zero" and again.get(1, q85) == b"one"
    assert again.get(0, q50) is None  # another quality is another encoding


def test_a_video_larger_than_the_cap_hits_on_its_second_question(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=8.0, fps=10, size=(320, 192), noise=8)
    info = probe(made.path)
    windows = [[w + 0.25 * i for i in range(8)] for w in range(0, 8, 2)]  # 4 windows
    probe_cache = DiskCache(tmp_path / "measure", 10**9)
    cached_decode(probe_cache, info, windows[0], size=SIZE)
    one = _kind_bytes(probe_cache, "frames")
    cache = DiskCache(tmp_path / "cache", int(one * 2.6))  # room for about two windows of four
    other = make_key("blob", {"i": 0}, "ff")  # another video's entry, used long ago
    assert cache.put("blob", other, {}, bytes(int(one * 0.5)))

    def ask() -> tuple[int, int]:
        with track() as tally:
            for times in windows:
                got = cached_decode(cache, info, times, size=SIZE)
                assert [f.time for f in got] == [
                    f.time for f in decode_frames(info, times, size=SIZE)]
        return tally.hits, tally.misses

    assert ask() == (0, 4)
    hits, misses = ask()
    assert hits >= 1 and hits + misses == 4  # plain LRU: 0 hits (each window evicted first)
    assert cache.get("blob", other) is None  # the other video's entry went first
    assert sum(st.st_size for _, _, st in cache.entries()) <= cache.max_bytes


def test_eviction_keeps_the_writing_groups_oldest_entries(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10_000)
    keys = [make_key("blob", {"i": i}, "0a") for i in range(8)]
    for key in keys:
        assert cache.put("blob", key, {}, bytes(2000))
    left = {p.stem for _, p, _ in cache.entries()}
    assert keys[0] in left and keys[1] in left and keys[2] in left  # the first ones stay
    assert keys[-1] not in left  # the newest of the group over the cap went
    assert sum(st.st_size for _, _, st in cache.entries()) <= 10_000


def test_clear_plan_says_what_clear_will_delete(tmp_path: Path) -> None:
    import os
    import time

    from vidground import cache as cache_module

    settings = Settings(cache_dir=tmp_path / "cache")
    cache = cache_module.open_cache(settings)
    assert cache is not None
    old, new = make_key("frames", {"i": 0}, "aa"), make_key("encoded", {"i": 1}, "aa")
    cache.put("frames", old, {}, bytes(3000))
    cache.put("encoded", new, {}, bytes(1000))
    past = time.time() - 3 * 86400
    os.utime(cache.path("frames", old), (past, past))
    plan = cache_module.clear_plan(settings, older_than_s=86400)
    assert plan["entries"] == 1 and set(plan["kinds"]) == {"frames"}
    line = cache_module.describe_clear(plan)
    assert line.startswith("will delete 1 entries unused for 86400 s") and str(
        tmp_path / "cache") in line and "frames 1" in line
    assert cache.path("frames", old).exists()  # a plan deletes nothing
    assert cache_module.clear(settings, 86400) == (1, plan["bytes"])
    everything = cache_module.clear_plan(settings)
    assert (everything["entries"], set(everything["kinds"])) == (1, {"encoded"})
    assert cache_module.clear(settings) == (1, everything["bytes"])


def test_frames_stored_without_pixels_decode_again_only_when_read(
        tmp_path: Path, monkeypatch: Any) -> None:
    import vidground.cache.frames as fm

    made = make_video(tmp_path / "v.mp4", duration=3.0, fps=10, size=(320, 192), noise=8)
    info = probe(made.path)
    times = [0.2 * i for i in range(10)]
    truth = decode_frames(info, times, size=SIZE)
    cache = DiskCache(tmp_path / "cache", 10**9)
    first = cached_decode(cache, info, times, size=SIZE, pixels=False)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(truth, first, strict=True))
    assert _kind_bytes(cache, "frames") < 2000  # times and shapes only
    spec = images.jpeg_spec(85, None)
    for frame in first:
        images.frame_jpeg(frame)  # the remote backend's encodings, stored whole
    decodes = {"n": 0}
    real = fm.decode_frames

    def counting(*args: Any, **kwargs: Any) -> Any:
        decodes["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fm, "decode_frames", counting)
    with track() as tally:
        second = cached_decode(cache, info, times, size=SIZE, pixels=False)
    assert (tally.hits, tally.misses) == (1, 0)
    assert [f.encodings.get(spec) for f in second] == [  # type: ignore[attr-defined]
        images.encode_jpeg(f.image) for f in truth]
    assert decodes["n"] == 0 and second[3].size == truth[3].size  # no pixels needed yet
    assert all(np.array_equal(a.image, b.image) for a, b in zip(truth, second, strict=True))
    assert decodes["n"] == 1  # read: the window decoded again, once, and its pixels stored
    assert _kind_bytes(cache, "frames") > 2000
    third = cached_decode(cache, info, times, size=SIZE)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(truth, third, strict=True))
    assert decodes["n"] == 1
