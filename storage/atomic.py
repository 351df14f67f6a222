"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Temp file in the same directory (rename is atomic only within one file system) + fsync +
`os.replace` + fsync of the directory, so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gzip
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"  # temp files look like `.<name>.<random>.tmp`; sweepers may remove them


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> int:
    """Replace `path` by `data` atomically and return the number of bytes written.

    With `fsync=False` the write is still atomic against crashes of this process (the rename
    happens after the data is in the OS), but a power cut may lose it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # Leave nothing behind: a half-written temp file would only confuse a later sweep.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_dir(path.parent)
    return len(data)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> bool:
    """Flush every write on the file system that holds `path` to disk: Linux syncfs(2).

    Durably writing many small files this way costs one journal commit and one device flush,
    where an fsync per file pays a flush each (here: 5 ms instead of 200 ms for 735 files).
    Returns False where syncfs is unavailable; the caller then fsyncs file by file.
    """
    syncfs = _syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # a libc without syncfs (glibc has it since 2.14)
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def dumps_json(obj: Any, *, indent: int | None = None) -> bytes:
    """JSON as UTF-8 bytes; compact unless `indent` is given. NaN/inf are refused (not JSON)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent,
                      separators=separators).encode("utf-8")


def gzip_json(obj: Any, *, level: int = 5) -> bytes:
    """Gzipped compact JSON. mtime=0 so equal documents give equal bytes (cacheable, testable)."""
    # Level 5 compresses JSON within a few percent of level 9 at about twice the speed.
    return gzip.compress(dumps_json(obj), compresslevel=level, mtime=0)


def write_json_gz_atomic(path: Path, obj: Any, *, level: int = 5, fsync: bool = True) -> int:
    """Write `obj` as gzipped JSON atomically; return the compressed size in bytes."""
    return write_atomic(path, gzip_json(obj, level=level), fsync=fsync)


def write_json_atomic(path: Path, obj: Any, *, fsync: bool = True) -> int:
    """Write `obj` as indented (human-readable) JSON atomically; return the size in bytes."""
    return write_atomic(path, dumps_json(obj, indent=2) + b"\n", fsync=fsync)
