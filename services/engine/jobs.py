"""Backtest jobs: a bounded scheduler, the worker that runs one backtest, and its event log.

Threads, not processes: the numba kernel releases the GIL, and a thread shares the catalog's
memory-mapped data. Each job has one *publisher* thread stage: the engine computes day d+1
while day d's files are written and its events appended, in order. An event is appended to
the log before the hub wakes any reader, so every reader sees the same sequence.

Every run ends in `_end` (completed, failed, cancelled, closed at start-up or repaired): the
terminal event durably in the log, metadata.json, the index's final row, readers woken. The
publisher checkpoints a run at day boundaries (checkpoint.py); an engine that died mid-run
continues it when it starts again (`recover`, recovery.py).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from google.protobuf import json_format, timestamp_pb2

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.engine import checkpoint as ckpt
from services.engine import events as ev
from services.engine.analytics import load as analytics_table
from services.engine.core.backtest import Backtest, DayResult, RunError, RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import StrategyPlan
from services.engine.recovery import RecoveryMixin
from services.engine.settings import EngineSettings
from services.engine.wire import varint
from storage import (CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, TERMINAL_STATUSES, BacktestRecord, LocalStore,
                     LogClosed, NotFound)
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
    plan: StrategyPlan | None      # None: a run only being closed (recovered, repaired)
    settings: RunSettings | None
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
    # Days whose day_completed is in the log, in order: the days a reader may see.
    published: list[str] = field(default_factory=list)
    # The day being appended: (date, id its day_completed gets); visible once the log has it.
    announcing: tuple[str, int] | None = None
    resume: ckpt.Resume | None = None  # set when a restarted engine continues the run
    writes: deque = field(default_factory=deque)        # day-file writes not yet awaited
    cancel_requested: bool = False                       # by a caller (not the engine stopping)
    unsynced: list[str] = field(default_factory=list)   # days written, not yet made durable
    last_checkpoint: float = 0.0

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

    def __init__(self, store: LocalStore, backtest_id: str, notify: Callable[[], None], fsync: bool, log=None):
        self.store = store
        self.backtest_id = backtest_id
        self.log = log if log is not None else store.event_log(backtest_id)
        self._notify = notify
        self._fsync = fsync
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pub-{backtest_id[-8:]}")
        self._pending: deque = deque()
        self._waiting = 0  # steps submitted and not started
        self._count = threading.Lock()
        self.error: BaseException | None = None

    def append(self, events: list[pb.BacktestEvent], sync: bool = False) -> int:
        """Stamp ids and times, append durably-to-the-OS, then wake readers. Returns the last id.
        The events carry only their kind (event_id, backtest_id and emitted_at unset)."""
        return self.append_bodies([e.SerializeToString() for e in events], sync)

    def append_bodies(self, bodies: list[bytes], sync: bool = False,
                      on_appended: Callable[[int], None] | None = None) -> int:
        """append() of events already serialized (each a BacktestEvent with only its kind set).

        The log's bytes are the event's id, this backtest's id and the time (fields 1-3,
        serialized here once per batch) followed by the body (a field numbered 10 and up):
        the same bytes as serializing the whole message, without re-encoding the body.
        `on_appended(last_id)` runs once they are in the log, before readers are woken.
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
        if on_appended is not None:
            on_appended(last)
        self._notify()
        return last

    @property
    def idle(self) -> bool:
        """True on the publisher's thread when no step waits behind the one running."""
        return self._waiting == 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._count:
            self._waiting += 1
        fut = self._pool.submit(self._guard, fn)
        self._pending.append(fut)
        # Bound the backlog so a fast engine never holds many days of results in memory.
        while len(self._pending) > MAX_BACKLOG_DAYS:
            self._pending.popleft().result()

    def _guard(self, fn: Callable[[], None]) -> None:
        with self._count:
            self._waiting -= 1
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


class JobManager(RecoveryMixin):
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
        # Logs of ended runs known to end with their terminal event (checked once per opening).
        self._checked_logs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._repair_lock = threading.Lock()  # guards _repair_locks (one lock per backtest being checked)
        self._repair_locks: dict[str, threading.Lock] = {}
        hook = getattr(store, "on_log_open", None)
        self._unhook = hook(self._log_opened) if hook is not None else (lambda: None)
        self._cluster_lock = threading.Lock()
        self._cluster_client = None           # distributed.Client of settings.dask_scheduler
        self._cluster_down_until = 0.0

    def _cluster(self):
        """The Dask client runs compute on when HINDSIGHT_DASK_SCHEDULER is set; None: compute
        here (no cluster configured, or it cannot be reached — retried after a minute)."""
        if not self.settings.dask_scheduler or self._closed:
            return None
        with self._cluster_lock:
            if self._cluster_client is None and time.monotonic() >= self._cluster_down_until:
                from services.engine.optimize.executor import ExecutorError, make_executor

                try:
                    self._cluster_client = make_executor(self.settings.dask_scheduler).client
                except ExecutorError as exc:
                    log.warning("backtests compute in the engine: %s", exc)
                    self._cluster_down_until = time.monotonic() + 60.0
            return self._cluster_client

    # --- queries -------------------------------------------------------------------------
    def job(self, backtest_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(backtest_id)

    def terminal_id(self, backtest_id: str) -> int | None:
        """Id of the terminal event once it is in the log, else None (0: no such backtest).
        A finished run whose log lost its terminal event (a torn tail cut on opening) gets one
        appended first, so every stream of a finished run ends."""
        job = self.job(backtest_id)
        if job is not None:
            return job.terminal_id
        rec = self.store.get(backtest_id)
        if rec is None:
            return 0
        if rec.status not in TERMINAL_STATUSES:
            return None
        try:
            event_log = self.store.event_log(backtest_id)
        except NotFound:
            return 0
        if self._ensure_terminal(backtest_id, event_log, rec):
            rec = self.store.get(backtest_id) or rec
        return rec.last_event_id

    def visible_days(self, backtest_id: str) -> list[str]:
        """Days a reader may see (GetDay, downloads): those whose day_completed is in the log
        and whose files are there, in date order. `NotFound` if there is no such backtest."""
        days = self.store.list_days(backtest_id)
        job = self.job(backtest_id)
        if job is not None:
            shown = set(job.published)
            announcing = job.announcing
            if announcing is not None and announcing[0] not in shown:
                try:
                    if self.store.event_log(backtest_id).last_id >= announcing[1]:
                        shown.add(announcing[0])
                except (LogClosed, NotFound):
                    pass
            return [d for d in days if d in shown]
        rec = self.store.get(backtest_id)
        if rec is None:
            raise NotFound(f"backtest {backtest_id!r} not found")
        if rec.status in TERMINAL_STATUSES and self.terminal_id(backtest_id):
            rec = self.store.get(backtest_id) or rec
        # Days are published in date order and an ended run keeps only its published days.
        return days[:rec.completed_days]

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
            job.cancel_requested = True
            job.error_message = reason
            if job.status == RUNNING:
                # Durable before it is acknowledged: an engine that dies before the run stops
                # ends it as cancelled on restart instead of continuing it.
                try:
                    self.store.write_cancel_request(backtest_id, reason)
                except (LogClosed, NotFound):
                    pass
            if job.status == QUEUED:
                try:
                    self._queue.remove(backtest_id)
                except ValueError:
                    pass
                self._end_unstarted(job, CANCELLED, self._cancelled(job, reason))
            return True

    def _end_unstarted(self, job: Job, status: str, event: pb.BacktestEvent, **how) -> None:
        """_end() for a job no worker runs (queued, or closed at start-up)."""
        try:
            pub = Publisher(self.store, job.backtest_id, lambda: self._notify(job.backtest_id), self.settings.fsync)
        except (LogClosed, NotFound):
            return
        try:
            self._end(job, pub, status, event, **how)
        finally:
            pub.close()

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
            job.terminal_id = job.terminal_id if job.terminal_id is not None else 0
        except ckpt.CheckpointUnusable as exc:
            log.warning("backtest %s cannot be continued: %s", bid, exc)
            self._fail(job, pub, exc.code, f"the engine restarted and could not continue this backtest: {exc}")
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
        self._end(job, pub, FAILED, pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
            error_code=code, error_message=message, date=job.current_date)), error_code=code, error_message=message)

    def _emit(self, job: Job, pub: Publisher, bodies: list[bytes],
              on_appended: Callable[[int], None] | None = None) -> int:
        """Publish event bodies. A continued run first checks them against the events its log
        already holds (kept as they are, never sent again), then appends the rest.
        Returns the id of the last of them."""
        rs = job.resume
        if rs is not None and rs.pending > 0:
            bodies = ckpt.check_bodies(pub.log, rs, bodies)
            if not bodies:
                return rs.verified
        return pub.append_bodies(bodies, on_appended=on_appended)

    def _run_job(self, job: Job, pub: Publisher) -> None:
        bid = job.backtest_id
        rs = job.resume
        if job.cancel.is_set():
            if self._closed and not job.cancel_requested:
                return  # dispatched as the engine stops: the next engine starts it (still queued)
            self._end(job, pub, CANCELLED, self._cancelled(job, job.error_message or "cancelled"))
            return
        t0 = time.monotonic()
        job.started_at = job.started_at or time.time()
        self.store.update(bid, status=RUNNING, started_at=job.started_at)
        cfg = job.config
        if rs is None or rs.verified == 0:  # (a checkpoint comes after the started event)
            started = pb.BacktestStarted(config=cfg, total_days=job.total_days)
            self._emit(job, pub, [pb.BacktestEvent(backtest_started=started).SerializeToString()])
        try:
            catalog = self.catalog.scoped(job.caller)  # the caller's uploads, then the shared datasets
            bars = catalog.load(cfg.symbol, None, job.settings.end)
            source = None
            if job.plan.has_legs:
                from services.engine.options.runner import source_for

                source = source_for(catalog, cfg.symbol)
            bt = Backtest(job.plan, bars, job.settings, symbol=cfg.symbol, options=source)
        except (RunError, ValueError, KeyError) as exc:
            if rs is not None:
                raise ckpt.CheckpointUnusable(f"it cannot be recomputed: {exc}") from None
            self._fail(job, pub, "DATA_UNAVAILABLE", str(exc))
            return
        if rs is not None and bt.total_days != job.total_days:
            raise ckpt.CheckpointUnusable(f"it now has {bt.total_days} trading days, not {job.total_days}: "
                                          f"the dataset changed")
        job.total_days = bt.total_days
        totals = ev.RunningTotals(bt.initial_capital)
        replay_until = rs.replay_until if rs is not None else 0
        in_log = rs.days_in_log if rs is not None else 0
        checked_from = rs.verified if rs is not None else 0

        def write_files(day: DayResult, trades_daily: bytes, diagnostics: bytes) -> int:
            # Atomic now, durable at the next checkpoint (sync_days): an fsync per file would
            # cost more than the backtest.
            if pub.error is not None:
                return 0  # the run has already failed: its later days are never published
            return self.store.write_day(bid, day.date, trades_daily, diagnostics, fsync=False)

        def replay_day(day: DayResult) -> None:
            # A continued run's day up to its checkpoint: files and events are there already.
            totals.add(day.trades)
            if day.day_number == replay_until and ckpt.fingerprint(day, totals) != rs.fingerprint:
                raise ckpt.CheckpointUnusable(
                    f"the state recomputed at the end of {day.date} (day {day.day_number}) differs from its "
                    f"checkpoint: the data or the engine changed since the run started")

        def publish_day(day: DayResult) -> None:
            size = job.writes.popleft().result()  # a day's files exist before any event announces it
            job.unsynced.append(day.date)
            bodies = ev.day_event_bodies(day, totals, has_detail_data=True)
            if day.day_number > in_log:
                if rs is not None and day.day_number == in_log + 1:
                    log.info("backtest %s caught up with its log in %.2fs: %d days recomputed, %d logged "
                             "events checked", bid, time.monotonic() - t0, in_log, rs.verified - checked_from)

                def appended(last: int) -> None:
                    job.published.append(day.date)
                    job.announcing = None
                    job.daily.append(ckpt.day_row(day, size))
                    job.completed_days, job.current_date = day.day_number, day.date

                rest = bodies
                if rs is not None and rs.pending > 0:
                    rest = ckpt.check_bodies(pub.log, rs, bodies)
                job.announcing = (day.date, pub.log.last_id + len(rest))
                done_id = pub.append_bodies(rest, on_appended=appended)
            else:  # published before the restart: checked, its files written again
                done_id = self._emit(job, pub, bodies)
                job.daily[day.day_number - 1] = ckpt.day_row(day, size)
            self._maybe_checkpoint(job, pub, day, totals, done_id)

        def on_day(day: DayResult) -> None:
            if day.day_number <= replay_until:
                pub.submit(lambda: replay_day(day))
                return
            # Files for several days are written at once (gzip and the file system calls let
            # go of the GIL); the publisher appends each day's events in order, once its files
            # are complete. Encoded here (holds the GIL; the writers' gzip and file calls do not).
            job.writes.append(self._writers.submit(write_files, day, dumps_json(day.trades_daily()),
                                                   dumps_json(day.diagnostics_export())))
            pub.submit(lambda: publish_day(day))

        # Stop computing once publishing has failed (a day's files could not be written, say):
        # drain() then raises that error and the run ends with backtest_failed.
        def should_stop() -> bool:
            return job.cancel.is_set() or pub.error is not None

        client = None if job.plan.has_legs else self._cluster()
        if client is not None:
            # Computed on a worker of the cluster; its days come back here in order, and are
            # published exactly as this engine's own would be.
            from services.engine.remote import run_remote

            result = run_remote(client, bid, job.plan.source.SerializeToString(), bt.bars, job.settings, cfg.symbol,
                                on_day, should_stop)
        else:
            result = bt.run(on_day=on_day, should_stop=should_stop)
        pub.drain()
        if rs is not None and rs.pending > 0 and not result.cancelled:
            raise ckpt.CheckpointUnusable(f"its log holds {rs.pending} events after the last one recomputed")
        job.summary, job.metrics = result.summary, result.metrics
        if result.cancelled and self._closed and not job.cancel_requested:
            self._suspend(job, pub)
        elif result.cancelled:
            self._end(job, pub, CANCELLED, self._cancelled(job, job.error_message or "cancelled"))
        else:
            done = pb.BacktestCompleted(backtest_id=bid,
                                        overall_summary=json_format.ParseDict(result.summary, results_pb2.OverallSummary()),
                                        metrics=metrics_message(result.metrics))
            self._end(job, pub, COMPLETED, pb.BacktestEvent(backtest_completed=done))

    @staticmethod
    def _cancelled(job: Job, reason: str) -> pb.BacktestEvent:
        return pb.BacktestEvent(backtest_cancelled=pb.BacktestCancelled(reason=reason,
                                                                        last_completed_date=job.current_date))

    # --- checkpoints ---------------------------------------------------------------------
    def _maybe_checkpoint(self, job: Job, pub: Publisher, day: DayResult, totals: ev.RunningTotals,
                          event_id: int) -> None:
        """After a published day (on the publisher's thread): checkpoint when the publisher has
        caught up with the engine, and at least every CHECKPOINT_EVERY_S while it has not."""
        since = time.monotonic() - job.last_checkpoint
        if since < ckpt.CHECKPOINT_MIN_S or (since < ckpt.CHECKPOINT_EVERY_S and not pub.idle):
            return
        bid = job.backtest_id
        if self.settings.fsync:
            # Days and events first, then the checkpoint that counts on them.
            self.store.sync_days(bid, job.unsynced)
            job.unsynced.clear()
            pub.log.sync()
        digest = ckpt.fingerprint(day, totals)
        self.store.write_checkpoint(bid, ckpt.checkpoint_doc(bid, day, event_id, digest, self.settings.fsync))
        job.last_checkpoint = time.monotonic()
        self.store.update(bid, completed_days=job.completed_days, current_date=job.current_date,
                          last_event_id=pub.log.last_id)

    # --- the end -------------------------------------------------------------------------
    def _end(self, job: Job, pub: Publisher, status: str, event: pb.BacktestEvent | None = None, *,
             existing_id: int | None = None, error_code: str = "", error_message: str = "",
             prune: bool = True) -> None:
        """The one way a run ends, whatever ends it.

        1. Day files still being written are waited for; unless the run completed, days written
           but never published are removed (a day exists once its day_completed is in the log).
        2. The published days are made durable, then the terminal event is appended and synced
           (`existing_id`: it is in the log already, e.g. written by an engine that died next).
        3. metadata.json; the checkpoint goes; the index row with the final progress and the
           bytes the run takes on disk (its owner's quota).
        4. terminal_id is set and readers are woken.
        A backtest deleted meanwhile (LogClosed / NotFound) just stops here."""
        bid = job.backtest_id
        job.status = status
        if error_code or status == FAILED:
            job.error_code, job.error_message = error_code, error_message
        job.finished_at = job.finished_at or time.time()
        terminal = existing_id
        try:
            while job.writes:
                try:
                    job.writes.popleft().result()
                except BaseException:  # noqa: BLE001 - a failed write is the run's error, reported already
                    pass
            published = set(job.published)
            if status != COMPLETED and prune:
                extra = [d for d in self.store.list_days(bid) if d not in published]
                if extra:
                    self.store.remove_days(bid, extra)
            analytics_table.after_run(self.store, bid, job)  # its table, built meanwhile (analytics/load.py)
            self.store.sync_days(bid, [d for d in job.unsynced if d in published])
            job.unsynced.clear()
            if terminal is None:
                terminal = pub.append([event], sync=True)
            elif self.settings.fsync:
                pub.log.sync()
            self.store.write_metadata(bid, {
                "backtest_id": bid,
                "strategy_id": job.strategy_id,
                "status": status,
                "config": json_format.MessageToDict(job.config, preserving_proto_field_name=True),
                "total_days": job.total_days,
                "overall_summary": job.summary,
                "metrics": _finite(job.metrics) if job.metrics else None,
                "daily_summaries": job.daily,
                "error_code": job.error_code,
                "error_message": job.error_message,
            })
            self.store.remove_checkpoint(bid)  # (an ended run is never continued)
            self.store.update(bid, status=status, finished_at=job.finished_at, completed_days=job.completed_days,
                              current_date=job.current_date, last_event_id=terminal, error_code=job.error_code,
                              error_message=job.error_message,
                              summary_json=json.dumps(job.summary) if job.summary else None,
                              stored_bytes=self.store.disk_usage(bid))
        except (LogClosed, NotFound):
            log.info("backtest %s was deleted as it ended", bid)
        finally:
            job.terminal_id = terminal if terminal is not None else pub.log.last_id
            self._notify(bid)

    def _suspend(self, job: Job, pub: Publisher) -> None:
        """The engine is stopping: the run stays running in the index, with what it published
        durable, and the next engine continues it (as after a crash, without the lost tail)."""
        bid = job.backtest_id
        try:
            while job.writes:
                try:
                    job.writes.popleft().result()
                except BaseException:  # noqa: BLE001 - its day is not published; it is written again
                    pass
            self.store.sync_days(bid, [d for d in job.unsynced if d in set(job.published)])
            job.unsynced.clear()
            if self.settings.fsync:
                pub.log.sync()
            self.store.update(bid, completed_days=job.completed_days, current_date=job.current_date or None,
                              last_event_id=pub.log.last_id)
            log.info("backtest %s stops with the engine at day %d; the next engine continues it",
                     bid, job.completed_days)
        except (LogClosed, NotFound):
            pass

    # --- lifecycle -----------------------------------------------------------------------
    def shutdown(self, wait: bool = True) -> None:
        """Stop: running runs stop at a day boundary and stay running in the index, queued
        runs stay queued; the next engine on this store continues and starts them."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            for bid in list(self._jobs):
                self._jobs[bid].cancel.set()
        self._pool.shutdown(wait=wait)
        self._writers.shutdown(wait=wait)
        self._unhook()
        if self._cluster_client is not None:
            self._cluster_client.close()
            self._cluster_client = None


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def metrics_message(metrics: dict) -> "pb.results__pb2.Metrics":  # type: ignore[name-defined]
    m = results_pb2.Metrics()
    for k, v in metrics.items():
        if k in results_pb2.Metrics.DESCRIPTOR.fields_by_name and v is not None:
            setattr(m, k, v)
    return m
