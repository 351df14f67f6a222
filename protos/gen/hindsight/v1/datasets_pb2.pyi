from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from hindsight.v1 import backtest_service_pb2 as _backtest_service_pb2
from hindsight.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QualitySeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_SEVERITY_UNSPECIFIED: _ClassVar[QualitySeverity]
    QUALITY_SEVERITY_INFO: _ClassVar[QualitySeverity]
    QUALITY_SEVERITY_WARNING: _ClassVar[QualitySeverity]
    QUALITY_SEVERITY_ERROR: _ClassVar[QualitySeverity]
QUALITY_SEVERITY_UNSPECIFIED: QualitySeverity
QUALITY_SEVERITY_INFO: QualitySeverity
QUALITY_SEVERITY_WARNING: QualitySeverity
QUALITY_SEVERITY_ERROR: QualitySeverity

class UploadDatasetRequest(_message.Message):
    __slots__ = ("symbol", "timezone", "calendar", "timeframe", "description", "format", "chunk")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    timezone: str
    calendar: str
    timeframe: str
    description: str
    format: str
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, symbol: _Optional[str] = ..., timezone: _Optional[str] = ..., calendar: _Optional[str] = ..., timeframe: _Optional[str] = ..., description: _Optional[str] = ..., format: _Optional[str] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class UploadOptionChainRequest(_message.Message):
    __slots__ = ("symbol", "format", "chunk")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    format: str
    chunk: _httpbody_pb2.HttpBody
    def __init__(self, symbol: _Optional[str] = ..., format: _Optional[str] = ..., chunk: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("symbol", "preview_rows")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_ROWS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    preview_rows: int
    def __init__(self, symbol: _Optional[str] = ..., preview_rows: _Optional[int] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class DatasetDetail(_message.Message):
    __slots__ = ("dataset", "quality", "head", "tail")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    dataset: _backtest_service_pb2.Dataset
    quality: QualityReport
    head: _containers.RepeatedCompositeFieldContainer[_results_pb2.Candle]
    tail: _containers.RepeatedCompositeFieldContainer[_results_pb2.Candle]
    def __init__(self, dataset: _Optional[_Union[_backtest_service_pb2.Dataset, _Mapping]] = ..., quality: _Optional[_Union[QualityReport, _Mapping]] = ..., head: _Optional[_Iterable[_Union[_results_pb2.Candle, _Mapping]]] = ..., tail: _Optional[_Iterable[_Union[_results_pb2.Candle, _Mapping]]] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("score", "usable", "rows", "timeframe", "first_timestamp", "last_timestamp", "sessions", "expected_sessions", "min_price", "max_price", "mean_volume", "findings", "passed")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    MEAN_VOLUME_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    score: float
    usable: bool
    rows: int
    timeframe: str
    first_timestamp: str
    last_timestamp: str
    sessions: int
    expected_sessions: int
    min_price: float
    max_price: float
    mean_volume: float
    findings: _containers.RepeatedCompositeFieldContainer[QualityFinding]
    passed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, score: _Optional[float] = ..., usable: _Optional[bool] = ..., rows: _Optional[int] = ..., timeframe: _Optional[str] = ..., first_timestamp: _Optional[str] = ..., last_timestamp: _Optional[str] = ..., sessions: _Optional[int] = ..., expected_sessions: _Optional[int] = ..., min_price: _Optional[float] = ..., max_price: _Optional[float] = ..., mean_volume: _Optional[float] = ..., findings: _Optional[_Iterable[_Union[QualityFinding, _Mapping]]] = ..., passed: _Optional[_Iterable[str]] = ...) -> None: ...

class QualityFinding(_message.Message):
    __slots__ = ("check", "severity", "message", "column", "rows", "count", "fix", "examples")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    check: str
    severity: QualitySeverity
    message: str
    column: str
    rows: _containers.RepeatedScalarFieldContainer[int]
    count: int
    fix: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, check: _Optional[str] = ..., severity: _Optional[_Union[QualitySeverity, str]] = ..., message: _Optional[str] = ..., column: _Optional[str] = ..., rows: _Optional[_Iterable[int]] = ..., count: _Optional[int] = ..., fix: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...
