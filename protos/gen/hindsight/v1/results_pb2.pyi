from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Trade(_message.Message):
    __slots__ = ("trade_id", "position_id", "re_entry_num", "symbol", "side", "quantity", "entry_price", "entry_time", "exit_price", "exit_time", "pnl", "pnl_percent", "commission", "duration_minutes", "status", "entry_trigger", "exit_reason", "entry_flow_ids", "exit_flow_ids", "bars_held", "leg_id", "strike", "option_type", "expiry", "lots", "lot_size", "underlying_at_entry", "underlying_at_exit", "iv_at_entry", "iv_at_exit", "delta_at_entry", "delta_at_exit")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_ID_FIELD_NUMBER: _ClassVar[int]
    RE_ENTRY_NUM_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXIT_TIME_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    PNL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TRIGGER_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    EXIT_FLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    BARS_HELD_FIELD_NUMBER: _ClassVar[int]
    LEG_ID_FIELD_NUMBER: _ClassVar[int]
    STRIKE_FIELD_NUMBER: _ClassVar[int]
    OPTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    LOTS_FIELD_NUMBER: _ClassVar[int]
    LOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_AT_ENTRY_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_AT_EXIT_FIELD_NUMBER: _ClassVar[int]
    IV_AT_ENTRY_FIELD_NUMBER: _ClassVar[int]
    IV_AT_EXIT_FIELD_NUMBER: _ClassVar[int]
    DELTA_AT_ENTRY_FIELD_NUMBER: _ClassVar[int]
    DELTA_AT_EXIT_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    position_id: str
    re_entry_num: int
    symbol: str
    side: str
    quantity: float
    entry_price: str
    entry_time: str
    exit_price: str
    exit_time: str
    pnl: str
    pnl_percent: str
    commission: str
    duration_minutes: float
    status: str
    entry_trigger: str
    exit_reason: str
    entry_flow_ids: _containers.RepeatedScalarFieldContainer[str]
    exit_flow_ids: _containers.RepeatedScalarFieldContainer[str]
    bars_held: int
    leg_id: str
    strike: float
    option_type: str
    expiry: str
    lots: int
    lot_size: float
    underlying_at_entry: float
    underlying_at_exit: float
    iv_at_entry: float
    iv_at_exit: float
    delta_at_entry: float
    delta_at_exit: float
    def __init__(self, trade_id: _Optional[str] = ..., position_id: _Optional[str] = ..., re_entry_num: _Optional[int] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., quantity: _Optional[float] = ..., entry_price: _Optional[str] = ..., entry_time: _Optional[str] = ..., exit_price: _Optional[str] = ..., exit_time: _Optional[str] = ..., pnl: _Optional[str] = ..., pnl_percent: _Optional[str] = ..., commission: _Optional[str] = ..., duration_minutes: _Optional[float] = ..., status: _Optional[str] = ..., entry_trigger: _Optional[str] = ..., exit_reason: _Optional[str] = ..., entry_flow_ids: _Optional[_Iterable[str]] = ..., exit_flow_ids: _Optional[_Iterable[str]] = ..., bars_held: _Optional[int] = ..., leg_id: _Optional[str] = ..., strike: _Optional[float] = ..., option_type: _Optional[str] = ..., expiry: _Optional[str] = ..., lots: _Optional[int] = ..., lot_size: _Optional[float] = ..., underlying_at_entry: _Optional[float] = ..., underlying_at_exit: _Optional[float] = ..., iv_at_entry: _Optional[float] = ..., iv_at_exit: _Optional[float] = ..., delta_at_entry: _Optional[float] = ..., delta_at_exit: _Optional[float] = ...) -> None: ...

class PositionSummary(_message.Message):
    __slots__ = ("position_id", "entry_trigger", "trade_ids", "entry_time", "exit_time", "pnl", "commission", "entry_premium", "exit_reason")
    POSITION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TRIGGER_FIELD_NUMBER: _ClassVar[int]
    TRADE_IDS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_TIME_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PREMIUM_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    position_id: str
    entry_trigger: str
    trade_ids: _containers.RepeatedScalarFieldContainer[str]
    entry_time: str
    exit_time: str
    pnl: str
    commission: str
    entry_premium: str
    exit_reason: str
    def __init__(self, position_id: _Optional[str] = ..., entry_trigger: _Optional[str] = ..., trade_ids: _Optional[_Iterable[str]] = ..., entry_time: _Optional[str] = ..., exit_time: _Optional[str] = ..., pnl: _Optional[str] = ..., commission: _Optional[str] = ..., entry_premium: _Optional[str] = ..., exit_reason: _Optional[str] = ...) -> None: ...

class DaySummary(_message.Message):
    __slots__ = ("total_trades", "total_pnl", "winning_trades", "losing_trades", "win_rate", "commission")
    TOTAL_TRADES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PNL_FIELD_NUMBER: _ClassVar[int]
    WINNING_TRADES_FIELD_NUMBER: _ClassVar[int]
    LOSING_TRADES_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    total_trades: int
    total_pnl: str
    winning_trades: int
    losing_trades: int
    win_rate: str
    commission: str
    def __init__(self, total_trades: _Optional[int] = ..., total_pnl: _Optional[str] = ..., winning_trades: _Optional[int] = ..., losing_trades: _Optional[int] = ..., win_rate: _Optional[str] = ..., commission: _Optional[str] = ...) -> None: ...

class DailySummary(_message.Message):
    __slots__ = ("date", "trades", "pnl", "equity", "has_data", "file_size_kb", "winning_trades", "losing_trades")
    DATE_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    HAS_DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_KB_FIELD_NUMBER: _ClassVar[int]
    WINNING_TRADES_FIELD_NUMBER: _ClassVar[int]
    LOSING_TRADES_FIELD_NUMBER: _ClassVar[int]
    date: str
    trades: int
    pnl: str
    equity: str
    has_data: bool
    file_size_kb: float
    winning_trades: int
    losing_trades: int
    def __init__(self, date: _Optional[str] = ..., trades: _Optional[int] = ..., pnl: _Optional[str] = ..., equity: _Optional[str] = ..., has_data: _Optional[bool] = ..., file_size_kb: _Optional[float] = ..., winning_trades: _Optional[int] = ..., losing_trades: _Optional[int] = ...) -> None: ...

class OverallSummary(_message.Message):
    __slots__ = ("total_days", "total_trades", "total_pnl", "win_rate", "largest_win", "largest_loss", "winning_trades", "losing_trades", "commission", "initial_capital", "final_equity")
    TOTAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRADES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PNL_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    LARGEST_WIN_FIELD_NUMBER: _ClassVar[int]
    LARGEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    WINNING_TRADES_FIELD_NUMBER: _ClassVar[int]
    LOSING_TRADES_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    FINAL_EQUITY_FIELD_NUMBER: _ClassVar[int]
    total_days: int
    total_trades: int
    total_pnl: str
    win_rate: str
    largest_win: str
    largest_loss: str
    winning_trades: int
    losing_trades: int
    commission: str
    initial_capital: str
    final_equity: str
    def __init__(self, total_days: _Optional[int] = ..., total_trades: _Optional[int] = ..., total_pnl: _Optional[str] = ..., win_rate: _Optional[str] = ..., largest_win: _Optional[str] = ..., largest_loss: _Optional[str] = ..., winning_trades: _Optional[int] = ..., losing_trades: _Optional[int] = ..., commission: _Optional[str] = ..., initial_capital: _Optional[str] = ..., final_equity: _Optional[str] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("total_return_pct", "cagr_pct", "volatility_ann_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct", "max_drawdown_duration_days", "avg_drawdown_pct", "win_rate_pct", "profit_factor", "expectancy", "sqn", "avg_win", "avg_loss", "largest_win", "largest_loss", "max_consecutive_wins", "max_consecutive_losses", "exposure_time_pct", "avg_trade_duration_minutes", "buy_and_hold_return_pct", "var_95_pct", "cvar_95_pct", "total_trades", "final_equity", "initial_capital", "avg_drawdown_duration_days", "best_day_pct", "worst_day_pct")
    TOTAL_RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    CAGR_PCT_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_ANN_PCT_FIELD_NUMBER: _ClassVar[int]
    SHARPE_FIELD_NUMBER: _ClassVar[int]
    SORTINO_FIELD_NUMBER: _ClassVar[int]
    CALMAR_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_DURATION_DAYS_FIELD_NUMBER: _ClassVar[int]
    AVG_DRAWDOWN_PCT_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_PCT_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTANCY_FIELD_NUMBER: _ClassVar[int]
    SQN_FIELD_NUMBER: _ClassVar[int]
    AVG_WIN_FIELD_NUMBER: _ClassVar[int]
    AVG_LOSS_FIELD_NUMBER: _ClassVar[int]
    LARGEST_WIN_FIELD_NUMBER: _ClassVar[int]
    LARGEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONSECUTIVE_WINS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONSECUTIVE_LOSSES_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_TIME_PCT_FIELD_NUMBER: _ClassVar[int]
    AVG_TRADE_DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    BUY_AND_HOLD_RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    VAR_95_PCT_FIELD_NUMBER: _ClassVar[int]
    CVAR_95_PCT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRADES_FIELD_NUMBER: _ClassVar[int]
    FINAL_EQUITY_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    AVG_DRAWDOWN_DURATION_DAYS_FIELD_NUMBER: _ClassVar[int]
    BEST_DAY_PCT_FIELD_NUMBER: _ClassVar[int]
    WORST_DAY_PCT_FIELD_NUMBER: _ClassVar[int]
    total_return_pct: float
    cagr_pct: float
    volatility_ann_pct: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown_pct: float
    max_drawdown_duration_days: float
    avg_drawdown_pct: float
    win_rate_pct: float
    profit_factor: float
    expectancy: float
    sqn: float
    avg_win: float
    avg_loss: float
    largest_win: float
    largest_loss: float
    max_consecutive_wins: int
    max_consecutive_losses: int
    exposure_time_pct: float
    avg_trade_duration_minutes: float
    buy_and_hold_return_pct: float
    var_95_pct: float
    cvar_95_pct: float
    total_trades: int
    final_equity: float
    initial_capital: float
    avg_drawdown_duration_days: float
    best_day_pct: float
    worst_day_pct: float
    def __init__(self, total_return_pct: _Optional[float] = ..., cagr_pct: _Optional[float] = ..., volatility_ann_pct: _Optional[float] = ..., sharpe: _Optional[float] = ..., sortino: _Optional[float] = ..., calmar: _Optional[float] = ..., max_drawdown_pct: _Optional[float] = ..., max_drawdown_duration_days: _Optional[float] = ..., avg_drawdown_pct: _Optional[float] = ..., win_rate_pct: _Optional[float] = ..., profit_factor: _Optional[float] = ..., expectancy: _Optional[float] = ..., sqn: _Optional[float] = ..., avg_win: _Optional[float] = ..., avg_loss: _Optional[float] = ..., largest_win: _Optional[float] = ..., largest_loss: _Optional[float] = ..., max_consecutive_wins: _Optional[int] = ..., max_consecutive_losses: _Optional[int] = ..., exposure_time_pct: _Optional[float] = ..., avg_trade_duration_minutes: _Optional[float] = ..., buy_and_hold_return_pct: _Optional[float] = ..., var_95_pct: _Optional[float] = ..., cvar_95_pct: _Optional[float] = ..., total_trades: _Optional[int] = ..., final_equity: _Optional[float] = ..., initial_capital: _Optional[float] = ..., avg_drawdown_duration_days: _Optional[float] = ..., best_day_pct: _Optional[float] = ..., worst_day_pct: _Optional[float] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("timestamp", "open", "high", "low", "close", "volume")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    timestamp: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    def __init__(self, timestamp: _Optional[str] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ...) -> None: ...

class ConditionEvaluation(_message.Message):
    __slots__ = ("lhs", "lhs_value", "operator", "rhs", "rhs_value", "result", "lhs_prev_value", "rhs_prev_value")
    LHS_FIELD_NUMBER: _ClassVar[int]
    LHS_VALUE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    RHS_FIELD_NUMBER: _ClassVar[int]
    RHS_VALUE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LHS_PREV_VALUE_FIELD_NUMBER: _ClassVar[int]
    RHS_PREV_VALUE_FIELD_NUMBER: _ClassVar[int]
    lhs: str
    lhs_value: float
    operator: str
    rhs: str
    rhs_value: float
    result: bool
    lhs_prev_value: float
    rhs_prev_value: float
    def __init__(self, lhs: _Optional[str] = ..., lhs_value: _Optional[float] = ..., operator: _Optional[str] = ..., rhs: _Optional[str] = ..., rhs_value: _Optional[float] = ..., result: _Optional[bool] = ..., lhs_prev_value: _Optional[float] = ..., rhs_prev_value: _Optional[float] = ...) -> None: ...

class NodeEvent(_message.Message):
    __slots__ = ("execution_id", "parent_execution_id", "timestamp", "event_type", "node_id", "node_name", "node_type", "signal_emitted", "conditions_preview", "evaluated_conditions", "current_candle", "previous_candle", "variables", "position_id", "action", "strike_selections")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_EMITTED_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CANDLE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CANDLE_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    POSITION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STRIKE_SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    parent_execution_id: str
    timestamp: str
    event_type: str
    node_id: str
    node_name: str
    node_type: str
    signal_emitted: bool
    conditions_preview: str
    evaluated_conditions: _containers.RepeatedCompositeFieldContainer[ConditionEvaluation]
    current_candle: Candle
    previous_candle: Candle
    variables: _containers.ScalarMap[str, float]
    position_id: str
    action: str
    strike_selections: _containers.RepeatedCompositeFieldContainer[StrikeSelection]
    def __init__(self, execution_id: _Optional[str] = ..., parent_execution_id: _Optional[str] = ..., timestamp: _Optional[str] = ..., event_type: _Optional[str] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ..., node_type: _Optional[str] = ..., signal_emitted: _Optional[bool] = ..., conditions_preview: _Optional[str] = ..., evaluated_conditions: _Optional[_Iterable[_Union[ConditionEvaluation, _Mapping]]] = ..., current_candle: _Optional[_Union[Candle, _Mapping]] = ..., previous_candle: _Optional[_Union[Candle, _Mapping]] = ..., variables: _Optional[_Mapping[str, float]] = ..., position_id: _Optional[str] = ..., action: _Optional[str] = ..., strike_selections: _Optional[_Iterable[_Union[StrikeSelection, _Mapping]]] = ...) -> None: ...

class StrikeSelection(_message.Message):
    __slots__ = ("leg_id", "selector", "spot", "atm", "candidates", "symbol", "strike", "expiry", "premium", "iv", "delta", "gamma", "theta", "vega")
    LEG_ID_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    SPOT_FIELD_NUMBER: _ClassVar[int]
    ATM_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STRIKE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    VEGA_FIELD_NUMBER: _ClassVar[int]
    leg_id: str
    selector: str
    spot: float
    atm: float
    candidates: int
    symbol: str
    strike: float
    expiry: str
    premium: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    def __init__(self, leg_id: _Optional[str] = ..., selector: _Optional[str] = ..., spot: _Optional[float] = ..., atm: _Optional[float] = ..., candidates: _Optional[int] = ..., symbol: _Optional[str] = ..., strike: _Optional[float] = ..., expiry: _Optional[str] = ..., premium: _Optional[float] = ..., iv: _Optional[float] = ..., delta: _Optional[float] = ..., gamma: _Optional[float] = ..., theta: _Optional[float] = ..., vega: _Optional[float] = ...) -> None: ...

class DayDetail(_message.Message):
    __slots__ = ("date", "summary", "trades", "events_history", "positions")
    class EventsHistoryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: NodeEvent
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[NodeEvent, _Mapping]] = ...) -> None: ...
    DATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_HISTORY_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    date: str
    summary: DaySummary
    trades: _containers.RepeatedCompositeFieldContainer[Trade]
    events_history: _containers.MessageMap[str, NodeEvent]
    positions: _containers.RepeatedCompositeFieldContainer[PositionSummary]
    def __init__(self, date: _Optional[str] = ..., summary: _Optional[_Union[DaySummary, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[Trade, _Mapping]]] = ..., events_history: _Optional[_Mapping[str, NodeEvent]] = ..., positions: _Optional[_Iterable[_Union[PositionSummary, _Mapping]]] = ...) -> None: ...
