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


def warmup() -> None:
    """Compile (or load from numba's cache) every indicator kind on a few bars."""
    import numpy as np

    from .bars import Bars

    n = 64
    x = np.linspace(100.0, 110.0, n)
    bars = Bars("WARMUP", "UTC", np.arange(n, dtype=np.int64) * 60_000_000_000, x, x + 1.0, x - 1.0, x,
                np.ones(n))
    for kind in INDICATORS.values():
        params = {name: kind.defaults.get(name, 3) for name in kind.params}
        kind.compute(params, x if kind.uses_source else None, bars)
