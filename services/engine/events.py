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


_NAN = float("nan")


def node_event_fields(ev: dict) -> dict:
    """A node event dict (day files' form) as NodeEvent constructor fields: no nulls (an unset
    parent or candle), undefined condition values as NaN. Every key is a NodeEvent field."""
    d = ev.copy()
    if d["parent_execution_id"] is None:
        del d["parent_execution_id"]
    if d["previous_candle"] is None:
        del d["previous_candle"]
    if d["current_candle"] is None:
        del d["current_candle"]
    conditions = d["evaluated_conditions"]
    for k, c in enumerate(conditions):
        if None in c.values():
            d["evaluated_conditions"] = conditions = list(conditions)
            conditions[k] = {key: (_NAN if v is None else v) for key, v in c.items()}
    return d


def node_event_message(ev: dict) -> results_pb2.NodeEvent:
    return results_pb2.NodeEvent(**node_event_fields(ev))


def trade_message(t: dict) -> results_pb2.Trade:
    return results_pb2.Trade(**t)


class RunningTotals:
    """Realized P&L and trade counts so far, for trade_update summaries (day_event_bodies
    adds each day's trades)."""

    def __init__(self, initial_capital: float):
        self.initial = initial_capital
        self.realized = 0.0
        self.closed = 0

    def add(self, trades: list[dict]) -> None:
        """Add a day's trades without building its events (a resumed run's days before its
        checkpoint): the same sums, in the same order, as day_event_bodies."""
        realized, closed = self.realized, self.closed
        for t in trades:
            realized += float(t["pnl"])
            closed += 1
        self.realized, self.closed = realized, closed


def day_event_bodies(day: DayResult, totals: RunningTotals, has_detail_data: bool) -> list[bytes]:
    """The events that report one finished day, in order, each serialized as a BacktestEvent
    holding only its kind (the event log adds the id, backtest id and time: Publisher).

    Messages are built straight from the day's dicts (the constructor takes nested dicts and
    lists), one per event: no intermediate message copied into its envelope. Serialized
    deterministically (map entries by key), so a run's events are the same bytes every time.
    """
    event = pb.BacktestEvent
    out = [event(day_started={"date": day.date, "day_number": day.day_number, "total_days": day.total_days})
           .SerializeToString(deterministic=True)]
    # (sort key, tie-break, event): node events, then ticks, then trades at the same time.
    items: list[tuple[str, int, bytes]] = [
        (ev["timestamp"], 0, event(node_event=node_event_fields(ev)).SerializeToString(deterministic=True))
        for ev in day.new_events]
    for tick in day.ticks:
        msg = pb.TickUpdate(date=day.date, timestamp=tick["timestamp"], tick=tick["tick"], ltp=tick["ltp"])
        for p in tick["open_positions"]:
            msg.open_positions.add(**p)
        ps = tick["pnl_summary"]
        msg.pnl_summary.CopyFrom(pb.PnlSummary(realized_pnl=ps["realized_pnl"], unrealized_pnl=ps["unrealized_pnl"],
                                               total_pnl=ps["total_pnl"], closed_trades=totals.closed,
                                               open_trades=ps["open_trades"], equity=ps["equity"]))
        items.append((tick["timestamp"], 1, event(tick_update=msg).SerializeToString(deterministic=True)))
    initial, realized, closed = totals.initial, totals.realized, totals.closed
    for t in day.trades:
        realized += float(t["pnl"])
        closed += 1
        pnl = money(realized)
        summary = {"realized_pnl": pnl, "unrealized_pnl": "0.00", "total_pnl": pnl, "closed_trades": closed,
                   "equity": money(initial + realized)}
        items.append((t["exit_time"], 2,
                      event(trade_update={"trade": t, "summary": summary}).SerializeToString(deterministic=True)))
    totals.realized, totals.closed = realized, closed
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
    out.append(event(day_completed=completed).SerializeToString(deterministic=True))
    return out


# --- reading events back from the log ---------------------------------------------------------
# A logged event is its stamp (event_id, backtest_id, emitted_at: fields 1-3) followed by its
# body (the kind: one field numbered 10 and up), as Publisher.append_bodies writes it.
_KIND_BY_FIELD = {f.number: f.name for f in pb.BacktestEvent.DESCRIPTOR.oneofs_by_name["event"].fields}
TERMINAL_KINDS = frozenset({"backtest_completed", "backtest_failed", "backtest_cancelled"})
_FIRST_KIND_FIELD = min(_KIND_BY_FIELD)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def split_stamp(payload: bytes) -> tuple[int, bytes]:
    """(event_id, body) of an event as the log holds it; the body is the event's bytes
    without its stamp, comparable to what day_event_bodies produced."""
    pos, event_id = 0, 0
    while pos < len(payload):
        tag, after = _read_varint(payload, pos)
        field, wire = tag >> 3, tag & 7
        if field >= _FIRST_KIND_FIELD:
            break
        if wire == 0:
            value, after = _read_varint(payload, after)
            if field == 1:
                event_id = value
        elif wire == 2:
            length, after = _read_varint(payload, after)
            after += length
        else:
            raise ValueError(f"unexpected wire type {wire} in an event's stamp")
        pos = after
    return event_id, payload[pos:]


def body_kind(body: bytes) -> str:
    """The kind of an event body (its oneof field's name), "" if it has none."""
    if not body:
        return ""
    tag, _ = _read_varint(body, 0)
    return _KIND_BY_FIELD.get(tag >> 3, "")
