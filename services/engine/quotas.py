"""Per-user quotas checked before a run is accepted, and what each user uses of them.

Every limit is an `EngineSettings` field (0: unlimited). A refusal is `QuotaExceeded`: the
servicer turns it into RESOURCE_EXHAUSTED with ErrorInfo (reason = the quota's name) and, when
waiting helps, RetryInfo (the gateway's 429 + Retry-After).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from services.engine.core.spec import StrategyPlan
from services.engine.settings import EngineSettings

# What the memory estimate counts per bar (bytes): time, OHLCV and the kernel's arrays; each
# indicator's output and its temporaries; each condition's boolean row and its temporaries.
BASE_BYTES_PER_BAR = 64
INDICATOR_BYTES_PER_BAR = 16
CONDITION_BYTES_PER_BAR = 9
LEG_BYTES_PER_BAR = 32


@dataclass(frozen=True)
class QuotaExceeded(Exception):
    quota: str
    message: str
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return self.message


class StartRate:
    """A token bucket per user: `per_minute` starts, refilled evenly."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # user → (tokens, at)
        self._lock = threading.Lock()

    def take(self, user: str, now: float | None = None) -> float | None:
        """Take one start; None when allowed, else the seconds until one is."""
        if self.capacity <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(user, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.refill)
            if tokens < 1.0:
                self._buckets[user] = (tokens, now)
                return (1.0 - tokens) / self.refill
            self._buckets[user] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # full buckets carry nothing: forget them
                self._buckets = {u: b for u, b in self._buckets.items() if b[0] < self.capacity}
            return None

    def used(self, user: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(user, (self.capacity, now))
        return math.ceil(self.capacity - min(self.capacity, tokens + (now - at) * self.refill) - 1e-9)


def estimate_run_bytes(plan: StrategyPlan, bars: int) -> int:
    """The arrays a run builds, roughly: what `max_run_memory_bytes` is compared with."""
    legs = sum(len(e.legs or ()) for e in plan.entries)
    per_bar = (BASE_BYTES_PER_BAR + INDICATOR_BYTES_PER_BAR * len(plan.indicators)
               + CONDITION_BYTES_PER_BAR * (len(plan.entries) + len(plan.exits)) + LEG_BYTES_PER_BAR * legs)
    return int(bars) * per_bar


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


class Quotas:
    def __init__(self, settings: EngineSettings, store, strategies=None) -> None:
        """`strategies`: the saved strategies (a StrategyStore), counted for GetCaller."""
        self.settings, self.store, self.strategies = settings, store, strategies
        self.rate = StartRate(settings.starts_per_minute)
        # Bytes of a user's uploaded datasets (set by the DatasetService): they count toward
        # stored_bytes with the user's runs.
        self.dataset_bytes = None

    def stored_bytes(self, user: str) -> int:
        """What `user` stores: their runs' files and their uploaded datasets."""
        used = self.store.stored_bytes_by_caller(user)
        return used + (self.dataset_bytes(user) if self.dataset_bytes is not None else 0)

    def _counts(self, user: str) -> tuple[int, int]:
        active = self.store.count_running_by_caller(user, include_queued=True)
        running = self.store.count_running_by_caller(user)
        return running, active - running

    def check_start(self, user: str) -> None:
        """Before a run is created (not for an idempotent repeat of one)."""
        s = self.settings
        if s.max_stored_bytes_per_user:
            used = self.stored_bytes(user)
            if used >= s.max_stored_bytes_per_user:
                raise QuotaExceeded("stored_bytes", f"your backtests and datasets take {mib(used)} of your "
                                    f"{mib(s.max_stored_bytes_per_user)}: delete some (DeleteBacktest, DeleteDataset) "
                                    "or wait for backtests to expire")
        if s.max_queued_per_user:
            _running, queued = self._counts(user)
            if queued >= s.max_queued_per_user:
                raise QuotaExceeded("queued_backtests", f"you have {queued} backtests waiting to start (limit "
                                    f"{s.max_queued_per_user}): retry when some have started", retry_after_s=5.0)
        wait = self.rate.take(user)
        if wait is not None:
            raise QuotaExceeded("starts_per_minute", f"more than {s.starts_per_minute} starts in a minute: "
                                f"retry in {math.ceil(wait)} s", retry_after_s=float(math.ceil(wait)))

    def usage(self, user: str) -> list[tuple[str, int, int]]:
        """(quota, limit, used) for GetCaller."""
        s = self.settings
        running, queued = self._counts(user)
        saved = ([("saved_strategies", s.max_strategies_per_user, self.strategies.count(user))]
                 if self.strategies is not None else [])
        return [
            ("running_backtests", s.max_running_per_caller, running),
            ("queued_backtests", s.max_queued_per_user, queued),
            ("starts_per_minute", s.starts_per_minute, self.rate.used(user)),
            ("stored_bytes", s.max_stored_bytes_per_user, self.stored_bytes(user)),
            ("run_memory_bytes", s.max_run_memory_bytes, 0),
            *saved,
        ]


__all__ = ["QuotaExceeded", "Quotas", "StartRate", "estimate_run_bytes"]
