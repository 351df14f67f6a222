"""The append-only event log of one backtest, `<backtest_dir>/events.log`.

Record: `u32 length | u32 CRC-32 of length+payload | payload`, little-endian; the CRC covers the
length so a zero-filled tail (seen after power cuts) is not read as empty records. The n-th
record is event n: ids start at 1 and are contiguous by construction. Nothing else is stored.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import weakref
import zlib
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import LogClosed, StorageError

LOG_NAME = "events.log"
HEADER = struct.Struct("<II")
_LENGTH = struct.Struct("<I")
MAX_PAYLOAD = 64 * 1024 * 1024  # a larger length field can only be garbage from a torn write
_SCAN_CHUNK = 1 << 20

logger = logging.getLogger(__name__)

Listener = Callable[[int], object]
OpenHook = Callable[["FileEventLog"], object]

# Called with each log opened under a folder (see `on_open`): (folder + separator, hook).
_open_hooks: dict[int, tuple[str, OpenHook]] = {}
_open_hooks_lock = threading.Lock()


def on_open(folder: Path, hook: OpenHook) -> Callable[[], None]:
    """Call `hook(log)` after every log under `folder` is opened (its torn tail already cut),
    before the opener gets it: what owns the logs can repair one that lost its tail. Returns
    a function that removes the hook. A hook's exception is logged and swallowed."""
    prefix = os.path.join(os.path.abspath(folder), "")
    with _open_hooks_lock:
        key = max(_open_hooks, default=0) + 1
        _open_hooks[key] = (prefix, hook)

    def remove() -> None:
        with _open_hooks_lock:
            _open_hooks.pop(key, None)

    return remove


class FileEventLog:
    """One backtest's event log: one writer thread, any number of reader threads or tasks.

    Durability: `append` hands the record to the OS before it returns, so every reader (in this
    process or another) can read an id as soon as it is returned, and the record survives a
    crash of this process. It survives a power cut only once `sync()` has run: fsync per event
    would cap the engine at a few thousand events/s on real disks, so the writer syncs at its
    checkpoints (day boundaries, grouped: services/engine/checkpoint.py) and after the terminal
    event. A power cut loses at most the events since the last checkpoint (a restarted engine
    recomputes them), and re-opening cuts the torn tail so the ids stay contiguous; what owns
    the logs may then repair one that lost its end (`on_open`).

    Open one instance per file per process (`LocalStore` does): opening truncates a torn tail,
    which would corrupt a record that another live instance is still writing.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            offsets, end = _scan(fd)
            size = os.fstat(fd).st_size
            if size > end:
                # Only the tail can be torn (records are only ever appended); a crash mid-write
                # leaves a short or checksum-failing last record. Cut it so the next append
                # continues the sequence.
                logger.warning("event log %s: truncating %d bytes of torn tail after event %d",
                               self._path, size - end, len(offsets))
                os.ftruncate(fd, end)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        # The fd is closed when the last holder drops the log, even without `close()`.
        self._finalizer = weakref.finalize(self, os.close, fd)
        self._offsets = offsets  # _offsets[i] is the file offset of event i + 1
        self._end = end
        self._cond = threading.Condition(threading.Lock())  # guards the index and _reads
        self._append_lock = threading.Lock()  # one append (or sync, or close) at a time
        self._reads = 0  # preads in flight; close() waits for them so the fd is never reused
        self._closed = False
        self._listeners: list[Listener] = []
        self.truncated_bytes = size - end
        if _open_hooks:
            self._run_open_hooks()

    # --- reading ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_id(self) -> int:
        """Id of the last appended event; 0 when the log is empty."""
        return len(self._offsets)

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, after_id: int, limit: int | None = None) -> list[tuple[int, bytes]]:
        """Events with id > `after_id`, oldest first, at most `limit` of them.

        `after_id` at or beyond `last_id` gives an empty list; the caller decides whether
        that is "caught up" or "out of range". Raises `LogClosed` once the log is closed.
        """
        if after_id < 0:
            raise ValueError(f"after_id must be >= 0, got {after_id}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {limit}")
        with self._cond:
            self._check_open()
            last = len(self._offsets)
            if after_id >= last or limit == 0:
                return []
            stop = last if limit is None else min(last, after_id + limit)
            starts = self._offsets[after_id:stop]
            end = self._offsets[stop] if stop < last else self._end
            self._reads += 1
        try:
            base = starts[0]
            block = _pread_exact(self._fd, end - base, base)
        finally:
            with self._cond:
                self._reads -= 1
                if self._reads == 0 and self._closed:
                    self._cond.notify_all()
        if len(block) != end - base:
            raise StorageError(f"event log {self._path} is shorter than its index: "
                               "was it modified outside the store?")
        # Checksums were verified when the index was built (or the records written by us),
        # so replay only slices: this loop is what bounds replay speed.
        skip = HEADER.size - base
        ends = starts[1:]
        ends.append(end)
        ids = range(after_id + 1, stop + 1)
        return [(event_id, block[start + skip:record_end - base])
                for event_id, start, record_end in zip(ids, starts, ends, strict=True)]

    def wait(self, after_id: int, timeout: float | None = None) -> int:
        """Block until an event after `after_id` exists (or `timeout` passes); return last_id.

        For thread-based followers; asyncio followers should `subscribe` instead.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._closed or len(self._offsets) > after_id, timeout)
            self._check_open()
            return len(self._offsets)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(last_id)` after every append and once on close; return an unsubscribe.

        Listeners run on the writer's thread and must not block (e.g. `loop.call_soon_threadsafe`);
        an exception in one is logged and swallowed so that no reader can stall the engine.
        """
        with self._cond:
            self._listeners = [*self._listeners, listener]

        def unsubscribe() -> None:
            with self._cond:
                self._listeners = [fn for fn in self._listeners if fn is not listener]

        return unsubscribe

    # --- writing ----------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Append one event and return its id. The record is in the OS when this returns."""
        return self.append_batch((payload,))

    def append_batch(self, payloads: Iterable[bytes]) -> int:
        """Append several events with one write; return the id of the last (last_id if none)."""
        payloads = [p if type(p) is bytes else bytes(p) for p in payloads]
        lengths = [len(p) for p in payloads]
        if not lengths:
            return self.last_id
        if max(lengths) > MAX_PAYLOAD:
            raise ValueError(f"event payload of {max(lengths)} bytes exceeds {MAX_PAYLOAD}")
        pack = HEADER.pack
        data = b"".join([pack(n, checksum(p)) + p for p, n in zip(payloads, lengths)])
        with self._append_lock:
            with self._cond:
                self._check_open()
                start = self._end
            try:
                _write_all(self._fd, data)
            except BaseException:
                # A partial record would sit in front of every later one: cut it off now.
                os.ftruncate(self._fd, start)
                raise
            with self._cond:
                position = start
                for length in lengths:
                    self._offsets.append(position)
                    position += HEADER.size + length
                self._end = position
                last = len(self._offsets)
                listeners = self._listeners
                self._cond.notify_all()
        self._notify(listeners, last)
        return last

    def sync(self) -> None:
        """fsync the log: every event appended so far survives a power cut."""
        with self._append_lock:
            self._check_open()
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the log. Waits for reads in flight; later reads and appends raise `LogClosed`."""
        with self._append_lock:
            with self._cond:
                if self._closed:
                    return
                self._closed = True
                self._cond.notify_all()  # wake `wait`ers: they raise LogClosed
                self._cond.wait_for(lambda: self._reads == 0)
                listeners, self._listeners = self._listeners, []
                last = len(self._offsets)
            self._finalizer()
        self._notify(listeners, last)

    def __enter__(self) -> FileEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileEventLog({str(self._path)!r}, last_id={self.last_id})"

    def _run_open_hooks(self) -> None:
        where = os.path.abspath(self._path)
        with _open_hooks_lock:
            hooks = [hook for prefix, hook in _open_hooks.values() if where.startswith(prefix)]
        for hook in hooks:
            try:
                hook(self)
            except Exception:
                logger.exception("event log %s: open hook failed", self._path)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"event log {self._path} is closed")

    def _notify(self, listeners: list[Listener], last: int) -> None:
        for listener in listeners:
            try:
                listener(last)
            except Exception:
                logger.exception("event log listener failed")


def checksum(payload: bytes) -> int:
    """CRC-32 of the record's length field followed by its payload."""
    return zlib.crc32(payload, zlib.crc32(_LENGTH.pack(len(payload))))


def _scan(fd: int) -> tuple[array[int], int]:
    """Offsets of every intact record from the start, and the offset just past the last one."""
    offsets: array[int] = array("q")
    size = os.fstat(fd).st_size
    buf = b""
    buf_at = 0  # buf holds the file's bytes [buf_at, buf_at + len(buf))
    view = memoryview(buf)
    pos = 0
    unpack, crc32, header = HEADER.unpack_from, zlib.crc32, HEADER.size
    while pos + header <= size:
        if pos + header > buf_at + len(buf):
            buf, buf_at = _refill(fd, buf, buf_at, pos, pos + header, size)
            view = memoryview(buf)
        length, crc = unpack(buf, pos - buf_at)
        record_end = pos + header + length
        if length > MAX_PAYLOAD or record_end > size:
            break
        if record_end > buf_at + len(buf):
            buf, buf_at = _refill(fd, buf, buf_at, pos, record_end, size)
            view = memoryview(buf)
        first = pos + header - buf_at
        if crc32(view[first:first + length], crc32(view[first - header:first - 4])) != crc:
            break
        offsets.append(pos)
        pos = record_end
    return offsets, pos


def _refill(fd: int, buf: bytes, buf_at: int, pos: int, need: int, size: int) -> tuple[bytes, int]:
    """Keep buf from file offset `pos` on and read on to at least `need` (a chunk if more)."""
    have = buf_at + len(buf)
    upto = min(size, max(need, pos + _SCAN_CHUNK))
    return buf[pos - buf_at:] + _pread_exact(fd, upto - have, have), pos


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    """pread `size` bytes (fewer only at end of file); Linux caps one pread near 2 GiB."""
    first = os.pread(fd, size, offset)
    if len(first) == size or not first:
        return first
    parts = [first]
    got = len(first)
    while got < size:
        part = os.pread(fd, size - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
