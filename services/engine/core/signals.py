"""Vectorized evaluation of a StrategyPlan over Bars: indicator series, operands, conditions.

Everything here works on whole arrays: one numpy expression per comparison, `&`/`|`/`~` for
all/any/not. A comparison involving NaN (warm-up, missing history) is false. The per-bar
diagnostics (`explain`) read back the arrays computed here, so they show exactly the values
the signals were computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bars import Bars
from .registry import INDICATORS
from .spec import STATE_OPERANDS, ConditionPlan, OperandPlan, StrategyPlan


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    if k == 0:
        return a
    out = np.empty_like(a, dtype=np.float64)
    out[:k] = np.nan
    out[k:] = a[:-k]
    return out


def _previous_session(bars: Bars) -> dict[str, np.ndarray]:
    """Per bar: the previous trading day's high, low and close (NaN on the first day)."""
    _, starts = bars.day_bounds()
    n_days = len(starts) - 1
    if n_days == 0:
        empty = np.empty(0, np.float64)
        return {"prev_high": empty, "prev_low": empty, "prev_close": empty}
    lo = starts[:-1]
    day_high = np.maximum.reduceat(bars.high, lo)
    day_low = np.minimum.reduceat(bars.low, lo)
    day_close = bars.close[starts[1:] - 1]
    counts = np.diff(starts)
    out = {}
    for name, per_day in (("prev_high", day_high), ("prev_low", day_low), ("prev_close", day_close)):
        prev = np.concatenate(([np.nan], per_day[:-1]))
        out[name] = np.repeat(prev, counts)
    return out


@dataclass
class SeriesBook:
    """All series a plan reads, computed once per run. Keys: field names and 'id.output'."""

    bars: Bars
    series: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, plan: StrategyPlan, bars: Bars) -> "SeriesBook":
        book = cls(bars)
        for ind in plan.indicators:
            spec = INDICATORS[ind.kind]
            source = book.field_or_series(ind.source) if spec.uses_source else None
            outputs = spec.compute(ind.params, source, bars)
            for name, arr in outputs.items():
                book.series[f"{ind.id}.{name}"] = np.ascontiguousarray(arr, dtype=np.float64)
        return book

    def field_or_series(self, name: str) -> np.ndarray:
        if name in self.series:
            return self.series[name]
        b = self.bars
        if name in ("open", "high", "low", "close", "volume"):
            arr = getattr(b, name)
        elif name == "hl2":
            arr = (b.high + b.low) / 2.0
        elif name == "hlc3":
            arr = (b.high + b.low + b.close) / 3.0
        elif name == "time":
            arr = b.minute_of_day
        elif name == "day_of_week":
            arr = b.weekday
        elif name in ("prev_high", "prev_low", "prev_close"):
            self.series.update(_previous_session(b))
            return self.series[name]
        else:
            raise KeyError(name)
        self.series[name] = arr
        return arr

    def operand(self, op: OperandPlan) -> np.ndarray | float:
        if op.kind in ("value", "time"):
            return op.value
        return _shift(self.field_or_series(op.ref), op.offset)


def _compare(op: str, lhs, rhs) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == "<":
            return np.less(lhs, rhs)
        if op == "<=":
            return np.less_equal(lhs, rhs)
        if op == ">":
            return np.greater(lhs, rhs)
        if op == ">=":
            return np.greater_equal(lhs, rhs)
        if op == "==":
            return np.equal(lhs, rhs)
        if op == "!=":
            # NaN != x is true in IEEE; a comparison on undefined values must be false here.
            res = np.not_equal(lhs, rhs)
            return res & ~(np.isnan(lhs) | np.isnan(rhs))
        # crosses: strictly below (above) on the previous bar, strictly above (below) now —
        # the definition backtesting.py's crossover() and vectorbt use.
        lp = _shift(np.asarray(lhs, np.float64), 1) if np.ndim(lhs) else lhs
        rp = _shift(np.asarray(rhs, np.float64), 1) if np.ndim(rhs) else rhs
        if op == "crosses_above":
            return np.less(lp, rp) & np.greater(lhs, rhs)
        return np.greater(lp, rp) & np.less(lhs, rhs)


@dataclass
class Signals:
    """Entry/exit signal matrices plus the arrays behind every comparison (for diagnostics)."""

    entry: np.ndarray                 # bool[n, E]
    exit: np.ndarray                  # bool[n, X]
    book: SeriesBook
    results: dict[str, np.ndarray]    # comparison path → bool[n]
    lhs: dict[str, np.ndarray | float]
    rhs: dict[str, np.ndarray | float]


def _evaluate(cond: ConditionPlan, book: SeriesBook, n: int, sig: Signals) -> np.ndarray:
    if cond.kind == "compare":
        assert cond.lhs is not None and cond.rhs is not None
        if cond.lhs.kind in STATE_OPERANDS or cond.rhs.kind in STATE_OPERANDS:
            # Known only inside the legs kernel, which ANDs it with the rest (spec.py keeps it at
            # the top level): neutral here; explain() shows NaN unless the results layer knows it.
            res = np.ones(n, np.bool_)
            sig.results[cond.path], sig.lhs[cond.path] = res, np.nan
            sig.rhs[cond.path] = cond.rhs.value if cond.rhs.kind == "value" else cond.lhs.value
            return res
        lhs, rhs = book.operand(cond.lhs), book.operand(cond.rhs)
        res = np.broadcast_to(_compare(cond.op, lhs, rhs), (n,))
        sig.results[cond.path], sig.lhs[cond.path], sig.rhs[cond.path] = res, lhs, rhs
        return res
    if cond.kind == "not":
        return ~_evaluate(cond.children[0], book, n, sig)
    parts = [_evaluate(c, book, n, sig) for c in cond.children]
    out = parts[0].copy()
    for p in parts[1:]:
        if cond.kind == "all":
            out &= p
        else:
            out |= p
    return out


def compute_signals(plan: StrategyPlan, bars: Bars, first_bar: int = 0) -> Signals:
    """Evaluate every node's condition on every bar; bars before `first_bar` never signal."""
    n = len(bars)
    book = SeriesBook.build(plan, bars)
    sig = Signals(np.zeros((n, len(plan.entries)), np.bool_), np.zeros((n, len(plan.exits)), np.bool_),
                  book, {}, {}, {})
    for k, e in enumerate(plan.entries):
        sig.entry[:, k] = _evaluate(e.when, book, n, sig)
    for k, x in enumerate(plan.exits):
        sig.exit[:, k] = _evaluate(x.when, book, n, sig)
    if first_bar > 0:
        sig.entry[:first_bar] = False
        sig.exit[:first_bar] = False
    return sig


def _value_at(v: np.ndarray | float, i: int) -> float | None:
    """The value at bar i; None where undefined (JSON has no NaN)."""
    x = float(v) if np.ndim(v) == 0 else (float(v[i]) if 0 <= i < len(v) else float("nan"))
    return None if x != x else x


def explain(cond: ConditionPlan, sig: Signals, i: int) -> list[dict]:
    """Every comparison of `cond` at bar i: left text/value, operator, right text/value, result."""
    out = []
    for cmp in cond.comparisons():
        assert cmp.lhs is not None and cmp.rhs is not None
        lhs, rhs = sig.lhs[cmp.path], sig.rhs[cmp.path]
        row = {
            "lhs": cmp.lhs.label, "lhs_value": _value_at(lhs, i), "operator": cmp.op,
            "rhs": cmp.rhs.label, "rhs_value": _value_at(rhs, i), "result": bool(sig.results[cmp.path][i]),
        }
        if cmp.op in ("crosses_above", "crosses_below"):
            row["lhs_prev_value"] = _value_at(lhs, i - 1)
            row["rhs_prev_value"] = _value_at(rhs, i - 1)
        out.append(row)
    return out
