"""The engine's gRPC server: BacktestService, OptimizationService, DatasetService,
StrategyService, AnalyticsService, health and reflection, with graceful shutdown.

`create_server(settings)` builds and binds (port 0 for tests) and returns an `Engine` handle;
`serve()` runs until SIGINT/SIGTERM; `main()` is the `hindsight engine` command.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from dataclasses import dataclass
from datetime import date

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import analytics_pb2 as apb
from hindsight.v1 import datasets_pb2 as dpb
from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import strategies_pb2 as spb

from services.engine.analytics.servicer import SERVICE_NAME as ANALYTICS_SERVICE
from services.engine.analytics.servicer import AnalyticsServicer
from services.engine.auth import from_settings, is_loopback
from services.engine.core.catalog import Catalog
from services.engine.datasets.servicer import SERVICE_NAME as DATASET_SERVICE
from services.engine.datasets.servicer import DatasetServicer
from services.engine.hub import StreamHub
from services.engine.jobs import JobManager
from services.engine.optimize.jobs import OptimizationManager, OptimizationSettings
from services.engine.optimize.servicer import SERVICE_NAME as OPTIMIZATION_SERVICE
from services.engine.optimize.servicer import OptimizationServicer
from services.engine.servicer import SERVICE_NAME, BacktestServicer
from services.engine.settings import EngineSettings
from services.engine.strategies.servicer import SERVICE_NAME as STRATEGY_SERVICE
from services.engine.strategies.servicer import StrategyServicer
from storage import LocalStore
from storage.optimizations import OptimizationStore
from storage.strategies import StrategyStore

log = logging.getLogger("hindsight.engine")

KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),           # ping idle clients every 30 s
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


# Their handlers yield messages already serialized (events from the log, GetAnalytics' answers
# kept as bytes): sent as they are.
PASSTHROUGH = frozenset({"StreamBacktest", "StreamBacktestBatches", "StreamOptimization",
                         "StreamOptimizationBatches", "GetAnalytics"})


def _passthrough(msg) -> bytes:
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


async def _bad_message(context, name: str, exc: Exception) -> None:
    from google.rpc import error_details_pb2

    from services.engine.servicer import RpcError, _abort

    await _abort(context, RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"the request is not a valid {name} message: {exc}",
                                   [error_details_pb2.BadRequest(field_violations=[
                                       error_details_pb2.BadRequest.FieldViolation(
                                           field="", description=f"cannot decode {name}: {exc}")])]))


def _decoding_unary(fn, req_cls):
    """Requests arrive as bytes and are decoded here, so a corrupt, over-deep or non-UTF-8
    message is INVALID_ARGUMENT (grpcio's own deserializer failure is UNKNOWN/INTERNAL)."""
    async def handler(raw: bytes, context):
        try:
            request = req_cls.FromString(raw)
        except (DecodeError, RecursionError, ValueError) as exc:
            await _bad_message(context, req_cls.DESCRIPTOR.full_name, exc)
            return None
        return await fn(request, context)
    return handler


def _decoding_stream(fn, req_cls):
    async def handler(raw: bytes, context):
        try:
            request = req_cls.FromString(raw)
        except (DecodeError, RecursionError, ValueError) as exc:
            await _bad_message(context, req_cls.DESCRIPTOR.full_name, exc)
            return
        async for item in fn(request, context):
            yield item
    return handler


class BadClientMessage(Exception):
    """A client-stream message that does not decode: raised by the servicer's iterator, so an
    upload stops (and keeps nothing) instead of taking the stream for ended."""


def _decoding_client_stream(fn, req_cls):
    """Client streams: each message is decoded here as it arrives (see _decoding_unary); the
    servicer gets an async iterator of messages. A message that does not decode raises
    BadClientMessage from the iterator and aborts the call INVALID_ARGUMENT."""
    async def handler(raw_iterator, context):
        bad: list[Exception] = []

        async def messages():
            async for raw in raw_iterator:
                try:
                    msg = req_cls.FromString(raw)
                except (DecodeError, RecursionError, ValueError) as exc:
                    bad.append(exc)
                    raise BadClientMessage(str(exc)) from exc
                yield msg

        try:
            result = await fn(messages(), context)
        except BadClientMessage:
            result = None
        if bad:
            await _bad_message(context, req_cls.DESCRIPTOR.full_name, bad[0])
            return None
        return result
    return handler


def _method_handlers(service: ServiceDescriptor, servicer: object) -> dict[str, grpc.RpcMethodHandler]:
    """A service's handlers, decoding requests themselves (see _decoding_unary); the event
    streams' responses pass through as the bytes they already are."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    from google.protobuf import symbol_database

    db = symbol_database.Default()
    for method in service.methods:
        req_cls = db.GetSymbol(method.input_type.full_name)
        resp_cls = db.GetSymbol(method.output_type.full_name)
        fn = getattr(servicer, method.name)
        ser = _passthrough if method.name in PASSTHROUGH else resp_cls.SerializeToString
        if method.client_streaming and method.server_streaming:
            raise TypeError(f"{method.full_name}: bidirectional streams are not served")
        if method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                _decoding_client_stream(fn, req_cls), response_serializer=ser)
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _decoding_stream(fn, req_cls), response_serializer=ser)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _decoding_unary(fn, req_cls), response_serializer=ser)
    return handlers


@dataclass
class Engine:
    server: grpc.aio.Server
    port: int
    settings: EngineSettings
    store: LocalStore
    catalog: Catalog
    jobs: JobManager
    health: health_aio.HealthServicer
    servicer: BacktestServicer
    optimizations: OptimizationManager
    optimization_servicer: OptimizationServicer
    dataset_servicer: DatasetServicer
    strategy_servicer: StrategyServicer
    analytics_servicer: AnalyticsServicer
    _cleanup_task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.server.start()
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        for name in (OPTIMIZATION_SERVICE, DATASET_SERVICE, STRATEGY_SERVICE, ANALYTICS_SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._cleanup_task = asyncio.create_task(self._cleanup_loop())

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cleanup_interval_seconds)
            try:
                removed = await asyncio.to_thread(self.store.cleanup)
                for bid in removed:
                    self.jobs.forget(bid)
                if removed:
                    log.info("TTL cleanup removed %d backtests", len(removed))
                removed = await asyncio.to_thread(self.optimizations.store.cleanup)
                for oid in removed:
                    self.optimizations.forget(oid)
                if removed:
                    log.info("TTL cleanup removed %d optimizations", len(removed))
            except Exception:  # noqa: BLE001 - cleanup must never stop the server
                log.exception("TTL cleanup failed")

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, refuse new calls, cancel runs, give streams `grace` seconds."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
        await asyncio.gather(asyncio.to_thread(self.jobs.shutdown, True),
                             asyncio.to_thread(self.optimizations.shutdown, True))
        await self.server.stop(grace)
        self.store.close()
        self.optimizations.store.close()
        self.strategy_servicer.close()


async def create_server(settings: EngineSettings | None = None, address: str | None = None,
                        optimization: OptimizationSettings | None = None) -> Engine:
    """Build the engine and bind it (address "127.0.0.1:0" picks a free port). Not started."""
    settings = settings or EngineSettings.from_env()
    optimization = optimization or OptimizationSettings.from_env()
    if settings.switch_interval_ms:
        # Backtests run on threads of this process: a thread waiting for the GIL gets it after
        # at most one switch interval. At Python's 5 ms, a GetBacktest that needs the GIL a
        # few times while two runs compute took 40-55 ms at p99; at 1 ms, ~30-37 ms.
        sys.setswitchinterval(settings.switch_interval_ms / 1000.0)
    auth = from_settings(settings)
    host = (address or settings.grpc_addr).rsplit(":", 1)[0]
    if not auth.configured and not is_loopback(host):
        raise SystemExit(f"refusing to serve {host}: no users or JWT issuer are configured, so anyone who can reach "
                         "this address would act as the local user. Add a user ('hindsight users add NAME') or set "
                         "HINDSIGHT_JWT_ISSUER and HINDSIGHT_JWT_KEYS, or bind to 127.0.0.1.")
    loop = asyncio.get_running_loop()
    hub = StreamHub(loop)
    store = LocalStore(settings.store_root, ttl_seconds=settings.ttl_seconds, fsync=settings.fsync)
    catalog = Catalog(settings.data_dir)
    jobs = JobManager(store, catalog, settings, hub.notify)
    closed = await asyncio.to_thread(jobs.recover)
    if closed:
        log.warning("closed %d backtests left unfinished by a previous engine", len(closed))
    removed = await asyncio.to_thread(store.cleanup)
    if removed:
        log.info("TTL cleanup removed %d backtests", len(removed))
    opt_store = OptimizationStore(settings.store_root, ttl_seconds=settings.ttl_seconds, fsync=settings.fsync)
    optimizations = OptimizationManager(opt_store, catalog, settings, optimization, hub.notify)
    closed = await asyncio.to_thread(optimizations.recover)
    if closed:
        log.info("closed %d optimizations left unfinished by a previous engine (ended or cancelled)", len(closed))
    removed = await asyncio.to_thread(opt_store.cleanup)
    if removed:
        log.info("TTL cleanup removed %d optimizations", len(removed))

    server = grpc.aio.server(options=KEEPALIVE_OPTIONS)
    strategies = StrategyStore(settings.store_root)
    servicer = BacktestServicer(store, catalog, jobs, hub, settings, auth, strategies)
    opt_servicer = OptimizationServicer(opt_store, catalog, optimizations, hub, settings, auth, servicer.quotas.rate,
                                        strategies)
    dataset_servicer = DatasetServicer(servicer)
    strategy_servicer = StrategyServicer(servicer)
    analytics_servicer = AnalyticsServicer(servicer)
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE_NAME, _method_handlers(
            pb.DESCRIPTOR.services_by_name["BacktestService"], servicer)),
        grpc.method_handlers_generic_handler(OPTIMIZATION_SERVICE, _method_handlers(
            opb.DESCRIPTOR.services_by_name["OptimizationService"], opt_servicer)),
        grpc.method_handlers_generic_handler(DATASET_SERVICE, _method_handlers(
            dpb.DESCRIPTOR.services_by_name["DatasetService"], dataset_servicer)),
        grpc.method_handlers_generic_handler(STRATEGY_SERVICE, _method_handlers(
            spb.DESCRIPTOR.services_by_name["StrategyService"], strategy_servicer)),
        grpc.method_handlers_generic_handler(ANALYTICS_SERVICE, _method_handlers(
            apb.DESCRIPTOR.services_by_name["AnalyticsService"], analytics_servicer)),
    ))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, OPTIMIZATION_SERVICE, DATASET_SERVICE, STRATEGY_SERVICE, ANALYTICS_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address or settings.grpc_addr)
    if port == 0:
        raise SystemExit(f"cannot bind the engine to {address or settings.grpc_addr}")
    return Engine(server, port, settings, store, catalog, jobs, health, servicer, optimizations, opt_servicer,
                  dataset_servicer, strategy_servicer, analytics_servicer)


# A one-day short straddle: what warm_up runs to compile the legs kernel and its helpers.
_WARM_LEG = {"side": "sell", "lots": 1, "expiry": {"kind": "weekly"}, "atm_offset": 0, "stop_loss": {"pct": 25}}
_WARM_STRADDLE = {
    "name": "warm-up straddle",
    "session": {"timezone": "Asia/Kolkata", "calendar": "XBOM", "square_off_time": "15:15"},
    "entries": [{"id": "s", "when": {"lhs": {"field": "time"}, "op": "==", "rhs": {"time": "09:19"}},
                 "legs": [{"id": "ce", "option_type": "CE", **_WARM_LEG}, {"id": "pe", "option_type": "PE", **_WARM_LEG}]}],
}


def warm_up(catalog: Catalog) -> float:
    """Compile the kernels and build SIM-NIFTY's cache now, so no request pays for either.

    With numba's on-disk cache cold (a fresh install) the legs kernel alone takes ~40 s to
    compile on a 2-core machine: the first option run would otherwise wait for it."""
    t0 = time.perf_counter()
    from google.protobuf import json_format

    from hindsight.v1 import strategy_pb2
    from services.engine.core import kernels
    from services.engine.core.backtest import Backtest, RunSettings, day_str
    from services.engine.core.registry import warmup as indicators_warmup
    from services.engine.core.spec import compile_strategy
    from services.engine.options.runner import source_for

    kernels.warmup()
    indicators_warmup()
    bars = catalog.load("SIM-NIFTY", None, None)
    plan = compile_strategy(json_format.ParseDict(_WARM_STRADDLE, strategy_pb2.Strategy()))
    last = date.fromisoformat(day_str(bars.day_bounds()[0][-1]))
    Backtest(plan, bars, RunSettings(start=last, end=last), options=source_for(catalog, "SIM-NIFTY")).run(
        on_day=lambda day: None)
    from services.engine.optimize.sweep import warmup as sweep_warmup

    sweep_warmup(bars)
    from services.engine.datasets.ingest import warmup as datasets_warmup

    datasets_warmup()
    return time.perf_counter() - t0


async def serve(settings: EngineSettings | None = None, ready: asyncio.Event | None = None) -> None:
    settings = settings or EngineSettings.from_env()
    engine = await create_server(settings)
    took = await asyncio.to_thread(warm_up, engine.catalog)
    await engine.start()
    log.info("engine serving on %s:%d (warm-up %.1fs)", settings.grpc_addr.rsplit(":", 1)[0], engine.port, took)
    print(f"hindsight engine: gRPC on {settings.grpc_addr.rsplit(':', 1)[0]}:{engine.port}", flush=True)
    if engine.servicer.auth.configured:
        print("hindsight engine: callers need a bearer token (API key or JWT)", flush=True)
    else:
        print("hindsight engine: no users configured: callers on this machine act as the one user 'local' "
              "without a token ('hindsight users add NAME' turns tokens on)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    if ready is not None:
        ready.set()
    await stop.wait()
    print("hindsight engine: shutting down", flush=True)
    await engine.stop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve())
    return 0


__all__ = ["Engine", "create_server", "serve", "main", "warm_up", "pb_grpc"]
