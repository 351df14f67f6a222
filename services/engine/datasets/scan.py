"""One pass over the blocks of a file of bars: the per-row value checks, and the checks that need
the previous row (order, duplicates, stale runs), carried from block to block so no whole
column is ever held. What the final checks need is kept small: per-day aggregates, a histogram
of bar spacings, and a map from kept rows back to file lines.
"""

from __future__ import annotations

import numpy as np

from .quality import ERROR, WARNING, Findings
from .scan_kernel import (
    BACKWARD,
    DUP_CONFLICT,
    DUP_EXACT,
    HIGH_BELOW,
    I_BACK,
    I_FWD,
    I_KEPT,
    I_PREV_LINE,
    I_PREV_TS,
    I_RUN,
    I_RUN_FIRST,
    INVERTED,
    LOW_ABOVE,
    MISSING,
    NAT,
    NEG_VOLUME,
    NON_POSITIVE,
    NOT_FINITE,
    S_MAX,
    S_MIN,
    S_VN,
    S_VSUM,
    S_ZERO,
    STALE_BARS,
    ZERO_VOLUME,
    new_state,
    scan_block_nb,
)

__all__ = ["NS_PER_DAY", "LineMap", "Scanner", "fmt_price"]

NS_PER_DAY = 86_400_000_000_000
_PRICE_FIX = {
    "missing_values": "fill in every price (or drop the row); use 0 for an unknown volume",
    "non_positive_prices": "prices must be above 0: fix the row or drop it",
    "negative_volume": "volumes must be 0 or more: fix the row (0 when unknown)",
    "ohlc_inconsistent": "each bar needs low <= open, close <= high: fix the row, or swap high and low",
    "not_finite": "write a finite number",
}


def fmt_price(x: float) -> str:
    return f"{x:.10g}"


class LineMap:
    """Kept row index -> its line (CSV) or row (Parquet) in the file; contiguous stretches are
    stored as (first line, length), others as arrays."""

    def __init__(self) -> None:
        self.k0: list[int] = []
        self.parts: list[tuple[int, int] | np.ndarray] = []
        self.total = 0

    def add(self, lines: np.ndarray) -> None:
        n = len(lines)
        if n == 0:
            return
        self.k0.append(self.total)
        if int(lines[-1]) - int(lines[0]) == n - 1:
            self.parts.append((int(lines[0]), n))
        else:
            self.parts.append(lines.astype(np.int64, copy=True))
        self.total += n

    def range(self, a: int, b: int) -> np.ndarray:
        """Lines of kept rows a .. b-1."""
        out = []
        i = max(0, int(np.searchsorted(np.asarray(self.k0, dtype=np.int64), a, side="right")) - 1)
        while i < len(self.parts) and self.k0[i] < b:
            part, k0 = self.parts[i], self.k0[i]
            n = part[1] if isinstance(part, tuple) else len(part)
            lo, hi = max(a, k0) - k0, min(b, k0 + n) - k0
            if hi > lo:
                out.append(np.arange(part[0] + lo, part[0] + hi, dtype=np.int64) if isinstance(part, tuple)
                           else part[lo:hi])
            i += 1
        return np.concatenate(out) if out else np.empty(0, np.int64)

    def lookup(self, k) -> np.ndarray:
        k = np.atleast_1d(np.asarray(k, dtype=np.int64))
        out = np.empty(len(k), np.int64)
        starts = np.asarray(self.k0, dtype=np.int64)
        which = np.searchsorted(starts, k, side="right") - 1
        for i, (kk, w) in enumerate(zip(k.tolist(), which.tolist())):
            part = self.parts[w]
            off = kk - self.k0[w]
            out[i] = part[0] + off if isinstance(part, tuple) else part[off]
        return out


def _first_rows(mask: np.ndarray, n: int = 5) -> np.ndarray:
    return np.flatnonzero(mask)[:n]


class Scanner:
    """Feed blocks in file order (`feed`); read the results after the last (`finish`)."""

    def __init__(self, findings: Findings, names: dict[str, str], fmt_time):
        self.f = findings
        self.names = names              # role -> column name in the file
        self.fmt_time = fmt_time        # UTC ns -> exchange-local ISO text
        self.has_volume = True
        self.lines = LineMap()
        self.istate, self.fstate, self.stats, self.hist = new_state()
        self.back_rows: list[int] = []
        self.back_text = ""
        self.broken = False             # both forward and backward steps: the aggregates are meaningless
        self.rows = 0                   # data rows seen
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.days: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.firsts: list[np.ndarray] = []
        self.lasts: list[np.ndarray] = []
        self.open_day: list | None = None   # [day, count, first local, last local] of the day still open
        self.stale_runs: list[int] = []  # kept index of the first bar of the first few stale runs
        self.stale_count = 0
        self.stale_bars = 0

    # results the checks read
    @property
    def kept(self) -> int:
        return int(self.istate[I_KEPT])

    @property
    def fwd(self) -> int:
        return int(self.istate[I_FWD])

    @property
    def back(self) -> int:
        return int(self.istate[I_BACK])

    @property
    def zero_volume(self) -> int:
        return int(self.stats[S_ZERO])

    @property
    def min_price(self) -> float:
        return float(self.stats[S_MIN])

    @property
    def max_price(self) -> float:
        return float(self.stats[S_MAX])

    @property
    def volume_sum(self) -> float:
        return float(self.stats[S_VSUM])

    @property
    def volume_n(self) -> int:
        return int(self.stats[S_VN])

    def feed(self, lines: np.ndarray, ts: np.ndarray, local: np.ndarray, o: np.ndarray, h: np.ndarray,
             lo: np.ndarray, c: np.ndarray, v: np.ndarray, unread: np.ndarray | None = None,
             values: bool = True) -> np.ndarray:
        """One block in file order (rows without a timestamp included: they get the value checks
        only). Returns the mask of rows to store (those with a timestamp, less exact duplicates)."""
        m = len(ts)
        if values:
            self.rows += m
        if m == 0:
            return np.zeros(0, bool)
        cols = [np.ascontiguousarray(x, dtype=np.float64) for x in (o, h, lo, c, v)]
        ts, local, lines = (np.ascontiguousarray(x, dtype=np.int64) for x in (ts, local, lines))
        unread = np.zeros(m, np.uint8) if unread is None else unread
        flags = np.empty(m, np.uint32)
        keep = np.empty(m, np.bool_)
        runs = [np.empty(m, np.int64) for _ in range(4)]
        stale = [np.empty(m // 2 + 1, np.int64) for _ in range(2)]
        prev_line, prev_ts = int(self.istate[I_PREV_LINE]), int(self.istate[I_PREV_TS])
        kept0 = self.kept
        n_kept, n_runs, n_stale = scan_block_nb(lines, ts, local, *cols, unread, values, flags, keep,
                                                *runs, *stale, self.hist, self.istate, self.fstate, self.stats)
        if flags.any():
            self._report(flags, lines, ts, cols, prev_line, prev_ts)
        if not self.broken and self.back and self.fwd:
            self.broken = True
            self.days, self.counts, self.firsts, self.lasts, self.open_day = [], [], [], [], None
        if n_kept:
            kept_lines = lines if n_kept == m else lines[keep]
            self.lines.add(kept_lines)
            kept_ts = ts if n_kept == m else ts[keep]
            if self.first_ts is None:
                self.first_ts = int(kept_ts[0])
            self.last_ts = int(kept_ts[-1])
        if not self.broken and n_kept:
            self._days(*(r[:n_runs] for r in runs))
        for first, bars in zip(stale[0][:n_stale].tolist(), stale[1][:n_stale].tolist()):
            self._stale_run(first, bars)
        del kept0
        return keep

    def _report(self, flags: np.ndarray, lines: np.ndarray, ts: np.ndarray, cols: list, prev_line: int,
                prev_ts: int) -> None:
        f, names = self.f, self.names

        def rows_with(bit: int) -> np.ndarray:
            return np.flatnonzero(flags & np.uint32(1 << bit))

        for j, role in enumerate(("open", "high", "low", "close", "volume")):
            if role not in names:
                continue
            x, name = cols[j], names[role]
            pos = rows_with(MISSING + j)
            if len(pos):
                f.add("missing_values", ERROR, rows=lines[pos], column=name, fix=_PRICE_FIX["missing_values"],
                      text=f"{role} is empty")
            pos = rows_with(NOT_FINITE + j)
            if len(pos):
                f.add("unparsable_values", ERROR, rows=lines[pos], column=name, fix=_PRICE_FIX["not_finite"],
                      text=f"{role} is infinite")
            if j < 4:
                pos = rows_with(NON_POSITIVE + j)
                if len(pos):
                    f.add("non_positive_prices", ERROR, rows=lines[pos], column=name,
                          fix=_PRICE_FIX["non_positive_prices"],
                          describe=lambda i, x=x, pos=pos, role=role: f"{role} is {fmt_price(x[pos[i]])}")
        o, h, lo, c, v = cols
        if "volume" in names:
            pos = rows_with(NEG_VOLUME)
            if len(pos):
                f.add("negative_volume", ERROR, rows=lines[pos], column=names["volume"],
                      fix=_PRICE_FIX["negative_volume"],
                      describe=lambda i: f"volume {fmt_price(v[pos[i]])} is negative")
            pos = rows_with(ZERO_VOLUME)
            if len(pos):
                f.add("zero_volume", WARNING, rows=lines[pos[:5]], count=len(pos), column=names["volume"],
                      text="volume is 0", fix="check the volume feed; 0 is fine for an index, which has no volume")
        for bit, column, kind, describe in (
                (INVERTED, "high", "inverted", lambda p: f"high {fmt_price(h[p])} is below low {fmt_price(lo[p])}"),
                (HIGH_BELOW, "high", "high", lambda p: (f"high {fmt_price(h[p])} is below max(open, close) "
                                                        f"{fmt_price(np.fmax(o[p], c[p]))}")),
                (LOW_ABOVE, "low", "low", lambda p: (f"low {fmt_price(lo[p])} is above min(open, close) "
                                                     f"{fmt_price(np.fmin(o[p], c[p]))}"))):
            pos = rows_with(bit)
            if len(pos):
                f.add("ohlc_inconsistent", ERROR, rows=lines[pos], column=names[column], kind=kind,
                      fix=_PRICE_FIX["ohlc_inconsistent"], describe=lambda i, d=describe, pos=pos: d(int(pos[i])))

        def before(i: int) -> tuple[int, int]:
            """The line and ts of the row with a timestamp before row i."""
            for k in range(i - 1, -1, -1):
                if ts[k] != NAT:
                    return int(lines[k]), int(ts[k])
            return prev_line, prev_ts

        pos = rows_with(BACKWARD)
        if len(pos):
            if not self.back_rows:
                line, t = before(int(pos[0]))
                self.back_text = (f"timestamp {self.fmt_time(int(ts[pos[0]]))} is earlier than {f.where(line)}'s "
                                  f"{self.fmt_time(t)}")
            self.back_rows = (self.back_rows + [int(x) for x in lines[pos[:5]]])[:5]
        pos = rows_with(DUP_EXACT)
        if len(pos):
            f.add("duplicate_timestamps", WARNING, rows=lines[pos], kind="exact",
                  describe=lambda i: f"an exact copy of {f.where(before(int(pos[i]))[0])}: dropped",
                  fix="nothing to do (the copies were dropped); remove them from the source to silence this")
        dpos = rows_with(DUP_CONFLICT)
        if len(dpos):
            f.add("duplicate_timestamps", ERROR, rows=lines[dpos], kind="conflict",
                  describe=lambda i: (f"timestamp {self.fmt_time(int(ts[dpos[i]]))} is also "
                                      f"{f.where(before(int(dpos[i]))[0])}'s, with other values"),
                  fix="keep one row per bar: delete or merge the rows that share a timestamp")

    def _days(self, days: np.ndarray, counts: np.ndarray, firsts: np.ndarray, lasts: np.ndarray) -> None:
        if not len(days):
            return
        days, counts, firsts, lasts = days.copy(), counts.copy(), firsts.copy(), lasts.copy()
        od = self.open_day
        if od is not None and od[0] == days[0]:
            counts[0] += od[1]
            firsts[0] = od[2]
        elif od is not None:
            for lst, val in zip((self.days, self.counts, self.firsts, self.lasts), od):
                lst.append(np.array([val], np.int64))
        if len(days) > 1:
            self.days.append(days[:-1])
            self.counts.append(counts[:-1])
            self.firsts.append(firsts[:-1])
            self.lasts.append(lasts[:-1])
        self.open_day = [int(days[-1]), int(counts[-1]), int(firsts[-1]), int(lasts[-1])]

    def _stale_run(self, first: int, bars: int) -> None:
        self.stale_bars += bars
        self.stale_count += 1
        if len(self.stale_runs) < 5:
            self.stale_runs.append(first)

    # ---- results ---------------------------------------------------------------------------------
    def finish(self) -> None:
        run = int(self.istate[I_RUN])
        if run + 1 >= STALE_BARS and run:
            self._stale_run(int(self.istate[I_RUN_FIRST]), run + 1)
        self.istate[I_RUN] = 0
        od = self.open_day
        if od is not None:
            for lst, val in zip((self.days, self.counts, self.firsts, self.lasts), od):
                lst.append(np.array([val], np.int64))
            self.open_day = None

    def day_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(days, counts, first local ns, last local ns) per trading day with bars, in file order."""
        cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64)
        return cat(self.days), cat(self.counts), cat(self.firsts), cat(self.lasts)

