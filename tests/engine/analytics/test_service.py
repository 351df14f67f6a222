"""AnalyticsService over a real grpc.aio engine: every figure of GetAnalytics against an
independent computation from BacktestService's answers, the cache, the run's states, isolation
between users, and CompareBacktests' validation and date axis."""

from __future__ import annotations

import asyncio
import math
import time

import grpc
import numpy as np
import pandas as pd
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hindsight.v1 import analytics_pb2 as apb
from hindsight.v1 import backtest_service_pb2 as pb

from tests.engine.analytics.conftest import (WEEKDAYS, expected_groups, expected_periods, expected_rolling,
                                             reference, run_to_end, sma_request)
from tests.engine.analytics.test_compute import _loop_drawdowns
from tests.engine.conftest import start_request


def _fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    out = []
    for d in status.details if status else ():
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [v.field for v in br.field_violations]
    return out


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _without_cached(a: apb.Analytics) -> bytes:
    copy = apb.Analytics()
    copy.CopyFrom(a)
    copy.cached = False
    return copy.SerializeToString(deterministic=True)


async def test_every_figure_equals_an_independent_computation(stub, astub):
    bid = await run_to_end(stub, sma_request())
    ref = await reference(stub, bid)
    assert len(ref.days) > 30 and len(ref.trades) > 500
    a = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, rolling_window_days=10,
                                                         histogram_bins=20))
    assert a.backtest_id == bid and a.rolling_window_days == 10 and not a.cached

    # Monthly and yearly returns: compounded daily returns, P&L, days and trades per period.
    for got, want in ((a.monthly_returns, expected_periods(ref, "M")), (a.yearly_returns, expected_periods(ref, "Y"))):
        assert [(p.year, p.month, p.trading_days, p.trades) for p in got] == [(w[0], w[1], w[4], w[5]) for w in want]
        assert [p.return_pct for p in got] == pytest.approx([w[2] for w in want], rel=1e-9, abs=1e-9)
        assert [p.pnl for p in got] == pytest.approx([w[3] for w in want], rel=1e-9, abs=1e-6)
    assert [p.month for p in a.monthly_returns] == [1, 2]
    assert sum(p.trades for p in a.monthly_returns) == len(ref.trades)

    # Rolling Sharpe = pandas rolling mean / std x sqrt(252), from the window's last day on.
    roll = expected_rolling(ref, 10)
    assert [p.date for p in a.rolling] == [d.strftime("%Y-%m-%d") for d in roll.index]
    assert [p.sharpe for p in a.rolling] == pytest.approx(roll.sharpe.tolist(), rel=1e-7, abs=1e-9)
    assert [p.volatility_pct for p in a.rolling] == pytest.approx(roll.volatility_pct.tolist(), rel=1e-7)
    assert [p.return_pct for p in a.rolling] == pytest.approx(roll.return_pct.tolist(), rel=1e-9, abs=1e-9)

    # The histogram (counts summing to the days) with the normal overlay and the moments.
    from scipy import stats

    x = ref.returns.to_numpy() * 100
    d = a.returns_distribution
    counts, edges = np.histogram(x, bins=20)
    assert list(d.counts) == counts.tolist() and sum(d.counts) == d.days == len(ref.days)
    assert list(d.bin_edges) == pytest.approx(edges)
    assert list(d.normal_counts) == pytest.approx(len(x) * np.diff(stats.norm.cdf(edges, x.mean(), x.std(ddof=1))))
    assert (d.mean_pct, d.std_pct) == pytest.approx((x.mean(), x.std(ddof=1)))
    assert (d.skew, d.kurtosis) == pytest.approx((stats.skew(x), stats.kurtosis(x)))
    assert (d.min_pct, d.max_pct) == pytest.approx((x.min(), x.max()))
    jb = stats.jarque_bera(x)
    assert (d.jarque_bera, d.jarque_bera_p_value) == pytest.approx((jb.statistic, jb.pvalue))
    assert (d.var_95_pct, d.cvar_95_pct) == pytest.approx((ref.backtest.metrics.var_95_pct,
                                                          ref.backtest.metrics.cvar_95_pct), rel=1e-6)

    # Every closed trade, in exit order.
    t = ref.trades
    assert [p.trade_id for p in a.trades] == t.trade_id.tolist()
    assert [(p.entry_time, p.exit_time, p.side, p.exit_reason, p.node_id) for p in a.trades] == list(
        zip(t.entry_time, t.exit_time, t.side, t.exit_reason, t.node))
    assert [p.duration_minutes for p in a.trades] == t.duration.tolist()
    assert [p.pnl for p in a.trades] == pytest.approx(t.pnl.tolist())
    assert [p.return_pct for p in a.trades] == pytest.approx(t.ret.tolist(), rel=1e-9)
    assert [(p.entry_hour, p.entry_minute_of_day) for p in a.trades] == [
        (e.hour, e.hour * 60 + e.minute) for e in t.entry]
    assert {p.side for p in a.trades} == {"long", "short"}

    # Drawdown periods, deepest first (curve point 0: the capital, the day before the first).
    curve = [ref.initial] + ref.equity.tolist()
    dates = [(ref.days[0] - pd.Timedelta(days=1)).strftime("%Y-%m-%d")] + [x.strftime("%Y-%m-%d") for x in ref.days]
    want = sorted(_loop_drawdowns(curve), key=lambda e: (e[3], e[0]))
    assert [(p.start, p.trough, p.recovery) for p in a.drawdowns] == [
        (dates[s], dates[tr], dates[r] if r >= 0 else "") for s, tr, r, _ in want]
    assert [p.depth_pct for p in a.drawdowns] == pytest.approx([w[3] for w in want])
    assert [p.length_days for p in a.drawdowns] == [(r if r >= 0 else len(curve) - 1) - s for s, _, r, _ in want]
    assert a.drawdowns[0].depth_pct == pytest.approx(ref.backtest.metrics.max_drawdown_pct)

    # Groups: weekday (Monday first), entry hour (ascending), exit reason (by count).
    def same(groups, want):
        assert [(g.key, g.trades) for g in groups] == [w[:2] for w in want]
        assert [(g.pnl, g.avg_pnl, g.win_rate_pct, g.avg_duration_minutes) for g in groups] == [
            pytest.approx(w[2:]) for w in want]

    weekday = t.entry.map(lambda e: WEEKDAYS[e.weekday()])
    same(a.pnl_by_weekday, expected_groups(ref, weekday, list(WEEKDAYS)))
    assert [g.key for g in a.pnl_by_weekday] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    hours = t.entry.map(lambda e: f"{e.hour:02d}")
    same(a.pnl_by_entry_hour, expected_groups(ref, hours, sorted(set(hours))))
    by_count = t.exit_reason.value_counts()
    order = sorted(by_count.index, key=lambda k: (-by_count[k], k))
    same(a.exit_reasons, expected_groups(ref, t.exit_reason, order))
    assert sum(g.trades for g in a.pnl_by_entry_hour) == len(t)

    # The run's metrics, as in Backtest.metrics.
    assert a.metrics == ref.backtest.metrics


async def test_the_second_call_comes_from_the_cache_with_the_same_bytes(stub, astub, engine):
    bid = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-31")))
    first = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid))
    second = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid))
    assert not first.cached and second.cached
    assert _without_cached(first) == _without_cached(second)
    assert first.rolling_window_days == 63 and len(first.rolling) == 0  # shorter than the window
    assert len(first.returns_distribution.counts) == 50
    # Kept in the run's folder by parameters: another engine process (no memory cache) serves it.
    folder = engine.store.backtest_dir(bid) / "analytics"
    assert (folder / "answer-w63-b50.pb").is_file() and (folder / "table.npz").is_file()
    engine.analytics_servicer.memory.drop(lambda key: True)
    third = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid))
    assert third.cached and _without_cached(third) == _without_cached(first)
    other = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, rolling_window_days=5))
    assert not other.cached and len(other.rolling) == ref_days(first) - 4
    # Without its table (a run that ended before analytics existed) the answer is the same.
    for path in folder.iterdir():
        path.unlink()
    engine.analytics_servicer.memory.drop(lambda key: True)
    rebuilt = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid))
    assert not rebuilt.cached and _without_cached(rebuilt) == _without_cached(first)
    assert (folder / "table.npz").is_file()
    # The cache goes with the run.
    await stub.DeleteBacktest(pb.DeleteBacktestRequest(backtest_id=bid))
    assert not folder.exists()
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def ref_days(a: apb.Analytics) -> int:
    return sum(p.trading_days for p in a.monthly_returns)


async def test_the_table_is_written_when_a_run_ends(stub, engine):
    bid = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-10")))
    path = engine.store.backtest_dir(bid) / "analytics" / "table.npz"
    for _ in range(200):
        if path.is_file():
            break
        await asyncio.sleep(0.025)
    assert path.is_file()


async def test_a_running_run_is_failed_precondition_and_a_cancelled_one_covers_its_completed_days(stub, astub):
    resp = await stub.StartBacktest(sma_request(days=("2016-01-01", "2025-12-31"), tick_interval=1))
    bid = resp.backtest_id
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "still" in err.details()
    call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=bid))
    days_seen = 0
    async for ev in call:
        days_seen += ev.HasField("day_completed")
        if days_seen == 3:
            break
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    other = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-05")))
    err = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[other, bid])))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and bid in err.details()
    bt = await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=bid))
    call.cancel()
    assert bt.status == pb.BACKTEST_STATUS_CANCELLED and 3 <= bt.progress.completed_days < bt.progress.total_days
    a = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, rolling_window_days=2))
    ref = await reference(stub, bid)
    assert a.returns_distribution.days == len(ref.days) == bt.progress.completed_days
    assert len(a.rolling) == len(ref.days) - 1 and a.rolling[-1].date == ref.days[-1].strftime("%Y-%m-%d")
    assert [p.trade_id for p in a.trades] == ref.trades.trade_id.tolist()
    assert a.metrics == ref.backtest.metrics


async def test_a_run_without_a_completed_day_is_failed_precondition(stub, astub):
    long = sma_request(days=("2016-01-01", "2025-12-31"), tick_interval=1)
    started = [await stub.StartBacktest(long) for _ in range(3)]  # two run (the limit), one waits
    queued = started[2].backtest_id
    bt = await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=queued))
    for s in started[:2]:
        await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=s.backtest_id))
    assert bt.status == pb.BACKTEST_STATUS_CANCELLED and bt.progress.completed_days == 0
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=queued)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no completed day" in err.details()


async def test_out_of_range_parameters_are_invalid_argument_naming_the_field(stub, astub):
    for kw, field in (({"rolling_window_days": 1}, "rolling_window_days"),
                      ({"rolling_window_days": 1001}, "rolling_window_days"),
                      ({"rolling_window_days": -5}, "rolling_window_days"),
                      ({"histogram_bins": 4}, "histogram_bins"), ({"histogram_bins": 501}, "histogram_bins")):
        err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id="bt_x", **kw)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(err) == [field], kw
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(err) == ["backtest_id"]
    bid = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-03")))
    for kw in ({"rolling_window_days": 2, "histogram_bins": 5}, {"rolling_window_days": 1000, "histogram_bins": 500}):
        a = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, **kw))
        assert len(a.returns_distribution.counts) == kw["histogram_bins"]


async def test_another_users_run_is_not_found_exactly_like_a_missing_one(tokens, stub, astub):
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    mine = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-05")), alice)
    theirs = await run_to_end(stub, sma_request(days=("2024-01-08", "2024-01-12")), bob)
    missing = "bt_20240101_000000_deadbeef"

    def shape(err: grpc.aio.AioRpcError, ident: str) -> tuple:
        status = rpc_status.from_call(err)
        return err.code(), err.details().replace(ident, "<id>"), [
            d.type_url for d in status.details], status.details[0].value.replace(ident.encode(), b"<id>")

    for ident in (mine, missing):
        err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=ident), metadata=bob))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    a = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=mine), metadata=bob))
    b = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=missing), metadata=bob))
    assert shape(a, mine) == shape(b, missing)
    a = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[theirs, mine]), metadata=bob))
    b = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[theirs, missing]),
                                            metadata=bob))
    assert a.code() == grpc.StatusCode.NOT_FOUND and mine in a.details()
    assert shape(a, mine) == shape(b, missing)
    # Alice's own, and an admin's view of it, work; no credentials do not.
    assert (await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=mine), metadata=alice)).backtest_id == mine
    both = await astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[theirs, mine]), metadata=root)
    assert [b.backtest_id for b in both.backtests] == [theirs, mine]
    err = await _error(astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=mine)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_compare_validation(stub, astub):
    a = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-03")))
    b = await run_to_end(stub, sma_request(days=("2024-01-04", "2024-01-05")))
    for ids, needle in (([a], "1 ids given"), ([], "0 ids given"), ([a, b, "c", "d", "e", "f"], "6 ids given"),
                        ([a, b, a], f"'{a}' is given more than once")):
        err = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=ids)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "backtest_ids" in _fields(err), ids
        assert needle in err.details(), err.details()
    err = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[a, ""])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(err) == ["backtest_ids[1]"]
    err = await _error(astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[a, "bt_nope"])))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "bt_nope" in err.details()


async def test_compare_puts_runs_over_different_ranges_on_one_axis(stub, astub):
    a = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-19")))
    b = await run_to_end(stub, start_request(days=("2024-01-10", "2024-02-09"), initial_capital=250_000))
    ra, rb = await reference(stub, a), await reference(stub, b)
    c = await astub.CompareBacktests(apb.CompareBacktestsRequest(backtest_ids=[b, a]))
    axis = sorted(set(ra.days) | set(rb.days))
    assert list(c.dates) == [d.strftime("%Y-%m-%d") for d in axis]
    assert [x.backtest_id for x in c.backtests] == [b, a]  # in the order asked
    for msg, ref in zip(c.backtests, (rb, ra)):
        pct = pd.Series((ref.equity / ref.initial - 1) * 100, index=ref.days)
        want = pct.reindex(pd.DatetimeIndex(axis)).ffill().fillna(0.0)
        assert list(msg.return_pct) == pytest.approx(want.tolist())
        assert c.dates[msg.first_index] == msg.start_date == ref.days[0].strftime("%Y-%m-%d")
        assert c.dates[msg.last_index] == msg.end_date == ref.days[-1].strftime("%Y-%m-%d")
        assert msg.metrics == ref.backtest.metrics and msg.symbol == "SIM-NIFTY"
        assert msg.strategy_id == ref.backtest.strategy_id and msg.strategy_name == ref.backtest.config.strategy.name
    assert c.backtests[1].first_index == 0 and c.backtests[1].return_pct[-1] == c.backtests[1].return_pct[
        c.backtests[1].last_index]  # its last value after its last day
    assert c.backtests[0].return_pct[0] == 0.0 and c.backtests[0].first_index > 0  # 0 before its first day
    assert math.isclose(c.backtests[0].return_pct[-1], (rb.equity[-1] / 250_000 - 1) * 100)


async def test_an_option_run_gives_one_trade_point_per_position(stub, astub):
    bid = await run_to_end(stub, start_request(days=("2024-01-01", "2024-01-12"), name="short_straddle.json",
                                               strategy_id="straddle"))
    ref = await reference(stub, bid)
    a = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, rolling_window_days=2, histogram_bins=5))
    assert ref.backtest.summary.total_trades > len(ref.trades) > 0  # two legs a position
    assert [p.trade_id for p in a.trades] == ref.trades.trade_id.tolist()
    assert {p.side for p in a.trades} == {"options"}
    assert [p.pnl for p in a.trades] == pytest.approx(ref.trades.pnl.tolist())
    assert [p.return_pct for p in a.trades] == pytest.approx(ref.trades.ret.tolist())
    assert [p.duration_minutes for p in a.trades] == pytest.approx(ref.trades.duration.tolist())
    assert [p.node_id for p in a.trades] == ["straddle"] * len(ref.trades)
    assert sum(g.trades for g in a.exit_reasons) == len(ref.trades)
    assert [(p.entry_hour, p.entry_minute_of_day) for p in a.trades] == [(9, 9 * 60 + 20)] * len(ref.trades)


async def test_a_call_made_on_the_terminal_event_waits_for_the_runs_end_to_be_written(stub, astub, engine,
                                                                                      monkeypatch):
    write = engine.store.write_metadata

    def slow_write(*args, **kw):  # the end of a long run: metadata of thousands of days, the index
        time.sleep(0.5)
        return write(*args, **kw)

    monkeypatch.setattr(engine.store, "write_metadata", slow_write)
    resp = await stub.StartBacktest(sma_request(days=("2024-01-01", "2024-01-31")))
    async for ev in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=resp.backtest_id)):
        if ev.HasField("backtest_completed"):  # the stream is still open: the run's end is being written
            a = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=resp.backtest_id))
            assert a.metrics.total_trades == ev.backtest_completed.metrics.total_trades > 0
            assert a.returns_distribution.days == ev.backtest_completed.overall_summary.total_days


async def test_a_run_keeps_a_bounded_number_of_answers(stub, astub, engine):
    from services.engine.analytics.cache import ANSWERS_PER_RUN

    bid = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-05")))
    folder = engine.store.backtest_dir(bid) / "analytics"
    for window in range(2, 2 + ANSWERS_PER_RUN + 3):
        await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=bid, rolling_window_days=window))
    answers = sorted(p.name for p in folder.glob("answer-*.pb"))
    assert len(answers) == ANSWERS_PER_RUN and "answer-w2-b50.pb" not in answers
    assert f"answer-w{1 + ANSWERS_PER_RUN + 3}-b50.pb" in answers
