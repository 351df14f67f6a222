"""Backtest jobs: a bounded scheduler, the worker that runs one backtest, and its event log.

Threads, not processes: the numba kernel releases the GIL, and a thread shares the catalog's
memory-mapped data. Each job has one *publisher* thread stage: the engine computes day d+1
while day d's files are written and its events appended, in order. An event is appended to
the log before the hub wakes any reader, so every reader sees the same sequence.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from google.protobuf import json_format, timestamp_pb2

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.engine import events as ev
from services.engine.core.backtest import Backtest, DayResult, RunError, RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import StrategyPlan
from services.engine.settings import EngineSettings
from services.engine.wire import varint
from storage import (CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, BacktestRecord, LocalStore, LogClosed,
                     NotFound)
from storage.atomic import dumps_json

log = logging.getLogger("hindsight.engine.jobs")

STATUS_ENUM = {QUEUED: pb.BACKTEST_STATUS_QUEUED, RUNNING: pb.BACKTEST_STATUS_RUNNING,
               COMPLETED: pb.BACKTEST_STATUS_COMPLETED, FAILED: pb.BACKTEST_STATUS_FAILED,
               CANCELLED: pb.BACKTEST_STATUS_CANCELLED}
STATUS_NAME = {v: k for k, v in STATUS_ENUM.items()}
# Threads writing day files, shared by all running backtests.
DAY_WRITERS = 2
# BacktestEvent.event_id: field 1, wire type 0 (varint).
_EVENT_ID_TAG = b"\x08"
# Days a backtest may compute ahead of what it has published.
MAX_BACKLOG_DAYS = 16


class QueueFull(Exception):
    """Too many queued runs; the caller should retry later."""


def new_backtest_id() -> str:
    now = datetime.now(timezone.utc)
    return f"bt_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


@dataclass
class Job:
    backtest_id: str
    caller: str
    strategy_id: str
    config: pb.BacktestConfig
    plan: StrategyPlan
    settings: RunSettings
    total_days: int
    created_at: float
    status: str = QUEUED
    cancel: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None
    finished_at: float | None = None
    completed_days: int = 0
    current_date: str = ""
    daily: list[dict] = field(default_factory=list)
    summary: dict | None = None
    metrics: dict | None = None
    error_code: str = ""
    error_message: str = ""
    terminal_id: int | None = None
    last_index_update: float = 0.0

    def progress(self) -> pb.Progress:
        p = pb.Progress(current_date=self.current_date, completed_days=self.completed_days,
                        total_days=self.total_days,
                        percentage=round(100.0 * self.completed_days / self.total_days, 2) if self.total_days else 0.0)
        if self.started_at and self.completed_days and self.status == RUNNING:
            elapsed = time.time() - self.started_at
            eta = self.started_at + elapsed / self.completed_days * self.total_days
            p.estimated_completion.FromSeconds(int(eta))
            p.estimated_completion.nanos = int((eta % 1) * 1e9)
        return p


class Publisher:
    """Writes a job's day files and appends its events, in submission order, on one thread."""

    def __init__(self, store: LocalStore, backtest_id: str, notify: Callable[[], None], fsync: bool):
        self.store = store
        self.backtest_id = backtest_id
        self.log = store.event_log(backtest_id)
        self._notify = notify
        self._fsync = fsync
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pub-{backtest_id[-8:]}")
        self._pending: deque = deque()
        self.error: BaseException | None = None

    def append(self, events: list[pb.BacktestEvent], sync: bool = False) -> int:
        """Stamp ids and times, append durably-to-the-OS, then wake readers. Returns the last id.
        The events carry only their kind (event_id, backtest_id and emitted_at unset)."""
        return self.append_bodies([e.SerializeToString() for e in events], sync)

    def append_bodies(self, bodies: list[bytes], sync: bool = False) -> int:
        """append() of events already serialized (each a BacktestEvent with only its kind set).

        The log's bytes are the event's id, this backtest's id and the time (fields 1-3,
        serialized here once per batch) followed by the body (a field numbered 10 and up):
        the same bytes as serializing the whole message, without re-encoding the body.
        """
        if not bodies:
            return self.log.last_id
        next_id = self.log.last_id + 1
        now = time.time()
        stamp = pb.BacktestEvent(backtest_id=self.backtest_id, emitted_at=timestamp_pb2.Timestamp(
            seconds=int(now), nanos=int((now % 1) * 1e9))).SerializeToString()
        payloads = [_EVENT_ID_TAG + varint(next_id + k) + stamp + body for k, body in enumerate(bodies)]
        last = self.log.append_batch(payloads)
        if sync and self._fsync:
            self.log.sync()
        self._notify()
        return last

    def submit(self, fn: Callable[[], None]) -> None:
        fut = self._pool.submit(self._guard, fn)
        self._pending.append(fut)
        # Bound the backlog so a fast engine never holds many days of results in memory.
        while len(self._pending) > MAX_BACKLOG_DAYS:
            self._pending.popleft().result()

    def _guard(self, fn: Callable[[], None]) -> None:
        if self.error is not None:
            return
        try:
            fn()
        except BaseException as exc:  # reported by drain(); later steps are skipped
            self.error = exc

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class JobManager:
    """Accepts, schedules, runs, cancels and forgets backtests."""

    def __init__(self, store: LocalStore, catalog: Catalog, settings: EngineSettings,
                 notify: Callable[[str], None]):
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self._notify = notify
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._running: dict[str, int] = {}      # caller → running count
        self._n_running = 0
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="backtest")
        self._writers = ThreadPoolExecutor(max_workers=DAY_WRITERS, thread_name_prefix="dayfiles")
        self._closed = False

    # --- queries -------------------------------------------------------------------------
    def job(self, backtest_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(backtest_id)

    def terminal_id(self, backtest_id: str) -> int | None:
        """Id of the terminal event once it is in the log, else None."""
        job = self.job(backtest_id)
        if job is not None:
            return job.terminal_id
        rec = self.store.get(backtest_id)
        if rec is None:
            return 0
        if rec.status in (COMPLETED, FAILED, CANCELLED):
            return rec.last_event_id
        return None

    # --- start ---------------------------------------------------------------------------
    def submit(self, *, caller: str, request_id: str, strategy_id: str, config: pb.BacktestConfig,
               plan: StrategyPlan, settings: RunSettings, total_days: int) -> tuple[str, bool]:
        """Queue a backtest; returns (backtest_id, created). Idempotent on (caller, request_id)."""
        with self._lock:
            if self._closed:
                raise QueueFull("the engine is shutting down")
            if request_id:
                existing = self.store.find_by_request(caller, request_id)
                if existing is not None:
                    return existing.backtest_id, False
            if len(self._queue) >= self.settings.max_queued:
                raise QueueFull(f"{len(self._queue)} backtests are already queued (limit "
                                f"{self.settings.max_queued}); retry when some have finished")
            bid = new_backtest_id()
            now = time.time()
            job = Job(bid, caller, strategy_id, config, plan, settings, total_days, now)
            self.store.create(BacktestRecord(
                backtest_id=bid, strategy_id=strategy_id, created_at=now, status=QUEUED, caller=caller,
                request_id=request_id, symbol=config.symbol, start_date=config.start_date,
                end_date=config.end_date, total_days=total_days,
                config_json=json_format.MessageToJson(config, preserving_proto_field_name=True, indent=None)))
            self.store.event_log(bid)  # the log exists from the start: readers may attach at once
            self._jobs[bid] = job
            self._queue.append(bid)
            self._dispatch()
            return bid, True

    def _dispatch(self) -> None:
        """Start queued jobs while there is room, honouring the per-caller limit (in order)."""
        with self._lock:
            if self._closed:
                return
            skipped: deque[str] = deque()
            while self._queue and self._n_running < self.settings.max_concurrent:
                bid = self._queue.popleft()
                job = self._jobs.get(bid)
                if job is None or job.status != QUEUED:
                    continue
                if self._running.get(job.caller, 0) >= self.settings.max_running_per_caller:
                    skipped.append(bid)
                    continue
                self._running[job.caller] = self._running.get(job.caller, 0) + 1
                self._n_running += 1
                job.status = RUNNING
                self._pool.submit(self._run, job)
            skipped.extend(self._queue)
            self._queue = skipped

    def _release(self, job: Job) -> None:
        with self._lock:
            self._running[job.caller] -= 1
            self._n_running -= 1
        self._dispatch()

    # --- cancel / delete -----------------------------------------------------------------
    def cancel(self, backtest_id: str, reason: str = "cancelled by request") -> bool:
        """Request cancellation; False when the backtest has already ended."""
        with self._lock:
            job = self._jobs.get(backtest_id)
            if job is None or job.terminal_id is not None:
                return False
            job.cancel.set()
            job.error_message = reason
            if job.status == QUEUED:
                try:
                    self._queue.remove(backtest_id)
                except ValueError:
                    pass
                self._finish_queued_cancel(job, reason)
            return True

    def _finish_queued_cancel(self, job: Job, reason: str) -> None:
        pub = Publisher(self.store, job.backtest_id, lambda: self._notify(job.backtest_id), self.settings.fsync)
        try:
            job.status = CANCELLED
            job.finished_at = time.time()
            job.terminal_id = pub.append([pb.BacktestEvent(backtest_cancelled=pb.BacktestCancelled(reason=reason))],
                                         sync=True)
            self._persist_final(job)
        finally:
            pub.close()
        self._notify(job.backtest_id)

    def wait(self, backtest_id: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(backtest_id)
            if job is None or job.terminal_id is not None:
                return True
            time.sleep(0.005)
        return False

    def forget(self, backtest_id: str) -> None:
        with self._lock:
            self._jobs.pop(backtest_id, None)

    # --- the worker ----------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        bid = job.backtest_id
        pub = Publisher(self.store, bid, lambda: self._notify(bid), self.settings.fsync)
        try:
            self._run_job(job, pub)
        except LogClosed:
            log.info("backtest %s was deleted while running", bid)
        except BaseException as exc:  # noqa: BLE001 - any failure must end the stream
            log.exception("backtest %s failed", bid)
            self._fail(job, pub, "INTERNAL", f"{type(exc).__name__}: {exc}")
        finally:
            pub.close()
            self._release(job)
            self._notify(bid)

    def _fail(self, job: Job, pub: Publisher, code: str, message: str) -> None:
        try:
            pub.drain()
        except BaseException:  # noqa: BLE001 - already failing; the first error is reported
            pass
        job.status, job.error_code, job.error_message = FAILED, code, message
        job.finished_at = time.time()
        try:
            job.terminal_id = pub.append([pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
                error_code=code, error_message=message, date=job.current_date))], sync=True)
            self._persist_final(job)
        except (LogClosed, NotFound):
            pass

    def _run_job(self, job: Job, pub: Publisher) -> None:
        bid = job.backtest_id
        if job.cancel.is_set():
            return
        job.started_at = time.time()
        self.store.update(bid, status=RUNNING, started_at=job.started_at)
        cfg = job.config
        started = pb.BacktestStarted(config=cfg, total_days=job.total_days)
        pub.append([pb.BacktestEvent(backtest_started=started)])
        try:
            bars = self.catalog.load(cfg.symbol, None, job.settings.end)
            source = None
            if job.plan.has_legs:
                from services.engine.options.runner import source_for

                source = source_for(self.catalog, cfg.symbol)
            bt = Backtest(job.plan, bars, job.settings, symbol=cfg.symbol, options=source)
        except (RunError, ValueError, KeyError) as exc:
            self._fail(job, pub, "DATA_UNAVAILABLE", str(exc))
            return
        job.total_days = bt.total_days
        totals = ev.RunningTotals(bt.initial_capital)

        written: list[str] = []

        def write_files(day: DayResult, trades_daily: bytes, diagnostics: bytes) -> int:
            # Atomic now, durable at the end (sync_days): an fsync per file would cost more
            # than the backtest. A power cut mid-run leaves the run unfinished in the index,
            # and the next engine closes it as failed.
            if pub.error is not None:
                return 0  # the run has already failed: its later days are never published
            return self.store.write_day(bid, day.date, trades_daily, diagnostics, fsync=False)

        def publish_day(day: DayResult, files: Future[int]) -> None:
            size = files.result()  # a day's files exist before any event announces the day
            written.append(day.date)
            pub.append_bodies(ev.day_event_bodies(day, totals, has_detail_data=True), sync=False)
            job.daily.append({"date": day.date, "trades": len(day.trades), "pnl": day.summary["total_pnl"],
                              "equity": f"{day.equity:.2f}", "has_data": True,
                              "file_size_kb": round(size / 1024.0, 2),
                              "winning_trades": day.summary["winning_trades"],
                              "losing_trades": day.summary["losing_trades"]})
            job.completed_days = day.day_number
            job.current_date = day.date
            now = time.time()
            if now - job.last_index_update > 0.5:
                job.last_index_update = now
                self.store.update(bid, completed_days=job.completed_days, current_date=job.current_date,
                                  last_event_id=pub.log.last_id)

        def on_day(day: DayResult) -> None:
            # Files for several days are written at once (gzip and the file system calls let
            # go of the GIL); the publisher appends each day's events in order, once its files
            # are complete.
            # Encoded here (holds the GIL; the writers' gzip and file calls do not).
            files = self._writers.submit(write_files, day, dumps_json(day.trades_daily()),
                                         dumps_json(day.diagnostics_export()))
            pub.submit(lambda: publish_day(day, files))

        # Stop computing once publishing has failed (a day's files could not be written, say):
        # drain() then raises that error and the run ends with backtest_failed.
        result = bt.run(on_day=on_day, should_stop=lambda: job.cancel.is_set() or pub.error is not None)
        pub.drain()
        self.store.sync_days(bid, written)
        job.summary, job.metrics = result.summary, result.metrics
        job.finished_at = time.time()
        if result.cancelled:
            job.status = CANCELLED
            job.terminal_id = pub.append([pb.BacktestEvent(backtest_cancelled=pb.BacktestCancelled(
                reason=job.error_message or "cancelled", last_completed_date=job.current_date))], sync=True)
        else:
            job.status = COMPLETED
            done = pb.BacktestCompleted(backtest_id=bid,
                                        overall_summary=json_format.ParseDict(result.summary, results_pb2.OverallSummary()),
                                        metrics=metrics_message(result.metrics))
            job.terminal_id = pub.append([pb.BacktestEvent(backtest_completed=done)], sync=True)
        self._persist_final(job)

    def _persist_final(self, job: Job) -> None:
        """metadata.json and the index row, after the terminal event is in the log."""
        meta = {
            "backtest_id": job.backtest_id,
            "strategy_id": job.strategy_id,
            "status": job.status,
            "config": json_format.MessageToDict(job.config, preserving_proto_field_name=True),
            "total_days": job.total_days,
            "overall_summary": job.summary,
            "metrics": _finite(job.metrics) if job.metrics else None,
            "daily_summaries": job.daily,
            "error_code": job.error_code,
            "error_message": job.error_message,
        }
        self.store.write_metadata(job.backtest_id, meta)
        self.store.update(job.backtest_id, status=job.status, finished_at=job.finished_at,
                          completed_days=job.completed_days, current_date=job.current_date,
                          last_event_id=job.terminal_id or 0, error_code=job.error_code,
                          error_message=job.error_message,
                          summary_json=json.dumps(job.summary) if job.summary else None)

    # --- lifecycle -----------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Close backtests a dead predecessor left queued or running, so no stream hangs."""
        closed = []
        for rec in self.store.unfinished():
            bid = rec.backtest_id
            try:
                pub = Publisher(self.store, bid, lambda b=bid: self._notify(b), self.settings.fsync)
                try:
                    last = pub.append([pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
                        error_code="ENGINE_RESTARTED",
                        error_message="the engine stopped while this backtest was "
                                      f"{rec.status}; start it again",
                        date=rec.current_date or ""))], sync=True)
                finally:
                    pub.close()
                self.store.update(bid, status=FAILED, finished_at=time.time(), last_event_id=last,
                                  error_code="ENGINE_RESTARTED",
                                  error_message=f"the engine stopped while this backtest was {rec.status}")
                closed.append(bid)
            except Exception:  # noqa: BLE001 - one broken directory must not stop start-up
                log.exception("could not close abandoned backtest %s", bid)
        return closed

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            for bid in list(self._jobs):
                self._jobs[bid].cancel.set()
        for bid in queued:
            job = self.job(bid)
            if job is not None and job.status == QUEUED:
                self._finish_queued_cancel(job, "the engine is shutting down")
        self._pool.shutdown(wait=wait)
        self._writers.shutdown(wait=wait)


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def metrics_message(metrics: dict) -> "pb.results__pb2.Metrics":  # type: ignore[name-defined]
    from hindsight.v1 import results_pb2

    m = results_pb2.Metrics()
    for k, v in metrics.items():
        if k in results_pb2.Metrics.DESCRIPTOR.fields_by_name and v is not None:
            setattr(m, k, v)
    return m

