"""AnalyticsService tests: a stub on the engine of tests/engine/conftest.py, runs driven to their
end, and the figures computed independently from what BacktestService returns (GetBacktest's
daily summaries, GetDay's trades) with pandas."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import grpc
import numpy as np
import pandas as pd
import pytest

from hindsight.v1 import analytics_pb2_grpc as apb_grpc
from hindsight.v1 import backtest_service_pb2 as pb

from tests.engine.conftest import start_request

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@pytest.fixture
async def astub(engine):
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}", options=options) as channel:
        yield apb_grpc.AnalyticsServiceStub(channel)


def sma_request(days=("2024-01-01", "2024-02-29"), **kw) -> pb.StartBacktestRequest:
    """The SMA 10/20 crossover without fees (every crossover trades: ~20 trades a day)."""
    req = start_request(days=days, name="sma_cross.json", strategy_id=kw.pop("strategy_id", "sma"), **kw)
    req.strategy.execution.commission_pct = 0
    return req


async def run_to_end(stub, request: pb.StartBacktestRequest, metadata=()) -> str:
    resp = await stub.StartBacktest(request, metadata=metadata)
    events = []
    async for ev in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=resp.backtest_id), metadata=metadata):
        events.append(ev)
    assert events[-1].WhichOneof("event") == "backtest_completed", events[-1]
    return resp.backtest_id


@dataclass
class Reference:
    """A run as BacktestService returns it, and the analytics figures computed from that."""

    backtest: pb.Backtest
    days: pd.DatetimeIndex
    equity: np.ndarray
    initial: float
    trades: pd.DataFrame  # one row per closed trade (option runs: per position), in exit order

    @property
    def returns(self) -> pd.Series:
        curve = pd.Series(np.concatenate(([self.initial], self.equity)))
        return pd.Series(curve.pct_change().to_numpy()[1:], index=self.days)


async def reference(stub, bid: str, metadata=()) -> Reference:
    bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid), metadata=metadata)
    days = [d.date for d in bt.daily_summaries]
    rows = []
    for k, day in enumerate(days):
        detail = await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date=day), metadata=metadata)
        if detail.positions or any(t.leg_id for t in detail.trades):
            for p in detail.positions:
                entry, exit_ = datetime.fromisoformat(p.entry_time), datetime.fromisoformat(p.exit_time)
                rows.append(dict(day=k, trade_id=p.position_id, entry_time=p.entry_time, exit_time=p.exit_time,
                                 duration=(exit_ - entry).total_seconds() / 60, pnl=float(p.pnl),
                                 ret=100 * float(p.pnl) / abs(float(p.entry_premium)), side="options",
                                 exit_reason=p.exit_reason, node=p.entry_trigger, entry=entry))
        else:
            for t in detail.trades:
                entry = datetime.fromisoformat(t.entry_time)
                rows.append(dict(day=k, trade_id=t.trade_id, entry_time=t.entry_time, exit_time=t.exit_time,
                                 duration=t.duration_minutes, pnl=float(t.pnl),
                                 ret=100 * float(t.pnl) / (t.quantity * float(t.entry_price)),
                                 side={"buy": "long", "sell": "short"}[t.side], exit_reason=t.exit_reason,
                                 node=t.entry_trigger, entry=entry))
    trades = pd.DataFrame(rows, columns=["day", "trade_id", "entry_time", "exit_time", "duration", "pnl", "ret", "side",
                                         "exit_reason", "node", "entry"])
    return Reference(bt, pd.DatetimeIndex(days), np.array([float(d.equity) for d in bt.daily_summaries]),
                     bt.metrics.initial_capital, trades)


def expected_periods(ref: Reference, freq: str) -> list[tuple]:
    """(year, month, return %, pnl, days, trades) per calendar month ("M") or year ("Y")."""
    r = ref.returns
    pnl = pd.Series(np.diff(np.concatenate(([ref.initial], ref.equity))), index=ref.days)
    key = ref.days.to_period(freq)
    trade_period = ref.days[ref.trades["day"].to_numpy()].to_period(freq)
    out = []
    for period in key.unique():
        sel = key == period
        out.append((period.year, period.month if freq == "M" else 0, ((1 + r[sel]).prod() - 1) * 100,
                    pnl[sel].sum(), int(sel.sum()), int((trade_period == period).sum())))
    return out


def expected_rolling(ref: Reference, window: int) -> pd.DataFrame:
    r = ref.returns
    roll = r.rolling(window)
    std = roll.std()
    flat = (roll.max() - roll.min()) == 0
    frame = pd.DataFrame({
        "sharpe": np.where(flat, 0.0, roll.mean() / std * math.sqrt(252)),
        "volatility_pct": np.where(flat, 0.0, std * math.sqrt(252) * 100),
        "return_pct": ((1 + r).rolling(window).apply(np.prod, raw=True) - 1) * 100}, index=ref.days)
    return frame.iloc[window - 1:]


def expected_groups(ref: Reference, key: pd.Series, order: list) -> list[tuple]:
    t = ref.trades.assign(key=key.to_numpy(), win=(ref.trades.pnl > 0))
    g = t.groupby("key")
    rows = {k: (k, int(len(x)), x.pnl.sum(), x.pnl.mean(), x.win.mean() * 100, x.duration.mean()) for k, x in g}
    return [rows[k] for k in order if k in rows]
