"""Checkpoints of running backtests, and what a restarted engine reads back to continue one.

The engine is deterministic: the same config over the same data gives the same days, event
bodies and files. So a run is continued by recomputing it, not by restoring the kernel:

- **Checkpoint** (`<backtest_dir>/checkpoint.json`, written by the publisher at a day
  boundary): the last day whose `day_completed` is in the log, that event's id, and a
  fingerprint of the state at that day's end (exact equity, open positions, running totals).
  With fsync on, the day files and the log are synced first, so the checkpoint never claims
  more than what survives a power cut.
- **Continuing** (JobManager): the days up to the checkpoint are recomputed but neither
  written nor published (they only rebuild the running totals); the fingerprint is checked at
  the checkpoint's day; each later event already in the log (a day published after the last
  checkpoint, or part of one) must equal the recomputed body byte for byte (all but its stamp:
  id, backtest id, time); then publishing continues with the next id.
- **Scanning** a log (`scan_log`) finds its `backtest_started`, every `day_completed` (the days
  a reader may see) and a terminal event, without parsing the other events.

A checkpoint is only a shortcut: without a usable one, the run is verified from its first
event. What cannot be verified (a fingerprint or an event that differs: the dataset changed,
say) ends the run with backtest_failed CHECKPOINT_UNUSABLE.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from hindsight.v1 import backtest_service_pb2 as pb

from services.engine import events as ev
from services.engine.core.backtest import DayResult
from services.engine.core.results import money

VERSION = 1
# A checkpoint is taken after a published day when the publisher has caught up with the engine
# (nothing else waiting), and at least this often while it has not: group commit. With fsync
# a checkpoint costs a file-system sync (~25 ms here): a 10-year run takes ~10 of them.
CHECKPOINT_EVERY_S = 0.5
# ... but not more often than this (a run slower than its checkpoints: one per day at most).
CHECKPOINT_MIN_S = 0.1
SCAN_CHUNK = 4096  # events read at a time when scanning a log

UNUSABLE = "CHECKPOINT_UNUSABLE"     # recomputed state and checkpoint/log disagree
RESTARTED = "ENGINE_RESTARTED"       # nothing to continue from (no stored config)
LOG_REPAIRED = "LOG_REPAIRED"        # a finished run's log lost its tail; a terminal event was added


class CheckpointUnusable(Exception):
    """The run cannot be continued from what is stored; it ends with backtest_failed."""

    def __init__(self, message: str, code: str = UNUSABLE):
        super().__init__(message)
        self.code = code


@functools.cache
def boot_id() -> str:
    """This boot of the machine ("" where unknown): a checkpoint written without fsync is
    trusted only within the boot that wrote it (a process crash loses nothing the OS has)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def fingerprint(day: DayResult, totals: ev.RunningTotals) -> str:
    """Digest of the state at a day's end: exact equity (repr of the float), the positions
    carried overnight, the running realized P&L and closed trades."""
    doc = [day.date, day.day_number, repr(float(day.equity)), day.open_positions, repr(float(totals.realized)),
           totals.closed]
    return hashlib.sha256(orjson.dumps(doc, default=repr, option=orjson.OPT_SORT_KEYS)).hexdigest()


def checkpoint_doc(backtest_id: str, day: DayResult, event_id: int, digest: str, durable: bool) -> dict[str, Any]:
    return {"version": VERSION, "backtest_id": backtest_id, "date": day.date, "day_number": day.day_number,
            "event_id": event_id, "fingerprint": digest, "durable": durable, "boot_id": boot_id(),
            "written_at": time.time()}


def daily_row(date: str, summary: dict, equity: str, size: int) -> dict:
    """A daily_summaries row: from a DayResult as it is published, or from its day_completed
    event read back (the same values either way)."""
    return {"date": date, "trades": int(summary["total_trades"]), "pnl": summary["total_pnl"], "equity": equity,
            "has_data": True, "file_size_kb": round(size / 1024.0, 2),
            "winning_trades": int(summary["winning_trades"]), "losing_trades": int(summary["losing_trades"])}


def day_row(day: DayResult, size: int) -> dict:
    return daily_row(day.date, day.summary, money(day.equity), size)


# --- reading a log back ------------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedDay:
    """A day whose day_completed is in the log."""

    date: str
    day_number: int
    event_id: int
    summary: dict
    equity: str


@dataclass
class LogScan:
    last_id: int = 0
    started: pb.BacktestStarted | None = None
    days: list[LoggedDay] = field(default_factory=list)
    terminal: pb.BacktestEvent | None = None  # the last event, when it ends the run

    @property
    def dates(self) -> list[str]:
        return [d.date for d in self.days]

    @property
    def terminal_kind(self) -> str:
        return self.terminal.WhichOneof("event") if self.terminal is not None else ""


def scan_log(log, strict: bool = True) -> LogScan:
    """Read a log once: its started event, its days, its terminal event. Only those events are
    parsed. Days must be numbered 1, 2, 3 ... in order: else CheckpointUnusable, or with
    strict=False the days up to the first out of order."""
    scan = LogScan(last_id=log.last_id)
    after = 0
    while after < scan.last_id:
        page = log.read(after, SCAN_CHUNK)
        if not page:
            break
        for event_id, payload in page:
            _, body = ev.split_stamp(payload)
            kind = ev.body_kind(body)
            if kind == "day_completed":
                done = pb.BacktestEvent.FromString(body).day_completed
                if done.day_number != len(scan.days) + 1:
                    if not strict:
                        continue
                    raise CheckpointUnusable(f"event {event_id} completes day {done.day_number} "
                                             f"({done.date}) after {len(scan.days)} days")
                s = done.summary
                scan.days.append(LoggedDay(done.date, done.day_number, event_id, {
                    "total_trades": s.total_trades, "total_pnl": s.total_pnl, "winning_trades": s.winning_trades,
                    "losing_trades": s.losing_trades}, done.equity))
            elif kind == "backtest_started" and event_id == 1:
                scan.started = pb.BacktestEvent.FromString(body).backtest_started
            elif kind in ev.TERMINAL_KINDS and event_id == scan.last_id:
                scan.terminal = pb.BacktestEvent.FromString(body)
        after = page[-1][0]
    return scan


def last_kind(log) -> str:
    """Kind of the log's last event ("" for an empty log)."""
    if log.last_id == 0:
        return ""
    page = log.read(log.last_id - 1, 1)
    return ev.body_kind(ev.split_stamp(page[0][1])[1]) if page else ""


# --- continuing ----------------------------------------------------------------------------------

@dataclass
class Resume:
    """How a restarted run continues: days 1..replay_until are recomputed only (their files and
    events are kept as they are; the fingerprint is checked at the last); events after
    `verified` up to `log_last` are checked against the recomputed ones, then appended on."""

    replay_until: int          # the checkpoint's day number (0: none usable)
    fingerprint: str           # expected at the end of day replay_until
    log_last: int              # events in the log when the run was resumed
    verified: int              # events up to this id are taken as they are
    days_in_log: int           # days whose day_completed was in the log

    @property
    def pending(self) -> int:
        """Events in the log still to be checked."""
        return self.log_last - self.verified


def plan_resume(checkpoint: dict | None, scan: LogScan) -> Resume:
    """The Resume for a log and its stored checkpoint. A checkpoint that does not fit the log
    (missing, from another boot without fsync, pointing past the log or at another event) is
    ignored: the run is then checked from its first event."""
    n = len(scan.days)
    usable = (
        isinstance(checkpoint, dict) and checkpoint.get("version") == VERSION
        and (checkpoint.get("durable") or (checkpoint.get("boot_id") == boot_id() and boot_id()))
        and isinstance(checkpoint.get("day_number"), int) and 1 <= checkpoint["day_number"] <= n
        and scan.days[checkpoint["day_number"] - 1].event_id == checkpoint.get("event_id")
        and scan.days[checkpoint["day_number"] - 1].date == checkpoint.get("date")
        and isinstance(checkpoint.get("fingerprint"), str)
    )
    if not usable:
        return Resume(replay_until=0, fingerprint="", log_last=scan.last_id, verified=0, days_in_log=n)
    return Resume(replay_until=checkpoint["day_number"], fingerprint=checkpoint["fingerprint"],
                  log_last=scan.last_id, verified=checkpoint["event_id"], days_in_log=n)


def check_bodies(log, resume: Resume, bodies: list[bytes]) -> list[bytes]:
    """Check the first of `bodies` against the events still unchecked in the log; return the
    ones after them (to append). Raises CheckpointUnusable on the first difference."""
    n = min(len(bodies), resume.pending)
    if n <= 0:
        return bodies
    logged = log.read(resume.verified, n)
    if len(logged) != n:
        raise CheckpointUnusable(f"the log ends at event {resume.verified + len(logged)}, before the "
                                 f"{resume.log_last} events it held when the run was resumed")
    for (event_id, payload), body in zip(logged, bodies):
        if ev.split_stamp(payload)[1] != body:
            raise CheckpointUnusable(
                f"event {event_id} in the log ({ev.body_kind(ev.split_stamp(payload)[1]) or 'unknown'}) differs from "
                f"the recomputed one ({ev.body_kind(body)}): the data or the engine changed since it was written")
    resume.verified += n
    return bodies[n:]
