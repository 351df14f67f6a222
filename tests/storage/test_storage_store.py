"""LocalStore: ids, lifecycle, shared logs, delete under readers, TTL cleanup, metadata."""

from __future__ import annotations

import gc
import io
import os
import threading
import time
import weakref
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import LocalStore, StorageBackend
from storage.errors import AlreadyExists, LogClosed, NotFound
from storage.records import BacktestRecord
from storage.store import user_dir_name


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "data", ttl_seconds=100.0) as local:
        yield local


def new(store: LocalStore, backtest_id: str, created_at: float = 1000.0,
        **fields: object) -> Path:
    fields.setdefault("strategy_id", "s1")
    return store.create(BacktestRecord(backtest_id=backtest_id, created_at=created_at,
                                       **fields))  # type: ignore[arg-type]


BAD_IDS = ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 201, "naïve", "a b",
           "a\x00b", "/abs"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unsafe_ids_rejected(store: LocalStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.backtest_dir(bad)
    with pytest.raises(ValueError):
        new(store, bad)
    with pytest.raises(ValueError):
        store.event_log(bad)
    with pytest.raises(ValueError):
        store.delete(bad)
    with pytest.raises(ValueError):
        store.write_day(bad, "2024-10-24", {}, {})
    assert store.get(bad) is None


def test_seed_style_ids_accepted(store: LocalStore) -> None:
    backtest_id = "5708424d-5962-4629-978c-05b3a174e104_2024-10-24_2024-10-31"
    assert new(store, backtest_id, caller="alice") == store.root / "users" / "alice" / "backtests" / backtest_id
    assert new(store, "bt:20241202.153045-abc_123").is_dir()


def test_create_get_update(store: LocalStore) -> None:
    path = new(store, "bt1", caller="c", request_id="r")
    assert path.is_dir() and (path / "events.log").exists() is False
    got = store.get("bt1")
    assert got is not None and got.expires_at == 1000.0 + 100.0  # created_at + TTL
    with pytest.raises(AlreadyExists):
        new(store, "bt1")
    with pytest.raises(AlreadyExists):
        new(store, "bt2", caller="c", request_id="r")
    assert not store.backtest_dir("bt2").exists()
    assert store.find_by_request("c", "r") == got

    store.update("bt1", status="running", started_at=1001.0)
    store.update("bt1", status="completed", finished_at=5000.0)
    finished = store.get("bt1")
    assert finished is not None and finished.expires_at == 5100.0  # TTL from the finish
    store.update("bt1", status="failed", finished_at=6000.0, expires_at=1.0)
    assert store.get("bt1").expires_at == 1.0  # type: ignore[union-attr]
    assert store.list()[0] == [store.get("bt1")]
    assert store.unfinished() == []
    assert store.count_running_by_caller("c") == 0


def test_event_log_is_shared_and_persists(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with LocalStore(root) as store:
        new(store, "bt1")
        log = store.event_log("bt1")
        assert store.event_log("bt1") is log
        log.append(b"one")
        log.append(b"two")
        log.sync()
        with pytest.raises(NotFound):
            store.event_log("unknown")
    assert log.closed  # closed with the store
    with LocalStore(root) as store:
        assert store.event_log("bt1").read(0) == [(1, b"one"), (2, b"two")]


def test_unused_logs_close_beyond_the_keep_limit(tmp_path: Path) -> None:
    with LocalStore(tmp_path, keep_open_logs=1) as store:
        for name in ("a", "b"):
            new(store, name)
        first = weakref.ref(store.event_log("a"))
        held = store.event_log("b")  # evicts "a" from the kept set; nobody holds it now
        gc.collect()
        assert first() is None
        # A log someone still holds stays the shared instance even when evicted.
        new(store, "c")
        store.event_log("c")
        assert store.event_log("b") is held


def test_days_and_metadata(store: LocalStore) -> None:
    new(store, "bt1")
    size = store.write_day("bt1", "2024-10-24", {"date": "2024-10-24", "trades": []},
                           {"events_history": {}})
    assert size > 0
    assert store.read_day("bt1", "2024-10-24") == ({"date": "2024-10-24", "trades": []},
                                                   {"events_history": {}})
    assert store.list_days("bt1") == ["2024-10-24"]
    assert store.day_files("bt1", "2024-10-24").trades_daily.is_file()
    with pytest.raises(NotFound):
        store.read_day("bt1", "2024-10-25")
    with pytest.raises(NotFound):
        store.read_metadata("bt1")
    store.write_metadata("bt1", {"status": "completed", "daily_summaries": [{"pnl": 1.5}]})
    assert store.read_metadata("bt1") == {"status": "completed",
                                          "daily_summaries": [{"pnl": 1.5}]}
    day = zipfile.ZipFile(io.BytesIO(b"".join(store.day_archive("bt1", "2024-10-24"))))
    assert day.namelist() == ["trades_daily.json.gz", "diagnostics_export.json.gz"]
    whole = zipfile.ZipFile(io.BytesIO(b"".join(
        store.backtest_archive("bt1", store.read_metadata("bt1"), [{"a": 1}], [{"b": 2}]))))
    assert "2024-10-24/trades_daily.json.gz" in whole.namelist()
    for missing in (lambda: store.list_days("nope"), lambda: store.read_day("nope", "2024-10-24"),
                    lambda: store.write_day("nope", "2024-10-24", {}, {}),
                    lambda: store.write_metadata("nope", {}),
                    lambda: store.day_archive("nope", "2024-10-24"),
                    lambda: store.backtest_archive("nope", {}, [], [])):
        with pytest.raises(NotFound):
            missing()


def test_delete_removes_everything(store: LocalStore) -> None:
    path = new(store, "bt1")
    store.event_log("bt1").append(b"x")
    store.write_day("bt1", "2024-10-24", {}, {})
    store.write_metadata("bt1", {})
    store.delete("bt1")
    assert not path.exists() and store.get("bt1") is None
    assert list((store.root / "trash").iterdir()) == []
    with pytest.raises(NotFound):
        store.delete("bt1")
    with pytest.raises(NotFound):
        store.event_log("bt1")
    with pytest.raises(NotFound):
        store.write_day("bt1", "2024-10-25", {}, {})
    assert not path.exists()  # the late write did not resurrect it
    new(store, "bt1")  # the id can be used again, with a fresh, empty log
    assert store.event_log("bt1").last_id == 0


def test_delete_while_readers_hold_the_log(store: LocalStore) -> None:
    new(store, "bt1")
    log = store.event_log("bt1")
    for i in range(1, 2001):
        log.append(f"event {i}".encode())
    started = threading.Barrier(5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def reader() -> None:
        reader_log = store.event_log("bt1")
        started.wait()
        after = 0
        try:
            while True:
                for event_id, payload in reader_log.read(after, 7):
                    assert payload == f"event {event_id}".encode()  # never garbage
                    after = event_id
                if after == 2000:
                    after = 0
        except LogClosed:
            with lock:
                outcomes.append("closed")

    def follower() -> None:
        follower_log = store.event_log("bt1")
        started.wait()
        try:
            follower_log.wait(2000, timeout=30)
        except LogClosed:
            with lock:
                outcomes.append("closed")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    threads.append(threading.Thread(target=follower))
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.05)
    store.delete("bt1")
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes == ["closed"] * 4
    assert not store.backtest_dir("bt1").exists()


def test_cleanup_deletes_expired_and_keeps_latest_completed(store: LocalStore) -> None:
    # TTL 100 s. s1: an old completed run and a newer completed run, both expired.
    new(store, "s1-old", 10.0, strategy_id="s1", status="completed")
    new(store, "s1-new", 20.0, strategy_id="s1", status="completed")
    new(store, "s1-running", 30.0, strategy_id="s1", status="running")
    new(store, "s2-failed", 10.0, strategy_id="s2", status="failed")
    new(store, "s2-fresh", 10_000.0, strategy_id="s2", status="failed")
    for backtest_id in ("s1-old", "s2-failed"):
        store.event_log(backtest_id).append(b"x")
        store.write_day(backtest_id, "2024-10-24", {}, {})
    orphan = store.backtest_dir("s1-new").parent / "orphan"
    orphan.mkdir()
    (orphan / "events.log").write_bytes(b"left by a crash")
    # A folder under another user's than its row's owner is an orphan too.
    misplaced = store.root / "users" / "mallory" / "backtests" / "s1-new"
    misplaced.mkdir(parents=True)
    (store.root / "trash" / "half-deleted.123").mkdir()

    removed = store.cleanup(now=5000.0)
    assert sorted(removed) == ["s1-old", "s2-failed"]
    assert not misplaced.exists() and store.backtest_dir("s1-new").is_dir()
    remaining = sorted(p.name for p in store.backtest_dir("s1-new").parent.iterdir())
    assert remaining == ["s1-new", "s1-running", "s2-fresh"]
    assert sorted(r.backtest_id for r in store.list()[0]) == remaining
    assert list((store.root / "trash").iterdir()) == []
    assert store.cleanup(now=5000.0) == []
    assert store.cleanup(now=20_000.0) == ["s2-fresh"]


def test_cleanup_uses_the_clock_by_default(store: LocalStore) -> None:
    now = time.time()
    new(store, "old", now - 1000, status="failed")
    new(store, "new", now, status="failed")
    assert store.cleanup() == ["old"]


def test_restart_finds_unfinished(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        new(store, "q", 1.0, status="queued")
        new(store, "r", 2.0, status="running", caller="c")
        new(store, "done", 3.0, status="completed")
        store.event_log("r").append(b"backtest_started")
    with LocalStore(tmp_path) as store:
        assert [r.backtest_id for r in store.unfinished()] == ["q", "r"]
        assert store.count_running_by_caller("c") == 1
        log = store.event_log("r")
        assert log.append(b"backtest_failed") == 2  # the restarted engine closes the run


def test_create_replaces_a_stale_orphan_directory(store: LocalStore) -> None:
    stale = store.root / "users" / user_dir_name("") / "backtests" / "bt1"
    stale.mkdir(parents=True)
    (stale / "events.log").write_bytes(os.urandom(50))
    new(store, "bt1")
    assert list(stale.iterdir()) == []
    assert store.event_log("bt1").last_id == 0


def test_ttl_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalStore(tmp_path, ttl_seconds=0)


def test_satisfies_protocol(store: LocalStore) -> None:
    backend: StorageBackend = store
    assert backend.ttl_seconds == 100.0


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_days_written_without_fsync_are_synced_later(tmp_path, monkeypatch, syncfs: bool):
    import storage.atomic
    from storage import LocalStore
    from storage.records import BacktestRecord

    calls = []
    real = storage.atomic._syncfs()
    if syncfs:
        if real is None:
            pytest.skip("no syncfs on this platform")
        monkeypatch.setattr(storage.atomic, "_syncfs", lambda: lambda fd: calls.append(fd) or real(fd))
    else:
        monkeypatch.setattr(storage.atomic, "_syncfs", lambda: None)
        fsynced: list[str] = []  # os.fsync is patched for everyone: record what each call flushed
        real_fsync = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: fsynced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
                            or real_fsync(fd))
    with LocalStore(tmp_path, fsync=True) as store:
        store.create(BacktestRecord(backtest_id="bt_1", strategy_id="s", created_at=1.0, caller="alice"))
        for d in ("2024-01-01", "2024-01-02"):
            store.write_day("bt_1", d, {"date": d, "trades": []}, {"events_history": {}}, fsync=False)
        store.sync_days("bt_1", ["2024-01-01", "2024-01-02"])
        assert store.list_days("bt_1") == ["2024-01-01", "2024-01-02"]
        assert store.read_day("bt_1", "2024-01-02")[0]["date"] == "2024-01-02"
        with pytest.raises(NotFound):
            store.sync_days("bt_1", ["2024-01-03"])
    if syncfs:
        assert len(calls) == 1  # one flush of the file system for both days
    else:
        root = os.path.realpath(tmp_path)
        files = [p for p in fsynced if p.endswith(".json.gz")]
        assert sorted(files) == sorted(f"{root}/users/alice/backtests/bt_1/days/{d}/{name}" for d in ("2024-01-01", "2024-01-02")
                                       for name in ("trades_daily.json.gz", "diagnostics_export.json.gz")), fsynced


def test_backtests_live_under_their_owners_folder(store: LocalStore) -> None:
    a = new(store, "a1", 1.0, caller="alice")
    b = new(store, "b1", 2.0, caller="auth|0/../x")  # not a safe name: a digest instead
    assert a == store.root / "users" / "alice" / "backtests" / "a1"
    assert b.parent.parent.name == user_dir_name("auth|0/../x")
    assert b.parent.parent.name.startswith("=") and b.parent.parent.parent == store.root / "users"
    assert user_dir_name("..") != ".." and user_dir_name(".hidden").startswith("=")
    store.event_log("b1").append(b"x")
    assert (b / "events.log").is_file()


def test_lists_are_per_caller_and_pages_can_be_cut_anywhere(store: LocalStore) -> None:
    for k in range(5):
        new(store, f"a{k}", float(k), caller="alice")
        new(store, f"b{k}", float(k) + 0.5, caller="bob")
    mine, token = store.list(page_size=10, caller="alice")
    assert [r.backtest_id for r in mine] == ["a4", "a3", "a2", "a1", "a0"] and token is None
    everyone, _ = store.list(page_size=20)
    assert len(everyone) == 10
    # A page cut after its second row (its size in bytes, say) continues there.
    token = store.token_after(mine[1], caller="alice")
    rest, _ = store.list(page_size=10, page_token=token, caller="alice")
    assert [r.backtest_id for r in rest] == ["a2", "a1", "a0"]
    with pytest.raises(ValueError):  # a token is bound to its caller
        store.list(page_token=token, caller="bob")
    with pytest.raises(ValueError):
        store.list(page_token=token)


def test_stored_bytes_per_caller(store: LocalStore) -> None:
    new(store, "a1", 1.0, caller="alice")
    new(store, "a2", 2.0, caller="alice")
    store.write_day("a1", "2024-10-24", {"trades": [1] * 1000}, {})
    store.event_log("a1").append(b"x" * 100)
    used = store.disk_usage("a1")
    assert used > 100
    store.update("a1", stored_bytes=used)
    store.update("a2", stored_bytes=7)
    assert store.stored_bytes_by_caller("alice") == used + 7
    assert store.stored_bytes_by_caller("bob") == 0


def test_cache_folders_are_not_stored_bytes(store: LocalStore) -> None:
    new(store, "a1", 1.0, caller="alice")
    store.write_day("a1", "2024-10-24", {"trades": [1] * 1000}, {})
    used = store.disk_usage("a1")
    cache = store.backtest_dir("a1") / "analytics"  # AnalyticsService's table and answers
    cache.mkdir()
    (cache / "table.npz").write_bytes(b"x" * 5000)
    assert store.disk_usage("a1") == used
    (store.backtest_dir("a1") / "other").mkdir()
    (store.backtest_dir("a1") / "other" / "f").write_bytes(b"x" * 5000)
    assert store.disk_usage("a1") == used + 5000


def test_folders_of_the_layout_before_users_move_under_their_owner(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        new(store, "old", 1.0, caller="alice")
        store.write_day("old", "2024-10-24", {"trades": []}, {})
        owned = store.backtest_dir("old")
    legacy = tmp_path / "backtests" / "old"
    legacy.parent.mkdir()
    os.rename(owned, legacy)
    with LocalStore(tmp_path) as store:
        assert store.backtest_dir("old") == owned and owned.is_dir() and not legacy.exists()
        assert store.list_days("old") == ["2024-10-24"]
