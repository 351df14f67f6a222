"""Turn the core's per-day results into `BacktestEvent` messages, in stream order.

A day is reported as: day_started, then its node events, tick updates and trade updates in
bar order (a trade update right after the node event that closed it), then day_completed.
Only `event_id`, `backtest_id` and `emitted_at` are left for the event log to stamp.
"""

from __future__ import annotations


from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.engine.core.backtest import DayResult
from services.engine.core.results import money

def node_event_message(ev: dict) -> results_pb2.NodeEvent:
    msg = results_pb2.NodeEvent(
        execution_id=ev["execution_id"], parent_execution_id=ev.get("parent_execution_id") or "",
        timestamp=ev["timestamp"], event_type=ev["event_type"], node_id=ev["node_id"],
        node_name=ev["node_name"], node_type=ev["node_type"], signal_emitted=ev["signal_emitted"],
        conditions_preview=ev["conditions_preview"], position_id=ev.get("position_id", ""),
        action=ev.get("action", ""))
    for c in ev["evaluated_conditions"]:
        msg.evaluated_conditions.add(**{k: (float("nan") if v is None else v) for k, v in c.items()})
    for name in ("current_candle", "previous_candle"):
        candle = ev.get(name)
        if candle:
            getattr(msg, name).CopyFrom(results_pb2.Candle(**candle))
    msg.variables.update(ev.get("variables") or {})
    for sel in ev.get("strike_selections") or ():
        msg.strike_selections.add(**sel)
    return msg


def trade_message(t: dict) -> results_pb2.Trade:
    return results_pb2.Trade(**t)


class RunningTotals:
    """Realized P&L and trade counts so far, for trade_update summaries."""

    def __init__(self, initial_capital: float):
        self.initial = initial_capital
        self.realized = 0.0
        self.closed = 0

    def add(self, trade: dict) -> None:
        self.realized += float(trade["pnl"])
        self.closed += 1

    def summary(self, open_trades: int = 0, unrealized: float = 0.0) -> pb.PnlSummary:
        return pb.PnlSummary(realized_pnl=money(self.realized), unrealized_pnl=money(unrealized),
                             total_pnl=money(self.realized + unrealized), closed_trades=self.closed,
                             open_trades=open_trades, equity=money(self.initial + self.realized + unrealized))


def day_events(day: DayResult, totals: RunningTotals, has_detail_data: bool) -> list[pb.BacktestEvent]:
    """The events that report one finished day, in order."""
    out = [pb.BacktestEvent(day_started=pb.DayStarted(date=day.date, day_number=day.day_number,
                                                      total_days=day.total_days))]
    # (sort key, tie-break, event): node events, then ticks, then trades at the same time.
    items: list[tuple[str, int, pb.BacktestEvent]] = []
    for ev in day.new_events:
        items.append((ev["timestamp"], 0, pb.BacktestEvent(node_event=node_event_message(ev))))
    for tick in day.ticks:
        msg = pb.TickUpdate(date=day.date, timestamp=tick["timestamp"], tick=tick["tick"], ltp=tick["ltp"])
        for p in tick["open_positions"]:
            msg.open_positions.add(**p)
        ps = tick["pnl_summary"]
        msg.pnl_summary.CopyFrom(pb.PnlSummary(realized_pnl=ps["realized_pnl"], unrealized_pnl=ps["unrealized_pnl"],
                                               total_pnl=ps["total_pnl"], closed_trades=totals.closed,
                                               open_trades=ps["open_trades"], equity=ps["equity"]))
        items.append((tick["timestamp"], 1, pb.BacktestEvent(tick_update=msg)))
    for t in day.trades:
        totals.add(t)
        upd = pb.TradeUpdate(trade=trade_message(t), summary=totals.summary())
        items.append((t["exit_time"], 2, pb.BacktestEvent(trade_update=upd)))
    # ISO strings of one symbol share one offset within a day, so they sort chronologically.
    items.sort(key=lambda x: (x[0], x[1]))
    out.extend(e for _, _, e in items)
    completed = pb.DayCompleted(date=day.date, day_number=day.day_number, total_days=day.total_days,
                                summary=results_pb2.DaySummary(**day.summary), has_detail_data=has_detail_data,
                                equity=money(day.equity))
    for p in day.open_positions:
        completed.open_positions.add(**p)
    for p in day.positions:
        completed.positions.add(**p)
    out.append(pb.BacktestEvent(day_completed=completed))
    return out

