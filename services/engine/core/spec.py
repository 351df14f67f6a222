"""Validate a `hindsight.v1.Strategy` message and turn it into a `StrategyPlan`.

Every problem is reported with the proto field path and a fix, e.g.
`entries[0].when.all[1].rhs: unknown indicator 'rsi2' (defined: rsi, ema_fast)`.
All problems are collected, so a user fixes a file in one pass; `SpecError` carries them.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hindsight.v1 import strategy_pb2

from . import records
from .registry import INDICATORS

PRICE_FIELDS = ("open", "high", "low", "close", "volume", "hl2", "hlc3")
SPECIAL_FIELDS = ("time", "day_of_week", "prev_high", "prev_low", "prev_close")
FIELDS = PRICE_FIELDS + SPECIAL_FIELDS
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
CROSSES = ("crosses_above", "crosses_below")
OPERATORS = COMPARISONS + CROSSES
STATE_OPERANDS = ("position_mtm", "leg_premium")  # known only as the run goes (option positions)
FILLS = ("next_open", "close")
TIMEFRAME_RE = re.compile(r"^(\d+)(m|h|d)$")


def valid_timeframe(text: str) -> bool:
    """'5m', '1h', '1d': a positive whole number and a unit ('0m' is not a timeframe)."""
    m = TIMEFRAME_RE.match(text)
    return bool(m) and int(m.group(1)) > 0
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
DEFAULT_CAPITAL = 100_000.0
MAX_WARMUP_BARS = 1_000_000


@dataclass(frozen=True)
class Problem:
    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class SpecError(ValueError):
    """An invalid strategy. `problems` lists every (field path, what to fix) found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


# ---- the plan: a validated, normalized strategy ---------------------------------------

@dataclass(frozen=True)
class IndicatorPlan:
    id: str
    kind: str
    source: str            # a price field, an indicator id, or "id.output"
    params: dict[str, Any]
    label: str             # e.g. "RSI(14)"


@dataclass(frozen=True)
class OperandPlan:
    kind: str              # field | indicator | value | time | position_mtm | leg_premium
    ref: str = ""          # field name, "indicator_id.output", entry node id or "node.leg"
    value: float = 0.0     # constant (time: minutes since midnight)
    offset: int = 0
    label: str = ""


@dataclass(frozen=True)
class ConditionPlan:
    kind: str              # compare | all | any | not
    op: str = ""
    lhs: OperandPlan | None = None
    rhs: OperandPlan | None = None
    children: tuple["ConditionPlan", ...] = ()
    path: str = ""

    def preview(self) -> str:
        """Readable text, e.g. `RSI(14) > 30 AND Time >= 09:17`."""
        if self.kind == "compare":
            assert self.lhs is not None and self.rhs is not None
            op = {"crosses_above": "crosses above", "crosses_below": "crosses below"}.get(self.op, self.op)
            return f"{self.lhs.label} {op} {self.rhs.label}"
        if self.kind == "not":
            return f"NOT ({self.children[0].preview()})"
        joiner = " AND " if self.kind == "all" else " OR "
        parts = [c.preview() if c.kind in ("compare", "not") else f"({c.preview()})" for c in self.children]
        return joiner.join(parts)

    def comparisons(self) -> list["ConditionPlan"]:
        if self.kind == "compare":
            return [self]
        return [leaf for c in self.children for leaf in c.comparisons()]


@dataclass(frozen=True)
class StopPlan:
    mode: int = records.STOP_NONE
    value: float = 0.0
    atr: str = ""          # indicator id for STOP_ATR


@dataclass(frozen=True)
class EntryPlan:
    id: str
    name: str
    side: int
    when: ConditionPlan
    qty_mode: int
    qty_value: float
    max_per_day: int
    max_re_entries: int    # -1: unlimited
    reverse: bool
    stop_loss: StopPlan
    take_profit: StopPlan
    trailing_stop: StopPlan
    max_bars: int
    legs: tuple[Any, ...] = ()      # options.legspec.LegPlan; empty: trades the underlying
    position: Any = None            # options.legspec.PositionRiskPlan (with legs)


@dataclass(frozen=True)
class ExitPlan:
    id: str
    name: str
    when: ConditionPlan
    closes: tuple[str, ...]


@dataclass(frozen=True)
class SessionPlan:
    timezone: str = "UTC"
    calendar: str = ""
    open_minute: float | None = None
    close_minute: float | None = None
    square_off_minute: float | None = None

    @property
    def intraday(self) -> bool:
        return self.square_off_minute is not None


@dataclass(frozen=True)
class ExecutionPlan:
    fill_at_close: bool = False
    commission_pct: float = 0.0
    slippage_pct: float = 0.0
    initial_capital: float = DEFAULT_CAPITAL
    timeframe: str = ""
    warmup_bars: int = 0     # history asked for beyond what the indicators need (see _warmup)


@dataclass(frozen=True)
class StrategyPlan:
    name: str
    session: SessionPlan
    indicators: tuple[IndicatorPlan, ...]      # in dependency order
    entries: tuple[EntryPlan, ...]
    exits: tuple[ExitPlan, ...]
    execution: ExecutionPlan
    warmup_bars: int                           # bars before the first signal can be true
    source: strategy_pb2.Strategy = field(compare=False, repr=False, default_factory=strategy_pb2.Strategy)
    options: Any = None                        # options.legspec.OptionSettingsPlan
    daily_limits: Any = None                   # options.legspec.DailyLimitsPlan

    @property
    def has_legs(self) -> bool:
        """True when the entries open option legs (the legs kernel runs it)."""
        return bool(self.entries) and bool(self.entries[0].legs)


# ---- helpers ----------------------------------------------------------------------------

def parse_time(text: str) -> float | None:
    """'HH:MM' or 'HH:MM:SS' → minutes since midnight, or None if malformed."""
    m = _TIME_RE.match(text.strip())
    if not m:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        return None
    return h * 60 + mi + s / 60.0


def format_minutes(minutes: float) -> str:
    total = int(round(minutes * 60))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


@lru_cache(maxsize=1)
def _calendar_names() -> frozenset[str]:
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True))


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _closest(name: str, options: list[str] | tuple[str, ...]) -> str:
    import difflib

    near = difflib.get_close_matches(name, list(options), n=1)
    return f" — did you mean '{near[0]}'?" if near else ""


def _listing(options) -> str:
    opts = list(options)
    return ", ".join(opts) if opts else "none"


# ---- the validator ------------------------------------------------------------------------

class _Validator:
    def __init__(self, strategy: strategy_pb2.Strategy):
        self.s = strategy
        self.problems: list[Problem] = []
        self.outputs: dict[str, tuple[str, ...]] = {}   # indicator id → output names
        self.kinds: dict[str, str] = {}

    def err(self, path: str, msg: str) -> None:
        self.problems.append(Problem(path, msg))

    # session / execution
    def session(self) -> SessionPlan:
        if not self.s.HasField("session"):
            return SessionPlan()
        ss = self.s.session
        tz = ss.timezone or "UTC"
        if tz not in _timezones():
            self.err("session.timezone", f"unknown time zone '{tz}': use an IANA name such as "
                     f"'Asia/Kolkata' or 'America/New_York'{_closest(tz, sorted(_timezones()))}")
        if ss.calendar and ss.calendar not in _calendar_names():
            self.err("session.calendar", f"unknown trading calendar '{ss.calendar}': use an exchange-calendars "
                     f"code such as XBOM (India), XNYS (New York), XLON (London){_closest(ss.calendar, sorted(_calendar_names()))}")
        times: dict[str, float | None] = {}
        for name in ("open_time", "close_time", "square_off_time"):
            text = getattr(ss, name)
            times[name] = None
            if text:
                t = parse_time(text)
                if t is None:
                    self.err(f"session.{name}", f"malformed time '{text}': write exchange-local 24-hour "
                             f"'HH:MM', e.g. '15:25'")
                times[name] = t
        o, c, sq = times["open_time"], times["close_time"], times["square_off_time"]
        if o is not None and c is not None and o >= c:
            self.err("session.close_time", f"close {ss.close_time} is not after open {ss.open_time}")
        if sq is not None and o is not None and sq <= o:
            self.err("session.square_off_time", f"square-off {ss.square_off_time} must be after the open {ss.open_time}")
        if sq is not None and c is not None and sq > c:
            self.err("session.square_off_time", f"square-off {ss.square_off_time} is after the close {ss.close_time}: "
                     f"use a time within the session or leave it empty to hold overnight")
        return SessionPlan(tz, ss.calendar, o, c, sq)

    def execution(self) -> ExecutionPlan:
        ex = self.s.execution
        fill = ex.fill or "next_open"
        if fill not in FILLS:
            self.err("execution.fill", f"unknown fill '{ex.fill}': use 'next_open' (default) or 'close'")
        for name in ("commission_pct", "slippage_pct"):
            v = getattr(ex, name)
            if not (0 <= v < 100):
                self.err(f"execution.{name}", f"{v} is not a percentage in [0, 100): e.g. 0.01 means 0.01 %")
        if not (0 <= ex.initial_capital < math.inf):  # NaN fails this too
            self.err("execution.initial_capital", f"{ex.initial_capital} is not a positive, finite amount")
        if ex.timeframe and not valid_timeframe(ex.timeframe):
            self.err("execution.timeframe", f"unknown timeframe '{ex.timeframe}': use e.g. 1m, 5m, 15m, 1h, 1d")
        if not 0 <= ex.warmup_bars <= MAX_WARMUP_BARS:
            self.err("execution.warmup_bars", f"{ex.warmup_bars} bars of warm-up: use 0 (what the indicators need) "
                     f"up to {MAX_WARMUP_BARS:,}")
        return ExecutionPlan(fill == "close", ex.commission_pct, ex.slippage_pct,
                             ex.initial_capital or DEFAULT_CAPITAL, ex.timeframe,
                             max(0, min(ex.warmup_bars, MAX_WARMUP_BARS)))

    # indicators
    def indicators(self) -> tuple[IndicatorPlan, ...]:
        raw: dict[str, tuple[int, strategy_pb2.Indicator]] = {}
        for i, ind in enumerate(self.s.indicators):
            path = f"indicators[{i}]"
            if not ind.id:
                self.err(f"{path}.id", "missing id: give the indicator a name such as 'rsi' to reference it")
                continue
            if not _ID_RE.match(ind.id) or "." in ind.id:
                self.err(f"{path}.id", f"'{ind.id}' is not a valid id: use letters, digits, '_' or '-', "
                         f"starting with a letter")
                continue
            if ind.id in FIELDS:
                self.err(f"{path}.id", f"'{ind.id}' is a built-in field name: choose another id")
                continue
            if ind.id in raw:
                self.err(f"{path}.id", f"duplicate id '{ind.id}' (also indicators[{raw[ind.id][0]}])")
                continue
            kind = ind.kind.lower()
            if kind not in INDICATORS:
                self.err(f"{path}.kind", f"unknown indicator kind '{ind.kind}' (known: "
                         f"{_listing(sorted(INDICATORS))}){_closest(kind, sorted(INDICATORS))}")
                continue
            raw[ind.id] = (i, ind)
            self.kinds[ind.id] = kind
            self.outputs[ind.id] = tuple(INDICATORS[kind].outputs)

        plans: dict[str, IndicatorPlan] = {}
        deps: dict[str, str | None] = {}
        for iid, (i, ind) in raw.items():
            path = f"indicators[{i}]"
            kind = self.kinds[iid]
            spec = INDICATORS[kind]
            params = self._indicator_params(path, ind, spec)
            source = ind.source or "close"
            dep = None
            if spec.uses_source:
                if source in PRICE_FIELDS:
                    pass
                else:
                    ref = self._resolve_indicator_ref(f"{path}.source", source, what="source")
                    if ref is not None:
                        dep = ref.split(".")[0]
                        source = ref
            elif ind.source:
                self.err(f"{path}.source", f"{kind} is computed from high/low/close"
                         f"{'/volume' if kind == 'vwap' else ''}; remove 'source'")
            deps[iid] = dep
            if params is not None:
                label = spec.label(params)
                if spec.uses_source and source != "close":
                    label = label.replace("(", f"({self._source_label(source)}, ", 1) if "(" in label \
                        else f"{label}({self._source_label(source)})"
                plans[iid] = IndicatorPlan(iid, kind, source, params, label)

        # dependency order, reporting cycles
        order: list[IndicatorPlan] = []
        state: dict[str, int] = {}

        def visit(iid: str, chain: list[str]) -> None:
            if state.get(iid) == 2:
                return
            if state.get(iid) == 1:
                cyc = chain[chain.index(iid):] + [iid]
                self.err(f"indicators[{raw[iid][0]}].source", "cyclic indicator reference: "
                         + " → ".join(cyc) + "; an indicator cannot depend on itself")
                return
            state[iid] = 1
            dep = deps.get(iid)
            if dep is not None and dep in raw:
                visit(dep, chain + [iid])
            state[iid] = 2
            if iid in plans:
                order.append(plans[iid])

        for iid in raw:
            visit(iid, [])
        return tuple(order)

    def _source_label(self, source: str) -> str:
        if source in PRICE_FIELDS:
            return source.capitalize()
        return source

    def _indicator_params(self, path: str, ind: strategy_pb2.Indicator, spec) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        ok = True
        for name in spec.params:
            value = getattr(ind, name)
            default = spec.defaults.get(name)
            if not value and default is not None:
                value = default
            if name == "std_dev":
                if value <= 0:
                    self.err(f"{path}.std_dev", f"std_dev {value} must be > 0 (e.g. 2)")
                    ok = False
            else:
                if value <= 0:
                    hint = "e.g. 14" if name == "period" else f"e.g. {default or 9}"
                    self.err(f"{path}.{name}", f"{name} {value} must be a positive number of bars ({hint})")
                    ok = False
                elif value > 100_000:
                    self.err(f"{path}.{name}", f"{name} {value} is implausibly long: at most 100000 bars")
                    ok = False
            params[name] = value
        if ok and "fast_period" in params and params["fast_period"] >= params["slow_period"]:
            self.err(f"{path}.fast_period", f"fast_period {params['fast_period']} must be shorter than "
                     f"slow_period {params['slow_period']}")
            ok = False
        for name in ("period", "std_dev", "fast_period", "slow_period", "signal_period"):
            if name not in spec.params and getattr(ind, name):
                self.err(f"{path}.{name}", f"{spec.name} takes no '{name}' (it takes: {_listing(spec.params) })")
                ok = False
        return params if ok else None

    def _resolve_indicator_ref(self, path: str, ref: str, what: str = "indicator") -> str | None:
        """'rsi' → 'rsi.value'; 'bb.upper' → 'bb.upper'; reports unknown ids/outputs."""
        iid, _, out = ref.partition(".")
        if iid not in self.outputs:
            defined = _listing(self.outputs)
            extra = ""
            if ref in FIELDS:
                extra = f" — '{ref}' is a field: use {{\"field\": \"{ref}\"}}"
            elif what == "source":
                extra = f" — or a price field: {', '.join(PRICE_FIELDS)}"
            self.err(path, f"unknown indicator '{iid}' (defined: {defined}){extra or _closest(iid, list(self.outputs))}")
            return None
        outputs = self.outputs[iid]
        if not out:
            if len(outputs) == 1:
                return f"{iid}.{outputs[0]}"
            self.err(path, f"'{iid}' ({self.kinds[iid]}) has outputs {', '.join(outputs)}: write e.g. "
                     f"'{iid}.{outputs[0]}'")
            return None
        if out not in outputs:
            self.err(path, f"'{iid}' ({self.kinds[iid]}) has no output '{out}' (outputs: {', '.join(outputs)})")
            return None
        return f"{iid}.{out}"

    # conditions
    def operand(self, path: str, op: strategy_pb2.Operand, labels: dict[str, str]) -> OperandPlan | None:
        which = op.WhichOneof("kind")
        if op.offset < 0:
            self.err(f"{path}.offset", f"offset {op.offset} must be >= 0 (bars ago)")
            return None
        suffix = f"[{op.offset}]" if op.offset else ""
        if which is None:
            self.err(path, "empty operand: set one of field, indicator, value, time")
            return None
        if which == "field":
            name = op.field.lower()
            if name not in FIELDS:
                self.err(path, f"unknown field '{op.field}' (fields: {', '.join(FIELDS)})"
                         + (f" — '{op.field}' is an indicator: use {{\"indicator\": \"{op.field}\"}}"
                            if op.field.split(".")[0] in self.outputs else _closest(name, FIELDS)))
                return None
            label = {"time": "Time", "day_of_week": "DayOfWeek", "prev_high": "PrevHigh", "prev_low": "PrevLow",
                     "prev_close": "PrevClose", "hl2": "HL2", "hlc3": "HLC3"}.get(name, name.capitalize())
            return OperandPlan("field", name, offset=op.offset, label=label + suffix)
        if which == "indicator":
            ref = self._resolve_indicator_ref(path, op.indicator)
            if ref is None:
                return None
            iid, _, out = ref.partition(".")
            base = labels.get(iid, iid)
            label = base if len(self.outputs[iid]) == 1 else f"{base}.{out}"
            return OperandPlan("indicator", ref, offset=op.offset, label=label + suffix)
        if which in STATE_OPERANDS:
            from services.engine.options import legspec

            return legspec.state_operand(self, path, op, which)
        if which == "value":
            if op.value != op.value or op.value in (float("inf"), float("-inf")):
                self.err(path, "value must be a finite number")
                return None
            if op.offset:
                self.err(f"{path}.offset", "a constant has no history: remove offset")
                return None
            v = op.value
            return OperandPlan("value", value=v, label=f"{v:g}")
        t = parse_time(op.time)
        if t is None:
            self.err(path, f"malformed time '{op.time}': write exchange-local 24-hour 'HH:MM', e.g. '09:17'")
            return None
        return OperandPlan("time", value=t, label=format_minutes(t))

    def _state_placement(self, path: str, cond: ConditionPlan) -> None:
        """State comparisons only stand alone or directly inside the top-level `all`: the kernel
        ANDs them with the rest of the (vectorized) condition."""
        allowed = {cond.path} if cond.kind == "compare" else (
            {c.path for c in cond.children if c.kind == "compare"} if cond.kind == "all" else set())
        for cmp in cond.comparisons():
            if cmp.path not in allowed and any(side.kind in STATE_OPERANDS for side in (cmp.lhs, cmp.rhs)):
                self.err(cmp.path, "position_mtm / leg_premium can only stand alone or directly inside the "
                         "condition's top-level 'all' (they are checked against the open position as the "
                         "run goes): move this comparison there")

    def condition(self, path: str, c: strategy_pb2.Condition, labels: dict[str, str], depth: int = 0) -> ConditionPlan | None:
        if depth > 32:
            self.err(path, "conditions nest deeper than 32 levels")
            return None
        forms = [name for name, present in (
            ("comparison", bool(c.op) or c.HasField("lhs") or c.HasField("rhs")),
            ("all", len(c.all) > 0), ("any", len(c.any) > 0), ("not", c.HasField("not"))) if present]
        if not forms:
            self.err(path, "empty condition: give a comparison (lhs, op, rhs) or one of all / any / not")
            return None
        if len(forms) > 1:
            self.err(path, f"a condition is exactly one of comparison / all / any / not; this one has "
                     f"{' and '.join(forms)}: nest them inside 'all' or 'any'")
            return None
        form = forms[0]
        if form == "comparison":
            ok = True
            if c.op not in OPERATORS:
                self.err(f"{path}.op", ("missing operator" if not c.op else f"unknown operator '{c.op}'")
                         + f": use one of {', '.join(OPERATORS)}")
                ok = False
            lhs = rhs = None
            for side in ("lhs", "rhs"):
                if not c.HasField(side):
                    self.err(f"{path}.{side}", f"missing {side}: set e.g. {{\"indicator\": \"rsi\"}} or {{\"value\": 30}}")
                    ok = False
            if c.HasField("lhs"):
                lhs = self.operand(f"{path}.lhs", c.lhs, labels)
            if c.HasField("rhs"):
                rhs = self.operand(f"{path}.rhs", c.rhs, labels)
            if not ok or lhs is None or rhs is None:
                return None
            states = [x for x in (lhs, rhs) if x.kind in STATE_OPERANDS]
            if states:
                other = rhs if lhs.kind in STATE_OPERANDS else lhs
                if len(states) > 1 or other.kind != "value" or c.op in CROSSES:
                    self.err(path, f"compare {states[0].label} with a constant value using one of "
                             f"{', '.join(COMPARISONS)}, e.g. {{\"lhs\": {{\"position_mtm\": \"entry-1\"}}, "
                             f"\"op\": \"<=\", \"rhs\": {{\"value\": -2000}}}}")
                    return None
            if lhs.kind in ("value", "time") and rhs.kind in ("value", "time"):
                self.err(path, "compares two constants, which is always true or always false: "
                         "one side must be a field or an indicator")
                return None
            if c.op in CROSSES and (lhs.kind in ("value", "time") and rhs.kind in ("value", "time")):
                return None
            return ConditionPlan("compare", c.op, lhs, rhs, path=path)
        if form == "not":
            child = self.condition(f"{path}.not", getattr(c, "not"), labels, depth + 1)
            return None if child is None else ConditionPlan("not", children=(child,), path=path)
        items = c.all if form == "all" else c.any
        children = [self.condition(f"{path}.{form}[{k}]", item, labels, depth + 1) for k, item in enumerate(items)]
        if any(ch is None for ch in children):
            return None
        return ConditionPlan(form, children=tuple(children), path=path)  # type: ignore[arg-type]

    def stop(self, path: str, node: strategy_pb2.EntryNode, name: str) -> StopPlan:
        if not node.HasField(name):
            return StopPlan()
        rule: strategy_pb2.StopRule = getattr(node, name)
        which = rule.WhichOneof("distance")
        if which is None:
            self.err(f"{path}.{name}", "set one of pct, points, atr_multiple (e.g. {\"pct\": 1.0})")
            return StopPlan()
        value = getattr(rule, which)
        if not value > 0 or value != value:
            self.err(f"{path}.{name}.{which}", f"{which} {value} must be > 0")
            return StopPlan()
        if which == "pct" and value >= 100 and name != "take_profit":
            self.err(f"{path}.{name}.pct", f"{value} % would put the level at or below zero: use less than 100")
            return StopPlan()
        if which == "atr_multiple":
            if not rule.atr:
                self.err(f"{path}.{name}.atr", "atr_multiple needs 'atr': the id of an indicator of kind atr")
                return StopPlan()
            if self.kinds.get(rule.atr) != "atr":
                atrs = [i for i, k in self.kinds.items() if k == "atr"]
                self.err(f"{path}.{name}.atr", f"'{rule.atr}' is not an atr indicator (atr indicators: "
                         f"{_listing(atrs)}): add one, e.g. {{\"id\": \"atr\", \"kind\": \"atr\", \"period\": 14}}")
                return StopPlan()
            return StopPlan(records.STOP_ATR, value, rule.atr)
        if rule.atr:
            self.err(f"{path}.{name}.atr", "'atr' is only used with atr_multiple: remove it")
        return StopPlan(records.STOP_PCT if which == "pct" else records.STOP_POINTS, value)

    def nodes(self, labels: dict[str, str]) -> tuple[tuple[EntryPlan, ...], tuple[ExitPlan, ...]]:
        seen: dict[str, str] = {}
        entries: list[EntryPlan] = []
        if not self.s.entries:
            self.err("entries", "no entry nodes: add at least one, e.g. {\"id\": \"entry-1\", \"side\": \"buy\", "
                     "\"when\": {...}, \"quantity\": {\"units\": 1}}")
        with_legs = [i for i, e in enumerate(self.s.entries) if e.legs]
        if with_legs and len(with_legs) != len(self.s.entries):
            plain = next(i for i, e in enumerate(self.s.entries) if not e.legs)
            self.err(f"entries[{plain}].legs", f"entries[{with_legs[0]}] opens option legs and this one trades the "
                     "underlying: a strategy does one or the other, so give every entry legs (or none)")
        for i, e in enumerate(self.s.entries):
            path = f"entries[{i}]"
            if e.legs:
                from services.engine.options import legspec

                entry = legspec.legs_entry(self, path, e, seen, labels)
                if entry is not None:
                    entries.append(entry)
                continue
            ok = self._node_id(f"{path}.id", e.id, seen, path)
            if e.HasField("position"):
                self.err(f"{path}.position", "position stops are for entries with legs: use stop_loss / take_profit")
            side = e.side.lower()
            if side not in ("buy", "sell"):
                self.err(f"{path}.side", f"{'missing side' if not e.side else f'unknown side {e.side!r}'}: "
                         f"use 'buy' (long) or 'sell' (short)")
                ok = False
            when = None
            if not e.HasField("when"):
                self.err(f"{path}.when", "missing entry condition")
            else:
                when = self.condition(f"{path}.when", e.when, labels)
            if when is not None:
                self._state_placement(f"{path}.when", when)
            qty_mode, qty_value = self._quantity(path, e)
            self._limits(path, e)
            sl = self.stop(path, e, "stop_loss")
            tp = self.stop(path, e, "take_profit")
            ts = self.stop(path, e, "trailing_stop")
            if ok and when is not None and qty_mode is not None:
                entries.append(EntryPlan(
                    e.id, e.name or e.id, records.LONG if side == "buy" else records.SHORT, when, qty_mode,
                    qty_value, e.max_entries_per_day,
                    e.max_re_entries if e.HasField("max_re_entries") else -1,
                    e.reverse, sl, tp, ts, e.max_bars))
        entry_ids = [e.id for e in self.s.entries]
        exits: list[ExitPlan] = []
        for i, x in enumerate(self.s.exits):
            path = f"exits[{i}]"
            ok = self._node_id(f"{path}.id", x.id, seen, path)
            when = None
            if not x.HasField("when"):
                self.err(f"{path}.when", "missing exit condition")
            else:
                when = self.condition(f"{path}.when", x.when, labels)
                if when is not None:
                    self._state_placement(f"{path}.when", when)
            for k, target in enumerate(x.closes):
                if target not in entry_ids:
                    self.err(f"{path}.closes[{k}]", f"unknown entry node '{target}' (entries: {_listing(entry_ids)})")
                    ok = False
            if ok and when is not None:
                exits.append(ExitPlan(x.id, x.name or x.id, when, tuple(x.closes) or tuple(entry_ids)))
        return tuple(entries), tuple(exits)

    def _limits(self, path: str, e: strategy_pb2.EntryNode) -> None:
        if e.max_entries_per_day < 0:
            self.err(f"{path}.max_entries_per_day", "must be >= 0 (0: unlimited)")
        if e.HasField("max_re_entries") and e.max_re_entries < 0:
            self.err(f"{path}.max_re_entries", "must be >= 0 (leave it out for unlimited)")
        if e.max_bars < 0:
            self.err(f"{path}.max_bars", "must be >= 0 (0: no limit)")

    def _node_id(self, path: str, nid: str, seen: dict[str, str], where: str) -> bool:
        if not nid:
            self.err(path, "missing id: name the node, e.g. 'entry-1'")
            return False
        if not _ID_RE.match(nid):
            self.err(path, f"'{nid}' is not a valid node id: use letters, digits, '_' or '-'")
            return False
        if nid in seen:
            self.err(path, f"duplicate node id '{nid}' (also {seen[nid]})")
            return False
        seen[nid] = where
        return True

    def _quantity(self, path: str, e: strategy_pb2.EntryNode) -> tuple[int | None, float]:
        if not e.HasField("quantity") or e.quantity.WhichOneof("size") is None:
            self.err(f"{path}.quantity", "missing quantity: set one of units, lots (with lot_size) or equity_pct")
            return None, 0.0
        q = e.quantity
        which = q.WhichOneof("size")
        value = getattr(q, which)
        if not value > 0:
            self.err(f"{path}.quantity.{which}", f"zero or negative quantity ({value:g}): must be > 0")
            return None, 0.0
        if which == "equity_pct":
            if value > 100:
                self.err(f"{path}.quantity.equity_pct", f"{value:g} % of equity needs leverage, which is not "
                         f"supported: use at most 100")
                return None, 0.0
            return records.QTY_EQUITY_PCT, value
        if q.lot_size < 0:
            self.err(f"{path}.quantity.lot_size", "lot_size must be > 0")
            return None, 0.0
        if which == "lots":
            return records.QTY_UNITS, value * (q.lot_size or 1.0)
        if q.lot_size:
            self.err(f"{path}.quantity.lot_size", "lot_size is only used with lots: remove it or use lots")
        return records.QTY_UNITS, value


def _warmup(plan_inds: tuple[IndicatorPlan, ...], entries, exits) -> int:
    need: dict[str, int] = {}
    for ind in plan_inds:
        own = INDICATORS[ind.kind].lookback(ind.params)
        base = need.get(ind.source.split(".")[0], 0) if "." in ind.source or ind.source in need else 0
        need[ind.id] = base + own
    worst = 0
    for node in (*entries, *exits):
        for cmp in node.when.comparisons():
            extra = 1 if cmp.op in CROSSES else 0
            for side in (cmp.lhs, cmp.rhs):
                if side is not None and side.kind == "indicator":
                    worst = max(worst, need.get(side.ref.split(".")[0], 0) + side.offset + extra)
                elif side is not None and side.kind == "field":
                    worst = max(worst, side.offset + extra)
    return worst


# Bounds on what one strategy may ask for (each indicator output is a float64 array the length
# of the data: 50 are ~360 MB over a decade of one-minute bars; 5,000 SMAs cost 1.7 GB).
MAX_STRATEGY_BYTES = 256 * 1024
MAX_INDICATORS = 50
MAX_NODES = 50  # entries, and exits


def _too_big(strategy: strategy_pb2.Strategy) -> list[Problem]:
    size = strategy.ByteSize()
    if size > MAX_STRATEGY_BYTES:
        return [Problem("", f"the strategy is {size:,} bytes: at most {MAX_STRATEGY_BYTES:,}")]
    out = []
    for name, limit in (("indicators", MAX_INDICATORS), ("entries", MAX_NODES), ("exits", MAX_NODES)):
        n = len(getattr(strategy, name))
        if n > limit:
            out.append(Problem(name, f"{n} {name}: at most {limit}"))
    return out


def compile_strategy(strategy: strategy_pb2.Strategy) -> StrategyPlan:
    """Validate `strategy`; return its plan or raise `SpecError` listing every problem."""
    too_big = _too_big(strategy)
    if too_big:  # refused before anything is built from it
        raise SpecError(too_big)
    v = _Validator(strategy)
    session = v.session()
    execution = v.execution()
    indicators = v.indicators()
    labels = {ind.id: ind.label for ind in indicators}
    entries, exits = v.nodes(labels)
    options = limits = None
    if strategy.HasField("options") or strategy.HasField("daily_limits") or any(e.legs for e in strategy.entries):
        # Imported only for option strategies: the options package costs ~0.1 s to import.
        from services.engine.options import legspec

        options = legspec.option_settings(strategy, v.err)
        limits = legspec.daily_limits(strategy, v.err)
        if limits.any and not any(e.legs for e in strategy.entries):
            v.err("daily_limits", "daily limits apply to option strategies (entries with legs); for the underlying "
                  "use stop_loss / take_profit on the entries")
    if v.problems:
        raise SpecError(v.problems)
    return StrategyPlan(strategy.name or "strategy", session, indicators, entries, exits, execution,
                        max(_warmup(indicators, entries, exits), execution.warmup_bars), strategy, options, limits)


def parse_strategy_json(text: str) -> strategy_pb2.Strategy:
    """Strategy file (proto3 JSON) → message; malformed JSON or unknown fields raise SpecError."""
    from google.protobuf import json_format

    try:
        return json_format.Parse(text, strategy_pb2.Strategy())
    except json_format.ParseError as exc:
        raise SpecError([Problem("", f"not a valid strategy file: {exc}")]) from None
