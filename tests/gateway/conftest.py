"""A real grpc.aio engine double on port 0, and real gateways (uvicorn on port 0) in front of it.

`FakeBacktestService` implements hindsight.v1.BacktestService with deterministic data and a few
special ids that make it slow, silent, failing or erroring on purpose; `FakeDatasetService` records
the uploads' client streams message by message. The test-only
`hindsight.gatewaytest.EchoService` (protos/echo.proto, compiled at start) echoes its request,
so that transcoding can be checked field by field. Everything runs in one session event loop:
test modules say `pytestmark = pytest.mark.asyncio(loop_scope="session")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gzip
import io
import json
import os
import socket
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.api import httpbody_pb2
from google.protobuf import any_pb2, descriptor_pool, duration_pb2, json_format, timestamp_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import datasets_pb2 as dpb
from hindsight.v1 import datasets_pb2_grpc as dpb_grpc
from hindsight.v1 import results_pb2

from services.gateway.app import GatewayServer, build_server, default_services
from services.gateway.settings import GatewaySettings

HERE = Path(__file__).resolve().parent
SERVICE = "hindsight.v1.BacktestService"
OPTIMIZATION_SERVICE = "hindsight.v1.OptimizationService"
DATASET_SERVICE = "hindsight.v1.DatasetService"
# Served by the real engine only (tests through it: tests/gateway/test_optimizations.py and others).
OTHER_SERVICES = ("hindsight.v1.StrategyService", "hindsight.v1.AnalyticsService")
ECHO_SERVICE = "hindsight.gatewaytest.EchoService"
DAYS = 3
# Event counts of the fixed logs.
N_EVENTS = 1 + 3 * DAYS + 1
N_MANY = 1 + 3 * 999 + 1
FIXED_TIME = 1704067200  # 2024-01-01T00:00:00Z


# ---- the test-only echo service ---------------------------------------------------------------

@functools.cache
def compile_test_proto(name: str) -> None:
    """Compile tests/gateway/protos/<name> into the default descriptor pool (once per process)."""
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    from services.protogen import include_paths

    pool = descriptor_pool.Default()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{HERE / 'protos'}", *[f"-I{p}" for p in include_paths()],
                f"--descriptor_set_out={out}", "--include_imports", name]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on tests/gateway/protos/{name}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for proto in files.file:
        try:
            pool.FindFileByName(proto.name)
        except KeyError:
            pool.AddSerializedFile(proto.SerializeToString())


def echo_service() -> ServiceDescriptor:
    compile_test_proto("echo.proto")
    return descriptor_pool.Default().FindServiceByName(ECHO_SERVICE)


def stream_test_service(name: str) -> ServiceDescriptor:
    """A service of tests/gateway/protos/streams.proto (client-streaming rules, good and bad)."""
    compile_test_proto("streams.proto")
    return descriptor_pool.Default().FindServiceByName(f"hindsight.streamtest.{name}")


def batch_test_service(name: str) -> ServiceDescriptor:
    """A service of tests/gateway/protos/batched.proto (good and bad `batched_by` siblings)."""
    compile_test_proto("batched.proto")
    return descriptor_pool.Default().FindServiceByName(f"hindsight.batchtest.{name}")


def echo_class(name: str) -> Any:
    echo_service()
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(f"hindsight.gatewaytest.{name}"))


def services() -> list[ServiceDescriptor]:
    return [*default_services(), echo_service()]


# ---- deterministic data ------------------------------------------------------------------------

def make_events(backtest_id: str, days: int = DAYS) -> list[pb.BacktestEvent]:
    events: list[pb.BacktestEvent] = []

    def add(**kind: Any) -> None:
        eid = len(events) + 1
        events.append(pb.BacktestEvent(event_id=eid, backtest_id=backtest_id,
                                       emitted_at=timestamp_pb2.Timestamp(seconds=FIXED_TIME + eid), **kind))

    add(backtest_started=pb.BacktestStarted(total_days=days, first_date="2024-01-02",
                                            last_date=f"2024-01-{1 + days:02d}"))
    for d in range(days):
        date = f"2024-01-{2 + d:02d}"
        add(day_started=pb.DayStarted(date=date, day_number=d + 1, total_days=days))
        trade = results_pb2.Trade(trade_id=f"entry-1-pos{d + 1}", position_id=f"entry-1-pos{d + 1}", side="buy",
                                  quantity=10, entry_price="100.00", exit_price="101.00", pnl="10.00",
                                  entry_time=f"{date}T09:20:00+05:30", exit_time=f"{date}T10:20:00+05:30",
                                  entry_flow_ids=[f"ex-{d}-1"], exit_flow_ids=[f"ex-{d}-2"])
        add(trade_update=pb.TradeUpdate(trade=trade, summary=pb.PnlSummary(
            realized_pnl=f"{10 * (d + 1)}.00", closed_trades=d + 1, equity=f"{100000 + 10 * (d + 1)}.00")))
        add(day_completed=pb.DayCompleted(date=date, day_number=d + 1, total_days=days, has_detail_data=True,
                                          summary=results_pb2.DaySummary(total_trades=1, total_pnl="10.00"),
                                          equity=f"{100000 + 10 * (d + 1)}.00"))
    add(backtest_completed=pb.BacktestCompleted(backtest_id=backtest_id, overall_summary=results_pb2.OverallSummary(
        total_days=days, total_trades=days, total_pnl=f"{10 * days}.00")))
    return events


def day_zip(backtest_id: str, date: str) -> bytes:
    """A real day archive: the two gzipped JSON files, byte-for-byte reproducible."""
    trades = {"date": date, "backtest_id": backtest_id, "summary": {"total_trades": 1, "total_pnl": "10.00"},
              "trades": [{"trade_id": "entry-1-pos1", "pnl": "10.00", "entry_flow_ids": ["ex-1"]}]}
    diagnostics = {"events_history": {"ex-1": {"node_id": "entry-1", "signal_emitted": True}}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, doc in (("trades_daily.json.gz", trades), ("diagnostics_export.json.gz", diagnostics)):
            info = zipfile.ZipInfo(f"{date}/{name}", date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, gzip.compress(json.dumps(doc).encode(), mtime=0))
    # Pad so that the archive spans several HttpBody chunks.
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("padding.bin", date_time=(2024, 1, 1, 0, 0, 0)), bytes(range(256)) * 400)
    return buf.getvalue()


def backtest(backtest_id: str, days: int = 400) -> pb.Backtest:
    return pb.Backtest(
        backtest_id=backtest_id, strategy_id="rsi", status=pb.BACKTEST_STATUS_COMPLETED,
        created_at=timestamp_pb2.Timestamp(seconds=FIXED_TIME), last_event_id=N_EVENTS,
        daily_summaries=[results_pb2.DailySummary(date=f"day-{i}", trades=i % 3, pnl=f"{i}.00", has_data=True)
                         for i in range(days)])


# ---- the engine double -------------------------------------------------------------------------

@dataclass
class Recorded:
    method: str
    request: Any
    metadata: dict[str, str | bytes]


@dataclass
class FakeBacktestService(pb_grpc.BacktestServiceServicer):
    """Deterministic BacktestService. Special ids:

    streams: bt-1 (N_EVENTS events), bt-many (N_MANY), bt-slow (one event, then silence until
    cancelled), bt-silent (silence), bt-quiet (all of bt-1's events after 0.5 s), bt-drip (an
    event every 0.25 s), bt-fail (3 events, then INTERNAL); unknown → NOT_FOUND, a cursor past
    the end → OUT_OF_RANGE. GetBacktest: code-<NAME> aborts with that code; slow sleeps 5 s; rich
    sends BadRequest details; retry sends RetryInfo(3 s); odd sends an unknown detail type; meta
    sends initial metadata. DownloadDay/DownloadBacktest: a zip in chunks; bt-broken fails midway.
    """

    calls: list[Recorded] = field(default_factory=list)
    cancelled: dict[str, asyncio.Event] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    logs: dict[str, list[pb.BacktestEvent]] = field(default_factory=lambda: {
        "bt-1": make_events("bt-1"), "bt-many": make_events("bt-many", days=999)})

    def record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        md = {k: v for k, v in (context.invocation_metadata() or ())}
        self.calls.append(Recorded(method, request, md))

    def last(self, method: str) -> Recorded:
        for call in reversed(self.calls):
            if call.method == method:
                return call
        raise AssertionError(f"{method} was not called; calls: {[c.method for c in self.calls]}")

    def cancel_event(self, backtest_id: str) -> asyncio.Event:
        return self.cancelled.setdefault(backtest_id, asyncio.Event())

    async def StreamBacktest(self, request: pb.StreamBacktestRequest,
                             context: grpc.aio.ServicerContext) -> AsyncIterator[pb.BacktestEvent]:
        self.record("StreamBacktest", request, context)
        async for page in self._pages(request, context):
            for ev in page:
                yield ev

    async def StreamBacktestBatches(self, request: pb.StreamBacktestBatchesRequest,
                                    context: grpc.aio.ServicerContext) -> AsyncIterator[pb.BacktestEventBatch]:
        self.record("StreamBacktestBatches", request, context)
        async for page in self._pages(request, context):
            yield pb.BacktestEventBatch(events=page)

    async def _pages(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[list[pb.BacktestEvent]]:
        """The events of either stream RPC, in pages: a stored log in pages of `max_events`
        (default 5), the special ids one event per page."""
        bid = request.backtest_id
        try:
            if bid == "bt-slow":
                yield make_events(bid)[:1]
                await asyncio.sleep(3600)
            elif bid == "bt-silent":
                await asyncio.sleep(3600)
            elif bid == "bt-quiet":
                await asyncio.sleep(0.5)
                for ev in make_events(bid):
                    yield [ev]
            elif bid == "bt-drip":
                for ev in make_events(bid, days=1):
                    yield [ev]
                    await asyncio.sleep(0.25)
            elif bid == "bt-fail":
                for ev in make_events(bid)[:3]:
                    yield [ev]
                await context.abort(grpc.StatusCode.INTERNAL, "engine exploded on 2024-01-03")
            else:
                events = self.logs.get(bid)
                if events is None:
                    await context.abort(grpc.StatusCode.NOT_FOUND, f"backtest '{bid}' not found")
                    return
                if request.after_event_id > len(events):
                    await context.abort(grpc.StatusCode.OUT_OF_RANGE,
                                        f"after_event_id {request.after_event_id} is beyond the last event "
                                        f"({len(events)})")
                size = getattr(request, "max_events", 0) or 5
                for i in range(request.after_event_id, len(events), size):
                    yield events[i:i + size]
        except asyncio.CancelledError:
            self.cancel_event(bid).set()
            raise

    async def GetBacktest(self, request: pb.GetBacktestRequest, context: grpc.aio.ServicerContext) -> pb.Backtest:
        self.record("GetBacktest", request, context)
        bid = request.backtest_id
        if bid.startswith("code-"):
            await context.abort(grpc.StatusCode[bid[5:]], f"forced {bid[5:]}")
        if bid == "slow":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                self.cancel_event("slow").set()
                raise
        if bid == "rich":
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="strategy.entries[0].when", description="unknown indicator 'rsi2' — did you mean 'rsi'?")
            await self._abort_with(context, code_pb2.INVALID_ARGUMENT, "invalid strategy",
                                   error_details_pb2.BadRequest(field_violations=[violation]))
        if bid == "retry":
            await self._abort_with(context, code_pb2.RESOURCE_EXHAUSTED, "too many running backtests",
                                   error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3)))
        if bid == "odd":
            status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message="odd detail")
            status.details.append(any_pb2.Any(type_url="type.googleapis.com/acme.Unknown", value=b"\x08\x01"))
            await context.abort_with_status(rpc_status.to_status(status))
        if bid == "meta":
            await context.send_initial_metadata((("x-engine-node", "node-7"),))
        if bid == "bad-unicode":
            return pb.Backtest(backtest_id="ünïcødé ✓")
        if request.omit_days:
            return backtest(bid, days=0)
        return backtest(bid)

    async def _abort_with(self, context: grpc.aio.ServicerContext, code: int, message: str, *details: Any) -> None:
        status = status_pb2.Status(code=code, message=message)
        for detail in details:
            status.details.add().Pack(detail)
        await context.abort_with_status(rpc_status.to_status(status))

    async def ListBacktests(self, request: pb.ListBacktestsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListBacktestsResponse:
        self.record("ListBacktests", request, context)
        return pb.ListBacktestsResponse(backtests=[backtest("bt-1", days=0)], next_page_token="")

    async def StartBacktest(self, request: pb.StartBacktestRequest,
                            context: grpc.aio.ServicerContext) -> pb.StartBacktestResponse:
        self.record("StartBacktest", request, context)
        return pb.StartBacktestResponse(backtest_id="bt-new", total_days=5, status=pb.BACKTEST_STATUS_QUEUED,
                                        stream_url="/api/v1/backtests/bt-new/stream")

    async def CancelBacktest(self, request: pb.CancelBacktestRequest,
                             context: grpc.aio.ServicerContext) -> pb.Backtest:
        self.record("CancelBacktest", request, context)
        return pb.Backtest(backtest_id=request.backtest_id, status=pb.BACKTEST_STATUS_CANCELLED)

    async def DeleteBacktest(self, request: pb.DeleteBacktestRequest,
                             context: grpc.aio.ServicerContext) -> pb.DeleteBacktestResponse:
        self.record("DeleteBacktest", request, context)
        return pb.DeleteBacktestResponse(backtest_id=request.backtest_id)

    async def GetDay(self, request: pb.GetDayRequest, context: grpc.aio.ServicerContext) -> results_pb2.DayDetail:
        self.record("GetDay", request, context)
        detail = results_pb2.DayDetail(date=request.date, trades=[results_pb2.Trade(trade_id="t1", pnl="1.00")])
        detail.events_history["ex-1"].node_id = "entry-1"
        detail.events_history["ex-1"].variables["stop_loss"] = 99.5
        return detail

    async def DownloadDay(self, request: pb.DownloadDayRequest,
                          context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        self.record("DownloadDay", request, context)
        async for chunk in self._zip(request.backtest_id, day_zip(request.backtest_id, request.date), context):
            yield chunk

    async def DownloadBacktest(self, request: pb.DownloadBacktestRequest,
                               context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        self.record("DownloadBacktest", request, context)
        async for chunk in self._zip(request.backtest_id, day_zip(request.backtest_id, "all"), context):
            yield chunk

    async def _zip(self, bid: str, data: bytes,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        if bid == "bt-broken":
            yield httpbody_pb2.HttpBody(content_type="application/zip", data=data[:1000])
            await asyncio.sleep(0.05)
            await context.abort(grpc.StatusCode.DATA_LOSS, "day file vanished")
        if bid not in self.logs:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"backtest '{bid}' not found")
        step = 16 * 1024
        for i in range(0, len(data), step):
            # Only the first message needs the content type (google/api/httpbody.proto).
            yield httpbody_pb2.HttpBody(content_type="application/zip" if i == 0 else "", data=data[i:i + step])

    async def ValidateStrategy(self, request: pb.ValidateStrategyRequest,
                               context: grpc.aio.ServicerContext) -> pb.ValidateStrategyResponse:
        self.record("ValidateStrategy", request, context)
        if request.strategy.entries:
            return pb.ValidateStrategyResponse(valid=True, warmup_bars=14)
        return pb.ValidateStrategyResponse(valid=False, problems=[pb.StrategyProblem(
            field="entries", description="add at least one entry node")])

    async def ListDatasets(self, request: pb.ListDatasetsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListDatasetsResponse:
        self.record("ListDatasets", request, context)
        return pb.ListDatasetsResponse(datasets=[pb.Dataset(symbol="SIM-NIFTY", bars=94000, timezone="Asia/Kolkata")])


@dataclass
class Upload:
    """One client stream as the fake engine received it, message by message."""

    method: str
    metadata: dict[str, str | bytes]
    messages: list[Any] = field(default_factory=list)
    data_bytes: int = 0  # bytes of `chunk.data` (or `file.data`) in all
    ended: bool = False  # the client ended its stream (done_writing)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def data(self) -> bytes:
        return b"".join(m.chunk.data if hasattr(m, "chunk") else m.file.data for m in self.messages[1:])


class FakeDatasetService(dpb_grpc.DatasetServiceServicer):
    """DatasetService's uploads, recorded in `fake.uploads`. By symbol: TOO-LARGE answers
    RESOURCE_EXHAUSTED with ErrorInfo UPLOAD_TOO_LARGE after the first piece of data; QUOTA,
    RESOURCE_EXHAUSTED with ErrorInfo STORED_BYTES and RetryInfo(7 s) after the first message;
    INVALID, INVALID_ARGUMENT with field violations once the stream has ended; HOLD reads the
    first message and then nothing until cancelled; anything else answers a DatasetDetail (bars: the data's bytes) once the stream has ended.

    grpc.aio ends a servicer's request iterator in the same way whether the client ended its
    stream or cancelled the call; the cancellation comes as a CancelledError at a later await
    (~0.1 ms later here). So the fake "parses" before it counts a stream as ended: 10 ms, or 5 s
    for a symbol starting with SLOW- (the tests of cancellation), long enough to see it.
    A real servicer must do the same: never keep an upload before an await that follows the
    end of its stream."""

    def __init__(self, fake: FakeBacktestService) -> None:
        self.fake = fake

    async def UploadDataset(self, requests: AsyncIterator[dpb.UploadDatasetRequest],
                            context: grpc.aio.ServicerContext) -> dpb.DatasetDetail:
        return await self._upload("UploadDataset", requests, context)

    async def UploadOptionChain(self, requests: AsyncIterator[dpb.UploadOptionChainRequest],
                                context: grpc.aio.ServicerContext) -> dpb.DatasetDetail:
        return await self._upload("UploadOptionChain", requests, context)

    async def _upload(self, method: str, requests: AsyncIterator[Any],
                      context: grpc.aio.ServicerContext) -> dpb.DatasetDetail:
        upload = Upload(method, {k: v for k, v in (context.invocation_metadata() or ())})
        self.fake.uploads.append(upload)
        symbol = ""
        try:
            async for message in requests:
                if not upload.messages:
                    symbol = message.symbol
                upload.data_bytes += len(message.chunk.data)
                upload.messages.append(message)
                if symbol == "HOLD":
                    await asyncio.sleep(3600)
                if symbol == "QUOTA":
                    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7))
                    await self.fake._abort_with(context, code_pb2.RESOURCE_EXHAUSTED, "stored bytes quota reached",
                                                retry, error_details_pb2.ErrorInfo(reason="STORED_BYTES",
                                                                                   domain="hindsight"))
                if symbol == "TOO-LARGE" and len(upload.messages) > 1:
                    await self.fake._abort_with(context, code_pb2.RESOURCE_EXHAUSTED,
                                                "the upload is larger than the engine's limit of 3 bytes",
                                                error_details_pb2.ErrorInfo(reason="UPLOAD_TOO_LARGE",
                                                                            domain="hindsight"))
            await asyncio.sleep(5 if symbol.startswith("SLOW-") else 0.01)
            upload.ended = True
        except asyncio.CancelledError:
            upload.cancelled.set()
            raise
        if symbol == "INVALID":
            violations = [error_details_pb2.BadRequest.FieldViolation(
                field="chunk", description="line 3, column 'close': 'abc' is not a number"),
                error_details_pb2.BadRequest.FieldViolation(field="timezone",
                                                            description="unknown zone 'Mars/Olympus'")]
            await self.fake._abort_with(context, code_pb2.INVALID_ARGUMENT, "chunk: the file has 2 problems",
                                        error_details_pb2.BadRequest(field_violations=violations))
        first = upload.messages[0] if upload.messages else dpb.UploadDatasetRequest()
        return dpb.DatasetDetail(dataset=pb.Dataset(
            symbol=first.symbol, bars=upload.data_bytes, timezone=getattr(first, "timezone", ""),
            calendar=getattr(first, "calendar", ""), timeframe=getattr(first, "timeframe", ""),
            description=getattr(first, "description", ""), source="upload"))


def echo_handler(fake: FakeBacktestService) -> grpc.GenericRpcHandler:
    request_class = echo_class("EchoRequest")
    inner_class = echo_class("Inner")

    async def echo(request: Any, context: grpc.aio.ServicerContext) -> Any:
        fake.record("Echo", request, context)
        return request

    async def count(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        fake.record("Count", request, context)
        for i in range(int(request.id)):
            yield inner_class(name=f"n{i}", level=i)

    upload_class = echo_class("UploadRequest")
    reply_class = echo_class("UploadReply")

    async def render(request: Any, context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        fake.record("Render", request, context)
        return httpbody_pb2.HttpBody(content_type="text/plain; charset=utf-8", data=request.note.encode())

    async def upload(request: Any, context: grpc.aio.ServicerContext) -> Any:
        fake.record("Upload", request, context)
        return reply_class(id=request.id, content_type=request.file.content_type, size=len(request.file.data),
                           label=request.label)

    ingest_class = echo_class("IngestRequest")

    async def ingest(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        upload = Upload("Ingest", {k: v for k, v in (context.invocation_metadata() or ())})
        fake.uploads.append(upload)
        try:
            async for message in requests:
                upload.messages.append(message)
                upload.data_bytes += len(message.file.data)
            await asyncio.sleep(0.01)  # see FakeDatasetService
        except asyncio.CancelledError:
            upload.cancelled.set()
            raise
        upload.ended = True
        first = upload.messages[0]
        return reply_class(id=first.id, content_type=upload.messages[-1].file.content_type, size=upload.data_bytes,
                           label=",".join(first.tags))

    kw = {"request_deserializer": request_class.FromString}
    return grpc.method_handlers_generic_handler(ECHO_SERVICE, {
        "Ingest": grpc.stream_unary_rpc_method_handler(ingest, request_deserializer=ingest_class.FromString,
                                                        response_serializer=reply_class.SerializeToString),
        "Render": grpc.unary_unary_rpc_method_handler(
            render, response_serializer=httpbody_pb2.HttpBody.SerializeToString, **kw),
        "Upload": grpc.unary_unary_rpc_method_handler(upload, request_deserializer=upload_class.FromString,
                                                       response_serializer=reply_class.SerializeToString),
        "Echo": grpc.unary_unary_rpc_method_handler(echo, response_serializer=request_class.SerializeToString, **kw),
        "EchoTags": grpc.unary_unary_rpc_method_handler(echo, response_serializer=request_class.SerializeToString,
                                                         **kw),
        "Count": grpc.unary_stream_rpc_method_handler(count, response_serializer=inner_class.SerializeToString, **kw),
    })


@dataclass
class EngineHandle:
    port: int
    fake: FakeBacktestService
    health: Any

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


# ---- servers -----------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine() -> AsyncIterator[EngineHandle]:
    server = grpc.aio.server()
    fake = FakeBacktestService()
    pb_grpc.add_BacktestServiceServicer_to_server(fake, server)
    dpb_grpc.add_DatasetServiceServicer_to_server(FakeDatasetService(fake), server)
    server.add_generic_rpc_handlers((echo_handler(fake),))
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    # /readyz asks for every default service's health: the fake says OptimizationService and the
    # others are serving too (it serves none of their methods; tests/gateway/test_optimizations.py
    # and the like use the real engine).
    for name in (SERVICE, OPTIMIZATION_SERVICE, DATASET_SERVICE, *OTHER_SERVICES, ECHO_SERVICE):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield EngineHandle(port, fake, checker)
    await server.stop(0)


@pytest.fixture
def fake(engine: EngineHandle) -> FakeBacktestService:
    engine.fake.calls.clear()
    engine.fake.cancelled.clear()
    engine.fake.uploads.clear()
    return engine.fake


def _docs_env() -> dict[str, str]:
    explicit = os.environ.get("HINDSIGHT_DOCS_DIR")
    return {"HINDSIGHT_DOCS_DIR": explicit} if explicit else {}


StartGateway = Callable[..., Awaitable[str]]


@dataclass
class Gateways:
    """The gateways started in this session, by base URL."""

    servers: dict[str, tuple[GatewayServer, asyncio.Task[None]]] = field(default_factory=dict)

    async def stop(self, url: str) -> None:
        server, task = self.servers.pop(url)
        server.should_exit = True
        await task


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateways() -> AsyncIterator[Gateways]:
    running = Gateways()
    yield running
    await asyncio.gather(*(running.stop(url) for url in list(running.servers)))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def start_gateway(engine: EngineHandle, gateways: Gateways) -> StartGateway:
    """Start a gateway (uvicorn on a real socket, port 0) with some settings; returns its base URL."""

    async def start(target: str | None = None, *, grace_s: int = 1, **overrides: Any) -> str:
        settings = dataclasses.replace(GatewaySettings.from_env(_docs_env()), http_addr="127.0.0.1:0",
                                       engine_addr=target or engine.target, **overrides)
        server = build_server(settings, services=services(), log_config=None, log_level="warning",
                              access_log=False, timeout_graceful_shutdown=grace_s)
        # The signal handlers belong to pytest, not to a server under test.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        task = asyncio.create_task(server.serve(sockets=[sock]))
        gateways.servers[url] = (server, task)
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.005)
        return url

    return start


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(start_gateway: StartGateway) -> str:
    return await start_gateway()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- helpers -----------------------------------------------------------------------------------

def parse_sse(text: str) -> list[dict[str, Any]]:
    """Blocks of an event stream as dicts of their fields; comments under ':'."""
    blocks = []
    for raw in text.split("\n\n"):
        if not raw.strip("\n"):
            continue
        block: dict[str, Any] = {}
        for line in raw.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            block.setdefault(name, []).append(value)
        blocks.append({k: v[0] if len(v) == 1 else v for k, v in block.items()})
    return blocks


def events_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if "data" in b]


def as_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
