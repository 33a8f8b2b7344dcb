"""Is a SQLite job database intact? And if not, keep the damaged files aside.

SQLite itself does not complain about a damaged write-ahead log: at open it replays frames up
to the first one whose checksum fails and silently drops the rest, so a few flipped bytes in
``jobs.sqlite3-wal`` lose every job committed after them while the database looks fine (and
``PRAGMA integrity_check`` says "ok"). So before SQLite opens the file, :func:`wal_problem`
walks the log the way SQLite does (header, salts, cumulative checksums; see
https://sqlite.org/fileformat2.html#walformat) and reports a log that SQLite would cut short.
One exception: a bad frame with nothing of its generation after it is what a crash during a
write leaves (that transaction never finished), and is not called damage.

After opening, ``PRAGMA integrity_check`` covers the database file itself.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path

WAL_MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER = 32
FRAME_HEADER = 24


def _checksum(data: bytes, s1: int, s2: int, big_endian: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & mask
        s2 = (s2 + words[i + 1] + s1) & mask
    return s1, s2


def wal_problem(wal: Path) -> str | None:
    """Why SQLite would drop committed data from the log ``wal``, or None when it is sound."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if not data:
        return None
    if len(data) < WAL_HEADER:
        return f"{wal.name} is {len(data)} bytes long, shorter than a log header"
    magic, version, page_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:WAL_HEADER])
    if magic not in WAL_MAGIC or version != 3007000:
        return f"{wal.name} does not start with a SQLite log header (damaged header)"
    big = bool(magic & 1)
    sums = _checksum(data[:24], 0, 0, big)
    if sums != (c1, c2):
        return f"the header checksum of {wal.name} is wrong (damaged header)"
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"{wal.name} names an impossible page size ({page_size})"
    frame = FRAME_HEADER + page_size
    offset, index = WAL_HEADER, 0
    while offset + frame <= len(data):
        header = data[offset:offset + FRAME_HEADER]
        _, _, f1, f2, k1, k2 = struct.unpack(">6I", header)
        if (f1, f2) != (salt1, salt2):
            return None  # a frame of an older generation: the log ends here, as it should
        sums = _checksum(header[:8], *sums, big)
        sums = _checksum(data[offset + FRAME_HEADER:offset + frame], *sums, big)
        if sums != (k1, k2):
            if _later_frame_of_generation(data, offset + frame, frame, salt1, salt2):
                return (f"frame {index} of {wal.name} (byte {offset}) fails its checksum; "
                        "SQLite would silently drop it and every later transaction")
            return None  # a torn last write: that transaction never completed
        offset += frame
        index += 1
    return None


def _later_frame_of_generation(data: bytes, start: int, frame: int, salt1: int,
                               salt2: int) -> bool:
    for offset in range(start, len(data) - FRAME_HEADER + 1, frame):
        if struct.unpack(">2I", data[offset + 8:offset + 16]) == (salt1, salt2):
            return True
    return False


def kept_aside(db: Path) -> list[Path]:
    """Damaged files an earlier start kept aside next to ``db``."""
    return sorted(db.parent.glob(f"{db.name}*.damaged-*"))


def keep_aside(db: Path) -> list[Path]:
    """Rename ``db`` and its ``-wal``/``-shm`` files to ``….damaged-<UTC time>``; returns the
    new paths (nothing is deleted)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    moved = []
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            target = path.with_name(f"{path.name}.damaged-{stamp}")
            path.rename(target)
            moved.append(target)
    return moved
