"""BacktestService over grpc.aio: translates requests to the job manager and storage, and back.

No backtest logic lives here. Errors are gRPC statuses with google.rpc details: field
violations for INVALID_ARGUMENT, ErrorInfo + RetryInfo for RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
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

from services.engine.core.backtest import RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import Problem, SpecError, compile_strategy
from services.engine.hub import StreamHub
from services.engine.jobs import STATUS_ENUM, STATUS_NAME, JobManager, QueueFull, metrics_message
from services.engine.settings import EngineSettings
from services.engine.wire import length_delimited
from storage import COMPLETED, LocalStore, LogClosed, NotFound

SERVICE_NAME = "hindsight.v1.BacktestService"
STREAM_PAGE = 512
# StreamBacktestBatches: default and largest events per batch, and the size a batch stops
# growing at (one larger event still goes alone; the engine sends up to 32 MiB).
BATCH_EVENTS = 1000
MAX_BATCH_EVENTS = 10_000
BATCH_BYTES = 1 << 20
ZIP_CHUNK = 64 * 1024


class RpcError(Exception):
    """Raised inside handlers; turned into a rich status by `_abort`."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable = ()):
        super().__init__(message)
        self.code, self.message, self.details = code, message, list(details)


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


# Identifiers echoed in errors are cut to this many characters: an id of any length is simply
# not found, and gRPC refuses trailers over 16 KiB (a 5,000-character id, echoed in the message
# and the details, came back as RESOURCE_EXHAUSTED instead of NOT_FOUND).
MAX_ECHOED_ID = 200
# Longest strategy_id a run may carry (it is stored, listed and echoed).
MAX_STRATEGY_ID = 200


def not_found(what: str, ident: str) -> RpcError:
    if len(ident) > MAX_ECHOED_ID:
        ident = ident[:MAX_ECHOED_ID] + "…"
    info = error_details_pb2.ResourceInfo(resource_type=what, resource_name=ident,
                                          description=f"no {what} '{ident}' (it may have expired or been deleted)")
    return RpcError(grpc.StatusCode.NOT_FOUND, f"{what} '{ident}' not found", [info])


async def _abort(context: grpc.aio.ServicerContext, err: RpcError) -> None:
    st = status_pb2.Status(code=err.code.value[0], message=err.message)
    for d in err.details:
        packed = any_pb2.Any()
        packed.Pack(d)
        st.details.append(packed)
    await context.abort_with_status(rpc_status.to_status(st))


def _caller(context: grpc.aio.ServicerContext) -> str:
    """Who is asking: x-hindsight-caller, else a digest of the Authorization header."""
    md = dict(context.invocation_metadata() or ())
    if md.get("x-hindsight-caller"):
        return str(md["x-hindsight-caller"])[:128]
    auth = md.get("authorization")
    if auth:
        return "auth:" + hashlib.sha256(str(auth).encode()).hexdigest()[:16]
    return "anonymous"


def _date_field(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid([Problem(field, f"'{text}' is not a date: use YYYY-MM-DD")]) from None


def _ts(seconds: float | None, msg) -> None:
    if seconds:
        msg.FromNanoseconds(int(seconds * 1e9))


def _handler(fn):
    """Decorator: map RpcError (and storage NotFound) to statuses for unary handlers."""
    async def wrapper(self, request, context):
        try:
            return await fn(self, request, context)
        except RpcError as err:
            await _abort(context, err)
        except NotFound as exc:
            await _abort(context, RpcError(grpc.StatusCode.NOT_FOUND, str(exc)))
    wrapper.__name__ = fn.__name__
    return wrapper


class BacktestServicer(pb_grpc.BacktestServiceServicer):
    def __init__(self, store: LocalStore, catalog: Catalog, jobs: JobManager, hub: StreamHub,
                 settings: EngineSettings):
        self.store, self.catalog, self.jobs, self.hub, self.settings = store, catalog, jobs, hub, settings

    def stream_url(self, bid: str) -> str:
        return f"{self.settings.gateway_prefix}/api/v1/backtests/{bid}/stream"

    # --- start ---------------------------------------------------------------------------
    @_handler
    async def StartBacktest(self, request: pb.StartBacktestRequest, context) -> pb.StartBacktestResponse:
        if not request.HasField("strategy"):
            raise invalid([Problem("strategy", "missing strategy: send a hindsight.v1.Strategy "
                                               "(see examples/strategies/)")])
        try:
            plan = compile_strategy(request.strategy)
        except SpecError as exc:
            raise invalid(exc.problems, "strategy.") from None
        problems = []
        if not request.symbol:
            problems.append(Problem("symbol", "missing symbol: use a dataset from ListDatasets, e.g. SIM-NIFTY"))
        elif not self.catalog.has(request.symbol):
            known = ", ".join(d.symbol for d in self.catalog.list())
            problems.append(Problem("symbol", f"unknown dataset '{request.symbol}' (known: {known})"))
        for name in ("initial_capital", "commission_pct", "slippage_pct"):
            value = getattr(request, name)
            if not math.isfinite(value):
                problems.append(Problem(name, f"{value} is not a number: give a finite value (0: the strategy's own)"))
            elif value < 0:
                problems.append(Problem(name, f"{name} must be >= 0 (0: the strategy's own setting)"))
        for name in ("commission_pct", "slippage_pct"):
            if math.isfinite(getattr(request, name)) and getattr(request, name) >= 100:
                problems.append(Problem(name, "percentages must be below 100 (0.01 means 0.01 %)"))
        if request.tick_interval < 0:
            problems.append(Problem("tick_interval", "must be >= 0 (0: no tick_update events)"))
        if request.timeframe:
            from services.engine.core.spec import valid_timeframe

            if not valid_timeframe(request.timeframe):
                problems.append(Problem("timeframe", f"unknown timeframe '{request.timeframe}': use 1m, 5m, 15m, 1h, 1d"))
        if len(request.request_id) > 128:
            problems.append(Problem("request_id", "at most 128 characters"))
        if len(request.strategy_id) > MAX_STRATEGY_ID:
            problems.append(Problem("strategy_id", f"at most {MAX_STRATEGY_ID} characters, got {len(request.strategy_id)}"))
        start = _date_field(request.start_date, "start_date")
        end = _date_field(request.end_date, "end_date")
        if start and end and start > end:
            problems.append(Problem("end_date", f"end_date {end} is before start_date {start}"))
        if problems:
            raise invalid(problems)

        ex = plan.execution
        settings = RunSettings(start=start, end=end, timeframe=request.timeframe,
                               initial_capital=request.initial_capital or None,
                               commission_pct=request.commission_pct or None,
                               slippage_pct=request.slippage_pct or None,
                               tick_interval=request.tick_interval)
        days = await asyncio.to_thread(self.catalog.trading_days, request.symbol, start, end)
        if not days:
            first, last = await asyncio.to_thread(self.catalog.date_range, request.symbol)
            raise invalid([Problem("start_date", f"no trading days between {start or 'the start'} and "
                                                 f"{end or 'the end'}: {request.symbol} has data from {first} to {last}")])
        if plan.has_legs:
            from services.engine.options.runner import leg_problems, source_for

            source = await asyncio.to_thread(source_for, self.catalog, request.symbol)
            bad = leg_problems(plan, source, request.symbol, days[0])
            if bad:
                raise invalid([Problem(path, fix) for path, fix in bad], "strategy.")
        config = pb.BacktestConfig(
            strategy=request.strategy, strategy_id=request.strategy_id, symbol=request.symbol,
            start_date=days[0].isoformat(), end_date=days[-1].isoformat(),
            timeframe=request.timeframe or ex.timeframe,
            initial_capital=request.initial_capital or ex.initial_capital,
            commission_pct=request.commission_pct or ex.commission_pct,
            slippage_pct=request.slippage_pct or ex.slippage_pct, tick_interval=request.tick_interval)
        try:
            bid, _created = self.jobs.submit(
                caller=_caller(context), request_id=request.request_id,
                strategy_id=request.strategy_id or plan.name, config=config, plan=plan,
                settings=RunSettings(start=days[0], end=days[-1], timeframe=settings.timeframe,
                                     initial_capital=settings.initial_capital,
                                     commission_pct=settings.commission_pct, slippage_pct=settings.slippage_pct,
                                     tick_interval=settings.tick_interval),
                total_days=len(days))
        except QueueFull as exc:
            info = error_details_pb2.ErrorInfo(reason="QUEUE_FULL", domain="hindsight")
            retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=5))
            raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), [info, retry]) from None
        rec = self.store.get(bid)
        job = self.jobs.job(bid)
        status = job.status if job else (rec.status if rec else COMPLETED)
        return pb.StartBacktestResponse(backtest_id=bid, total_days=rec.total_days if rec else len(days),
                                        status=STATUS_ENUM[status], stream_url=self.stream_url(bid))

    # --- the stream ----------------------------------------------------------------------
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
        try:
            self._record(bid)
        except RpcError as err:
            await _abort(context, err)
            return
        event_log = self.store.event_log(bid)
        if after > event_log.last_id:
            await _abort(context, RpcError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"after_event_id {after} is beyond the last event id {event_log.last_id}",
                [error_details_pb2.BadRequest(field_violations=[error_details_pb2.BadRequest.FieldViolation(
                    field="after_event_id", description=f"must be <= {event_log.last_id}")])]))
            return
        cursor = after
        while True:
            fut = self.hub.future(bid)
            try:
                page = event_log.read(cursor, limit)
            except LogClosed:
                await _abort(context, not_found("backtest", bid))
                return
            if page:
                yield page
                cursor = page[-1][0]
                continue
            terminal = self.jobs.terminal_id(bid)
            if terminal is not None and cursor >= terminal:
                return
            try:
                # The timeout only re-checks for deletion; wake-ups come from the hub.
                await asyncio.wait_for(asyncio.shield(fut), timeout=5.0)
            except asyncio.TimeoutError:
                if self.store.get(bid) is None:
                    await _abort(context, not_found("backtest", bid))
                    return

    # --- queries -------------------------------------------------------------------------
    def _record(self, bid: str):
        try:
            rec = self.store.get(bid) if bid else None
        except ValueError:
            rec = None
        if rec is None:
            raise not_found("backtest", bid)
        return rec

    def _backtest_message(self, rec, with_days: bool) -> pb.Backtest:
        msg = pb.Backtest(backtest_id=rec.backtest_id, strategy_id=rec.strategy_id, status=STATUS_ENUM[rec.status],
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
            for row in daily:
                json_format.ParseDict(row, msg.daily_summaries.add(), ignore_unknown_fields=True)
        return msg

    @_handler
    async def GetBacktest(self, request: pb.GetBacktestRequest, context) -> pb.Backtest:
        rec = self._record(request.backtest_id)
        return self._backtest_message(rec, with_days=not request.omit_days)

    @_handler
    async def ListBacktests(self, request: pb.ListBacktestsRequest, context) -> pb.ListBacktestsResponse:
        if request.page_size < 0 or request.page_size > 500:
            raise invalid([Problem("page_size", "must be between 0 and 500 (0: 50)")])
        status = STATUS_NAME.get(request.status) if request.status else None
        try:
            records, token = self.store.list(strategy_id=request.strategy_id or None, status=status,
                                             page_size=request.page_size or 50,
                                             page_token=request.page_token or None)
        except ValueError as exc:
            raise invalid([Problem("page_token", f"invalid page token ({exc}): pass next_page_token unchanged, "
                                                 f"with the same filters")]) from None
        return pb.ListBacktestsResponse(backtests=[self._backtest_message(r, with_days=False) for r in records],
                                        next_page_token=token or "")

    @_handler
    async def CancelBacktest(self, request: pb.CancelBacktestRequest, context) -> pb.Backtest:
        rec = self._record(request.backtest_id)
        if self.jobs.cancel(rec.backtest_id):
            await asyncio.to_thread(self.jobs.wait, rec.backtest_id, 30.0)
        return self._backtest_message(self._record(request.backtest_id), with_days=False)

    @_handler
    async def DeleteBacktest(self, request: pb.DeleteBacktestRequest, context) -> pb.DeleteBacktestResponse:
        rec = self._record(request.backtest_id)
        if self.jobs.cancel(rec.backtest_id, "deleted"):
            await asyncio.to_thread(self.jobs.wait, rec.backtest_id, 30.0)
        await asyncio.to_thread(self.store.delete, rec.backtest_id)
        self.jobs.forget(rec.backtest_id)
        self.hub.notify(rec.backtest_id)
        return pb.DeleteBacktestResponse(backtest_id=rec.backtest_id)

    def _day(self, bid: str, day: str) -> str:
        self._record(bid)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise invalid([Problem("date", f"'{day}' is not a date: use YYYY-MM-DD")]) from None
        if day not in self.store.list_days(bid):
            raise not_found("day", f"{bid}/{day}")
        return day

    @_handler
    async def GetDay(self, request: pb.GetDayRequest, context) -> results_pb2.DayDetail:
        day = self._day(request.backtest_id, request.date)
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
        def chunks():
            day = self._day(request.backtest_id, request.date)
            return self.store.day_archive(request.backtest_id, day, chunk_size=ZIP_CHUNK)

        async for body in _zip_response(context, chunks):
            yield body

    async def DownloadBacktest(self, request: pb.DownloadBacktestRequest, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        def chunks():
            rec = self._record(request.backtest_id)
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
            days = self.store.list_days(bid)

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
    async def ValidateStrategy(self, request: pb.ValidateStrategyRequest, context) -> pb.ValidateStrategyResponse:
        try:
            plan = compile_strategy(request.strategy)
        except SpecError as exc:
            return pb.ValidateStrategyResponse(valid=False, problems=[
                pb.StrategyProblem(field=p.field, description=p.description) for p in exc.problems])
        return pb.ValidateStrategyResponse(valid=True, warmup_bars=plan.warmup_bars)

    @_handler
    async def ListDatasets(self, request: pb.ListDatasetsRequest, context) -> pb.ListDatasetsResponse:
        from services.engine.options.runner import source_for

        def listing():
            out = []
            for d in self.catalog.list():
                try:
                    source = source_for(self.catalog, d.symbol)
                except (ValueError, OSError):  # e.g. two chain files for one dataset
                    source = None
                out.append((d, source.kind if source else ""))
            return out

        infos = await asyncio.to_thread(listing)
        return pb.ListDatasetsResponse(datasets=[pb.Dataset(
            symbol=d.symbol, description=d.description, timeframe=d.timeframe, first_date=str(d.first_date),
            last_date=str(d.last_date), bars=d.bars, timezone=d.timezone, calendar=d.calendar, options=options)
            for d, options in infos])


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
