"""Validate the option parts of a Strategy (legs, position stops, option settings, daily limits).

Called by the core spec layer (core/spec.py) with its validator or its `err(path, message)`; every problem
names its proto field path and says how to fix it. Produces the frozen plans the legs
runner packs into `layouts.leg_dt` / `layouts.legnode_dt`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from hindsight.v1 import strategy_pb2

from services.engine.core import records
from services.engine.core.spec import EntryPlan, OperandPlan, StopPlan

from .expiries import MAX_OFFSET, MONTHLY, WEEKLY
from .layouts import (
    EXP_MONTHLY, EXP_WEEKLY, Q_AT_LEAST, Q_AT_MOST, Q_NEAREST, QUALIFIER_NAMES, SEL_ATM_OFFSET, SEL_DELTA,
    SEL_PREMIUM, SEL_SPOT_PCT, SEL_STRADDLE, SELECTOR_NAMES,
)
from .pricing import CALL, PUT

MAX_LEGS = 8           # an iron condor has 4; a broken-wing butterfly ladder rarely more
MAX_LOTS = 10_000
MAX_ATM_OFFSET = 50
_LEG_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

Err = Callable[[str, str], None]


@dataclass(frozen=True)
class LegStop:
    mode: int = records.STOP_NONE   # STOP_NONE / STOP_PCT / STOP_POINTS, on the premium
    value: float = 0.0


@dataclass(frozen=True)
class LegPlan:
    id: str
    cp: int                 # pricing.CALL / PUT
    side: int               # records.LONG (buy) / SHORT (sell)
    lots: int
    expiry_kind: int        # layouts.EXP_*
    expiry_offset: int
    selector: int           # layouts.SEL_*
    value: float
    qualifier: int          # layouts.Q_*
    stop_loss: LegStop
    take_profit: LegStop

    @property
    def option_type(self) -> str:
        return "CE" if self.cp == CALL else "PE"

    @property
    def expiry_name(self) -> str:
        return (WEEKLY, MONTHLY)[self.expiry_kind]

    def describe(self) -> str:
        """The selector as written, e.g. 'atm_offset=+1' or 'closest_premium~100 (at_least)'."""
        name = SELECTOR_NAMES[self.selector]
        if self.selector == SEL_PREMIUM:
            return f"{name}~{self.value:g} ({QUALIFIER_NAMES[self.qualifier]})"
        if self.selector == SEL_ATM_OFFSET:
            return f"{name}={int(self.value):+d}"
        return f"{name}={self.value:g}"


@dataclass(frozen=True)
class PositionRiskPlan:
    stop_loss_pct: float = 0.0
    take_profit_pct: float = 0.0
    mtm_stop_loss: float = 0.0
    mtm_take_profit: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.stop_loss_pct or self.take_profit_pct or self.mtm_stop_loss or self.mtm_take_profit)


@dataclass(frozen=True)
class OptionSettingsPlan:
    lot_size: int = 0        # 0: the exchange's lot size on each date
    strike_step: float = 0.0  # 0: from the chain, or 50


@dataclass(frozen=True)
class DailyLimitsPlan:
    max_loss: float = 0.0
    max_profit: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.max_loss or self.max_profit)


def _finite_nonneg(err: Err, path: str, value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        err(path, f"{what} {value} must be a finite number >= 0 (0: none)")
        return 0.0
    return value


def option_settings(s: strategy_pb2.Strategy, err: Err) -> OptionSettingsPlan:
    o = s.options
    if o.lot_size < 0:
        err("options.lot_size", f"lot_size {o.lot_size} must be > 0, or 0 for the exchange's lot size on each date")
    step = _finite_nonneg(err, "options.strike_step", o.strike_step, "strike_step")
    return OptionSettingsPlan(max(o.lot_size, 0), step)


def daily_limits(s: strategy_pb2.Strategy, err: Err) -> DailyLimitsPlan:
    d = s.daily_limits
    return DailyLimitsPlan(_finite_nonneg(err, "daily_limits.max_loss", d.max_loss, "max_loss"),
                           _finite_nonneg(err, "daily_limits.max_profit", d.max_profit, "max_profit"))


def position_risk(path: str, node: strategy_pb2.EntryNode, err: Err) -> PositionRiskPlan:
    r = node.position
    vals = {}
    for name in ("stop_loss_pct", "take_profit_pct", "mtm_stop_loss", "mtm_take_profit"):
        vals[name] = _finite_nonneg(err, f"{path}.position.{name}", getattr(r, name), name)
    return PositionRiskPlan(**vals)


def _leg_stop(path: str, leg: strategy_pb2.Leg, name: str, side: int, err: Err) -> LegStop:
    if not leg.HasField(name):
        return LegStop()
    rule = getattr(leg, name)
    which = rule.WhichOneof("distance")
    if which is None:
        err(f"{path}.{name}", "set pct or points of the leg's premium, e.g. {\"pct\": 25}")
        return LegStop()
    if which == "atr_multiple" or rule.atr:
        err(f"{path}.{name}.{which}", "a leg's stop is on its premium: use pct or points (ATR multiples are for "
            "the underlying)")
        return LegStop()
    value = getattr(rule, which)
    if not (math.isfinite(value) and value > 0):
        err(f"{path}.{name}.{which}", f"{which} {value} must be > 0")
        return LegStop()
    # A bought leg's stop and a sold leg's target sit below the premium: 100 % or more would be
    # at or below zero, a level a premium (>= 0.05) never reaches.
    falls = (name == "stop_loss") == (side == records.LONG)
    if which == "pct" and falls and value >= 100:
        err(f"{path}.{name}.pct", f"{value:g} % below the premium is at or below zero and can never trigger: "
            "use less than 100")
        return LegStop()
    return LegStop(records.STOP_PCT if which == "pct" else records.STOP_POINTS, value)


def _selector(path: str, leg: strategy_pb2.Leg, err: Err) -> tuple[int, float, int] | None:
    which = leg.WhichOneof("strike")
    if which is None:
        err(f"{path}.strike", "choose the strike: set one of atm_offset (e.g. 0 for ATM), closest_premium "
            "({\"premium\": 100}), delta (e.g. 0.3), spot_pct or straddle_width")
        return None
    if which == "atm_offset":
        if abs(leg.atm_offset) > MAX_ATM_OFFSET:
            err(f"{path}.atm_offset", f"{leg.atm_offset} strikes from ATM is beyond the {MAX_ATM_OFFSET} listed "
                "on either side: use a smaller offset, or spot_pct for far strikes")
            return None
        return SEL_ATM_OFFSET, float(leg.atm_offset), Q_NEAREST
    if which == "closest_premium":
        cp = leg.closest_premium
        if not (math.isfinite(cp.premium) and cp.premium > 0):
            err(f"{path}.closest_premium.premium", f"premium {cp.premium} must be > 0 (price points, e.g. 100)")
            return None
        q = (cp.qualifier or "nearest").lower()
        if q not in QUALIFIER_NAMES:
            err(f"{path}.closest_premium.qualifier", f"unknown qualifier '{cp.qualifier}': use nearest (default), "
                "at_least or at_most")
            return None
        return SEL_PREMIUM, cp.premium, {"nearest": Q_NEAREST, "at_least": Q_AT_LEAST, "at_most": Q_AT_MOST}[q]
    if which == "delta":
        if not (0 < leg.delta < 1):
            err(f"{path}.delta", f"delta {leg.delta:g} must be in (0, 1): the |delta| to aim for, e.g. 0.25 "
                "(puts too: their delta is negative, write its size)")
            return None
        return SEL_DELTA, leg.delta, Q_NEAREST
    if which == "spot_pct":
        if not (math.isfinite(leg.spot_pct) and abs(leg.spot_pct) < 50):
            err(f"{path}.spot_pct", f"spot_pct {leg.spot_pct:g} must be within (-50, 50) percent of spot")
            return None
        return SEL_SPOT_PCT, leg.spot_pct, Q_NEAREST
    if not (math.isfinite(leg.straddle_width) and abs(leg.straddle_width) <= 10):
        err(f"{path}.straddle_width", f"straddle_width {leg.straddle_width:g} must be within [-10, 10] multiples "
            "of the ATM straddle premium (e.g. 0.5)")
        return None
    return SEL_STRADDLE, leg.straddle_width, Q_NEAREST


def legs(path: str, node: strategy_pb2.EntryNode, err: Err) -> tuple[LegPlan, ...] | None:
    """The node's legs, or None when any of them is invalid (problems reported)."""
    if len(node.legs) > MAX_LEGS:
        err(f"{path}.legs", f"{len(node.legs)} legs: at most {MAX_LEGS} per entry node")
        return None
    out: list[LegPlan] = []
    seen: dict[str, int] = {}
    ok = True
    for j, leg in enumerate(node.legs):
        lp = f"{path}.legs[{j}]"
        lid = leg.id or f"leg{j + 1}"
        if not _LEG_ID_RE.match(lid):
            err(f"{lp}.id", f"'{lid}' is not a valid leg id: use letters, digits, '_' or '-'")
            ok = False
        elif lid in seen:
            err(f"{lp}.id", f"duplicate leg id '{lid}' (also legs[{seen[lid]}])")
            ok = False
        seen[lid] = j
        ot = leg.option_type.upper()
        if ot not in ("CE", "PE"):
            err(f"{lp}.option_type", ("missing option_type" if not leg.option_type else
                                      f"unknown option_type '{leg.option_type}'") + ": use CE (call) or PE (put)")
            ok = False
        side = leg.side.lower()
        if side not in ("buy", "sell"):
            err(f"{lp}.side", ("missing side" if not leg.side else f"unknown side '{leg.side}'")
                + ": use 'buy' or 'sell'")
            ok = False
        if not 0 < leg.lots <= MAX_LOTS:
            err(f"{lp}.lots", f"lots {leg.lots} must be between 1 and {MAX_LOTS}")
            ok = False
        kind = leg.expiry.kind.lower()
        if kind not in (WEEKLY, MONTHLY):
            err(f"{lp}.expiry.kind", ("missing expiry kind" if not leg.expiry.kind else
                                      f"unknown expiry kind '{leg.expiry.kind}'") + ": use 'weekly' or 'monthly'")
            ok = False
        elif not 0 <= leg.expiry.offset <= MAX_OFFSET[kind]:
            err(f"{lp}.expiry.offset", f"offset {leg.expiry.offset}: NSE lists the nearest {kind} expiry and "
                f"{MAX_OFFSET[kind]} after it, so use 0..{MAX_OFFSET[kind]} (0: nearest)")
            ok = False
        sel = _selector(lp, leg, err)
        s = records.LONG if side == "buy" else records.SHORT
        sl = _leg_stop(lp, leg, "stop_loss", s, err)
        tp = _leg_stop(lp, leg, "take_profit", s, err)
        if sel is None:
            ok = False
        if ok and sel is not None:
            out.append(LegPlan(lid, CALL if ot == "CE" else PUT, s, leg.lots,
                               EXP_WEEKLY if kind == WEEKLY else EXP_MONTHLY, leg.expiry.offset, sel[0], sel[1],
                               sel[2], sl, tp))
    return tuple(out) if ok else None


def node_conflicts(path: str, node: strategy_pb2.EntryNode, err: Err) -> None:
    """What an entry with legs must leave unset (each leg carries its own side, size and stops)."""
    if node.side:
        err(f"{path}.side", "an entry with legs has no side of its own: set 'side' on each leg and remove this one")
    if node.HasField("quantity"):
        err(f"{path}.quantity", "an entry with legs is sized by each leg's lots: remove quantity")
    if node.reverse:
        err(f"{path}.reverse", "stop-and-reverse is for the underlying: remove it (exit nodes close option positions)")
    for name, fix in (("stop_loss", "set stop_loss on each leg, or position.stop_loss_pct / mtm_stop_loss"),
                      ("take_profit", "set take_profit on each leg, or position.take_profit_pct / mtm_take_profit"),
                      ("trailing_stop", "trailing stops are for the underlying: use the legs' or position's stops")):
        if node.HasField(name):
            err(f"{path}.{name}", f"an entry with legs has no {name} of its own: {fix}")


# ---- called by core/spec.py's validator (v): its err, condition and node checks -------------------

def state_operand(v, path: str, op: strategy_pb2.Operand, which: str):
    """position_mtm / leg_premium: the state of an open option position, known in the kernel only."""
    ref = getattr(op, which)
    if op.offset:
        v.err(f"{path}.offset", f"{which} is the current bar's value: remove offset")
        return None
    nodes = {e.id: e for e in v.s.entries}
    node_id, _, leg_id = ref.partition(".")
    node = nodes.get(node_id)
    if node is None or not node.legs:
        with_legs = [e.id for e in v.s.entries if e.legs]
        v.err(f"{path}.{which}", f"'{node_id}' is not an entry node with legs (entries with legs: "
              f"{', '.join(with_legs) or 'none'}): {which} reads an open option position")
        return None
    if which == "leg_premium":
        legs = [lg.id or f"leg{j + 1}" for j, lg in enumerate(node.legs)]
        if leg_id not in legs:
            v.err(f"{path}.leg_premium", f"'{ref}' names no leg: write '<entry id>.<leg id>', one of "
                  f"{', '.join(f'{node_id}.{x}' for x in legs)}")
            return None
        return OperandPlan(which, ref, label=f"Premium({ref})")
    if leg_id:
        v.err(f"{path}.position_mtm", f"position_mtm takes an entry node id ('{node_id}'), not a leg")
        return None
    return OperandPlan(which, ref, label=f"MTM({ref})")


def legs_entry(v, path: str, e: strategy_pb2.EntryNode, seen: dict[str, str], labels: dict[str, str]):
    """The EntryPlan of an entry node with legs, or None (problems reported through v)."""
    ok = v._node_id(f"{path}.id", e.id, seen, path)
    node_conflicts(path, e, v.err)
    when = None
    if not e.HasField("when"):
        v.err(f"{path}.when", "missing entry condition")
    else:
        when = v.condition(f"{path}.when", e.when, labels)
        if when is not None:
            v._state_placement(f"{path}.when", when)
    v._limits(path, e)
    leg_plans = legs(path, e, v.err)
    risk = position_risk(path, e, v.err)
    if not ok or when is None or leg_plans is None:
        return None
    return EntryPlan(e.id, e.name or e.id, records.LONG, when, records.QTY_UNITS, 0.0, e.max_entries_per_day,
                     e.max_re_entries if e.HasField("max_re_entries") else -1, False, StopPlan(), StopPlan(),
                     StopPlan(), e.max_bars, leg_plans, risk)
