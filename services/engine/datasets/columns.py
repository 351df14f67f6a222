"""The catalog's columnar form (core/catalog.py `_write_build`: ts/open/high/low/close/volume .npy,
dates.npy, starts.npy, meta.json last), written a block at a time.

Each column is an .npy file whose 128-byte header is written first as a placeholder and again,
with the final length, when the column is closed; np.load (memory-mapped or not) reads it like
any other. Nothing is ever held whole: a column is appended block by block, reversed block by
block, and read back block by block.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "COLUMNS",
    "HEADER_BYTES",
    "ColumnWriter",
    "read_blocks",
    "reverse_columns",
    "write_days",
    "write_json",
]

COLUMNS = (("ts", np.int64), ("open", np.float64), ("high", np.float64), ("low", np.float64),
           ("close", np.float64), ("volume", np.float64))
HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"
READ_ROWS = 1 << 20


def _header(dtype: np.dtype, n: int) -> bytes:
    text = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n,)})
    body_len = HEADER_BYTES - len(_MAGIC) - 2
    body = text.encode("latin1")
    if len(body) + 1 > body_len:
        raise ValueError(f"npy header too long for {n} rows")
    return _MAGIC + struct.pack("<H", body_len) + body + b" " * (body_len - len(body) - 1) + b"\n"


class _Column:
    def __init__(self, path: Path, dtype):
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.fh = open(path, "wb", buffering=0)
        self.fh.write(_header(self.dtype, 0))

    def append(self, values: np.ndarray) -> None:
        arr = np.ascontiguousarray(values, dtype=self.dtype)
        view = memoryview(arr).cast("B")
        while view:
            view = view[self.fh.write(view):]
        self.n += len(arr)

    def close(self, fsync: bool) -> None:
        self.fh.seek(0)
        self.fh.write(_header(self.dtype, self.n))
        if fsync:
            os.fsync(self.fh.fileno())
        self.fh.close()


class ColumnWriter:
    """ts/open/high/low/close/volume .npy files in `directory`, appended to a block at a time."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cols = {name: _Column(self.directory / f"{name}.npy", dtype) for name, dtype in COLUMNS}
        self.closed = False

    @property
    def rows(self) -> int:
        return self.cols["ts"].n

    def append(self, ts, o, h, lo, c, v) -> None:
        for name, values in zip(("ts", "open", "high", "low", "close", "volume"), (ts, o, h, lo, c, v)):
            self.cols[name].append(values)

    def close(self, fsync: bool = False) -> None:
        if not self.closed:
            for col in self.cols.values():
                col.close(fsync)
            self.closed = True

    def abandon(self) -> None:
        for col in self.cols.values():
            try:
                col.fh.close()
            except OSError:
                pass
        self.closed = True


def _count(path: Path) -> tuple[int, int, np.dtype]:
    """(rows, header bytes, dtype) of an .npy file."""
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh)
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        return int(shape[0]), fh.tell(), dtype


def read_blocks(directory: Path, rows: int = READ_ROWS, names=tuple(n for n, _ in COLUMNS)) -> Iterator[dict]:
    """The columns back, `rows` at a time: {name: array} per block."""
    handles = {}
    try:
        meta = {}
        for name in names:
            n, offset, dtype = _count(Path(directory) / f"{name}.npy")
            meta[name] = (n, dtype)
            fh = open(Path(directory) / f"{name}.npy", "rb")
            fh.seek(offset)
            handles[name] = fh
        total = meta[names[0]][0]
        for start in range(0, total, rows):
            count = min(rows, total - start)
            yield {name: np.fromfile(handles[name], dtype=meta[name][1], count=count) for name in names}
    finally:
        for fh in handles.values():
            fh.close()


def reverse_columns(directory: Path, rows: int = READ_ROWS) -> None:
    """Reverse every column file in place (a newest-first file, stored oldest first), a block at a
    time from the end: memory stays at one block."""
    for name, dtype in COLUMNS:
        path = Path(directory) / f"{name}.npy"
        n, offset, dt = _count(path)
        tmp = path.with_suffix(".rev")
        with open(path, "rb") as src, open(tmp, "wb", buffering=0) as out:
            out.write(_header(dt, n))
            end = n
            while end > 0:
                start = max(0, end - rows)
                src.seek(offset + start * dt.itemsize)
                block = np.fromfile(src, dtype=dt, count=end - start)[::-1].copy()
                out.write(memoryview(block).cast("B"))
                end = start
        os.replace(tmp, path)


def write_days(directory: Path, dates: np.ndarray, starts: np.ndarray, fsync: bool) -> None:
    for name, arr in (("dates", dates), ("starts", starts)):
        with open(Path(directory) / f"{name}.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())


def write_json(path: Path, doc: dict, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
