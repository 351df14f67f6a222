"""A backtest's computation on the Dask cluster, its days streamed back to the engine.

With HINDSIGHT_DASK_SCHEDULER set, the job manager hands a run's computation to a worker: the
worker builds the Backtest from the strategy and the bars (already sliced to the run's range)
and runs it, putting each batch of finished days (pickled `DayResult`s) on a
`distributed.Queue` named after the run. The engine takes them off the queue in order and
publishes them exactly as it publishes a local run's days: it still owns the event log, the
day files, the checkpoints and the stream. So one engine serves more concurrent runs than its
own cores could compute.

- A worker that dies: Dask runs the task again elsewhere (`retries`); the new attempt sends
  the run's days from the first again, and the engine skips those it has already published
  (the engine is deterministic: they are the same days).
- Cancel and shutdown: the engine sets a `distributed.Event`; the worker polls it between days
  (every CHECK_EVERY_S) and stops there, as a local run does.
- Option runs stay local (an option chain file is on the engine's disk).
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("hindsight.engine.remote")

BATCH_S = 0.05         # a worker sends what it has at least this often
BATCH_DAYS = 64        # … or when this many days are waiting
CHECK_EVERY_S = 0.2    # how often a worker asks whether the run was cancelled
POLL_S = 0.25          # how long the engine waits on the queue before it looks at the task


@dataclass
class RemoteResult:
    """What `Backtest.run` returns that the job manager reads."""
    summary: dict
    metrics: dict
    cancelled: bool


def _run_on_worker(strategy_bytes: bytes, bars, settings, symbol: str, queue_name: str, stop_name: str) -> RemoteResult:
    """The task: run the backtest here, putting its days on the queue as they finish."""
    from distributed import Event, Queue

    from hindsight.v1 import strategy_pb2
    from services.engine.core.backtest import Backtest
    from services.engine.core.spec import compile_strategy

    plan = compile_strategy(strategy_pb2.Strategy.FromString(strategy_bytes))
    bt = Backtest(plan, bars, settings, symbol)
    queue, stop = Queue(queue_name), Event(stop_name)
    pending: list = []
    sent = [time.monotonic()]
    asked = [0.0, False]

    def flush() -> None:
        if pending:
            queue.put(pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL))
            pending.clear()
        sent[0] = time.monotonic()

    def on_day(day) -> None:
        pending.append(day)
        if len(pending) >= BATCH_DAYS or time.monotonic() - sent[0] >= BATCH_S:
            flush()

    def should_stop() -> bool:
        now = time.monotonic()
        if now - asked[0] >= CHECK_EVERY_S:
            asked[0], asked[1] = now, stop.is_set()
        return asked[1]

    result = bt.run(on_day=on_day, should_stop=should_stop)
    flush()
    queue.put(b"")  # the end of this attempt
    return RemoteResult(result.summary, result.metrics, result.cancelled)


def run_remote(client, run_id: str, strategy_bytes: bytes, bars, settings, symbol: str,
               on_day: Callable, should_stop: Callable[[], bool], retries: int = 2) -> RemoteResult:
    """Run a backtest on the cluster of `client`, calling on_day(day) here for each of its days
    in order, once each; returns the run's summary, metrics and whether it was cancelled.

    The bars are scattered to the cluster; when the worker holding them dies, the task that
    needs them is cancelled by the scheduler: they are scattered again and the run resubmitted
    (up to `retries` times), its days already published skipped."""
    from concurrent.futures import CancelledError

    from distributed import Event, KilledWorker, Queue

    name = f"hindsight-backtest-{run_id}-{uuid.uuid4().hex[:8]}"
    queue, stop = Queue(name, client=client), Event(name + "-stop", client=client)
    published = [0]
    try:
        for attempt in range(retries + 1):
            bars_future = client.scatter(bars, hash=False)
            future = client.submit(_run_on_worker, strategy_bytes, bars_future, settings, symbol, name,
                                   name + "-stop", key=f"{name}-{attempt}", retries=retries, pure=False)
            try:
                _follow(queue, stop, future, on_day, should_stop, published)
                return future.result()
            except (CancelledError, KilledWorker):
                if attempt == retries:
                    raise
                log.warning("backtest %s: its worker or its data was lost; running it again from day %d",
                            run_id, published[0] + 1)
            finally:
                future.cancel()
                client.cancel(bars_future)
        raise AssertionError("unreachable")
    finally:
        try:
            queue.close()
            stop.clear()
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass


def _follow(queue, stop, future, on_day: Callable, should_stop: Callable[[], bool], published: list[int]) -> None:
    """Take days off the queue until the task is done and the queue empty; each day once
    (published[0]: the last day handed on, across attempts)."""
    while True:
        if should_stop() and not stop.is_set():
            stop.set()
        try:
            data = queue.get(timeout=POLL_S)
        except TimeoutError:
            if future.done() and queue.qsize() == 0:
                return
            continue
        if not data:  # an attempt ended; one run again may still be sending
            if future.done() and queue.qsize() == 0:
                return
            continue
        for day in pickle.loads(data):
            if day.day_number > published[0]:  # an attempt run again resends the days already published
                on_day(day)
                published[0] = day.day_number
