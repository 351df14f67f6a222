"""Around the routes: /healthz, /readyz, /openapi.json and the offline /docs."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health_pb2

from services.gateway.bindings import compile_bindings
from services.gateway.settings import GatewaySettings

from .conftest import SERVICE, EngineHandle, FakeBacktestService, Gateways, StartGateway, services

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_follows_the_engine_health(client: httpx.AsyncClient, engine: EngineHandle) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "SERVING"
    assert r.json()["services"][SERVICE] == "SERVING"
    await engine.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["status"] == "NOT_SERVING"
        assert r.json()["services"][SERVICE] == "NOT_SERVING"
    finally:
        await engine.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_when_the_engine_is_down(start_gateway: StartGateway, closed_port: int) -> None:
    url = await start_gateway(f"127.0.0.1:{closed_port}")
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "UNREACHABLE"
        assert (await c.get("/healthz")).status_code == 200  # the gateway itself is fine


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return dict(r.json())


async def test_openapi_has_every_rule(client: httpx.AsyncClient) -> None:
    doc = await openapi(client)
    assert doc["openapi"] == "3.1.0"
    for b in compile_bindings(services()):
        op = doc["paths"][b.template.openapi_path()][b.http_method.lower()]
        path_params = {p["name"] for p in op["parameters"] if p.get("in") == "path"}
        assert path_params == {v.name for v in b.template.variables}, b.name
        assert set(re.findall(r"{([^}]+)}", b.template.openapi_path())) == path_params
        assert ("requestBody" in op) == bool(b.body)
        assert op["responses"]["default"]["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/google.rpc.Status"}
    ops = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ops) == len(set(ops))


def bare(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema without its description (the proto comment), to compare its shape."""
    return {k: v for k, v in schema.items() if k != "description"}


async def test_openapi_descriptions_are_the_proto_comments(client: httpx.AsyncClient) -> None:
    doc = await openapi(client)
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    start = paths["/api/v1/backtests"]["post"]
    assert start["summary"] == "Starts a backtest."
    assert start["description"].startswith("Starts a backtest. It is queued at once")
    assert start["description"].endswith("gRPC: `hindsight.v1.BacktestService.StartBacktest`")
    stream = paths["/api/v1/backtests/{backtest_id}/stream"]["get"]
    cursor = next(p for p in stream["parameters"] if p.get("name") == "after_event_id")
    assert cursor["description"].startswith("Exclusive cursor: events with ids greater than this are sent.")
    status = schemas["hindsight.v1.BacktestStatus"]
    assert status["description"] == "Lifecycle of a backtest."
    request = schemas["hindsight.v1.StartBacktestRequest"]["properties"]
    assert request["tick_interval"]["description"].startswith("0: no tick_update events;")
    assert request["strategy"]["description"].startswith("The strategy to run. Leave it out to run the caller's saved "
                                                           "strategy `strategy_id`")
    assert "$ref" in str(request["strategy"])  # optional now: the message or null
    event = schemas["hindsight.v1.BacktestEvent"]
    assert "At most one of backtest_started, day_started" in event["description"]
    # Comments spanning lines keep their line breaks; the `//` and its space are gone.
    texts = [start["description"], cursor["description"], status["description"]]
    assert "\n" in start["description"] and not any(line.startswith("/") for t in texts for line in t.splitlines())
    # The echo service's protos are compiled at run time, without source info: no descriptions.
    echo = paths["/test/v1/things/{id}"]["get"]
    assert echo["summary"] == "Echo" and echo["description"] == "gRPC: `hindsight.gatewaytest.EchoService.Echo`"


async def test_openapi_shapes(client: httpx.AsyncClient) -> None:
    doc = await openapi(client)
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    listing = paths["/api/v1/backtests"]["get"]
    query = {p["name"]: p for p in listing["parameters"] if p.get("in") == "query"}
    assert set(query) == {"strategy_id", "status", "page_size", "page_token", "all_users"}
    assert bare(query["status"]["schema"]) == {"$ref": "#/components/schemas/hindsight.v1.BacktestStatus"}
    assert schemas["hindsight.v1.BacktestStatus"]["enum"][:2] == ["BACKTEST_STATUS_UNSPECIFIED",
                                                                 "BACKTEST_STATUS_QUEUED"]
    start = paths["/api/v1/backtests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert start == {"$ref": "#/components/schemas/hindsight.v1.StartBacktestRequest"}
    assert set(schemas["hindsight.v1.StartBacktestRequest"]["required"]) == {"symbol"}
    cancel = paths["/api/v1/backtests/{backtest_id}:cancel"]["post"]["requestBody"]["content"]
    assert "backtest_id" not in cancel["application/json"]["schema"]["properties"]  # it is in the path
    backtest = schemas["hindsight.v1.Backtest"]["properties"]
    assert bare(backtest["created_at"]) == {"type": "string", "format": "date-time"}
    assert backtest["last_event_id"]["type"] == "string" and backtest["last_event_id"]["format"] == "uint64"
    assert bare(backtest["daily_summaries"]) == {"type": "array",
                                           "items": {"$ref": "#/components/schemas/hindsight.v1.DailySummary"}}
    assert bare(schemas["hindsight.v1.NodeEvent"]["properties"]["variables"]) == \
        {"type": "object", "additionalProperties": {"anyOf": [
            {"type": "number", "format": "double"},
            {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}}
    assert schemas["hindsight.v1.DayDetail"]["properties"]["events_history"]["additionalProperties"] == \
        {"$ref": "#/components/schemas/hindsight.v1.NodeEvent"}
    stream = paths["/api/v1/backtests/{backtest_id}/stream"]["get"]
    assert set(stream["responses"]["200"]["content"]) == {"text/event-stream", "application/x-ndjson"}
    assert "204" in stream["responses"]
    assert any(p.get("name") == "Last-Event-ID" and p["in"] == "header" for p in stream["parameters"])
    assert any(p.get("name") == "after_event_id" and p["in"] == "query" for p in stream["parameters"])
    download = paths["/api/v1/backtests/{backtest_id}/days/{date}/archive.zip"]["get"]["responses"]["200"]
    assert set(download["content"]) == {"application/zip"}
    assert "Content-Disposition" in download["headers"]
    assert schemas["google.rpc.Status"]["required"] == ["code", "message", "details"]
    # Nested and repeated query parameters of the echo service.
    echo = {p["name"]: p for p in paths["/test/v1/things/{id}"]["get"]["parameters"] if p.get("in") == "query"}
    assert {"inner.name", "inner.level", "numbers", "at"} <= set(echo)
    assert "inner.child.level" not in echo  # recursive messages are listed one level deep
    assert bare(echo["numbers"]["schema"]) == {"type": "array", "items": {"type": "integer", "format": "int32"}}
    assert echo["numbers"]["explode"] is True
    # Every $ref resolves.
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', (await client.get("/openapi.json")).text))
    assert refs <= set(schemas)


async def test_openapi_validates(client: httpx.AsyncClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(await openapi(client))


def _docs_available() -> bool:
    try:
        return GatewaySettings.from_env().docs_dir is not None
    except ValueError:
        return False


@pytest.mark.skipif(not _docs_available(), reason="swagger-ui-dist is not installed (make setup installs it)")
async def test_docs_are_served_offline(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "/openapi.json" in page
    assert "validatorUrl: null" in page
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert linked and all(u.startswith("/docs/assets/") for u in linked), linked
    assert "http://" not in page and "https://" not in page
    for url in linked:
        asset = await client.get(url, headers={"accept-encoding": "gzip"})
        assert asset.status_code == 200, url
        assert len(asset.content) > 100
    js = await client.get("/docs/assets/swagger-ui-bundle.js", headers={"accept-encoding": "gzip"})
    assert "javascript" in js.headers["content-type"]
    assert js.headers.get("content-encoding") == "gzip"  # 1.7 MB of JS is worth compressing


async def test_docs_without_the_renderer_say_how_to_get_it(start_gateway: StartGateway) -> None:
    url = await start_gateway(docs_dir=None)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.get("/docs")
        assert r.status_code == 404 and "make setup" in r.json()["message"]
        assert (await c.get("/openapi.json")).status_code == 200


async def test_shutdown_ends_event_streams_at_once(start_gateway: StartGateway, gateways: Gateways,
                                                   fake: FakeBacktestService) -> None:
    url = await start_gateway(grace_s=10)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        async with c.stream("GET", "/api/v1/backtests/bt-slow/stream") as r:
            lines = r.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass
            started = time.perf_counter()
            stopping = asyncio.create_task(gateways.stop(url))
            rest = [line async for line in lines]  # ends cleanly: no protocol error
        assert all(not line.startswith("data:") for line in rest)
        await asyncio.wait_for(stopping, 5)
    assert time.perf_counter() - started < 2  # not the 10 s grace period
    await asyncio.wait_for(fake.cancel_event("bt-slow").wait(), 2)
