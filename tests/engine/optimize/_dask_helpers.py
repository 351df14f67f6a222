"""Stand-ins that Dask workers import by name in tests/engine/optimize/test_executor.py (a
module, not a test file, so that a worker process can unpickle what refers to it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.engine.optimize import sweep

LOADS = 0  # CountingContext objects unpickled in this process


@dataclass
class CountingContext(sweep.SweepContext):
    """A SweepContext that counts, per process, how many times it is unpickled (a worker
    that gets the context from the client or a peer unpickles it once)."""

    def __setstate__(self, state: dict) -> None:
        global LOADS
        LOADS += 1
        self.__dict__.update(state)


def loads() -> int:
    return LOADS


class SlowEvaluate:
    """`sweep.evaluate`, `delay` seconds slower per chunk (so a worker can be killed while
    chunks are running)."""

    def __init__(self, delay: float):
        self.delay = delay

    def __call__(self, context, strategies):
        time.sleep(self.delay)
        return sweep.evaluate(context, strategies)


class FailingEvaluate:
    """`sweep.evaluate`, raising for a chunk holding a trial whose first indicator has
    period `period`."""

    def __init__(self, period: int):
        self.period = period

    def __call__(self, context, strategies):
        if any(s.indicators[0].period == self.period for s in strategies):
            raise ValueError(f"boom: period {self.period}")
        return sweep.evaluate(context, strategies)
