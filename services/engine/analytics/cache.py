"""Answers kept: in the run's folder (`analytics/answer-w<window>-b<bins>.pb`: a finished run
never changes, and the file goes with the run; the last ANSWERS_PER_RUN parameter sets) and in
memory (the most recently used, up to a byte budget).

A stored answer is the serialized `Analytics` (cached unset) behind a magic and a CRC-32 of
it, so a torn or zero-filled file (written without fsync: it can always be computed again) is
recomputed rather than served.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Hashable

from isal import isal_zlib

from .load import analytics_dir, write_into_run

_STRIPES = [threading.Lock() for _ in range(64)]

MAGIC = b"HSA1"
MEMORY_BYTES = 128 << 20
ANSWER_PREFIX = "answer-"
ANSWERS_PER_RUN = 8


def answer_name(window: int, bins: int) -> str:
    return f"{ANSWER_PREFIX}w{window}-b{bins}.pb"


def answer_lock(backtest_id: str, name: str) -> threading.Lock:
    """Held while an answer is computed: a second caller waits and reads it."""
    return _STRIPES[hash((backtest_id, name)) % len(_STRIPES)]


def read_answer(store, backtest_id: str, name: str) -> bytes | None:
    try:
        with open(os.path.join(analytics_dir(store, backtest_id), name), "rb") as fh:
            blob = fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(blob) < 8 or blob[:4] != MAGIC:
        return None
    payload = blob[8:]
    if struct.unpack("<I", blob[4:8])[0] != isal_zlib.crc32(payload):
        return None
    return payload


def write_answer(store, backtest_id: str, name: str, payload: bytes) -> bool:
    """Keep an answer in the run's folder, with at most ANSWERS_PER_RUN others (the oldest go:
    parameters are the caller's to vary, the disk is not)."""
    header = MAGIC + struct.pack("<I", isal_zlib.crc32(payload))
    if not write_into_run(store, backtest_id, name, header + payload):
        return False
    folder = analytics_dir(store, backtest_id)
    try:
        kept = [e for e in os.scandir(folder) if e.name.startswith(ANSWER_PREFIX) and e.name.endswith(".pb")]
        if len(kept) > ANSWERS_PER_RUN:
            kept.sort(key=lambda e: e.stat().st_mtime_ns)
            for entry in kept[:len(kept) - ANSWERS_PER_RUN]:
                if entry.name != name:
                    os.unlink(entry.path)
    except FileNotFoundError:  # the run was deleted meanwhile
        pass
    return True


class MemoryCache:
    """An LRU of bytes values bounded by their total size."""

    def __init__(self, max_bytes: int = MEMORY_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge answer would push out everything else
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def drop(self, match) -> None:
        """Forget the keys `match(key)` accepts."""
        with self._lock:
            for key in [k for k in self._items if match(k)]:
                self._size -= len(self._items.pop(key))
