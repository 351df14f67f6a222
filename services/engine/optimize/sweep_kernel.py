"""The sweep kernel: many trials of one strategy in one numba call, metrics and daily returns
only.

A trial differs from its siblings in numbers (periods, thresholds, stop distances, sizes)
and choices, not in shape: every trial has the same entries, exits and condition trees. So
each trial compiles to

- a **condition program** per node: its tree in postfix, each comparison naming two operands
  by a *slot* of a shared series matrix (or a constant) and a bar offset;
- its node records (`kernels.node_dt`) and run settings.

The series matrix is an indicator cache keyed by what a series is (kind, source, parameters),
not by the ids a strategy gives it: the 100 trials of a grid that share SMA(20) compute it
once per sweep. `sweep_nb` then runs trials in parallel (`prange` over worker lanes, each
lane with its own scratch): it evaluates the programs into the lane's signal arrays (the
same comparisons, NaN rules and first-bar cut as `signals.compute_signals`), steps the very
kernel a backtest uses (`kernels.step_nb`) over them, and folds its closed trades and daily
closes into the fields of `Metrics` (`metrics.compute_metrics`' definitions, recomputed in
numba: the same numbers up to summation order, ~1e-12 relative) and the daily returns.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from services.engine.core import records
from services.engine.core.kernels import _NO_DAY, _NO_ORDER, book_dt, close_all_nb, node_dt, step_nb
from services.engine.core.metrics import METRIC_FIELDS
from services.engine.core.records import EXIT_END_OF_DATA, position_dt
from services.engine.core.registry import INDICATORS
from services.engine.core.signals import SeriesBook
from services.engine.core.spec import FIELDS, STATE_OPERANDS, ConditionPlan, StrategyPlan

# Postfix instructions: int64 rows [code, arg, lhs slot, lhs offset, rhs slot, rhs offset] and
# float64 rows [lhs constant, rhs constant]; slot -1: the constant.
CMP, AND, OR, NOT, TRUE = 0, 1, 2, 3, 4
OPS = {"<": 0, "<=": 1, ">": 2, ">=": 3, "==": 4, "!=": 5, "crosses_above": 6, "crosses_below": 7}
N_METRICS = len(METRIC_FIELDS)
_M = {name: k for k, name in enumerate(METRIC_FIELDS)}
TRADE_SCRATCH = 4096  # trade records a lane holds before folding them into its totals
_LOCK = threading.Lock()  # one parallel kernel at a time per process (numba's workqueue layer)


class Unsupported(Exception):
    """A trial the kernel does not run (option legs, another shape): the reference path runs it."""


# ---- compiling trials ------------------------------------------------------------------------
@dataclass
class Compiled:
    """A trial ready for the kernel; `keys` are the series it reads, in slot-argument order."""

    prog_i: np.ndarray            # int64[P, 6]
    prog_f: np.ndarray            # float64[P, 2]
    node_start: np.ndarray        # int64[E + X + 1]: each node's program, entries then exits
    depth: int
    nodes: np.ndarray             # node_dt[E]
    exit_targets: np.ndarray      # bool[X, E]
    atr_keys: list[str | None]    # per entry node: the series of its ATR stops
    keys: list[str]               # series referenced by slot arguments (index = placeholder)
    square_off: float | None
    fill_at_close: bool
    commission: float
    slippage: float
    capital: float
    shape: tuple
    indicator_specs: dict         # indicator key → (kind, params, source key) for SeriesCache


def _indicator_keys(plan: StrategyPlan) -> dict[str, tuple[str, str, dict, str | None]]:
    """id → (key, kind, params, source key or None): a series' identity without its id."""
    out: dict[str, tuple[str, str, dict, str | None]] = {}
    for ind in plan.indicators:
        spec = INDICATORS[ind.kind]
        src_key = None
        if spec.uses_source:
            src_key = _ref_key(ind.source, out)
        params = tuple(sorted((k, float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                              for k, v in ind.params.items()))
        out[ind.id] = (f"{ind.kind}({src_key};{params})", ind.kind, dict(ind.params), src_key)
    return out


def _ref_key(ref: str, inds: dict) -> str:
    if ref in FIELDS:
        return f"field:{ref}"
    ident, _, output = ref.partition(".")
    if ident not in inds:
        raise Unsupported(f"unknown series {ref}")
    return f"{inds[ident][0]}.{output or 'value'}"


def compile_trial(plan: StrategyPlan, capital: float, commission_pct: float, slippage_pct: float) -> Compiled:
    if plan.has_legs:
        raise Unsupported("option legs")
    inds = _indicator_keys(plan)
    keys: list[str] = []
    slot_of: dict[str, int] = {}

    def slot(key: str) -> int:
        if key not in slot_of:
            slot_of[key] = len(keys)
            keys.append(key)
        return slot_of[key]

    rows_i: list[list[int]] = []
    rows_f: list[list[float]] = []
    shape: list = []
    depth = 0

    def operand(op) -> tuple[int, int, float]:
        if op.kind in ("value", "time"):
            return -1, 0, float(op.value)
        return slot(_ref_key(op.ref, inds)), int(op.offset), 0.0

    def emit(cond: ConditionPlan, sp: int) -> int:
        """Append cond's postfix; returns the stack depth it reaches."""
        if cond.kind == "compare":
            shape.append("c")
            assert cond.lhs is not None and cond.rhs is not None
            if cond.lhs.kind in STATE_OPERANDS or cond.rhs.kind in STATE_OPERANDS:
                rows_i.append([TRUE, 0, -1, 0, -1, 0])
                rows_f.append([0.0, 0.0])
                return sp + 1
            ls, lo, lc = operand(cond.lhs)
            rs, ro, rc = operand(cond.rhs)
            rows_i.append([CMP, OPS[cond.op], ls, lo, rs, ro])
            rows_f.append([lc, rc])
            return sp + 1
        shape.append((cond.kind, len(cond.children)))
        deepest = sp
        for k, child in enumerate(cond.children):
            deepest = max(deepest, emit(child, sp + k))
        code = NOT if cond.kind == "not" else (AND if cond.kind == "all" else OR)
        rows_i.append([code, len(cond.children), 0, 0, 0, 0])
        rows_f.append([0.0, 0.0])
        return deepest

    starts = [0]
    for node in (*plan.entries, *plan.exits):
        depth = max(depth, emit(node.when, 0))
        starts.append(len(rows_i))
    E, X = len(plan.entries), len(plan.exits)
    nodes = np.zeros(E, node_dt)
    atr_keys: list[str | None] = []
    for k, e in enumerate(plan.entries):
        nd = nodes[k]
        nd["side"], nd["qty_mode"], nd["qty_value"] = e.side, e.qty_mode, e.qty_value
        nd["max_per_day"], nd["max_re_entries"], nd["reverse"] = e.max_per_day, e.max_re_entries, int(e.reverse)
        nd["max_bars"] = e.max_bars
        nd["sl_mode"], nd["sl_value"] = e.stop_loss.mode, e.stop_loss.value
        nd["tp_mode"], nd["tp_value"] = e.take_profit.mode, e.take_profit.value
        nd["ts_mode"], nd["ts_value"] = e.trailing_stop.mode, e.trailing_stop.value
        nd["has_stops"] = int(any(r.mode != records.STOP_NONE for r in (e.stop_loss, e.take_profit, e.trailing_stop)))
        atr = None
        for rule in (e.stop_loss, e.take_profit, e.trailing_stop):
            if rule.mode == records.STOP_ATR:
                atr = _ref_key(f"{rule.atr}.value", inds)
                slot(atr)
                break
        atr_keys.append(atr)
    targets = np.zeros((X, E), np.bool_)
    ids = [e.id for e in plan.entries]
    for x, ex in enumerate(plan.exits):
        for target in ex.closes:
            targets[x, ids.index(target)] = True
    session = plan.session
    return Compiled(
        prog_i=np.array(rows_i, np.int64).reshape(-1, 6), prog_f=np.array(rows_f, np.float64).reshape(-1, 2),
        node_start=np.array(starts, np.int64), depth=max(depth, 1), nodes=nodes, exit_targets=targets,
        atr_keys=atr_keys, keys=keys, square_off=session.square_off_minute if session.intraday else None,
        fill_at_close=bool(plan.execution.fill_at_close), commission=commission_pct / 100.0,
        slippage=slippage_pct / 100.0, capital=capital, shape=(E, X, tuple(shape)),
        indicator_specs={key: (kind, params, src) for key, kind, params, src in inds.values()})


# ---- the series cache ------------------------------------------------------------------------
class SeriesCache:
    """Series by key in the rows of one float64 matrix (lazily touched), least recently used
    rows reused. `bind(keys)` makes every key resident and returns their rows."""

    def __init__(self, bars, plan_for: dict[str, tuple[str, dict, str | None]], budget_bytes: int):
        self.bars = bars
        self.book = SeriesBook(bars)
        n = max(1, len(bars))
        self.capacity = max(8, int(budget_bytes // (8 * n)))
        self.matrix = np.empty((self.capacity, len(bars)), np.float64)
        self.rows: dict[str, int] = {}
        self.free = list(range(self.capacity - 1, -1, -1))
        self.clock = 0
        self.used: dict[str, int] = {}
        self.specs = plan_for       # indicator key → (kind, params, source key)
        self.computed = 0

    def bind(self, keys: set[str]) -> dict[str, int]:
        if len(keys) > self.capacity:
            raise MemoryError(f"{len(keys)} series at once; the cache holds {self.capacity}")
        pinned: set[str] = set()
        out = {}
        for key in sorted(keys, key=lambda k: k in self.rows, reverse=True):
            out[key] = self._row(key, pinned)
        return out

    def _row(self, key: str, pinned: set[str]) -> int:
        self.clock += 1
        self.used[key] = self.clock
        pinned.add(key)
        if key in self.rows:
            return self.rows[key]
        values = self._compute(key, pinned)
        row = self._take(pinned)
        self.matrix[row] = values
        self.rows[key] = row
        return row

    def _take(self, pinned: set[str]) -> int:
        if self.free:
            return self.free.pop()
        victim = min((k for k in self.rows if k not in pinned), key=lambda k: self.used[k])
        return self.rows.pop(victim)

    def _compute(self, key: str, pinned: set[str]) -> np.ndarray:
        if key.startswith("field:"):
            return np.asarray(self.book.field_or_series(key[6:]), np.float64)
        ind_key, _, output = key.rpartition(".")
        kind, params, src_key = self.specs[ind_key]
        spec = INDICATORS[kind]
        source = None
        if spec.uses_source:
            source = self.matrix[self._row(src_key, pinned)] if src_key else None
        self.computed += 1
        outputs = spec.compute(params, source, self.bars)
        # Every output is kept while we have them (a band's upper and lower both get used).
        for name, arr in outputs.items():
            other = f"{ind_key}.{name}"
            if name != output and other not in self.rows and len(self.free) > 1:
                row = self.free.pop()
                self.matrix[row] = arr
                self.rows[other] = row
                self.clock += 1
                self.used[other] = self.clock
        return np.asarray(outputs[output], np.float64)


# ---- the kernel ------------------------------------------------------------------------------
# Comparison with the operands swapped: a < b is b > a; a crosses above b is b crosses below a.
_FLIP = np.array([2, 3, 0, 1, 4, 5, 7, 6], np.int64)


@njit(cache=True, nogil=True)
def _cmp_series(out, a, lo, b, ro, op, start, n):
    """out[i] = a[i - lo] op b[i - ro] for i in [start, n) (both offsets within range)."""
    if op == 0:
        for i in range(start, n):
            out[i] = a[i - lo] < b[i - ro]
    elif op == 1:
        for i in range(start, n):
            out[i] = a[i - lo] <= b[i - ro]
    elif op == 2:
        for i in range(start, n):
            out[i] = a[i - lo] > b[i - ro]
    elif op == 3:
        for i in range(start, n):
            out[i] = a[i - lo] >= b[i - ro]
    elif op == 4:
        for i in range(start, n):
            out[i] = a[i - lo] == b[i - ro]
    elif op == 5:
        for i in range(start, n):
            x = a[i - lo]
            y = b[i - ro]
            out[i] = (x != y) & (x == x) & (y == y)
    elif op == 6:
        for i in range(start, n):
            out[i] = (a[i - lo - 1] < b[i - ro - 1]) & (a[i - lo] > b[i - ro])
    else:
        for i in range(start, n):
            out[i] = (a[i - lo - 1] > b[i - ro - 1]) & (a[i - lo] < b[i - ro])


@njit(cache=True, nogil=True)
def _cmp_const(out, a, lo, c, op, start, n):
    """out[i] = a[i - lo] op c for i in [start, n)."""
    if op == 0:
        for i in range(start, n):
            out[i] = a[i - lo] < c
    elif op == 1:
        for i in range(start, n):
            out[i] = a[i - lo] <= c
    elif op == 2:
        for i in range(start, n):
            out[i] = a[i - lo] > c
    elif op == 3:
        for i in range(start, n):
            out[i] = a[i - lo] >= c
    elif op == 4:
        for i in range(start, n):
            out[i] = a[i - lo] == c
    elif op == 5:
        for i in range(start, n):
            x = a[i - lo]
            out[i] = (x != c) & (x == x) & (c == c)
    elif op == 6:
        for i in range(start, n):
            out[i] = (a[i - lo - 1] < c) & (a[i - lo] > c)
    else:
        for i in range(start, n):
            out[i] = (a[i - lo - 1] > c) & (a[i - lo] < c)


@njit(cache=True, nogil=True)
def _crosses_both(out, a, lo, b, ro, first, n, busy):
    """out[i, 0] = a crosses above b, out[i, 1] = a crosses below b, for bars [first, n); the
    bars where either is true go to busy (returns how many)."""
    start = min(max(first, max(lo, ro) + 1), n)
    for i in range(first, start):
        out[i, 0] = False
        out[i, 1] = False
    if start >= n:
        return 0
    x = a[start - lo - 1]
    y = b[start - ro - 1]
    below = x < y
    above = x > y
    m = 0
    for i in range(start, n):
        x = a[i - lo]
        y = b[i - ro]
        now_above = x > y
        now_below = x < y
        up = below & now_above
        down = above & now_below
        out[i, 0] = up
        out[i, 1] = down
        busy[m] = i
        m += up | down
        below = now_below
        above = now_above
    return m


@njit(cache=True, nogil=True)
def _busy_bars(entry, exit_, first, n, busy):
    """Bars in [first, n) with any entry or exit signal, ascending, into busy; returns how many."""
    E = entry.shape[1]
    X = exit_.shape[1]
    m = 0
    for i in range(first, n):
        hit = False
        for e in range(E):
            hit |= entry[i, e]
        for x in range(X):
            hit |= exit_[i, x]
        busy[m] = i
        m += hit
    return m


@njit(cache=True, nogil=True)
def _compare_into(out, series, op, ls, lo, lc, rs, ro, rc, first, n):
    """out[i] = lhs(i) op rhs(i) for bars [first, n), signals._compare's rules: a comparison
    with NaN (warm-up, before the data) is false; a cross needs the previous bar."""
    need = 0                  # the first bar whose operands (and previous ones) exist
    if ls >= 0:
        need = max(need, lo)
    if rs >= 0:
        need = max(need, ro)
    if op >= 6:
        need += 1
    start = min(max(first, need), n)
    for i in range(first, start):
        out[i] = False
    if ls >= 0 and rs >= 0:
        _cmp_series(out, series[ls], lo, series[rs], ro, op, start, n)
    elif ls >= 0:
        _cmp_const(out, series[ls], lo, rc, op, start, n)
    elif rs >= 0:
        _cmp_const(out, series[rs], ro, lc, _FLIP[op], start, n)
    else:
        if op == 0:
            r = lc < rc
        elif op == 1:
            r = lc <= rc
        elif op == 2:
            r = lc > rc
        elif op == 3:
            r = lc >= rc
        elif op == 4:
            r = lc == rc
        elif op == 5:
            r = lc != rc and lc == lc and rc == rc
        else:
            r = False  # constants never cross
        for i in range(start, n):
            out[i] = r


@njit(cache=True, nogil=True)
def _signals_nb(series, prog_i, prog_f, start, stop, stack, out, col, lo, hi):
    """Evaluate one node's program [start, stop) for bars [lo, hi) into out[:, col]."""
    if stop - start == 1 and prog_i[start, 0] == CMP:  # most nodes: one comparison, straight in
        p = start
        _compare_into(out[:, col], series, prog_i[p, 1], prog_i[p, 2], prog_i[p, 3], prog_f[p, 0],
                      prog_i[p, 4], prog_i[p, 5], prog_f[p, 1], lo, hi)
        return
    sp = 0
    for p in range(start, stop):
        code = prog_i[p, 0]
        if code == CMP:
            _compare_into(stack[sp], series, prog_i[p, 1], prog_i[p, 2], prog_i[p, 3], prog_f[p, 0],
                          prog_i[p, 4], prog_i[p, 5], prog_f[p, 1], lo, hi)
            sp += 1
        elif code == TRUE:
            stack[sp, lo:hi] = True
            sp += 1
        elif code == NOT:
            top = stack[sp - 1]
            for i in range(lo, hi):
                top[i] = not top[i]
        else:
            k = prog_i[p, 1]
            base = stack[sp - k]
            for c in range(sp - k + 1, sp):
                other = stack[c]
                if code == AND:
                    for i in range(lo, hi):
                        base[i] = base[i] & other[i]
                else:
                    for i in range(lo, hi):
                        base[i] = base[i] | other[i]
            sp -= k - 1
    res = stack[0]
    for i in range(lo, hi):
        out[i, col] = res[i]


@njit(cache=True, nogil=True)
def _percentile5(r):
    """np.percentile(r, 5) with numpy's default linear interpolation, by selection (no sort)."""
    n = len(r)
    idx = 0.05 * (n - 1)
    lo = int(math.floor(idx))
    part = np.partition(r, lo)
    x = part[lo]
    y = part[lo + 1:].min() if lo + 1 < n else x
    t = idx - lo
    diff = y - x
    if t >= 0.5:
        return y - diff * (1.0 - t)
    return x + diff * t


@njit(cache=True, nogil=True)
def _curve_metrics(curve, times, out, returns):
    """The daily-curve fields of compute_metrics (returns, risk, drawdowns) into out;
    the daily returns into `returns`."""
    nan = np.nan
    D = len(curve) - 1
    for d in range(D):
        prev = curve[d]
        returns[d] = (curve[d + 1] - prev) / prev if prev > 0 else 0.0
    growth = curve[D] / curve[0]
    out[0] = (growth - 1.0) * 100.0
    if D == 0:
        for k in (1, 2, 3, 4, 22, 23, 28, 29):
            out[k] = nan
    else:
        years = (times[D] - times[0]) / 365.25
        if growth <= 0:
            out[1] = -100.0
        else:
            expo = math.log(growth) / years
            out[1] = math.expm1(expo) * 100.0 if expo < 700 else nan
        annual = math.sqrt(252.0)
        mean = returns[:D].mean()
        if D >= 2:
            ss = 0.0
            down = 0.0
            for d in range(D):
                dev = returns[d] - mean
                ss += dev * dev
                m = min(returns[d], 0.0)
                down += m * m
            std = math.sqrt(ss / (D - 1))
            downside = math.sqrt(down / D)
            out[2] = std * annual * 100.0
            out[3] = mean / std * annual if (std > 1e-12 * abs(mean) and std > 0) else nan
            out[4] = mean / downside * annual if downside > 0 else nan
        else:
            out[2] = nan
            out[3] = nan
            out[4] = nan
        var = _percentile5(returns[:D])
        tail = 0.0
        cnt = 0
        best = -np.inf
        worst = np.inf
        for d in range(D):
            x = returns[d]
            if x <= var:
                tail += x
                cnt += 1
            best = max(best, x)
            worst = min(worst, x)
        out[22] = var * 100.0
        out[23] = (tail / cnt if cnt else var) * 100.0
        out[28] = best * 100.0
        out[29] = worst * 100.0
    # drawdowns
    peak = curve[0]
    max_dd = 0.0
    episodes = 0
    depth_sum = 0.0
    dur_sum = 0.0
    dur_max = 0.0
    in_dd = False
    depth = 0.0
    start = 0
    for d in range(len(curve)):
        peak = max(peak, curve[d])
        dd = curve[d] / peak - 1.0
        if dd < 0:
            if not in_dd:
                in_dd = True
                start = d
                depth = dd
            else:
                depth = min(depth, dd)
            max_dd = min(max_dd, dd)
        elif in_dd:
            in_dd = False
            dur = times[d] - times[start - 1]
            episodes += 1
            depth_sum += depth
            dur_sum += dur
            dur_max = max(dur_max, dur)
    if in_dd:
        dur = times[len(curve) - 1] - times[start - 1]
        episodes += 1
        depth_sum += depth
        dur_sum += dur
        dur_max = max(dur_max, dur)
    if episodes == 0:
        out[6] = 0.0
        out[7] = 0.0
        out[8] = 0.0
        out[27] = 0.0
    else:
        out[6] = max_dd * 100.0
        out[7] = dur_max
        out[8] = depth_sum / episodes * 100.0
        out[27] = dur_sum / episodes


@njit(cache=True, nogil=True)
def _fold_trades(trades, k, ts, acc, spans):
    """Add trades[:k] to the running trade totals `acc` (see _trade_metrics) and their bar
    spans (entry, exit) to `spans` (acc[15] counts them)."""
    for j in range(k):
        t = trades[j]
        pnl = t.pnl
        acc[0] += 1.0
        n = acc[0]
        delta = pnl - acc[1]          # Welford: mean, M2
        acc[1] += delta / n
        acc[2] += delta * (pnl - acc[1])
        acc[3] += pnl
        if pnl > 0:
            acc[4] += 1.0
            acc[5] += pnl
            acc[10] += 1.0
            acc[12] = 0.0
            acc[11] = max(acc[11], acc[10])
        elif pnl < 0:
            acc[6] += 1.0
            acc[7] -= pnl
            acc[12] += 1.0
            acc[10] = 0.0
            acc[13] = max(acc[13], acc[12])
        else:
            acc[10] = 0.0
            acc[12] = 0.0
        acc[8] = max(acc[8], pnl)
        acc[9] = min(acc[9], pnl)
        acc[14] += (ts[t.exit_bar] - ts[t.entry_bar]) / 60e9
        m = int(acc[15])
        spans[m, 0] = t.entry_bar
        spans[m, 1] = t.exit_bar
        acc[15] += 1.0


@njit(cache=True, nogil=True)
def _held_bars(spans, m, lo, hi):
    """Bars in [lo, hi) inside at least one span [entry, exit] (Backtest's exposure count)."""
    sorted_ = True
    for j in range(1, m):
        if spans[j, 0] < spans[j - 1, 0]:
            sorted_ = False
            break
    order = np.arange(m) if sorted_ else np.argsort(spans[:m, 0], kind="mergesort")
    count = 0
    covered = lo - 1          # last bar counted
    for j in range(m):
        a = max(spans[order[j], 0], covered + 1, lo)
        b = min(spans[order[j], 1], hi - 1)
        if b >= a:
            count += b - a + 1
            covered = b
    return count


@njit(cache=True, nogil=True)
def _trade_metrics(acc, out):
    nan = np.nan
    n = acc[0]
    wins, losses = acc[4], acc[6]
    out[9] = wins / n * 100.0 if n else nan
    out[10] = acc[5] / acc[7] if acc[7] > 0 else nan
    out[11] = acc[3] / n if n else nan
    std = math.sqrt(acc[2] / (n - 1)) if n >= 2 else 0.0
    out[12] = math.sqrt(n) * (acc[3] / n) / std if std > 0 else nan
    out[13] = acc[5] / wins if wins else nan
    out[14] = -acc[7] / losses if losses else nan
    out[15] = acc[8] if wins else nan
    out[16] = acc[9] if losses else nan
    out[17] = acc[11]
    out[18] = acc[13]
    out[20] = acc[14] / n if n else nan
    out[24] = n


@njit(cache=True, nogil=True)
def _run_trial(t, series, prog_i, prog_f, node_start, nodes, exit_targets, atr_slot, sq_index, square_offs,
               fill_at_close, commission, slippage, intraday, capital, open_, high, low, close, day, ts,
               closes, times, first_bar, entry, exit_, stack, stop_atr, equity, trades, spans, acc,
               out_metrics, out_returns, busy, day_starts, square_bars, square_off_at):
    n = close.shape[0]
    E = nodes.shape[1]
    X = exit_.shape[1]
    for e in range(E):
        if atr_slot[t, e] >= 0:
            stop_atr[:, e] = series[atr_slot[t, e]]
    pos = np.zeros(E, position_dt)
    for e in range(E):
        pos[e].sl_level = np.nan
        pos[e].tp_level = np.nan
        pos[e].trail_extreme = np.nan
        pos[e].trail_level = np.nan
    book = np.zeros(E, book_dt)
    for e in range(E):
        book[e].entry_bar = _NO_ORDER
        book[e].exit_reason = _NO_ORDER
        book[e].exit_node = _NO_ORDER
        book[e].exit_bar = _NO_ORDER
    ints = np.zeros(4, np.int64)
    ints[0] = _NO_DAY
    floats = np.zeros(1, np.float64)
    floats[0] = capital[t]
    for i in range(first_bar):
        equity[i] = np.nan
    acc[:] = 0.0
    acc[8] = -np.inf
    acc[9] = np.inf
    sq = square_offs[max(sq_index[t], 0)]
    # Every signal first (bars before first_bar are never stepped, their signals never read),
    # then the kernel. (Interleaving them block by block was measured 25 % slower.)
    pi = prog_i[t]
    done = -1
    n_busy = -1
    if E == 2:
        # The crossover pair (long on a crossing above, short on the crossing below of the same
        # two series) in one pass: half the loads.
        a, b = node_start[t, 0], node_start[t, 1]
        if (node_start[t, 2] - b == 1 and b - a == 1 and pi[a, 0] == CMP and pi[b, 0] == CMP
                and pi[a, 1] == 6 and pi[b, 1] == 7 and pi[a, 2] >= 0 and pi[a, 4] >= 0
                and pi[a, 2] == pi[b, 2] and pi[a, 3] == pi[b, 3] and pi[a, 4] == pi[b, 4] and pi[a, 5] == pi[b, 5]):
            n_busy = _crosses_both(entry, series[pi[a, 2]], pi[a, 3], series[pi[a, 4]], pi[a, 5], first_bar, n,
                                   busy)
            done = 1
    for node in range(E + X):
        if node <= done:
            continue
        s, e = node_start[t, node], node_start[t, node + 1]
        if node < E:
            _signals_nb(series, pi, prog_f[t], s, e, stack, entry, node, first_bar, n)
        else:
            _signals_nb(series, pi, prog_f[t], s, e, stack, exit_, node - E, first_bar, n)
    if done < E + X - 1:
        n_busy = _busy_bars(entry, exit_, first_bar, n, busy)
    sqb = square_bars[square_off_at[max(sq_index[t], 0)]:square_off_at[max(sq_index[t], 0) + 1]]
    i = first_bar
    while i < n:
        # Equity is read at day closes only: quiet stretches write their last bar's, and are
        # stepped over from one busy bar (or day start, or square-off) to the next.
        k, i = step_nb(open_, high, low, close, day, sq, entry, exit_, exit_targets[t], nodes[t], stop_atr,
                       fill_at_close[t], commission[t], slippage[t], intraday[t], equity, pos, book, ints,
                       floats, trades, 0, i, n, False, busy[:n_busy], day_starts, sqb)
        _fold_trades(trades, k, ts, acc, spans)
    k = close_all_nb(close, n - 1, EXIT_END_OF_DATA, commission[t], slippage[t], pos, book, ints, floats, trades)
    equity[n - 1] = floats[0]
    _fold_trades(trades, k, ts, acc, spans)
    # daily closes
    D = closes.shape[0]
    curve = np.empty(D + 1)
    curve[0] = capital[t]
    for d in range(D):
        v = equity[closes[d]]
        curve[d + 1] = v if v == v else capital[t]
    out = out_metrics[t]
    _curve_metrics(curve, times, out, out_returns[t])
    _trade_metrics(acc, out)
    # exposure: bars from first_bar to the last close with a position open
    end = closes[D - 1] + 1 if D else first_bar + 1
    count = _held_bars(spans, int(acc[15]), first_bar, end)
    span = max(1, end - first_bar)
    out[19] = count / span * 100.0
    first_price = close[first_bar]
    last_price = close[closes[D - 1]] if D else first_price
    if math.isfinite(first_price) and math.isfinite(last_price) and first_price > 0:
        out[21] = (last_price / first_price - 1.0) * 100.0
    else:
        out[21] = np.nan
    out[5] = out[1] / -out[6] if (out[6] < 0 and math.isfinite(out[1])) else np.nan
    out[25] = curve[D]
    out[26] = capital[t]


@njit(cache=True, nogil=True, parallel=True)
def sweep_nb(series, prog_i, prog_f, node_start, depth, nodes, exit_targets, atr_slot, sq_index, square_offs,
             fill_at_close, commission, slippage, intraday, capital, open_, high, low, close, day, ts, closes,
             times, first_bar, lanes, entry, exit_, stack, stop_atr, equity, trades, spans, acc, out_metrics,
             out_returns, busy, day_starts, square_bars, square_off_at):
    """Trials t = lane, lane + lanes, ... run on each lane's scratch (entry, exit_, stack, stop_atr,
    equity, trades, spans, acc: one per lane)."""
    T = prog_i.shape[0]
    for lane in prange(lanes):
        for t in range(lane, T, lanes):
            _run_trial(t, series, prog_i, prog_f, node_start, nodes, exit_targets, atr_slot, sq_index,
                       square_offs, fill_at_close, commission, slippage, intraday, capital, open_, high, low,
                       close, day, ts, closes, times, first_bar, entry[lane], exit_[lane], stack[lane],
                       stop_atr[lane], equity[lane], trades[lane], spans[lane], acc[lane], out_metrics,
                       out_returns, busy[lane], day_starts, square_bars, square_off_at)


def warmup_strategies() -> list[str]:
    """Strategies (JSON) whose shapes cover the kernel's specializations: a crossover pair, and
    one entry with a composite condition, an exit, stops and square-off."""
    cross = ('{"indicators": [{"id": "f", "kind": "sma", "source": "close", "period": 5},'
             '{"id": "s", "kind": "sma", "source": "close", "period": 20}],'
             '"entries": [{"id": "l", "side": "buy", "quantity": {"equity_pct": 100}, "reverse": true,'
             '"when": {"lhs": {"indicator": "f"}, "op": "crosses_above", "rhs": {"indicator": "s"}}},'
             '{"id": "h", "side": "sell", "quantity": {"equity_pct": 100}, "reverse": true,'
             '"when": {"lhs": {"indicator": "f"}, "op": "crosses_below", "rhs": {"indicator": "s"}}}]}')
    mixed = ('{"indicators": [{"id": "r", "kind": "rsi", "source": "close", "period": 14}],'
             '"entries": [{"id": "l", "side": "buy", "quantity": {"units": 1}, "stop_loss": {"pct": 1},'
             '"when": {"all": [{"lhs": {"indicator": "r"}, "op": "<", "rhs": {"value": 30}},'
             '{"not": {"lhs": {"field": "close"}, "op": ">", "rhs": {"field": "open", "offset": 1}}}]}}],'
             '"exits": [{"id": "x", "closes": ["l"], "when": {"lhs": {"indicator": "r"}, "op": ">", "rhs": {"value": 60}}}],'
             '"session": {"square_off_time": "15:15", "timezone": "Asia/Kolkata"}}')
    return [cross, mixed]
