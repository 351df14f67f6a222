"""The underlying's results, column by column: a block of trade records is formatted once
(every time string, price, id and exit reason as one list per field), and each day's trade
dicts and node events are then put together from slices of those lists.

ResultBuilder (results.py) builds the same documents one record at a time, with hooks for
other instruments (option legs); this subclass is what underlying runs use. The output is
byte-identical: tests/engine/core/test_output_reference.py compares both with a frozen copy
of the record-at-a-time path on several strategies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import records
from .results import NODE_TYPES, ResultBuilder, money_list

_SIDE = {records.LONG: "buy", records.SHORT: "sell"}


@dataclass
class TradeColumns:
    """One block's trades, formatted: lists (or arrays) aligned with the records."""

    recs: np.ndarray
    node: list[int]
    pid: list[str]
    entry_exec: list[str]
    exit_exec: list[str]
    entry_signal_bar: list[int]
    exit_signal_bar: list[int]
    exit_reason: list[int]
    exit_node: list[int]
    exit_price: list[float]
    qty: list[float]
    entry_price: list[float]
    pnl_money: list[str]
    commission_money: list[str]
    trades: list[dict]

    def __len__(self) -> int:
        return len(self.pid)


class _Comparison:
    """One comparison of a condition, with its series, ready to explain any bar."""

    __slots__ = ("lhs_label", "op", "rhs_label", "lhs", "rhs", "results", "crosses")

    def __init__(self, cmp, signals):
        self.lhs_label, self.op, self.rhs_label = cmp.lhs.label, cmp.op, cmp.rhs.label
        self.lhs, self.rhs = signals.lhs[cmp.path], signals.rhs[cmp.path]
        self.results = signals.results[cmp.path]
        self.crosses = cmp.op in ("crosses_above", "crosses_below")


def _value(v, i: int) -> float | None:
    """signals._value_at: the value at bar i, None where undefined (NaN or out of range)."""
    if type(v) is np.ndarray and v.ndim:
        if not 0 <= i < len(v):
            return None
        x = float(v.item(i))
    else:
        x = float(v)
    return None if x != x else x


class ColumnarResults(ResultBuilder):
    """ResultBuilder for underlying runs: `columns(recs)` formats a block of records at once;
    `day_trades` / `day_events` slice it."""

    def __init__(self, plan, bars, signals, symbol: str):
        super().__init__(plan, bars, signals, symbol)
        self._entry_ids = [e.id for e in plan.entries]
        self._pos_prefix = [f"{e.id}-pos" for e in plan.entries]
        self._entry_exec_prefix = [f"exec_{e.id}_" for e in plan.entries]
        self._exit_exec_prefix = [f"exec_{x.id}_" for x in plan.exits]
        self._entry_reason = [f"signal:{e.id}" for e in plan.entries]
        self._exit_reason = [f"signal:{x.id}" for x in plan.exits]
        self._explain: dict[tuple[str, int], list[_Comparison]] = {}
        self._stamps: dict[int, str] = {}
        self._candles: dict[int, dict] = {}
        self._rows: dict[tuple[str, int, int], list[dict]] = {}
        self._ohlcv = tuple(np.asarray(a, np.float64) for a in (bars.open, bars.high, bars.low, bars.close,
                                                                 bars.volume))

    # --- trades ---------------------------------------------------------------------------
    def trade_dicts(self, trades: np.ndarray) -> list[dict]:
        return self.columns(trades, events=False).trades

    def columns(self, recs: np.ndarray, events: bool = True) -> TradeColumns:
        """Format every field of `recs` (trade_dt, in close order) one column at a time;
        with `events`, also what day_events() will need for them."""
        fmt = self.fmt
        node = recs["node"].tolist()
        pos_seq = recs["pos_seq"].tolist()
        pp = self._pos_prefix
        pid = [pp[n] + str(s) for n, s in zip(node, pos_seq)]
        entry_signal_bar = recs["entry_signal_bar"].tolist()
        exit_signal_bar = recs["exit_signal_bar"].tolist()
        ep = self._entry_exec_prefix
        entry_exec = [ep[n] + c for n, c in zip(node, fmt.compact_many(recs["entry_signal_bar"]))]
        code = recs["exit_reason"].tolist()
        exit_node = recs["exit_node"].tolist()
        xp = self._exit_exec_prefix
        exit_exec = []
        reasons = []
        for c, x, p, stamp in zip(code, exit_node, pid, fmt.compact_many(recs["exit_signal_bar"])):
            if c == records.EXIT_SIGNAL:
                exit_exec.append(xp[x] + stamp)
                reasons.append(self._exit_reason[x])
            elif c == records.EXIT_REVERSE:
                exit_exec.append(ep[x] + stamp)
                reasons.append(self._entry_reason[x])
            else:
                exit_exec.append(f"exec_{p}_{NODE_TYPES[c][1]}_{stamp}")
                reasons.append(records.EXIT_REASON_NAMES[c])
        qty_a, entry_a, pnl_a = recs["qty"], recs["entry_price"], recs["pnl"]
        notional = qty_a * entry_a
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(notional != 0.0, 100.0 * pnl_a / np.where(notional != 0.0, notional, 1.0), 0.0)
        commission = recs["entry_commission"] + recs["exit_commission"]
        ts = self.bars.ts
        dur = (ts[recs["exit_bar"]] - ts[recs["entry_bar"]]) / 60e9
        entry_bar, exit_bar = recs["entry_bar"], recs["exit_bar"]
        pnl_money, commission_money = money_list(pnl_a), money_list(commission)
        qty, entry_price, exit_price = qty_a.tolist(), entry_a.tolist(), recs["exit_price"].tolist()
        ids = self._entry_ids
        symbol = self.symbol
        trades = [
            {"trade_id": p, "position_id": p, "re_entry_num": re, "symbol": symbol, "side": _SIDE[sd],
             "quantity": q, "entry_price": enp, "entry_time": ent, "exit_price": exp, "exit_time": ext,
             "pnl": pn, "pnl_percent": pc, "commission": cm, "duration_minutes": round(du, 2), "bars_held": bh,
             "status": "closed", "entry_flow_ids": [ee], "exit_flow_ids": [xe], "entry_trigger": ids[n],
             "exit_reason": rs}
            for p, re, sd, q, enp, ent, exp, ext, pn, pc, cm, du, bh, ee, xe, n, rs in zip(
                pid, recs["re_entry_num"].tolist(), recs["side"].tolist(), qty, money_list(entry_a),
                fmt.many(entry_bar), money_list(recs["exit_price"]), fmt.many(exit_bar), pnl_money,
                money_list(pct), commission_money, dur.tolist(), (exit_bar - entry_bar + 1).tolist(),
                entry_exec, exit_exec, node, reasons)]
        if events:
            self._prepare_events(recs)
        return TradeColumns(recs, node, pid, entry_exec, exit_exec, entry_signal_bar, exit_signal_bar, code,
                            exit_node, exit_price, qty, entry_price, pnl_money, commission_money, trades)

    def _prepare_events(self, recs: np.ndarray) -> None:
        """The candles and condition rows the block's node events will show, built column by
        column and kept until the next block (they are never modified once built)."""
        sig_bars = np.concatenate([recs["entry_signal_bar"], recs["exit_signal_bar"]])
        bars = np.unique(np.concatenate([sig_bars, sig_bars - 1]))
        bars = bars[bars >= 0]
        stamps = self.fmt.many(bars)
        self._stamps = dict(zip(bars.tolist(), stamps))
        o, h, lo, c, v = (a[bars].tolist() for a in self._ohlcv)
        self._candles = {b: {"timestamp": st, "open": x1, "high": x2, "low": x3, "close": x4, "volume": x5}
                         for b, st, x1, x2, x3, x4, x5 in zip(bars.tolist(), stamps, o, h, lo, c, v)}
        rows: dict[tuple[str, int, int], list[dict]] = {}
        by_signal = recs["exit_reason"] == records.EXIT_SIGNAL
        by_reverse = recs["exit_reason"] == records.EXIT_REVERSE
        wanted = [("entry", k, e.when, recs["entry_signal_bar"][recs["node"] == k]) for k, e in enumerate(self.plan.entries)]
        wanted += [("entry", k, e.when, recs["exit_signal_bar"][by_reverse & (recs["exit_node"] == k)])
                   for k, e in enumerate(self.plan.entries)]
        wanted += [("exit", k, x.when, recs["exit_signal_bar"][by_signal & (recs["exit_node"] == k)])
                   for k, x in enumerate(self.plan.exits)]
        for kind, node, cond, at in wanted:
            if not len(at):
                continue
            at = np.unique(at)
            columns = [self._condition_columns(c, at) for c in self._comparisons(kind, node, cond)]
            for n, b in enumerate(at.tolist()):
                rows[(kind, node, b)] = [
                    {"lhs": c.lhs_label, "lhs_value": lv[n], "operator": c.op, "rhs": c.rhs_label,
                     "rhs_value": rv[n], "result": res[n]} if prev is None else
                    {"lhs": c.lhs_label, "lhs_value": lv[n], "operator": c.op, "rhs": c.rhs_label,
                     "rhs_value": rv[n], "result": res[n], "lhs_prev_value": prev[0][n],
                     "rhs_prev_value": prev[1][n]}
                    for c, lv, rv, res, prev in columns]
        self._rows = rows

    def _condition_columns(self, c: _Comparison, at: np.ndarray):
        def values(v, idx):
            if type(v) is np.ndarray and v.ndim:
                ok = (idx >= 0) & (idx < len(v))
                x = np.where(ok, np.asarray(v, np.float64)[np.where(ok, idx, 0)], np.nan)
            else:
                x = np.full(len(idx), float(v))
            return [None if y != y else y for y in x.tolist()]

        prev = (values(c.lhs, at - 1), values(c.rhs, at - 1)) if c.crosses else None
        return c, values(c.lhs, at), values(c.rhs, at), np.asarray(c.results[at], np.bool_).tolist(), prev

    def _comparisons(self, kind: str, node: int, cond) -> list[_Comparison]:
        key = (kind, node)
        cmps = self._explain.get(key)
        if cmps is None:
            cmps = self._explain[key] = [_Comparison(c, self.signals) for c in cond.comparisons()]
        return cmps

    # --- node events ------------------------------------------------------------------------
    def day_events(self, cols: TradeColumns, i: int, j: int,
                   open_positions: list[tuple[int, np.void]] = ()) -> dict[str, dict]:
        """node_events() of the trades cols[i:j] and the positions still open."""
        events: dict[str, dict] = {}
        recs = cols.recs
        entries = self.plan.entries
        for k in range(i, j):
            pid = cols.pid[k]
            node = cols.node[k]
            exec_id = cols.entry_exec[k]
            ev = events.get(exec_id)
            if ev is None:
                t = recs[k]
                events[exec_id] = self._entry_node_event(exec_id, node, cols.entry_signal_bar[k], pid, cols.qty[k],
                                                         cols.entry_price[k], t["sl_level"], t["tp_level"])
            elif ev["position_id"] != pid and ev["action"] == "close":
                ev["action"] = "reverse"
            self._exit_event_at(events, cols, k, pid, node)
        for node, pos in open_positions:
            pid = f"{entries[node].id}-pos{int(pos['pos_seq'])}"
            bar = int(pos["entry_signal_bar"])
            exec_id = self._entry_exec_prefix[node] + self.fmt.compact(bar)
            ev = events.get(exec_id)
            if ev is None:
                events[exec_id] = self._entry_node_event(exec_id, node, bar, pid, float(pos["qty"]),
                                                         float(pos["entry_price"]), pos["sl_level"], pos["tp_level"])
            elif ev["position_id"] != pid and ev["action"] == "close":
                ev["action"] = "reverse"
        return events

    def _entry_node_event(self, exec_id: str, node: int, bar: int, pid: str, qty: float, price: float,
                          sl, tp) -> dict:
        e = self.plan.entries[node]
        variables = {"quantity": qty, "entry_price": price}
        if sl == sl:
            variables["stop_loss"] = float(sl)
        if tp == tp:
            variables["take_profit"] = float(tp)
        return self._event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                self._conditions("entry", node, e.when, bar), variables, pid, "open", None)

    def _exit_event_at(self, events: dict, cols: TradeColumns, k: int, pid: str, node: int) -> None:
        exec_id = cols.exit_exec[k]
        code = cols.exit_reason[k]
        ev = events.get(exec_id)
        if ev is not None:
            if code == records.EXIT_REVERSE:
                ev["action"] = "reverse"
                ev["variables"][f"closed:{pid}"] = cols.exit_price[k]
            return
        bar = cols.exit_signal_bar[k]
        parent = cols.entry_exec[k]
        if code == records.EXIT_SIGNAL:
            x = self.plan.exits[cols.exit_node[k]]
            events[exec_id] = self._event(exec_id, bar, "EXIT", x.id, x.name, "ExitNode", x.when.preview(),
                                               self._conditions("exit", cols.exit_node[k], x.when, bar),
                                               {"exit_price": cols.exit_price[k]}, pid, "close", parent)
            return
        if code == records.EXIT_REVERSE:
            # The reversing entry never filled (e.g. sized to zero): record it as an event anyway.
            x_node = cols.exit_node[k]
            e = self.plan.entries[x_node]
            events[exec_id] = self._event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                               self._conditions("entry", x_node, e.when, bar),
                                               {f"closed:{pid}": cols.exit_price[k]}, pid, "reverse", parent)
            return
        t = cols.recs[k]
        node_type, suffix = NODE_TYPES[code]
        conditions, preview = self._stop_conditions(t, code, bar)
        e = self.plan.entries[node]
        variables = {"exit_price": cols.exit_price[k]}
        for field, name in (("sl_level", "stop_loss"), ("tp_level", "take_profit"), ("trail_level", "trailing_stop")):
            v = t[field]
            if v == v:
                variables[name] = float(v)
        events[exec_id] = self._event(exec_id, bar, "EXIT", f"{e.id}:{suffix}", f"{e.name} {node_type}",
                                           node_type, preview, conditions, variables, pid, "close", parent)

    # The record-at-a-time builder's event, with its time strings and candles from the block's.
    def _stamp(self, i: int) -> str:
        return self._stamps.get(i) or self.fmt.iso(i)

    def _candle(self, i: int) -> dict | None:
        if i < 0:
            return None
        candle = self._candles.get(i)
        if candle is None:
            o, h, lo, c, v = self._ohlcv
            candle = {"timestamp": self._stamp(i), "open": o.item(i), "high": h.item(i), "low": lo.item(i),
                      "close": c.item(i), "volume": v.item(i)}
        return candle

    def _conditions(self, kind: str, node: int, cond, bar: int) -> list[dict]:
        """signals.explain(cond, signals, bar), from comparisons prepared once per node."""
        rows = self._rows.get((kind, node, bar))
        if rows is not None:
            return rows
        out = []
        for c in self._comparisons(kind, node, cond):
            row = {"lhs": c.lhs_label, "lhs_value": _value(c.lhs, bar), "operator": c.op,
                   "rhs": c.rhs_label, "rhs_value": _value(c.rhs, bar), "result": bool(c.results[bar])}
            if c.crosses:
                row["lhs_prev_value"] = _value(c.lhs, bar - 1)
                row["rhs_prev_value"] = _value(c.rhs, bar - 1)
            out.append(row)
        return out
