"""Where an ingest reads the uploaded bytes from: a file that is still being written (an upload in
progress) or a finished one (a file on disk), and what format those bytes are.

An upload's chunks are appended to a temp file by the event loop while the ingest thread parses
what has arrived, so parsing overlaps receiving and the file is never held in memory. The thread
blocks in `read` until enough bytes are there or the stream has ended; an aborted upload (the
client cancelled, a limit was hit) makes `read` raise `Aborted` so the thread stops at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = [
    "FORMATS",
    "Aborted",
    "FinishedFile",
    "GrowingFile",
    "NotTabular",
    "TruncatedGzip",
    "decompressed",
    "fill",
    "sniff_format",
]

FORMATS = ("csv", "csv.gz", "parquet")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


class Aborted(Exception):
    """The upload was abandoned (cancelled by the client, refused by a limit)."""


class NotTabular(ValueError):
    """The bytes are not a CSV (optionally gzip) or Parquet file; the text says what they look like."""


class TruncatedGzip(ValueError):
    """The gzip stream ends before its end marker."""


class _Source:
    path: Path

    def read(self, n: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def peek(self, n: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def wait_complete(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class FinishedFile(_Source):
    """A file that is complete on disk (the benchmark's and the CLI's way in)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._fh = open(self.path, "rb")

    def read(self, n: int) -> bytes:
        return self._fh.read(n)

    def readinto(self, view) -> int:
        return self._fh.readinto(view)

    def peek(self, n: int) -> bytes:
        with open(self.path, "rb") as fh:
            return fh.read(n)

    def wait_complete(self) -> None:
        return None

    def close(self) -> None:
        self._fh.close()


class GrowingFile(_Source):
    """A temp file the event loop appends to (`append`, `finish`, `abort`) and one reader thread
    reads from as it grows (`read`, `peek`, `wait_complete`)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._out = open(self.path, "wb", buffering=0)
        self._in = open(self.path, "rb")
        self._cond = threading.Condition()
        self._written = 0
        self._read = 0
        self._finished = False
        self._aborted = False

    @property
    def size(self) -> int:
        return self._written

    # -- the writer (the event loop) --------------------------------------------------------------
    def append(self, data: bytes) -> None:
        if not data:
            return
        view = memoryview(data)
        while view:
            n = self._out.write(view)
            view = view[n:]
        with self._cond:
            self._written += len(data)
            self._cond.notify_all()

    def finish(self) -> None:
        """Every byte is there."""
        self._out.close()
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Stop the reader: its next (or current) read raises Aborted."""
        try:
            self._out.close()
        except OSError:
            pass
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    # -- the reader (the ingest thread) -----------------------------------------------------------
    def _wait_for(self, end: int) -> int:
        """Bytes available up to `end`, waiting until that many are there or the stream ended."""
        with self._cond:
            while not self._aborted and not self._finished and self._written < end:
                self._cond.wait(timeout=1.0)
            if self._aborted:
                raise Aborted("the upload was abandoned")
            return min(end, self._written)

    def read(self, n: int) -> bytes:
        """Up to `n` bytes: blocks until `n` are there or the stream has ended (b"" at its end)."""
        upto = self._wait_for(self._read + n)
        if upto <= self._read:
            return b""
        data = self._in.read(upto - self._read)
        self._read += len(data)
        return data

    def readinto(self, view) -> int:
        """Fill `view` as far as the stream allows: blocks until it is full or the stream ended."""
        upto = self._wait_for(self._read + len(view))
        if upto <= self._read:
            return 0
        n = self._in.readinto(memoryview(view)[:upto - self._read])
        self._read += n
        return n

    def peek(self, n: int) -> bytes:
        upto = self._wait_for(n)
        return os.pread(self._in.fileno(), upto, 0)

    def wait_complete(self) -> None:
        with self._cond:
            while not self._aborted and not self._finished:
                self._cond.wait(timeout=1.0)
            if self._aborted:
                raise Aborted("the upload was abandoned")

    def check(self) -> None:
        """Raise Aborted if the upload was abandoned (polled between blocks)."""
        if self._aborted:
            raise Aborted("the upload was abandoned")

    def close(self) -> None:
        for fh in (self._in, self._out):
            try:
                fh.close()
            except OSError:
                pass


def sniff_format(head: bytes, declared: str = "") -> str:
    """'csv', 'csv.gz' or 'parquet': `declared` when given, else from the first bytes (gzip 1f8b,
    Parquet "PAR1", anything else is read as CSV text and judged by `check_text`)."""
    if declared:
        return declared
    if head.startswith(GZIP_MAGIC):
        return "csv.gz"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return "csv"


_BINARY_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                 b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one: save it as CSV)", b"%PDF": "a PDF document",
                 b"BZh": "a bzip2 archive", b"\xfd7zXZ": "an xz archive", b"(\xb5/\xfd": "a zstd archive",
                 b"\xd0\xcf\x11\xe0": "an old Excel/Office file (save it as CSV)"}


def check_text(head: bytes) -> None:
    """Raise NotTabular unless `head` (the first bytes, decompressed) looks like CSV text: UTF-8, no
    NUL bytes, not JSON, not a known binary format, and a first line with a comma."""
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise NotTabular(f"it is {what}")
    if b"\x00" in head:
        raise NotTabular("it holds binary data (NUL bytes)")
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    cut = text.rfind(b"\n")
    sample = text if cut < 0 else text[:cut]
    try:
        decoded = sample.decode("utf-8")
    except UnicodeDecodeError:
        raise NotTabular("it is not UTF-8 text") from None
    stripped = decoded.lstrip()
    if not stripped:
        raise NotTabular("it is empty")
    if stripped[0] in "{[":
        raise NotTabular("it looks like JSON")
    if stripped.startswith("<"):
        raise NotTabular("it looks like HTML or XML")
    first = stripped.splitlines()[0]
    if "," not in first:
        raise NotTabular("its first line has no commas (a CSV header looks like timestamp,open,high,low,close,volume)")


class decompressed:
    """A gzip stream over a source, read like one (isal's igzip: ~4x zlib's speed). A stream that
    ends before its end marker raises TruncatedGzip; a stream that is not gzip, NotTabular."""

    def __init__(self, source: _Source):
        from isal import igzip

        self._gz = igzip.GzipFile(fileobj=source, mode="rb")

    def read(self, n: int) -> bytes:
        try:
            return self._gz.read(n)
        except EOFError:
            raise TruncatedGzip("the gzip data ends before its end marker: the file is truncated") from None
        except (OSError, ValueError) as exc:
            raise NotTabular(f"it is not valid gzip data ({exc})") from None

    def readinto(self, view) -> int:
        try:
            return self._gz.readinto(view)
        except EOFError:
            raise TruncatedGzip("the gzip data ends before its end marker: the file is truncated") from None
        except (OSError, ValueError) as exc:
            raise NotTabular(f"it is not valid gzip data ({exc})") from None

    def close(self) -> None:
        self._gz.close()


def fill(readinto, view) -> int:
    """Read into all of `view` (short reads repeated) unless the stream ends first; bytes read."""
    view = memoryview(view)
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return got
