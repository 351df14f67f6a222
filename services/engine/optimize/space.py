"""A parameter space over an ordinary Strategy: validated once, then enumerated (grid) or handed
to a sampler, and applied to the strategy for each trial.

`compile_space(space, strategy)` checks every parameter's path against the strategy (it must
reach a number, text or flag the strategy holds; a path through a oneof must follow the member
the strategy has set), every domain, every constraint, and that each parameter's extreme values
still give a valid strategy, and returns a `SpacePlan` — or raises `SpecError` with every
problem and its field path (`space.parameters[1].path`, …), before any work starts.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Iterator

from google.protobuf import descriptor as _d
from google.protobuf import struct_pb2

from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import strategy_pb2

from services.engine.core.spec import Problem, SpecError, compile_strategy

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SEGMENT = re.compile(r"([a-z_][a-z0-9_]*)(?:\[(\d+)\])?")
MAX_PARAMETERS = 32
MAX_CHOICES = 10_000
DEFAULT_GRID_CAP = 1_000_000
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
       "!=": operator.ne}
_INTS = frozenset({_d.FieldDescriptor.TYPE_INT32, _d.FieldDescriptor.TYPE_INT64, _d.FieldDescriptor.TYPE_UINT32,
                   _d.FieldDescriptor.TYPE_UINT64, _d.FieldDescriptor.TYPE_SINT32, _d.FieldDescriptor.TYPE_SINT64})
_FLOATS = frozenset({_d.FieldDescriptor.TYPE_DOUBLE, _d.FieldDescriptor.TYPE_FLOAT})


@dataclass(frozen=True)
class Target:
    """Where a parameter writes: the steps to the message holding the field, and the field."""
    steps: tuple[tuple[str, int | None], ...]
    field: _d.FieldDescriptor

    @property
    def kind(self) -> str:
        if self.field.type in _INTS:
            return "int"
        if self.field.type in _FLOATS:
            return "float"
        if self.field.type == _d.FieldDescriptor.TYPE_BOOL:
            return "bool"
        return "str"


@dataclass(frozen=True)
class ParameterPlan:
    name: str
    path: str
    target: Target
    kind: str                     # "int", "float" (ranges) or "choices"
    low: float = 0.0
    high: float = 0.0
    step: float = 0.0             # 0: continuous (floats without a step)
    log: bool = False
    choices: tuple = ()

    def grid_values(self) -> list:
        """The values a grid takes (ValueError for a continuous range)."""
        if self.kind == "choices":
            return list(self.choices)
        if not self.step:
            raise ValueError(f"'{self.name}' has no step: a grid needs one")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        if self.kind == "int":
            return [int(self.low + k * self.step) for k in range(n)]
        return [_tidy(self.low + k * self.step) for k in range(n)]

    def grid_size(self) -> int | None:
        if self.kind == "choices":
            return len(self.choices)
        if not self.step:
            return None
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1


@dataclass(frozen=True)
class ConstraintPlan:
    lhs: str
    op: str
    rhs: str | float              # a parameter's name, or a number

    def holds(self, values: dict[str, Any]) -> bool:
        right = values[self.rhs] if isinstance(self.rhs, str) else self.rhs
        return OPS[self.op](values[self.lhs], right)


@dataclass(frozen=True)
class SpacePlan:
    base: strategy_pb2.Strategy
    parameters: tuple[ParameterPlan, ...]
    constraints: tuple[ConstraintPlan, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def grid_size(self) -> int | None:
        """Parameter sets in the full grid before constraints (None: a range has no step)."""
        total = 1
        for p in self.parameters:
            n = p.grid_size()
            if n is None:
                return None
            total *= n
        return total

    def allowed(self, values: dict[str, Any]) -> bool:
        return all(c.holds(values) for c in self.constraints)

    def grid(self, cap: int = DEFAULT_GRID_CAP) -> Iterator[dict[str, Any]]:
        """Every parameter set of the grid that meets the constraints, in a fixed order."""
        size = self.grid_size()
        if size is None:
            continuous = [p.name for p in self.parameters if p.grid_size() is None]
            raise SpecError([Problem("space.parameters", f"a grid needs a step for {', '.join(continuous)}: "
                                                         "give float_range.step, or use the random or bayesian method")])
        if size > cap:
            raise SpecError([Problem("space.parameters", f"the grid has {size:,} parameter sets (before constraints), "
                                                         f"more than the cap of {cap:,}: widen the steps, narrow the "
                                                         "ranges, or use the random or bayesian method")])
        names = self.names
        for combo in itertools.product(*(p.grid_values() for p in self.parameters)):
            values = dict(zip(names, combo))
            if self.allowed(values):
                yield values

    def apply(self, values: dict[str, Any]) -> strategy_pb2.Strategy:
        """The base strategy with these parameter values set (a copy)."""
        out = strategy_pb2.Strategy()
        out.CopyFrom(self.base)
        for p in self.parameters:
            _set(out, p.target, values[p.name])
        return out


def _tidy(x: float) -> float:
    return float(f"{x:.12g}")  # 0.1 + 2 * 0.1 is 0.30000000000000004; a parameter should read 0.3


def resolve(strategy: strategy_pb2.Strategy, path: str) -> Target | str:
    """The field `path` reaches in `strategy`, or why it reaches none (text for a Problem)."""
    if not path:
        return "missing path: name a Strategy field, e.g. indicators[0].period"
    msg = strategy
    steps: list[tuple[str, int | None]] = []
    parts = path.split(".")
    for k, part in enumerate(parts):
        m = _SEGMENT.fullmatch(part)
        if m is None:
            return f"'{part}' is not a field name (use name or name[index], e.g. indicators[0])"
        name, index = m.group(1), m.group(2)
        field = msg.DESCRIPTOR.fields_by_name.get(name)
        where = ".".join(parts[:k]) or "Strategy"
        if field is None:
            known = ", ".join(sorted(msg.DESCRIPTOR.fields_by_name))
            return f"{where} has no field '{name}' (it has: {known})"
        repeated = field.is_repeated
        if repeated and index is None:
            return f"{where}.{name} is a list: give an index, e.g. {name}[0]"
        if not repeated and index is not None:
            return f"{where}.{name} is not a list: leave out [{index}]"
        if field.containing_oneof is not None and msg.WhichOneof(field.containing_oneof.name) != name:
            chosen = msg.WhichOneof(field.containing_oneof.name)
            return (f"{where} holds {chosen or 'nothing'} in '{field.containing_oneof.name}', not '{name}': a "
                    f"parameter changes a value the strategy has, not what kind of value it is")
        last = k == len(parts) - 1
        if last:
            if field.type == _d.FieldDescriptor.TYPE_MESSAGE or repeated:
                return f"{path} is not a number, text or flag: continue the path to one of its fields"
            if field.type == _d.FieldDescriptor.TYPE_ENUM:
                return f"{path} is an enumeration: not supported as a parameter"
            steps.append((name, None))
            return Target(tuple(steps), field)
        if field.type != _d.FieldDescriptor.TYPE_MESSAGE:
            return f"{where}.{name} holds a value, not fields: the path ends there"
        if repeated:
            items = getattr(msg, name)
            if int(index) >= len(items):
                return f"{where}.{name} has {len(items)} item(s): index {index} is out of range"
            msg = items[int(index)]
            steps.append((name, int(index)))
        else:
            if not msg.HasField(name):
                return f"{where}.{name} is not set in the strategy: set it there first"
            msg = getattr(msg, name)
            steps.append((name, None))
    return "empty path"


def _set(strategy: strategy_pb2.Strategy, target: Target, value: Any) -> None:
    msg = strategy
    for name, index in target.steps[:-1]:
        msg = getattr(msg, name)[index] if index is not None else getattr(msg, name)
    kind = target.kind
    value = int(value) if kind == "int" else float(value) if kind == "float" else value
    setattr(msg, target.steps[-1][0], value)


def _choice(value: struct_pb2.Value) -> tuple[str, Any] | None:
    which = value.WhichOneof("kind")
    if which == "number_value":
        return "number", value.number_value
    if which == "string_value":
        return "str", value.string_value
    if which == "bool_value":
        return "bool", value.bool_value
    return None


def compile_space(space: opb.ParameterSpace, strategy: strategy_pb2.Strategy) -> SpacePlan:
    """Validate `space` against `strategy` (which must itself be valid); return its plan or
    raise SpecError listing every problem."""
    problems: list[Problem] = []
    plans: list[ParameterPlan] = []
    names: set[str] = set()
    if not space.parameters:
        problems.append(Problem("space.parameters", "no parameters: name at least one Strategy field to vary"))
    if len(space.parameters) > MAX_PARAMETERS:
        problems.append(Problem("space.parameters", f"at most {MAX_PARAMETERS} parameters, got {len(space.parameters)}"))
    paths: dict[str, str] = {}
    for i, p in enumerate(space.parameters[:MAX_PARAMETERS]):
        at = f"space.parameters[{i}]"
        if not NAME.fullmatch(p.name):
            problems.append(Problem(f"{at}.name", f"'{p.name[:64]}' is not a name: use 1-64 letters, digits and _, "
                                                  "not starting with a digit"))
        elif p.name in names:
            problems.append(Problem(f"{at}.name", f"'{p.name}' is used twice: each parameter needs its own name"))
        names.add(p.name)
        target = resolve(strategy, p.path)
        if isinstance(target, str):
            problems.append(Problem(f"{at}.path", target))
            continue
        if p.path in paths:
            problems.append(Problem(f"{at}.path", f"'{p.name}' and '{paths[p.path]}' both set {p.path}"))
        paths[p.path] = p.name
        plan = _domain(p, target, at, problems)
        if plan is not None:
            plans.append(plan)
    constraints = []
    for i, c in enumerate(space.constraints):
        at = f"space.constraints[{i}]"
        bad = False
        if c.lhs not in names:
            problems.append(Problem(f"{at}.lhs", f"no parameter named '{c.lhs[:64]}' (parameters: {', '.join(sorted(names))})"))
            bad = True
        if c.op not in OPS:
            problems.append(Problem(f"{at}.op", f"unknown operator '{c.op[:8]}': use one of {' '.join(OPS)}"))
            bad = True
        rhs: str | float = c.rhs
        if c.rhs not in names:
            try:
                rhs = float(c.rhs)
                if not math.isfinite(rhs):
                    raise ValueError
            except ValueError:
                problems.append(Problem(f"{at}.rhs", f"'{c.rhs[:64]}' is neither a parameter nor a finite number"))
                bad = True
        if not bad:
            constraints.append(ConstraintPlan(c.lhs, c.op, rhs))
    if problems:
        raise SpecError(problems)
    plan = SpacePlan(strategy, tuple(plans), tuple(constraints))
    _check_extremes(plan, problems)
    if problems:
        raise SpecError(problems)
    return plan


def _domain(p: opb.Parameter, target: Target, at: str, problems: list[Problem]) -> ParameterPlan | None:
    which = p.WhichOneof("domain")
    kind = target.kind
    if which is None:
        problems.append(Problem(f"{at}", f"no domain: give int_range, float_range or choices for '{p.name}'"))
        return None
    if which in ("int_range", "float_range"):
        r = getattr(p, which)
        if kind not in ("int", "float"):
            problems.append(Problem(f"{at}.{which}", f"{p.path} holds {'text' if kind == 'str' else 'a flag'}: "
                                                     "give choices instead of a range"))
            return None
        if kind == "int" and which == "float_range":
            problems.append(Problem(f"{at}.float_range", f"{p.path} holds whole numbers: use int_range"))
            return None
        low, high, step = float(r.low), float(r.high), float(r.step)
        if not all(math.isfinite(x) for x in (low, high, step)):
            problems.append(Problem(f"{at}.{which}", "low, high and step must be finite numbers"))
            return None
        if low > high:
            problems.append(Problem(f"{at}.{which}.high", f"high {r.high} is below low {r.low}: a range goes up"))
            return None
        if step < 0:
            problems.append(Problem(f"{at}.{which}.step", f"step must be positive, got {r.step}"))
            return None
        if which == "int_range" and step == 0:
            step = 1.0
        if step and step > high - low and high > low:
            problems.append(Problem(f"{at}.{which}.step", f"step {r.step} is larger than the range {r.low}..{r.high}"))
            return None
        if r.log and low <= 0:
            problems.append(Problem(f"{at}.{which}.low", "a log-scale range needs low > 0"))
            return None
        return ParameterPlan(p.name, p.path, target, "int" if which == "int_range" else "float", low, high, step, r.log)
    values = [_choice(v) for v in p.choices.values]
    if not values:
        problems.append(Problem(f"{at}.choices.values", "no choices: list at least one value"))
        return None
    if len(values) > MAX_CHOICES:
        problems.append(Problem(f"{at}.choices.values", f"at most {MAX_CHOICES:,} choices"))
        return None
    if any(v is None for v in values):
        problems.append(Problem(f"{at}.choices.values", "choices must be numbers, text or flags (no null, lists or objects)"))
        return None
    kinds = {k for k, _ in values}
    want = {"int": "number", "float": "number", "str": "str", "bool": "bool"}[kind]
    if kinds != {want}:
        problems.append(Problem(f"{at}.choices.values", f"{p.path} holds {'a number' if want == 'number' else want}: "
                                                        f"every choice must be one"))
        return None
    out = [v for _, v in values]
    if kind == "int":
        if any(not math.isfinite(v) or v != int(v) for v in out):
            problems.append(Problem(f"{at}.choices.values", f"{p.path} holds whole numbers: every choice must be one"))
            return None
        out = [int(v) for v in out]
    elif kind == "float" and any(not math.isfinite(v) for v in out):
        problems.append(Problem(f"{at}.choices.values", "choices must be finite numbers"))
        return None
    if len(set(out)) != len(out):
        problems.append(Problem(f"{at}.choices.values", "a choice is listed twice"))
        return None
    return ParameterPlan(p.name, p.path, target, "choices", choices=tuple(out))


def _check_extremes(plan: SpacePlan, problems: list[Problem]) -> None:
    """Each parameter at its lowest and highest value (the others as in the strategy) must give
    a valid strategy: a period of 0 or a percentage of 500 is refused here, not per trial."""
    for i, p in enumerate(plan.parameters):
        ends = [p.choices[0], p.choices[-1]] if p.kind == "choices" else [p.low, p.high]
        if p.kind == "choices" and p.target.kind in ("str", "bool"):
            ends = list(p.choices)
        for value in ends:
            trial = strategy_pb2.Strategy()
            trial.CopyFrom(plan.base)
            try:
                _set(trial, p.target, value)
                compile_strategy(trial)
            except SpecError as exc:
                first = exc.problems[0]
                problems.append(Problem(f"space.parameters[{i}]",
                                        f"{p.name} = {value} makes the strategy invalid ({first}): narrow the domain"))
                break
            except ValueError as exc:  # out of the field's range (int32)
                problems.append(Problem(f"space.parameters[{i}]", f"{p.name} = {value} does not fit {p.path}: {exc}"))
                break
