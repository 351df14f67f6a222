from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(_message.Message):
    __slots__ = ("name", "description", "session", "indicators", "entries", "exits", "execution", "options", "daily_limits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EXITS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    session: Session
    indicators: _containers.RepeatedCompositeFieldContainer[Indicator]
    entries: _containers.RepeatedCompositeFieldContainer[EntryNode]
    exits: _containers.RepeatedCompositeFieldContainer[ExitNode]
    execution: Execution
    options: OptionSettings
    daily_limits: DailyLimits
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., indicators: _Optional[_Iterable[_Union[Indicator, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[EntryNode, _Mapping]]] = ..., exits: _Optional[_Iterable[_Union[ExitNode, _Mapping]]] = ..., execution: _Optional[_Union[Execution, _Mapping]] = ..., options: _Optional[_Union[OptionSettings, _Mapping]] = ..., daily_limits: _Optional[_Union[DailyLimits, _Mapping]] = ...) -> None: ...

class OptionSettings(_message.Message):
    __slots__ = ("lot_size", "strike_step")
    LOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    STRIKE_STEP_FIELD_NUMBER: _ClassVar[int]
    lot_size: int
    strike_step: float
    def __init__(self, lot_size: _Optional[int] = ..., strike_step: _Optional[float] = ...) -> None: ...

class DailyLimits(_message.Message):
    __slots__ = ("max_loss", "max_profit")
    MAX_LOSS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROFIT_FIELD_NUMBER: _ClassVar[int]
    max_loss: float
    max_profit: float
    def __init__(self, max_loss: _Optional[float] = ..., max_profit: _Optional[float] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("timezone", "calendar", "open_time", "close_time", "square_off_time")
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    SQUARE_OFF_TIME_FIELD_NUMBER: _ClassVar[int]
    timezone: str
    calendar: str
    open_time: str
    close_time: str
    square_off_time: str
    def __init__(self, timezone: _Optional[str] = ..., calendar: _Optional[str] = ..., open_time: _Optional[str] = ..., close_time: _Optional[str] = ..., square_off_time: _Optional[str] = ...) -> None: ...

class Indicator(_message.Message):
    __slots__ = ("id", "kind", "source", "period", "std_dev", "fast_period", "slow_period", "signal_period")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    STD_DEV_FIELD_NUMBER: _ClassVar[int]
    FAST_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SLOW_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_PERIOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    source: str
    period: int
    std_dev: float
    fast_period: int
    slow_period: int
    signal_period: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., source: _Optional[str] = ..., period: _Optional[int] = ..., std_dev: _Optional[float] = ..., fast_period: _Optional[int] = ..., slow_period: _Optional[int] = ..., signal_period: _Optional[int] = ...) -> None: ...

class Operand(_message.Message):
    __slots__ = ("field", "indicator", "value", "time", "position_mtm", "leg_premium", "offset")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    POSITION_MTM_FIELD_NUMBER: _ClassVar[int]
    LEG_PREMIUM_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    field: str
    indicator: str
    value: float
    time: str
    position_mtm: str
    leg_premium: str
    offset: int
    def __init__(self, field: _Optional[str] = ..., indicator: _Optional[str] = ..., value: _Optional[float] = ..., time: _Optional[str] = ..., position_mtm: _Optional[str] = ..., leg_premium: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("lhs", "op", "rhs", "all", "any")
    LHS_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    RHS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    lhs: Operand
    op: str
    rhs: Operand
    all: _containers.RepeatedCompositeFieldContainer[Condition]
    any: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, lhs: _Optional[_Union[Operand, _Mapping]] = ..., op: _Optional[str] = ..., rhs: _Optional[_Union[Operand, _Mapping]] = ..., all: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., any: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., **kwargs) -> None: ...

class Quantity(_message.Message):
    __slots__ = ("units", "lots", "equity_pct", "lot_size")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    LOTS_FIELD_NUMBER: _ClassVar[int]
    EQUITY_PCT_FIELD_NUMBER: _ClassVar[int]
    LOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    units: float
    lots: float
    equity_pct: float
    lot_size: float
    def __init__(self, units: _Optional[float] = ..., lots: _Optional[float] = ..., equity_pct: _Optional[float] = ..., lot_size: _Optional[float] = ...) -> None: ...

class StopRule(_message.Message):
    __slots__ = ("pct", "points", "atr_multiple", "atr")
    PCT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    ATR_MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    ATR_FIELD_NUMBER: _ClassVar[int]
    pct: float
    points: float
    atr_multiple: float
    atr: str
    def __init__(self, pct: _Optional[float] = ..., points: _Optional[float] = ..., atr_multiple: _Optional[float] = ..., atr: _Optional[str] = ...) -> None: ...

class EntryNode(_message.Message):
    __slots__ = ("id", "name", "side", "when", "quantity", "max_entries_per_day", "max_re_entries", "reverse", "stop_loss", "take_profit", "trailing_stop", "max_bars", "legs", "position")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_RE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    TRAILING_STOP_FIELD_NUMBER: _ClassVar[int]
    MAX_BARS_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    side: str
    when: Condition
    quantity: Quantity
    max_entries_per_day: int
    max_re_entries: int
    reverse: bool
    stop_loss: StopRule
    take_profit: StopRule
    trailing_stop: StopRule
    max_bars: int
    legs: _containers.RepeatedCompositeFieldContainer[Leg]
    position: PositionRisk
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., side: _Optional[str] = ..., when: _Optional[_Union[Condition, _Mapping]] = ..., quantity: _Optional[_Union[Quantity, _Mapping]] = ..., max_entries_per_day: _Optional[int] = ..., max_re_entries: _Optional[int] = ..., reverse: _Optional[bool] = ..., stop_loss: _Optional[_Union[StopRule, _Mapping]] = ..., take_profit: _Optional[_Union[StopRule, _Mapping]] = ..., trailing_stop: _Optional[_Union[StopRule, _Mapping]] = ..., max_bars: _Optional[int] = ..., legs: _Optional[_Iterable[_Union[Leg, _Mapping]]] = ..., position: _Optional[_Union[PositionRisk, _Mapping]] = ...) -> None: ...

class Leg(_message.Message):
    __slots__ = ("id", "option_type", "side", "lots", "expiry", "atm_offset", "closest_premium", "delta", "spot_pct", "straddle_width", "stop_loss", "take_profit")
    ID_FIELD_NUMBER: _ClassVar[int]
    OPTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    LOTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    ATM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CLOSEST_PREMIUM_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    SPOT_PCT_FIELD_NUMBER: _ClassVar[int]
    STRADDLE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    option_type: str
    side: str
    lots: int
    expiry: ExpirySelector
    atm_offset: int
    closest_premium: PremiumTarget
    delta: float
    spot_pct: float
    straddle_width: float
    stop_loss: StopRule
    take_profit: StopRule
    def __init__(self, id: _Optional[str] = ..., option_type: _Optional[str] = ..., side: _Optional[str] = ..., lots: _Optional[int] = ..., expiry: _Optional[_Union[ExpirySelector, _Mapping]] = ..., atm_offset: _Optional[int] = ..., closest_premium: _Optional[_Union[PremiumTarget, _Mapping]] = ..., delta: _Optional[float] = ..., spot_pct: _Optional[float] = ..., straddle_width: _Optional[float] = ..., stop_loss: _Optional[_Union[StopRule, _Mapping]] = ..., take_profit: _Optional[_Union[StopRule, _Mapping]] = ...) -> None: ...

class ExpirySelector(_message.Message):
    __slots__ = ("kind", "offset")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    kind: str
    offset: int
    def __init__(self, kind: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class PremiumTarget(_message.Message):
    __slots__ = ("premium", "qualifier")
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    premium: float
    qualifier: str
    def __init__(self, premium: _Optional[float] = ..., qualifier: _Optional[str] = ...) -> None: ...

class PositionRisk(_message.Message):
    __slots__ = ("stop_loss_pct", "take_profit_pct", "mtm_stop_loss", "mtm_take_profit")
    STOP_LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_PCT_FIELD_NUMBER: _ClassVar[int]
    MTM_STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    MTM_TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    stop_loss_pct: float
    take_profit_pct: float
    mtm_stop_loss: float
    mtm_take_profit: float
    def __init__(self, stop_loss_pct: _Optional[float] = ..., take_profit_pct: _Optional[float] = ..., mtm_stop_loss: _Optional[float] = ..., mtm_take_profit: _Optional[float] = ...) -> None: ...

class ExitNode(_message.Message):
    __slots__ = ("id", "name", "when", "closes")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    CLOSES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    when: Condition
    closes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., when: _Optional[_Union[Condition, _Mapping]] = ..., closes: _Optional[_Iterable[str]] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("fill", "commission_pct", "slippage_pct", "initial_capital", "timeframe", "warmup_bars")
    FILL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_PCT_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_PCT_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    WARMUP_BARS_FIELD_NUMBER: _ClassVar[int]
    fill: str
    commission_pct: float
    slippage_pct: float
    initial_capital: float
    timeframe: str
    warmup_bars: int
    def __init__(self, fill: _Optional[str] = ..., commission_pct: _Optional[float] = ..., slippage_pct: _Optional[float] = ..., initial_capital: _Optional[float] = ..., timeframe: _Optional[str] = ..., warmup_bars: _Optional[int] = ...) -> None: ...
