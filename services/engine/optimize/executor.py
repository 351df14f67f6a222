"""Where a sweep's trials are computed: one small interface, two engines.

The optimizer hands an `Executor` a `SweepContext` once (bars and settings every trial
shares) and then chunks of trials; it gets each chunk's results back as the chunk finishes,
in any order. Nothing else of the optimizer knows where the work ran, so another engine
(GPU, Ray) is one more class here.

- `EmbeddedExecutor` (the default): in this process, nothing to start.
- `DaskExecutor`: an existing `dask.distributed` cluster (HINDSIGHT_DASK_SCHEDULER).

`make_executor(scheduler)` / `executor_from_env()` pick one. `distributed` is imported only
when a `DaskExecutor` is made, so the embedded default never loads it.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError  # what a cancelled distributed.Future raises
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client, Future

SCHEDULER_ENV = "HINDSIGHT_DASK_SCHEDULER"


class ExecutorError(RuntimeError):
    """The executor could not do its part (no cluster, a chunk that cannot be run)."""


class Session(Protocol):
    """One sweep's use of an executor: the context is already where the work runs."""

    def map(self, chunks: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        """(key, trials) in → (key, results) out as each chunk finishes, in any order; every
        chunk's results exactly once (a chunk lost with a worker is run again)."""
        ...

    def close(self) -> None: ...


class Executor(Protocol):
    def session(self, context: Any) -> Session: ...

    def close(self) -> None: ...


class _EmbeddedSession:
    def __init__(self, context: Any):
        self.context = context

    def map(self, chunks: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        from .sweep import evaluate

        for key, trials in chunks:
            yield key, evaluate(self.context, trials)

    def close(self) -> None:
        self.context = None

    def __enter__(self) -> _EmbeddedSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EmbeddedExecutor:
    """Trials computed in this process (the sweep kernel uses every core itself)."""

    def session(self, context: Any) -> _EmbeddedSession:
        return _EmbeddedSession(context)

    def close(self) -> None:
        pass

    def __enter__(self) -> EmbeddedExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- Dask ------------------------------------------------------------------------------------


class _Closed(Exception):
    """The session was closed (maybe from another thread) while `map` was submitting."""


class _Chunk:
    __slots__ = ("attempts", "future", "key", "trials")

    def __init__(self, key: Any, trials: list):
        self.key = key
        self.trials = trials
        self.future: Future | None = None
        self.attempts = 0


class DaskSession:
    """A sweep on a Dask cluster: the context scattered once (to every worker), chunks
    submitted as tasks depending on it, a bounded number in flight.

    - A worker lost mid-sweep: the scheduler runs its tasks again elsewhere (up to its
      `distributed.scheduler.allowed-failures`, then `KilledWorker` is raised here). If the
      context itself is lost (every worker that held it died), the scheduler cancels the
      chunks waiting on it: the context is scattered again and those chunks resubmitted,
      each at most `max_resubmits` times.
    - Every chunk's results are yielded exactly once (a chunk no longer outstanding is
      ignored if Dask reports it again).
    - An exception raised by `evaluate` propagates out of `map` (after `retries` more tries);
      the chunks still outstanding are cancelled.
    - `close()` cancels what is outstanding and releases the context; an iteration of `map`
      in progress (in this or another thread) then ends.

    `map` reads `chunks` ahead of the results (up to the in-flight bound). The context is
    sent from here once; `broadcast=True` then gives every worker a copy, but the scheduler's
    Active Memory Manager (on by default) drops the copies no pending task needs: a worker
    keeps its copy (and the kernel's caches on it) while the sweep keeps it busy, and after
    an idle spell of a few seconds gets it again from a peer when it next needs it.
    """

    def __init__(self, client: Client, context: Any, *, retries: int = 1,
                 max_in_flight: int | None = None, max_resubmits: int = 3,
                 scatter_timeout: float = 60.0):
        self._client = client
        self._context = context              # kept to scatter it again if the cluster loses it
        self._retries = retries
        self._max_in_flight = max_in_flight
        self._max_resubmits = max_resubmits
        self._scatter_timeout = scatter_timeout
        self._token = uuid.uuid4().hex[:16]
        self._seq = 0
        self._lock = threading.Lock()
        self._live: dict[str, _Chunk] = {}   # dask key → outstanding chunk (every map of this session)
        self._closed = False
        self._nthreads = 0
        self._nthreads_at = 0.0
        self.scatters = 0                    # how many times the context was sent (1 unless lost)
        self._context_future: Future | None = None
        self._context_future = self._scatter()

    # -- the context

    def _scatter(self) -> Future:
        # hash=False: a key of its own, so two sweeps never share (or release) each other's data.
        # broadcast=True: every worker gets its copy now, from the scheduler and its peers.
        try:
            future = self._client.scatter(self._context, broadcast=True, hash=False,
                                          timeout=self._scatter_timeout)
        except TimeoutError as exc:
            raise ExecutorError(f"the sweep's context could not be sent to a Dask worker within "
                                f"{self._scatter_timeout:g} s (no workers?): {exc}") from exc
        self.scatters += 1
        return future

    def _context_ready(self) -> Future:
        """The context's future, scattered again if the cluster lost it."""
        with self._lock:
            if self._closed:
                raise _Closed
            current = self._context_future
        if current is not None and current.status == "finished":
            return current
        fresh = self._scatter()
        with self._lock:
            if self._closed:
                fresh.release()
                raise _Closed
            self._context_future = fresh
        if current is not None:
            current.release()
        return fresh

    # -- chunks

    def _limit(self) -> int:
        if self._max_in_flight:
            return self._max_in_flight
        now = time.monotonic()
        if now - self._nthreads_at > 2.0:  # follows a cluster that grows or shrinks
            self._nthreads = sum(self._client.nthreads().values())
            self._nthreads_at = now
        return max(2, 2 * self._nthreads)

    def _submit(self, evaluate, chunk: _Chunk) -> Future:
        context = self._context_ready()
        with self._lock:
            if self._closed:
                raise _Closed
            self._seq += 1
            key = f"hindsight-chunk-{self._token}-{self._seq}"
        future = self._client.submit(evaluate, context, chunk.trials, key=key,
                                     retries=self._retries, pure=False)
        chunk.future = future
        with self._lock:
            if self._closed:  # closed meanwhile (another thread): don't leave it running
                self._client.cancel([future], reason="hindsight sweep closed")
                raise _Closed
            self._live[key] = chunk
        return future

    def map(self, chunks: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        if self._closed:
            raise ExecutorError("the sweep session is closed")
        from . import sweep

        # Looked up now and pickled by reference: workers import the same function.
        return self._map(sweep.evaluate, iter(chunks))

    def _map(self, evaluate, source: Iterator[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        from distributed import as_completed

        mine: dict[str, _Chunk] = {}          # this map's outstanding chunks
        done = as_completed(loop=self._client.loop)
        exhausted = False

        def fill() -> None:
            nonlocal exhausted
            while not exhausted and len(mine) < self._limit():
                try:
                    key, trials = next(source)
                except StopIteration:
                    exhausted = True
                    return
                chunk = _Chunk(key, list(trials))
                future = self._submit(evaluate, chunk)
                mine[future.key] = chunk
                done.add(future)

        def resubmit(chunk: _Chunk, why: BaseException) -> None:
            chunk.attempts += 1
            if chunk.attempts > self._max_resubmits:
                raise ExecutorError(f"chunk {chunk.key!r} was cancelled by the cluster "
                                    f"{chunk.attempts} times (last: {why})") from why
            future = self._submit(evaluate, chunk)
            mine[future.key] = chunk
            done.add(future)

        try:
            fill()
            while mine:
                if self._closed:
                    return
                future = next(done)
                chunk = mine.pop(future.key, None)
                if chunk is None or chunk.future is not future:
                    continue                  # reported again, or a superseded submission
                with self._lock:
                    self._live.pop(future.key, None)
                if self._closed:
                    return
                if future.status == "error":
                    future.result()           # raises the task's exception, with its traceback
                try:
                    results = future.result()
                except CancelledError as exc:  # by the cluster: its context was lost
                    if self._closed:
                        return
                    future.release()
                    resubmit(chunk, exc)
                    continue
                future.release()
                fill()                        # keep the cluster busy while the caller works
                yield chunk.key, results
                if self._closed:
                    return
                fill()
        except _Closed:
            return
        finally:
            self._cancel(list(mine))
            done.clear()

    def _cancel(self, keys: list[str]) -> None:
        futures = []
        with self._lock:
            for key in keys:
                chunk = self._live.pop(key, None)
                if chunk is not None and chunk.future is not None:
                    futures.append(chunk.future)
        if futures and self._client.status == "running":
            self._client.cancel(futures, reason="hindsight sweep closed")

    def close(self) -> None:
        """Cancel what is outstanding and release the context (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            context, self._context_future = self._context_future, None
        self._cancel(list(self._live))
        if context is not None and self._client.status == "running":
            self._client.cancel([context], reason="hindsight sweep closed")
        self._context = None

    def __enter__(self) -> DaskSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DaskExecutor:
    """Trials computed on an existing Dask cluster: `address` (tcp://host:port) is connected
    to within `connect_timeout` seconds, or `client` (a `distributed.Client`, left open by
    `close()`) is used.

    retries: extra tries of a chunk whose `evaluate` raised. max_in_flight: chunks submitted
    and not yet returned (default: twice the cluster's worker threads, so a huge sweep
    neither floods the scheduler nor starves it). Worker loss is the scheduler's business
    (`distributed.scheduler.allowed-failures`).
    """

    def __init__(self, address: str | None = None, *, client: Client | None = None,
                 connect_timeout: float = 10.0, retries: int = 1,
                 max_in_flight: int | None = None):
        if (address is None) == (client is None):
            raise ValueError("DaskExecutor needs a scheduler address or a client (one of them)")
        self.retries = retries
        self.max_in_flight = max_in_flight
        self._own = client is None
        if client is None:
            client = _connect(address, connect_timeout)
        self.client = client

    def session(self, context: Any) -> DaskSession:
        return DaskSession(self.client, context, retries=self.retries,
                           max_in_flight=self.max_in_flight)

    def close(self) -> None:
        """Close the client if this executor opened it."""
        if self._own and self.client.status not in ("closing", "closed"):
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(address: str, timeout: float) -> Client:
    from distributed import Client

    _check_address(address, timeout)
    try:
        # set_as_default=False: the engine's own dask calls (if any) keep their scheduler.
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        # The half-made Client is held by the traceback's frames: let it go (and close) now,
        # while its event loop runs, rather than at some later garbage collection.
        traceback.clear_frames(exc.__traceback__)
        raise ExecutorError(f"cannot connect to the Dask scheduler at {address!r} within "
                            f"{timeout:g} s: {exc}") from exc


def _check_address(address: str, timeout: float) -> None:
    """What would make `Client(address)` fail slowly or hang, found first: a malformed address,
    a TCP port nobody listens on (the Client retries until its timeout), something there that
    is not a Dask scheduler (the Client waits for its handshake for ever)."""
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)   # tcp:// when no scheme is given
        get_backend(scheme)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
        if not host:
            raise ValueError("no host")
    except ValueError as exc:
        raise ExecutorError(f"{address!r} is not a Dask scheduler address "
                            f"(tcp://host:port): {exc}") from exc
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(f"cannot connect to the Dask scheduler at {address!r} within "
                            f"{timeout:g} s: {exc}") from exc
    if scheme == "tcp":
        _handshake(address, timeout)


def _handshake(address: str, timeout: float) -> None:
    """Open and close one Dask comm to `address`, bounded by `timeout` (in a thread of its
    own: the caller may be running an event loop)."""
    import asyncio

    from distributed.comm import connect

    async def probe() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(probe(), timeout))
        except BaseException as exc:  # reported below, in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="hindsight-dask-probe", daemon=True)
    thread.start()
    thread.join()
    if failed:
        exc = failed[0]
        detail = f": {type(exc).__name__}: {exc}" if str(exc) else " (is it a Dask scheduler?)"
        raise ExecutorError(f"no Dask scheduler answered at {address!r} within "
                            f"{timeout:g} s{detail}") from exc


def make_executor(scheduler: str | None, *, connect_timeout: float = 10.0) -> Executor:
    """`scheduler` (tcp://host:port, as HINDSIGHT_DASK_SCHEDULER gives it) → a `DaskExecutor`
    on that cluster; None or "" → an `EmbeddedExecutor` (nothing started or imported)."""
    if not scheduler:
        return EmbeddedExecutor()
    try:
        return DaskExecutor(scheduler, connect_timeout=connect_timeout)
    except ExecutorError as exc:
        raise ExecutorError(f"{SCHEDULER_ENV}={scheduler}: {exc}") from exc.__cause__


def executor_from_env(*, connect_timeout: float = 10.0) -> Executor:
    """The executor HINDSIGHT_DASK_SCHEDULER asks for (unset: embedded)."""
    from services.engine.settings import EngineSettings

    return make_executor(EngineSettings.from_env().dask_scheduler or None,
                         connect_timeout=connect_timeout)
