"""BacktestService over grpc.aio: translates requests to the job manager and storage, and back.

No backtest logic lives here. Errors are gRPC statuses with google.rpc details: field
violations for INVALID_ARGUMENT, ErrorInfo + RetryInfo for RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from datetime import date
from typing import AsyncIterator, Iterable

import grpc
from google.api import httpbody_pb2
from google.protobuf import any_pb2, duration_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import results_pb2

from services.engine.auth import Authenticator, Principal, Unauthenticated
from services.engine.core.catalog import Catalog
from services.engine.core.spec import Problem, SpecError, compile_strategy
from services.engine.hub import StreamHub
from services.engine.jobs import STATUS_ENUM, STATUS_NAME, JobManager, QueueFull, metrics_message
from services.engine.quotas import QuotaExceeded, Quotas
from services.engine.requests import MAX_ECHOED_ID, Invalid, check_start
from services.engine.settings import EngineSettings
from services.engine.strategies.refs import backtest_request
from services.engine.wire import length_delimited
from storage import COMPLETED, TERMINAL_STATUSES, LocalStore, LogClosed, NotFound
from storage.strategies import StrategyStore

SERVICE_NAME = "hindsight.v1.BacktestService"
STREAM_PAGE = 512
# StreamBacktestBatches: default and largest events per batch, and the size a batch stops
# growing at (one larger event still goes alone; the engine sends up to 32 MiB).
BATCH_EVENTS = 1000
MAX_BATCH_EVENTS = 10_000
BATCH_BYTES = 1 << 20
# Messages of ended backtests kept built (see _backtest_message).
FINISHED_MESSAGES = 64
ZIP_CHUNK = 64 * 1024


class RpcError(Exception):
    """Raised inside handlers; turned into a rich status by `_abort`."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable = (),
                 trailers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.code, self.message, self.details, self.trailers = code, message, list(details), trailers


def invalid(problems: list[Problem], prefix: str = "") -> RpcError:
    br = error_details_pb2.BadRequest()
    for p in problems:
        br.field_violations.add(field=(prefix + p.field) if p.field else prefix.rstrip("."),
                                description=p.description)
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    field = (prefix + first.field) if first.field else prefix.rstrip(".")
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                    f"{field}: {first.description}{more}" if field else f"{first.description}{more}", [br])


def not_found(what: str, ident: str) -> RpcError:
    if len(ident) > MAX_ECHOED_ID:
        ident = ident[:MAX_ECHOED_ID] + "…"
    info = error_details_pb2.ResourceInfo(resource_type=what, resource_name=ident,
                                          description=f"no {what} '{ident}' (it may have expired or been deleted)")
    return RpcError(grpc.StatusCode.NOT_FOUND, f"{what} '{ident}' not found", [info])


async def _abort(context: grpc.aio.ServicerContext, err: RpcError) -> None:
    if context.done():  # the client's deadline passed or it left: there is no one to tell
        return
    st = status_pb2.Status(code=err.code.value[0], message=err.message)
    for d in err.details:
        packed = any_pb2.Any()
        packed.Pack(d)
        st.details.append(packed)
    status = rpc_status.to_status(st)
    await context.abort(status.code, status.details, tuple(status.trailing_metadata) + tuple(err.trailers))


def exhausted(exc: QuotaExceeded) -> RpcError:
    details: list = [error_details_pb2.ErrorInfo(reason=exc.quota.upper(), domain="hindsight",
                                                 metadata={"quota": exc.quota})]
    if exc.retry_after_s is not None:
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(exc.retry_after_s))))
    return RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message, details)


def _ts(seconds: float | None, msg) -> None:
    if seconds:
        msg.FromNanoseconds(int(seconds * 1e9))


def _handler(fn):
    """Decorator for unary handlers: authenticate the caller (passed on as `me`), and map
    RpcError (and storage NotFound) to statuses."""
    async def wrapper(self, request, context):
        try:
            me = await self.principal(context)
            return await fn(self, request, context, me)
        except RpcError as err:
            await _abort(context, err)
        except NotFound as exc:
            await _abort(context, RpcError(grpc.StatusCode.NOT_FOUND, str(exc)))
    wrapper.__name__ = fn.__name__
    return wrapper


async def follow_log(context, event_log, after: int, limit: int, hub: StreamHub, ident: str,
                     terminal_id, exists, what: str) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Pages of (event id, event bytes) of a job's log after `after`: what is in the log, then
    live as the hub says more was appended, up to the terminal event (`terminal_id()`, None
    while running). A page holds what the log has when read (up to `limit`); it never waits to
    fill one. An `after` beyond the log is OUT_OF_RANGE; a job deleted meanwhile (`exists()`
    false) aborts NOT_FOUND. Backtests and optimizations stream through it."""
    if after > event_log.last_id:
        await _abort(context, RpcError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"after_event_id {after} is beyond the last event id {event_log.last_id}",
            [error_details_pb2.BadRequest(field_violations=[error_details_pb2.BadRequest.FieldViolation(
                field="after_event_id", description=f"must be <= {event_log.last_id}")])]))
        return
    cursor = after
    while True:
        fut = hub.future(ident)
        try:
            page = event_log.read(cursor, limit)
        except LogClosed:
            await _abort(context, not_found(what, ident))
            return
        if page:
            yield page
            cursor = page[-1][0]
            continue
        terminal = terminal_id()
        if terminal is not None and cursor >= terminal:
            return
        try:
            # The timeout only re-checks for deletion; wake-ups come from the hub.
            await asyncio.wait_for(asyncio.shield(fut), timeout=5.0)
        except asyncio.TimeoutError:
            if not exists():
                await _abort(context, not_found(what, ident))
                return


class BacktestServicer(pb_grpc.BacktestServiceServicer):
    def __init__(self, store: LocalStore, catalog: Catalog, jobs: JobManager, hub: StreamHub,
                 settings: EngineSettings, auth: Authenticator | None = None, strategies: StrategyStore | None = None):
        self.store, self.catalog, self.jobs, self.hub, self.settings = store, catalog, jobs, hub, settings
        self.auth = auth or Authenticator()
        # Saved strategies (StrategyService); runs may name one instead of sending a strategy.
        self.strategies = strategies if strategies is not None else StrategyStore(settings.store_root)
        self.quotas = Quotas(settings, store, self.strategies)
        self._finished: OrderedDict[tuple[str, bool], tuple[object, pb.Backtest]] = OrderedDict()

    async def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The authenticated caller; UNAUTHENTICATED (with WWW-Authenticate) otherwise."""
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        try:
            if self.auth.needs_thread(md):
                return await asyncio.to_thread(self.auth.authenticate, md, context.peer())
            return self.auth.authenticate(md, context.peer())
        except Unauthenticated as exc:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, exc.message,
                           trailers=(("www-authenticate", exc.www_authenticate()),)) from None

    def stream_url(self, bid: str) -> str:
        return f"{self.settings.gateway_prefix}/api/v1/backtests/{bid}/stream"

    # --- start ---------------------------------------------------------------------------
    @_handler
    async def StartBacktest(self, request: pb.StartBacktestRequest, context, me: Principal) -> pb.StartBacktestResponse:
        if request.request_id:  # an idempotent repeat answers as the first call did, quotas aside
            existing = self.store.find_by_request(me.user_id, request.request_id)
            if existing is not None:
                return self._started(existing.backtest_id, existing.total_days)
        try:
            request = await asyncio.to_thread(backtest_request, request, self.strategies, me.user_id)
            start = await asyncio.to_thread(check_start, request, self.catalog.scoped(me.user_id),
                                            self.settings.max_run_memory_bytes)
            self.quotas.check_start(me.user_id)
            bid, _created = self.jobs.submit(
                caller=me.user_id, request_id=request.request_id, strategy_id=start.strategy_id,
                config=start.config, plan=start.plan, settings=start.settings, total_days=len(start.days))
        except Invalid as exc:
            raise invalid(exc.problems, exc.prefix) from None
        except QuotaExceeded as exc:
            raise exhausted(exc) from None
        except QueueFull as exc:
            info = error_details_pb2.ErrorInfo(reason="QUEUE_FULL", domain="hindsight")
            retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=5))
            raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), [info, retry]) from None
        return self._started(bid, len(start.days))

    def _started(self, bid: str, total_days: int) -> pb.StartBacktestResponse:
        rec = self.store.get(bid)
        job = self.jobs.job(bid)
        status = job.status if job else (rec.status if rec else COMPLETED)
        return pb.StartBacktestResponse(backtest_id=bid, total_days=rec.total_days if rec else total_days,
                                        status=STATUS_ENUM[status], stream_url=self.stream_url(bid))

    # --- the stream ----------------------------------------------------------------------
    async def _authorized(self, context) -> Principal | None:
        """For handlers that stream: the caller, or None once the call is aborted."""
        try:
            return await self.principal(context)
        except RpcError as err:
            await _abort(context, err)
            return None

    async def StreamBacktest(self, request: pb.StreamBacktestRequest, context) -> AsyncIterator[bytes]:
        """Yields serialized BacktestEvent bytes straight from the log (see server.py)."""
        async for page in self._pages(request.backtest_id, request.after_event_id, STREAM_PAGE, context):
            for _, payload in page:
                yield payload

    async def StreamBacktestBatches(self, request: pb.StreamBacktestBatchesRequest,
                                    context) -> AsyncIterator[bytes]:
        """Yields serialized BacktestEventBatch bytes, assembled from the log's event bytes."""
        limit = min(request.max_events or BATCH_EVENTS, MAX_BATCH_EVENTS)
        async for page in self._pages(request.backtest_id, request.after_event_id, limit, context):
            for batch in batch_bytes(page, BATCH_BYTES):
                yield batch

    async def _pages(self, bid: str, after: int, limit: int, context) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Pages of (event id, event bytes) after `after`: the log first, then live, up to the end.

        A page holds what is in the log when it is read (up to `limit`); it never waits to
        fill one. Ends after the terminal event; aborts if the backtest is deleted meanwhile.
        """
        me = await self._authorized(context)
        if me is None:
            return
        try:
            self._record(bid, me)
        except RpcError as err:
            await _abort(context, err)
            return
        async for page in follow_log(context, self.store.event_log(bid), after, limit, self.hub, bid,
                                     lambda: self.jobs.terminal_id(bid), lambda: self.store.get(bid) is not None,
                                     "backtest"):
            yield page

    # --- queries -------------------------------------------------------------------------
    def _record(self, bid: str, me: Principal):
        """The caller's backtest (any, for an admin); another user's answers exactly as a
        missing one does."""
        try:
            rec = self.store.get(bid) if bid else None
        except ValueError:
            rec = None
        if rec is None or (rec.caller != me.user_id and not me.is_admin):
            raise not_found("backtest", bid)
        return rec

    def _backtest_message(self, rec, with_days: bool) -> pb.Backtest:
        """The Backtest message of an index row (and its job while it has one). An ended run's
        never changes once its row stops changing: kept (LRU), as building one with thousands
        of daily summaries from metadata.json costs milliseconds of the event loop."""
        job = self.jobs.job(rec.backtest_id)
        if rec.status not in TERMINAL_STATUSES or (job is not None and job.terminal_id is None):
            return self._build_message(rec, with_days)
        key = (rec.backtest_id, with_days)
        hit = self._finished.get(key)
        if hit is not None and hit[0] == rec:
            self._finished.move_to_end(key)
            return hit[1]
        msg = self._build_message(rec, with_days)
        self._finished[key] = (rec, msg)
        while len(self._finished) > FINISHED_MESSAGES:
            self._finished.popitem(last=False)
        return msg

    def _build_message(self, rec, with_days: bool) -> pb.Backtest:
        msg = pb.Backtest(backtest_id=rec.backtest_id, strategy_id=rec.strategy_id, owner=rec.caller,
                          status=STATUS_ENUM[rec.status],
                          stream_url=self.stream_url(rec.backtest_id), error_code=rec.error_code or "",
                          error_message=rec.error_message or "", last_event_id=rec.last_event_id or 0)
        if rec.config_json:
            json_format.Parse(rec.config_json, msg.config, ignore_unknown_fields=True)
        _ts(rec.created_at, msg.created_at)
        _ts(rec.started_at, msg.started_at)
        _ts(rec.finished_at, msg.finished_at)
        _ts(rec.expires_at, msg.expires_at)
        job = self.jobs.job(rec.backtest_id)
        if job is not None:
            # The job is ahead of the index: its terminal event may be in the log already.
            msg.status = STATUS_ENUM[job.status]
            msg.progress.CopyFrom(job.progress())
            _ts(job.started_at, msg.started_at)
            _ts(job.finished_at, msg.finished_at)
            if job.finished_at and not rec.expires_at:
                _ts(job.finished_at + self.store.ttl_seconds, msg.expires_at)
            if job.error_code:
                msg.error_code, msg.error_message = job.error_code, job.error_message
            if job.terminal_id:
                msg.last_event_id = job.terminal_id
            else:
                try:
                    msg.last_event_id = self.store.event_log(rec.backtest_id).last_id
                except (LogClosed, NotFound):
                    pass
            summary, metrics, daily = job.summary, job.metrics, list(job.daily)
        else:
            msg.progress.CopyFrom(pb.Progress(current_date=rec.current_date or "", completed_days=rec.completed_days,
                                              total_days=rec.total_days,
                                              percentage=round(100.0 * rec.completed_days / rec.total_days, 2)
                                              if rec.total_days else 0.0))
            summary = json.loads(rec.summary_json) if rec.summary_json else None
            metrics = daily = None
            if with_days or summary:
                try:
                    meta = self.store.read_metadata(rec.backtest_id)
                    metrics, daily = meta.get("metrics"), meta.get("daily_summaries")
                except (NotFound, FileNotFoundError):
                    pass
        if summary:
            json_format.ParseDict(summary, msg.summary, ignore_unknown_fields=True)
        if metrics:
            msg.metrics.CopyFrom(metrics_message({k: v for k, v in metrics.items() if v is not None}))
        if with_days and daily:
            msg.daily_summaries.extend(_daily_summary(row) for row in daily)
        return msg

    @_handler
    async def GetBacktest(self, request: pb.GetBacktestRequest, context, me: Principal) -> pb.Backtest:
        rec = self._record(request.backtest_id, me)
        return self._backtest_message(rec, with_days=not request.omit_days)

    @_handler
    async def ListBacktests(self, request: pb.ListBacktestsRequest, context, me: Principal) -> pb.ListBacktestsResponse:
        if request.page_size < 0 or request.page_size > 500:
            raise invalid([Problem("page_size", "must be between 0 and 500 (0: 50)")])
        if request.all_users and not me.is_admin:
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "all_users is for admins: leave it out to list your own "
                           "backtests", [error_details_pb2.ErrorInfo(reason="ADMIN_ONLY", domain="hindsight")])
        if request.status and request.status not in STATUS_NAME:
            raise invalid([Problem("status", f"unknown status {request.status}")])
        status = STATUS_NAME.get(request.status) if request.status else None
        strategy_id = request.strategy_id or None
        owner = None if request.all_users else me.user_id
        try:
            records, token = self.store.list(strategy_id=strategy_id, status=status,
                                             page_size=request.page_size or 50,
                                             page_token=request.page_token or None, caller=owner)
        except ValueError as exc:
            raise invalid([Problem("page_token", f"invalid page token ({exc}): pass next_page_token unchanged, "
                                                 f"with the same filters")]) from None
        # A page is bounded by bytes as well as by count: strategies can be large.
        out = pb.ListBacktestsResponse()
        size = 0
        for n, rec in enumerate(records):
            item = self._backtest_message(rec, with_days=False)
            size += item.ByteSize() + 8
            if n and size > self.settings.list_page_bytes:
                token = self.store.token_after(records[n - 1], strategy_id, status, caller=owner)
                break
            out.backtests.append(item)
        out.next_page_token = token or ""
        return out

    @_handler
    async def CancelBacktest(self, request: pb.CancelBacktestRequest, context, me: Principal) -> pb.Backtest:
        rec = self._record(request.backtest_id, me)
        if self.jobs.cancel(rec.backtest_id):
            await asyncio.to_thread(self.jobs.wait, rec.backtest_id, 30.0)
        return self._backtest_message(self._record(request.backtest_id, me), with_days=False)

    @_handler
    async def DeleteBacktest(self, request: pb.DeleteBacktestRequest, context, me: Principal) -> pb.DeleteBacktestResponse:
        rec = self._record(request.backtest_id, me)
        if self.jobs.cancel(rec.backtest_id, "deleted"):
            await asyncio.to_thread(self.jobs.wait, rec.backtest_id, 30.0)
        await asyncio.to_thread(self.store.delete, rec.backtest_id)
        self.jobs.forget(rec.backtest_id)
        self.hub.notify(rec.backtest_id)
        return pb.DeleteBacktestResponse(backtest_id=rec.backtest_id)

    def _day(self, bid: str, day: str, me: Principal) -> str:
        self._record(bid, me)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise invalid([Problem("date", f"'{day}' is not a date: use YYYY-MM-DD")]) from None
        if day not in self.jobs.visible_days(bid):  # published: its day_completed is in the log
            raise not_found("day", f"{bid}/{day}")
        return day

    @_handler
    async def GetDay(self, request: pb.GetDayRequest, context, me: Principal) -> results_pb2.DayDetail:
        day = self._day(request.backtest_id, request.date, me)
        trades, diags = await asyncio.to_thread(self.store.read_day, request.backtest_id, day)
        detail = results_pb2.DayDetail(date=day)
        json_format.ParseDict(trades.get("summary", {}), detail.summary, ignore_unknown_fields=True)
        from services.engine.events import node_event_message
        from services.engine.options.dayfields import from_day_file

        for t in trades.get("trades", []):
            json_format.ParseDict(from_day_file(t), detail.trades.add(), ignore_unknown_fields=True)
        for p in trades.get("positions", []):
            json_format.ParseDict(p, detail.positions.add(), ignore_unknown_fields=True)

        for key, ev in diags.get("events_history", {}).items():
            detail.events_history[key].CopyFrom(node_event_message(ev))
        return detail

    async def DownloadDay(self, request: pb.DownloadDayRequest, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        me = await self._authorized(context)
        if me is None:
            return

        def chunks():
            day = self._day(request.backtest_id, request.date, me)
            return self.store.day_archive(request.backtest_id, day, chunk_size=ZIP_CHUNK)

        async for body in _zip_response(context, chunks):
            yield body

    async def DownloadBacktest(self, request: pb.DownloadBacktestRequest, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        me = await self._authorized(context)
        if me is None:
            return

        def chunks():
            rec = self._record(request.backtest_id, me)
            bid = rec.backtest_id
            job = self.jobs.job(bid)
            if job is not None and job.terminal_id is None:
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"backtest '{bid}' is still {job.status}: download it when it has ended "
                               f"(or download finished days with DownloadDay)")
            try:
                meta = self.store.read_metadata(bid)
            except (NotFound, FileNotFoundError):
                meta = {"backtest_id": bid, "status": rec.status}
            days = self.jobs.visible_days(bid)

            def trade_rows():
                for d in days:
                    trades, _ = self.store.read_day(bid, d)
                    for t in trades.get("trades", []):
                        yield {**t, "date": d}

            return self.store.backtest_archive(bid, meta, trade_rows(), meta.get("daily_summaries") or [],
                                               chunk_size=ZIP_CHUNK)

        async for body in _zip_response(context, chunks):
            yield body

    # --- strategies, datasets ------------------------------------------------------------
    @_handler
    async def ValidateStrategy(self, request: pb.ValidateStrategyRequest, context,
                               me: Principal) -> pb.ValidateStrategyResponse:
        if not request.HasField("strategy"):
            raise invalid([Problem("strategy", "missing strategy: send a hindsight.v1.Strategy (see examples/strategies/)")])
        try:
            plan = compile_strategy(request.strategy)
        except SpecError as exc:
            return pb.ValidateStrategyResponse(valid=False, problems=[
                pb.StrategyProblem(field=p.field, description=p.description) for p in exc.problems])
        return pb.ValidateStrategyResponse(valid=True, warmup_bars=plan.warmup_bars)

    @_handler
    async def ListDatasets(self, request: pb.ListDatasetsRequest, context, me: Principal) -> pb.ListDatasetsResponse:
        """The caller's uploads, then the built-in and server datasets (another user's are never listed)."""
        from services.engine.datasets.listing import dataset_messages

        return pb.ListDatasetsResponse(datasets=await asyncio.to_thread(dataset_messages,
                                                                         self.catalog.scoped(me.user_id)))

    @_handler
    async def GetCaller(self, request: pb.GetCallerRequest, context, me: Principal) -> pb.Caller:
        usage = await asyncio.to_thread(self.quotas.usage, me.user_id)
        return pb.Caller(user_id=me.user_id, role=me.role, auth_method=me.method,
                         quotas=[pb.Quota(name=n, limit=limit, used=used) for n, limit, used in usage])


def _daily_summary(row: dict) -> results_pb2.DailySummary:
    """A daily_summaries row (as the job and metadata.json keep it) as its message: built by the
    constructor (thousands of rows; json_format.ParseDict costs ~20x more)."""
    try:
        return results_pb2.DailySummary(**row)
    except (TypeError, ValueError):  # a row written by another version: slow but lenient
        return json_format.ParseDict(row, results_pb2.DailySummary(), ignore_unknown_fields=True)


async def _zip_response(context, make_chunks) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """Check the request (errors become statuses before any byte), then stream the ZIP."""
    try:
        chunks = make_chunks()
    except RpcError as err:
        await _abort(context, err)
        return
    except NotFound as exc:
        await _abort(context, RpcError(grpc.StatusCode.NOT_FOUND, str(exc)))
        return
    async for body in _zip_bodies(chunks):
        yield body


async def _zip_bodies(chunks) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """ZIP chunks as HttpBody messages; chunks are produced off the event loop."""
    it = iter(chunks)
    sentinel = object()
    while True:
        chunk = await asyncio.to_thread(next, it, sentinel)
        if chunk is sentinel:
            return
        yield httpbody_pb2.HttpBody(content_type="application/zip", data=chunk)


# Field 1 (BacktestEventBatch.events), wire type 2 (length-delimited).
_EVENTS_TAG = b"\x0a"


def batch_bytes(page: list[tuple[int, bytes]], max_bytes: int) -> Iterable[bytes]:
    """Serialized BacktestEventBatch messages holding the page's event bytes, in order, without
    parsing them: a repeated message field is its elements' bytes, each tagged and
    length-prefixed. A batch is cut before it would pass `max_bytes` (never empty)."""
    parts: list[bytes] = []
    size = 0
    for _, payload in page:
        framed = length_delimited(_EVENTS_TAG, payload)
        if parts and size + len(framed) > max_bytes:
            yield b"".join(parts)
            parts, size = [], 0
        parts.append(framed)
        size += len(framed)
    if parts:
        yield b"".join(parts)
