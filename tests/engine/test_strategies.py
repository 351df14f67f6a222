"""StrategyService over a real grpc.aio server (port 0): saved strategies in versions, their
validation, ids, conflicts, races, isolation between users on every RPC, pages, limits; and runs
by reference (backtests and optimizations), pinned to a version, surviving an engine restart."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import optimization_pb2_grpc as opb_grpc
from hindsight.v1 import strategies_pb2 as spb
from hindsight.v1 import strategies_pb2_grpc as spb_grpc

from services.engine.core.spec import compile_strategy
from tests.engine.conftest import collect, kinds, start_request, strategy

DAYS = ("2024-01-01", "2024-01-12")


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.strategies = spb_grpc.StrategyServiceStub(channel)
        self.backtests = pb_grpc.BacktestServiceStub(channel)
        self.optimizations = opb_grpc.OptimizationServiceStub(channel)


@contextlib.asynccontextmanager
async def serving(settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            yield eng, Stubs(channel)
    finally:
        await eng.stop(0.2)


@pytest.fixture
async def stubs(engine):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        yield Stubs(channel)


async def failure(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, "expected google.rpc.Status details"
    out = []
    for d in status.details:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [(v.field, v.description) for v in br.field_violations]
    return out


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    for d in rpc_status.from_call(err).details:
        info = error_details_pb2.ErrorInfo()
        if d.Unpack(info):
            return info
    return None


def sma(fast: int = 10, slow: int = 30, name: str | None = None):
    s = strategy("sma_cross.json")
    s.indicators[0].period, s.indicators[1].period = fast, slow
    if name is not None:
        s.name = name
    return s


def bad_strategy():
    s = strategy("sma_cross.json")
    s.indicators[0].period = 0
    s.entries[0].when.Clear()
    s.session.timezone = "Mars/Olympus"
    return s


def body(event: pb.BacktestEvent) -> bytes:
    """An event without its id, backtest id, time and the config's strategy_version."""
    e = pb.BacktestEvent()
    e.CopyFrom(event)
    for name in ("event_id", "backtest_id", "emitted_at"):
        e.ClearField(name)
    if e.HasField("backtest_started"):
        e.backtest_started.config.ClearField("strategy_version")
    if e.HasField("backtest_completed"):
        e.backtest_completed.backtest_id = ""
    return e.SerializeToString(deterministic=True)


# --- the life of a saved strategy ----------------------------------------------------------------

async def test_create_get_list_versions_update_delete(stubs):
    s = stubs.strategies
    rsi = strategy("rsi_reversion.json")
    created = await s.CreateStrategy(spb.CreateStrategyRequest(strategy=rsi, description="the example"))
    sid = created.strategy_id
    assert rsi.name == "Intraday RSI reversion" and sid == "intraday-rsi-reversion"  # made from the name
    assert (created.version, created.latest_version, created.owner) == (1, 1, "local")
    assert created.strategy == rsi and created.description == "the example"
    assert created.warmup_bars == compile_strategy(rsi).warmup_bars > 0
    assert created.created_at == created.first_created_at and created.created_at.seconds > 0

    got = await s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid))
    assert got == created

    changed = strategy("rsi_reversion.json")
    changed.indicators[0].period = 21
    v2 = await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id=sid, strategy=changed, expected_version=1))
    assert (v2.version, v2.latest_version, v2.description) == (2, 2, "the example")  # description kept
    assert v2.first_created_at == created.first_created_at and v2.strategy == changed
    v3 = await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id=sid, strategy=changed, description="reworded"))
    assert v3.version == 3 and v3.description == "reworded"

    # Versions are immutable: version 1 is still the example.
    one = await s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid, version=1))
    assert one.strategy == rsi and one.version == 1 and one.latest_version == 3 and one.description == "the example"
    assert (await s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid))).version == 3
    err = await failure(s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid, version=4)))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "no version 4" in err.details() and "1 to 3" in err.details()
    err = await failure(s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid, version=-1)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err)[0][0] == "version"

    versions = (await s.ListStrategyVersions(spb.ListStrategyVersionsRequest(strategy_id=sid))).versions
    assert [v.version for v in versions] == [3, 2, 1]
    assert [v.strategy for v in versions] == [changed, changed, rsi]
    assert all(v.latest_version == 3 and v.strategy_id == sid for v in versions)

    listed = (await s.ListStrategies(spb.ListStrategiesRequest())).strategies
    assert [(x.strategy_id, x.version) for x in listed] == [(sid, 3)]

    gone = await s.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id=sid))
    assert gone.strategy_id == sid
    for call in (s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid)),
                 s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid, version=1)),
                 s.ListStrategyVersions(spb.ListStrategyVersionsRequest(strategy_id=sid)),
                 s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id=sid, strategy=rsi)),
                 s.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id=sid))):
        err = await failure(call)
        assert err.code() == grpc.StatusCode.NOT_FOUND and err.details() == f"strategy '{sid}' not found"
    assert not (await s.ListStrategies(spb.ListStrategiesRequest())).strategies


async def test_an_update_identical_to_the_latest_makes_no_version(stubs):
    s = stubs.strategies
    first = await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma(), description="d"))
    same = await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma()))
    assert same.version == 1 and same.created_at == first.created_at
    same = await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(), description="d",
                                                            expected_version=1))
    assert same.version == 1
    changed = await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(), description="e"))
    assert changed.version == 2
    assert len((await s.ListStrategyVersions(spb.ListStrategyVersionsRequest(strategy_id="sma"))).versions) == 2


# --- validation and ids -------------------------------------------------------------------------

async def test_problems_are_validate_strategys_under_strategy(stubs):
    bad = bad_strategy()
    checked = await stubs.backtests.ValidateStrategy(pb.ValidateStrategyRequest(strategy=bad))
    assert not checked.valid and len(checked.problems) >= 3
    expected = [(f"strategy.{p.field}" if p.field else "strategy", p.description) for p in checked.problems]

    err = await failure(stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy=bad)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err) == expected

    await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="ok", strategy=sma()))
    err = await failure(stubs.strategies.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="ok", strategy=bad)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err) == expected
    assert (await stubs.strategies.GetStrategy(spb.GetStrategyRequest(strategy_id="ok"))).version == 1

    # Request problems come with the strategy's.
    err = await failure(stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(
        strategy_id="Not An Id", strategy=bad, description="x" * 5000)))
    assert [f for f, _ in violations(err)] == [f for f, _ in expected] + ["description", "strategy_id"]
    err = await failure(stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="ok2")))
    assert violations(err)[0][0] == "strategy"
    # The limits ValidateStrategy applies (size, counts) apply to saving.
    many = sma()
    for n in range(60):
        many.indicators.add().CopyFrom(many.indicators[0])
        many.indicators[-1].id = f"extra{n}"
    checked = await stubs.backtests.ValidateStrategy(pb.ValidateStrategyRequest(strategy=many))
    err = await failure(stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy=many)))
    assert violations(err) == [(f"strategy.{p.field}" if p.field else "strategy", p.description)
                               for p in checked.problems] and not checked.valid
    for request in (spb.UpdateStrategyRequest(strategy=sma()),
                    spb.UpdateStrategyRequest(strategy_id="ok", strategy=sma(), expected_version=-2)):
        err = await failure(stubs.strategies.UpdateStrategy(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_ids_default_to_the_name_and_an_explicit_one_must_be_free(stubs):
    s = stubs.strategies
    named = sma(name="SMA Cross 20/50")
    ids = [(await s.CreateStrategy(spb.CreateStrategyRequest(strategy=named))).strategy_id for _ in range(3)]
    assert ids == ["sma-cross-20-50", "sma-cross-20-50-2", "sma-cross-20-50-3"]
    err = await failure(s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma-cross-20-50-2", strategy=sma())))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "sma-cross-20-50-2" in err.details()
    # Still version 1 of the strategy that had the id.
    assert (await s.GetStrategy(spb.GetStrategyRequest(strategy_id="sma-cross-20-50-2"))).strategy == named
    made = await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="my_sma-2", strategy=sma()))
    assert made.strategy_id == "my_sma-2"
    for bad in ("UPPER", "-x", "a" * 65, "a b", "a/b"):
        err = await failure(s.CreateStrategy(spb.CreateStrategyRequest(strategy_id=bad, strategy=sma())))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err)[0][0] == "strategy_id"


# --- concurrent editors -------------------------------------------------------------------------

async def test_a_stale_expected_version_is_aborted(stubs):
    s = stubs.strategies
    await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma()))
    await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(12), expected_version=1))
    err = await failure(s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(14),
                                                                   expected_version=1)))
    assert err.code() == grpc.StatusCode.ABORTED and "version 2" in err.details()
    info = error_info(err)
    assert info.reason == "VERSION_CONFLICT" and info.metadata["latest_version"] == "2"
    latest = await s.GetStrategy(spb.GetStrategyRequest(strategy_id="sma"))
    assert latest.version == 2 and latest.strategy == sma(12)


async def test_concurrent_updates_get_distinct_versions(stubs):
    s = stubs.strategies
    await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma()))
    saved = await asyncio.gather(*[s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(n)))
                                   for n in range(2, 22)])
    assert sorted(v.version for v in saved) == list(range(2, 22))
    by_version = {v.version: v.strategy.indicators[0].period for v in saved}
    for v in (await s.ListStrategyVersions(spb.ListStrategyVersionsRequest(strategy_id="sma"))).versions[:-1]:
        assert v.strategy.indicators[0].period == by_version[v.version]
    # Racing with expected_version: one wins, the others are told.
    results = await asyncio.gather(*[s.UpdateStrategy(spb.UpdateStrategyRequest(
        strategy_id="sma", strategy=sma(n, 40), expected_version=21)) for n in range(2, 12)], return_exceptions=True)
    won = [r for r in results if isinstance(r, spb.SavedStrategy)]
    lost = [r for r in results if not isinstance(r, spb.SavedStrategy)]
    assert len(won) == 1 and won[0].version == 22
    assert len(lost) == 9 and all(e.code() == grpc.StatusCode.ABORTED for e in lost)


# --- users ----------------------------------------------------------------------------------------

async def test_another_users_strategy_answers_exactly_as_a_missing_one(tokens, stubs):
    alice, bob = tokens["alice"], tokens["bob"]
    s = stubs.strategies
    await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="mine", strategy=sma()), metadata=alice)

    async def outcome(call) -> tuple:
        try:
            await call
        except grpc.aio.AioRpcError as err:
            return err.code(), err.details(), violations(err) if err.code() == grpc.StatusCode.INVALID_ARGUMENT else []
        return ("ok",)

    for sid in ("mine", "nobodys"):
        assert await outcome(s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid), metadata=bob)) == (
            grpc.StatusCode.NOT_FOUND, f"strategy '{sid}' not found", [])
        assert await outcome(s.GetStrategy(spb.GetStrategyRequest(strategy_id=sid, version=1), metadata=bob)) == (
            grpc.StatusCode.NOT_FOUND, f"strategy '{sid}' not found", [])
        assert await outcome(s.ListStrategyVersions(spb.ListStrategyVersionsRequest(strategy_id=sid),
                                                    metadata=bob)) == (grpc.StatusCode.NOT_FOUND,
                                                                       f"strategy '{sid}' not found", [])
        assert await outcome(s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id=sid, strategy=sma(15)),
                                              metadata=bob)) == (grpc.StatusCode.NOT_FOUND,
                                                                 f"strategy '{sid}' not found", [])
        assert await outcome(s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id=sid, strategy=sma(15),
                                                                        expected_version=1), metadata=bob)) == (
            grpc.StatusCode.NOT_FOUND, f"strategy '{sid}' not found", [])
        assert await outcome(s.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id=sid), metadata=bob)) == (
            grpc.StatusCode.NOT_FOUND, f"strategy '{sid}' not found", [])
    # Runs by reference: the same answer for alice's id as for one nobody has (bar the id).
    refused = []
    for sid in ("mine", "nobodys"):
        req = pb.StartBacktestRequest(strategy_id=sid, symbol="SIM-NIFTY", start_date=DAYS[0], end_date=DAYS[1])
        code, _, found = await outcome(stubs.backtests.StartBacktest(req, metadata=bob))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        refused.append([(f, d.replace(sid, "ID")) for f, d in found])
        opt = opb.StartOptimizationRequest(strategy_id=sid, config=_opt_config(inline=False))
        code, _, found = await outcome(stubs.optimizations.StartOptimization(opt, metadata=bob))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        refused.append([(f, d.replace(sid, "ID")) for f, d in found])
    assert refused[0] == refused[2] and refused[1] == refused[3] and refused[0][0][0] == "strategy_id"
    assert not (await s.ListStrategies(spb.ListStrategiesRequest(), metadata=bob)).strategies

    # Ids are per user: bob may have his own "mine"; each sees only theirs.
    bobs = await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="mine", strategy=sma(7)), metadata=bob)
    assert bobs.owner == "bob" and bobs.version == 1
    alices = await s.GetStrategy(spb.GetStrategyRequest(strategy_id="mine"), metadata=alice)
    assert alices.owner == "alice" and alices.strategy == sma()
    assert (await s.GetStrategy(spb.GetStrategyRequest(strategy_id="mine"), metadata=bob)).strategy == sma(7)
    await s.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id="mine"), metadata=bob)
    assert (await s.GetStrategy(spb.GetStrategyRequest(strategy_id="mine"), metadata=alice)).version == 1
    # An admin has no way into another user's strategies either: ids are per user.
    err = await failure(s.GetStrategy(spb.GetStrategyRequest(strategy_id="mine"), metadata=tokens["root"]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await failure(s.ListStrategies(spb.ListStrategiesRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    me = await stubs.backtests.GetCaller(pb.GetCallerRequest(), metadata=alice)
    assert {q.name: (q.limit, q.used) for q in me.quotas}["saved_strategies"] == (1000, 1)


async def test_pages_are_newest_updated_first_bounded_and_bound_to_their_owner(tokens, stubs):
    alice, bob = tokens["alice"], tokens["bob"]
    s = stubs.strategies
    for n in range(7):
        await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id=f"s{n}", strategy=sma(2 + n)), metadata=alice)
    await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="b", strategy=sma()), metadata=bob)
    await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="s1", strategy=sma(40, 50)), metadata=alice)

    async def pages(md, size) -> list[list[tuple[str, int]]]:
        out, token = [], ""
        while True:
            page = await s.ListStrategies(spb.ListStrategiesRequest(page_size=size, page_token=token), metadata=md)
            out.append([(x.strategy_id, x.version) for x in page.strategies])
            assert all(x.owner == ("alice" if md is alice else "bob") for x in page.strategies)
            token = page.next_page_token
            if not token:
                return out

    got = await pages(alice, 3)
    assert got == [[("s1", 2), ("s6", 1), ("s5", 1)], [("s4", 1), ("s3", 1), ("s2", 1)], [("s0", 1)]]
    assert await pages(alice, 0) == [[x for p in got for x in p]]
    assert await pages(bob, 3) == [[("b", 1)]]
    first = await s.ListStrategies(spb.ListStrategiesRequest(page_size=3), metadata=alice)
    err = await failure(s.ListStrategies(spb.ListStrategiesRequest(page_token=first.next_page_token), metadata=bob))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err)[0][0] == "page_token"
    for size in (-1, 501):
        err = await failure(s.ListStrategies(spb.ListStrategiesRequest(page_size=size), metadata=alice))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err)[0][0] == "page_size"
    listed = (await s.ListStrategies(spb.ListStrategiesRequest(page_size=500), metadata=alice)).strategies
    assert listed[0].strategy == sma(40, 50) and listed[0].latest_version == 2


async def test_a_page_stops_at_list_page_bytes(settings):
    big = sma()
    big.description = "x" * 60_000  # the strategy's own description: ~60 kB each
    async with serving(replace(settings, list_page_bytes=200_000)) as (_eng, stubs):
        for n in range(7):
            big.name = f"big {n}"
            await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy=big))
        sizes, token = [], ""
        while True:
            page = await stubs.strategies.ListStrategies(spb.ListStrategiesRequest(page_size=50, page_token=token))
            sizes.append(len(page.strategies))
            token = page.next_page_token
            if not token:
                break
        assert sizes == [3, 3, 1]


async def test_limits_are_resource_exhausted(settings):
    async with serving(replace(settings, max_strategies_per_user=2, max_strategy_versions=3)) as (_eng, stubs):
        s = stubs.strategies
        await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="a", strategy=sma()))
        await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="b", strategy=sma()))
        err = await failure(s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="c", strategy=sma())))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 saved strategies" in err.details()
        assert error_info(err).reason == "SAVED_STRATEGIES"
        for n in (2, 3):
            await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="a", strategy=sma(n)))
        err = await failure(s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="a", strategy=sma(4))))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_info(err).reason == "STRATEGY_VERSIONS"
        # Deleting one makes room.
        await s.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id="b"))
        assert (await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="c", strategy=sma()))).version == 1


# --- runs by reference -----------------------------------------------------------------------------

async def test_a_backtest_by_reference_equals_the_same_strategy_inline(stubs):
    rsi = strategy("rsi_reversion.json")
    await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="rsi", strategy=rsi))
    inline = await stubs.backtests.StartBacktest(start_request(days=DAYS))  # strategy_id "rsi", inline
    by_ref = await stubs.backtests.StartBacktest(pb.StartBacktestRequest(
        strategy_id="rsi", symbol="SIM-NIFTY", start_date=DAYS[0], end_date=DAYS[1]))
    assert by_ref.total_days == inline.total_days == 10
    a = await collect(stubs.backtests, inline.backtest_id)
    b = await collect(stubs.backtests, by_ref.backtest_id)
    assert kinds(b)[-1] == "backtest_completed" and any(e.HasField("trade_update") for e in b)
    assert [body(e) for e in b] == [body(e) for e in a]
    assert b[0].backtest_started.config.strategy_version == 1 and a[0].backtest_started.config.strategy_version == 0

    got = await stubs.backtests.GetBacktest(pb.GetBacktestRequest(backtest_id=by_ref.backtest_id))
    assert got.strategy_id == "rsi" and got.config.strategy_id == "rsi" and got.config.strategy_version == 1
    assert got.config.strategy == rsi
    listed = await stubs.backtests.ListBacktests(pb.ListBacktestsRequest(strategy_id="rsi"))
    assert {b.backtest_id for b in listed.backtests} == {inline.backtest_id, by_ref.backtest_id}
    assert {b.backtest_id: b.config.strategy_version for b in listed.backtests}[by_ref.backtest_id] == 1

    # Runs keep their copy: deleting the saved strategy leaves the run as it was.
    await stubs.strategies.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id="rsi"))
    again = await stubs.backtests.GetBacktest(pb.GetBacktestRequest(backtest_id=by_ref.backtest_id))
    assert again.config == got.config and again.metrics == got.metrics
    assert [body(e) for e in await collect(stubs.backtests, by_ref.backtest_id)] == [body(e) for e in a]


async def test_a_run_is_pinned_to_its_version(stubs):
    s, bt = stubs.strategies, stubs.backtests
    v1 = sma(10, 30)
    await s.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=v1))
    latest_then = await bt.StartBacktest(pb.StartBacktestRequest(strategy_id="sma", symbol="SIM-NIFTY",
                                                                 start_date=DAYS[0], end_date=DAYS[1]))
    v2 = sma(5, 20)
    await s.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=v2))
    pinned = await bt.StartBacktest(pb.StartBacktestRequest(strategy_id="sma", strategy_version=1, symbol="SIM-NIFTY",
                                                            start_date=DAYS[0], end_date=DAYS[1]))
    latest_now = await bt.StartBacktest(pb.StartBacktestRequest(strategy_id="sma", symbol="SIM-NIFTY",
                                                                start_date=DAYS[0], end_date=DAYS[1]))
    runs = {}
    for name, started in (("latest_then", latest_then), ("pinned", pinned), ("latest_now", latest_now)):
        events = await collect(bt, started.backtest_id)
        assert kinds(events)[-1] == "backtest_completed"
        runs[name] = (await bt.GetBacktest(pb.GetBacktestRequest(backtest_id=started.backtest_id)), events)
    assert runs["latest_then"][0].config.strategy_version == 1 and runs["latest_then"][0].config.strategy == v1
    assert runs["pinned"][0].config.strategy_version == 1 and runs["pinned"][0].config.strategy == v1
    assert runs["latest_now"][0].config.strategy_version == 2 and runs["latest_now"][0].config.strategy == v2
    assert [body(e) for e in runs["pinned"][1]] == [body(e) for e in runs["latest_then"][1]]


async def test_bad_references_are_invalid_argument_with_their_field(stubs):
    bt = stubs.backtests
    await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma()))
    base = dict(symbol="SIM-NIFTY", start_date=DAYS[0], end_date=DAYS[1])
    cases = [
        (pb.StartBacktestRequest(strategy_id="nope", **base), "strategy_id", "no saved strategy 'nope'"),
        (pb.StartBacktestRequest(strategy_id="sma", strategy_version=2, **base), "strategy_version", "no version 2"),
        (pb.StartBacktestRequest(strategy_id="sma", strategy_version=-1, **base), "strategy_version", ">= 0"),
        (pb.StartBacktestRequest(strategy=sma(), strategy_id="sma", strategy_version=1, **base), "strategy_version",
         "only for a saved strategy"),
        (pb.StartBacktestRequest(**base), "strategy", "strategy_id"),
        (pb.StartBacktestRequest(strategy_id="x" * 5000, **base), "strategy_id", "no saved strategy"),
    ]
    for request, field, words in cases:
        err = await failure(bt.StartBacktest(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        found = violations(err)
        assert found[0][0] == field and words in found[0][1], found
    # The rest of a request by reference is checked as always (after the strategy is found).
    err = await failure(bt.StartBacktest(pb.StartBacktestRequest(strategy_id="sma", symbol="NOPE",
                                                                 start_date=DAYS[0], end_date=DAYS[1])))
    assert violations(err)[0][0] == "symbol"
    assert not (await bt.ListBacktests(pb.ListBacktestsRequest())).backtests


async def test_an_idempotent_repeat_by_reference_answers_as_the_first_call(stubs):
    await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma()))
    request = pb.StartBacktestRequest(strategy_id="sma", symbol="SIM-NIFTY", start_date=DAYS[0], end_date=DAYS[1],
                                      request_id="once")
    first = await stubs.backtests.StartBacktest(request)
    await stubs.strategies.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma(5, 20)))
    again = await stubs.backtests.StartBacktest(request)
    await stubs.strategies.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id="sma"))
    third = await stubs.backtests.StartBacktest(request)
    assert first.backtest_id == again.backtest_id == third.backtest_id
    await collect(stubs.backtests, first.backtest_id)
    got = await stubs.backtests.GetBacktest(pb.GetBacktestRequest(backtest_id=first.backtest_id))
    assert got.config.strategy_version == 1 and got.config.strategy == sma()
    assert len((await stubs.backtests.ListBacktests(pb.ListBacktestsRequest())).backtests) == 1


def _opt_config(inline: bool = True) -> opb.OptimizationConfig:
    """SMA cross over two weeks: fast 5, 10 x slow 20, 30 (4 trials)."""
    c = opb.OptimizationConfig(method="grid", symbol="SIM-NIFTY", start_date="2024-01-01", end_date="2024-01-31")
    if inline:
        c.strategy.CopyFrom(sma())
    c.space.parameters.add(name="fast", path="indicators[0].period", int_range=opb.IntRange(low=5, high=10, step=5))
    c.space.parameters.add(name="slow", path="indicators[1].period", int_range=opb.IntRange(low=20, high=30, step=10))
    return c


async def _optimization(stub, request, md=()) -> tuple[opb.Optimization, list[opb.OptimizationEvent]]:
    started = await stub.StartOptimization(request, metadata=md)
    events = [e async for e in stub.StreamOptimization(opb.StreamOptimizationRequest(
        optimization_id=started.optimization_id), metadata=md)]
    return await stub.GetOptimization(opb.GetOptimizationRequest(optimization_id=started.optimization_id),
                                      metadata=md), events


async def test_an_optimization_by_reference(stubs):
    await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma(7, 25)))
    await stubs.strategies.UpdateStrategy(spb.UpdateStrategyRequest(strategy_id="sma", strategy=sma()))
    inline, inline_events = await _optimization(stubs.optimizations, opb.StartOptimizationRequest(
        config=_opt_config(), strategy_id="sma"))
    by_ref, ref_events = await _optimization(stubs.optimizations, opb.StartOptimizationRequest(
        config=_opt_config(inline=False), strategy_id="sma", strategy_version=2))
    assert kinds(ref_events)[-1] == "optimization_completed"
    assert by_ref.strategy_id == "sma" and by_ref.config.strategy == sma()
    assert by_ref.config.strategy_version == 2 and inline.config.strategy_version == 0  # the version it ran
    by_ref.config.strategy_version = 0
    assert by_ref.config == inline.config
    assert ref_events[0].optimization_started.config.strategy == sma()
    assert by_ref.result.best_strategy == inline.result.best_strategy
    assert [(t.parameters, t.metrics) for t in by_ref.top] == [(t.parameters, t.metrics) for t in inline.top]
    # The first version, pinned.
    old, _ = await _optimization(stubs.optimizations, opb.StartOptimizationRequest(
        config=_opt_config(inline=False), strategy_id="sma", strategy_version=1))
    assert old.config.strategy == sma(7, 25) and old.config.strategy_version == 1
    sent = _opt_config()
    sent.strategy_version = 5  # output only: ignored when sent
    inline_again, _ = await _optimization(stubs.optimizations, opb.StartOptimizationRequest(config=sent))
    assert inline_again.config.strategy_version == 0
    bad = [
        (opb.StartOptimizationRequest(config=_opt_config(inline=False), strategy_id="nope"), "strategy_id"),
        (opb.StartOptimizationRequest(config=_opt_config(inline=False), strategy_id="sma", strategy_version=3),
         "strategy_version"),
        (opb.StartOptimizationRequest(config=_opt_config(), strategy_id="sma", strategy_version=1),
         "strategy_version"),
        (opb.StartOptimizationRequest(config=_opt_config(inline=False)), "config.strategy"),
    ]
    for request, field in bad:
        err = await failure(stubs.optimizations.StartOptimization(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err)[0][0] == field, violations(err)
    err = await failure(stubs.optimizations.StartOptimization(bad[-1][0]))
    assert "strategy_id" in violations(err)[0][1]


async def test_a_run_by_reference_continues_after_a_restart(settings):
    """A graceful stop leaves a running run by reference to the next engine, which continues it
    from the config in its log, even with the saved strategy deleted meanwhile; the finished run
    equals the same strategy run inline."""
    one = replace(settings, max_concurrent=1)
    days = ("2023-01-01", "2024-12-31")
    async with serving(one) as (_eng, stubs):
        await stubs.strategies.CreateStrategy(spb.CreateStrategyRequest(strategy_id="sma", strategy=sma()))
        bid = (await stubs.backtests.StartBacktest(pb.StartBacktestRequest(
            strategy_id="sma", symbol="SIM-NIFTY", start_date=days[0], end_date=days[1]))).backtest_id
        seen = await collect(stubs.backtests, bid, limit=300)
    from storage import LocalStore

    with LocalStore(one.store_root) as store:
        assert store.get(bid).status == "running"
    async with serving(one) as (_eng, stubs):
        await stubs.strategies.DeleteStrategy(spb.DeleteStrategyRequest(strategy_id="sma"))
        events = await asyncio.wait_for(collect(stubs.backtests, bid), 120)
        assert kinds(events)[-1] == "backtest_completed"
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        assert [body(e) for e in events[:300]] == [body(e) for e in seen]
        got = await stubs.backtests.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
        assert got.config.strategy_id == "sma" and got.config.strategy_version == 1 and got.config.strategy == sma()
        inline = (await stubs.backtests.StartBacktest(pb.StartBacktestRequest(
            strategy=sma(), strategy_id="sma", symbol="SIM-NIFTY", start_date=days[0], end_date=days[1]))).backtest_id
        reference = await asyncio.wait_for(collect(stubs.backtests, inline), 120)
        assert [body(e) for e in events] == [body(e) for e in reference]
