"""The slow, obvious way to turn a run into day files and stream events: the reference the
fast (columnar) output path is compared with, byte for byte.

This is a frozen copy of how results were built before the columnar path (issue 9): the
kernel stepped one trading day at a time, a Python dict per trade and per node event, times
formatted one at a time with numpy, the standard library's json, and a protobuf message built
from each dict. Do not optimise it: its only job is to be obviously right.
"""

from __future__ import annotations

import json

import numpy as np

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.engine.core import kernels, records
from services.engine.core.backtest import Backtest, day_str
from services.engine.core.signals import explain
from services.engine.core.spec import format_minutes

NODE_TYPES = {
    records.EXIT_STOP_LOSS: ("StopLoss", "stop_loss"),
    records.EXIT_TAKE_PROFIT: ("TakeProfit", "take_profit"),
    records.EXIT_TRAILING: ("TrailingStop", "trailing_stop"),
    records.EXIT_MAX_BARS: ("MaxBars", "max_bars"),
    records.EXIT_SQUARE_OFF: ("SquareOff", "square_off"),
    records.EXIT_END_OF_DATA: ("EndOfData", "end_of_data"),
}


def money(x: float) -> str:
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s


class SlowTimes:
    def __init__(self, bars):
        self.local = bars.local_index

    def iso(self, i: int) -> str:
        return self.local[i].isoformat()

    def compact(self, i: int) -> str:
        return self.local[i].strftime("%Y%m%d_%H%M%S")


class SlowResults:
    def __init__(self, bt: Backtest):
        self.plan, self.bars, self.signals, self.symbol = bt.plan, bt.bars, bt.signals, bt.symbol
        self.fmt = SlowTimes(bt.bars)

    def position_id(self, t) -> str:
        return f"{self.plan.entries[int(t['node'])].id}-pos{int(t['pos_seq'])}"

    def entry_exec_id(self, node: int, bar: int) -> str:
        return f"exec_{self.plan.entries[node].id}_{self.fmt.compact(bar)}"

    def exit_exec_id(self, t) -> str:
        code, bar = int(t["exit_reason"]), int(t["exit_signal_bar"])
        if code == records.EXIT_SIGNAL:
            return f"exec_{self.plan.exits[int(t['exit_node'])].id}_{self.fmt.compact(bar)}"
        if code == records.EXIT_REVERSE:
            return self.entry_exec_id(int(t["exit_node"]), bar)
        return f"exec_{self.position_id(t)}_{NODE_TYPES[code][1]}_{self.fmt.compact(bar)}"

    def exit_reason(self, t) -> str:
        code = int(t["exit_reason"])
        if code == records.EXIT_SIGNAL:
            return f"signal:{self.plan.exits[int(t['exit_node'])].id}"
        if code == records.EXIT_REVERSE:
            return f"signal:{self.plan.entries[int(t['exit_node'])].id}"
        return records.EXIT_REASON_NAMES[code]

    def trade_dicts(self, trades) -> list[dict]:
        out = []
        for t in trades:
            notional = float(t["qty"] * t["entry_price"])
            pnl = float(t["pnl"])
            dur = (self.bars.ts[int(t["exit_bar"])] - self.bars.ts[int(t["entry_bar"])]) / 60e9
            out.append({
                "trade_id": self.position_id(t), "position_id": self.position_id(t),
                "re_entry_num": int(t["re_entry_num"]), "symbol": self.symbol,
                "side": "buy" if t["side"] == records.LONG else "sell", "quantity": float(t["qty"]),
                "entry_price": money(t["entry_price"]), "entry_time": self.fmt.iso(int(t["entry_bar"])),
                "exit_price": money(t["exit_price"]), "exit_time": self.fmt.iso(int(t["exit_bar"])),
                "pnl": money(pnl), "pnl_percent": money(100.0 * pnl / notional if notional else 0.0),
                "commission": money(t["entry_commission"] + t["exit_commission"]),
                "duration_minutes": round(float(dur), 2), "bars_held": int(t["exit_bar"] - t["entry_bar"] + 1),
                "status": "closed",
                "entry_flow_ids": [self.entry_exec_id(int(t["node"]), int(t["entry_signal_bar"]))],
                "exit_flow_ids": [self.exit_exec_id(t)],
                "entry_trigger": self.plan.entries[int(t["node"])].id, "exit_reason": self.exit_reason(t),
            })
        return out

    def candle(self, i: int):
        if i < 0:
            return None
        b = self.bars
        return {"timestamp": self.fmt.iso(i), "open": float(b.open[i]), "high": float(b.high[i]),
                "low": float(b.low[i]), "close": float(b.close[i]), "volume": float(b.volume[i])}

    def event(self, exec_id, bar, event_type, node_id, node_name, node_type, preview, conditions, variables,
              position_id, action, parent=None) -> dict:
        return {"execution_id": exec_id, "parent_execution_id": parent, "timestamp": self.fmt.iso(bar),
                "event_type": event_type, "node_id": node_id, "node_name": node_name, "node_type": node_type,
                "signal_emitted": True, "conditions_preview": preview, "evaluated_conditions": conditions,
                "current_candle": self.candle(bar), "previous_candle": self.candle(bar - 1),
                "variables": variables, "position_id": position_id, "action": action}

    def node_events(self, trades, open_positions=()) -> dict[str, dict]:
        events: dict[str, dict] = {}
        for t in trades:
            self.entry_event(events, int(t["node"]), int(t["entry_signal_bar"]), self.position_id(t), t)
            self.exit_event(events, t)
        for node, pos in open_positions:
            pid = f"{self.plan.entries[node].id}-pos{int(pos['pos_seq'])}"
            self.entry_event(events, node, int(pos["entry_signal_bar"]), pid, pos)
        return events

    def entry_event(self, events, node, bar, pid, rec) -> None:
        exec_id = self.entry_exec_id(node, bar)
        ev = events.get(exec_id)
        e = self.plan.entries[node]
        if ev is None:
            variables = {"quantity": float(rec["qty"]), "entry_price": float(rec["entry_price"])}
            if not np.isnan(rec["sl_level"]):
                variables["stop_loss"] = float(rec["sl_level"])
            if not np.isnan(rec["tp_level"]):
                variables["take_profit"] = float(rec["tp_level"])
            events[exec_id] = self.event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                         explain(e.when, self.signals, bar), variables, pid, "open")
        elif ev["position_id"] != pid and ev["action"] == "close":
            ev["action"] = "reverse"

    def exit_event(self, events, t) -> None:
        exec_id = self.exit_exec_id(t)
        code, bar, pid = int(t["exit_reason"]), int(t["exit_signal_bar"]), self.position_id(t)
        parent = self.entry_exec_id(int(t["node"]), int(t["entry_signal_bar"]))
        if exec_id in events:
            if code == records.EXIT_REVERSE:
                events[exec_id]["action"] = "reverse"
                events[exec_id]["variables"][f"closed:{pid}"] = float(t["exit_price"])
            return
        if code == records.EXIT_SIGNAL:
            x = self.plan.exits[int(t["exit_node"])]
            events[exec_id] = self.event(exec_id, bar, "EXIT", x.id, x.name, "ExitNode", x.when.preview(),
                                         explain(x.when, self.signals, bar), {"exit_price": float(t["exit_price"])},
                                         pid, "close", parent)
            return
        if code == records.EXIT_REVERSE:
            e = self.plan.entries[int(t["exit_node"])]
            events[exec_id] = self.event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                         explain(e.when, self.signals, bar), {f"closed:{pid}": float(t["exit_price"])},
                                         pid, "reverse", parent)
            return
        node_type, _ = NODE_TYPES[code]
        conditions, preview = self.stop_conditions(t, code, bar)
        e = self.plan.entries[int(t["node"])]
        variables = {"exit_price": float(t["exit_price"])}
        for field, name in (("sl_level", "stop_loss"), ("tp_level", "take_profit"), ("trail_level", "trailing_stop")):
            if not np.isnan(t[field]):
                variables[name] = float(t[field])
        events[exec_id] = self.event(exec_id, bar, "EXIT", f"{e.id}:{NODE_TYPES[code][1]}", f"{e.name} {node_type}",
                                     node_type, preview, conditions, variables, pid, "close", parent)

    def stop_conditions(self, t, code, bar):
        b, long = self.bars, t["side"] == records.LONG
        if code in (records.EXIT_STOP_LOSS, records.EXIT_TRAILING):
            level = float(t["sl_level"] if code == records.EXIT_STOP_LOSS else t["trail_level"])
            name = "StopLoss" if code == records.EXIT_STOP_LOSS else "TrailingStop"
            lhs, val, op = ("Low", float(b.low[bar]), "<=") if long else ("High", float(b.high[bar]), ">=")
        elif code == records.EXIT_TAKE_PROFIT:
            level, name = float(t["tp_level"]), "TakeProfit"
            lhs, val, op = ("High", float(b.high[bar]), ">=") if long else ("Low", float(b.low[bar]), "<=")
        elif code == records.EXIT_MAX_BARS:
            held = float(t["exit_signal_bar"] - t["entry_bar"] + 1)
            n = float(self.plan.entries[int(t["node"])].max_bars)
            return [{"lhs": "BarsHeld", "lhs_value": held, "operator": ">=", "rhs": "MaxBars", "rhs_value": n,
                     "result": True}], f"BarsHeld >= {int(n)}"
        elif code == records.EXIT_SQUARE_OFF:
            sq = self.plan.session.square_off_minute or 0.0
            return [{"lhs": "Time", "lhs_value": float(b.minute_of_day[bar]), "operator": ">=",
                     "rhs": format_minutes(sq), "rhs_value": sq, "result": True}], f"Time >= {format_minutes(sq)}"
        else:
            return [], "end of data"
        return [{"lhs": lhs, "lhs_value": val, "operator": op, "rhs": name, "rhs_value": level,
                 "result": True}], f"{lhs} {op} {name}"


def day_summary(trades: list[dict]) -> dict:
    pnls = [float(t["pnl"]) for t in trades]
    wins = sum(1 for p in pnls if p > 0)
    return {"total_trades": len(trades), "total_pnl": money(sum(pnls)), "winning_trades": wins,
            "losing_trades": sum(1 for p in pnls if p < 0),
            "win_rate": money(100.0 * wins / len(trades) if trades else 0.0),
            "commission": money(sum(float(t["commission"]) for t in trades))}


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def reference_days(bt: Backtest) -> list[dict]:
    """Step the kernel a day at a time; for each day, what the old path wrote and streamed:
    {"date", "trades_daily" (bytes), "diagnostics" (bytes), "events" (BacktestEvent bytes,
    without the ids and times the log stamps)}."""
    r = SlowResults(bt)
    inp, plan = bt.inputs, bt.plan
    capacity = int(bt.signals.entry[bt.first_bar:].sum()) + 16
    state = kernels.new_state(len(plan.entries), bt.initial_capital, trade_capacity=capacity)
    last = len(bt.bars) - 1
    emitted: set[str] = set()
    realized, closed = 0.0, 0
    out = []
    for d in range(bt.first_day, len(bt.day_dates)):
        s, e = int(bt.day_starts[d]), int(bt.day_starts[d + 1])
        recs = kernels.run_chunk(inp, state, s, e)
        if d == len(bt.day_dates) - 1:
            tail = kernels.close_all(inp, state, last, records.EXIT_END_OF_DATA)
            recs = np.concatenate([recs, tail]) if len(tail) else recs
            inp.equity[last] = state.cash
        trades = r.trade_dicts(recs)
        pos = state.positions
        open_now = [(k, pos[k]) for k in range(len(pos)) if pos[k]["qty"] != 0]
        events = r.node_events(recs, open_now)
        fresh = [ev for k, ev in events.items() if k not in emitted]
        emitted.update(ev["execution_id"] for ev in fresh)
        fresh.sort(key=lambda ev: ev["timestamp"])
        date, summary = day_str(bt.day_dates[d]), day_summary(trades)
        price = float(bt.bars.close[e - 1])
        open_dicts = [{
            "position_id": f"{plan.entries[k].id}-pos{int(p['pos_seq'])}", "symbol": bt.symbol,
            "side": "buy" if p["side"] == records.LONG else "sell", "quantity": float(p["qty"]),
            "entry_price": money(p["entry_price"]), "current_price": money(price),
            "unrealized_pnl": money(p["side"] * p["qty"] * (price - p["entry_price"])),
            "entry_time": r.fmt.iso(int(p["entry_bar"]))} for k, p in open_now]
        number = d - bt.first_day + 1
        evs = [pb.BacktestEvent(day_started=pb.DayStarted(date=date, day_number=number, total_days=bt.total_days))]
        items = []
        for ev in fresh:
            msg = results_pb2.NodeEvent(
                execution_id=ev["execution_id"], parent_execution_id=ev["parent_execution_id"] or "",
                timestamp=ev["timestamp"], event_type=ev["event_type"], node_id=ev["node_id"],
                node_name=ev["node_name"], node_type=ev["node_type"], signal_emitted=True,
                conditions_preview=ev["conditions_preview"], position_id=ev["position_id"], action=ev["action"])
            for c in ev["evaluated_conditions"]:
                msg.evaluated_conditions.add(**{k: (float("nan") if v is None else v) for k, v in c.items()})
            for name in ("current_candle", "previous_candle"):
                if ev[name]:
                    getattr(msg, name).CopyFrom(results_pb2.Candle(**ev[name]))
            msg.variables.update(ev["variables"])
            items.append((ev["timestamp"], 0, pb.BacktestEvent(node_event=msg)))
        for t in trades:
            realized += float(t["pnl"])
            closed += 1
            summ = pb.PnlSummary(realized_pnl=money(realized), unrealized_pnl=money(0.0), total_pnl=money(realized),
                                 closed_trades=closed, open_trades=0, equity=money(bt.initial_capital + realized))
            items.append((t["exit_time"], 2, pb.BacktestEvent(trade_update=pb.TradeUpdate(
                trade=results_pb2.Trade(**t), summary=summ))))
        items.sort(key=lambda x: (x[0], x[1]))
        evs.extend(ev for _, _, ev in items)
        completed = pb.DayCompleted(date=date, day_number=number, total_days=bt.total_days,
                                    summary=results_pb2.DaySummary(**summary), has_detail_data=True,
                                    equity=money(float(bt.equity_array[e - 1])))
        for p in open_dicts:
            completed.open_positions.add(**p)
        evs.append(pb.BacktestEvent(day_completed=completed))
        out.append({"date": date,
                    "trades_daily": dumps({"date": date, "summary": summary, "trades": trades}),
                    "diagnostics": dumps({"date": date, "events_history": events}),
                    "events": [ev.SerializeToString(deterministic=True) for ev in evs],
                    "trades": trades})
    return out
