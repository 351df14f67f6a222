"""The index row of one backtest (`BacktestRecord`) and the status names it may carry.

Times are float seconds since the Unix epoch (UTC): they sort, subtract and compare to a TTL
without parsing; the service renders them as `google.protobuf.Timestamp`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
ACTIVE_STATUSES = frozenset({QUEUED, RUNNING})
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    return status


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """What the index knows of one backtest. `summary_json`/`config_json` are opaque text."""

    backtest_id: str
    strategy_id: str
    created_at: float
    status: str = QUEUED
    caller: str = ""
    request_id: str = ""  # "" means no idempotency key
    symbol: str = ""
    start_date: str = ""
    end_date: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None  # None: never expires by TTL
    last_event_id: int = 0
    total_days: int = 0
    completed_days: int = 0
    current_date: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    summary_json: str | None = None
    config_json: str | None = None
    stored_bytes: int = 0  # what its log, day files and metadata take on disk (set as it ends)

    def __post_init__(self) -> None:
        check_status(self.status)
        if not self.backtest_id:
            raise ValueError("backtest_id must not be empty")


Records = list[BacktestRecord]
Page = tuple[Records, str | None]  # one page of a listing and the next page's token
Event = tuple[int, bytes]  # (event id, payload) as read from an event log

RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(BacktestRecord))
UPDATABLE_FIELDS = frozenset(RECORD_FIELDS) - {"backtest_id"}
