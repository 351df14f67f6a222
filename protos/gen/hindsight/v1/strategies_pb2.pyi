import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hindsight.v1 import strategy_pb2 as _strategy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SavedStrategy(_message.Message):
    __slots__ = ("strategy_id", "version", "strategy", "description", "created_at", "latest_version", "first_created_at", "owner", "warmup_bars")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRST_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    WARMUP_BARS_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    version: int
    strategy: _strategy_pb2.Strategy
    description: str
    created_at: _timestamp_pb2.Timestamp
    latest_version: int
    first_created_at: _timestamp_pb2.Timestamp
    owner: str
    warmup_bars: int
    def __init__(self, strategy_id: _Optional[str] = ..., version: _Optional[int] = ..., strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_version: _Optional[int] = ..., first_created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owner: _Optional[str] = ..., warmup_bars: _Optional[int] = ...) -> None: ...

class CreateStrategyRequest(_message.Message):
    __slots__ = ("strategy_id", "strategy", "description")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    strategy: _strategy_pb2.Strategy
    description: str
    def __init__(self, strategy_id: _Optional[str] = ..., strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class GetStrategyRequest(_message.Message):
    __slots__ = ("strategy_id", "version")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    version: int
    def __init__(self, strategy_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies", "next_page_token")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[SavedStrategy]
    next_page_token: str
    def __init__(self, strategies: _Optional[_Iterable[_Union[SavedStrategy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListStrategyVersionsRequest(_message.Message):
    __slots__ = ("strategy_id",)
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    def __init__(self, strategy_id: _Optional[str] = ...) -> None: ...

class ListStrategyVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[SavedStrategy]
    def __init__(self, versions: _Optional[_Iterable[_Union[SavedStrategy, _Mapping]]] = ...) -> None: ...

class UpdateStrategyRequest(_message.Message):
    __slots__ = ("strategy_id", "strategy", "description", "expected_version")
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    strategy: _strategy_pb2.Strategy
    description: str
    expected_version: int
    def __init__(self, strategy_id: _Optional[str] = ..., strategy: _Optional[_Union[_strategy_pb2.Strategy, _Mapping]] = ..., description: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteStrategyRequest(_message.Message):
    __slots__ = ("strategy_id",)
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    def __init__(self, strategy_id: _Optional[str] = ...) -> None: ...

class DeleteStrategyResponse(_message.Message):
    __slots__ = ("strategy_id",)
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_id: str
    def __init__(self, strategy_id: _Optional[str] = ...) -> None: ...
