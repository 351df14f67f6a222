import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hindsight.v1 import options_pb2 as _options_pb2
from hindsight.v1 import results_pb2 as _results_pb2
from hindsight.v1 import strategy_pb2 as _strategy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BacktestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKTEST_STATUS_UNSPECIFIED: _ClassVar[BacktestStatus]
    BACKTEST_STATUS_QUEUED: _ClassVar[BacktestStatus]
    BACKTEST_STATUS_RUNNING: _ClassVar[BacktestStatus]
    BACKTEST_STATUS_COMPLETED: _ClassVar[BacktestStatus]
    BACKTEST_STATUS_FAILED: _ClassVar[BacktestStatus]
    BACKTEST_STATUS_CANCELLED: _ClassVar[BacktestStatus]
BACKTEST_STATUS_UNSPECIFIED: BacktestStatus
BACKTEST_STATUS_QUEUED: BacktestStatus
BACKTEST_STATUS_RUNNING: BacktestStatus
BACKTEST_STATUS_COMPLETED: BacktestStatus
BACKTEST_STATUS_FAILED: BacktestStatus
BACKTEST_STATUS_CANCELLED: BacktestStatus

class StartBacktestRequest(_message.Message):
    __slots__ = ("strategy", "strategy_id", "symbol", "start_date", "end_date", "timeframe", "initial_capital", "commission_pct", "slippage_pct", "tick_interval", "request_id", "strategy_version")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_PCT_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_PCT_FIELD_NUMBER: _ClassVar[int]
    TICK_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy: _strategy_pb2.Strategy
    strategy_id: str
    symbol: str
    start_date: str
    end_date: str
    timeframe: str
    initial_capital: float
    commission_pct: float
    slippage_pct: float
    tick_interval: int
    request_id: str
    strategy_version: int
    def __init__(self, strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., strategy_id: _Optional[str] = ..., symbol: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., timeframe: _Optional[str] = ..., initial_capital: _Optional[float] = ..., commission_pct: _Optional[float] = ..., slippage_pct: _Optional[float] = ..., tick_interval: _Optional[int] = ..., request_id: _Optional[str] = ..., strategy_version: _Optional[int] = ...) -> None: ...

class StartBacktestResponse(_message.Message):
    __slots__ = ("backtest_id", "total_days", "status", "stream_url")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STREAM_URL_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    total_days: int
    status: BacktestStatus
    stream_url: str
    def __init__(self, backtest_id: _Optional[str] = ..., total_days: _Optional[int] = ..., status: _Optional[_Union[BacktestStatus, str]] = ..., stream_url: _Optional[str] = ...) -> None: ...

class StreamBacktestRequest(_message.Message):
    __slots__ = ("backtest_id", "after_event_id")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    after_event_id: int
    def __init__(self, backtest_id: _Optional[str] = ..., after_event_id: _Optional[int] = ...) -> None: ...

class StreamBacktestBatchesRequest(_message.Message):
    __slots__ = ("backtest_id", "after_event_id", "max_events")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    after_event_id: int
    max_events: int
    def __init__(self, backtest_id: _Optional[str] = ..., after_event_id: _Optional[int] = ..., max_events: _Optional[int] = ...) -> None: ...

class BacktestEventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BacktestEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[BacktestEvent, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("current_date", "completed_days", "total_days", "percentage", "estimated_completion")
    CURRENT_DATE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_DAYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    current_date: str
    completed_days: int
    total_days: int
    percentage: float
    estimated_completion: _timestamp_pb2.Timestamp
    def __init__(self, current_date: _Optional[str] = ..., completed_days: _Optional[int] = ..., total_days: _Optional[int] = ..., percentage: _Optional[float] = ..., estimated_completion: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BacktestConfig(_message.Message):
    __slots__ = ("strategy", "strategy_id", "symbol", "start_date", "end_date", "timeframe", "initial_capital", "commission_pct", "slippage_pct", "tick_interval", "strategy_version")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_PCT_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_PCT_FIELD_NUMBER: _ClassVar[int]
    TICK_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy: _strategy_pb2.Strategy
    strategy_id: str
    symbol: str
    start_date: str
    end_date: str
    timeframe: str
    initial_capital: float
    commission_pct: float
    slippage_pct: float
    tick_interval: int
    strategy_version: int
    def __init__(self, strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., strategy_id: _Optional[str] = ..., symbol: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., timeframe: _Optional[str] = ..., initial_capital: _Optional[float] = ..., commission_pct: _Optional[float] = ..., slippage_pct: _Optional[float] = ..., tick_interval: _Optional[int] = ..., strategy_version: _Optional[int] = ...) -> None: ...

class Backtest(_message.Message):
    __slots__ = ("backtest_id", "strategy_id", "status", "config", "progress", "created_at", "started_at", "finished_at", "expires_at", "summary", "metrics", "daily_summaries", "error_code", "error_message", "stream_url", "last_event_id", "owner")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DAILY_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STREAM_URL_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    strategy_id: str
    status: BacktestStatus
    config: BacktestConfig
    progress: Progress
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    summary: _results_pb2.OverallSummary
    metrics: _results_pb2.Metrics
    daily_summaries: _containers.RepeatedCompositeFieldContainer[_results_pb2.DailySummary]
    error_code: str
    error_message: str
    stream_url: str
    last_event_id: int
    owner: str
    def __init__(self, backtest_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., status: _Optional[_Union[BacktestStatus, str]] = ..., config: _Optional[_Union[BacktestConfig, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[_Union[_results_pb2.OverallSummary, _Mapping]] = ..., metrics: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., daily_summaries: _Optional[_Iterable[_Union[_results_pb2.DailySummary, _Mapping]]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., stream_url: _Optional[str] = ..., last_event_id: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class GetBacktestRequest(_message.Message):
    __slots__ = ("backtest_id", "omit_days")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    OMIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    omit_days: bool
    def __init__(self, backtest_id: _Optional[str] = ..., omit_days: _Optional[bool] = ...) -> None: ...

class ListBacktestsRequest(_message.Message):
    __slots__ = ("strategy_id", "status", "page_size", "page_token", "all_users")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    status: BacktestStatus
    page_size: int
    page_token: str
    all_users: bool
    def __init__(self, strategy_id: _Optional[str] = ..., status: _Optional[_Union[BacktestStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., all_users: _Optional[bool] = ...) -> None: ...

class ListBacktestsResponse(_message.Message):
    __slots__ = ("backtests", "next_page_token")
    BACKTESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    backtests: _containers.RepeatedCompositeFieldContainer[Backtest]
    next_page_token: str
    def __init__(self, backtests: _Optional[_Iterable[_Union[Backtest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelBacktestRequest(_message.Message):
    __slots__ = ("backtest_id",)
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    def __init__(self, backtest_id: _Optional[str] = ...) -> None: ...

class DeleteBacktestRequest(_message.Message):
    __slots__ = ("backtest_id",)
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    def __init__(self, backtest_id: _Optional[str] = ...) -> None: ...

class DeleteBacktestResponse(_message.Message):
    __slots__ = ("backtest_id",)
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    def __init__(self, backtest_id: _Optional[str] = ...) -> None: ...

class GetDayRequest(_message.Message):
    __slots__ = ("backtest_id", "date")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    date: str
    def __init__(self, backtest_id: _Optional[str] = ..., date: _Optional[str] = ...) -> None: ...

class DownloadDayRequest(_message.Message):
    __slots__ = ("backtest_id", "date")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    date: str
    def __init__(self, backtest_id: _Optional[str] = ..., date: _Optional[str] = ...) -> None: ...

class DownloadBacktestRequest(_message.Message):
    __slots__ = ("backtest_id",)
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    def __init__(self, backtest_id: _Optional[str] = ...) -> None: ...

class ValidateStrategyRequest(_message.Message):
    __slots__ = ("strategy",)
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    strategy: _strategy_pb2.Strategy
    def __init__(self, strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ...) -> None: ...

class StrategyProblem(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ValidateStrategyResponse(_message.Message):
    __slots__ = ("valid", "problems", "warmup_bars")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_BARS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[StrategyProblem]
    warmup_bars: int
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[StrategyProblem, _Mapping]]] = ..., warmup_bars: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCallerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Quota(_message.Message):
    __slots__ = ("name", "limit", "used")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    used: int
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ...) -> None: ...

class Caller(_message.Message):
    __slots__ = ("user_id", "role", "auth_method", "quotas")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AUTH_METHOD_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: str
    auth_method: str
    quotas: _containers.RepeatedCompositeFieldContainer[Quota]
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[str] = ..., auth_method: _Optional[str] = ..., quotas: _Optional[_Iterable[_Union[Quota, _Mapping]]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("symbol", "description", "timeframe", "first_date", "last_date", "bars", "timezone", "calendar", "options", "source", "owner", "quality_score", "created_at", "stored_bytes")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_DATE_FIELD_NUMBER: _ClassVar[int]
    LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    QUALITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    description: str
    timeframe: str
    first_date: str
    last_date: str
    bars: int
    timezone: str
    calendar: str
    options: str
    source: str
    owner: str
    quality_score: float
    created_at: _timestamp_pb2.Timestamp
    stored_bytes: int
    def __init__(self, symbol: _Optional[str] = ..., description: _Optional[str] = ..., timeframe: _Optional[str] = ..., first_date: _Optional[str] = ..., last_date: _Optional[str] = ..., bars: _Optional[int] = ..., timezone: _Optional[str] = ..., calendar: _Optional[str] = ..., options: _Optional[str] = ..., source: _Optional[str] = ..., owner: _Optional[str] = ..., quality_score: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stored_bytes: _Optional[int] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...

class BacktestEvent(_message.Message):
    __slots__ = ("event_id", "backtest_id", "emitted_at", "backtest_started", "day_started", "tick_update", "node_event", "trade_update", "day_completed", "backtest_completed", "backtest_failed", "backtest_cancelled")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_STARTED_FIELD_NUMBER: _ClassVar[int]
    DAY_STARTED_FIELD_NUMBER: _ClassVar[int]
    TICK_UPDATE_FIELD_NUMBER: _ClassVar[int]
    NODE_EVENT_FIELD_NUMBER: _ClassVar[int]
    TRADE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DAY_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_FAILED_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    backtest_id: str
    emitted_at: _timestamp_pb2.Timestamp
    backtest_started: BacktestStarted
    day_started: DayStarted
    tick_update: TickUpdate
    node_event: _results_pb2.NodeEvent
    trade_update: TradeUpdate
    day_completed: DayCompleted
    backtest_completed: BacktestCompleted
    backtest_failed: BacktestFailed
    backtest_cancelled: BacktestCancelled
    def __init__(self, event_id: _Optional[int] = ..., backtest_id: _Optional[str] = ..., emitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backtest_started: _Optional[_Union[BacktestStarted, _Mapping]] = ..., day_started: _Optional[_Union[DayStarted, _Mapping]] = ..., tick_update: _Optional[_Union[TickUpdate, _Mapping]] = ..., node_event: _Optional[_Union[_results_pb2.NodeEvent, _Mapping]] = ..., trade_update: _Optional[_Union[TradeUpdate, _Mapping]] = ..., day_completed: _Optional[_Union[DayCompleted, _Mapping]] = ..., backtest_completed: _Optional[_Union[BacktestCompleted, _Mapping]] = ..., backtest_failed: _Optional[_Union[BacktestFailed, _Mapping]] = ..., backtest_cancelled: _Optional[_Union[BacktestCancelled, _Mapping]] = ...) -> None: ...

class BacktestStarted(_message.Message):
    __slots__ = ("config", "total_days", "first_date", "last_date")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    FIRST_DATE_FIELD_NUMBER: _ClassVar[int]
    LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    config: BacktestConfig
    total_days: int
    first_date: str
    last_date: str
    def __init__(self, config: _Optional[_Union[BacktestConfig, _Mapping]] = ..., total_days: _Optional[int] = ..., first_date: _Optional[str] = ..., last_date: _Optional[str] = ...) -> None: ...

class DayStarted(_message.Message):
    __slots__ = ("date", "day_number", "total_days")
    DATE_FIELD_NUMBER: _ClassVar[int]
    DAY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    date: str
    day_number: int
    total_days: int
    def __init__(self, date: _Optional[str] = ..., day_number: _Optional[int] = ..., total_days: _Optional[int] = ...) -> None: ...

class OpenPosition(_message.Message):
    __slots__ = ("position_id", "symbol", "side", "quantity", "entry_price", "current_price", "unrealized_pnl", "entry_time", "leg_id", "strike", "option_type", "expiry", "underlying_price")
    POSITION_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PRICE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    LEG_ID_FIELD_NUMBER: _ClassVar[int]
    STRIKE_FIELD_NUMBER: _ClassVar[int]
    OPTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_PRICE_FIELD_NUMBER: _ClassVar[int]
    position_id: str
    symbol: str
    side: str
    quantity: float
    entry_price: str
    current_price: str
    unrealized_pnl: str
    entry_time: str
    leg_id: str
    strike: float
    option_type: str
    expiry: str
    underlying_price: float
    def __init__(self, position_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., quantity: _Optional[float] = ..., entry_price: _Optional[str] = ..., current_price: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., entry_time: _Optional[str] = ..., leg_id: _Optional[str] = ..., strike: _Optional[float] = ..., option_type: _Optional[str] = ..., expiry: _Optional[str] = ..., underlying_price: _Optional[float] = ...) -> None: ...

class PnlSummary(_message.Message):
    __slots__ = ("realized_pnl", "unrealized_pnl", "total_pnl", "closed_trades", "open_trades", "equity")
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PNL_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TRADES_FIELD_NUMBER: _ClassVar[int]
    OPEN_TRADES_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    realized_pnl: str
    unrealized_pnl: str
    total_pnl: str
    closed_trades: int
    open_trades: int
    equity: str
    def __init__(self, realized_pnl: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., total_pnl: _Optional[str] = ..., closed_trades: _Optional[int] = ..., open_trades: _Optional[int] = ..., equity: _Optional[str] = ...) -> None: ...

class TickUpdate(_message.Message):
    __slots__ = ("date", "timestamp", "tick", "open_positions", "pnl_summary", "ltp")
    DATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TICK_FIELD_NUMBER: _ClassVar[int]
    OPEN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    PNL_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    LTP_FIELD_NUMBER: _ClassVar[int]
    date: str
    timestamp: str
    tick: int
    open_positions: _containers.RepeatedCompositeFieldContainer[OpenPosition]
    pnl_summary: PnlSummary
    ltp: float
    def __init__(self, date: _Optional[str] = ..., timestamp: _Optional[str] = ..., tick: _Optional[int] = ..., open_positions: _Optional[_Iterable[_Union[OpenPosition, _Mapping]]] = ..., pnl_summary: _Optional[_Union[PnlSummary, _Mapping]] = ..., ltp: _Optional[float] = ...) -> None: ...

class TradeUpdate(_message.Message):
    __slots__ = ("trade", "summary")
    TRADE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    trade: _results_pb2.Trade
    summary: PnlSummary
    def __init__(self, trade: _Optional[_Union[_results_pb2.Trade, _Mapping]] = ..., summary: _Optional[_Union[PnlSummary, _Mapping]] = ...) -> None: ...

class DayCompleted(_message.Message):
    __slots__ = ("date", "day_number", "total_days", "summary", "has_detail_data", "equity", "open_positions", "positions")
    DATE_FIELD_NUMBER: _ClassVar[int]
    DAY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    HAS_DETAIL_DATA_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    OPEN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    date: str
    day_number: int
    total_days: int
    summary: _results_pb2.DaySummary
    has_detail_data: bool
    equity: str
    open_positions: _containers.RepeatedCompositeFieldContainer[OpenPosition]
    positions: _containers.RepeatedCompositeFieldContainer[_results_pb2.PositionSummary]
    def __init__(self, date: _Optional[str] = ..., day_number: _Optional[int] = ..., total_days: _Optional[int] = ..., summary: _Optional[_Union[_results_pb2.DaySummary, _Mapping]] = ..., has_detail_data: _Optional[bool] = ..., equity: _Optional[str] = ..., open_positions: _Optional[_Iterable[_Union[OpenPosition, _Mapping]]] = ..., positions: _Optional[_Iterable[_Union[_results_pb2.PositionSummary, _Mapping]]] = ...) -> None: ...

class BacktestCompleted(_message.Message):
    __slots__ = ("backtest_id", "overall_summary", "metrics")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    OVERALL_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    overall_summary: _results_pb2.OverallSummary
    metrics: _results_pb2.Metrics
    def __init__(self, backtest_id: _Optional[str] = ..., overall_summary: _Optional[_Union[_results_pb2.OverallSummary, _Mapping]] = ..., metrics: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ...) -> None: ...

class BacktestFailed(_message.Message):
    __slots__ = ("error_code", "error_message", "date")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    error_message: str
    date: str
    def __init__(self, error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., date: _Optional[str] = ...) -> None: ...

class BacktestCancelled(_message.Message):
    __slots__ = ("reason", "last_completed_date")
    REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_COMPLETED_DATE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    last_completed_date: str
    def __init__(self, reason: _Optional[str] = ..., last_completed_date: _Optional[str] = ...) -> None: ...
