"""Which parameter sets a sweep tries next: a `Proposer` asks for a batch, the trials run (many
at a time), their objective values are told back.

- `grid`: every set of the space's grid that meets its constraints, in a fixed order.
- `random`, `bayesian` (TPE), `genetic` (NSGA-II, for several objectives): Optuna's samplers,
  driven through `Study.ask` / `Study.tell` so a batch is proposed before any of it is scored
  (TPE with the constant liar, so a batch does not repeat itself).

Sets that break a constraint are told to Optuna as failed and asked again (they never run);
a set proposed twice is not run twice: the proposer answers it from the first result. A
restarted engine rebuilds a proposer from the trials it recorded (`restore`) and continues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from services.engine.optimize.space import ParameterPlan, SpacePlan

METHODS = ("grid", "random", "bayesian", "genetic")
DIRECTIONS = ("maximize", "minimize")
# Proposals broken by constraints before the proposer gives up on finding a valid one.
MAX_REJECTED_PER_TRIAL = 200


@dataclass
class Proposal:
    """A parameter set to try. A set proposed before is not to be run: `repeat_of` names the
    earlier trial; its result is `known` (None while that trial is still running: it is told
    to this one too when it comes)."""
    number: int                       # the trial's number, from 0, in the order proposed
    values: dict[str, Any]
    repeat_of: int | None = None
    known: list[float] | None = None


@dataclass
class _Pending:
    trial: Any                        # optuna.Trial (None for the grid)
    key: tuple


@dataclass
class Proposer:
    plan: SpacePlan
    method: str
    directions: Sequence[str]
    n_trials: int                     # the budget (the grid: its size)
    seed: int = 0
    population_size: int = 50
    _study: Any = None
    _grid: Any = None
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _results: dict[tuple, list[float] | None] = field(default_factory=dict)
    _first: dict[tuple, int] = field(default_factory=dict)        # values → the trial that runs them
    _repeats: dict[int, list[int]] = field(default_factory=dict)  # running trial → its repeats
    _asked: int = 0
    exhausted: bool = False           # the space has no further valid set to propose

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise ValueError("directions: one or more of maximize, minimize")
        if self.method == "grid":
            self._grid = iter(list(self.plan.grid()))
            return
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        if self.method == "random":
            sampler = optuna.samplers.RandomSampler(seed=self.seed)
        elif self.method == "bayesian":
            sampler = optuna.samplers.TPESampler(seed=self.seed, multivariate=True, constant_liar=True)
        else:
            sampler = optuna.samplers.NSGAIISampler(seed=self.seed, population_size=self.population_size)
        self._study = optuna.create_study(sampler=sampler, directions=list(self.directions))
        self._distributions = {p.name: _distribution(p) for p in self.plan.parameters}

    @property
    def asked(self) -> int:
        return self._asked

    @property
    def done(self) -> bool:
        return self.exhausted or self._asked >= self.n_trials

    def ask(self, k: int) -> list[Proposal]:
        """Up to `k` more proposals (fewer at the end of the budget or of the grid)."""
        out: list[Proposal] = []
        while len(out) < k and not self.done:
            proposal = self._next()
            if proposal is None:
                self.exhausted = True
                break
            out.append(proposal)
        return out

    def tell(self, number: int, values: Sequence[float] | None) -> None:
        """A trial's objective values (one per direction); None when it failed or was filtered
        out (too few trades, say): Optuna learns to avoid its neighbourhood."""
        pending = self._pending.pop(number)
        result = None if values is None else [float(v) for v in values]
        self._results[pending.key] = result
        self._tell_optuna(pending, result)
        for repeat in self._repeats.pop(number, ()):
            self._tell_optuna(self._pending.pop(repeat), result)

    def _tell_optuna(self, pending: _Pending, result: list[float] | None) -> None:
        if pending.trial is None:
            return
        import optuna

        if result is None or any(v != v for v in result):
            self._study.tell(pending.trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(pending.trial, result)

    def restore(self, recorded: Sequence[tuple[dict[str, Any], Sequence[float] | None]]) -> None:
        """Trials recorded before a restart, in their order: counted, remembered, and taught to
        the sampler without being run again."""
        import optuna

        for values, result in recorded:
            key = self._key(values)
            self._results[key] = None if result is None else [float(v) for v in result]
            self._first.setdefault(key, self._asked)
            self._asked += 1
            if self._grid is not None:
                next(self._grid, None)  # the grid is proposed in a fixed order
                continue
            state = optuna.trial.TrialState.FAIL if result is None else optuna.trial.TrialState.COMPLETE
            self._study.add_trial(optuna.trial.create_trial(
                params=dict(values), distributions=self._distributions, state=state,
                values=None if result is None else list(result)))

    def best(self) -> list[tuple[dict[str, Any], list[float]]]:
        """The best set (one objective) or the Pareto front (several), from what was told."""
        scored = [(dict(k), v) for k, v in self._results.items() if v is not None and all(x == x for x in v)]
        signs = [1.0 if d == "maximize" else -1.0 for d in self.directions]

        def dominates(a: list[float], b: list[float]) -> bool:
            better = [s * x >= s * y for s, x, y in zip(signs, a, b)]
            return all(better) and any(s * x > s * y for s, x, y in zip(signs, a, b))

        if len(signs) == 1:
            return [max(scored, key=lambda kv: signs[0] * kv[1][0])] if scored else []
        return [kv for kv in scored if not any(dominates(o[1], kv[1]) for o in scored)]

    # --- internals ------------------------------------------------------------------------
    def _key(self, values: dict[str, Any]) -> tuple:
        return tuple((n, values[n]) for n in self.plan.names)

    def _next(self) -> Proposal | None:
        number = self._asked
        if self._grid is not None:
            values = next(self._grid, None)
            if values is None:
                return None
            self._asked += 1
            key = self._key(values)
            self._pending[number] = _Pending(None, key)
            self._first[key] = number
            return Proposal(number, values)
        import optuna

        for _ in range(MAX_REJECTED_PER_TRIAL):
            trial = self._study.ask(self._distributions)
            values = {n: _plain(trial.params[n]) for n in self.plan.names}
            if not self.plan.allowed(values):
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            self._asked += 1
            key = self._key(values)
            if key in self._results:  # scored before: answered from that result at once
                result = self._results[key]
                self._tell_optuna(_Pending(trial, key), result)
                return Proposal(number, values, repeat_of=self._first[key], known=result)
            self._pending[number] = _Pending(trial, key)
            if key in self._first:  # still running: told when it is
                self._repeats.setdefault(self._first[key], []).append(number)
                return Proposal(number, values, repeat_of=self._first[key])
            self._first[key] = number
            return Proposal(number, values)
        return None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _distribution(p: ParameterPlan):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.kind == "choices":
        return CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        # Optuna has no stepped log scale: a log-scale range is sampled at every integer.
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=1 if p.log else int(p.step or 1))
    if p.log or not p.step:
        return FloatDistribution(p.low, p.high, log=p.log)
    # A stepped range must end on a step (Optuna refuses one that does not).
    high = p.low + int((p.high - p.low) / p.step + 1e-9) * p.step
    return FloatDistribution(p.low, high, step=p.step)
