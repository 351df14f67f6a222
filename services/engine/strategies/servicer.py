"""StrategyService over grpc.aio (strategies.proto): saved strategies in versions.

BacktestService's conventions (services/engine/servicer.py): `_handler` authenticates, field
violations for INVALID_ARGUMENT, another user's strategy answers exactly as a missing one (ids
are per user: two users may each have "sma-cross"), limits are RESOURCE_EXHAUSTED with ErrorInfo.
Saving validates exactly as ValidateStrategy does (`compile_strategy`), its problems as field
violations under "strategy."; the store (storage/strategies.py) keeps the serialized strategy
and its warm-up. Runs reference a saved strategy through `refs.py`.
"""

from __future__ import annotations

import asyncio

import grpc
from google.rpc import error_details_pb2

from hindsight.v1 import strategies_pb2 as spb
from hindsight.v1 import strategies_pb2_grpc as spb_grpc

from services.engine.auth import Principal
from services.engine.core.spec import Problem, SpecError, compile_strategy
from services.engine.quotas import QuotaExceeded
from services.engine.servicer import RpcError, _handler, _ts, exhausted, invalid, not_found
from storage import AlreadyExists
from storage.strategies import (LimitReached, SavedVersion, StrategyNotFound, StrategyStore, VersionConflict,
                                VersionNotFound, check_strategy_id, slug)

SERVICE_NAME = "hindsight.v1.StrategyService"
MAX_DESCRIPTION = 4096
MAX_PAGE_SIZE = 500
# ListStrategyVersions includes the strategies of the newest versions up to this many bytes
# (the engine sends at most 32 MiB); older versions come without theirs (GetStrategy has each).
VERSIONS_BYTES = 16 << 20


class StrategyServicer(spb_grpc.StrategyServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose settings, auth and saved strategies
        (`backtests.strategies`, a StrategyStore) are shared."""
        self.backtests = backtests
        self.settings = backtests.settings
        self.store: StrategyStore = backtests.strategies

    async def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self.backtests.principal(context)

    # --- writes --------------------------------------------------------------------------
    @_handler
    async def CreateStrategy(self, request: spb.CreateStrategyRequest, context, me: Principal) -> spb.SavedStrategy:
        problems: list[Problem] = []
        if request.strategy_id:
            try:
                check_strategy_id(request.strategy_id)
            except ValueError as exc:
                problems.append(Problem("strategy_id", f"'{_cut(request.strategy_id, 80)}': {exc}"))
        payload, warmup, problems = await asyncio.to_thread(_compiled, request, problems)
        if problems:
            raise invalid(problems)
        try:
            saved = await asyncio.to_thread(
                self.store.create, me.user_id, payload, strategy_id=request.strategy_id,
                default_id=slug(request.strategy.name), description=request.description, warmup_bars=warmup,
                max_strategies=self.settings.max_strategies_per_user)
        except AlreadyExists:
            info = error_details_pb2.ResourceInfo(resource_type="strategy", resource_name=request.strategy_id,
                                                  owner=me.user_id, description="choose another strategy_id, or "
                                                  "save a new version of it with UpdateStrategy")
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"strategy '{request.strategy_id}' already exists: "
                           f"choose another strategy_id (or leave it out for one made from the name), or save a "
                           f"new version with UpdateStrategy", [info]) from None
        except LimitReached as exc:
            raise self._limit(exc) from None
        return _message(saved)

    @_handler
    async def UpdateStrategy(self, request: spb.UpdateStrategyRequest, context, me: Principal) -> spb.SavedStrategy:
        problems: list[Problem] = []
        if not request.strategy_id:
            problems.append(Problem("strategy_id", "required: the id of the strategy to save a version of"))
        if request.expected_version < 0:
            problems.append(Problem("expected_version", f"must be >= 0 (0: whatever the latest is), got "
                                                        f"{request.expected_version}"))
        payload, warmup, problems = await asyncio.to_thread(_compiled, request, problems)
        if problems:
            raise invalid(problems)
        description = request.description if request.description else None
        try:
            saved, _created = await asyncio.to_thread(
                self.store.update, me.user_id, request.strategy_id, payload, description=description,
                warmup_bars=warmup, expected_version=request.expected_version,
                max_versions=self.settings.max_strategy_versions)
        except StrategyNotFound:
            raise not_found("strategy", request.strategy_id) from None
        except VersionConflict as exc:
            info = error_details_pb2.ErrorInfo(reason="VERSION_CONFLICT", domain="hindsight",
                                               metadata={"latest_version": str(exc.latest),
                                                         "expected_version": str(request.expected_version)})
            raise RpcError(grpc.StatusCode.ABORTED, f"strategy '{request.strategy_id}' is at version {exc.latest}, "
                           f"not {request.expected_version}: someone saved a newer version since; get it, apply "
                           f"your change to it and update with expected_version {exc.latest}", [info]) from None
        except LimitReached as exc:
            raise self._limit(exc, request.strategy_id) from None
        return _message(saved)

    @_handler
    async def DeleteStrategy(self, request: spb.DeleteStrategyRequest, context,
                             me: Principal) -> spb.DeleteStrategyResponse:
        if not await asyncio.to_thread(self.store.delete, me.user_id, request.strategy_id):
            raise not_found("strategy", request.strategy_id)
        return spb.DeleteStrategyResponse(strategy_id=request.strategy_id)

    def _limit(self, exc: LimitReached, strategy_id: str = "") -> RpcError:
        if exc.limit == "strategies":
            return exhausted(QuotaExceeded("saved_strategies", f"you have {exc.used} saved strategies (limit "
                                           f"{exc.maximum}): delete some (DeleteStrategy) to save more"))
        return exhausted(QuotaExceeded("strategy_versions", f"strategy '{strategy_id}' has {exc.used} versions (limit "
                                       f"{exc.maximum}): save the change as a new strategy (CreateStrategy)"))

    # --- reads ---------------------------------------------------------------------------
    @_handler
    async def GetStrategy(self, request: spb.GetStrategyRequest, context, me: Principal) -> spb.SavedStrategy:
        if request.version < 0:
            raise invalid([Problem("version", f"must be >= 0 (0: the latest), got {request.version}")])
        try:
            saved = await asyncio.to_thread(self.store.get, me.user_id, request.strategy_id, request.version)
        except StrategyNotFound:
            raise not_found("strategy", request.strategy_id) from None
        except VersionNotFound as exc:
            info = error_details_pb2.ResourceInfo(
                resource_type="strategy version", resource_name=f"{request.strategy_id}@{request.version}",
                description=f"versions 1 to {exc.latest} exist (0: the latest)")
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"strategy '{request.strategy_id}' has no version "
                           f"{request.version} (its versions are 1 to {exc.latest})", [info]) from None
        return _message(saved)

    @_handler
    async def ListStrategies(self, request: spb.ListStrategiesRequest, context,
                             me: Principal) -> spb.ListStrategiesResponse:
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            raise invalid([Problem("page_size", f"must be between 0 and {MAX_PAGE_SIZE} (0: 50)")])
        try:
            items, token = await asyncio.to_thread(self.store.list, me.user_id, request.page_size or 50,
                                                   request.page_token or None)
        except ValueError as exc:
            raise invalid([Problem("page_token", f"invalid page token ({exc}): pass next_page_token "
                                                 f"unchanged")]) from None
        # A page is bounded by bytes as well as by count: strategies can be large.
        out = spb.ListStrategiesResponse()
        size = 0
        for n, saved in enumerate(items):
            item = _message(saved)
            size += item.ByteSize() + 8
            if n and size > self.settings.list_page_bytes:
                token = self.store.token_after(items[n - 1])
                break
            out.strategies.append(item)
        out.next_page_token = token or ""
        return out

    @_handler
    async def ListStrategyVersions(self, request: spb.ListStrategyVersionsRequest, context,
                                   me: Principal) -> spb.ListStrategyVersionsResponse:
        try:
            versions = await asyncio.to_thread(self.store.versions, me.user_id, request.strategy_id, VERSIONS_BYTES)
        except StrategyNotFound:
            raise not_found("strategy", request.strategy_id) from None
        return spb.ListStrategyVersionsResponse(versions=[_message(v) for v in versions])

    def close(self) -> None:
        self.store.close()


def _compiled(request, problems: list[Problem]) -> tuple[bytes, int, list[Problem]]:
    """The strategy as stored (deterministic bytes) and its warm-up, with every problem of the
    request: ValidateStrategy's, under "strategy.", then the request's own (blocking)."""
    out: list[Problem] = []
    warmup = 0
    if not request.HasField("strategy"):
        out.append(Problem("strategy", "missing strategy: send a hindsight.v1.Strategy (see examples/strategies/)"))
    else:
        try:
            warmup = compile_strategy(request.strategy).warmup_bars
        except SpecError as exc:
            out += [Problem(f"strategy.{p.field}" if p.field else "strategy", p.description) for p in exc.problems]
    if len(request.description) > MAX_DESCRIPTION:
        out.append(Problem("description", f"at most {MAX_DESCRIPTION} characters, got {len(request.description)}"))
    out += problems
    payload = request.strategy.SerializeToString(deterministic=True) if not out else b""
    return payload, warmup, out


def _message(saved: SavedVersion) -> spb.SavedStrategy:
    msg = spb.SavedStrategy(strategy_id=saved.strategy_id, version=saved.version, description=saved.description,
                            latest_version=saved.latest_version, owner=saved.owner, warmup_bars=saved.warmup_bars)
    if saved.strategy:
        msg.strategy.MergeFromString(saved.strategy)
    _ts(saved.created_at, msg.created_at)
    _ts(saved.first_created_at, msg.first_created_at)
    return msg


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "…"


__all__ = ["SERVICE_NAME", "StrategyServicer"]
