"""The quality report of an uploaded file of bars: findings collected while it is read, the score,
and the QualityReport message (datasets.proto).

Checks (QualityFinding.check) and their severities:

  ERROR (the upload is refused): missing_columns, unparsable_values, missing_values,
    duplicate_timestamps (one timestamp, different values), out_of_order_timestamps,
    ohlc_inconsistent, non_positive_prices, negative_volume, timeframe (the detected bar size
    disagrees with the caller's hint).
  WARNING (stored; results may be off where it applies): duplicate_timestamps (exact duplicate
    rows, dropped), zero_volume, missing_sessions, non_session_bars, intraday_gaps, stale_bars,
    price_spikes, timeframe (bars not spaced by whole minutes).
  INFO (no penalty): out_of_order_timestamps (a file wholly newest-first, reversed), zero_volume
    (the whole column is zero, as for an index, or there is none), missing_sessions (no calendar
    was given, so sessions were not checked against an exchange's).

The score is 100 less each finding's penalty, never below 0:
  ERROR   40 each (any error leaves at most 60; three or more leave ~0).
  WARNING 2 + 13 x min(1, share / scale), i.e. 2 to 15: `share` is the part of the data the
          finding touches (rows for row checks, sessions for missing sessions, expected bars for
          intraday gaps) and `scale` the share at which it reaches its cap: 10 % for most checks,
          0.1 % for price spikes (one bad print in a thousand bars is already a serious problem).
  INFO    0.
`passed` lists the checks that ran and found nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hindsight.v1 import datasets_pb2 as dpb

__all__ = ["CHECKS", "ERROR", "INFO", "WARNING", "Findings", "penalty", "plural"]

ERROR = dpb.QUALITY_SEVERITY_ERROR
WARNING = dpb.QUALITY_SEVERITY_WARNING
INFO = dpb.QUALITY_SEVERITY_INFO

CHECKS = ("missing_columns", "unparsable_values", "missing_values", "duplicate_timestamps",
          "out_of_order_timestamps", "ohlc_inconsistent", "non_positive_prices", "negative_volume", "zero_volume",
          "missing_sessions", "non_session_bars", "intraday_gaps", "stale_bars", "price_spikes", "timeframe")
MAX_ROWS = 5        # rows (and examples) named per finding
ERROR_PENALTY = 40.0
WARNING_BASE, WARNING_SPAN = 2.0, 13.0
SHARE_SCALE = {"price_spikes": 0.001}
DEFAULT_SCALE = 0.10


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def penalty(severity: int, check: str, share: float) -> float:
    if severity == ERROR:
        return ERROR_PENALTY
    if severity == WARNING:
        scale = SHARE_SCALE.get(check, DEFAULT_SCALE)
        return WARNING_BASE + WARNING_SPAN * min(1.0, max(0.0, share) / scale)
    return 0.0


@dataclass
class _Finding:
    check: str
    severity: int
    column: str
    text: str                  # what is wrong at the first row named (or in general)
    fix: str
    first: int | None          # the smallest row at fault, for ordering and the message
    rows: list[int] = field(default_factory=list)
    count: int = 0
    examples: list[str] = field(default_factory=list)
    share: float | None = None
    whole: bool = False        # `text` speaks for the whole file: no "line N" prefix


class Findings:
    """Findings as they are found, block by block: per (check, severity, column, kind), the first
    rows at fault, how many in all, and the words for the first of them."""

    def __init__(self, unit: str = "line"):
        self.unit = unit          # "line" (CSV: the header is line 1) or "row" (Parquet, 1-based)
        self._found: dict[tuple, _Finding] = {}
        self.ran: set[str] = set()

    @property
    def has_error(self) -> bool:
        return any(f.severity == ERROR for f in self._found.values())

    def errors(self) -> list[_Finding]:
        return [f for f in self._ordered() if f.severity == ERROR]

    def where(self, row: int) -> str:
        if self.unit == "line" and row == 1:
            return "line 1 (header)"
        return f"{self.unit} {row}"

    def add(self, check: str, severity: int, *, rows: np.ndarray | list[int] | None = None, count: int | None = None,
            text: str | None = None, describe=None, column: str = "", fix: str = "", kind: str = "",
            examples: list[str] | None = None, share: float | None = None, whole: bool = False) -> None:
        """Record `count` rows (default: len(rows)) at fault; `rows` sorted ascending, only the
        first few are kept. `describe(i)` words rows[i] when `text` is not given; it is only
        called when that row is the earliest one seen for this finding."""
        self.ran.add(check)
        rows = np.asarray(rows if rows is not None else [], dtype=np.int64)
        n = int(count if count is not None else len(rows))
        if n <= 0:
            return
        key = (check, severity, column, kind)
        f = self._found.get(key)
        first = int(rows[0]) if len(rows) else None
        if f is None:
            f = self._found[key] = _Finding(check, severity, column, "", fix, None)
        if first is not None and (f.first is None or first < f.first):
            f.first = first
            f.text = text if text is not None else describe(0)
        elif not f.text:
            f.text = text if text is not None else (describe(0) if describe is not None else "")
        if len(rows):
            merged = sorted(set(f.rows) | set(int(r) for r in rows[:MAX_ROWS]))
            f.rows = merged[:MAX_ROWS]
        f.count += n
        if examples:
            f.examples = (f.examples + list(examples))[:MAX_ROWS]
        if share is not None:
            f.share = share
        f.whole = f.whole or whole

    def mark(self, *checks: str) -> None:
        """These checks ran (whether or not they found anything)."""
        self.ran.update(checks)

    def drop(self, check: str, severity: int | None = None) -> None:
        for key in [k for k in self._found if k[0] == check and (severity is None or k[1] == severity)]:
            del self._found[key]

    def _ordered(self) -> list[_Finding]:
        return sorted(self._found.values(), key=lambda f: (-f.severity, CHECKS.index(f.check) if f.check in CHECKS
                                                          else len(CHECKS), f.first if f.first is not None else 0))

    def message(self, f: _Finding) -> str:
        """The finding in words: where (the first row and the column) and what; for a finding
        about many rows, how many and which come first. A finding worded for the whole file
        (`whole`) says all that itself."""
        if f.whole or f.first is None:
            return f.text
        where = self.where(f.first)
        head = f"{where}, column {f.column}: {f.text}" if f.column else f"{where}: {f.text}"
        if f.count > 1 and f.rows:
            shown = ", ".join(str(r) for r in f.rows)
            more = "" if f.count <= len(f.rows) else ", ..."
            head += f" ({f.count:,} {self.unit}s in all: {shown}{more})"
        return head

    def proto(self, f: _Finding) -> dpb.QualityFinding:
        return dpb.QualityFinding(check=f.check, severity=f.severity, message=self.message(f), column=f.column,
                                  rows=f.rows, count=f.count, fix=f.fix, examples=f.examples)

    def score(self, rows: int) -> float:
        total = 0.0
        for f in self._found.values():
            share = f.share if f.share is not None else (f.count / rows if rows else 1.0)
            total += penalty(f.severity, f.check, share)
        return round(max(0.0, 100.0 - total), 2)

    def report(self, **stats) -> dpb.QualityReport:
        """The QualityReport: the findings most severe first, the checks that passed, the score."""
        ordered = self._ordered()
        found = {f.check for f in ordered}
        rows = int(stats.get("rows", 0))
        report = dpb.QualityReport(score=self.score(rows), usable=not self.has_error,
                                   findings=[self.proto(f) for f in ordered],
                                   passed=[c for c in CHECKS if c in self.ran and c not in found], **stats)
        return report
