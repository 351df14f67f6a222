"""Runs by reference: a StartBacktest or StartOptimization request that names one of the
caller's saved strategies (`strategy_id` + `strategy_version`, no strategy) becomes the same
request with the strategy in it, before the request is checked. The run then carries the
strategy itself (its config, its log), so it never depends on the saved strategy again: an
engine restart continues it from its log, and a later update or delete leaves it alone.

Problems are `requests.Invalid` with the request's field names (INVALID_ARGUMENT): another
user's strategy is reported exactly as one that does not exist. Nothing here knows gRPC.
"""

from __future__ import annotations

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import optimization_pb2 as opb

from services.engine.core.spec import Problem
from services.engine.requests import MAX_ECHOED_ID, Invalid
from storage.strategies import SavedVersion, StrategyNotFound, StrategyStore, VersionNotFound


def _echo(ident: str) -> str:
    return ident if len(ident) <= MAX_ECHOED_ID else ident[:MAX_ECHOED_ID] + "…"


def saved_version(store: StrategyStore, owner: str, *, inline: bool, inline_field: str, strategy_id: str,
                  version: int) -> SavedVersion | None:
    """The saved version a request names, or None when it sends its strategy (`inline`) or
    names none (the request's own check then reports the missing strategy)."""
    if inline:
        if version:
            raise Invalid([Problem("strategy_version", f"only for a saved strategy: leave out {inline_field} to run "
                                                       f"your saved strategy strategy_id at strategy_version, or leave "
                                                       f"out strategy_version to run the {inline_field} sent")])
        return None
    if not strategy_id:
        return None
    if version < 0:
        raise Invalid([Problem("strategy_version", f"must be >= 0 (0: the latest version), got {version}")])
    try:
        return store.get(owner, strategy_id, version)
    except StrategyNotFound:
        raise Invalid([Problem("strategy_id", f"you have no saved strategy '{_echo(strategy_id)}': save it first "
                                              f"(CreateStrategy, POST /api/v1/strategies) or send {inline_field} "
                                              f"itself")]) from None
    except VersionNotFound as exc:
        raise Invalid([Problem("strategy_version", f"saved strategy '{strategy_id}' has no version {version} "
                                                   f"(its versions are 1 to {exc.latest}; 0: the latest)")]) from None


def backtest_request(request: pb.StartBacktestRequest, store: StrategyStore, owner: str) -> pb.StartBacktestRequest:
    """The request with the saved strategy it names in `strategy` and the version that ran in
    `strategy_version` (the latest's number for 0); the request itself when it names none."""
    saved = saved_version(store, owner, inline=request.HasField("strategy"), inline_field="strategy",
                          strategy_id=request.strategy_id, version=request.strategy_version)
    if saved is None:
        return request
    out = pb.StartBacktestRequest()
    out.CopyFrom(request)
    out.strategy.MergeFromString(saved.strategy)
    out.strategy_version = saved.version
    return out


def optimization_request(request: opb.StartOptimizationRequest, store: StrategyStore,
                         owner: str) -> opb.StartOptimizationRequest:
    """The request with the saved strategy it names in `config.strategy` (and `strategy_version`
    and `config.strategy_version` set to the version used, which the optimization records); the
    request itself when it names none (with `config.strategy_version`, output only, cleared)."""
    saved = saved_version(store, owner, inline=request.config.HasField("strategy"), inline_field="config.strategy",
                          strategy_id=request.strategy_id, version=request.strategy_version)
    if saved is None:
        if not request.config.strategy_version:
            return request
        out = opb.StartOptimizationRequest()
        out.CopyFrom(request)
        out.config.strategy_version = 0  # output only: the strategy was sent inline
        return out
    out = opb.StartOptimizationRequest()
    out.CopyFrom(request)
    out.config.strategy.MergeFromString(saved.strategy)
    out.strategy_version = out.config.strategy_version = saved.version
    return out
