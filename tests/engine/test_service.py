"""BacktestService over a real grpc.aio channel: streams, resume, jobs, storage, errors."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
import zipfile

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

from tests.engine.conftest import collect, dump, kinds, start_request

TERMINAL = {"backtest_completed", "backtest_failed", "backtest_cancelled"}


async def run_to_end(stub, **kw) -> tuple[str, list[pb.BacktestEvent]]:
    resp = await stub.StartBacktest(start_request(**kw))
    return resp.backtest_id, await collect(stub, resp.backtest_id)


def bad_request_fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None, "expected google.rpc.Status details"
    fields = []
    for d in status.details:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            fields += [v.field for v in br.field_violations]
    return fields


async def test_full_stream_is_contiguous_and_complete(stub):
    resp = await stub.StartBacktest(start_request())
    assert resp.backtest_id.startswith("bt_") and resp.total_days == 10  # 2024-01-01..12 on XBOM
    assert resp.stream_url == f"/api/v1/backtests/{resp.backtest_id}/stream"
    events = await collect(stub, resp.backtest_id)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert all(e.backtest_id == resp.backtest_id for e in events)
    k = kinds(events)
    assert k[0] == "backtest_started" and k[-1] == "backtest_completed"
    assert k.count("day_started") == k.count("day_completed") == 10
    trades = [e.trade_update.trade for e in events if e.HasField("trade_update")]
    assert trades, "the RSI example trades on SIM-NIFTY"
    node_ids = {e.node_event.execution_id for e in events if e.HasField("node_event")}
    for t in trades:  # every trade's flow ids point at streamed node events
        assert set(t.entry_flow_ids) <= node_ids and set(t.exit_flow_ids) <= node_ids
    done = events[-1].backtest_completed
    assert done.overall_summary.total_trades == len(trades)
    assert done.metrics.total_trades == len(trades)
    days = [e.day_completed for e in events if e.HasField("day_completed")]
    assert sum(d.summary.total_trades for d in days) == len(trades)
    assert [d.day_number for d in days] == list(range(1, 11))


async def test_interrupted_streams_resume_to_the_identical_sequence(stub):
    bid, full = await run_to_end(stub)
    rng = random.Random(7)
    for _ in range(5):
        got: list[pb.BacktestEvent] = []
        cursor = 0
        while True:
            chunk = await collect(stub, bid, after=cursor, limit=rng.randint(1, 40))
            if not chunk:
                break
            got += chunk
            cursor = chunk[-1].event_id
        assert dump(got) == dump(full)


async def test_resume_while_running_and_many_concurrent_readers(stub):
    resp = await stub.StartBacktest(start_request(days=("2023-01-01", "2023-06-30")))
    bid = resp.backtest_id

    async def resumer() -> list[pb.BacktestEvent]:
        got, cursor = [], 0
        rng = random.Random(bid)
        while True:
            chunk = await collect(stub, bid, after=cursor, limit=rng.randint(5, 300))
            if not chunk:
                return got
            got += chunk
            cursor = chunk[-1].event_id
            if kinds(chunk)[-1] in TERMINAL:
                return got

    results = await asyncio.gather(*[collect(stub, bid) for _ in range(20)], resumer())
    first = dump(results[0])
    assert kinds(results[0])[-1] == "backtest_completed"
    for r in results[1:]:
        assert dump(r) == first


async def test_late_reader_gets_full_replay_and_terminal_resume_is_empty(stub):
    bid, full = await run_to_end(stub)
    again = await collect(stub, bid)
    assert dump(again) == dump(full)
    assert await collect(stub, bid, after=full[-1].event_id) == []
    tail = await collect(stub, bid, after=full[-2].event_id)
    assert kinds(tail) == ["backtest_completed"]


async def collect_batches(stub, bid: str, after: int = 0, max_events: int = 0) -> list[list[pb.BacktestEvent]]:
    request = pb.StreamBacktestBatchesRequest(backtest_id=bid, after_event_id=after, max_events=max_events)
    return [list(batch.events) async for batch in stub.StreamBacktestBatches(request)]


@pytest.mark.parametrize("read", [collect, collect_batches], ids=["StreamBacktest", "StreamBacktestBatches"])
async def test_stream_errors(stub, read):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await read(stub, "bt_nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    bid, full = await run_to_end(stub)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await read(stub, bid, after=full[-1].event_id + 1)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "after_event_id" in bad_request_fields(info.value)


async def test_batches_carry_the_same_events_as_the_plain_stream(stub):
    # Read while it runs (batches of what is ready), then as a replay, then from a cursor.
    resp = await stub.StartBacktest(start_request(days=("2023-01-01", "2023-03-31"), tick_interval=5))
    live, plain = await asyncio.gather(collect_batches(stub, resp.backtest_id), collect(stub, resp.backtest_id))
    assert all(live) and dump([e for b in live for e in b]) == dump(plain)
    replay = await collect_batches(stub, resp.backtest_id)
    assert len(replay) < len(plain) / 100, "a stored log is sent in large batches"
    assert dump([e for b in replay for e in b]) == dump(plain)
    small = await collect_batches(stub, resp.backtest_id, after=10, max_events=7)
    assert {len(b) for b in small[:-1]} == {7} and 1 <= len(small[-1]) <= 7
    assert dump([e for b in small for e in b]) == dump(plain[10:])
    # Above the largest batch size: accepted, and batches still stop at about 1 MiB.
    huge = await collect_batches(stub, resp.backtest_id, max_events=1_000_000)
    assert 1 < len(huge) < 10 and dump([e for b in huge for e in b]) == dump(plain)
    assert all(pb.BacktestEventBatch(events=b).ByteSize() <= 1 << 20 for b in huge)
    assert await collect_batches(stub, resp.backtest_id, after=plain[-1].event_id) == []


async def test_batch_size_is_capped(stub, monkeypatch):
    import services.engine.servicer as servicer

    monkeypatch.setattr(servicer, "MAX_BATCH_EVENTS", 100)
    bid, full = await run_to_end(stub)
    batches = await collect_batches(stub, bid, max_events=1_000_000)
    assert [len(b) for b in batches[:-1]] == [100] * (len(batches) - 1) and len(full) > 100
    assert dump([e for b in batches for e in b]) == dump(full)
    default = await collect_batches(stub, bid)  # 0: the default, here above the cap
    assert [len(b) for b in default] == [len(b) for b in batches]


async def test_batches_are_cut_by_size_without_parsing_events():
    from services.engine.servicer import batch_bytes

    events = [pb.BacktestEvent(event_id=i, backtest_id="bt_x" * (i % 50)) for i in range(1, 301)]
    page = [(e.event_id, e.SerializeToString()) for e in events]
    batches = [pb.BacktestEventBatch.FromString(b) for b in batch_bytes(page, 1024)]
    assert len(batches) > 10 and all(0 < b.ByteSize() <= 1024 for b in batches)
    assert [e for b in batches for e in b.events] == events
    big = pb.BacktestEvent(event_id=1, backtest_id="x" * 5000)  # larger than the cut: goes alone
    alone = list(batch_bytes([(1, big.SerializeToString()), (2, page[1][1])], 1024))
    assert [list(pb.BacktestEventBatch.FromString(b).events) for b in alone] == [[big], [events[1]]]


async def test_stalled_reader_does_not_hold_back_the_engine(stub, engine):
    resp = await stub.StartBacktest(start_request(days=("2023-01-01", "2023-03-31"), tick_interval=1))
    call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=resp.backtest_id))
    first = await call.read()  # then never read again
    assert first.event_id == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=resp.backtest_id, omit_days=True))
        if bt.status == pb.BACKTEST_STATUS_COMPLETED:
            break
        await asyncio.sleep(0.05)
    assert bt.status == pb.BACKTEST_STATUS_COMPLETED
    assert bt.last_event_id > 10_000  # tick updates for every bar: far more than flow control buffers
    call.cancel()


async def test_tick_updates_are_throttled_by_the_request(stub):
    _, events = await run_to_end(stub, days=("2024-01-01", "2024-01-03"), tick_interval=75)
    ticks = [e.tick_update for e in events if e.HasField("tick_update")]
    assert len(ticks) == 3 * 5  # 375 one-minute bars a day, one tick every 75
    assert [t.tick for t in ticks[:5]] == [1, 76, 151, 226, 301]


async def test_get_backtest_progress_summary_and_calendar(stub):
    bid, events = await run_to_end(stub)
    bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
    assert bt.status == pb.BACKTEST_STATUS_COMPLETED
    assert bt.progress.completed_days == bt.progress.total_days == 10 and bt.progress.percentage == 100
    assert bt.config.symbol == "SIM-NIFTY" and bt.config.strategy.name == "Intraday RSI reversion"
    assert len(bt.daily_summaries) == 10 and all(d.has_data for d in bt.daily_summaries)
    assert bt.summary.total_trades == events[-1].backtest_completed.overall_summary.total_trades
    assert bt.last_event_id == events[-1].event_id
    assert bt.created_at.seconds and bt.finished_at.seconds and bt.expires_at.seconds > bt.finished_at.seconds
    slim = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid, omit_days=True))
    assert len(slim.daily_summaries) == 0


async def test_get_day_and_downloads(stub):
    bid, events = await run_to_end(stub)
    day = next(e.day_completed for e in events if e.HasField("day_completed") and e.day_completed.summary.total_trades)
    detail = await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date=day.date))
    assert len(detail.trades) == day.summary.total_trades
    for t in detail.trades:
        for fid in list(t.entry_flow_ids) + list(t.exit_flow_ids):
            assert fid in detail.events_history
    blob = b"".join([b.data async for b in stub.DownloadDay(pb.DownloadDayRequest(backtest_id=bid, date=day.date))])
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert sorted(z.namelist()) == ["diagnostics_export.json.gz", "trades_daily.json.gz"]
        import gzip

        trades = json.loads(gzip.decompress(z.read("trades_daily.json.gz")))
        assert len(trades["trades"]) == day.summary.total_trades
    blob = b"".join([b.data async for b in stub.DownloadBacktest(pb.DownloadBacktestRequest(backtest_id=bid))])
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        names = set(z.namelist())
        assert {"metadata.json", "trades.csv", "daily.csv"} <= names
        assert f"{day.date}/trades_daily.json.gz" in names
        assert len(z.read("trades.csv").decode().strip().splitlines()) == 1 + events[-1].backtest_completed.overall_summary.total_trades
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date="2024-01-26"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date="26-01-2024"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_day_can_be_read_as_soon_as_an_event_announces_it(stub, monkeypatch):
    # Day files are written by a pool of threads, several days at a time; a day's events must
    # still wait for its files. Checked live, while the run is going, with slow writes (so
    # that an event sent too early would find no files).
    from storage import LocalStore

    write_day = LocalStore.write_day

    def slow_write_day(self, *args, **kwargs):
        time.sleep(0.01)
        return write_day(self, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "write_day", slow_write_day)
    resp = await stub.StartBacktest(start_request(days=("2022-01-01", "2023-12-31")))
    call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=resp.backtest_id))
    checked, running = 0, False
    async for event in call:
        kind = event.WhichOneof("event")
        if kind in ("day_started", "day_completed"):
            date = getattr(event, kind).date
            detail = await stub.GetDay(pb.GetDayRequest(backtest_id=resp.backtest_id, date=date))
            assert detail.date == date
            checked += 1
            if checked == 1:
                bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=resp.backtest_id, omit_days=True))
                running = bt.status == pb.BACKTEST_STATUS_RUNNING
            if checked == 200:
                break
    call.cancel()
    await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=resp.backtest_id))
    assert checked == 200 and running


async def test_a_failed_day_write_fails_the_run_after_the_days_before_it(stub, monkeypatch):
    import errno

    from storage import LocalStore

    write_day = LocalStore.write_day
    calls: list[str] = []

    def failing_write_day(self, backtest_id, date, *args, **kwargs):
        calls.append(date)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_day(self, backtest_id, date, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "write_day", failing_write_day)
    bid, events = await run_to_end(stub, days=("2024-01-01", "2024-03-31"))
    failed = events[-1].backtest_failed
    assert kinds(events)[-1] == "backtest_failed" and failed.error_code == "INTERNAL"
    assert "No space left on device" in failed.error_message
    assert [e.day_completed.date for e in events if e.HasField("day_completed")] == calls[:2]
    # The run stops computing once publishing fails: only days already under way are written
    # (at most the publisher's backlog), not the rest of the 60-day run.
    from services.engine.jobs import MAX_BACKLOG_DAYS

    assert len(calls) <= 3 + MAX_BACKLOG_DAYS + 1 < 60
    bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid, omit_days=True))
    assert bt.status == pb.BACKTEST_STATUS_FAILED and bt.last_event_id == events[-1].event_id
    # Nothing already published is lost: those days' files are there, with their trades.
    for date in calls[:2]:
        detail = await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date=date))
        completed = next(e.day_completed for e in events if e.day_completed.date == date)
        assert len(detail.trades) == completed.summary.total_trades


async def test_cancel_ends_the_stream_with_backtest_cancelled(stub):
    resp = await stub.StartBacktest(start_request(days=("2016-01-01", "2025-12-31"), tick_interval=1))
    call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=resp.backtest_id))
    seen = []
    async for ev in call:
        seen.append(ev)
        if ev.HasField("day_completed"):
            break
    bt = await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=resp.backtest_id))
    assert bt.status == pb.BACKTEST_STATUS_CANCELLED
    async for ev in call:
        seen.append(ev)
    assert kinds(seen)[-1] == "backtest_cancelled"
    assert bt.progress.completed_days < bt.progress.total_days
    again = await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=resp.backtest_id))
    assert again.status == pb.BACKTEST_STATUS_CANCELLED


async def test_delete_removes_everything(stub, engine):
    bid, _ = await run_to_end(stub)
    path = engine.store.backtest_dir(bid)
    assert path.exists()
    await stub.DeleteBacktest(pb.DeleteBacktestRequest(backtest_id=bid))
    assert not path.exists()
    for call in (stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid)),
                 stub.DeleteBacktest(pb.DeleteBacktestRequest(backtest_id=bid))):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await collect(stub, bid)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_ttl_cleanup_keeps_the_latest_completed_run_per_strategy(stub, engine):
    old, _ = await run_to_end(stub, strategy_id="s1")
    new, _ = await run_to_end(stub, strategy_id="s1")
    other, _ = await run_to_end(stub, strategy_id="s2")
    removed = engine.store.cleanup(now=time.time() + 13 * 3600)
    assert removed == [old]
    listed = await stub.ListBacktests(pb.ListBacktestsRequest())
    assert {b.backtest_id for b in listed.backtests} == {new, other}


async def test_idempotent_start(stub):
    a = await stub.StartBacktest(start_request(request_id="req-1"))
    b = await stub.StartBacktest(start_request(request_id="req-1"))
    c = await stub.StartBacktest(start_request(request_id="req-2"))
    assert a.backtest_id == b.backtest_id != c.backtest_id


async def test_list_filters_and_pages(stub):
    ids = set()
    for sid in ("a", "a", "b"):
        bid, _ = await run_to_end(stub, strategy_id=sid, days=("2024-01-01", "2024-01-02"))
        ids.add(bid)
    page1 = await stub.ListBacktests(pb.ListBacktestsRequest(page_size=2))
    page2 = await stub.ListBacktests(pb.ListBacktestsRequest(page_size=2, page_token=page1.next_page_token))
    assert len(page1.backtests) == 2 and len(page2.backtests) == 1 and not page2.next_page_token
    assert {b.backtest_id for b in [*page1.backtests, *page2.backtests]} == ids
    only_a = await stub.ListBacktests(pb.ListBacktestsRequest(strategy_id="a"))
    assert len(only_a.backtests) == 2
    done = await stub.ListBacktests(pb.ListBacktestsRequest(status=pb.BACKTEST_STATUS_COMPLETED))
    assert len(done.backtests) == 3
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListBacktests(pb.ListBacktestsRequest(page_token="garbage"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_invalid_requests_carry_field_violations(stub):
    bad = start_request()
    bad.strategy.entries[0].when.all[0].rhs.indicator = "rsi2"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["strategy.entries[0].when.all[0].rhs"]
    assert "unknown indicator 'rsi2'" in info.value.details()
    for req, field in ((start_request(symbol="NOPE"), "symbol"),
                       (start_request(days=("2024-13-01", "2024-01-02")), "start_date"),
                       (start_request(days=("2024-02-01", "2024-01-02")), "end_date"),
                       (start_request(days=("2030-01-01", "2030-02-01")), "start_date"),
                       (start_request(tick_interval=-1), "tick_interval")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StartBacktest(req)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in bad_request_fields(info.value)
    missing = pb.StartBacktestRequest(symbol="SIM-NIFTY")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(missing)
    assert bad_request_fields(info.value) == ["strategy"]


async def test_queue_limit_gives_resource_exhausted(stub, engine):
    engine.jobs.settings = engine.settings.__class__(**{**engine.settings.__dict__, "max_queued": 1})
    long = dict(days=("2016-01-01", "2025-12-31"), tick_interval=1)
    started = [await stub.StartBacktest(start_request(**long)) for _ in range(3)]  # 2 run, 1 queued
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(start_request(**long))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    queued = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=started[2].backtest_id))
    assert queued.status == pb.BACKTEST_STATUS_QUEUED
    for s in reversed(started):  # the queued one first, before a slot frees up
        await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=s.backtest_id))
    events = await collect(stub, started[2].backtest_id)
    assert kinds(events) == ["backtest_cancelled"]


async def test_per_caller_limit_queues_the_third_run(tokens, stub, engine):
    long = dict(days=("2016-01-01", "2025-12-31"), tick_interval=1)
    me = tokens["alice"]
    runs = [await stub.StartBacktest(start_request(**long), metadata=me) for _ in range(3)]
    engine.jobs.settings = engine.settings.__class__(**{**engine.settings.__dict__, "max_concurrent": 4})
    statuses = [(await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=r.backtest_id), metadata=me)).status
                for r in runs]
    assert statuses.count(pb.BACKTEST_STATUS_QUEUED) == 1
    # Another user's run starts at once: the limit is per user.
    other = await stub.StartBacktest(start_request(**long), metadata=tokens["bob"])
    got = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=other.backtest_id), metadata=tokens["bob"])
    assert got.status == pb.BACKTEST_STATUS_RUNNING
    for r in runs:
        await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=r.backtest_id), metadata=me)
    await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=other.backtest_id), metadata=tokens["bob"])


async def test_restart_closes_runs_left_in_progress(settings):
    from services.engine.server import create_server
    from storage import RUNNING, BacktestRecord, LocalStore

    store = LocalStore(settings.store_root)
    store.create(BacktestRecord(backtest_id="bt_orphan", strategy_id="s", created_at=time.time(), status=RUNNING))
    store.event_log("bt_orphan").append(pb.BacktestEvent(event_id=1, backtest_id="bt_orphan",
                                                         backtest_started=pb.BacktestStarted()).SerializeToString())
    store.close()
    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            stub = pb_grpc.BacktestServiceStub(ch)
            events = await asyncio.wait_for(collect(stub, "bt_orphan"), 10)
            assert kinds(events) == ["backtest_started", "backtest_failed"]
            assert events[-1].backtest_failed.error_code == "ENGINE_RESTARTED"
            bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id="bt_orphan"))
            assert bt.status == pb.BACKTEST_STATUS_FAILED
    finally:
        await eng.stop(0.1)


async def test_validate_strategy_and_datasets(stub):
    ok = await stub.ValidateStrategy(pb.ValidateStrategyRequest(strategy=start_request().strategy))
    assert ok.valid and ok.warmup_bars == 15
    bad = start_request().strategy
    bad.indicators[0].period = 0
    res = await stub.ValidateStrategy(pb.ValidateStrategyRequest(strategy=bad))
    assert not res.valid and res.problems[0].field == "indicators[0].period"
    ds = await stub.ListDatasets(pb.ListDatasetsRequest())
    sim = next(d for d in ds.datasets if d.symbol == "SIM-NIFTY")
    assert sim.first_date.startswith("2016-01") and sim.last_date.startswith("2025-12") and sim.bars > 900_000


async def test_health_reflection_and_graceful_shutdown(engine):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "hindsight.v1.BacktestService"):
            res = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert res.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = set()
        async for r in responses:
            names |= {s.name for s in r.list_services_response.service}
        assert {"hindsight.v1.BacktestService", "grpc.health.v1.Health"} <= names
        await engine.health.enter_graceful_shutdown()
        res = await health.Check(health_pb2.HealthCheckRequest(service="hindsight.v1.BacktestService"))
        assert res.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_json_of_events_uses_proto_names():
    ev = pb.BacktestEvent(event_id=1, day_started=pb.DayStarted(date="2024-01-01", day_number=1, total_days=2))
    assert json_format.MessageToDict(ev, preserving_proto_field_name=True)["day_started"]["day_number"] == 1
