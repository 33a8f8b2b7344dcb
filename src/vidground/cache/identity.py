"""What a video file *is*, as a short digest: its size, its modification time and a hash of a few
sampled blocks (the whole file when it is small).

The path is not part of it, so a renamed (or ``cp -p``/``shutil.copy2``-copied) file keeps its
identity, and an edited file (new size, new mtime or new sampled bytes) gets a new one. Reading
the sampled blocks costs a few milliseconds even for a file of many gigabytes; the digest is kept
per (path, inode, size, mtime, ctime) so asking again about the same file costs one ``open``
and ``fstat``
(``ctime`` changes with every write, even one whose writer puts the mtime back).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from ..errors import VideoError

#: Files up to this size are hashed whole.
WHOLE_FILE_BYTES = 4 * 1024 * 1024
#: Otherwise: the first and last ``EDGE_BYTES`` (headers, moov atoms, indexes) and
#: ``SAMPLES`` blocks of ``BLOCK_BYTES`` spread evenly in between.
EDGE_BYTES = 256 * 1024
BLOCK_BYTES = 64 * 1024
SAMPLES = 32

_memo: OrderedDict[tuple[str, int, int, int, int, int], str] = OrderedDict()
_memo_lock = threading.Lock()
_MEMO_SIZE = 256


def file_identity(path: str | Path) -> str:
    """A hex digest naming the content of the file at ``path`` (see the module docstring)."""
    real = os.path.realpath(path)
    # opened without blocking and checked on the open file: a FIFO or device swapped in at the
    # path (after the video was probed) must not hang the reader or read without end
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        stat = os.fstat(f.fileno())
        if not S_ISREG(stat.st_mode):
            raise VideoError(f"{Path(path).name} is not a regular file; give a video file.")
        return _identity(f, real, stat)


def _identity(f: BinaryIO, real: str, stat: os.stat_result) -> str:
    """The digest of the open regular file ``f`` (``real``: its resolved path)."""
    memo_key = (real, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _memo_lock:
        if memo_key in _memo:
            _memo.move_to_end(memo_key)
            return _memo[memo_key]
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"size={stat.st_size};mtime_ns={stat.st_mtime_ns};".encode())
    for offset, length in _blocks(stat.st_size):
        f.seek(offset)
        digest.update(f.read(length))
    identity = digest.hexdigest()
    with _memo_lock:
        _memo[memo_key] = identity
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return identity


def _blocks(size: int) -> list[tuple[int, int]]:
    """(offset, length) of the byte ranges hashed for a file of ``size`` bytes."""
    if size <= WHOLE_FILE_BYTES:
        return [(0, size)]
    blocks = [(0, EDGE_BYTES)]
    inner_start, inner_end = EDGE_BYTES, size - EDGE_BYTES - BLOCK_BYTES
    for i in range(SAMPLES):
        blocks.append((inner_start + (inner_end - inner_start) * i // (SAMPLES - 1), BLOCK_BYTES))
    blocks.append((size - EDGE_BYTES, EDGE_BYTES))
    return blocks
