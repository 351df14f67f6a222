"""Nanoseconds per Black-Scholes price inside a numba loop, as the trading kernel will call it.

    python benchmarks/pricing_bench.py [n]     # one JSON line: ns per bs_price_nb / bs_price_fast_nb call

Bars of 4 legs: each bar has its own time to expiry and spot, each leg its own strike (so nothing
is hoisted out of the loop), and the sum is returned (so nothing is dead code). The best of 7 runs
is kept: the machine may be shared.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.engine.options.pricing import (
    CALL, PUT, RISK_FREE_RATE, YEAR_MINUTES, bs_price_fast_nb, bs_price_nb, surface_iv_nb,
)

_LEGS = 4


@njit(cache=True, nogil=True)
def _loop_nb(n):
    """n calls: n / 4 bars of 4 legs; time to expiry falls by a minute each bar (1 to 3000 min)."""
    total = 0.0
    for b in range(n // _LEGS):
        t = (3000 - b % 3000) / YEAR_MINUTES
        spot = 20000.0 + (b & 1023) * 0.25
        for leg in range(_LEGS):
            strike = 19000.0 + ((b + 16 * leg) & 63) * 50.0
            total += bs_price_nb(CALL if leg & 1 else PUT, spot, strike, t, 0.15, RISK_FREE_RATE)
    return total


@njit(cache=True, nogil=True)
def _loop_fast_nb(n):
    """As _loop_nb, with sqrt(t) and exp(-r t) computed once per bar and shared by its legs."""
    total = 0.0
    for b in range(n // _LEGS):
        t = (3000 - b % 3000) / YEAR_MINUTES
        sqrt_t = math.sqrt(t)
        disc = math.exp(-RISK_FREE_RATE * t)
        spot = 20000.0 + (b & 1023) * 0.25
        for leg in range(_LEGS):
            strike = 19000.0 + ((b + 16 * leg) & 63) * 50.0
            total += bs_price_fast_nb(CALL if leg & 1 else PUT, spot, strike, sqrt_t, t, 0.15, disc)
    return total


@njit(cache=True, nogil=True)
def _loop_surface_nb(n):
    """As _loop_nb, each leg's vol from the surface and its price from bs_price_fast_nb."""
    total = 0.0
    for b in range(n // _LEGS):
        t = (3000 - b % 3000) / YEAR_MINUTES
        sqrt_t = math.sqrt(t)
        disc = math.exp(-RISK_FREE_RATE * t)
        spot = 20000.0 + (b & 1023) * 0.25
        for leg in range(_LEGS):
            strike = 19000.0 + ((b + 16 * leg) & 63) * 50.0
            sigma = surface_iv_nb(0.15, spot, strike, t)
            total += bs_price_fast_nb(CALL if leg & 1 else PUT, spot, strike, sqrt_t, t, sigma, disc)
    return total


def _best_ns(loop, n: int, repeat: int = 7) -> float:
    loop(1000)  # compile / load from cache
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        loop(n)
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


def benchmark_price_ns(n: int = 10_000_000) -> dict[str, float]:
    """ns per call of bs_price_nb, of bs_price_fast_nb, and of surface_iv_nb + bs_price_fast_nb (a
    leg priced off the surface), over n calls in a tight numba loop."""
    return {"bs_price_nb_ns": _best_ns(_loop_nb, n), "bs_price_fast_nb_ns": _best_ns(_loop_fast_nb, n),
            "surface_iv_nb_plus_fast_price_ns": _best_ns(_loop_surface_nb, n)}


if __name__ == "__main__":
    result = benchmark_price_ns(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
    # The trading kernel prices 4 legs at the close (and at the bar's extreme: 8 calls) per bar.
    result["bars_per_s_4_calls"] = 1e9 / (4 * result["bs_price_fast_nb_ns"])
    result["bars_per_s_8_calls"] = 1e9 / (8 * result["bs_price_fast_nb_ns"])
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))
