"""Backtests computed on a Dask cluster (HINDSIGHT_DASK_SCHEDULER): the engine publishes the
days a worker computes, and the stream is the one a local run gives — also when the worker
computing it is SIGKILLed halfway."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

import grpc
import pytest

from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

from .conftest import collect, dump, start_request


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c, distributed.Client(c) as client:
        yield c, client


async def run_on(settings, request, kill=None):
    """Start `request` on an engine with `settings`, stream it to the end; returns the events.
    kill(events_so_far) is called as events arrive (once it returns True it is not called again)."""
    from services.engine.server import create_server

    engine = await create_server(settings, "127.0.0.1:0")
    await engine.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
            stub = pb_grpc.BacktestServiceStub(channel)
            started = await stub.StartBacktest(request)
            if kill is None:
                return await collect(stub, started.backtest_id)
            events, killed = [], False
            async for ev in stub.StreamBacktest(_stream_request(started.backtest_id)):
                events.append(ev)
                if not killed:
                    killed = kill(events)
            return events
    finally:
        await engine.stop(0.2)


def bodies(events) -> list[str]:
    """The events without what differs between two runs of the same request: ids and stamps."""
    out = []
    for e in events:
        e2 = type(e)()
        e2.CopyFrom(e)
        e2.ClearField("emitted_at")
        out.append(dump([e2])[0].replace(e.backtest_id, "<id>"))
    return out


def _stream_request(backtest_id: str):
    from hindsight.v1 import backtest_service_pb2 as pb

    return pb.StreamBacktestRequest(backtest_id=backtest_id)


async def test_a_backtest_computed_on_the_cluster_streams_what_a_local_run_does(cluster, settings, tmp_path):
    c, client = cluster
    request = start_request(("2024-02-01", "2024-03-29"))
    local = await run_on(settings, request)
    remote_settings = dataclasses.replace(settings, store_dir=tmp_path / "remote-store",
                                          dask_scheduler=c.scheduler_address)
    from distributed import get_task_stream

    with get_task_stream(client=client) as ts:
        remote = await run_on(remote_settings, request)
    assert any(str(t["key"]).startswith("hindsight-backtest-") for t in ts.data), "it did not run on the cluster"
    assert [e.WhichOneof("event") for e in remote][-1] == "backtest_completed"
    assert [e.event_id for e in remote] == list(range(1, len(remote) + 1))
    assert bodies(remote) == bodies(local)


async def test_a_worker_killed_mid_run_loses_and_repeats_no_day(cluster, settings, tmp_path):
    c, client = cluster
    client.wait_for_workers(2, timeout=60)
    request = start_request(("2017-01-01", "2024-12-31"), name="sma_cross.json", strategy_id="sma")
    local = await run_on(settings, request)
    pids = client.run(os.getpid)
    killed = []

    def kill(events) -> bool:
        days = sum(1 for e in events if e.WhichOneof("event") == "day_completed")
        if days < 1:
            return False
        processing = client.processing()
        busy = [w for w, keys in processing.items() if any(str(k).startswith("hindsight-backtest-") for k in keys)]
        if not busy:
            return False
        os.kill(pids[busy[0]], signal.SIGKILL)
        killed.append(events[-1].event_id)
        return True

    remote_settings = dataclasses.replace(settings, store_dir=tmp_path / "remote-store",
                                          dask_scheduler=c.scheduler_address)
    remote = await run_on(remote_settings, request, kill=kill)
    assert killed, "the run ended before its worker could be killed"
    assert killed[0] < len(remote) // 2, "the kill came too late to matter"
    assert [e.event_id for e in remote] == list(range(1, len(remote) + 1))
    assert bodies(remote) == bodies(local)
    await asyncio.to_thread(client.wait_for_workers, 2, 60)
