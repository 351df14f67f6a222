"""What an engine does with the runs its predecessor left behind (part of JobManager).

- At start-up (`recover`): a run left *running* continues from its checkpoint (checkpoint.py);
  one left *queued* is queued again; one whose terminal event reached the log but not the
  index is closed from its log; one that cannot be rebuilt ends with backtest_failed.
- Lazily, when a finished run's log is opened (`_log_opened`, and `terminal_id`): a log that
  lost its terminal event (a torn or corrupt tail cut on opening) gets one appended, and the
  index, metadata and day files are brought back in line with what the log still holds.
  Every stream of a finished run ends.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from typing import TYPE_CHECKING

from google.protobuf import json_format

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.engine import checkpoint as ckpt
from services.engine import events as ev
from services.engine.core.backtest import RunSettings
from services.engine.core.spec import SpecError, compile_strategy
from storage import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, TERMINAL_STATUSES, BacktestRecord, NotFound

if TYPE_CHECKING:
    from services.engine.jobs import Job

log = logging.getLogger("hindsight.engine.jobs")

_STATUS_OF_KIND = {"backtest_completed": COMPLETED, "backtest_failed": FAILED, "backtest_cancelled": CANCELLED}


class RecoveryMixin:
    """Start-up recovery and log repair for JobManager (which provides _end, _jobs, store ...)."""

    # --- start-up ------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Continue the runs a dead predecessor left running, queue again those it left
        queued (running ones first, each group oldest first). Returns the ids of the runs
        that were closed instead (ended in their log, or impossible to continue)."""
        records = self.store.unfinished()
        closed: list[str] = []
        continued = 0
        for rec in [r for r in records if r.status == RUNNING] + [r for r in records if r.status == QUEUED]:
            try:
                if self._recover_one(rec):
                    continued += 1
                else:
                    closed.append(rec.backtest_id)
            except Exception:  # noqa: BLE001 - one broken directory must not stop start-up
                log.exception("could not recover backtest %s", rec.backtest_id)
                try:
                    self._close_abandoned(rec)
                    closed.append(rec.backtest_id)
                except Exception:  # noqa: BLE001
                    log.exception("could not close abandoned backtest %s", rec.backtest_id)
        if continued:
            log.info("continuing %d backtests left unfinished by a previous engine", continued)
        self._dispatch()
        return closed

    def _recover_one(self, rec: BacktestRecord) -> bool:
        """True if the run goes on (queued to continue or start), False if it was closed."""
        bid = rec.backtest_id
        event_log = self.store.event_log(bid)
        problem = None
        try:
            scan = ckpt.scan_log(event_log)
        except ckpt.CheckpointUnusable as exc:  # days out of order: keep those up to the first
            scan, problem = ckpt.scan_log(event_log, strict=False), exc
        job = self._job_from_log(rec, scan)
        if scan.terminal is not None:  # it ended; the index never heard of it
            self._end_from_log(job, scan, event_log)
            return False
        reason = self.store.read_cancel_request(bid)
        if reason is not None:  # cancelled by a caller just before the engine stopped
            self._end_unstarted(job, CANCELLED, self._cancelled(job, reason))
            return False
        try:
            if problem is not None:
                raise problem
            self._prepare(job)
        except ckpt.CheckpointUnusable as exc:
            message = f"the engine stopped while this backtest was {rec.status} and it cannot be continued: {exc}"
            self._end_unstarted(job, FAILED, pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
                error_code=exc.code, error_message=message, date=job.current_date)),
                error_code=exc.code, error_message=message)
            return False
        if scan.last_id > 0:
            job.resume = rs = ckpt.plan_resume(self.store.read_checkpoint(bid), scan)
            # The index's progress trailed the log: it agrees with it from now on.
            self.store.update(bid, completed_days=job.completed_days, current_date=job.current_date or None,
                              last_event_id=scan.last_id)
            log.info("backtest %s continues: %d events and %d days in its log, checkpoint at day %d "
                     "(event %d); %d events to check", bid, scan.last_id, len(scan.days), rs.replay_until,
                     rs.verified, rs.pending)
        with self._lock:
            self._jobs[bid] = job
            self._queue.append(bid)
        return True

    def _close_abandoned(self, rec: BacktestRecord) -> None:
        """The last resort when a run could not even be read back: backtest_failed, files kept."""
        job = self._job_from_log(rec, ckpt.LogScan())
        job.completed_days, job.current_date = rec.completed_days, rec.current_date or ""
        from services.engine.jobs import Publisher

        pub = Publisher(self.store, rec.backtest_id, lambda: self._notify(rec.backtest_id), self.settings.fsync)
        try:
            message = f"the engine stopped while this backtest was {rec.status}; start it again"
            self._end(job, pub, FAILED, pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
                error_code=ckpt.RESTARTED, error_message=message, date=job.current_date)),
                error_code=ckpt.RESTARTED, error_message=message, prune=False)
        finally:
            pub.close()

    def _job_from_log(self, rec: BacktestRecord, scan: ckpt.LogScan) -> "Job":
        """A Job for a stored run: its config (from the log's backtest_started, else the
        index), and the days its log holds (rows for daily_summaries, progress)."""
        from services.engine.jobs import Job

        config = pb.BacktestConfig()
        total = rec.total_days
        if scan.started is not None and scan.started.HasField("config"):
            config.CopyFrom(scan.started.config)
            total = scan.started.total_days or total
        elif rec.config_json:
            try:
                json_format.Parse(rec.config_json, config, ignore_unknown_fields=True)
            except json_format.ParseError:
                config = pb.BacktestConfig()
        job = Job(rec.backtest_id, rec.caller, rec.strategy_id, config, None, None, total, rec.created_at,
                  started_at=rec.started_at)
        job.published = scan.dates
        job.daily = [ckpt.daily_row(d.date, d.summary, d.equity, self.store.day_size(rec.backtest_id, d.date))
                     for d in scan.days]
        job.completed_days = len(scan.days)
        job.current_date = scan.days[-1].date if scan.days else ""
        return job

    @staticmethod
    def _prepare(job: "Job") -> None:
        """Compile the stored config into the plan and settings the run needs."""
        cfg = job.config
        if not cfg.HasField("strategy") or not cfg.symbol:
            raise ckpt.CheckpointUnusable("no strategy was stored to recompute it from", ckpt.RESTARTED)
        try:
            plan = compile_strategy(cfg.strategy)
        except SpecError as exc:
            first = exc.problems[0] if exc.problems else None
            raise ckpt.CheckpointUnusable("its strategy no longer compiles" + (
                f" ({first.field}: {first.description})" if first else "")) from None
        try:
            start = date.fromisoformat(cfg.start_date) if cfg.start_date else None
            end = date.fromisoformat(cfg.end_date) if cfg.end_date else None
        except ValueError as exc:
            raise ckpt.CheckpointUnusable(f"its stored dates are invalid: {exc}") from None
        # The config holds the values the run used (defaults applied); the strategy's own are
        # the same values, so passing them explicitly runs the same backtest.
        job.plan = plan
        job.settings = RunSettings(start=start, end=end, timeframe=cfg.timeframe,
                                   initial_capital=cfg.initial_capital or None,
                                   commission_pct=cfg.commission_pct or None,
                                   slippage_pct=cfg.slippage_pct or None, tick_interval=cfg.tick_interval)

    def _end_from_log(self, job: "Job", scan: ckpt.LogScan, event_log) -> None:
        """Close a run whose terminal event is in its log already."""
        from services.engine.jobs import Publisher

        end = scan.terminal
        kind = scan.terminal_kind
        code = message = ""
        if kind == "backtest_completed":
            done = end.backtest_completed
            job.summary = json_format.MessageToDict(done.overall_summary, preserving_proto_field_name=True,
                                                    always_print_fields_with_no_presence=True)
            job.metrics = json_format.MessageToDict(done.metrics, preserving_proto_field_name=True)
        elif kind == "backtest_failed":
            code, message = end.backtest_failed.error_code, end.backtest_failed.error_message
        else:
            job.error_message = end.backtest_cancelled.reason
        pub = Publisher(self.store, job.backtest_id, lambda: self._notify(job.backtest_id), self.settings.fsync,
                        log=event_log)
        try:
            self._end(job, pub, _STATUS_OF_KIND[kind], existing_id=scan.last_id, error_code=code,
                      error_message=message)
        finally:
            pub.close()

    # --- finished runs whose log lost its end ------------------------------------------------
    def _log_opened(self, backtest_id: str, event_log) -> None:
        """store.on_log_open hook: runs inside store.event_log, so it takes no JobManager lock
        (submit holds that one while opening a log)."""
        if backtest_id in self._jobs:
            return
        try:
            rec = self.store.get(backtest_id)
        except ValueError:
            return
        if rec is not None and rec.status in TERMINAL_STATUSES:
            self._ensure_terminal(backtest_id, event_log, rec)

    def _ensure_terminal(self, backtest_id: str, event_log, rec: BacktestRecord | None = None) -> bool:
        """Make a finished run's log end with its terminal event; True if anything changed.
        One lock per backtest (not one for all): the open hook calls this while the store
        holds its own lock, and a repair elsewhere may need that lock."""
        with self._repair_lock:
            lock = self._repair_locks.setdefault(backtest_id, threading.Lock())
        try:
            with lock:
                return self._check_terminal(backtest_id, event_log, rec)
        finally:
            with self._repair_lock:
                if self._repair_locks.get(backtest_id) is lock and not lock.locked():
                    del self._repair_locks[backtest_id]

    def _check_terminal(self, backtest_id: str, event_log, rec: BacktestRecord | None) -> bool:
        if self._checked_logs.get(event_log) or backtest_id in self._jobs:
            return False
        rec = rec if rec is not None else self.store.get(backtest_id)
        if rec is None or rec.status not in TERMINAL_STATUSES or event_log.closed:
            return False
        changed = False
        if ckpt.last_kind(event_log) in ev.TERMINAL_KINDS:
            if rec.last_event_id != event_log.last_id:
                self.store.update(backtest_id, last_event_id=event_log.last_id)
                changed = True
        else:
            self._repair(rec, event_log)
            changed = True
        with self._repair_lock:
            self._checked_logs[event_log] = True
        return changed

    def _repair(self, rec: BacktestRecord, event_log) -> None:
        """Append the terminal event a finished run's log lost: backtest_completed rebuilt
        from metadata.json when the log still holds every day of a completed run, else
        backtest_failed LOG_REPAIRED; days the log no longer announces are removed."""
        from services.engine.jobs import Publisher

        bid = rec.backtest_id
        scan = ckpt.scan_log(event_log, strict=False)
        job = self._job_from_log(rec, scan)
        job.finished_at = rec.finished_at
        try:
            meta = self.store.read_metadata(bid)
        except (NotFound, ValueError):
            meta = None
        log.warning("backtest %s (%s) lost the end of its event log: %d events and %d days remain; repairing",
                    bid, rec.status, scan.last_id, len(scan.days))
        pub = Publisher(self.store, bid, lambda: self._notify(bid), self.settings.fsync, log=event_log)
        try:
            if (rec.status == COMPLETED and meta and isinstance(meta.get("overall_summary"), dict)
                    and len(scan.days) == rec.completed_days == job.total_days):
                summary, metrics = meta["overall_summary"], meta.get("metrics") or {}
                job.summary, job.metrics = summary, metrics
                done = pb.BacktestCompleted(
                    backtest_id=bid,
                    overall_summary=json_format.ParseDict(summary, results_pb2.OverallSummary(),
                                                          ignore_unknown_fields=True),
                    metrics=_metrics({k: v for k, v in metrics.items() if v is not None}))
                self._end(job, pub, COMPLETED, pb.BacktestEvent(backtest_completed=done))
                return
            was = f"{rec.status}" + (f" ({rec.error_code}: {rec.error_message})" if rec.error_code else "")
            message = (f"this backtest had ended {was}, but its event log lost its last events (a crash or a "
                       f"damaged disk); the {len(scan.days)} days it still holds are kept")
            self._end(job, pub, FAILED, pb.BacktestEvent(backtest_failed=pb.BacktestFailed(
                error_code=ckpt.LOG_REPAIRED, error_message=message, date=job.current_date)),
                error_code=ckpt.LOG_REPAIRED, error_message=message)
        finally:
            pub.close()


def _metrics(values: dict):
    from services.engine.jobs import metrics_message

    return metrics_message(values)

