"""What crash-safe runs need from storage: checkpoints, removing unpublished days, day sizes,
and a hook run when a log is opened (after its torn tail is cut, before anyone reads it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage import BacktestRecord, LocalStore, NotFound
from storage import dayfiles
from storage.eventlog import FileEventLog, on_open


@pytest.fixture
def store(tmp_path: Path):
    with LocalStore(tmp_path / "root", fsync=False) as s:
        s.create(BacktestRecord(backtest_id="bt_1", strategy_id="s", created_at=time.time(), caller="alice"))
        yield s


def test_checkpoint_round_trip_and_removal(store: LocalStore) -> None:
    assert store.read_checkpoint("bt_1") is None
    store.write_checkpoint("bt_1", {"day_number": 3, "event_id": 40})
    assert store.read_checkpoint("bt_1") == {"day_number": 3, "event_id": 40}
    store.write_checkpoint("bt_1", {"day_number": 4, "event_id": 52})
    assert store.read_checkpoint("bt_1")["day_number"] == 4
    (store.backtest_dir("bt_1") / "checkpoint.json").write_text("{not json")
    assert store.read_checkpoint("bt_1") is None  # unreadable: as good as none
    store.remove_checkpoint("bt_1")
    store.remove_checkpoint("bt_1")
    assert not (store.backtest_dir("bt_1") / "checkpoint.json").exists()
    with pytest.raises(NotFound):
        store.write_checkpoint("bt_nope", {})


def test_remove_days_and_day_size(store: LocalStore) -> None:
    sizes = {d: store.write_day("bt_1", d, {"date": d, "trades": [1] * n}, {"events_history": {}})
             for n, d in enumerate(["2024-01-01", "2024-01-02", "2024-01-03"], start=1)}
    assert all(store.day_size("bt_1", d) == size for d, size in sizes.items())
    assert store.day_size("bt_1", "2024-02-01") == 0
    # A writer killed mid-write leaves a temp file; the day goes all the same.
    day = dayfiles.day_dir(store.backtest_dir("bt_1"), "2024-01-03")
    (day / ".trades_daily.json.gz.123-456.tmp").write_bytes(b"partial")
    assert store.remove_days("bt_1", ["2024-01-02", "2024-01-03", "2024-01-09"]) == ["2024-01-02", "2024-01-03"]
    assert store.list_days("bt_1") == ["2024-01-01"]
    assert not day.exists()


def test_a_day_half_removed_is_not_listed(tmp_path: Path) -> None:
    dayfiles.write_day(tmp_path, "2024-01-01", {"trades": []}, {"events_history": {}})
    (dayfiles.day_dir(tmp_path, "2024-01-01") / dayfiles.TRADES_DAILY).unlink()  # what remove_day does first
    assert dayfiles.list_days(tmp_path) == []
    assert dayfiles.remove_day(tmp_path, "2024-01-01", fsync=True)
    assert not dayfiles.remove_day(tmp_path, "2024-01-01")


def test_open_hook_sees_the_log_after_its_tail_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "a" / "events.log"
    path.parent.mkdir()
    with FileEventLog(path) as log:
        log.append_batch([b"one", b"two"])
    with path.open("ab") as fh:
        fh.write(b"\x09\x00")  # a torn header
    seen = []

    def hook(log: FileEventLog) -> None:
        seen.append((log.last_id, log.truncated_bytes))
        log.append(b"repaired")  # what an owner may do before anyone reads

    remove = on_open(tmp_path / "a", hook)
    try:
        with FileEventLog(path) as log:
            assert log.last_id == 3 and log.read(2) == [(3, b"repaired")]
        with FileEventLog(tmp_path / "elsewhere.log"):
            pass  # not under the folder: no call
    finally:
        remove()
    with FileEventLog(path):
        pass  # removed: no call
    assert seen == [(2, 2)]


def test_a_failing_hook_does_not_stop_the_log_from_opening(tmp_path: Path) -> None:
    def broken(log: FileEventLog) -> None:
        raise RuntimeError("boom")

    remove = on_open(tmp_path, broken)
    try:
        with FileEventLog(tmp_path / "events.log") as log:
            assert log.append(b"x") == 1
    finally:
        remove()


def test_store_hook_names_the_backtest(store: LocalStore) -> None:
    seen = []
    remove = store.on_log_open(lambda bid, log: seen.append((bid, log.last_id)))
    try:
        store.event_log("bt_1")
    finally:
        remove()
    assert seen == [("bt_1", 0)]
