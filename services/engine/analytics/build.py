"""From a run's table to the messages of analytics.proto (GetAnalytics' bytes, a Comparison's
runs)."""

from __future__ import annotations

import math
import time

import numpy as np

from hindsight.v1 import analytics_pb2 as apb
from hindsight.v1 import results_pb2

from . import compute
from .encode import trade_points_bytes
from .load import RunTable

DEFAULT_WINDOW = 63
DEFAULT_BINS = 50


def _dates(days: np.ndarray) -> list[str]:
    return np.datetime_as_string(np.asarray(days, "datetime64[D]"), unit="D").tolist()


def metrics_of(table: RunTable) -> results_pb2.Metrics:
    """The run's metrics as stored; for a run that ended without them (failed), the ones its
    days and trades give (exposure and buy-and-hold, which need the bars, left unset)."""
    stored = table.info.get("metrics")
    if not stored:
        from services.engine.core.metrics import compute_metrics

        stored = compute_metrics(
            equity=table.equity, dates=np.asarray(table.days, "datetime64[D]"), trade_pnl=table.t_pnl,
            trade_return_pct=table.t_return, trade_duration_minutes=table.t_duration, exposure_fraction=0.0,
            initial_capital=table.initial_capital, first_price=math.nan, last_price=math.nan)
        stored.pop("exposure_time_pct")
    m = results_pb2.Metrics()
    for k, v in stored.items():
        if k in results_pb2.Metrics.DESCRIPTOR.fields_by_name and v is not None and not math.isnan(v):
            setattr(m, k, v)
    return m


def _periods(p: compute.Periods) -> list[apb.PeriodReturn]:
    return [apb.PeriodReturn(year=y, month=m, return_pct=r, pnl=q, trading_days=d, trades=t)
            for y, m, r, q, d, t in zip(p.year.tolist(), p.month.tolist(), p.return_pct.tolist(), p.pnl.tolist(),
                                        p.trading_days.tolist(), p.trades.tolist())]


def _groups(g: compute.Groups, names: list[str]) -> list[apb.GroupStats]:
    return [apb.GroupStats(key=names[k], trades=n, pnl=p, avg_pnl=a, win_rate_pct=w, avg_duration_minutes=d)
            for k, n, p, a, w, d in zip(g.key.tolist(), g.trades.tolist(), g.pnl.tolist(), g.avg_pnl.tolist(),
                                        g.win_rate_pct.tolist(), g.avg_duration_minutes.tolist())]


def analytics_bytes(backtest_id: str, table: RunTable, window: int = DEFAULT_WINDOW, bins: int = DEFAULT_BINS,
                    timings: dict | None = None) -> bytes:
    """The serialized Analytics of a run (cached unset)."""
    t0 = time.perf_counter()
    dates = _dates(table.days)
    r = compute.daily_returns(table.equity, table.initial_capital)
    head = apb.Analytics(backtest_id=backtest_id, rolling_window_days=window)
    head.monthly_returns.extend(_periods(compute.period_returns(table.days, table.equity, table.initial_capital,
                                                               table.t_day)))
    head.yearly_returns.extend(_periods(compute.period_returns(table.days, table.equity, table.initial_capital,
                                                               table.t_day, yearly=True)))
    roll = compute.rolling(r, window)
    head.rolling.extend(apb.RollingPoint(date=dates[i], sharpe=s, volatility_pct=v, return_pct=x)
                        for i, s, v, x in zip(roll.index.tolist(), roll.sharpe.tolist(), roll.volatility_pct.tolist(),
                                              roll.return_pct.tolist()))
    dist = compute.distribution(r * 100.0, bins)
    head.returns_distribution.CopyFrom(apb.ReturnsDistribution(
        bin_edges=dist.bin_edges.tolist(), counts=dist.counts.tolist(), normal_counts=dist.normal_counts.tolist(),
        days=dist.days, mean_pct=dist.mean_pct, std_pct=dist.std_pct, skew=dist.skew, kurtosis=dist.kurtosis,
        min_pct=dist.min_pct, max_pct=dist.max_pct, var_95_pct=dist.var_95_pct, cvar_95_pct=dist.cvar_95_pct,
        jarque_bera=dist.jarque_bera, jarque_bera_p_value=dist.jarque_bera_p_value))

    tail = apb.Analytics()
    dd = compute.drawdown_periods(table.equity, table.initial_capital)
    # Curve point 0 is the initial capital, on the calendar day before the first (as Metrics).
    curve_dates = _dates(np.concatenate(([table.days[0] - np.timedelta64(1, "D")], table.days))) \
        if len(table.days) else []
    tail.drawdowns.extend(apb.DrawdownPeriod(
        start=curve_dates[s], trough=curve_dates[t], recovery=curve_dates[v] if v >= 0 else "", depth_pct=d,
        length_days=n, decline_days=a, recovery_days=b)
        for s, t, v, d, n, a, b in zip(dd.start.tolist(), dd.trough.tolist(), dd.recovery.tolist(),
                                       dd.depth_pct.tolist(), dd.length_days.tolist(), dd.decline_days.tolist(),
                                       dd.recovery_days.tolist()))
    tail.pnl_by_weekday.extend(_groups(compute.group_stats(table.t_weekday, table.t_pnl, table.t_duration, 7),
                                       list(compute.WEEKDAYS)))
    tail.pnl_by_entry_hour.extend(_groups(compute.group_stats(table.t_hour, table.t_pnl, table.t_duration, 24),
                                          [f"{h:02d}" for h in range(24)]))
    reasons = [b.decode("utf-8", "replace") for b in table.reasons.tolist()]
    tail.exit_reasons.extend(_groups(compute.group_stats(table.t_reason, table.t_pnl, table.t_duration,
                                                         len(reasons), by_count=True), reasons))
    tail.metrics.CopyFrom(metrics_of(table))
    t1 = time.perf_counter()
    try:
        points = trade_points_bytes(table)
    except ValueError:  # a value beyond the encoder's widths (a 16 KiB id, say): the slow way
        from .encode import trade_point_messages

        points = apb.Analytics(trades=trade_point_messages(table)).SerializeToString()
    t2 = time.perf_counter()
    out = head.SerializeToString() + points + tail.SerializeToString()
    if timings is not None:
        timings.update(figures_s=t1 - t0, trade_points_s=t2 - t1, serialize_s=time.perf_counter() - t2,
                       trades=table.trades, days=len(table.days), bytes=len(out))
    return out


def compared(backtest_id: str, strategy_id: str, symbol: str, table: RunTable) -> apb.ComparedBacktest:
    """A run of a comparison, its values not yet on the axis."""
    return apb.ComparedBacktest(backtest_id=backtest_id, strategy_id=strategy_id,
                               strategy_name=table.info.get("strategy_name") or "",
                               symbol=symbol or table.info.get("symbol") or "",
                               start_date=_dates(table.days[:1])[0], end_date=_dates(table.days[-1:])[0],
                               metrics=metrics_of(table))


def comparison(runs: list[tuple[apb.ComparedBacktest, RunTable]]) -> apb.Comparison:
    """Runs on one ascending date axis (the union of their days), each as percent return on its
    initial capital."""
    axis = np.unique(np.concatenate([np.asarray(t.days, "datetime64[D]") for _, t in runs]))
    out = apb.Comparison(dates=_dates(axis))
    for msg, table in runs:
        pct = (table.equity / table.initial_capital - 1.0) * 100.0
        values, first, last = compute.align_returns(axis, np.asarray(table.days, "datetime64[D]"), pct)
        msg.return_pct.extend(values.tolist())
        msg.first_index, msg.last_index = first, last
        out.backtests.append(msg)
    return out
