"""OptimizationService over grpc.aio: translates requests to the optimization manager and its
store, and back, with BacktestService's conventions (services/engine/servicer.py): the same
callers and auth, another user's optimization answering exactly as a missing one, field
violations for INVALID_ARGUMENT, ErrorInfo (+ RetryInfo) for RESOURCE_EXHAUSTED, streams from
an exclusive after_event_id, ZIPs in HttpBody chunks. No optimization logic lives here.
"""

from __future__ import annotations

import asyncio
import math
from typing import AsyncIterator, Callable

import grpc
from google.api import httpbody_pb2
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import optimization_pb2_grpc as opb_grpc

from services.engine.auth import Authenticator, Principal
from services.engine.core.backtest import RunError
from services.engine.core.catalog import Catalog, UnknownDataset
from services.engine.core.spec import Problem, SpecError
from services.engine.hub import StreamHub
from services.engine.optimize.download import archive_members
from services.engine.optimize.executor import Executor, ExecutorError
from services.engine.optimize.jobs import COMPLETED, STATUS_ENUM, STATUS_NAME, OptimizationManager, QueueFull
from services.engine.optimize.runner import Optimization
from services.engine.quotas import QuotaExceeded, StartRate
from services.engine.requests import MAX_ECHOED_ID, MAX_REQUEST_ID, MAX_STRATEGY_ID, Invalid
from services.engine.servicer import (BATCH_BYTES, BATCH_EVENTS, MAX_BATCH_EVENTS, STREAM_PAGE, ZIP_CHUNK,
                                      BacktestServicer, RpcError, _abort, _handler, _ts, _zip_response, batch_bytes,
                                      exhausted, follow_log, invalid, not_found)
from services.engine.settings import EngineSettings
from services.engine.strategies.refs import optimization_request
from storage import TERMINAL_STATUSES, LogClosed, NotFound
from storage.optimizations import OptimizationRecord, OptimizationStore
from storage.strategies import StrategyStore

SERVICE_NAME = "hindsight.v1.OptimizationService"


class OptimizationServicer(opb_grpc.OptimizationServiceServicer):
    def __init__(self, store: OptimizationStore, catalog: Catalog, jobs: OptimizationManager, hub: StreamHub,
                 settings: EngineSettings, auth: Authenticator, rate: StartRate, strategies: StrategyStore | None = None):
        """`rate`: the backtests' start bucket, so starts of either kind share each user's rate;
        `strategies`: the saved strategies a request may name instead of sending config.strategy."""
        self.store, self.catalog, self.jobs, self.hub, self.settings = store, catalog, jobs, hub, settings
        self.auth, self.rate = auth, rate
        self.strategies = strategies if strategies is not None else StrategyStore(settings.store_root)

    # The caller, exactly as BacktestService authenticates it.
    principal = BacktestServicer.principal
    _authorized = BacktestServicer._authorized

    def stream_url(self, oid: str) -> str:
        return f"{self.settings.gateway_prefix}/api/v1/optimizations/{oid}/stream"

    # --- start ---------------------------------------------------------------------------
    @_handler
    async def StartOptimization(self, request: opb.StartOptimizationRequest, context,
                                me: Principal) -> opb.StartOptimizationResponse:
        if request.request_id:  # an idempotent repeat answers as the first call did, quotas aside
            existing = self.store.find_by_request(me.user_id, request.request_id)
            if existing is not None:
                return self._started(existing)
        try:
            request = await asyncio.to_thread(optimization_request, request, self.strategies, me.user_id)
        except Invalid as exc:
            raise invalid(exc.problems, exc.prefix) from None
        try:
            opt = await asyncio.to_thread(_prepare, request, self.catalog.scoped(me.user_id), self.jobs.executor)
        except ExecutorError as exc:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, f"the cluster that computes trials cannot be reached: "
                                                        f"{exc}") from None
        except SpecError as exc:
            raise invalid(exc.problems) from None
        except UnknownDataset as exc:
            raise invalid([Problem("config.symbol", str(exc))]) from None
        except RunError as exc:  # e.g. no trading days in the range
            raise invalid([Problem("config.start_date", str(exc))]) from None
        try:
            self._check_quotas(me.user_id)
            oid, _created = self.jobs.submit(owner=me.user_id, request_id=request.request_id,
                                             strategy_id=request.strategy_id or request.config.strategy.name,
                                             config=request.config, prepared=opt)
        except QuotaExceeded as exc:
            raise exhausted(exc) from None
        except QueueFull as exc:
            info = error_details_pb2.ErrorInfo(reason="QUEUE_FULL", domain="hindsight")
            retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=5))
            raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), [info, retry]) from None
        return self._started(self.store.get(oid))

    def _check_quotas(self, user: str) -> None:
        limit = self.jobs.limits.max_queued_per_user
        if limit:
            queued = self.jobs.queued(user)
            if queued >= limit:
                raise QuotaExceeded("queued_optimizations", f"you have {queued} optimizations waiting to start "
                                    f"(limit {limit}): retry when some have started", retry_after_s=5.0)
        wait = self.rate.take(user)
        if wait is not None:
            raise QuotaExceeded("starts_per_minute", f"more than {self.settings.starts_per_minute} starts in a "
                                f"minute: retry in {math.ceil(wait)} s", retry_after_s=float(math.ceil(wait)))

    def _started(self, rec: OptimizationRecord) -> opb.StartOptimizationResponse:
        job = self.jobs.job(rec.optimization_id)
        return opb.StartOptimizationResponse(optimization_id=rec.optimization_id, total_trials=rec.total_trials,
                                             status=STATUS_ENUM[job.status if job else rec.status],
                                             stream_url=self.stream_url(rec.optimization_id))

    # --- streams -------------------------------------------------------------------------
    async def StreamOptimization(self, request: opb.StreamOptimizationRequest, context) -> AsyncIterator[bytes]:
        """Serialized OptimizationEvent bytes straight from the log (see server.py)."""
        async for page in self._pages(request.optimization_id, request.after_event_id, STREAM_PAGE, context):
            for _, payload in page:
                yield payload

    async def StreamOptimizationBatches(self, request: opb.StreamOptimizationBatchesRequest,
                                        context) -> AsyncIterator[bytes]:
        """Serialized OptimizationEventBatch bytes, assembled from the log's event bytes."""
        limit = min(request.max_events or BATCH_EVENTS, MAX_BATCH_EVENTS)
        async for page in self._pages(request.optimization_id, request.after_event_id, limit, context):
            for batch in batch_bytes(page, BATCH_BYTES):
                yield batch

    async def _pages(self, oid: str, after: int, limit: int, context) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Pages of (event id, event bytes) after `after`: the log, then live, up to the
        terminal event (as BacktestServicer._pages); aborts if it is deleted meanwhile."""
        me = await self._authorized(context)
        if me is None:
            return
        try:
            self._record(oid, me)
            event_log = self.store.event_log(oid)
        except RpcError as err:
            await _abort(context, err)
            return
        except NotFound:
            await _abort(context, not_found("optimization", oid))
            return
        async for page in follow_log(context, event_log, after, limit, self.hub, oid,
                                     lambda: self.jobs.terminal_id(oid), lambda: self.store.get(oid) is not None,
                                     "optimization"):
            yield page

    # --- queries -------------------------------------------------------------------------
    def _record(self, oid: str, me: Principal) -> OptimizationRecord:
        """The caller's optimization (any, for an admin); another user's answers exactly as a
        missing one does."""
        rec = self.store.get(oid) if oid else None
        if rec is None or (rec.owner != me.user_id and not me.is_admin):
            raise not_found("optimization", oid)
        return rec

    def _message(self, rec: OptimizationRecord, with_result: bool) -> opb.Optimization:
        """The Optimization of an index row, and of its job while it has one (ahead of the
        index). `with_result`: the best trials, and the result once completed (from the log's
        terminal event)."""
        oid = rec.optimization_id
        msg = opb.Optimization(optimization_id=oid, strategy_id=rec.strategy_id, owner=rec.owner,
                               status=STATUS_ENUM[rec.status], stream_url=self.stream_url(oid),
                               error_code=rec.error_code, error_message=rec.error_message,
                               last_event_id=rec.last_event_id)
        msg.config.MergeFromString(rec.config)
        _ts(rec.created_at, msg.created_at)
        _ts(rec.started_at, msg.started_at)
        _ts(rec.finished_at, msg.finished_at)
        _ts(rec.expires_at, msg.expires_at)
        msg.progress.CopyFrom(opb.OptimizationProgress(
            completed_trials=rec.completed_trials, total_trials=rec.total_trials,
            percentage=round(100.0 * rec.completed_trials / rec.total_trials, 2) if rec.total_trials else 0.0,
            completed_windows=rec.completed_windows, total_windows=rec.total_windows))
        best = list(opb.BestUpdated.FromString(rec.top).best) if with_result and rec.top else []
        job = self.jobs.job(oid)
        status = rec.status
        if job is not None:
            status = job.status
            msg.status = STATUS_ENUM[status]
            msg.progress.CopyFrom(job.progress)
            _ts(job.started_at, msg.started_at)
            _ts(job.finished_at, msg.finished_at)
            if job.finished_at and rec.status not in TERMINAL_STATUSES:
                _ts(job.finished_at + self.store.ttl_seconds, msg.expires_at)
            if job.error_code:
                msg.error_code, msg.error_message = job.error_code, job.error_message
            try:
                msg.last_event_id = job.terminal_id or self.store.event_log(oid).last_id
            except (LogClosed, NotFound):
                pass
            best = list(job.best) if with_result else []
        if with_result and status == COMPLETED and msg.last_event_id:
            try:
                page = self.store.event_log(oid).read(msg.last_event_id - 1, 1)
            except (LogClosed, NotFound):
                page = []
            for _, payload in page:
                end = opb.OptimizationEvent.FromString(payload)
                if end.HasField("optimization_completed"):
                    msg.result.CopyFrom(end.optimization_completed.result)
        msg.top.extend(msg.result.top or best)
        return msg

    @_handler
    async def GetOptimization(self, request: opb.GetOptimizationRequest, context, me: Principal) -> opb.Optimization:
        rec = self._record(request.optimization_id, me)
        return await asyncio.to_thread(self._message, rec, True)

    @_handler
    async def ListOptimizations(self, request: opb.ListOptimizationsRequest, context,
                                me: Principal) -> opb.ListOptimizationsResponse:
        if request.page_size < 0 or request.page_size > 500:
            raise invalid([Problem("page_size", "must be between 0 and 500 (0: 50)")])
        if request.all_users and not me.is_admin:
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "all_users is for admins: leave it out to list your own "
                           "optimizations", [error_details_pb2.ErrorInfo(reason="ADMIN_ONLY", domain="hindsight")])
        if request.status and request.status not in STATUS_NAME:
            raise invalid([Problem("status", f"unknown status {request.status}")])
        status = STATUS_NAME.get(request.status) if request.status else None
        strategy_id = request.strategy_id or None
        owner = None if request.all_users else me.user_id
        try:
            records, token = self.store.list(strategy_id=strategy_id, status=status, page_size=request.page_size or 50,
                                             page_token=request.page_token or None, owner=owner)
        except ValueError as exc:
            raise invalid([Problem("page_token", f"invalid page token ({exc}): pass next_page_token unchanged, "
                                                 f"with the same filters")]) from None
        # A page is bounded by bytes as well as by count: strategies can be large.
        out = opb.ListOptimizationsResponse()
        size = 0
        for n, rec in enumerate(records):
            item = self._message(rec, with_result=False)
            size += item.ByteSize() + 8
            if n and size > self.settings.list_page_bytes:
                token = self.store.token_after(records[n - 1], strategy_id=strategy_id, status=status, owner=owner)
                break
            out.optimizations.append(item)
        out.next_page_token = token or ""
        return out

    @_handler
    async def CancelOptimization(self, request: opb.CancelOptimizationRequest, context,
                                 me: Principal) -> opb.Optimization:
        rec = self._record(request.optimization_id, me)
        if self.jobs.cancel(rec.optimization_id):
            await asyncio.to_thread(self.jobs.wait, rec.optimization_id, 30.0)
        return await asyncio.to_thread(self._message, self._record(request.optimization_id, me), True)

    @_handler
    async def DeleteOptimization(self, request: opb.DeleteOptimizationRequest, context,
                                 me: Principal) -> opb.DeleteOptimizationResponse:
        rec = self._record(request.optimization_id, me)
        if self.jobs.cancel(rec.optimization_id, "deleted"):
            await asyncio.to_thread(self.jobs.wait, rec.optimization_id, 30.0)
        await asyncio.to_thread(self.store.delete, rec.optimization_id)
        self.jobs.forget(rec.optimization_id)
        self.hub.notify(rec.optimization_id)
        return opb.DeleteOptimizationResponse(optimization_id=rec.optimization_id)

    async def DownloadOptimization(self, request: opb.DownloadOptimizationRequest,
                                   context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        me = await self._authorized(context)
        if me is None:
            return

        def chunks():
            rec = self._record(request.optimization_id, me)
            oid = rec.optimization_id
            job = self.jobs.job(oid)
            if (job is not None and job.terminal_id is None) or (job is None and rec.status not in TERMINAL_STATUSES):
                status = job.status if job is not None else rec.status
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"optimization '{oid}' is still {status}: download it when it has ended "
                               f"(GetOptimization shows the best trials so far)")
            rec = self.store.get(oid) or rec
            best = list(job.best) if job is not None else (
                list(opb.BestUpdated.FromString(rec.top).best) if rec.top else [])
            return self.store.archive(oid, archive_members(self.store, rec, self.catalog.scoped(rec.owner), best,
                                                           ZIP_CHUNK),
                                      chunk_size=ZIP_CHUNK)

        async for body in _zip_response(context, chunks):
            yield body


def _prepare(request: opb.StartOptimizationRequest, catalog: Catalog,
             executor: Callable[[], Executor]) -> Optimization:
    """The request checked and its optimization prepared (blocking: it loads the data). What
    can be told without loading anything is checked first: a missing config, strategy or
    symbol, ids too long; Optimization.prepare checks the rest (an unknown dataset with every
    other problem of the config)."""
    problems: list[Problem] = []
    config = request.config
    if not request.HasField("config"):
        problems.append(Problem("config", "missing config: send an OptimizationConfig with a strategy, a space, "
                                          "a method and a symbol"))
    else:
        if not config.HasField("strategy"):
            problems.append(Problem("config.strategy", "missing strategy: the hindsight.v1.Strategy whose fields "
                                                       "the space varies (see examples/strategies/), or leave it out "
                                                       "and name one of your saved strategies with strategy_id (and "
                                                       "strategy_version)"))
        if not config.symbol:
            problems.append(Problem("config.symbol", "missing symbol: use a dataset from ListDatasets, e.g. SIM-NIFTY"))
    if len(request.request_id) > MAX_REQUEST_ID:
        problems.append(Problem("request_id", f"at most {MAX_REQUEST_ID} characters"))
    if len(request.strategy_id) > MAX_STRATEGY_ID:
        problems.append(Problem("strategy_id", f"at most {MAX_STRATEGY_ID} characters, got {len(request.strategy_id)}"))
    if problems:
        raise invalid(problems)
    return Optimization.prepare(config, catalog, executor=executor())
