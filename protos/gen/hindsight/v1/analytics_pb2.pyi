from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from hindsight.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetAnalyticsRequest(_message.Message):
    __slots__ = ("backtest_id", "rolling_window_days", "histogram_bins")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLING_WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_BINS_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    rolling_window_days: int
    histogram_bins: int
    def __init__(self, backtest_id: _Optional[str] = ..., rolling_window_days: _Optional[int] = ..., histogram_bins: _Optional[int] = ...) -> None: ...

class PeriodReturn(_message.Message):
    __slots__ = ("year", "month", "return_pct", "pnl", "trading_days", "trades")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    TRADING_DAYS_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    return_pct: float
    pnl: float
    trading_days: int
    trades: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., return_pct: _Optional[float] = ..., pnl: _Optional[float] = ..., trading_days: _Optional[int] = ..., trades: _Optional[int] = ...) -> None: ...

class RollingPoint(_message.Message):
    __slots__ = ("date", "sharpe", "volatility_pct", "return_pct")
    DATE_FIELD_NUMBER: _ClassVar[int]
    SHARPE_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_PCT_FIELD_NUMBER: _ClassVar[int]
    RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    date: str
    sharpe: float
    volatility_pct: float
    return_pct: float
    def __init__(self, date: _Optional[str] = ..., sharpe: _Optional[float] = ..., volatility_pct: _Optional[float] = ..., return_pct: _Optional[float] = ...) -> None: ...

class ReturnsDistribution(_message.Message):
    __slots__ = ("bin_edges", "counts", "normal_counts", "days", "mean_pct", "std_pct", "skew", "kurtosis", "min_pct", "max_pct", "var_95_pct", "cvar_95_pct", "jarque_bera", "jarque_bera_p_value")
    BIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    NORMAL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    MEAN_PCT_FIELD_NUMBER: _ClassVar[int]
    STD_PCT_FIELD_NUMBER: _ClassVar[int]
    SKEW_FIELD_NUMBER: _ClassVar[int]
    KURTOSIS_FIELD_NUMBER: _ClassVar[int]
    MIN_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_PCT_FIELD_NUMBER: _ClassVar[int]
    VAR_95_PCT_FIELD_NUMBER: _ClassVar[int]
    CVAR_95_PCT_FIELD_NUMBER: _ClassVar[int]
    JARQUE_BERA_FIELD_NUMBER: _ClassVar[int]
    JARQUE_BERA_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    bin_edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    normal_counts: _containers.RepeatedScalarFieldContainer[float]
    days: int
    mean_pct: float
    std_pct: float
    skew: float
    kurtosis: float
    min_pct: float
    max_pct: float
    var_95_pct: float
    cvar_95_pct: float
    jarque_bera: float
    jarque_bera_p_value: float
    def __init__(self, bin_edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ..., normal_counts: _Optional[_Iterable[float]] = ..., days: _Optional[int] = ..., mean_pct: _Optional[float] = ..., std_pct: _Optional[float] = ..., skew: _Optional[float] = ..., kurtosis: _Optional[float] = ..., min_pct: _Optional[float] = ..., max_pct: _Optional[float] = ..., var_95_pct: _Optional[float] = ..., cvar_95_pct: _Optional[float] = ..., jarque_bera: _Optional[float] = ..., jarque_bera_p_value: _Optional[float] = ...) -> None: ...

class TradePoint(_message.Message):
    __slots__ = ("trade_id", "entry_time", "exit_time", "duration_minutes", "pnl", "return_pct", "entry_hour", "entry_minute_of_day", "side", "exit_reason", "node_id")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HOUR_FIELD_NUMBER: _ClassVar[int]
    ENTRY_MINUTE_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    entry_time: str
    exit_time: str
    duration_minutes: float
    pnl: float
    return_pct: float
    entry_hour: int
    entry_minute_of_day: int
    side: str
    exit_reason: str
    node_id: str
    def __init__(self, trade_id: _Optional[str] = ..., entry_time: _Optional[str] = ..., exit_time: _Optional[str] = ..., duration_minutes: _Optional[float] = ..., pnl: _Optional[float] = ..., return_pct: _Optional[float] = ..., entry_hour: _Optional[int] = ..., entry_minute_of_day: _Optional[int] = ..., side: _Optional[str] = ..., exit_reason: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class DrawdownPeriod(_message.Message):
    __slots__ = ("start", "trough", "recovery", "depth_pct", "length_days", "decline_days", "recovery_days")
    START_FIELD_NUMBER: _ClassVar[int]
    TROUGH_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    DEPTH_PCT_FIELD_NUMBER: _ClassVar[int]
    LENGTH_DAYS_FIELD_NUMBER: _ClassVar[int]
    DECLINE_DAYS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_DAYS_FIELD_NUMBER: _ClassVar[int]
    start: str
    trough: str
    recovery: str
    depth_pct: float
    length_days: int
    decline_days: int
    recovery_days: int
    def __init__(self, start: _Optional[str] = ..., trough: _Optional[str] = ..., recovery: _Optional[str] = ..., depth_pct: _Optional[float] = ..., length_days: _Optional[int] = ..., decline_days: _Optional[int] = ..., recovery_days: _Optional[int] = ...) -> None: ...

class GroupStats(_message.Message):
    __slots__ = ("key", "trades", "pnl", "avg_pnl", "win_rate_pct", "avg_duration_minutes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    AVG_PNL_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_PCT_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    key: str
    trades: int
    pnl: float
    avg_pnl: float
    win_rate_pct: float
    avg_duration_minutes: float
    def __init__(self, key: _Optional[str] = ..., trades: _Optional[int] = ..., pnl: _Optional[float] = ..., avg_pnl: _Optional[float] = ..., win_rate_pct: _Optional[float] = ..., avg_duration_minutes: _Optional[float] = ...) -> None: ...

class Analytics(_message.Message):
    __slots__ = ("backtest_id", "monthly_returns", "yearly_returns", "rolling_window_days", "rolling", "returns_distribution", "trades", "drawdowns", "pnl_by_weekday", "pnl_by_entry_hour", "exit_reasons", "metrics", "cached")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_RETURNS_FIELD_NUMBER: _ClassVar[int]
    YEARLY_RETURNS_FIELD_NUMBER: _ClassVar[int]
    ROLLING_WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    ROLLING_FIELD_NUMBER: _ClassVar[int]
    RETURNS_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWNS_FIELD_NUMBER: _ClassVar[int]
    PNL_BY_WEEKDAY_FIELD_NUMBER: _ClassVar[int]
    PNL_BY_ENTRY_HOUR_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    monthly_returns: _containers.RepeatedCompositeFieldContainer[PeriodReturn]
    yearly_returns: _containers.RepeatedCompositeFieldContainer[PeriodReturn]
    rolling_window_days: int
    rolling: _containers.RepeatedCompositeFieldContainer[RollingPoint]
    returns_distribution: ReturnsDistribution
    trades: _containers.RepeatedCompositeFieldContainer[TradePoint]
    drawdowns: _containers.RepeatedCompositeFieldContainer[DrawdownPeriod]
    pnl_by_weekday: _containers.RepeatedCompositeFieldContainer[GroupStats]
    pnl_by_entry_hour: _containers.RepeatedCompositeFieldContainer[GroupStats]
    exit_reasons: _containers.RepeatedCompositeFieldContainer[GroupStats]
    metrics: _results_pb2.Metrics
    cached: bool
    def __init__(self, backtest_id: _Optional[str] = ..., monthly_returns: _Optional[_Iterable[_Union[PeriodReturn, _Mapping]]] = ..., yearly_returns: _Optional[_Iterable[_Union[PeriodReturn, _Mapping]]] = ..., rolling_window_days: _Optional[int] = ..., rolling: _Optional[_Iterable[_Union[RollingPoint, _Mapping]]] = ..., returns_distribution: _Optional[_Union[ReturnsDistribution, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[TradePoint, _Mapping]]] = ..., drawdowns: _Optional[_Iterable[_Union[DrawdownPeriod, _Mapping]]] = ..., pnl_by_weekday: _Optional[_Iterable[_Union[GroupStats, _Mapping]]] = ..., pnl_by_entry_hour: _Optional[_Iterable[_Union[GroupStats, _Mapping]]] = ..., exit_reasons: _Optional[_Iterable[_Union[GroupStats, _Mapping]]] = ..., metrics: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., cached: _Optional[bool] = ...) -> None: ...

class CompareBacktestsRequest(_message.Message):
    __slots__ = ("backtest_ids",)
    BACKTEST_IDS_FIELD_NUMBER: _ClassVar[int]
    backtest_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, backtest_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ComparedBacktest(_message.Message):
    __slots__ = ("backtest_id", "strategy_id", "strategy_name", "symbol", "start_date", "end_date", "metrics", "return_pct", "first_index", "last_index")
    BACKTEST_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    backtest_id: str
    strategy_id: str
    strategy_name: str
    symbol: str
    start_date: str
    end_date: str
    metrics: _results_pb2.Metrics
    return_pct: _containers.RepeatedScalarFieldContainer[float]
    first_index: int
    last_index: int
    def __init__(self, backtest_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., strategy_name: _Optional[str] = ..., symbol: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., metrics: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., return_pct: _Optional[_Iterable[float]] = ..., first_index: _Optional[int] = ..., last_index: _Optional[int] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("backtests", "dates")
    BACKTESTS_FIELD_NUMBER: _ClassVar[int]
    DATES_FIELD_NUMBER: _ClassVar[int]
    backtests: _containers.RepeatedCompositeFieldContainer[ComparedBacktest]
    dates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, backtests: _Optional[_Iterable[_Union[ComparedBacktest, _Mapping]]] = ..., dates: _Optional[_Iterable[str]] = ...) -> None: ...
