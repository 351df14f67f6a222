"""OptimizationService through the real gateway and the real engine (SIM-NIFTY): REST, SSE with
Last-Event-ID resume, batches, the ZIP, field violations, and isolation between users over
every route (another user's optimization answers exactly as a missing one)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import pytest_asyncio

from .conftest import StartGateway, events_of, parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]


def request_body(**config: Any) -> dict[str, Any]:
    """SMA cross over January 2024: fast 5..15 step 5 x slow 20..40 step 10, fast < slow."""
    strategy = json.loads((REPO / "examples" / "strategies" / "sma_cross.json").read_text())
    return {"strategy_id": "sma", "config": {
        "strategy": strategy, "method": "grid", "symbol": "SIM-NIFTY", "start_date": "2024-01-01",
        "end_date": "2024-01-31",
        "space": {"parameters": [
            {"name": "fast", "path": "indicators[0].period", "int_range": {"low": 5, "high": 15, "step": 5}},
            {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 20, "high": 40, "step": 10}}],
            "constraints": [{"lhs": "fast", "op": "<", "rhs": "slow"}]},
        **config}}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(start_gateway: StartGateway, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """A real engine with users alice, bob and root (admin), a gateway in front of it, and one
    completed optimization of alice's with its event stream."""
    from services.engine.auth import UserStore
    from services.engine.core.catalog import Catalog
    from services.engine.server import create_server
    from services.engine.settings import EngineSettings

    data = tmp_path_factory.mktemp("engine-data")
    Catalog(data).load("SIM-NIFTY", None, None)
    settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=data, store_dir=data / "store", max_concurrent=2,
                              fsync=False, shutdown_grace_seconds=0.5)
    users = UserStore(settings.users_db)
    keys = {}
    for name, role in (("alice", "user"), ("bob", "user"), ("root", "admin")):
        users.add_user(name, role)
        keys[name] = {"authorization": f"Bearer {users.issue_key(name)}"}
    users.close()
    engine = await create_server(settings, "127.0.0.1:0")
    await engine.start()
    try:
        base = await start_gateway(f"127.0.0.1:{engine.port}")
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await c.post("/api/v1/optimizations", headers=keys["alice"], json=request_body())
            assert r.status_code == 200, r.text
            started = r.json()
            stream = await c.get(started["stream_url"], headers={**keys["alice"], "accept": "text/event-stream"})
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        yield {"base": base, "keys": keys, "id": started["optimization_id"], "started": started,
               "events": events_of(parse_sse(stream.text))}
    finally:
        await engine.stop(0.2)


async def test_the_stream_is_sse_and_resumes_with_last_event_id(stack: dict[str, Any]) -> None:
    events, alice, oid = stack["events"], stack["keys"]["alice"], stack["id"]
    assert stack["started"]["total_trials"] == "9" and stack["started"]["status"] == "OPTIMIZATION_STATUS_RUNNING"
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "optimization_started" and kinds[-1] == "optimization_completed"
    assert kinds.count("trial_completed") == 9
    trial = json.loads(next(e for e in events if e["event"] == "trial_completed")["data"])["trial_completed"]["trial"]
    assert set(trial["parameters"]) == {"fast", "slow"} and "sharpe" in trial["metrics"]
    middle = len(events) // 2
    async with httpx.AsyncClient(base_url=stack["base"], timeout=60) as c:
        url = f"/api/v1/optimizations/{oid}/stream"
        r = await c.get(url, headers={**alice, "accept": "text/event-stream", "last-event-id": str(middle)})
        assert events_of(parse_sse(r.text)) == events[middle:]
        end = await c.get(url, headers={**alice, "last-event-id": str(len(events))})
        assert end.status_code == 204
        beyond = await c.get(f"{url}?after_event_id={len(events) + 1}", headers=alice)
        assert beyond.status_code == 400 and beyond.json()["code"] == 11  # OUT_OF_RANGE
        batches = await c.get(f"/api/v1/optimizations/{oid}/stream:batches?max_events=4",
                              headers={**alice, "accept": "application/x-ndjson"})
        assert batches.status_code == 200
        got = [e for line in batches.text.splitlines() for e in json.loads(line)["result"]["events"]]
        assert got == [json.loads(e["data"]) for e in events]


async def test_get_list_and_the_zip(stack: dict[str, Any]) -> None:
    alice, oid = stack["keys"]["alice"], stack["id"]
    async with httpx.AsyncClient(base_url=stack["base"], timeout=60) as c:
        got = (await c.get(f"/api/v1/optimizations/{oid}", headers=alice)).json()
        assert got["status"] == "OPTIMIZATION_STATUS_COMPLETED" and got["owner"] == "alice"
        assert got["top"] == got["result"]["top"] and got["result"]["overfitting"]["trials"] == "9"
        assert got["progress"]["completed_trials"] == "9"
        listed = (await c.get("/api/v1/optimizations", headers=alice)).json()["optimizations"]
        assert [o["optimization_id"] for o in listed] == [oid] and listed[0].get("result") is None
        r = await c.get(f"/api/v1/optimizations/{oid}/archive.zip", headers=alice)
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"] == f'attachment; filename="optimization_{oid}.zip"'
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None
    assert set(zf.namelist()) == {"trials.csv", "trials.parquet", "top_strategies.json", "summary.json"}
    rows = list(csv.DictReader(io.StringIO(zf.read("trials.csv").decode())))
    assert len(rows) == 9 == pq.read_table(io.BytesIO(zf.read("trials.parquet"))).num_rows
    top = json.loads(zf.read("top_strategies.json"))["strategies"]
    assert top[0]["strategy"]["indicators"][0]["period"] == int(top[0]["parameters"]["fast"])
    assert json.loads(zf.read("summary.json"))["status"] == "completed"


async def test_bad_requests_are_400_with_field_violations(stack: dict[str, Any]) -> None:
    unknown = request_body()
    unknown["config"]["space"]["parameters"][0]["path"] = "indicators[7].period"
    # null for a list of google.protobuf.Value is an empty list (json_format alone fails on it).
    no_choices = request_body()
    no_choices["config"]["space"]["parameters"][0] = {"name": "fast", "path": "indicators[0].period",
                                                      "choices": {"values": None}}
    async with httpx.AsyncClient(base_url=stack["base"], timeout=60) as c:
        for body, field in ((unknown, "config.space.parameters[0].path"),
                            (no_choices, "config.space.parameters[0].choices.values")):
            r = await c.post("/api/v1/optimizations", headers=stack["keys"]["alice"], json=body)
            assert r.status_code == 400, r.text
            assert [v["field"] for d in r.json()["details"] for v in d.get("field_violations", [])] == [field]


ROUTES = [
    ("GET", "/api/v1/optimizations/{id}", {}),
    ("POST", "/api/v1/optimizations/{id}:cancel", {}),
    ("DELETE", "/api/v1/optimizations/{id}", {}),
    ("GET", "/api/v1/optimizations/{id}/archive.zip", {}),
    ("GET", "/api/v1/optimizations/{id}/stream", {"accept": "text/event-stream"}),
    ("GET", "/api/v1/optimizations/{id}/stream", {"accept": "application/x-ndjson"}),
    ("GET", "/api/v1/optimizations/{id}/stream:batches", {}),
]


def _shape(r: httpx.Response, ident: str) -> tuple:
    body = r.text.replace(ident, "<id>")
    body = re.sub(r'"request_id":\s*"[^"]*"', '"request_id":"<rid>"', body)
    return r.status_code, r.headers.get("content-type"), body


async def test_the_matrix_covers_every_route_with_an_id() -> None:
    from services.gateway.app import default_services
    from services.gateway.bindings import compile_bindings

    served = {(b.http_method, b.template.template.replace("{optimization_id}", "{id}"))
              for b in compile_bindings(default_services()) if "optimization_id" in b.bound_fields()}
    assert served == {(method, path) for method, path, _ in ROUTES}


@pytest.mark.parametrize("method,path,headers", ROUTES)
async def test_another_users_optimization_is_exactly_a_missing_one(stack: dict[str, Any], method: str, path: str,
                                                                   headers: dict[str, str]) -> None:
    oid, bob = stack["id"], stack["keys"]["bob"]
    missing = oid[:-8] + ("0" * 8 if not oid.endswith("0" * 8) else "1" * 8)
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        theirs = await c.request(method, path.format(id=oid), headers={**bob, **headers})
        absent = await c.request(method, path.format(id=missing), headers={**bob, **headers})
        assert theirs.status_code == 404, theirs.text
        assert _shape(theirs, oid) == _shape(absent, missing)
        mine = await c.get(f"/api/v1/optimizations/{oid}", headers=stack["keys"]["alice"])
        assert mine.status_code == 200 and mine.json()["status"] == "OPTIMIZATION_STATUS_COMPLETED"


async def test_lists_never_leak(stack: dict[str, Any]) -> None:
    keys, oid = stack["keys"], stack["id"]
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        assert (await c.get("/api/v1/optimizations", headers=keys["bob"])).json().get("optimizations", []) == []
        denied = await c.get("/api/v1/optimizations?all_users=true", headers=keys["bob"])
        assert denied.status_code == 403 and denied.json()["code"] == 7
        everyone = (await c.get("/api/v1/optimizations?all_users=true", headers=keys["root"])).json()
        assert [o["optimization_id"] for o in everyone["optimizations"]] == [oid]
        anonymous = await c.get("/api/v1/optimizations")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith('Bearer realm=')
