"""Kernel output → what people and clients read: trades, node events, day files, summaries.

The kernel returns record arrays; this module turns the slice of a single day into the seed
document formats (trades_daily.json, diagnostics_export.json). Money is a decimal string with
two places; times are exchange-local ISO 8601 with their UTC offset.
"""

from __future__ import annotations

import numpy as np

from . import records
from .bars import Bars
from .signals import Signals, explain
from .spec import StrategyPlan, format_minutes

NODE_TYPES = {
    records.EXIT_STOP_LOSS: ("StopLoss", "stop_loss"),
    records.EXIT_TAKE_PROFIT: ("TakeProfit", "take_profit"),
    records.EXIT_TRAILING: ("TrailingStop", "trailing_stop"),
    records.EXIT_MAX_BARS: ("MaxBars", "max_bars"),
    records.EXIT_SQUARE_OFF: ("SquareOff", "square_off"),
    records.EXIT_END_OF_DATA: ("EndOfData", "end_of_data"),
    records.EXIT_EXPIRY: ("Expiry", "expiry"),
    records.EXIT_POSITION_STOP: ("PositionStopLoss", "position_stop_loss"),
    records.EXIT_POSITION_TARGET: ("PositionTakeProfit", "position_take_profit"),
    records.EXIT_MTM_STOP: ("MtmStopLoss", "mtm_stop_loss"),
    records.EXIT_MTM_TARGET: ("MtmTakeProfit", "mtm_take_profit"),
    records.EXIT_DAILY_MAX_LOSS: ("DailyMaxLoss", "daily_max_loss"),
    records.EXIT_DAILY_MAX_PROFIT: ("DailyMaxProfit", "daily_max_profit"),
}


def money(x: float) -> str:
    """Decimal string with two places, as in the seed day files ('-0.00' is written '0.00')."""
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s


_FORMAT_MONEY = "{:.2f}".format


def money_list(values: np.ndarray) -> list[str]:
    """money() of every value of a float array, formatted in one pass."""
    values = np.asarray(values, np.float64)
    out = list(map(_FORMAT_MONEY, values.tolist()))
    for k in np.flatnonzero((values <= 0.0) & (values > -0.01)).tolist():  # the ones that may read "-0.00"
        if out[k] == "-0.00":
            out[k] = "0.00"
    return out


class TimeFormatter:
    """Exchange-local ISO 8601 strings with UTC offset for bar indexes.

    A string is put together from its date, its time of day and its offset, each formatted once
    and kept (a run has a few thousand dates, a few hundred bar times, one or two offsets):
    numpy's datetime_as_string costs ~3 us a call, which was a tenth of an option run's results.
    """

    def __init__(self, bars: Bars):
        naive_ns = bars.local_ns
        self._day = bars.day
        self._sod = (naive_ns - self._day * 86_400_000_000_000) // 1_000_000_000
        self._offset_min = (naive_ns // 1_000_000_000 - np.asarray(bars.ts, np.int64) // 1_000_000_000) // 60
        self._offsets: dict[int, str] = {}
        self._dates: dict[int, str] = {}
        self._times: dict[int, str] = {}
        self._compact_dates: dict[int, str] = {}
        self._compact_times: dict[int, str] = {}

    def _offset(self, minutes: int) -> str:
        s = self._offsets.get(minutes)
        if s is None:
            sign = "+" if minutes >= 0 else "-"
            h, m = divmod(abs(int(minutes)), 60)
            s = self._offsets[minutes] = f"{sign}{h:02d}:{m:02d}"
        return s

    def _date(self, day: int) -> str:
        s = self._dates.get(day)
        if s is None:
            s = self._dates[day] = str(np.datetime64(day, "D"))
        return s

    def _time(self, sod: int) -> str:
        s = self._times.get(sod)
        if s is None:
            h, rest = divmod(sod, 3600)
            s = self._times[sod] = f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return s

    def iso(self, i: int) -> str:
        return (self._date(int(self._day[i])) + "T" + self._time(int(self._sod[i]))
                + self._offset(int(self._offset_min[i])))

    def many(self, idx: np.ndarray) -> list[str]:
        """iso() of many bars at once: the parts are looked up column by column."""
        idx = np.asarray(idx, np.int64)
        if not len(idx):
            return []
        days, sods, offs = self._parts(idx)
        d, t, o = self._dates, self._times, self._offsets
        return [d[a] + "T" + t[b] + o[c] for a, b, c in zip(days, sods, offs)]

    def compact_many(self, idx: np.ndarray) -> list[str]:
        """compact() of many bars at once."""
        idx = np.asarray(idx, np.int64)
        if not len(idx):
            return []
        days, sods, _ = self._parts(idx)
        d, t = self._compact_dates, self._compact_times
        return [d[a] + "_" + t[b] for a, b in zip(days, sods)]

    def _parts(self, idx: np.ndarray) -> tuple[list[int], list[int], list[int]]:
        """Day, second-of-day and offset of bars `idx` as lists, every one's string cached."""
        days, sods, offs = self._day[idx].tolist(), self._sod[idx].tolist(), self._offset_min[idx].tolist()
        # set(), not np.unique: this is called for a handful of bars at a time too.
        for x in set(days).difference(self._compact_dates):
            self._compact_dates[x] = self._date(x).replace("-", "")
        for x in set(sods).difference(self._compact_times):
            self._compact_times[x] = self._time(x).replace(":", "")
        for x in set(offs).difference(self._offsets):
            self._offset(x)
        return days, sods, offs

    def compact(self, i: int) -> str:
        """'20241024_094428' for execution ids."""
        return self.compact_many(np.array([i]))[0]


def exit_reason_name(plan: StrategyPlan, t) -> str:
    code = int(t["exit_reason"])
    if code == records.EXIT_SIGNAL:
        return f"signal:{plan.exits[int(t['exit_node'])].id}"
    if code == records.EXIT_REVERSE:
        return f"signal:{plan.entries[int(t['exit_node'])].id}"
    return records.EXIT_REASON_NAMES[code]


class ResultBuilder:
    """Builds trade dicts, node events and day summaries for one run."""

    def __init__(self, plan: StrategyPlan, bars: Bars, signals: Signals, symbol: str):
        self.plan = plan
        self.bars = bars
        self.signals = signals
        self.symbol = symbol
        self.fmt = TimeFormatter(bars)

    # --- ids --------------------------------------------------------------------------
    def position_id(self, t) -> str:
        return f"{self.plan.entries[int(t['node'])].id}-pos{int(t['pos_seq'])}"

    def entry_exec_id(self, node: int, bar: int) -> str:
        return f"exec_{self.plan.entries[node].id}_{self.fmt.compact(bar)}"

    def exit_exec_id(self, t) -> str:
        code = int(t["exit_reason"])
        bar = int(t["exit_signal_bar"])
        if code == records.EXIT_SIGNAL:
            return f"exec_{self.plan.exits[int(t['exit_node'])].id}_{self.fmt.compact(bar)}"
        if code == records.EXIT_REVERSE:
            return self.entry_exec_id(int(t["exit_node"]), bar)
        return f"exec_{self.position_id(t)}_{NODE_TYPES[code][1]}_{self.fmt.compact(bar)}"

    # --- trades -----------------------------------------------------------------------
    def trade_dicts(self, trades: np.ndarray) -> list[dict]:
        """Seed-000 trade dicts for kernel trade records."""
        if len(trades) == 0:
            return []
        entry_times = self.fmt.many(trades["entry_bar"])
        exit_times = self.fmt.many(trades["exit_bar"])
        dur = (self.bars.ts[trades["exit_bar"]] - self.bars.ts[trades["entry_bar"]]) / 60e9
        # A fill at a bar's close happens at the bar's end, not its open time; only the
        # duration needs that correction, timestamps name the bar.
        out = []
        for k, t in enumerate(trades):
            notional = float(t["qty"] * t["entry_price"])
            pnl = float(t["pnl"])
            d = {
                "trade_id": self.trade_id(t),
                "position_id": self.position_id(t),
                "re_entry_num": int(t["re_entry_num"]),
                "symbol": self.trade_symbol(t),
                "side": "buy" if t["side"] == records.LONG else "sell",
                "quantity": float(t["qty"]),
                "entry_price": money(t["entry_price"]),
                "entry_time": entry_times[k],
                "exit_price": money(t["exit_price"]),
                "exit_time": exit_times[k],
                "pnl": money(pnl),
                "pnl_percent": money(100.0 * pnl / notional if notional else 0.0),
                "commission": money(t["entry_commission"] + t["exit_commission"]),
                "duration_minutes": round(float(dur[k]), 2),
                "bars_held": int(t["exit_bar"] - t["entry_bar"] + 1),
                "status": "closed",
                "entry_flow_ids": [self.entry_exec_id(int(t["node"]), int(t["entry_signal_bar"]))],
                "exit_flow_ids": [self.exit_exec_id(t)],
                "entry_trigger": self.plan.entries[int(t["node"])].id,
                "exit_reason": exit_reason_name(self.plan, t),
            }
            self.more_trade_fields(d, t)
            out.append(d)
        return out

    # Hooks for records of other instruments (options/results.py's option legs).
    def trade_id(self, t) -> str:
        return self.position_id(t)

    def trade_symbol(self, t) -> str:
        return self.symbol

    def more_trade_fields(self, d: dict, t) -> None:
        """Add instrument-specific fields to trade dict d of record t (none for the underlying)."""

    # --- node events ------------------------------------------------------------------
    def _stamp(self, i: int) -> str:
        return self.fmt.iso(i)

    def _candle(self, i: int) -> dict | None:
        if i < 0:
            return None
        b = self.bars
        return {"timestamp": self.fmt.iso(i), "open": float(b.open[i]), "high": float(b.high[i]),
                "low": float(b.low[i]), "close": float(b.close[i]), "volume": float(b.volume[i])}

    def _event(self, exec_id: str, bar: int, event_type: str, node_id: str, node_name: str, node_type: str,
               preview: str, conditions: list[dict], variables: dict, position_id: str, action: str,
               parent: str | None = None) -> dict:
        return {
            "execution_id": exec_id,
            "parent_execution_id": parent,
            "timestamp": self._stamp(bar),
            "event_type": event_type,
            "node_id": node_id,
            "node_name": node_name,
            "node_type": node_type,
            "signal_emitted": True,
            "conditions_preview": preview,
            "evaluated_conditions": conditions,
            "current_candle": self._candle(bar),
            "previous_candle": self._candle(bar - 1),
            "variables": variables,
            "position_id": position_id,
            "action": action,
        }

    def node_events(self, trades: np.ndarray, open_positions: list[tuple[int, np.void]] = ()) -> dict[str, dict]:
        """Node events (keyed by execution id) behind `trades` and behind still-open positions."""
        events: dict[str, dict] = {}
        for t in trades:
            self._entry_event(events, int(t["node"]), int(t["entry_signal_bar"]), self.position_id(t), t)
            self._exit_event(events, t)
        for node, pos in open_positions:
            pid = f"{self.plan.entries[node].id}-pos{int(pos['pos_seq'])}"
            self._entry_event(events, node, int(pos["entry_signal_bar"]), pid, pos)
        return events

    def _entry_event(self, events: dict, node: int, bar: int, pid: str, rec) -> str:
        exec_id = self.entry_exec_id(node, bar)
        ev = events.get(exec_id)
        e = self.plan.entries[node]
        if ev is None:
            variables = {"quantity": float(rec["qty"]), "entry_price": float(rec["entry_price"])}
            for name in ("sl_level", "tp_level"):
                if name in rec.dtype.names and not np.isnan(rec[name]):
                    variables[{"sl_level": "stop_loss", "tp_level": "take_profit"}[name]] = float(rec[name])
            ev = events[exec_id] = self._event(
                exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                explain(e.when, self.signals, bar), variables, pid, "open")
        elif ev["position_id"] != pid and ev["action"] == "close":
            ev["action"] = "reverse"
        return exec_id

    def _exit_event(self, events: dict, t) -> None:
        exec_id = self.exit_exec_id(t)
        code = int(t["exit_reason"])
        bar = int(t["exit_signal_bar"])
        pid = self.position_id(t)
        parent = self.entry_exec_id(int(t["node"]), int(t["entry_signal_bar"]))
        if exec_id in events:
            ev = events[exec_id]
            if code == records.EXIT_REVERSE:
                ev["action"] = "reverse"
                ev["variables"][f"closed:{pid}"] = float(t["exit_price"])
            return
        if code == records.EXIT_SIGNAL:
            x = self.plan.exits[int(t["exit_node"])]
            events[exec_id] = self._event(exec_id, bar, "EXIT", x.id, x.name, "ExitNode", x.when.preview(),
                                          explain(x.when, self.signals, bar),
                                          {"exit_price": float(t["exit_price"])}, pid, "close", parent)
            return
        if code == records.EXIT_REVERSE:
            # The reversing entry never filled (e.g. sized to zero): record it as an event anyway.
            node = int(t["exit_node"])
            e = self.plan.entries[node]
            events[exec_id] = self._event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                          explain(e.when, self.signals, bar),
                                          {f"closed:{pid}": float(t["exit_price"])}, pid, "reverse", parent)
            return
        node_type, _ = NODE_TYPES[code]
        conditions, preview = self._stop_conditions(t, code, bar)
        e = self.plan.entries[int(t["node"])]
        events[exec_id] = self._event(exec_id, bar, "EXIT", f"{e.id}:{NODE_TYPES[code][1]}",
                                      f"{e.name} {node_type}", node_type, preview, conditions,
                                      {"exit_price": float(t["exit_price"]),
                                       **({"stop_loss": float(t["sl_level"])} if not np.isnan(t["sl_level"]) else {}),
                                       **({"take_profit": float(t["tp_level"])} if not np.isnan(t["tp_level"]) else {}),
                                       **({"trailing_stop": float(t["trail_level"])} if not np.isnan(t["trail_level"]) else {})},
                                      pid, "close", parent)

    def _stop_conditions(self, t, code: int, bar: int) -> tuple[list[dict], str]:
        b = self.bars
        long = t["side"] == records.LONG
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
            row = {"lhs": "BarsHeld", "lhs_value": held, "operator": ">=", "rhs": "MaxBars", "rhs_value": n,
                   "result": True}
            return [row], f"BarsHeld >= {int(n)}"
        elif code == records.EXIT_SQUARE_OFF:
            sq = self.plan.session.square_off_minute or 0.0
            row = {"lhs": "Time", "lhs_value": float(b.minute_of_day[bar]), "operator": ">=",
                   "rhs": format_minutes(sq), "rhs_value": sq, "result": True}
            return [row], f"Time >= {format_minutes(sq)}"
        else:
            return [], "end of data"
        row = {"lhs": lhs, "lhs_value": val, "operator": op, "rhs": name, "rhs_value": level, "result": True}
        return [row], f"{lhs} {op} {name}"


def day_summary(trades: list[dict]) -> dict:
    """The seed's per-day summary over trade dicts."""
    pnls = [float(t["pnl"]) for t in trades]
    wins = sum(1 for p in pnls if p > 0)
    losses = sum(1 for p in pnls if p < 0)
    return {
        "total_trades": len(trades),
        "total_pnl": money(sum(pnls)),
        "winning_trades": wins,
        "losing_trades": losses,
        "win_rate": money(100.0 * wins / len(trades) if trades else 0.0),
        "commission": money(sum(float(t["commission"]) for t in trades)),
    }


def day_summary_from(pnl: list[str], commission: list[str]) -> dict:
    """day_summary() from the trades' pnl and commission strings (the same sums, in order)."""
    pnls = [float(p) for p in pnl]
    n = len(pnls)
    wins = sum(1 for p in pnls if p > 0)
    return {
        "total_trades": n,
        "total_pnl": money(sum(pnls)),
        "winning_trades": wins,
        "losing_trades": sum(1 for p in pnls if p < 0),
        "win_rate": money(100.0 * wins / n if n else 0.0),
        "commission": money(sum(float(c) for c in commission)),
    }


def summary_from_records(trades: np.ndarray) -> dict:
    """The same summary computed on kernel records (no dicts), for totals over a run."""
    pnl = trades["pnl"] if len(trades) else np.empty(0)
    n = len(pnl)
    wins = int((pnl > 0).sum())
    return {
        "total_trades": n,
        "total_pnl": money(float(pnl.sum()) if n else 0.0),
        "winning_trades": wins,
        "losing_trades": int((pnl < 0).sum()),
        "win_rate": money(100.0 * wins / n if n else 0.0),
        "commission": money(float((trades["entry_commission"] + trades["exit_commission"]).sum()) if n else 0.0),
    }


def gather_diagnostics(plan: StrategyPlan, signals: Signals, trades: np.ndarray) -> dict[str, dict[str, tuple]]:
    """Columnar diagnostics of every trade, without building dicts.

    For each node: {comparison path: (lhs values, rhs values, results)} at the bars where the
    node fired for a trade (entries at their signal bars, exit nodes at theirs). The dict
    form (`ResultBuilder.node_events`) is made from the same arrays, a day at a time.
    """

    def gather(cond, idx: np.ndarray) -> dict[str, tuple]:
        out = {}
        for cmp in cond.comparisons():
            lhs, rhs = signals.lhs[cmp.path], signals.rhs[cmp.path]
            out[cmp.path] = (lhs[idx] if np.ndim(lhs) else np.full(len(idx), lhs),
                             rhs[idx] if np.ndim(rhs) else np.full(len(idx), rhs), signals.results[cmp.path][idx])
        return out

    table: dict[str, dict[str, tuple]] = {}
    for k, e in enumerate(plan.entries):
        table[e.id] = gather(e.when, trades["entry_signal_bar"][trades["node"] == k])
    by_signal = trades["exit_reason"] == records.EXIT_SIGNAL
    for x, ex in enumerate(plan.exits):
        table[ex.id] = gather(ex.when, trades["exit_signal_bar"][by_signal & (trades["exit_node"] == x)])
    return table
