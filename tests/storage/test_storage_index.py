"""The SQLite index: rows, filters, keyset pagination, idempotency, TTL selection."""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.backend import BacktestIndex
from storage.errors import AlreadyExists, NotFound
from storage.index import MAX_PAGE_SIZE, SqliteIndex
from storage.records import BacktestRecord


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    db = SqliteIndex(tmp_path / "index.sqlite3")
    yield db
    db.close()


def record(backtest_id: str, created_at: float = 1000.0, **fields: object) -> BacktestRecord:
    fields.setdefault("strategy_id", "s1")
    return BacktestRecord(backtest_id=backtest_id, created_at=created_at, **fields)  # type: ignore[arg-type]


def test_insert_get_roundtrip_every_field(index: SqliteIndex) -> None:
    full = BacktestRecord(
        backtest_id="bt_1", strategy_id="5708424d", created_at=1733153445.25, status="failed",
        caller="svc-a", request_id="req-1", symbol="SIM-NIFTY", start_date="2024-02-01",
        end_date="2024-12-31", started_at=1733153446.0, finished_at=1733153500.5,
        expires_at=1733196700.5, last_event_id=4711, total_days=230, completed_days=150,
        current_date="2024-08-15", error_code="DATA_UNAVAILABLE", error_message="no bars",
        summary_json='{"total_pnl": -45430.5}', config_json='{"initial_capital": 100000}')
    index.insert(full)
    assert index.get("bt_1") == full
    assert index.get("nope") is None
    assert index.path.name == "index.sqlite3"


def test_duplicates_rejected(index: SqliteIndex) -> None:
    index.insert(record("a", caller="c", request_id="r"))
    with pytest.raises(AlreadyExists, match="already exists"):
        index.insert(record("a"))
    with pytest.raises(AlreadyExists, match="request_id"):
        index.insert(record("b", caller="c", request_id="r"))
    # No request_id: no idempotency key, any number of runs.
    index.insert(record("c", caller="c"))
    index.insert(record("d", caller="c"))
    # The same request_id from another caller is another request.
    index.insert(record("e", caller="other", request_id="r"))


def test_find_by_request(index: SqliteIndex) -> None:
    index.insert(record("a", caller="c", request_id="r"))
    index.insert(record("b", caller="c"))
    found = index.find_by_request("c", "r")
    assert found is not None and found.backtest_id == "a"
    assert index.find_by_request("c", "other") is None
    assert index.find_by_request("x", "r") is None
    assert index.find_by_request("c", "") is None


def test_update(index: SqliteIndex) -> None:
    index.insert(record("a"))
    index.update("a", status="running", started_at=5.0, current_date="2024-01-02",
                 completed_days=3, last_event_id=17)
    got = index.get("a")
    assert got is not None
    assert (got.status, got.started_at, got.current_date, got.completed_days,
            got.last_event_id) == ("running", 5.0, "2024-01-02", 3, 17)
    index.update("a")  # nothing to set, but the row exists
    with pytest.raises(NotFound):
        index.update("missing", status="failed")
    with pytest.raises(NotFound):
        index.update("missing")
    with pytest.raises(ValueError):
        index.update("a", status="exploded")
    with pytest.raises(ValueError):
        index.update("a", backtest_id="b")
    with pytest.raises(ValueError):
        index.update("a", colour="red")
    with pytest.raises(ValueError):
        record("x", status="exploded")


def test_delete(index: SqliteIndex) -> None:
    index.insert(record("a"))
    assert index.delete("a") is True
    assert index.delete("a") is False
    assert index.get("a") is None


def test_list_newest_first_with_filters(index: SqliteIndex) -> None:
    index.insert(record("a", 1.0, strategy_id="s1", status="completed"))
    index.insert(record("b", 2.0, strategy_id="s2", status="running"))
    index.insert(record("c", 3.0, strategy_id="s1", status="running"))
    index.insert(record("d", 3.0, strategy_id="s1", status="failed"))  # tie on created_at

    def ids(page: tuple[list[BacktestRecord], str | None]) -> list[str]:
        return [r.backtest_id for r in page[0]]

    assert ids(index.list()) == ["d", "c", "b", "a"]
    assert ids(index.list(strategy_id="s1")) == ["d", "c", "a"]
    assert ids(index.list(status="running")) == ["c", "b"]
    assert ids(index.list(strategy_id="s1", status="running")) == ["c"]
    assert ids(index.list(strategy_id="none")) == []
    assert index.list()[1] is None
    with pytest.raises(ValueError):
        index.list(status="bogus")


def test_pagination_tokens(index: SqliteIndex) -> None:
    for i in range(7):
        index.insert(record(f"bt{i}", float(i // 2), strategy_id="s1" if i % 3 else "s2"))
    page, token = index.list(page_size=3)
    assert [r.backtest_id for r in page] == ["bt6", "bt5", "bt4"] and token
    page, token = index.list(page_size=3, page_token=token)
    assert [r.backtest_id for r in page] == ["bt3", "bt2", "bt1"] and token
    # A newer backtest arriving between pages neither shifts nor repeats rows.
    index.insert(record("newer", 99.0))
    page, token = index.list(page_size=3, page_token=token)
    assert [r.backtest_id for r in page] == ["bt0"] and token is None
    with pytest.raises(ValueError, match="other filters"):
        first_token = index.list(page_size=1)[1]
        index.list(strategy_id="s1", page_size=1, page_token=first_token)
    for garbage in ("%%%", "bm90IGpzb24", "eyJhIjoxfQ", "W10"):
        with pytest.raises(ValueError, match="page_token"):
            index.list(page_token=garbage)
    with pytest.raises(ValueError):
        index.list(page_size=-1)
    assert len(index.list(page_size=0)[0]) == 8  # 0: the default (50)
    assert index.list(page_token="")[0] == index.list()[0]


def test_page_size_is_capped(index: SqliteIndex) -> None:
    for i in range(MAX_PAGE_SIZE + 5):
        index.insert(record(f"bt{i:05d}", float(i)))
    page, token = index.list(page_size=10 * MAX_PAGE_SIZE)
    assert len(page) == MAX_PAGE_SIZE and token is not None
    assert len(index.list(page_size=10 * MAX_PAGE_SIZE, page_token=token)[0]) == 5


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["s1", "s2"]),
                               st.sampled_from(["queued", "running", "completed", "failed"])),
                     max_size=40),
       page_size=st.integers(1, 7),
       strategy=st.sampled_from([None, "s1", "s2"]),
       status=st.sampled_from([None, "running", "completed"]))
def test_pages_cover_every_row_once(rows: list[tuple[int, str, str]], page_size: int,
                                    strategy: str | None, status: str | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = SqliteIndex(Path(directory) / "index.sqlite3")
        try:
            for number, (created, strategy_id, row_status) in enumerate(rows):
                db.insert(record(f"bt{number}", float(created), strategy_id=strategy_id,
                                 status=row_status))
            expected = sorted(
                ((float(created), f"bt{number}")
                 for number, (created, strategy_id, row_status) in enumerate(rows)
                 if strategy in (None, strategy_id) and status in (None, row_status)),
                reverse=True)
            seen: list[tuple[float, str]] = []
            token: str | None = None
            for _ in itertools.count():
                page, token = db.list(strategy, status, page_size, token)
                assert len(page) <= page_size
                seen += [(r.created_at, r.backtest_id) for r in page]
                if token is None:
                    break
                assert len(page) == page_size
            assert seen == expected
        finally:
            db.close()


def test_expired_keeps_latest_completed_per_strategy(index: SqliteIndex) -> None:
    # strategy s1: two completed (old, newest) + one failed; all past expiry.
    index.insert(record("s1-old", 1.0, strategy_id="s1", status="completed", expires_at=10.0))
    index.insert(record("s1-new", 2.0, strategy_id="s1", status="completed", expires_at=10.0))
    index.insert(record("s1-failed", 3.0, strategy_id="s1", status="failed", expires_at=10.0))
    # strategy s2: only a cancelled run, expired → deleted; a running one is never deleted.
    index.insert(record("s2-cancel", 1.5, strategy_id="s2", status="cancelled", expires_at=10.0))
    index.insert(record("s2-run", 1.6, strategy_id="s2", status="running", expires_at=10.0))
    index.insert(record("s2-queue", 1.7, strategy_id="s2", status="queued", expires_at=10.0))
    # strategy s3: latest completed kept even though a newer failed run exists and expired.
    index.insert(record("s3-done", 1.0, strategy_id="s3", status="completed", expires_at=5.0))
    index.insert(record("s3-failed", 4.0, strategy_id="s3", status="failed", expires_at=5.0))
    # not yet expired / never expires
    index.insert(record("s4-fresh", 1.0, strategy_id="s4", status="failed", expires_at=100.0))
    index.insert(record("s4-forever", 1.0, strategy_id="s4", status="failed"))
    assert index.expired(50.0) == ["s1-old", "s2-cancel", "s1-failed", "s3-failed"]
    assert index.expired(7.0) == ["s3-failed"]
    assert index.expired(5.0) == []


def test_unfinished_and_running_counts(index: SqliteIndex) -> None:
    index.insert(record("q", 3.0, status="queued", caller="c1"))
    index.insert(record("r1", 1.0, status="running", caller="c1"))
    index.insert(record("r2", 2.0, status="running", caller="c2"))
    index.insert(record("done", 0.5, status="completed", caller="c1"))
    assert [r.backtest_id for r in index.unfinished()] == ["r1", "r2", "q"]
    assert index.count_running_by_caller("c1") == 1
    assert index.count_running_by_caller("c1", include_queued=True) == 2
    assert index.count_running_by_caller("nobody") == 0


def test_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    first = SqliteIndex(path)
    first.insert(record("a", current_date="2024-01-01"))
    first.close()
    second = SqliteIndex(path)
    got = second.get("a")
    second.close()
    assert got is not None and got.current_date == "2024-01-01"


def test_shared_between_threads(index: SqliteIndex) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(100):
                backtest_id = f"w{worker}-{i}"
                index.insert(record(backtest_id, float(i)))
                index.update(backtest_id, status="running", completed_days=i)
                assert index.get(backtest_id) is not None
                index.list(page_size=5)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert index.count_running_by_caller("") == 400


def test_satisfies_protocol(index: SqliteIndex) -> None:
    protocol: BacktestIndex = index
    assert protocol.get("none") is None
