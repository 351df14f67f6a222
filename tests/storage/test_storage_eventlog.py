"""The event log: contiguous ids, replay after any id, concurrent readers, crash recovery."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import eventlog
from storage.backend import EventLog
from storage.errors import LogClosed, NotFound
from storage.eventlog import HEADER, FileEventLog, checksum


def payload_for(event_id: int) -> bytes:
    """A deterministic payload of varying size, so readers can check what they got."""
    return (f"event-{event_id}:".encode() * (1 + event_id % 7))[: 20 + event_id % 300]


def fill(log: FileEventLog, count: int) -> None:
    for event_id in range(log.last_id + 1, log.last_id + count + 1):
        assert log.append(payload_for(event_id)) == event_id


def test_ids_start_at_one_and_are_contiguous(tmp_path: Path) -> None:
    with FileEventLog(tmp_path / "events.log") as log:
        assert log.last_id == 0
        assert log.read(0) == []
        fill(log, 50)
        assert log.append_batch([b"a", b"", b"c"]) == 53
        assert log.append_batch([]) == 53
        assert log.last_id == 53
        events = log.read(0)
        assert [event_id for event_id, _ in events] == list(range(1, 54))
        assert [payload for _, payload in events[:50]] == [payload_for(i) for i in range(1, 51)]
        assert events[50:] == [(51, b"a"), (52, b""), (53, b"c")]


def test_read_after_any_id_with_and_without_limit(tmp_path: Path) -> None:
    with FileEventLog(tmp_path / "events.log") as log:
        fill(log, 40)
        everything = log.read(0)
        for after in range(0, 42):
            assert log.read(after) == everything[after:]
            for limit in (0, 1, 3, 100):
                assert log.read(after, limit) == everything[after:after + limit]
        with pytest.raises(ValueError):
            log.read(-1)
        with pytest.raises(ValueError):
            log.read(0, -1)


def test_file_holds_only_framed_records(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    with FileEventLog(path) as log:
        log.append(b"hello")
        log.append(b"")
        assert log.path.stat().st_size == 2 * HEADER.size + 5
    raw = path.read_bytes()
    assert raw == (struct.pack("<II", 5, zlib.crc32(b"hello", zlib.crc32(b"\x05\0\0\0")))
                   + b"hello" + struct.pack("<II", 0, zlib.crc32(b"\0\0\0\0")))
    assert checksum(b"hello") == zlib.crc32(b"\x05\0\0\0hello")


def test_concurrent_writer_and_readers_see_identical_sequences(tmp_path: Path) -> None:
    total = 10_000
    log = FileEventLog(tmp_path / "events.log")
    seen: dict[str, list[tuple[int, bytes]]] = {}
    errors: list[BaseException] = []

    def poll_reader(name: str, seed: int) -> None:
        rng = random.Random(seed)
        got: list[tuple[int, bytes]] = []
        try:
            while len(got) < total:
                after = got[-1][0] if got else 0
                got += log.read(after, rng.choice([None, 1, 7, 500]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        seen[name] = got

    def waiting_reader(name: str) -> None:
        got: list[tuple[int, bytes]] = []
        try:
            while len(got) < total:
                after = got[-1][0] if got else 0
                log.wait(after, timeout=5)
                got += log.read(after)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
        seen[name] = got

    def writer() -> None:
        for event_id in range(1, total + 1):
            log.append(payload_for(event_id))
            if event_id % 1_000 == 0:
                log.sync()

    threads = [threading.Thread(target=poll_reader, args=(f"poll{i}", i)) for i in range(3)]
    threads += [threading.Thread(target=waiting_reader, args=(f"wait{i}",)) for i in range(2)]
    threads.append(threading.Thread(target=writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    log.close()
    assert not errors
    expected = [(i, payload_for(i)) for i in range(1, total + 1)]
    assert len(seen) == 5
    for name, got in seen.items():
        assert got == expected, name


async def test_asyncio_follower_via_subscribe(tmp_path: Path) -> None:
    """How the service follows a live log from the event loop: listener → call_soon_threadsafe."""
    total = 3_000
    log = FileEventLog(tmp_path / "events.log")
    loop = asyncio.get_running_loop()
    wakeup = asyncio.Event()
    unsubscribe = log.subscribe(lambda last_id: loop.call_soon_threadsafe(wakeup.set))

    def writer() -> None:
        for event_id in range(1, total + 1):
            log.append(payload_for(event_id))

    thread = threading.Thread(target=writer)
    thread.start()
    got: list[tuple[int, bytes]] = []
    while len(got) < total:
        wakeup.clear()
        batch = log.read(got[-1][0] if got else 0, 256)
        if batch:
            got += batch
        else:
            await asyncio.wait_for(wakeup.wait(), timeout=10)
    thread.join()
    unsubscribe()
    assert got == [(i, payload_for(i)) for i in range(1, total + 1)]
    log.close()


def test_listener_failures_do_not_reach_the_writer(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def broken(last_id: int) -> None:
        raise RuntimeError("slow client")

    with FileEventLog(tmp_path / "events.log") as log:
        log.subscribe(broken)
        unsubscribe = log.subscribe(calls.append)
        with caplog.at_level(logging.ERROR, logger="storage.eventlog"):
            assert log.append(b"x") == 1
        unsubscribe()
        log.append(b"y")
    assert calls == [1]
    assert "listener failed" in caplog.text


@pytest.mark.parametrize("garbage", [
    b"\x07",                                                  # a few bytes of a header
    struct.pack("<II", 100, 0) + b"only part of it",          # header + short payload
    struct.pack("<II", 3, checksum(b"abc") ^ 1) + b"abc",     # whole record, bad checksum
    struct.pack("<II", 0xFFFFFFFF, 0),                        # absurd length
    bytes(4096),                                              # zero-filled after a power cut
    os.urandom(1000),
], ids=["short-header", "short-payload", "bad-crc", "huge-length", "zeros", "random"])
def test_reopen_truncates_torn_tail(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "events.log"
    with FileEventLog(path) as log:
        fill(log, 25)
        size = log.path.stat().st_size
    with path.open("ab") as fh:
        fh.write(garbage)
    reopened = FileEventLog(path)
    assert reopened.last_id == 25
    assert reopened.truncated_bytes == len(garbage)
    assert path.stat().st_size == size
    assert reopened.read(0) == [(i, payload_for(i)) for i in range(1, 26)]
    assert reopened.append(b"after the crash") == 26
    reopened.close()
    with FileEventLog(path) as again:
        assert again.truncated_bytes == 0
        assert again.read(24) == [(25, payload_for(25)), (26, b"after the crash")]


def test_reopen_after_record_cut_midway(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    with FileEventLog(path) as log:
        fill(log, 10)
        before_last = log.path.stat().st_size
        log.append(b"z" * 5000)
    with path.open("r+b") as fh:
        fh.truncate(before_last + 2000)  # the crash hit in the middle of the last write
    with FileEventLog(path) as log:
        assert log.last_id == 10
        assert log.path.stat().st_size == before_last


def test_failed_write_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.log"
    log = FileEventLog(path)
    fill(log, 3)
    size = log.path.stat().st_size

    def half_then_fail(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(eventlog, "_write_all", half_then_fail)
    with pytest.raises(OSError):
        log.append(b"x" * 100)
    monkeypatch.undo()
    assert path.stat().st_size == size and log.last_id == 3
    assert log.append(b"fits") == 4
    log.close()
    with FileEventLog(path) as again:
        assert again.read(3) == [(4, b"fits")]


def test_close_fails_readers_and_wakes_waiters(tmp_path: Path) -> None:
    log = FileEventLog(tmp_path / "events.log")
    fill(log, 3)
    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            log.wait(3, timeout=10)
        except LogClosed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)
    log.close()
    thread.join(timeout=5)
    assert len(outcome) == 1
    with pytest.raises(NotFound):  # LogClosed is a NotFound: the service answers NOT_FOUND
        log.read(0)
    with pytest.raises(LogClosed):
        log.append(b"late")
    log.close()  # idempotent


def test_wait_times_out_with_last_id(tmp_path: Path) -> None:
    with FileEventLog(tmp_path / "events.log") as log:
        fill(log, 2)
        assert log.wait(0, timeout=0) == 2
        started = time.perf_counter()
        assert log.wait(2, timeout=0.05) == 2
        assert time.perf_counter() - started >= 0.04


def test_oversized_payload_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventlog, "MAX_PAYLOAD", 10)
    with FileEventLog(tmp_path / "events.log") as log:
        with pytest.raises(ValueError):
            log.append(b"x" * 11)
        assert log.last_id == 0


def test_dropped_log_closes_its_file(tmp_path: Path) -> None:
    log = FileEventLog(tmp_path / "events.log")
    fd = log._fd
    os.fstat(fd)
    del log
    with pytest.raises(OSError):
        os.fstat(fd)


def test_satisfies_protocol(tmp_path: Path) -> None:
    log: EventLog = FileEventLog(tmp_path / "events.log")
    log.close()
    assert log.closed


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=60), st.integers(0, 70))
def test_roundtrip_any_payloads(payloads: list[bytes], after: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.log"
        with FileEventLog(path) as log:
            for payload in payloads:
                log.append(payload)
        with FileEventLog(path) as log:
            assert log.truncated_bytes == 0
            expected = list(enumerate(payloads, start=1))
            assert log.read(after) == expected[after:]


def test_large_log_pages_and_reopens(tmp_path: Path) -> None:
    # Speed is measured by `make bench`; here only that 110 k events survive batching,
    # reopening and paged reads intact.
    count = 100_000
    path = tmp_path / "events.log"
    with FileEventLog(path) as log:
        for start in range(0, count, 1000):
            log.append_batch([str(i).encode() for i in range(start, start + 1000)])
        log.sync()
    with FileEventLog(path) as log:
        for i in range(count, count + 10_000):
            log.append(str(i).encode())
    log = FileEventLog(path)
    after, seen = 0, 0
    while page := log.read(after, 1000):
        for eid, payload in page:
            assert eid == seen + 1 and payload == str(seen).encode()
            seen += 1
        after = page[-1][0]
    assert seen == count + 10_000 == log.last_id
    assert len(log.read(0)) == seen
    log.close()
