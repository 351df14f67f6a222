"""Every indicator kind a strategy may name: TA-Lib's (indicators.py) plus session ones."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .indicators import INDICATORS as _TALIB_KINDS
from .indicators import IndicatorKind
from .session_indicators import opening_range

OPENING_RANGE = IndicatorKind(
    "opening_range", ("high", "low"), ("period",), False, ("high", "low", "day"),
    # Per-session, not a look-back over history: the first `period` bars of every day are
    # the range itself, so no earlier history is needed.
    lambda p: 0,
    lambda p: f"OpeningRange({p['period']})",
    lambda p, src, b: opening_range(b.high, b.low, b.day, p["period"]))

INDICATORS: Mapping[str, IndicatorKind] = MappingProxyType({**_TALIB_KINDS, OPENING_RANGE.name: OPENING_RANGE})
