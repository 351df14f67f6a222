"""OptimizationService over a real grpc.aio channel and real sweeps of SIM-NIFTY (one month, an
SMA crossover): streams and resume, batches, lists, cancel, delete, bad requests, isolation
between users, continuation after an engine restart, the ZIP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile

import grpc
import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import optimization_pb2_grpc as opb_grpc

from services.engine.core.backtest import RunError
from services.engine.optimize.jobs import OptimizationSettings
from tests.engine.conftest import dump, kinds, strategy

MONTH = ("2024-01-01", "2024-01-31")
TERMINAL = {"optimization_completed", "optimization_failed", "optimization_cancelled"}


def config(fast=(5, 15, 5), slow=(20, 40, 10), days=MONTH, **kw) -> opb.OptimizationConfig:
    """SMA cross: fast 5..15 step 5 x slow 20..40 step 10 (9 trials), fast < slow, one month."""
    c = opb.OptimizationConfig(strategy=strategy("sma_cross.json"), method=kw.pop("method", "grid"),
                               symbol=kw.pop("symbol", "SIM-NIFTY"), start_date=days[0], end_date=days[1], **kw)
    c.space.parameters.add(name="fast", path="indicators[0].period", int_range=opb.IntRange(low=fast[0], high=fast[1],
                                                                                           step=fast[2]))
    c.space.parameters.add(name="slow", path="indicators[1].period", int_range=opb.IntRange(low=slow[0], high=slow[1],
                                                                                           step=slow[2]))
    c.space.constraints.add(lhs="fast", op="<", rhs="slow")
    return c


# Thousands of trials: still running when a test acts on it (cancel, delete, queue), never run
# to the end; MEDIUM's hundreds are, after an engine restart.
LONG = {"fast": (2, 61, 1), "slow": (20, 218, 2)}
MEDIUM = {"fast": (2, 31, 1), "slow": (20, 58, 2)}


def start(c: opb.OptimizationConfig | None = None, **kw) -> opb.StartOptimizationRequest:
    return opb.StartOptimizationRequest(config=c if c is not None else config(),
                                        strategy_id=kw.pop("strategy_id", "sma"), **kw)


@pytest.fixture
async def stub(engine):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        yield opb_grpc.OptimizationServiceStub(channel)


async def collect(stub, oid: str, after: int = 0, limit: int | None = None, md=()) -> list[opb.OptimizationEvent]:
    out = []
    call = stub.StreamOptimization(opb.StreamOptimizationRequest(optimization_id=oid, after_event_id=after),
                                   metadata=md)
    async for ev in call:
        out.append(ev)
        if limit is not None and len(out) >= limit:
            call.cancel()
            break
    return out


async def collect_batches(stub, oid: str, after: int = 0, max_events: int = 0) -> list[list[opb.OptimizationEvent]]:
    request = opb.StreamOptimizationBatchesRequest(optimization_id=oid, after_event_id=after, max_events=max_events)
    return [list(batch.events) async for batch in stub.StreamOptimizationBatches(request)]


async def until_trials(stub, oid: str, n: int, md=()) -> list[opb.OptimizationEvent]:
    """The stream up to the n-th trial_completed (the optimization still running)."""
    out = []
    call = stub.StreamOptimization(opb.StreamOptimizationRequest(optimization_id=oid), metadata=md)
    async for ev in call:
        out.append(ev)
        assert ev.WhichOneof("event") not in TERMINAL, "it ended before the test could act on it"
        if kinds(out).count("trial_completed") >= n:
            call.cancel()
            break
    return out


async def failure(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


def violations(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None, "expected google.rpc.Status details"
    out = []
    for d in status.details:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [v.field for v in br.field_violations]
    return out


def trial_numbers(events) -> list[tuple[int, int]]:
    return [(e.trial_completed.trial.window, e.trial_completed.trial.number) for e in events
            if e.HasField("trial_completed")]


# --- a whole run --------------------------------------------------------------------------------

async def test_a_sweep_streams_to_completion_and_get_shows_its_result(stub):
    started = await stub.StartOptimization(start())
    oid = started.optimization_id
    assert oid.startswith("opt_") and started.total_trials == 9
    assert started.stream_url == f"/api/v1/optimizations/{oid}/stream"
    events = await collect(stub, oid)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert all(e.optimization_id == oid and e.emitted_at.seconds for e in events)
    k = kinds(events)
    assert k[0] == "optimization_started" and k[-1] == "optimization_completed" and k.count("optimization_started") == 1
    assert sorted(n for _, n in trial_numbers(events)) == list(range(1, 10))
    assert events[0].optimization_started.parameters == ["fast", "slow"]
    assert events[0].optimization_started.total_trials == 9
    done = events[-1].optimization_completed
    assert done.progress.completed_trials == 9

    got = await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=oid))
    assert got.status == opb.OPTIMIZATION_STATUS_COMPLETED and got.owner == "local" and got.strategy_id == "sma"
    assert got.last_event_id == len(events) and got.progress.completed_trials == 9
    assert got.finished_at.seconds >= got.started_at.seconds >= got.created_at.seconds > 0
    assert got.expires_at.seconds > got.finished_at.seconds
    assert got.result == done.result and list(got.top) == list(done.result.top) and got.top
    best = got.result.top[0]
    periods = [i.period for i in got.result.best_strategy.indicators]
    assert periods == [int(best.parameters["fast"]), int(best.parameters["slow"])]
    assert got.result.overfitting.trials == 9 and got.result.overfitting.reading
    assert got.config.space == config().space


async def test_resume_from_any_event_and_batches(stub):
    oid = (await stub.StartOptimization(start())).optimization_id
    # Batches while it runs, the plain stream at once.
    live, full = await asyncio.gather(collect_batches(stub, oid), collect(stub, oid))
    assert all(live) and dump([e for b in live for e in b]) == dump(full)
    for cut in (1, len(full) // 2, len(full) - 1):
        assert dump(await collect(stub, oid, after=cut)) == dump(full[cut:])
    assert await collect(stub, oid, after=len(full)) == []
    small = await collect_batches(stub, oid, after=2, max_events=3)
    assert {len(b) for b in small[:-1]} == {3} and dump([e for b in small for e in b]) == dump(full[2:])
    err = await failure(collect(stub, oid, after=len(full) + 1))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE and violations(err) == ["after_event_id"]
    for read in (collect, collect_batches):
        assert (await failure(read(stub, "opt_nope"))).code() == grpc.StatusCode.NOT_FOUND


async def test_lists_page_by_owner_and_idempotent_starts(stub):
    first = await stub.StartOptimization(start(request_id="r-1"))
    again = await stub.StartOptimization(start(request_id="r-1"))
    assert again.optimization_id == first.optimization_id
    ids = [first.optimization_id]
    for k in range(2):
        ids.append((await stub.StartOptimization(start(strategy_id=f"other-{k}"))).optimization_id)
    for oid in ids:
        await collect(stub, oid)
    page = await stub.ListOptimizations(opb.ListOptimizationsRequest(page_size=2))
    assert [o.optimization_id for o in page.optimizations] == ids[::-1][:2] and page.next_page_token
    assert not any(o.HasField("result") or o.top for o in page.optimizations)
    rest = await stub.ListOptimizations(opb.ListOptimizationsRequest(page_size=2, page_token=page.next_page_token))
    assert [o.optimization_id for o in rest.optimizations] == ids[:1] and not rest.next_page_token
    assert rest.optimizations[0].status == opb.OPTIMIZATION_STATUS_COMPLETED
    assert rest.optimizations[0].progress.completed_trials == 9
    only = await stub.ListOptimizations(opb.ListOptimizationsRequest(strategy_id="sma"))
    assert [o.optimization_id for o in only.optimizations] == ids[:1]
    running = await stub.ListOptimizations(opb.ListOptimizationsRequest(status=opb.OPTIMIZATION_STATUS_RUNNING))
    assert not running.optimizations
    err = await failure(stub.ListOptimizations(opb.ListOptimizationsRequest(
        strategy_id="sma", page_token=page.next_page_token)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err) == ["page_token"]


async def test_cancel_mid_run_keeps_what_was_recorded(stub, engine):
    oid = (await stub.StartOptimization(start(config(**LONG)))).optimization_id
    await until_trials(stub, oid, 3)
    cancelled = await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=oid))
    assert cancelled.status == opb.OPTIMIZATION_STATUS_CANCELLED
    events = await collect(stub, oid)
    assert kinds(events)[-1] == "optimization_cancelled" and events[-1].event_id == cancelled.last_event_id
    end = events[-1].optimization_cancelled
    assert end.reason == "cancelled by request"
    assert 3 <= end.progress.completed_trials == len(trial_numbers(events)) < end.progress.total_trials
    assert cancelled.top and not cancelled.HasField("result")
    again = await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=oid))
    assert again.status == opb.OPTIMIZATION_STATUS_CANCELLED and again.last_event_id == cancelled.last_event_id
    # Queued behind a running one (one runs at a time): cancelled at once, never started.
    running = (await stub.StartOptimization(start(config(**LONG)))).optimization_id
    queued = (await stub.StartOptimization(start())).optimization_id
    gone = await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=queued))
    assert gone.status == opb.OPTIMIZATION_STATUS_CANCELLED
    assert kinds(await collect(stub, queued)) == ["optimization_cancelled"]
    await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=running))


async def test_delete_removes_it_running_or_ended(stub, engine, settings):
    done = (await stub.StartOptimization(start())).optimization_id
    await collect(stub, done)
    assert (await stub.DeleteOptimization(opb.DeleteOptimizationRequest(optimization_id=done))).optimization_id == done
    for call in (stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=done)),
                 stub.DeleteOptimization(opb.DeleteOptimizationRequest(optimization_id=done)),
                 collect(stub, done)):
        assert (await failure(call)).code() == grpc.StatusCode.NOT_FOUND
    running = (await stub.StartOptimization(start(config(**LONG)))).optimization_id
    await until_trials(stub, running, 1)
    reader = asyncio.create_task(collect(stub, running, after=1))
    await stub.DeleteOptimization(opb.DeleteOptimizationRequest(optimization_id=running))
    try:
        events = await reader
        assert kinds(events)[-1] == "optimization_cancelled"  # it ended before the delete
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND
    folders = list((settings.store_root / "users" / "local" / "optimizations").iterdir())
    assert folders == []
    assert not (await stub.ListOptimizations(opb.ListOptimizationsRequest())).optimizations


@pytest.mark.parametrize("error,code", [(RunError("the bars ran out"), "RUN_ERROR"),
                                        (RuntimeError("a bug"), "INTERNAL")])
async def test_a_run_that_raises_ends_failed(stub, monkeypatch, error, code):
    from services.engine.optimize.runner import Optimization

    def run(self, emit, **kw):
        raise error

    monkeypatch.setattr(Optimization, "run", run)
    oid = (await stub.StartOptimization(start())).optimization_id
    events = await collect(stub, oid)
    assert kinds(events) == ["optimization_started", "optimization_failed"]
    failed = events[-1].optimization_failed
    assert failed.error_code == code
    if code == "RUN_ERROR":
        assert failed.error_message == "the bars ran out"
    else:  # the details are in the engine's log, not sent to the caller
        assert "a bug" not in failed.error_message and "internal error" in failed.error_message
    got = await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=oid))
    assert got.status == opb.OPTIMIZATION_STATUS_FAILED and got.error_code == code
    assert got.error_message == failed.error_message and not got.HasField("result")


def _unknown_path(c):
    c.space.parameters[0].path = "indicators[5].period"


def _reversed(c):
    c.space.parameters[1].int_range.low, c.space.parameters[1].int_range.high = 40, 20


def _grid_cap(c):
    c.grid_cap = 4


def _unknown_constraint(c):
    c.space.constraints[0].lhs = "medium"


def _objective(c):
    c.objectives.add(metric="sharpness")


def _method(c):
    c.method = "annealing"


def _symbol(c):
    c.symbol = "NOPE"


def _no_days(c):
    c.start_date, c.end_date = "1990-01-01", "1990-01-31"


def _period(c):
    c.strategy.indicators[0].period = 0


@pytest.mark.parametrize("change,field", [
    (_unknown_path, "config.space.parameters[0].path"),
    (_reversed, "config.space.parameters[1].int_range.high"),
    (_grid_cap, "config.space.parameters"),
    (_unknown_constraint, "config.space.constraints[0].lhs"),
    (_objective, "config.objectives[0].metric"),
    (_method, "config.method"),
    (_symbol, "config.symbol"),
    (_no_days, "config.start_date"),
    (_period, "config.strategy.indicators[0].period"),
])
async def test_bad_requests_name_the_field(stub, change, field):
    c = config()
    change(c)
    err = await failure(stub.StartOptimization(start(c)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(err), (violations(err), err.details())


async def test_missing_parts_name_the_field(stub):
    for request, fields in [
        (opb.StartOptimizationRequest(), ["config"]),
        (opb.StartOptimizationRequest(config=opb.OptimizationConfig(method="grid")),
         ["config.strategy", "config.symbol"]),
        (start(strategy_id="x" * 201), ["strategy_id"]),
    ]:
        err = await failure(stub.StartOptimization(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err) == fields
    assert not (await stub.ListOptimizations(opb.ListOptimizationsRequest())).optimizations


async def test_health_and_reflection_name_the_service(engine):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="hindsight.v1.OptimizationService"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in call for s in r.list_services_response.service]
        assert "hindsight.v1.OptimizationService" in names


async def test_ttl_cleanup_removes_ended_optimizations_only(stub, engine, settings):
    import time

    ended = (await stub.StartOptimization(start())).optimization_id
    await collect(stub, ended)
    running = (await stub.StartOptimization(start(config(**LONG)))).optimization_id
    await until_trials(stub, running, 1)
    folders = settings.store_root / "users" / "local" / "optimizations"
    (folders / "opt_orphan").mkdir()
    removed = await asyncio.to_thread(engine.optimizations.store.cleanup, time.time() + settings.ttl_seconds + 60)
    assert removed == [ended]
    assert sorted(p.name for p in folders.iterdir()) == [running]
    err = await failure(stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=ended)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=running))


# --- users ------------------------------------------------------------------------------------

async def test_another_users_optimization_is_exactly_a_missing_one(tokens, stub):
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    oid = (await stub.StartOptimization(start(), metadata=alice)).optimization_id
    events = await collect(stub, oid, md=alice)
    missing = oid[:-8] + ("0" * 8 if not oid.endswith("0" * 8) else "1" * 8)

    async def download(ident, md):
        return [b async for b in stub.DownloadOptimization(opb.DownloadOptimizationRequest(optimization_id=ident),
                                                           metadata=md)]

    calls = [
        lambda i: stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=i), metadata=bob),
        lambda i: stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=i), metadata=bob),
        lambda i: stub.DeleteOptimization(opb.DeleteOptimizationRequest(optimization_id=i), metadata=bob),
        lambda i: collect(stub, i, md=bob),
        lambda i: download(i, bob),
    ]
    for call in calls:
        theirs, absent = await failure(call(oid)), await failure(call(missing))
        assert theirs.code() == absent.code() == grpc.StatusCode.NOT_FOUND
        assert theirs.details().replace(oid, "<id>") == absent.details().replace(missing, "<id>")
    assert not (await stub.ListOptimizations(opb.ListOptimizationsRequest(), metadata=bob)).optimizations
    err = await failure(stub.ListOptimizations(opb.ListOptimizationsRequest(all_users=True), metadata=bob))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    everyone = await stub.ListOptimizations(opb.ListOptimizationsRequest(all_users=True), metadata=root)
    assert [(o.optimization_id, o.owner) for o in everyone.optimizations] == [(oid, "alice")]
    # Untouched: its owner still reads it whole; an admin reads it too.
    mine = await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=oid), metadata=alice)
    assert mine.status == opb.OPTIMIZATION_STATUS_COMPLETED and mine.last_event_id == len(events)
    assert (await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=oid), metadata=root)).owner == "alice"
    # request_id is per user: bob's "r" is not alice's.
    a = await stub.StartOptimization(start(request_id="r"), metadata=alice)
    b = await stub.StartOptimization(start(request_id="r"), metadata=bob)
    assert a.optimization_id != b.optimization_id
    err = await failure(stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=oid)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_queued_optimizations_per_user_are_capped(tokens, settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "127.0.0.1:0", OptimizationSettings(max_queued_per_user=1))
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            alice = tokens["alice"]
            first = await stub.StartOptimization(start(config(**LONG)), metadata=alice)
            await until_trials(stub, first.optimization_id, 1, md=alice)  # running: no longer queued
            await stub.StartOptimization(start(), metadata=alice)
            err = await failure(stub.StartOptimization(start(), metadata=alice))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            infos = [d for d in rpc_status.from_call(err).details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
            info = error_details_pb2.ErrorInfo()
            infos[0].Unpack(info)
            assert info.reason == "QUEUED_OPTIMIZATIONS"
            await stub.StartOptimization(start(), metadata=tokens["bob"])  # another user's queue
            await stub.CancelOptimization(opb.CancelOptimizationRequest(optimization_id=first.optimization_id),
                                          metadata=alice)
    finally:
        await eng.stop(0.2)


# --- restarts ---------------------------------------------------------------------------------

async def test_an_engine_restart_continues_the_sweep(settings):
    from services.engine.server import create_server
    from storage.optimizations import OptimizationStore

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            oid = (await stub.StartOptimization(start(config(**MEDIUM)))).optimization_id
            before = await until_trials(stub, oid, 3)
    finally:
        await eng.stop(0.2)  # suspends it between chunks of trials
    store = OptimizationStore(settings.store_root, settings.ttl_seconds, fsync=False)
    suspended = store.get(oid)
    store.close()
    assert suspended.status == "running" and 3 <= suspended.completed_trials < suspended.total_trials

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            rest = await collect(stub, oid, after=before[-1].event_id)
            full = await collect(stub, oid)
    finally:
        await eng.stop(0.2)
    assert dump(before + rest) == dump(full)
    assert [e.event_id for e in full] == list(range(1, len(full) + 1))
    k = kinds(full)
    assert k.count("optimization_started") == 1 and k[-1] == "optimization_completed"
    numbers = trial_numbers(full)
    total = full[0].optimization_started.total_trials
    assert len(numbers) == len(set(numbers)) == total > len(trial_numbers(before))
    assert full[-1].optimization_completed.progress.completed_trials == total


async def test_a_restart_closes_what_ended_or_was_cancelled_meanwhile(settings):
    """An engine that died after a terminal event reached the log but not the index, and one
    that died after a cancel was recorded but before the run stopped."""
    from services.engine.server import create_server
    from storage.optimizations import OptimizationStore

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            ended = (await stub.StartOptimization(start())).optimization_id
            ended_events = await collect(stub, ended)
            cut = (await stub.StartOptimization(start(config(**LONG)))).optimization_id
            await until_trials(stub, cut, 2)
    finally:
        await eng.stop(0.2)
    store = OptimizationStore(settings.store_root, settings.ttl_seconds, fsync=False)
    store.update(ended, status="running", finished_at=None, last_event_id=3)
    store.write_cancel_request(cut, "cancelled just before the engine stopped")
    store.close()

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            stub = opb_grpc.OptimizationServiceStub(channel)
            got = await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=ended))
            assert got.status == opb.OPTIMIZATION_STATUS_COMPLETED and got.last_event_id == len(ended_events)
            assert got.result == ended_events[-1].optimization_completed.result
            assert dump(await collect(stub, ended)) == dump(ended_events)
            got = await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=cut))
            assert got.status == opb.OPTIMIZATION_STATUS_CANCELLED
            events = await collect(stub, cut)
    finally:
        await eng.stop(0.2)
    assert kinds(events).count("optimization_started") == 1
    assert events[-1].optimization_cancelled.reason == "cancelled just before the engine stopped"
    assert events[-1].optimization_cancelled.progress.completed_trials == len(trial_numbers(events))


# --- the ZIP ----------------------------------------------------------------------------------

async def download(stub, oid: str) -> zipfile.ZipFile:
    bodies = [b async for b in stub.DownloadOptimization(opb.DownloadOptimizationRequest(optimization_id=oid))]
    assert bodies and all(b.content_type == "application/zip" for b in bodies)
    return zipfile.ZipFile(io.BytesIO(b"".join(b.data for b in bodies)))


async def test_the_zip_holds_every_trial_and_the_top_strategies(stub):
    oid = (await stub.StartOptimization(start(config(top_k=3)))).optimization_id
    running = await failure(download(stub, oid))
    assert running.code() == grpc.StatusCode.FAILED_PRECONDITION
    events = await collect(stub, oid)
    result = events[-1].optimization_completed.result
    zf = await download(stub, oid)
    assert zf.testzip() is None
    assert zf.namelist() == ["trials.csv", "trials.parquet", "top_strategies.json", "summary.json"]
    rows = list(csv.DictReader(io.StringIO(zf.read("trials.csv").decode())))
    header = list(rows[0])
    assert header[:6] == ["number", "window", "feasible", "param_fast", "param_slow", "objective_sharpe"]
    assert {"sharpe", "total_trades", "max_drawdown_pct", "final_equity"} <= set(header)
    assert len(rows) == 9 and {(r["param_fast"], r["param_slow"]) for r in rows} == {
        (str(f), str(s)) for f in (5, 10, 15) for s in (20, 30, 40)}
    table = pq.read_table(io.BytesIO(zf.read("trials.parquet")))
    assert table.num_rows == 9 and table.column_names == header
    assert str(table.schema.field("param_fast").type) == "int64"
    assert sorted(table.column("number").to_pylist()) == list(range(1, 10))
    top = json.loads(zf.read("top_strategies.json"))["strategies"]
    assert len(top) == 3 == len(result.top)
    for entry, trial in zip(top, result.top):
        assert entry["parameters"] == json_format.MessageToDict(trial.parameters)
        periods = [i["period"] for i in entry["strategy"]["indicators"]]
        assert periods == [int(trial.parameters["fast"]), int(trial.parameters["slow"])]
    assert top[0]["strategy"] == json_format.MessageToDict(result.best_strategy, preserving_proto_field_name=True,
                                                           always_print_fields_with_no_presence=True)
    summary = json.loads(zf.read("summary.json"))
    assert summary["status"] == "completed" and summary["overfitting"]["trials"] == "9"
    assert len(summary["top"]) == 3 and summary["progress"]["completed_trials"] == "9"


async def test_a_walk_forward_zip_has_its_report(stub):
    c = config(days=("2024-01-01", "2024-02-29"), walk_forward=opb.WalkForward(train_days=15, test_days=10))
    started = await stub.StartOptimization(start(c))
    events = await collect(stub, started.optimization_id)
    windows = [e.window_completed.window for e in events if e.HasField("window_completed")]
    assert kinds(events)[-1] == "optimization_completed"
    assert len(windows) == events[0].optimization_started.total_windows > 1
    zf = await download(stub, started.optimization_id)
    assert "walk_forward.json" in zf.namelist()
    report = json.loads(zf.read("walk_forward.json"))
    assert [w["index"] for w in report["windows"]] == [w.index for w in windows]
    rows = list(csv.DictReader(io.StringIO(zf.read("trials.csv").decode())))
    assert len(rows) == started.total_trials and {r["window"] for r in rows} == {str(w.index) for w in windows}
    top = json.loads(zf.read("top_strategies.json"))["strategies"]
    assert [t["window"] for t in top] == [w.index for w in windows]
