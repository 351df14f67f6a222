"""Optimization jobs: a small queue, the worker that runs one optimization, and its event log.

The lifecycle is a backtest's (services/engine/jobs.py): accepted queued, dispatched when
there is room, every event appended to the log before the hub wakes readers, and every run
ended by one terminal event (completed, failed, cancelled) followed by the index's final row.
Few run at once (default 1): the sweep kernel uses every core itself.

An engine that stops gracefully *suspends* its running optimizations (the runner's
should_stop says so between chunks of trials); they stay running in the index. The next
engine, and one that died, continues them (`recover`): the log's events go back to the
runner as `recorded`, whose trials it does not run again, and optimization_started is never
written twice. A cancel is durable before it is acknowledged (cancel_requested.json), so an
engine that dies meanwhile ends the optimization as cancelled instead of continuing it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from google.protobuf import timestamp_pb2

from hindsight.v1 import optimization_pb2 as opb

from services.engine.core.backtest import RunError
from services.engine.core.catalog import Catalog
from services.engine.optimize.executor import Executor, make_executor
from services.engine.optimize.runner import Optimization
from services.engine.settings import EngineSettings, _int
from storage import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, TERMINAL_STATUSES, LogClosed, NotFound
from storage.optimizations import OptimizationRecord, OptimizationStore

log = logging.getLogger("hindsight.engine.optimize")

STATUS_ENUM = {QUEUED: opb.OPTIMIZATION_STATUS_QUEUED, RUNNING: opb.OPTIMIZATION_STATUS_RUNNING,
               COMPLETED: opb.OPTIMIZATION_STATUS_COMPLETED, FAILED: opb.OPTIMIZATION_STATUS_FAILED,
               CANCELLED: opb.OPTIMIZATION_STATUS_CANCELLED}
STATUS_NAME = {v: k for k, v in STATUS_ENUM.items()}
TERMINAL_KINDS = {"optimization_completed": COMPLETED, "optimization_failed": FAILED,
                  "optimization_cancelled": CANCELLED}
# The index's progress trails the log by at most this long while a run goes (the log is the
# truth; the index is what lists show).
INDEX_EVERY_S = 1.0
# Pages read from a log when replaying it (restart, downloads).
READ_PAGE = 4096
RESTARTED = "ENGINE_RESTARTED"


@dataclass(frozen=True)
class OptimizationSettings:
    """Limits of optimizations (HINDSIGHT_OPT_*); per-user starts share the backtests' bucket."""

    max_concurrent: int = 1         # optimizations running at once
    max_queued: int = 32            # waiting to start, all users together
    max_queued_per_user: int = 4    # waiting to start, per user (0: unlimited)

    @classmethod
    def from_env(cls) -> "OptimizationSettings":
        return cls(max_concurrent=max(1, _int("OPT_MAX_CONCURRENT", 1)), max_queued=_int("OPT_MAX_QUEUED", 32),
                   max_queued_per_user=_int("OPT_MAX_QUEUED_PER_USER", 4))


class QueueFull(Exception):
    """Too many queued optimizations; the caller should retry later."""


def new_optimization_id() -> str:
    now = datetime.now(timezone.utc)
    return f"opt_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


def parse_events(pages) -> list[opb.OptimizationEvent]:
    return [opb.OptimizationEvent.FromString(payload) for page in pages for _, payload in page]


def read_pages(event_log, after: int = 0):
    """The log's (id, bytes) pages from `after` on, as it is now."""
    while True:
        page = event_log.read(after, READ_PAGE)
        if not page:
            return
        yield page
        after = page[-1][0]


@dataclass
class OptJob:
    optimization_id: str
    owner: str
    strategy_id: str
    config: opb.OptimizationConfig
    created_at: float
    prepared: Optimization | None   # None: prepared by the worker (a run continued after a restart)
    progress: opb.OptimizationProgress
    status: str = QUEUED
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_requested: bool = False  # by a caller (not the engine stopping)
    reason: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    best: list[opb.Trial] = field(default_factory=list)  # the latest best_updated's
    error_code: str = ""
    error_message: str = ""
    terminal_id: int | None = None
    indexed_at: float = 0.0

    def observe(self, event: opb.OptimizationEvent) -> None:
        """Keep the progress and the best trials the log's events say."""
        kind = event.WhichOneof("event")
        if kind == "trial_completed" and event.trial_completed.HasField("progress"):
            self.progress = event.trial_completed.progress
        elif kind == "window_completed" and event.window_completed.HasField("progress"):
            self.progress = event.window_completed.progress
        elif kind in ("optimization_completed", "optimization_cancelled"):
            self.progress = getattr(event, kind).progress
        elif kind == "best_updated":
            self.best = list(event.best_updated.best)


class OptimizationManager:
    """Accepts, schedules, runs, cancels, continues and forgets optimizations."""

    def __init__(self, store: OptimizationStore, catalog: Catalog, settings: EngineSettings,
                 limits: OptimizationSettings, notify: Callable[[str], None]):
        self.store, self.catalog, self.settings, self.limits = store, catalog, settings, limits
        self._notify = notify
        self._lock = threading.RLock()
        self._jobs: dict[str, OptJob] = {}
        self._queue: deque[str] = deque()
        self._running: dict[str, int] = {}  # owner → running count
        self._n_running = 0
        self._pool = ThreadPoolExecutor(max_workers=limits.max_concurrent, thread_name_prefix="optimization")
        self._closed = False
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()

    def executor(self) -> Executor:
        """Where trials are computed: the Dask cluster of settings.dask_scheduler, else this
        process. Connected on first use, so an unreachable scheduler fails the optimizations
        that need it (ExecutorError), not the engine's start."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = make_executor(self.settings.dask_scheduler or None)
            return self._executor

    # --- queries -------------------------------------------------------------------------
    def job(self, optimization_id: str) -> OptJob | None:
        with self._lock:
            return self._jobs.get(optimization_id)

    def terminal_id(self, optimization_id: str) -> int | None:
        """Id of the terminal event once it is in the log, else None (0: no such optimization)."""
        job = self.job(optimization_id)
        if job is not None:
            return job.terminal_id
        rec = self.store.get(optimization_id)
        if rec is None:
            return 0
        return rec.last_event_id if rec.status in TERMINAL_STATUSES else None

    def queued(self, owner: str) -> int:
        return self.store.count(owner, QUEUED)

    # --- start ---------------------------------------------------------------------------
    def submit(self, *, owner: str, request_id: str, strategy_id: str, config: opb.OptimizationConfig,
               prepared: Optimization) -> tuple[str, bool]:
        """Queue an optimization; returns (id, created). Idempotent on (owner, request_id)."""
        with self._lock:
            if self._closed:
                raise QueueFull("the engine is shutting down")
            if request_id:
                existing = self.store.find_by_request(owner, request_id)
                if existing is not None:
                    return existing.optimization_id, False
            if len(self._queue) >= self.limits.max_queued:
                raise QueueFull(f"{len(self._queue)} optimizations are already queued (limit "
                                f"{self.limits.max_queued}); retry when some have finished")
            oid = new_optimization_id()
            now = time.time()
            progress = opb.OptimizationProgress(total_trials=prepared.total_trials,
                                                total_windows=prepared.total_windows)
            job = OptJob(oid, owner, strategy_id, config, now, prepared, progress)
            self.store.create(OptimizationRecord(
                optimization_id=oid, strategy_id=strategy_id, owner=owner, created_at=now, request_id=request_id,
                symbol=config.symbol, method=config.method, total_trials=prepared.total_trials,
                total_windows=prepared.total_windows, config=config.SerializeToString()))
            self.store.event_log(oid)  # the log exists from the start: readers may attach at once
            self._jobs[oid] = job
            self._queue.append(oid)
            self._dispatch()
            return oid, True

    def _dispatch(self) -> None:
        """Start queued jobs while there is room, at most max_running_per_caller per owner."""
        with self._lock:
            if self._closed:
                return
            skipped: deque[str] = deque()
            while self._queue and self._n_running < self.limits.max_concurrent:
                oid = self._queue.popleft()
                job = self._jobs.get(oid)
                if job is None or job.status != QUEUED:
                    continue
                if self._running.get(job.owner, 0) >= self.settings.max_running_per_caller:
                    skipped.append(oid)
                    continue
                self._running[job.owner] = self._running.get(job.owner, 0) + 1
                self._n_running += 1
                job.status = RUNNING
                self._pool.submit(self._run, job)
            skipped.extend(self._queue)
            self._queue = skipped

    def _release(self, job: OptJob) -> None:
        with self._lock:
            self._running[job.owner] -= 1
            self._n_running -= 1
        self._dispatch()

    # --- cancel / delete -----------------------------------------------------------------
    def cancel(self, optimization_id: str, reason: str = "cancelled by request") -> bool:
        """Request cancellation; False when it has already ended."""
        with self._lock:
            job = self._jobs.get(optimization_id)
            if job is None or job.terminal_id is not None:
                return False
            if job.cancel_requested:
                return True  # (being cancelled)
            job.cancel.set()
            job.cancel_requested = True
            job.reason = reason
            if job.status == RUNNING:
                try:
                    self.store.write_cancel_request(optimization_id, reason)
                except NotFound:
                    pass
                return True
            try:
                self._queue.remove(optimization_id)
            except ValueError:
                pass
            self._end(job, CANCELLED, opb.OptimizationEvent(optimization_cancelled=opb.OptimizationCancelled(
                reason=reason, progress=job.progress)))
            return True

    def wait(self, optimization_id: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(optimization_id)
            if job is None or job.terminal_id is not None:
                return True
            time.sleep(0.005)
        return False

    def forget(self, optimization_id: str) -> None:
        with self._lock:
            self._jobs.pop(optimization_id, None)

    # --- the worker ----------------------------------------------------------------------
    def _run(self, job: OptJob) -> None:
        oid = job.optimization_id
        try:
            self._run_job(job)
        except LogClosed:
            log.info("optimization %s was deleted while running", oid)
            job.terminal_id = job.terminal_id if job.terminal_id is not None else 0
        except RunError as exc:
            self._fail(job, "RUN_ERROR", str(exc))
        except BaseException:  # noqa: BLE001 - any failure must end the stream
            log.exception("optimization %s failed", oid)
            self._fail(job, "INTERNAL", "the optimization failed on an internal error (the engine's log has the "
                                        "details); start it again")
        finally:
            self._release(job)
            self._notify(oid)

    def _run_job(self, job: OptJob) -> None:
        oid = job.optimization_id
        if job.cancel.is_set() and self._closed and not job.cancel_requested:
            return  # dispatched as the engine stops: the next engine starts it (still queued)
        event_log = self.store.event_log(oid)
        recorded = parse_events(read_pages(event_log))
        for event in recorded:
            job.observe(event)
        opt = job.prepared
        if opt is None:
            try:
                opt = Optimization.prepare(job.config, self.catalog.scoped(job.owner), executor=self.executor())
            except (ValueError, KeyError) as exc:  # SpecError, RunError, UnknownDataset: the engine or data changed
                self._fail(job, RESTARTED, f"the engine restarted and could not continue this optimization: {exc}")
                return
            job.prepared = opt
        job.started_at = job.started_at or time.time()
        self.store.update(oid, status=RUNNING, started_at=job.started_at)
        if not recorded:
            self._append(job, event_log, [opb.OptimizationEvent(optimization_started=opt.started())])

        outcome = opt.run(lambda events: self._append(job, event_log, events),
                          state_dir=self.store.folder(job.owner, oid),
                          recorded=recorded, should_stop=job.cancel.is_set)
        job.progress = outcome.progress
        if outcome.status == "cancelled" and self._closed and not job.cancel_requested:
            self._suspend(job, event_log)
        elif outcome.status == "cancelled":
            self._end(job, CANCELLED, opb.OptimizationEvent(optimization_cancelled=opb.OptimizationCancelled(
                reason=job.reason or "cancelled", progress=outcome.progress)))
        else:
            self._end(job, COMPLETED, opb.OptimizationEvent(optimization_completed=opb.OptimizationCompleted(
                result=outcome.result, progress=outcome.progress)))

    def _append(self, job: OptJob, event_log, events: list[opb.OptimizationEvent], sync: bool = False) -> int:
        """Stamp the events (id, optimization, time), append them, then wake readers."""
        if not events:
            return event_log.last_id
        now = time.time()
        stamp = timestamp_pb2.Timestamp(seconds=int(now), nanos=int((now % 1) * 1e9))
        first = event_log.last_id + 1
        payloads = []
        for k, event in enumerate(events):
            event.event_id = first + k
            event.optimization_id = job.optimization_id
            event.emitted_at.CopyFrom(stamp)
            payloads.append(event.SerializeToString())
        last = event_log.append_batch(payloads)
        if sync and self.settings.fsync:
            event_log.sync()
        for event in events:
            job.observe(event)
        if job.terminal_id is None and time.monotonic() - job.indexed_at >= INDEX_EVERY_S:
            job.indexed_at = time.monotonic()
            self.store.update(job.optimization_id, last_event_id=last, **_progress_columns(job.progress))
        self._notify(job.optimization_id)
        return last

    def _fail(self, job: OptJob, code: str, message: str) -> None:
        job.error_code, job.error_message = code, message
        self._end(job, FAILED, opb.OptimizationEvent(optimization_failed=opb.OptimizationFailed(
            error_code=code, error_message=message)))

    # --- the end -------------------------------------------------------------------------
    def _end(self, job: OptJob, status: str, event: opb.OptimizationEvent | None, *,
             existing_id: int | None = None) -> None:
        """The one way a run ends: the terminal event durably in the log (`existing_id`: it is
        there already), then the index's final row (the best trials kept with it), then
        terminal_id is set and readers are woken. One deleted meanwhile just stops here."""
        oid = job.optimization_id
        job.status = status
        job.finished_at = job.finished_at or time.time()
        terminal = existing_id
        try:
            event_log = self.store.event_log(oid)
            if terminal is None:
                terminal = self._append(job, event_log, [event], sync=True)
            elif self.settings.fsync:
                event_log.sync()
            self.store.update(oid, status=status, finished_at=job.finished_at, last_event_id=terminal,
                              error_code=job.error_code, error_message=job.error_message,
                              top=opb.BestUpdated(best=job.best).SerializeToString(),
                              **_progress_columns(job.progress))
        except (LogClosed, NotFound):
            log.info("optimization %s was deleted as it ended", oid)
        finally:
            job.terminal_id = terminal if terminal is not None else 0
            self._notify(oid)

    def _suspend(self, job: OptJob, event_log) -> None:
        """The engine is stopping: the run stays running in the index with its log durable, and
        the next engine continues it."""
        oid = job.optimization_id
        try:
            if self.settings.fsync:
                event_log.sync()
            self.store.update(oid, last_event_id=event_log.last_id,
                              top=opb.BestUpdated(best=job.best).SerializeToString(), **_progress_columns(job.progress))
            log.info("optimization %s stops with the engine after %d trials; the next engine continues it",
                     oid, job.progress.completed_trials)
        except (LogClosed, NotFound):
            pass

    # --- start-up ------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Continue the optimizations a previous engine left running, queue again those it left
        queued (running ones first, each group oldest first). Returns the ids closed instead:
        ended in their log already, or cancelled by a caller just before the engine stopped."""
        records = self.store.unfinished()
        closed: list[str] = []
        for rec in [r for r in records if r.status == RUNNING] + [r for r in records if r.status == QUEUED]:
            try:
                if not self._recover_one(rec):
                    closed.append(rec.optimization_id)
            except Exception:  # noqa: BLE001 - one broken folder must not stop start-up
                log.exception("could not recover optimization %s", rec.optimization_id)
        self._dispatch()
        return closed

    def _recover_one(self, rec: OptimizationRecord) -> bool:
        oid = rec.optimization_id
        config = opb.OptimizationConfig.FromString(rec.config)
        job = OptJob(oid, rec.owner, rec.strategy_id, config, rec.created_at, None,
                     opb.OptimizationProgress(completed_trials=rec.completed_trials, total_trials=rec.total_trials,
                                              completed_windows=rec.completed_windows,
                                              total_windows=rec.total_windows), started_at=rec.started_at)
        event_log = self.store.event_log(oid)
        last = None
        for page in read_pages(event_log):
            for _, payload in page:
                last = opb.OptimizationEvent.FromString(payload)
                job.observe(last)
        kind = last.WhichOneof("event") if last is not None else None
        if kind in TERMINAL_KINDS:  # it ended; the index never heard of it
            if kind == "optimization_failed":
                job.error_code = last.optimization_failed.error_code
                job.error_message = last.optimization_failed.error_message
            job.finished_at = last.emitted_at.ToNanoseconds() / 1e9
            self._end(job, TERMINAL_KINDS[kind], None, existing_id=last.event_id)
            return False
        reason = self.store.read_cancel_request(rec)
        if reason is not None:
            self._end(job, CANCELLED, opb.OptimizationEvent(optimization_cancelled=opb.OptimizationCancelled(
                reason=reason, progress=job.progress)))
            return False
        with self._lock:
            self._jobs[oid] = job
            self._queue.append(oid)
        if rec.status == RUNNING:
            log.info("optimization %s continues after %d trials (%d events in its log)",
                     oid, job.progress.completed_trials, event_log.last_id)
        return True

    # --- lifecycle -----------------------------------------------------------------------
    def shutdown(self, wait: bool = True) -> None:
        """Stop: running optimizations stop between chunks of trials and stay running in the
        index, queued ones stay queued; the next engine on this store continues them."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            for job in self._jobs.values():
                job.cancel.set()
        self._pool.shutdown(wait=wait)
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()


def _progress_columns(progress: opb.OptimizationProgress) -> dict[str, int]:
    return {"completed_trials": progress.completed_trials, "total_trials": progress.total_trials,
            "completed_windows": progress.completed_windows, "total_windows": progress.total_windows}
