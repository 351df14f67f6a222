"""Where a sweep's trials are computed: one small interface, two engines.

The optimizer hands an `Executor` a `SweepContext` once (bars and settings every trial
shares) and then chunks of trials; it gets each chunk's results back as the chunk finishes,
in any order. Nothing else of the optimizer knows where the work ran, so another engine
(GPU, Ray) is one more class here.

- `EmbeddedExecutor` (the default): in this process, nothing to start.
- `DaskExecutor`: an existing `dask.distributed` cluster (HINDSIGHT_DASK_SCHEDULER).

(Placeholder: being built; the embedded engine below is the contract's reference.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol


class Session(Protocol):
    """One sweep's use of an executor: the context is already where the work runs."""

    def map(self, chunks: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        """(key, trials) in → (key, results) out as each chunk finishes, in any order; every
        chunk's results exactly once (a chunk lost with a worker is run again)."""
        ...

    def close(self) -> None: ...


class Executor(Protocol):
    def session(self, context: Any) -> Session: ...


class _EmbeddedSession:
    def __init__(self, context: Any):
        self.context = context

    def map(self, chunks: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        from .sweep import evaluate

        for key, trials in chunks:
            yield key, evaluate(self.context, trials)

    def close(self) -> None:
        self.context = None


class EmbeddedExecutor:
    """Trials computed in this process (the sweep kernel uses every core itself)."""

    def session(self, context: Any) -> _EmbeddedSession:
        return _EmbeddedSession(context)
