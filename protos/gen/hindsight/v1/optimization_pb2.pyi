import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hindsight.v1 import results_pb2 as _results_pb2
from hindsight.v1 import strategy_pb2 as _strategy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OptimizationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZATION_STATUS_UNSPECIFIED: _ClassVar[OptimizationStatus]
    OPTIMIZATION_STATUS_QUEUED: _ClassVar[OptimizationStatus]
    OPTIMIZATION_STATUS_RUNNING: _ClassVar[OptimizationStatus]
    OPTIMIZATION_STATUS_COMPLETED: _ClassVar[OptimizationStatus]
    OPTIMIZATION_STATUS_FAILED: _ClassVar[OptimizationStatus]
    OPTIMIZATION_STATUS_CANCELLED: _ClassVar[OptimizationStatus]
OPTIMIZATION_STATUS_UNSPECIFIED: OptimizationStatus
OPTIMIZATION_STATUS_QUEUED: OptimizationStatus
OPTIMIZATION_STATUS_RUNNING: OptimizationStatus
OPTIMIZATION_STATUS_COMPLETED: OptimizationStatus
OPTIMIZATION_STATUS_FAILED: OptimizationStatus
OPTIMIZATION_STATUS_CANCELLED: OptimizationStatus

class ParameterSpace(_message.Message):
    __slots__ = ("parameters", "constraints")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[Parameter]
    constraints: _containers.RepeatedCompositeFieldContainer[ParameterConstraint]
    def __init__(self, parameters: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., constraints: _Optional[_Iterable[_Union[ParameterConstraint, _Mapping]]] = ...) -> None: ...

class Parameter(_message.Message):
    __slots__ = ("name", "path", "int_range", "float_range", "choices")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    INT_RANGE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_RANGE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    int_range: IntRange
    float_range: FloatRange
    choices: Choices
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., int_range: _Optional[_Union[IntRange, _Mapping]] = ..., float_range: _Optional[_Union[FloatRange, _Mapping]] = ..., choices: _Optional[_Union[Choices, _Mapping]] = ...) -> None: ...

class IntRange(_message.Message):
    __slots__ = ("low", "high", "step", "log")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    low: int
    high: int
    step: int
    log: bool
    def __init__(self, low: _Optional[int] = ..., high: _Optional[int] = ..., step: _Optional[int] = ..., log: _Optional[bool] = ...) -> None: ...

class FloatRange(_message.Message):
    __slots__ = ("low", "high", "step", "log")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    step: float
    log: bool
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ..., step: _Optional[float] = ..., log: _Optional[bool] = ...) -> None: ...

class Choices(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class ParameterConstraint(_message.Message):
    __slots__ = ("lhs", "op", "rhs")
    LHS_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    RHS_FIELD_NUMBER: _ClassVar[int]
    lhs: str
    op: str
    rhs: str
    def __init__(self, lhs: _Optional[str] = ..., op: _Optional[str] = ..., rhs: _Optional[str] = ...) -> None: ...

class Objective(_message.Message):
    __slots__ = ("metric", "direction")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    metric: str
    direction: str
    def __init__(self, metric: _Optional[str] = ..., direction: _Optional[str] = ...) -> None: ...

class MetricFilter(_message.Message):
    __slots__ = ("metric", "min", "max")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    metric: str
    min: float
    max: float
    def __init__(self, metric: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class WalkForward(_message.Message):
    __slots__ = ("train_days", "test_days", "step_days", "anchored")
    TRAIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    TEST_DAYS_FIELD_NUMBER: _ClassVar[int]
    STEP_DAYS_FIELD_NUMBER: _ClassVar[int]
    ANCHORED_FIELD_NUMBER: _ClassVar[int]
    train_days: int
    test_days: int
    step_days: int
    anchored: bool
    def __init__(self, train_days: _Optional[int] = ..., test_days: _Optional[int] = ..., step_days: _Optional[int] = ..., anchored: _Optional[bool] = ...) -> None: ...

class OptimizationConfig(_message.Message):
    __slots__ = ("strategy", "space", "method", "objectives", "filters", "max_trials", "seed", "population_size", "grid_cap", "top_k", "symbol", "start_date", "end_date", "timeframe", "initial_capital", "commission_pct", "slippage_pct", "walk_forward", "strategy_version")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    GRID_CAP_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_PCT_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_PCT_FIELD_NUMBER: _ClassVar[int]
    WALK_FORWARD_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy: _strategy_pb2.Strategy
    space: ParameterSpace
    method: str
    objectives: _containers.RepeatedCompositeFieldContainer[Objective]
    filters: _containers.RepeatedCompositeFieldContainer[MetricFilter]
    max_trials: int
    seed: int
    population_size: int
    grid_cap: int
    top_k: int
    symbol: str
    start_date: str
    end_date: str
    timeframe: str
    initial_capital: float
    commission_pct: float
    slippage_pct: float
    walk_forward: WalkForward
    strategy_version: int
    def __init__(self, strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., space: _Optional[_Union[ParameterSpace, _Mapping]] = ..., method: _Optional[str] = ..., objectives: _Optional[_Iterable[_Union[Objective, _Mapping]]] = ..., filters: _Optional[_Iterable[_Union[MetricFilter, _Mapping]]] = ..., max_trials: _Optional[int] = ..., seed: _Optional[int] = ..., population_size: _Optional[int] = ..., grid_cap: _Optional[int] = ..., top_k: _Optional[int] = ..., symbol: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., timeframe: _Optional[str] = ..., initial_capital: _Optional[float] = ..., commission_pct: _Optional[float] = ..., slippage_pct: _Optional[float] = ..., walk_forward: _Optional[_Union[WalkForward, _Mapping]] = ..., strategy_version: _Optional[int] = ...) -> None: ...

class StartOptimizationRequest(_message.Message):
    __slots__ = ("config", "strategy_id", "request_id", "strategy_version")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    config: OptimizationConfig
    strategy_id: str
    request_id: str
    strategy_version: int
    def __init__(self, config: _Optional[_Union[OptimizationConfig, _Mapping]] = ..., strategy_id: _Optional[str] = ..., request_id: _Optional[str] = ..., strategy_version: _Optional[int] = ...) -> None: ...

class StartOptimizationResponse(_message.Message):
    __slots__ = ("optimization_id", "status", "total_trials", "stream_url")
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    STREAM_URL_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    status: OptimizationStatus
    total_trials: int
    stream_url: str
    def __init__(self, optimization_id: _Optional[str] = ..., status: _Optional[_Union[OptimizationStatus, str]] = ..., total_trials: _Optional[int] = ..., stream_url: _Optional[str] = ...) -> None: ...

class StreamOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id", "after_event_id")
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    after_event_id: int
    def __init__(self, optimization_id: _Optional[str] = ..., after_event_id: _Optional[int] = ...) -> None: ...

class StreamOptimizationBatchesRequest(_message.Message):
    __slots__ = ("optimization_id", "after_event_id", "max_events")
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    after_event_id: int
    max_events: int
    def __init__(self, optimization_id: _Optional[str] = ..., after_event_id: _Optional[int] = ..., max_events: _Optional[int] = ...) -> None: ...

class OptimizationEventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[OptimizationEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[OptimizationEvent, _Mapping]]] = ...) -> None: ...

class OptimizationProgress(_message.Message):
    __slots__ = ("completed_trials", "total_trials", "percentage", "completed_windows", "total_windows", "estimated_completion")
    COMPLETED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    completed_trials: int
    total_trials: int
    percentage: float
    completed_windows: int
    total_windows: int
    estimated_completion: _timestamp_pb2.Timestamp
    def __init__(self, completed_trials: _Optional[int] = ..., total_trials: _Optional[int] = ..., percentage: _Optional[float] = ..., completed_windows: _Optional[int] = ..., total_windows: _Optional[int] = ..., estimated_completion: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("number", "parameters", "objective_values", "feasible", "metrics", "window")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_VALUES_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    number: int
    parameters: _struct_pb2.Struct
    objective_values: _containers.RepeatedScalarFieldContainer[float]
    feasible: bool
    metrics: _results_pb2.Metrics
    window: int
    def __init__(self, number: _Optional[int] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., objective_values: _Optional[_Iterable[float]] = ..., feasible: _Optional[bool] = ..., metrics: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., window: _Optional[int] = ...) -> None: ...

class OverfittingReport(_message.Message):
    __slots__ = ("deflated_sharpe", "expected_max_sharpe", "winner_sharpe", "trials", "pbo", "cscv_splits", "cscv_combinations", "reading")
    DEFLATED_SHARPE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_MAX_SHARPE_FIELD_NUMBER: _ClassVar[int]
    WINNER_SHARPE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    PBO_FIELD_NUMBER: _ClassVar[int]
    CSCV_SPLITS_FIELD_NUMBER: _ClassVar[int]
    CSCV_COMBINATIONS_FIELD_NUMBER: _ClassVar[int]
    READING_FIELD_NUMBER: _ClassVar[int]
    deflated_sharpe: float
    expected_max_sharpe: float
    winner_sharpe: float
    trials: int
    pbo: float
    cscv_splits: int
    cscv_combinations: int
    reading: str
    def __init__(self, deflated_sharpe: _Optional[float] = ..., expected_max_sharpe: _Optional[float] = ..., winner_sharpe: _Optional[float] = ..., trials: _Optional[int] = ..., pbo: _Optional[float] = ..., cscv_splits: _Optional[int] = ..., cscv_combinations: _Optional[int] = ..., reading: _Optional[str] = ...) -> None: ...

class WalkForwardWindow(_message.Message):
    __slots__ = ("index", "train_start", "train_end", "test_start", "test_end", "parameters", "in_sample", "out_of_sample", "overfitting")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAIN_START_FIELD_NUMBER: _ClassVar[int]
    TRAIN_END_FIELD_NUMBER: _ClassVar[int]
    TEST_START_FIELD_NUMBER: _ClassVar[int]
    TEST_END_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    IN_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    OVERFITTING_FIELD_NUMBER: _ClassVar[int]
    index: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    parameters: _struct_pb2.Struct
    in_sample: _results_pb2.Metrics
    out_of_sample: _results_pb2.Metrics
    overfitting: OverfittingReport
    def __init__(self, index: _Optional[int] = ..., train_start: _Optional[str] = ..., train_end: _Optional[str] = ..., test_start: _Optional[str] = ..., test_end: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., in_sample: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., out_of_sample: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., overfitting: _Optional[_Union[OverfittingReport, _Mapping]] = ...) -> None: ...

class WalkForwardReport(_message.Message):
    __slots__ = ("windows", "dates", "equity", "out_of_sample", "efficiency")
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    DATES_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[WalkForwardWindow]
    dates: _containers.RepeatedScalarFieldContainer[str]
    equity: _containers.RepeatedScalarFieldContainer[float]
    out_of_sample: _results_pb2.Metrics
    efficiency: float
    def __init__(self, windows: _Optional[_Iterable[_Union[WalkForwardWindow, _Mapping]]] = ..., dates: _Optional[_Iterable[str]] = ..., equity: _Optional[_Iterable[float]] = ..., out_of_sample: _Optional[_Union[_results_pb2.Metrics, _Mapping]] = ..., efficiency: _Optional[float] = ...) -> None: ...

class OptimizationResult(_message.Message):
    __slots__ = ("top", "pareto_front", "overfitting", "walk_forward", "best_strategy")
    TOP_FIELD_NUMBER: _ClassVar[int]
    PARETO_FRONT_FIELD_NUMBER: _ClassVar[int]
    OVERFITTING_FIELD_NUMBER: _ClassVar[int]
    WALK_FORWARD_FIELD_NUMBER: _ClassVar[int]
    BEST_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[Trial]
    pareto_front: _containers.RepeatedCompositeFieldContainer[Trial]
    overfitting: OverfittingReport
    walk_forward: WalkForwardReport
    best_strategy: _strategy_pb2.Strategy
    def __init__(self, top: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., pareto_front: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., overfitting: _Optional[_Union[OverfittingReport, _Mapping]] = ..., walk_forward: _Optional[_Union[WalkForwardReport, _Mapping]] = ..., best_strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ...) -> None: ...

class Optimization(_message.Message):
    __slots__ = ("optimization_id", "strategy_id", "status", "config", "progress", "created_at", "started_at", "finished_at", "expires_at", "top", "result", "error_code", "error_message", "stream_url", "last_event_id", "owner")
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STREAM_URL_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    strategy_id: str
    status: OptimizationStatus
    config: OptimizationConfig
    progress: OptimizationProgress
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    top: _containers.RepeatedCompositeFieldContainer[Trial]
    result: OptimizationResult
    error_code: str
    error_message: str
    stream_url: str
    last_event_id: int
    owner: str
    def __init__(self, optimization_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., status: _Optional[_Union[OptimizationStatus, str]] = ..., config: _Optional[_Union[OptimizationConfig, _Mapping]] = ..., progress: _Optional[_Union[OptimizationProgress, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., result: _Optional[_Union[OptimizationResult, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., stream_url: _Optional[str] = ..., last_event_id: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class GetOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id",)
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    def __init__(self, optimization_id: _Optional[str] = ...) -> None: ...

class ListOptimizationsRequest(_message.Message):
    __slots__ = ("strategy_id", "status", "page_size", "page_token", "all_users")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    status: OptimizationStatus
    page_size: int
    page_token: str
    all_users: bool
    def __init__(self, strategy_id: _Optional[str] = ..., status: _Optional[_Union[OptimizationStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., all_users: _Optional[bool] = ...) -> None: ...

class ListOptimizationsResponse(_message.Message):
    __slots__ = ("optimizations", "next_page_token")
    OPTIMIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    optimizations: _containers.RepeatedCompositeFieldContainer[Optimization]
    next_page_token: str
    def __init__(self, optimizations: _Optional[_Iterable[_Union[Optimization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id",)
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    def __init__(self, optimization_id: _Optional[str] = ...) -> None: ...

class DeleteOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id",)
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    def __init__(self, optimization_id: _Optional[str] = ...) -> None: ...

class DeleteOptimizationResponse(_message.Message):
    __slots__ = ("optimization_id",)
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    def __init__(self, optimization_id: _Optional[str] = ...) -> None: ...

class DownloadOptimizationRequest(_message.Message):
    __slots__ = ("optimization_id",)
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    optimization_id: str
    def __init__(self, optimization_id: _Optional[str] = ...) -> None: ...

class OptimizationEvent(_message.Message):
    __slots__ = ("event_id", "optimization_id", "emitted_at", "optimization_started", "trial_completed", "best_updated", "window_completed", "optimization_completed", "optimization_failed", "optimization_cancelled")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_STARTED_FIELD_NUMBER: _ClassVar[int]
    TRIAL_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    BEST_UPDATED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_FAILED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    optimization_id: str
    emitted_at: _timestamp_pb2.Timestamp
    optimization_started: OptimizationStarted
    trial_completed: TrialCompleted
    best_updated: BestUpdated
    window_completed: WindowCompleted
    optimization_completed: OptimizationCompleted
    optimization_failed: OptimizationFailed
    optimization_cancelled: OptimizationCancelled
    def __init__(self, event_id: _Optional[int] = ..., optimization_id: _Optional[str] = ..., emitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., optimization_started: _Optional[_Union[OptimizationStarted, _Mapping]] = ..., trial_completed: _Optional[_Union[TrialCompleted, _Mapping]] = ..., best_updated: _Optional[_Union[BestUpdated, _Mapping]] = ..., window_completed: _Optional[_Union[WindowCompleted, _Mapping]] = ..., optimization_completed: _Optional[_Union[OptimizationCompleted, _Mapping]] = ..., optimization_failed: _Optional[_Union[OptimizationFailed, _Mapping]] = ..., optimization_cancelled: _Optional[_Union[OptimizationCancelled, _Mapping]] = ...) -> None: ...

class OptimizationStarted(_message.Message):
    __slots__ = ("config", "total_trials", "parameters", "objectives", "first_date", "last_date", "total_windows", "base_strategy")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    FIRST_DATE_FIELD_NUMBER: _ClassVar[int]
    LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    BASE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    config: OptimizationConfig
    total_trials: int
    parameters: _containers.RepeatedScalarFieldContainer[str]
    objectives: _containers.RepeatedScalarFieldContainer[str]
    first_date: str
    last_date: str
    total_windows: int
    base_strategy: _strategy_pb2.Strategy
    def __init__(self, config: _Optional[_Union[OptimizationConfig, _Mapping]] = ..., total_trials: _Optional[int] = ..., parameters: _Optional[_Iterable[str]] = ..., objectives: _Optional[_Iterable[str]] = ..., first_date: _Optional[str] = ..., last_date: _Optional[str] = ..., total_windows: _Optional[int] = ..., base_strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ...) -> None: ...

class TrialCompleted(_message.Message):
    __slots__ = ("trial", "progress")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    trial: Trial
    progress: OptimizationProgress
    def __init__(self, trial: _Optional[_Union[Trial, _Mapping]] = ..., progress: _Optional[_Union[OptimizationProgress, _Mapping]] = ...) -> None: ...

class BestUpdated(_message.Message):
    __slots__ = ("best",)
    BEST_FIELD_NUMBER: _ClassVar[int]
    best: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, best: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class WindowCompleted(_message.Message):
    __slots__ = ("window", "progress")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    window: WalkForwardWindow
    progress: OptimizationProgress
    def __init__(self, window: _Optional[_Union[WalkForwardWindow, _Mapping]] = ..., progress: _Optional[_Union[OptimizationProgress, _Mapping]] = ...) -> None: ...

class OptimizationCompleted(_message.Message):
    __slots__ = ("result", "progress")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    result: OptimizationResult
    progress: OptimizationProgress
    def __init__(self, result: _Optional[_Union[OptimizationResult, _Mapping]] = ..., progress: _Optional[_Union[OptimizationProgress, _Mapping]] = ...) -> None: ...

class OptimizationFailed(_message.Message):
    __slots__ = ("error_code", "error_message")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    error_message: str
    def __init__(self, error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class OptimizationCancelled(_message.Message):
    __slots__ = ("reason", "progress")
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    progress: OptimizationProgress
    def __init__(self, reason: _Optional[str] = ..., progress: _Optional[_Union[OptimizationProgress, _Mapping]] = ...) -> None: ...
