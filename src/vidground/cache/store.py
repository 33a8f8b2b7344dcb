"""A content-addressed, size-capped, least-recently-used cache of files on disk.

Layout: ``<root>/v1/<kind>/<k[:2]>/<key>.vgc`` with ``key`` a digest of what determines the
content (never a path alone), ``kind`` e.g. ``frames`` or ``features``. One entry is one file::

    b"VGCACHE1" | u32 meta length | u32 crc32(meta) | meta (JSON) | payload

and the meta holds the payload's length and crc32, so a truncated, half-written or damaged entry
is detected on read, deleted and recomputed - never used.

Safe for several threads and processes at once:

- writes go to a temporary file in the entry's folder, then are renamed over the entry
  (``os.replace``), so a reader sees the whole old entry, the whole new one or none. There is
  no ``fsync`` (it cost more than decoding again on the development VM): a crash can leave an
  entry whose data never reached the disk, and its checksum then fails, so it is recomputed;
- :meth:`DiskCache.get_or_create` holds an exclusive ``flock`` on ``<root>/v1/locks/<key>.lock``
  while it computes, and looks again after taking it, so two requests that want the same entry
  at once compute it once (threads too: each takes the lock through its own file descriptor);
- a hit sets the entry's mtime to now; when the cache grows past ``max_bytes`` the entries used
  longest ago are deleted until it is back under 90% of the cap (one process evicts at a time);
- entries may belong to a *group* (a video: its frames and their encodings), named at the front
  of the key (``<group>-<digest>``). Writing an entry of a group evicts other groups' entries
  first (least recently used first); when the group alone is over the cap its *newest* entries
  go (the one just written, usually), so a video larger than the cache keeps its first windows
  and a second question, reading the windows in the same order, hits them (plain LRU would
  delete each window before it is asked for again: issue 22.7).

Where ``fcntl`` does not exist (Windows) the lock only covers the threads of one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO, TypeVar

from . import tally

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAGIC = b"VGCACHE1"
FORMAT = "v1"
SUFFIX = ".vgc"
_HEAD = struct.Struct("<II")
_HEX = re.compile("[0-9a-f]{1,16}")
#: Largest meta block accepted when reading (a bigger length field means a damaged file).
MAX_META_BYTES = 16 * 1024 * 1024
#: How long a request waits for another one computing the same entry before computing it too.
LOCK_TIMEOUT_S = 900.0
#: Eviction brings the cache down to this share of the cap (so it does not run on every write).
EVICT_TO = 0.9
#: Temporary files older than this are leftovers of a crashed writer.
STALE_TMP_S = 3600.0
#: Disk totals in :meth:`DiskCache.stats` are re-counted at most this often.
STATS_RESCAN_S = 5.0


class CorruptEntryError(Exception):
    """An entry file that cannot be trusted (truncated, damaged, not ours)."""


@dataclass(frozen=True)
class Entry:
    """A verified entry: its meta (JSON object) and payload bytes."""

    meta: dict[str, Any]
    payload: bytearray


def make_key(kind: str, parts: Mapping[str, Any], group: str | None = None) -> str:
    """The key of the entry of ``kind`` whose content ``parts`` (JSON values) determine;
    ``group`` (e.g. a video's identity) puts the entry in that eviction group (the module
    docstring): its first 16 hex digits lead the key."""
    text = json.dumps({"kind": kind, **parts}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.blake2b(text.encode(), digest_size=20).hexdigest()
    if group is None:
        return digest
    if not _HEX.fullmatch(group[:16]):
        group = hashlib.blake2b(group.encode(), digest_size=8).hexdigest()
    return f"{group[:16]}-{digest}"


def group_of(key: str) -> str | None:
    """The eviction group named in ``key`` (None for a key made without one)."""
    head, sep, _ = key.partition("-")
    return head if sep else None


class DiskCache:
    """See the module docstring. ``max_bytes`` is the cap on all entries together."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root).expanduser()
        self.max_bytes = int(max_bytes)
        self.base = self.root / FORMAT
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "locks").mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}
        self._disk: tuple[float, int, int] | None = None  # (when, entries, bytes)
        self._approx_bytes: int | None = None

    # ------------------------------------------------------------------ entries

    def path(self, kind: str, key: str) -> Path:
        return self.base / kind / key[:2] / f"{key}{SUFFIX}"

    def get(self, kind: str, key: str) -> Entry | None:
        """The verified entry, or None (a damaged entry is deleted and counts as absent)."""
        path = self.path(kind, key)
        try:
            entry = _read(path, key)
        except FileNotFoundError:
            return None
        except (CorruptEntryError, OSError, ValueError) as exc:
            self.drop(kind, key, reason=str(exc))
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last used: now (the LRU order)
        return entry

    def put(self, kind: str, key: str, meta: Mapping[str, Any], payload: bytes | memoryview
            ) -> bool:
        """Store an entry atomically; False when it was not stored (too big, disk error)."""
        view = memoryview(payload).cast("B")
        if self.max_bytes <= 0 or view.nbytes > self.max_bytes * EVICT_TO:
            return False
        path = self.path(kind, key)
        full = dict(meta, key=key, kind=kind, payload_bytes=view.nbytes,
                    crc32=zlib.crc32(view), created=time.time())
        meta_bytes = json.dumps(full, separators=(",", ":")).encode()
        tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _create(tmp) as f:
                f.write(MAGIC)
                f.write(_HEAD.pack(len(meta_bytes), zlib.crc32(meta_bytes)))
                f.write(meta_bytes)
                f.write(view)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._count(kind, "write_errors")
            log.warning("cache: could not store a %s entry in %s (%s); going on without it",
                        kind, self.root, exc)
            return False
        size = len(MAGIC) + _HEAD.size + len(meta_bytes) + view.nbytes
        self._count(kind, "bytes_written", size)
        with self._lock:
            if self._approx_bytes is not None:
                self._approx_bytes += size
            self._disk = None
        self._evict_if_needed(group_of(key))
        return True

    def drop(self, kind: str, key: str, *, reason: str = "") -> None:
        """Delete a damaged entry (counted as ``corrupt``); an empty folder in its place too."""
        path = self.path(kind, key)
        try:
            path.unlink()
        except IsADirectoryError:
            with contextlib.suppress(OSError):
                path.rmdir()
        except OSError:
            pass
        self._count(kind, "corrupt")
        log.warning("cache: dropped a damaged %s entry %s (%s); it will be recomputed",
                    kind, key[:12], reason)

    def get_or_create(self, kind: str, parts: Mapping[str, Any], create: Callable[[], T],
                      encode: Callable[[T], tuple[dict[str, Any], bytes | memoryview]],
                      decode: Callable[[Entry], T], group: str | None = None
                      ) -> tuple[T, bool]:
        """``(value, hit)``: the stored value for ``parts``, or ``create()`` stored for next
        time. Only one caller (thread or process) runs ``create`` for one key at a time; the
        others wait and then read its entry. A stored entry that ``decode`` rejects (raises
        ``CorruptEntryError``/``ValueError``/``KeyError``) is dropped and recomputed.
        ``group``: the entry's eviction group (:func:`make_key`)."""
        key = make_key(kind, parts, group)
        found = self._lookup(kind, key, decode)
        if found is not None:
            return found[0], True
        with self._key_lock(key):
            found = self._lookup(kind, key, decode)  # computed while we waited?
            if found is not None:
                return found[0], True
            self._count(kind, "misses")
            value = create()
            try:
                meta, payload = encode(value)
            except Exception as exc:  # noqa: BLE001 - a value we cannot store is still good
                self._count(kind, "write_errors")
                log.warning("cache: could not encode a %s entry (%s: %s); not stored", kind,
                            type(exc).__name__, exc)
            else:
                self.put(kind, key, meta, payload)
        return value, False

    def _lookup(self, kind: str, key: str, decode: Callable[[Entry], T]) -> tuple[T] | None:
        entry = self.get(kind, key)
        if entry is None:
            return None
        try:
            value = decode(entry)
        except (CorruptEntryError, ValueError, KeyError, TypeError) as exc:
            self.drop(kind, key, reason=f"unreadable: {exc}")
            return None
        self._count(kind, "hits")
        return (value,)

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        """Exclusive across processes and threads while computing ``key`` (bounded wait)."""
        if fcntl is None:  # pragma: no cover - Windows: this process's threads only
            with _thread_lock(key):
                yield
            return
        path = self.base / "locks" / f"{key}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        log.warning("cache: waited %.0f s for another computation of %s; "
                                    "computing it here too", LOCK_TIMEOUT_S, key[:12])
                        locked = False
                        break
                    time.sleep(0.02)
            try:
                yield
            finally:
                if locked:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ size and eviction

    def entries(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """``(kind, path, stat)`` of every entry (temporary files of crashed writers older than
        an hour are deleted on the way)."""
        if not self.base.is_dir():
            return
        now = time.time()
        for kind_dir in sorted(p for p in self.base.iterdir() if p.is_dir()):
            if kind_dir.name == "locks":
                continue
            for shard in (p for p in kind_dir.iterdir() if p.is_dir()):
                for item in shard.iterdir():
                    try:
                        stat = item.stat()
                    except OSError:
                        continue  # deleted meanwhile
                    if item.name.endswith(".tmp"):
                        if now - stat.st_mtime > STALE_TMP_S:
                            with contextlib.suppress(OSError):
                                item.unlink()
                        continue
                    if item.suffix == SUFFIX:
                        yield kind_dir.name, item, stat

    def _evict_if_needed(self, keep: str | None = None) -> None:
        with self._lock:
            approx = self._approx_bytes
        if approx is not None and approx <= self.max_bytes:
            return
        self.evict(keep=keep)

    def evict(self, max_bytes: int | None = None, *, keep: str | None = None) -> int:
        """Delete the least recently used entries until the cache holds at most 90% of
        ``max_bytes`` (default: the cap) when it holds more than the cap. Entries of the group
        ``keep`` (the one being written) go last, newest first (the module docstring).
        Returns how many were deleted. Another process already evicting makes this a no-op."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        with self._exclusive("evict") as got:
            if not got:
                return 0
            items = sorted(self.entries(), key=lambda e: e[2].st_mtime)
            total = sum(st.st_size for _, _, st in items)
            removed = 0
            if total > cap:
                if keep is not None:
                    own = [e for e in items if group_of(e[1].stem) == keep]
                    items = [e for e in items if group_of(e[1].stem) != keep] + own[::-1]
                for kind, path, stat in items:
                    if total <= cap * EVICT_TO:
                        break
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        self._forget_lock(path.stem)
                        total -= stat.st_size
                        removed += 1
                        self._count(kind, "evicted")
            with self._lock:
                self._approx_bytes = total
                self._disk = None
            return removed

    def clear(self, older_than_s: float | None = None) -> tuple[int, int]:
        """Delete every entry (or those not used for ``older_than_s`` seconds); returns
        ``(entries, bytes)`` deleted."""
        now = time.time()
        count = size = 0
        with self._exclusive("evict") as got:
            if not got:
                raise RuntimeError("another process is evicting from this cache; try again")
            for _, path, stat in list(self.entries()):
                if older_than_s is not None and now - stat.st_mtime < older_than_s:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    self._forget_lock(path.stem)
                    count += 1
                    size += stat.st_size
            with self._lock:
                self._approx_bytes = None
                self._disk = None
        return count, size

    def _forget_lock(self, key: str) -> None:
        """Delete the lock file of ``key`` unless someone holds it."""
        if fcntl is None:  # pragma: no cover
            return
        path = self.base / "locks" / f"{key}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _exclusive(self, name: str) -> Iterator[bool]:
        """A non-blocking cache-wide lock: yields False when another holder has it."""
        if fcntl is None:  # pragma: no cover
            yield True
            return
        fd = os.open(self.base / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ reporting

    def _count(self, kind: str, what: str, amount: int = 1) -> None:
        with self._lock:
            counts = self._counts.setdefault(kind, {})
            counts[what] = counts.get(what, 0) + amount
        if what in ("hits", "misses"):
            current = tally.current()
            if current is not None:
                current.count(what == "hits")

    def info(self) -> dict[str, Any]:
        """What is on disk now: entries and bytes per kind, oldest and newest use."""
        kinds: dict[str, dict[str, Any]] = {}
        for kind, _, stat in self.entries():
            k = kinds.setdefault(kind, {"entries": 0, "bytes": 0, "oldest_use": None,
                                        "newest_use": None})
            k["entries"] += 1
            k["bytes"] += stat.st_size
            k["oldest_use"] = min(k["oldest_use"] or stat.st_mtime, stat.st_mtime)
            k["newest_use"] = max(k["newest_use"] or stat.st_mtime, stat.st_mtime)
        return {"dir": str(self.root), "max_bytes": self.max_bytes,
                "entries": sum(k["entries"] for k in kinds.values()),
                "bytes": sum(k["bytes"] for k in kinds.values()), "kinds": kinds}

    def stats(self) -> dict[str, Any]:
        """Counters of this process (hits, misses, corrupt entries dropped, evictions, bytes
        written) and what is on disk (re-counted at most every few seconds)."""
        now = time.monotonic()
        with self._lock:
            disk = self._disk
        if disk is None or now - disk[0] > STATS_RESCAN_S:
            entries = size = 0
            for _, _, stat in self.entries():
                entries += 1
                size += stat.st_size
            disk = (now, entries, size)
            with self._lock:
                self._disk = disk
                self._approx_bytes = size
        with self._lock:
            kinds = {k: dict(v) for k, v in self._counts.items()}
        totals = {what: sum(c.get(what, 0) for c in kinds.values())
                  for what in ("hits", "misses", "corrupt", "evicted", "bytes_written")}
        return {"enabled": True, "dir": str(self.root), "max_bytes": self.max_bytes,
                "entries": disk[1], "bytes": disk[2], **totals, "kinds": kinds}


def _create(tmp: Path) -> BinaryIO:
    """``tmp`` opened for writing as a regular file: never through a link, and without blocking
    on a FIFO someone put there (an OSError, so the entry is simply not stored)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    f = os.fdopen(os.open(tmp, flags, 0o644), "wb")
    if not S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise OSError(f"{tmp.name} is not a regular file")
    return f


def _read(path: Path, key: str) -> Entry:
    """Read and verify one entry file; :class:`CorruptEntryError` when it cannot be trusted.

    Only a regular file is read (opened without following a link and without blocking, so a
    FIFO or device put at an entry's path cannot hang the reader), and nothing is allocated
    beyond what the file really holds: the meta's payload length must match the file's size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptEntryError(f"cannot open the entry ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not S_ISREG(st.st_mode):
            raise CorruptEntryError("not a regular file")
        head = f.read(len(MAGIC) + _HEAD.size)
        if len(head) < len(MAGIC) + _HEAD.size or not head.startswith(MAGIC):
            raise CorruptEntryError("not a vidground cache entry (bad header)")
        meta_len, meta_crc = _HEAD.unpack(head[len(MAGIC):])
        if meta_len > min(MAX_META_BYTES, st.st_size - len(head)):
            raise CorruptEntryError("damaged header")
        meta_bytes = f.read(meta_len)
        if len(meta_bytes) != meta_len or zlib.crc32(meta_bytes) != meta_crc:
            raise CorruptEntryError("damaged meta block")
        meta, size = _entry_meta(meta_bytes, key)
        if size != st.st_size - len(head) - meta_len:
            raise CorruptEntryError(f"payload is {st.st_size - len(head) - meta_len} bytes, "
                                    f"expected {size} (half-written?)")
        payload = bytearray(size)
        got = f.readinto(payload)
        if got != size or f.read(1):
            raise CorruptEntryError(f"payload is {got} bytes, expected {size} (half-written?)")
    if zlib.crc32(payload) != meta.get("crc32"):
        raise CorruptEntryError("payload checksum mismatch")
    return Entry(meta, payload)


def _entry_meta(meta_bytes: bytes, key: str) -> tuple[dict[str, Any], int]:
    """The meta of an entry of ``key`` and its payload length."""
    try:
        meta = json.loads(meta_bytes)
    except (ValueError, RecursionError) as exc:
        raise CorruptEntryError("unreadable meta block") from exc
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise CorruptEntryError("entry of another key")
    size = meta.get("payload_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise CorruptEntryError(f"bad payload length {size!r}")
    return meta, size


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def _thread_lock(key: str) -> Iterator[None]:  # pragma: no cover - Windows fallback
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    with lock:
        yield
