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


_NODE_FIELDS = frozenset(results_pb2.NodeEvent.DESCRIPTOR.fields_by_name)
_NAN = float("nan")


def node_event_fields(ev: dict) -> dict:
    """A node event dict (day files' form) as NodeEvent constructor fields: no nulls (an unset
    parent or candle), undefined condition values as NaN."""
    d = {k: v for k, v in ev.items() if v is not None and k in _NODE_FIELDS}
    conditions = d.get("evaluated_conditions")
    if conditions:
        d["evaluated_conditions"] = [c if None not in c.values() else
                                     {k: (_NAN if v is None else v) for k, v in c.items()} for c in conditions]
    return d


def node_event_message(ev: dict) -> results_pb2.NodeEvent:
    return results_pb2.NodeEvent(**node_event_fields(ev))


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

    def summary_fields(self) -> dict:
        """PnlSummary fields with no position open."""
        realized = money(self.realized)
        return {"realized_pnl": realized, "unrealized_pnl": "0.00", "total_pnl": realized,
                "closed_trades": self.closed, "equity": money(self.initial + self.realized)}

    def summary(self, open_trades: int = 0, unrealized: float = 0.0) -> pb.PnlSummary:
        return pb.PnlSummary(realized_pnl=money(self.realized), unrealized_pnl=money(unrealized),
                             total_pnl=money(self.realized + unrealized), closed_trades=self.closed,
                             open_trades=open_trades, equity=money(self.initial + self.realized + unrealized))


def _body(**event) -> bytes:
    return pb.BacktestEvent(**event).SerializeToString(deterministic=True)


def day_event_bodies(day: DayResult, totals: RunningTotals, has_detail_data: bool) -> list[bytes]:
    """The events that report one finished day, in order, each serialized as a BacktestEvent
    holding only its kind (the event log adds the id, backtest id and time: Publisher).

    Messages are built straight from the day's dicts (the constructor takes nested dicts and
    lists), one per event: no intermediate message copied into its envelope.
    """
    out = [_body(day_started={"date": day.date, "day_number": day.day_number, "total_days": day.total_days})]
    # (sort key, tie-break, event): node events, then ticks, then trades at the same time.
    items: list[tuple[str, int, bytes]] = []
    for ev in day.new_events:
        items.append((ev["timestamp"], 0, _body(node_event=node_event_fields(ev))))
    for tick in day.ticks:
        msg = pb.TickUpdate(date=day.date, timestamp=tick["timestamp"], tick=tick["tick"], ltp=tick["ltp"])
        for p in tick["open_positions"]:
            msg.open_positions.add(**p)
        ps = tick["pnl_summary"]
        msg.pnl_summary.CopyFrom(pb.PnlSummary(realized_pnl=ps["realized_pnl"], unrealized_pnl=ps["unrealized_pnl"],
                                               total_pnl=ps["total_pnl"], closed_trades=totals.closed,
                                               open_trades=ps["open_trades"], equity=ps["equity"]))
        items.append((tick["timestamp"], 1, pb.BacktestEvent(tick_update=msg).SerializeToString(deterministic=True)))
    for t in day.trades:
        totals.add(t)
        items.append((t["exit_time"], 2, _body(trade_update={"trade": t, "summary": totals.summary_fields()})))
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
    out.append(pb.BacktestEvent(day_completed=completed).SerializeToString(deterministic=True))
    return out
