"""StrategyStore: versions, ids, limits, pages bound to their owner, and writers racing from
threads and from two connections to one file."""

from __future__ import annotations

import threading

import pytest

from storage import AlreadyExists
from storage.strategies import (LimitReached, StrategyNotFound, StrategyStore, VersionConflict, VersionNotFound,
                                check_strategy_id, slug)


@pytest.fixture
def store(tmp_path):
    with StrategyStore(tmp_path) as s:
        yield s


def test_versions_are_numbered_immutable_and_survive_a_reopen(tmp_path):
    with StrategyStore(tmp_path) as s:
        v1 = s.create("alice", b"one", strategy_id="sma", description="first", warmup_bars=50)
        assert (v1.strategy_id, v1.version, v1.latest_version, v1.warmup_bars) == ("sma", 1, 1, 50)
        v2, created = s.update("alice", "sma", b"two", warmup_bars=60)
        assert created and v2.version == 2 and v2.description == "first"  # kept when not given
        v3, _ = s.update("alice", "sma", b"three", description="third")
        assert v3.first_created_at == v1.created_at and v3.created_at >= v2.created_at
    with StrategyStore(tmp_path) as s:
        assert s.get("alice", "sma").version == 3 and s.get("alice", "sma").strategy == b"three"
        one = s.get("alice", "sma", 1)
        assert (one.strategy, one.description, one.warmup_bars, one.latest_version) == (b"one", "first", 50, 3)
        assert [v.version for v in s.versions("alice", "sma")] == [3, 2, 1]
        assert [v.strategy for v in s.versions("alice", "sma")] == [b"three", b"two", b"one"]
        with pytest.raises(VersionNotFound) as info:
            s.get("alice", "sma", 4)
        assert info.value.latest == 3
        with pytest.raises(StrategyNotFound):
            s.get("bob", "sma")


def test_an_update_equal_to_the_latest_makes_no_version(store):
    store.create("alice", b"one", strategy_id="sma", description="d")
    same, created = store.update("alice", "sma", b"one")
    assert not created and same.version == 1
    same, created = store.update("alice", "sma", b"one", description="d")
    assert not created and same.version == 1
    changed, created = store.update("alice", "sma", b"one", description="new words")
    assert created and changed.version == 2


def test_default_ids_get_suffixes_and_explicit_ids_must_be_free(store):
    assert slug("SMA Cross 20/50") == "sma-cross-20-50"
    assert slug("  Ünïcode — straddle!! ") == "unicode-straddle" and slug("???") == "strategy"
    long = slug("x" * 100)
    assert long == "x" * 64
    ids = [store.create("alice", b"s", default_id="sma-cross").strategy_id for _ in range(3)]
    assert ids == ["sma-cross", "sma-cross-2", "sma-cross-3"]
    assert store.create("bob", b"s", default_id="sma-cross").strategy_id == "sma-cross"  # per user
    ids = [store.create("alice", b"s", default_id=long).strategy_id for _ in range(11)]
    assert ids[0] == long and ids[1] == "x" * 62 + "-2" and ids[10] == "x" * 61 + "-11"
    assert all(len(i) <= 64 for i in ids)
    with pytest.raises(AlreadyExists):
        store.create("alice", b"s", strategy_id="sma-cross-2")
    for bad in ("", "Upper", "-lead", "has space", "x" * 65, "dot.ted", "ü"):
        with pytest.raises(ValueError):
            check_strategy_id(bad)
    assert check_strategy_id("0_a-b") == "0_a-b"


def test_expected_version_refuses_a_stale_update(store):
    store.create("alice", b"one", strategy_id="sma")
    store.update("alice", "sma", b"two", expected_version=1)
    with pytest.raises(VersionConflict) as info:
        store.update("alice", "sma", b"three", expected_version=1)
    assert info.value.latest == 2
    assert store.get("alice", "sma").strategy == b"two"


def test_limits_per_owner_and_per_strategy(store):
    for n in range(2):
        store.create("alice", b"s", strategy_id=f"s{n}", max_strategies=2)
    with pytest.raises(LimitReached) as info:
        store.create("alice", b"s", strategy_id="s2", max_strategies=2)
    assert (info.value.limit, info.value.maximum, info.value.used) == ("strategies", 2, 2)
    store.create("bob", b"s", strategy_id="s0", max_strategies=2)  # bob's count is his own
    store.update("alice", "s0", b"v2", max_versions=2)
    with pytest.raises(LimitReached) as info:
        store.update("alice", "s0", b"v3", max_versions=2)
    assert info.value.limit == "versions"
    assert store.update("alice", "s0", b"v2", max_versions=2)[1] is False  # no new version: allowed


def test_delete_removes_every_version(store):
    store.create("alice", b"one", strategy_id="sma")
    store.update("alice", "sma", b"two")
    store.create("bob", b"bobs", strategy_id="sma")
    assert store.delete("bob", "nope") is False
    assert store.delete("alice", "sma") is True
    with pytest.raises(StrategyNotFound):
        store.versions("alice", "sma")
    assert store.get("bob", "sma").strategy == b"bobs"
    again = store.create("alice", b"new", strategy_id="sma")
    assert again.version == 1 and [v.strategy for v in store.versions("alice", "sma")] == [b"new"]


def test_pages_are_newest_updated_first_and_bound_to_their_owner(store):
    for n in range(7):
        store.create("alice", b"s", strategy_id=f"s{n}")
    store.create("bob", b"s", strategy_id="b0")
    store.update("alice", "s2", b"changed")  # moves to the front
    seen, token = [], None
    while True:
        page, token = store.list("alice", 3, token)
        assert len(page) <= 3
        seen += [p.strategy_id for p in page]
        if token is None:
            break
    assert seen == ["s2", "s6", "s5", "s4", "s3", "s1", "s0"]
    page, token = store.list("alice", 3)
    assert page[0].version == 2 and page[0].strategy == b"changed"
    with pytest.raises(ValueError):
        store.list("bob", 3, token)
    with pytest.raises(ValueError):
        store.list("alice", 3, "not-a-token")
    assert store.count("alice") == 7 and store.count("carol") == 0


def test_versions_leave_out_older_strategies_past_a_byte_budget(store):
    store.create("alice", b"a" * 100, strategy_id="big")
    for n in range(4):
        store.update("alice", "big", bytes([98 + n]) * 100)
    got = store.versions("alice", "big", max_bytes=250)
    assert [v.version for v in got] == [5, 4, 3, 2, 1]
    assert [len(v.strategy) for v in got] == [100, 100, 0, 0, 0]
    assert [len(v.strategy) for v in store.versions("alice", "big", max_bytes=10)] == [100, 0, 0, 0, 0]


@pytest.mark.parametrize("connections", [1, 2], ids=["one connection", "two connections"])
def test_racing_writers_get_distinct_versions(tmp_path, connections):
    stores = [StrategyStore(tmp_path) for _ in range(connections)]
    try:
        stores[0].create("alice", b"base", strategy_id="sma")
        barrier = threading.Barrier(16)
        results: list[int] = []
        conflicts: list[int] = []
        lock = threading.Lock()

        def write(n: int, expected: int) -> None:
            barrier.wait()
            try:
                saved, _ = stores[n % connections].update("alice", "sma", f"v{n}".encode(), expected_version=expected)
                with lock:
                    results.append(saved.version)
            except VersionConflict:
                with lock:
                    conflicts.append(n)

        threads = [threading.Thread(target=write, args=(n, 0)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == list(range(2, 18)) and not conflicts
        versions = stores[-1].versions("alice", "sma")
        assert sorted(v.strategy for v in versions[:-1]) == sorted(f"v{n}".encode() for n in range(16))

        # The same race with expected_version: exactly one wins.
        results.clear()
        barrier = threading.Barrier(16)
        threads = [threading.Thread(target=write, args=(100 + n, 17)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [18] and len(conflicts) == 15
    finally:
        for s in stores:
            s.close()
