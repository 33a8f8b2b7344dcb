"""The disk cache itself and the frame cache, on real files and real encoded videos: hits and
misses, what invalidates an entry, damaged entries, the size cap, and two threads or two
processes asking for the same entry at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from media import make_video

from vidground.cache import DiskCache, file_identity, make_key, track
from vidground.cache.frames import cached_decode
from vidground.cache.store import SUFFIX
from vidground.video.decode import decode_frames
from vidground.video.probe import probe

TIMES = [0.3, 1.1, 1.5, 2.7]
SIZE = (96, 64)


def _entries(cache: DiskCache, kind: str = "frames") -> list[Path]:
    return sorted(p for k, p, _ in cache.entries() if k == kind)


def _same_frames(a, b) -> bool:  # type: ignore[no-untyped-def]
    return len(a) == len(b) and all(
        x.time == y.time and x.index == y.index and np.array_equal(x.image, y.image)
        for x, y in zip(a, b, strict=True))


def _decode_counted(cache: DiskCache, path: Path) -> tuple[list, int, int]:  # type: ignore[type-arg]
    with track() as tally:
        frames = cached_decode(cache, probe(path), TIMES, size=SIZE)
    return frames, tally.hits, tally.misses


def test_frames_hit_on_rename_and_copy_and_miss_on_edit(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    made = make_video(tmp_path / "a.mp4", duration=3.0, intervals=[(1.0, 2.0)])
    truth = decode_frames(made.path, TIMES, size=SIZE)

    first, hits, misses = _decode_counted(cache, made.path)
    assert (hits, misses) == (0, 1) and _same_frames(first, truth)
    again, hits, misses = _decode_counted(cache, made.path)
    assert (hits, misses) == (1, 0) and _same_frames(again, truth)

    renamed = made.path.rename(tmp_path / "renamed.mp4")
    _, hits, misses = _decode_counted(cache, renamed)
    assert (hits, misses) == (1, 0)
    copied = Path(shutil.copy2(renamed, tmp_path / "copy.mp4"))  # same bytes and mtime
    _, hits, misses = _decode_counted(cache, copied)
    assert (hits, misses) == (1, 0)

    # edited in place: same size, same mtime, one byte changed -> a new identity, a miss
    stat = copied.stat()
    data = bytearray(copied.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copied.write_bytes(bytes(data))
    os.utime(copied, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_identity(copied) != file_identity(renamed)
    _, hits, misses = _decode_counted(cache, copied)
    assert (hits, misses) == (0, 1)

    # re-encoded with other content at the same path: a miss, and the new pictures
    other = make_video(renamed, duration=3.0, intervals=[(0.0, 3.0)])
    frames, hits, misses = _decode_counted(cache, other.path)
    assert (hits, misses) == (0, 1)
    assert _same_frames(frames, decode_frames(other.path, TIMES, size=SIZE))
    # other times or another size are other entries
    with track() as tally:
        cached_decode(cache, probe(other.path), TIMES[:2], size=SIZE)
        cached_decode(cache, probe(other.path), TIMES, size=(64, 32))
    assert (tally.hits, tally.misses) == (0, 2)


def test_identity_of_large_files_samples_blocks(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(1).bytes(9 * 1024 * 1024))
    base = file_identity(big)
    assert file_identity(big) == base
    stat = big.stat()
    with open(big, "r+b") as f:  # inside the first block, mtime put back
        f.write(b"x")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = file_identity(big)
    assert edited != base
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: new mtime
    assert file_identity(big) != edited


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_a_damaged_entry_is_dropped_and_recomputed(tmp_path: Path, damage: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    made = make_video(tmp_path / "a.mp4", duration=3.0)
    truth, _, _ = _decode_counted(cache, made.path)
    (entry,) = _entries(cache)
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-100] ^= 0x01  # one bit of one pixel
    elif damage == "truncate":
        del data[len(data) // 2:]  # a half-written file
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    entry.write_bytes(bytes(data))

    frames, hits, misses = _decode_counted(cache, made.path)
    assert (hits, misses) == (0, 1)
    assert _same_frames(frames, truth)  # recomputed, never the damaged pixels
    assert cache.stats()["corrupt"] == 1
    assert "dropped a damaged frames entry" in caplog.text
    _, hits, misses = _decode_counted(cache, made.path)  # stored again, whole
    assert (hits, misses) == (1, 0)


def test_size_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10_000)
    payload = bytes(1500)
    keys = [make_key("blob", {"i": i}) for i in range(5)]
    for i, key in enumerate(keys):
        assert cache.put("blob", key, {}, payload)
        os.utime(cache.path("blob", key), (1_000_000 + i, 1_000_000 + i))  # used in order
    assert cache.get("blob", keys[0]) is not None  # used now: the most recent
    for i in range(5, 8):
        key = make_key("blob", {"i": i})
        assert cache.put("blob", key, {}, payload)
        keys.append(key)
    left = {p.stem for p in _entries(cache, "blob")}
    total = sum(p.stat().st_size for p in _entries(cache, "blob"))
    assert total <= 10_000
    assert keys[0] in left  # recently used survives
    assert keys[1] not in left and keys[2] not in left  # the oldest went first
    assert keys[-1] in left
    assert cache.stats()["evicted"] >= 2
    assert not cache.put("blob", make_key("blob", {"i": 99}), {}, bytes(20_000))  # over cap


def test_clear_older_than(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    old, new = make_key("blob", {"i": 0}), make_key("blob", {"i": 1})
    cache.put("blob", old, {}, b"old")
    cache.put("blob", new, {}, b"new")
    os.utime(cache.path("blob", old), (time.time() - 7200, time.time() - 7200))
    assert cache.clear(older_than_s=3600)[0] == 1
    assert cache.get("blob", old) is None and cache.get("blob", new) is not None
    assert cache.clear()[0] == 1 and _entries(cache, "blob") == []


def test_two_threads_asking_at_once_compute_once(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", 10**9)
    inside = threading.Event()
    second_asking = threading.Event()
    calls: list[str] = []
    results: dict[str, tuple[bytes, bool]] = {}

    def create() -> bytes:
        calls.append(threading.current_thread().name)
        inside.set()
        # the first computes until the second is asking (not a guess at a sleep's length)
        assert second_asking.wait(30)
        time.sleep(0.05)  # from its announcement into get_or_create's wait
        return b"expensive"

    def ask(name: str) -> None:
        if name == "second":
            second_asking.set()
        results[name] = cache.get_or_create("blob", {"q": 1}, create, lambda v: ({}, v),
                                            lambda e: bytes(e.payload))

    first = threading.Thread(target=ask, args=("first",), name="first")
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=ask, args=("second",), name="second")
    second.start()
    first.join(10)
    second.join(10)
    assert calls == ["first"]
    assert results == {"first": (b"expensive", False), "second": (b"expensive", True)}


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vidground.cache import DiskCache

    root, marker, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    asking = marker.with_name("asking")

    def create():
        with open(log, "a") as f:
            f.write("computed\\n")
        marker.touch()
        deadline = time.monotonic() + 60  # compute until the other process is asking
        while not asking.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # from its announcement into get_or_create's wait
        return b"features"

    if marker.exists():
        asking.touch()
    value, hit = DiskCache(root, 10**9).get_or_create(
        "blob", {"q": 1}, create, lambda v: ({}, v), lambda e: bytes(e.payload))
    print(value.decode(), hit)
""")


def test_two_processes_asking_at_once_compute_once(tmp_path: Path) -> None:
    root, marker, log = tmp_path / "cache", tmp_path / "computing", tmp_path / "log"
    args = [sys.executable, "-c", _WORKER, str(root), str(marker), str(log)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():  # the first process is computing now
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    out_first, _ = first.communicate(timeout=60)
    out_second, _ = second.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0
    assert out_first.split() == ["features", "False"]
    assert out_second.split() == ["features", "True"]  # waited for the first, then read it
    assert log.read_text().splitlines() == ["computed"]


def test_entries_are_written_atomically(tmp_path: Path) -> None:
    """No temporary file is left and no reader sees a partial entry while a writer works."""
    cache = DiskCache(tmp_path / "cache", 10**9)
    key = make_key("blob", {"big": 1})
    payload = os.urandom(4 * 1024 * 1024)
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            entry = cache.get("blob", key)
            if entry is not None:
                seen.append(len(entry.payload))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(5):
        cache.put("blob", key, {}, payload)
    stop.set()
    reader.join(30)
    assert all(n == len(payload) for n in seen)
    assert cache.stats()["corrupt"] == 0
    leftovers = [p for p in cache.path("blob", key).parent.iterdir() if p.suffix != SUFFIX]
    assert leftovers == []


def test_cache_info_and_clear_commands(tmp_path: Path) -> None:
    import json

    root = tmp_path / "cache"
    cache = DiskCache(root, 10**9)
    old, new = make_key("frames", {"i": 0}), make_key("frames", {"i": 1})
    cache.put("frames", old, {}, bytes(1000))
    cache.put("frames", new, {}, bytes(2000))
    os.utime(cache.path("frames", old), (time.time() - 3 * 86400, time.time() - 3 * 86400))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vidground", "cache", *args,
                               "--cache-dir", str(root)], capture_output=True, text=True,
                              timeout=120)

    info = cli("info", "--json")
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    assert facts["entries"] == 2 and facts["kinds"]["frames"]["entries"] == 2
    assert facts["bytes"] > 3000
    cleared = cli("clear", "--older-than", "2d")
    assert cleared.returncode == 0 and "deleted 1 entries" in cleared.stdout
    assert cache.get("frames", old) is None and cache.get("frames", new) is not None
    bad = cli("clear", "--older-than", "soon")
    assert bad.returncode == 2 and "cannot read the age" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert "deleted 1 entries" in cli("clear").stdout
    assert json.loads(cli("info", "--json").stdout)["entries"] == 0


def _rewrite_meta(entry: Path, **changes: object) -> None:
    """Change fields of an entry's meta block, with a valid meta checksum (a crafted entry)."""
    import json
    import struct
    import zlib

    data = entry.read_bytes()
    meta_len = struct.unpack("<I", data[8:12])[0]
    meta = json.loads(data[16:16 + meta_len])
    meta.update(changes)
    block = json.dumps(meta).encode()
    entry.write_bytes(data[:8] + struct.pack("<II", len(block), zlib.crc32(block)) + block
                      + data[16 + meta_len:])


@pytest.mark.parametrize("claim", [2**50, 2**31, -1, "12", True, None])
def test_an_entry_claiming_a_huge_payload_is_dropped_not_allocated(
        tmp_path: Path, claim: object) -> None:
    """Issue 21 item 14: a header claiming a 1 PB payload raised MemoryError (a 500 on every
    request touching it, never dropped); the claim is checked against the file's real size."""
    cache = DiskCache(tmp_path / "cache", 10**9)
    made = make_video(tmp_path / "a.mp4", duration=3.0)
    truth, _, _ = _decode_counted(cache, made.path)
    (entry,) = _entries(cache)
    _rewrite_meta(entry, payload_bytes=claim)
    frames, hits, misses = _decode_counted(cache, made.path)
    assert (hits, misses) == (0, 1) and _same_frames(frames, truth)
    assert cache.stats()["corrupt"] == 1
    assert _decode_counted(cache, made.path)[1:] == (1, 0)  # stored again, whole


def _release_fifo(path: Path) -> None:
    """Unblock a reader stuck opening the FIFO ``path`` (the old code), if any."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("kind", ["fifo", "symlink-dev-zero", "directory"])
def test_a_non_regular_file_at_an_entry_path_is_dropped_without_reading(
        tmp_path: Path, kind: str) -> None:
    """Issue 21 item 14: a FIFO at an entry's path hung the reader (the server's only executor
    worker) forever; a link to /dev/zero would read without end. Neither is read: the entry
    counts as damaged, is dropped and recomputed."""
    cache = DiskCache(tmp_path / "cache", 10**9)
    made = make_video(tmp_path / "a.mp4", duration=3.0)
    truth, _, _ = _decode_counted(cache, made.path)
    (entry,) = _entries(cache)
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry)
    elif kind == "directory":
        entry.mkdir()
    else:
        os.symlink("/dev/zero", entry)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(_decode_counted(cache, made.path)),
                              daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        _release_fifo(entry)
        worker.join(5)
        pytest.fail(f"reading a {kind} at an entry's path hung")
    ((frames, hits, misses),) = result  # type: ignore[misc]
    assert (hits, misses) == (0, 1) and _same_frames(frames, truth)
    assert cache.stats()["corrupt"] == 1
    assert entry.is_file() and not entry.is_symlink()  # replaced by a real entry
    assert _decode_counted(cache, made.path)[1:] == (1, 0)


def test_the_identity_of_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO swapped in at a video's path after it was probed hung the reader of its sampled
    blocks; it is refused at once (a VideoError, 422)."""
    from vidground.errors import VideoError

    fifo = tmp_path / "video.mp4"
    os.mkfifo(fifo)
    result: list[object] = []

    def identity() -> None:
        try:
            result.append(file_identity(fifo))
        except VideoError as exc:
            result.append(exc)

    worker = threading.Thread(target=identity, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        _release_fifo(fifo)
        worker.join(5)
        pytest.fail("hashing a FIFO hung")
    (error,) = result
    assert isinstance(error, VideoError) and "not a regular file" in error.message


def test_a_fifo_at_a_writers_temporary_path_does_not_hang_it(tmp_path: Path) -> None:
    """A FIFO put at the temporary file a writer uses blocked the write forever; the entry is
    not stored that once (the FIFO is removed) and is stored the next time."""
    cache = DiskCache(tmp_path / "cache", 10**9)
    key = make_key("frames", {"x": 1})
    path = cache.path("frames", key)
    path.parent.mkdir(parents=True)
    result: list[bool] = []
    planted: list[Path] = []

    def write() -> None:  # the temporary name holds the writing thread's id
        planted.append(path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"))
        os.mkfifo(planted[0])
        result.append(cache.put("frames", key, {}, b"payload"))

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(10)
    (tmp,) = planted
    if worker.is_alive():
        _release_fifo(tmp)
        pytest.fail("writing through a FIFO hung")
    assert result == [False] and not tmp.exists()
    assert cache.put("frames", key, {}, b"payload") and cache.get("frames", key) is not None
