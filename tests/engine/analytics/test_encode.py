"""The trade points' wire bytes (encode.py) equal protobuf's own serialization of the same
TradePoint messages, including defaults left out, long and non-ASCII strings, -0.0 and NaN; the
table survives its file format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hindsight.v1 import analytics_pb2 as apb

from services.engine.analytics import build
from services.engine.analytics.encode import CACHED_TRUE, trade_point_messages, trade_points_bytes
from services.engine.analytics.load import RunTable, read_table, table_bytes


def _strings(values: list[str]) -> np.ndarray:
    return np.array([v.encode("utf-8") for v in values], dtype="S") if values else np.empty(0, "S1")


def make_table(n: int, seed: int = 0, **overrides) -> RunTable:
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + max(n, 3))
    reasons = _strings(["signal:short", "stop_loss", "take_profit", "ü" * 70])
    nodes = _strings(["long", "short", "n" * 200])
    t = RunTable(
        days=days, equity=100_000 + np.cumsum(rng.normal(0, 100, len(days))), initial_capital=100_000.0,
        info={"metrics": {"total_trades": n, "sharpe": 1.5}, "options": False, "symbol": "X", "strategy_name": "s"},
        t_day=np.sort(rng.integers(0, len(days), n)).astype(np.int32),
        t_id=_strings([f"long-pos{i}" if i % 7 else "" for i in range(n)]),
        t_entry=_strings([f"2024-01-0{1 + i % 9}T09:{i % 60:02d}:00+05:30" for i in range(n)]),
        t_exit=_strings(["x" * (i % 300) for i in range(n)]),  # lengths past 127: two-byte varints
        t_duration=rng.choice([0.0, -0.0, 1.0, 12345.5], n), t_pnl=rng.normal(0, 100, n),
        t_return=rng.choice([0.0, math.nan, -1e-300, 3.5], n), t_hour=rng.integers(0, 24, n).astype(np.int8),
        t_minute=rng.integers(0, 1440, n).astype(np.int16), t_weekday=rng.integers(0, 7, n).astype(np.int8),
        t_side=rng.integers(0, 3, n).astype(np.int8), t_reason=rng.integers(0, len(reasons), n).astype(np.int32),
        reasons=reasons, t_node=rng.integers(0, len(nodes), n).astype(np.int32), nodes=nodes)
    for k, v in overrides.items():
        setattr(t, k, v)
    return t


@pytest.mark.parametrize("n", [1, 2, 17, 1000])
def test_trade_points_are_protobufs_own_bytes(n):
    t = make_table(n, seed=n)
    expected = apb.Analytics(trades=trade_point_messages(t)).SerializeToString()
    assert trade_points_bytes(t) == expected
    parsed = apb.Analytics.FromString(trade_points_bytes(t))
    assert len(parsed.trades) == n
    assert parsed.trades[0].trade_id == t.t_id[0].decode()


def test_no_trades_and_empty_vocabularies():
    t = make_table(0)
    assert trade_points_bytes(t) == b""
    one = make_table(3, t_reason=np.zeros(3, np.int32), reasons=_strings([""]))
    assert trade_points_bytes(one) == apb.Analytics(trades=trade_point_messages(one)).SerializeToString()
    assert apb.Analytics.FromString(trade_points_bytes(one)).trades[0].exit_reason == ""


def test_analytics_bytes_parse_in_field_order_and_the_cached_flag_appends():
    t = make_table(50)
    data = build.analytics_bytes("bt_1", t, 5, 10)
    msg = apb.Analytics.FromString(data)
    assert msg.backtest_id == "bt_1" and msg.rolling_window_days == 5 and len(msg.trades) == 50
    assert msg.SerializeToString() == data  # written in field-number order, as protobuf writes it
    assert not msg.cached and apb.Analytics.FromString(data + CACHED_TRUE).cached
    assert msg.metrics.sharpe == 1.5 and msg.metrics.total_trades == 50


def test_the_table_file_round_trips(tmp_path):
    t = make_table(100)
    path = tmp_path / "table.npz"
    path.write_bytes(table_bytes(t))
    back = read_table(path)
    assert back is not None
    for name in ("days", "equity", "t_day", "t_id", "t_entry", "t_exit", "t_duration", "t_pnl", "t_hour",
                 "t_minute", "t_weekday", "t_side", "t_reason", "reasons", "t_node", "nodes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(t, name), err_msg=name)
    assert back.info == t.info and back.initial_capital == t.initial_capital
    assert trade_points_bytes(back) == trade_points_bytes(t)
    path.write_bytes(b"not a table")
    assert read_table(path) is None
    whole = table_bytes(t)
    for torn in (whole[: len(whole) // 2], whole[:-30], b"\0" * len(whole)):  # as a power cut may leave it
        path.write_bytes(torn)
        assert read_table(path) is None
    assert read_table(tmp_path / "missing.npz") is None
