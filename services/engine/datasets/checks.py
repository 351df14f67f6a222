"""The checks that need the whole file seen: order, timeframe, sessions against the calendar,
intraday gaps, stale runs, price spikes and volume, from what `scan.Scanner` kept (per-day
aggregates, the spacing histogram, stale runs) and the stored columns: ts memory-mapped (only the
pages a binary search touches are read), close read back a block at a time for the returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.calendar import day_date, session_schedule
from ..core.data import format_timeframe, parse_timeframe
from .columns import HEADER_BYTES, read_blocks
from .quality import ERROR, INFO, MAX_ROWS, WARNING, Findings, plural
from .scan import STALE_BARS, Scanner

__all__ = ["SPIKE_Z", "Summary", "final_checks", "order_verdict"]

SPIKE_Z = 10.0          # |robust z| of a log return above this is a spike
MIN_RETURNS = 30        # fewer returns in a group (intraday / overnight): not judged
SAMPLE = 1_000_000      # returns a group's median and MAD are taken from (4 MB of float32)
READ_ROWS = 1 << 18     # rows of a stored column read back at a time (2 MB)
_NS_PER_MIN = 60_000_000_000


@dataclass
class Summary:
    timeframe: str
    dates: np.ndarray       # int64 day numbers with bars
    starts: np.ndarray      # int64[D+1] kept-row offsets per day
    sessions: int
    expected_sessions: int


def order_verdict(scan: Scanner, f: Findings) -> str:
    """'sorted', 'reversed' (wholly newest first) or 'broken' (an ERROR is recorded)."""
    f.mark("out_of_order_timestamps")
    if scan.back and scan.fwd:
        f.add("out_of_order_timestamps", ERROR, rows=scan.back_rows, count=scan.back, text=scan.back_text,
              fix="sort the rows by time, oldest first (a file wholly newest-first is reversed for you)")
        return "broken"
    if scan.back:
        return "reversed"
    return "sorted"


def _timeframe(scan: Scanner, f: Findings, hint: str) -> str:
    f.mark("timeframe")
    hist = scan.hist
    if not hist.any():
        tf = "1d" if scan.kept else ""
    else:
        common = int(hist.argmax())
        tf = "" if common == 0 or common % 60 else format_timeframe(common // 60)
        if not tf:
            f.add("timeframe", WARNING, count=scan.kept, share=1.0, whole=True,
                  text=f"the bars are most often {common} seconds apart, which is not a whole number of minutes",
                  fix="upload bars of whole minutes (1m, 5m, 1h, 1d ...); resample ticks or seconds first")
    if hint and tf and parse_timeframe(hint) != parse_timeframe(tf):
        f.add("timeframe", ERROR, count=scan.kept, whole=True, column="",
              text=f"the bars are {tf} apart (the most common spacing within a day), not {hint} as timeframe says",
              fix=f"send timeframe={tf}, or leave it empty, or resample the file to {hint} before uploading")
    return tf


def _local_iso(day: int) -> str:
    return day_date(int(day)).isoformat()


def _sessions(scan: Scanner, f: Findings, calendar: str, days: np.ndarray, counts: np.ndarray, starts: np.ndarray,
              rows: int):
    """Missing sessions and bars on other days; returns (schedule or None, expected sessions)."""
    if not calendar:
        f.add("missing_sessions", INFO, count=1, whole=True,
              text="no calendar was given: sessions were not checked against an exchange's, and intraday gaps were "
                   "judged from each day's own first and last bar",
              fix="pass calendar (an exchange-calendars code such as XBOM or XNYS) to check sessions and hours")
        return None, 0
    f.mark("missing_sessions", "non_session_bars")
    if not len(days):
        return None, 0
    sched = session_schedule(calendar, day_date(int(days[0])), day_date(int(days[-1])))
    judged = (days >= sched.lo) & (days <= sched.hi)  # what exchange-calendars covers
    missing = np.setdiff1d(sched.days, days, assume_unique=True)
    if len(missing):
        f.add("missing_sessions", WARNING, count=len(missing), share=len(missing) / len(sched.days), whole=True,
              examples=[_local_iso(d) for d in missing[:MAX_ROWS]],
              text=f"{len(missing):,} of the {plural(len(sched.days), calendar + ' session')} between "
                   f"{_local_iso(days[0])} and {_local_iso(days[-1])} have no bars",
              fix="add the missing days' bars, or ignore this if the data starts or pauses on purpose")
    other = judged & ~np.isin(days, sched.days)
    if other.any():
        idx = np.flatnonzero(other)
        bars = int(counts[idx].sum())
        rows_at = scan.lines.lookup(starts[idx[:MAX_ROWS]])
        f.add("non_session_bars", WARNING, rows=rows_at, count=bars, share=bars / max(1, rows), whole=True,
              examples=[_local_iso(d) for d in days[idx[:MAX_ROWS]]],
              text=f"{plural(bars, 'bar')} on {plural(len(idx), 'day')} that {'is not a' if len(idx) == 1 else 'are not'} "
                   f"{calendar} session{'' if len(idx) == 1 else 's'} (weekends or holidays), the first on {_local_iso(days[idx[0]])} "
                   f"from {f.where(int(rows_at[0]))}",
              fix="drop the bars of non-trading days, or check the calendar and the timezone")
    return sched, len(sched.days)


def _inside(ts_path: Path, opens, closes, bs, be) -> np.ndarray:
    """Bars of each session inside its hours (less its break), from the stored ts read a block at
    a time (no memory map: the pages it touches would count toward the engine's memory)."""
    has_break = be > bs
    inside = np.zeros(len(opens), np.int64)
    for cols in read_blocks(ts_path.parent, READ_ROWS, names=("ts",)):
        t = cols["ts"]
        inside += np.searchsorted(t, closes) - np.searchsorted(t, opens)
        if has_break.any():
            inside -= np.where(has_break, np.searchsorted(t, be) - np.searchsorted(t, bs), 0)
    return inside


def _ts_slice(ts_path: Path, a: int, b: int) -> np.ndarray:
    with open(ts_path, "rb") as fh:
        fh.seek(HEADER_BYTES + 8 * a)
        return np.fromfile(fh, dtype=np.int64, count=b - a)


def _gaps(scan: Scanner, f: Findings, tf: str, sched, days, counts, firsts, lasts, starts, ts_path: Path | None,
          fmt_time) -> None:
    if not tf or parse_timeframe(tf) >= 1440 or not len(days):
        if tf:
            f.mark("intraday_gaps")
        return
    if ts_path is None:  # an upload refused for its errors: the stored columns are incomplete
        return
    f.mark("intraday_gaps")
    step = parse_timeframe(tf) * _NS_PER_MIN
    if sched is not None and len(sched.days):
        at = np.searchsorted(sched.days, days)
        ok = (at < len(sched.days)) & (sched.days[np.minimum(at, len(sched.days) - 1)] == days)
        d_idx = np.flatnonzero(ok)
        s_idx = at[ok]
        opens, closes = sched.opens[s_idx].copy(), sched.closes[s_idx].copy()
        bs, be = sched.break_starts[s_idx], sched.break_ends[s_idx]
        # The file may start or end inside a session: bars before its first or after its last are not missing.
        if len(d_idx) and d_idx[0] == 0 and scan.first_ts is not None:
            opens[0] = max(opens[0], scan.first_ts)
        if len(d_idx) and d_idx[-1] == len(days) - 1 and scan.last_ts is not None:
            closes[-1] = min(closes[-1], scan.last_ts + step)
        brk = np.where(be > bs, be - bs, 0)
        expected = np.maximum(-((-(closes - opens - brk)) // step), 0)
        inside = _inside(ts_path, opens, closes, bs, be)
        missing = np.maximum(expected - inside, 0)
        hours = (opens, closes, bs, be)
    else:
        d_idx = np.arange(len(days))
        expected = (lasts - firsts) // step + 1
        missing = np.maximum(expected - counts, 0)
        hours = None
    total = int(missing.sum())
    if not total:
        return
    examples, rows_at = [], []
    for j in np.flatnonzero(missing)[:MAX_ROWS]:
        d = int(d_idx[j])
        day_ts = _ts_slice(ts_path, int(starts[d]), int(starts[d + 1]))
        if hours is not None:
            opens, closes, bs, be = hours
            grid = opens[j] + np.arange(-((opens[j] - closes[j]) // step)) * step
            if be[j] > bs[j]:
                grid = grid[(grid < bs[j]) | (grid >= be[j])]
        else:
            grid = day_ts[0] + np.arange(int(expected[j])) * step
        gone = np.setdiff1d(grid, day_ts)
        for g in gone[:MAX_ROWS - len(examples)]:
            examples.append(fmt_time(int(g)))
            after = int(np.searchsorted(day_ts, g))
            if after < len(day_ts):
                rows_at.append(int(starts[d]) + after)
        if len(examples) >= MAX_ROWS:
            break
    lines = scan.lines.lookup(sorted(set(rows_at))) if rows_at else []
    n_days = int((missing > 0).sum())
    judged = "in the calendar's session hours" if hours is not None else "between each day's first and last bar"
    what = f"{plural(total, tf + ' bar')} {'is' if total == 1 else 'are'} missing {judged}, on {plural(n_days, 'day')}"
    f.add("intraday_gaps", WARNING, rows=lines, count=total, share=total / max(1, int(expected.sum())),
          examples=examples, whole=True, text=f"{what}; the first missing is {examples[0]}" if examples else what,
          fix="fill the gaps from another source, or ignore this if trading was halted")


def _stale(scan: Scanner, f: Findings, rows: int) -> None:
    f.mark("stale_bars")
    if scan.stale_count:
        lines = scan.lines.lookup(scan.stale_runs)
        f.add("stale_bars", WARNING, rows=lines, count=scan.stale_bars, share=scan.stale_bars / max(1, rows),
              whole=True, text=f"{plural(scan.stale_count, 'run')} of {STALE_BARS} or more identical bars in a row "
                               f"(the same open, high, low and close), {plural(scan.stale_bars, 'bar')} in all; the "
                               f"first starts at {f.where(int(lines[0]))}",
              fix="check the feed for those times: a stuck feed repeats its last bar")


def _returns(close_path: Path, starts: np.ndarray, rows: int = READ_ROWS):
    """(first kept index, log returns float32, overnight mask) of the stored closes, a block at a
    time: the return into each bar from the bar before (NaN for the first, or a price not above 0);
    overnight where the bar opens a day."""
    first_of_day = np.zeros(0, np.int64) if len(starts) < 2 else starts[1:-1]
    prev = np.nan
    k0 = 0
    for cols in read_blocks(close_path.parent, rows, names=("close",)):
        c = cols["close"]
        ratio = np.empty_like(c)
        ratio[0], ratio[1:] = prev, c[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(c, ratio, out=ratio)
            np.log(ratio, out=ratio)
        r = ratio.astype(np.float32)
        del ratio
        r[~np.isfinite(r)] = np.nan
        night = np.zeros(len(c), bool)
        at = first_of_day[(first_of_day >= k0) & (first_of_day < k0 + len(c))] - k0
        night[at] = True
        yield k0, r, night
        prev = c[-1]
        k0 += len(c)


def _spikes(scan: Scanner, f: Findings, rows: int, close_path: Path | None, starts: np.ndarray) -> None:
    """Robust z-scores of close-to-close log returns, intraday and overnight judged apart (an
    overnight gap is not an intraday spike), from the stored close column read a block at a time:
    the median and MAD from every return (an even sample of at most SAMPLE per group in larger
    files), then the returns beyond SPIKE_Z scales flagged on a second read."""
    if close_path is None:  # a refused upload: its columns are incomplete
        return
    f.mark("price_spikes")
    n = scan.kept
    days = max(0, len(starts) - 1)
    sizes = {False: max(0, n - days), True: max(0, days - 1)}
    centre: dict[bool, tuple[float, float]] = {}
    for night in (False, True):
        if sizes[night] < MIN_RETURNS:
            continue
        stride = max(1, -(-sizes[night] // SAMPLE))
        parts = [r[(g if night else ~g) & np.isfinite(r)][::stride].copy() for _, r, g in _returns(close_path, starts)]
        vals = np.concatenate(parts) if parts else np.empty(0, np.float32)
        del parts
        if len(vals) < MIN_RETURNS:
            continue
        k = len(vals) // 2
        vals.partition(k)
        med = float(vals[k])
        np.subtract(vals, np.float32(med), out=vals)
        np.abs(vals, out=vals)
        vals.partition(k)
        scale = 1.4826 * float(vals[k])
        if scale == 0.0:
            scale = 1.2533 * float(vals.mean(dtype=np.float64))
        if scale > 0.0:
            centre[night] = (med, scale)
    if not centre:
        return
    flagged: list[np.ndarray] = []
    first: tuple[int, float, float, bool] | None = None
    for k0, r, g in _returns(close_path, starts):
        hit = np.zeros(len(r), bool)
        for night, (med, scale) in centre.items():
            part = (np.abs(r - np.float32(med)) > np.float32(SPIKE_Z * scale)) & (g if night else ~g)
            hit |= part
        idx = np.flatnonzero(hit)
        if len(idx):
            flagged.append(idx + k0)
            if first is None:
                i = int(idx[0])
                night = bool(g[i])
                med, scale = centre[night]
                first = (i + k0, float(r[i]), abs(float(r[i]) - med) / scale, night)
    if not flagged:
        return
    idx = np.concatenate(flagged)
    _, r0, z0, night0 = first
    move = math.expm1(r0) * 100
    lines = scan.lines.lookup(idx[:MAX_ROWS])
    sampled = any(sizes[night] > SAMPLE for night in centre)
    f.add("price_spikes", WARNING, rows=lines, count=len(idx), share=len(idx) / max(1, rows), column="close",
          text=f"close moves {move:+.2f}% from the bar before{' (overnight)' if night0 else ''}, a robust z-score of "
               f"{z0:.0f} (median/MAD of the file's {'overnight' if night0 else 'intraday'} returns"
               f"{', an even sample of them' if sampled else ''}; spikes are |z| > {SPIKE_Z:g})",
          fix="check those bars against another source: a bad print, a missing split adjustment or a wrong decimal")


def _volume(scan: Scanner, f: Findings, rows: int, has_volume: bool, name: str) -> None:
    f.mark("zero_volume")
    if not has_volume:
        f.add("zero_volume", INFO, count=rows, whole=True, text="the file has no volume column: volumes are 0",
              fix="add a volume column if strategies use volume")
    elif scan.zero_volume and scan.zero_volume >= rows:
        f.drop("zero_volume")
        f.add("zero_volume", INFO, count=rows, whole=True, column=name,
              text="every volume is 0 (as for an index, which has no volume)",
              fix="nothing to do for an index; otherwise check the volume feed")


def final_checks(scan: Scanner, f: Findings, *, calendar: str, hint: str, ts_path: Path | None, fmt_time,
                 has_volume: bool, volume_name: str, rows: int) -> Summary:
    """Every check that needs the whole file, on a sorted (or reversed and rescanned) scan."""
    scan.finish()
    days, counts, firsts, lasts = scan.day_table()
    starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    tf = _timeframe(scan, f, hint)
    sched, expected = _sessions(scan, f, calendar, days, counts, starts, rows)
    _gaps(scan, f, tf, sched, days, counts, firsts, lasts, starts, ts_path, fmt_time)
    _stale(scan, f, rows)
    _spikes(scan, f, rows, ts_path.parent / "close.npy" if ts_path is not None else None, starts)
    _volume(scan, f, rows, has_volume, volume_name)
    return Summary(tf, days, starts, len(days), expected)

