"""Option legs as results: trade dicts with the seeds' option fields, positions, node events with
how each strike was chosen, open legs and ticks, and the day files' spot field names.

The legs kernel's `legtrade_dt` records become seed-001 trades (symbol
`NIFTY:2024-10-31:OPT:24350:PE`, strike, option_type, lots, spot at entry/exit, IV and delta);
the stream carries the proto's generic names (`underlying_at_entry`), the day files the
seeds' (`nifty_spot_at_entry`).
"""

from __future__ import annotations

import math

import numpy as np

from services.engine.core import records
from services.engine.core.results import NODE_TYPES, ResultBuilder, exit_reason_name, money

from .quotes import synth_price_nb
from .pricing import RISK_FREE_RATE, SESSION_MINUTES, YEAR_MINUTES, bs_greeks_nb

_LEG_STOPS = (records.EXIT_STOP_LOSS, records.EXIT_TAKE_PROFIT)


def _num(x: float, places: int = 4) -> float | None:
    """Rounded, or None for NaN (left out of the dicts: JSON has no NaN)."""
    x = float(x)
    return None if math.isnan(x) else round(x, places)


class LegResultBuilder(ResultBuilder):
    """ResultBuilder for runs whose entries open option legs (records: layouts.legtrade_dt)."""

    def __init__(self, plan, bars, signals, symbol: str, runner):
        super().__init__(plan, bars, signals, symbol)
        self.runner = runner
        self._open_positions: dict[str, dict] = {}  # position id -> legs closed so far

    def _leg(self, li: int):
        return self.runner.leg_plans[int(li)]

    def trade_id(self, t) -> str:
        return f"{self.position_id(t)}-{self._leg(t['leg']).id}"

    def exit_exec_id(self, t) -> str:
        code = int(t["exit_reason"])
        if code in _LEG_STOPS:  # one leg's own stop: its own event
            return f"exec_{self.trade_id(t)}_{NODE_TYPES[code][1]}_{self.fmt.compact(int(t['exit_signal_bar']))}"
        return super().exit_exec_id(t)

    # --- trades -----------------------------------------------------------------------------
    def trade_symbol(self, t) -> str:
        return self.runner.symbol(int(t["k"]), float(t["strike"]), int(t["cp"]))

    def more_trade_fields(self, d: dict, t) -> None:
        leg = self._leg(t["leg"])
        d.update({
            "leg_id": leg.id,
            "strike": float(t["strike"]),
            "option_type": leg.option_type,
            "expiry": self.runner.expiry_date(int(t["k"])).isoformat(),
            "lots": int(t["lots"]),
            "lot_size": float(t["lot_size"]),
            "underlying_at_entry": float(t["spot_entry"]),
            "underlying_at_exit": float(t["spot_exit"]),
        })
        for name, field in (("iv_at_entry", "iv_entry"), ("iv_at_exit", "iv_exit"),
                            ("delta_at_entry", "delta_entry"), ("delta_at_exit", "delta_exit")):
            v = _num(t[field])
            if v is not None:
                d[name] = v

    def positions(self, trades: np.ndarray) -> list[dict]:
        """PositionSummary dicts of the positions whose last leg closed in `trades` (legs that
        closed on earlier days are remembered between calls, in run order)."""
        out = []
        for t in trades:
            pid = self.position_id(t)
            acc = self._open_positions.setdefault(pid, {
                "position_id": pid, "entry_trigger": self.plan.entries[int(t["node"])].id,
                "trade_ids": [], "entry_time": self.fmt.iso(int(t["entry_bar"])),
                "commission": 0.0, "entry_premium": 0.0})
            acc["trade_ids"].append(self.trade_id(t))
            acc["commission"] += float(t["entry_commission"] + t["exit_commission"])
            acc["entry_premium"] += float(t["side"] * t["qty"] * t["entry_price"])
            if t["pos_last"]:
                del self._open_positions[pid]
                out.append({**acc, "exit_time": self.fmt.iso(int(t["exit_bar"])), "pnl": money(t["pos_pnl"]),
                            "commission": money(acc["commission"]), "entry_premium": money(acc["entry_premium"]),
                            "exit_reason": exit_reason_name(self.plan, t)})
        return out

    # --- node events ----------------------------------------------------------------------------
    def node_events(self, trades: np.ndarray, open_legs=()) -> dict[str, dict]:
        events: dict[str, dict] = {}
        for t in trades:
            self._leg_entry_event(events, int(t["node"]), int(t["entry_signal_bar"]), self.position_id(t),
                                  int(t["leg"]), t)
            self._exit_event(events, t)
        for node, li, p, ls in open_legs:
            pid = f"{self.plan.entries[node].id}-pos{int(p['pos_seq'])}"
            self._leg_entry_event(events, node, int(p["entry_signal_bar"]), pid, li, ls)
        return events

    def _selection(self, li: int, rec, bar: int) -> dict:
        leg = self._leg(li)
        k = int(rec["k"])
        strike = float(rec["strike"])
        sel = {"leg_id": leg.id, "selector": leg.describe(), "spot": float(rec["sel_spot"]),
               "atm": float(rec["sel_atm"]), "candidates": int(rec["sel_candidates"]),
               "symbol": self.runner.symbol(k, strike, leg.cp), "strike": strike,
               "expiry": self.runner.expiry_date(k).isoformat(), "premium": float(rec["sel_premium"])}
        for name in ("iv", "delta"):
            v = _num(rec[f"sel_{name}"])
            if v is not None:
                sel[name] = v
        if "iv" in sel:
            r = self.runner
            t = ((r.exp_sess[k] - r.sess[bar]) * SESSION_MINUTES + r.tleft[bar]) / YEAR_MINUTES
            _, gamma, theta, vega = bs_greeks_nb(leg.cp, float(rec["sel_spot"]), strike, t, sel["iv"] / 100.0,
                                                 RISK_FREE_RATE)
            for name, v in (("gamma", gamma), ("theta", theta), ("vega", vega)):
                v = _num(v, 6)
                if v is not None:
                    sel[name] = v
        return sel

    def _leg_entry_event(self, events: dict, node: int, bar: int, pid: str, li: int, rec) -> None:
        exec_id = self.entry_exec_id(node, bar)
        ev = events.get(exec_id)
        if ev is None:
            from services.engine.core.signals import explain

            e = self.plan.entries[node]
            ev = events[exec_id] = self._event(exec_id, bar, "ENTRY", e.id, e.name, "EntryNode", e.when.preview(),
                                               explain(e.when, self.signals, bar), {"legs": float(len(e.legs))},
                                               pid, "open")
            ev["strike_selections"] = []
        leg_id = self._leg(li).id
        if all(s["leg_id"] != leg_id for s in ev["strike_selections"]):
            ev["strike_selections"].append(self._selection(li, rec, bar))
            ev["strike_selections"].sort(key=lambda s: [lg.id for lg in self.plan.entries[node].legs].index(s["leg_id"]))
            ev["variables"][f"{leg_id}.strike"] = float(rec["strike"])

    def _exit_event(self, events: dict, t) -> None:
        code = int(t["exit_reason"])
        if code in (records.EXIT_SIGNAL, records.EXIT_REVERSE):
            super()._exit_event(events, t)
            value = _num(t["signal_value"], 2)
            if value is not None:  # the kernel's value of the exit's first state comparison
                for row in events[self.exit_exec_id(t)]["evaluated_conditions"]:
                    if row["lhs"].startswith(("MTM(", "Premium(")):
                        row["lhs_value"] = value
                        break
            return
        exec_id = self.exit_exec_id(t)
        if exec_id in events:
            events[exec_id]["variables"][f"{self._leg(t['leg']).id}.exit_price"] = float(t["exit_price"])
            return
        bar = int(t["exit_signal_bar"])
        pid = self.position_id(t)
        parent = self.entry_exec_id(int(t["node"]), int(t["entry_signal_bar"]))
        node_type, key = NODE_TYPES[code]
        e = self.plan.entries[int(t["node"])]
        leg = self._leg(t["leg"])
        conditions, preview = self._leg_conditions(t, code, bar)
        name = f"{e.name} {leg.id} {node_type}" if code in _LEG_STOPS else f"{e.name} {node_type}"
        variables = {f"{leg.id}.exit_price": float(t["exit_price"])}
        for lvl, label in (("sl_level", "stop_loss"), ("tp_level", "take_profit")):
            if code in _LEG_STOPS and not np.isnan(t[lvl]):
                variables[f"{leg.id}.{label}"] = float(t[lvl])
        events[exec_id] = self._event(exec_id, bar, "EXIT", f"{e.id}:{key}", name, node_type, preview, conditions,
                                      variables, pid, "close", parent)

    def _leg_conditions(self, t, code: int, bar: int) -> tuple[list[dict], str]:
        leg = self._leg(t["leg"])
        premium = float(t["exit_price"])
        if code in _LEG_STOPS:
            stop = code == records.EXIT_STOP_LOSS
            level = float(t["sl_level"] if stop else t["tp_level"])
            rising = stop == (t["side"] == records.SHORT)
            op = ">=" if rising else "<="
            name = "StopLoss" if stop else "TakeProfit"
            lhs = f"{leg.id} premium"
            return ([{"lhs": lhs, "lhs_value": premium, "operator": op, "rhs": name, "rhs_value": level,
                      "result": True}], f"{lhs} {op} {name}")
        if code == records.EXIT_EXPIRY:
            return [], f"expiry {self.runner.expiry_date(int(t['k'])).isoformat()}: settled at intrinsic value"
        if code in (records.EXIT_POSITION_STOP, records.EXIT_POSITION_TARGET, records.EXIT_MTM_STOP,
                    records.EXIT_MTM_TARGET):
            r = self.plan.entries[int(t["node"])].position
            limit = {records.EXIT_POSITION_STOP: -r.stop_loss_pct, records.EXIT_POSITION_TARGET: r.take_profit_pct,
                     records.EXIT_MTM_STOP: -r.mtm_stop_loss, records.EXIT_MTM_TARGET: r.mtm_take_profit}[code]
            what = "PositionPremiumChangePct" if code in (records.EXIT_POSITION_STOP,
                                                           records.EXIT_POSITION_TARGET) else "PositionMTM"
            op = "<=" if limit < 0 else ">="
            return ([{"lhs": what, "lhs_value": float("nan"), "operator": op, "rhs": "Limit", "rhs_value": limit,
                      "result": True}], f"{what} {op} {limit:g}")
        if code in (records.EXIT_DAILY_MAX_LOSS, records.EXIT_DAILY_MAX_PROFIT):
            dl = self.plan.daily_limits
            limit = -dl.max_loss if code == records.EXIT_DAILY_MAX_LOSS else dl.max_profit
            op = "<=" if limit < 0 else ">="
            return ([{"lhs": "DayPnL", "lhs_value": float("nan"), "operator": op, "rhs": "Limit", "rhs_value": limit,
                      "result": True}], f"DayPnL {op} {limit:g}")
        return self._stop_conditions(t, code, bar)

    # --- open legs and ticks ------------------------------------------------------------------------
    def _leg_mark(self, li: int, ls, bar: int) -> float:
        """A held leg's premium at a bar's close (the chain's close, or the last one before)."""
        r = self.runner
        leg = self._leg(li)
        if r.chain is not None:
            px = r.chain.price_at(int(ls["k"]), float(ls["strike"]), leg.option_type, bar, "close")
            return float(ls["mark"]) if px is None else float(px)
        t = ((r.exp_sess[int(ls["k"])] - r.sess[bar]) * SESSION_MINUTES + r.tleft[bar]) / YEAR_MINUTES
        return float(synth_price_nb(leg.cp, float(self.bars.close[bar]), float(ls["strike"]), t, float(r.vol[bar]),
                                    RISK_FREE_RATE))

    def open_leg_dict(self, node: int, li: int, p, ls, bar: int, price: float | None = None) -> dict:
        leg = self._leg(li)
        price = float(ls["mark"]) if price is None else price
        qty = float(ls["qty"])
        side = records.LONG if leg.side == records.LONG else records.SHORT
        return {
            "position_id": f"{self.plan.entries[node].id}-pos{int(p['pos_seq'])}",
            "symbol": self.runner.symbol(int(ls["k"]), float(ls["strike"]), leg.cp),
            "side": "buy" if side == records.LONG else "sell",
            "quantity": qty,
            "entry_price": money(ls["entry_price"]),
            "current_price": money(price),
            "unrealized_pnl": money(side * qty * (price - float(ls["entry_price"]))),
            "entry_time": self.fmt.iso(int(p["entry_bar"])),
            "leg_id": leg.id,
            "strike": float(ls["strike"]),
            "option_type": leg.option_type,
            "expiry": self.runner.expiry_date(int(ls["k"])).isoformat(),
            "underlying_price": float(self.bars.close[bar]),
        }

    def ticks(self, s: int, e: int, recs: np.ndarray, open_legs, equity: np.ndarray, initial_capital: float,
              interval: int) -> list[dict]:
        """Every interval-th bar of the day: each leg held then, marked to that bar's close."""
        held = []
        for t in recs:
            ls = {"k": t["k"], "strike": t["strike"], "qty": t["qty"], "entry_price": t["entry_price"],
                  "mark": t["exit_price"]}
            p = {"pos_seq": t["pos_seq"], "entry_bar": t["entry_bar"]}
            held.append((int(t["node"]), int(t["leg"]), p, ls, int(t["entry_bar"]), int(t["exit_bar"])))
        for node, li, p, ls in open_legs:
            held.append((node, li, p, ls, int(p["entry_bar"]), e))
        out = []
        for tick, i in enumerate(range(s, e), start=1):
            if (tick - 1) % interval:
                continue
            positions, unreal = [], 0.0
            for node, li, p, ls, eb, xb in held:
                if eb <= i < xb:
                    d = self.open_leg_dict(node, li, p, ls, i, self._leg_mark(li, ls, i))
                    unreal += float(d["unrealized_pnl"])
                    positions.append(d)
            eq = float(equity[i])
            realized = eq - unreal - initial_capital
            out.append({"bar": i, "tick": tick, "timestamp": self.fmt.iso(i), "ltp": float(self.bars.close[i]),
                        "open_positions": positions,
                        "pnl_summary": {"realized_pnl": money(realized), "unrealized_pnl": money(unreal),
                                        "total_pnl": money(realized + unreal), "open_trades": len(positions),
                                        "equity": money(eq)}})
        return out
