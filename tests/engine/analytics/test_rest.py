"""Both analytics routes through the real gateway (uvicorn on a socket) in front of the real
engine: query parameters (repeated `backtest_ids` included), proto JSON, HTTP errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket

import httpx
import pytest

from hindsight.v1 import analytics_pb2 as apb

from tests.engine.analytics.conftest import run_to_end, sma_request


@pytest.fixture
async def gateway(engine):
    from services.gateway.app import build_server
    from services.gateway.settings import GatewaySettings

    settings = dataclasses.replace(GatewaySettings.from_env({}), http_addr="127.0.0.1:0",
                                   engine_addr=f"127.0.0.1:{engine.port}")
    server = build_server(settings, log_config=None, log_level="warning", access_log=False,
                          timeout_graceful_shutdown=1)
    server.capture_signals = contextlib.nullcontext  # the signal handlers belong to pytest
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=60) as client:
        yield client
    server.should_exit = True
    await task


async def test_analytics_and_compare_over_rest(stub, astub, gateway):
    a = await run_to_end(stub, sma_request(days=("2024-01-01", "2024-01-19")))
    b = await run_to_end(stub, sma_request(days=("2024-01-15", "2024-02-02")))

    r = await gateway.get(f"/api/v1/backtests/{a}/analytics", params={"rolling_window_days": 5, "histogram_bins": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    direct = await astub.GetAnalytics(apb.GetAnalyticsRequest(backtest_id=a, rolling_window_days=5, histogram_bins=7))
    assert body["backtest_id"] == a and body["rolling_window_days"] == 5
    assert len(body["returns_distribution"]["counts"]) == 7
    assert sum(int(c) for c in body["returns_distribution"]["counts"]) == int(body["returns_distribution"]["days"])
    assert len(body["rolling"]) == len(direct.rolling) == int(body["returns_distribution"]["days"]) - 4
    assert len(body["trades"]) == len(direct.trades) > 0
    first = direct.trades[0]
    assert body["trades"][0]["trade_id"] == first.trade_id and body["trades"][0]["pnl"] == pytest.approx(first.pnl)
    assert body["metrics"]["total_trades"] == direct.metrics.total_trades
    assert body["cached"] is False
    again = await gateway.get(f"/api/v1/backtests/{a}/analytics", params={"rolling_window_days": 5,
                                                                          "histogram_bins": 7})
    assert again.json()["cached"] is True and {**again.json(), "cached": False} == body

    r = await gateway.get("/api/v1/backtests:compare", params=[("backtest_ids", a), ("backtest_ids", b)])
    assert r.status_code == 200, r.text
    c = r.json()
    assert [x["backtest_id"] for x in c["backtests"]] == [a, b]
    assert c["dates"] == sorted(c["dates"]) and c["dates"][0] == "2024-01-01" and c["dates"][-1] == "2024-02-02"
    assert all(len(x["return_pct"]) == len(c["dates"]) for x in c["backtests"])
    assert c["backtests"][1]["first_index"] == c["dates"].index("2024-01-15")

    r = await gateway.get("/api/v1/backtests:compare", params=[("backtest_ids", a)])
    assert r.status_code == 400 and "backtest_ids" in r.text
    r = await gateway.get("/api/v1/backtests:compare", params=[("backtest_ids", a), ("backtest_ids", a)])
    assert r.status_code == 400 and "more than once" in r.json()["message"]
    r = await gateway.get(f"/api/v1/backtests/{a}/analytics", params={"histogram_bins": 2})
    assert r.status_code == 400 and "histogram_bins" in r.text
    r = await gateway.get("/api/v1/backtests/bt_20240101_000000_deadbeef/analytics")
    assert r.status_code == 404
