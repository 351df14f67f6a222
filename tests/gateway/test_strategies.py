"""StrategyService through the real gateway and the real engine: every REST route (create, get at a
version, list with pages, versions, update with expected_version, delete), their errors as HTTP
statuses with field violations, a backtest run by reference over REST, and isolation between
users on every route (another user's strategy answers exactly as a missing one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from .conftest import StartGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]


def sma(fast: int = 10, slow: int = 20) -> dict[str, Any]:
    strategy = json.loads((REPO / "examples" / "strategies" / "sma_cross.json").read_text())
    strategy["indicators"][0]["period"], strategy["indicators"][1]["period"] = fast, slow
    return strategy


def fields(r: httpx.Response) -> list[str]:
    return [v["field"] for d in r.json().get("details", []) for v in d.get("field_violations", [])]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(start_gateway: StartGateway, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """A real engine with users alice, bob and root (admin) and a gateway in front of it."""
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
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=keys["alice"]) as alice:
            yield {"base": base, "keys": keys, "alice": alice}
    finally:
        await engine.stop(0.2)


async def test_the_routes_from_create_to_delete(stack: dict[str, Any]) -> None:
    c: httpx.AsyncClient = stack["alice"]
    r = await c.post("/api/v1/strategies", json={"strategy": sma(), "description": "the example"})
    assert r.status_code == 200, r.text
    v1 = r.json()
    assert v1["strategy_id"] == "sma-10-20-crossover" and v1["version"] == 1 and v1["latest_version"] == 1
    assert v1["owner"] == "alice" and v1["strategy"]["indicators"][0]["period"] == 10 and v1["warmup_bars"] > 0
    assert v1["created_at"] == v1["first_created_at"]
    sid = v1["strategy_id"]

    r = await c.put(f"/api/v1/strategies/{sid}", json={"strategy": sma(5, 20), "expected_version": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["description"]) == (2, "the example")
    stale = await c.put(f"/api/v1/strategies/{sid}", json={"strategy": sma(7, 20), "expected_version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == 10  # ABORTED
    assert "version 2" in stale.json()["message"]

    got = (await c.get(f"/api/v1/strategies/{sid}")).json()
    assert got["version"] == 2 and got["strategy"]["indicators"][0]["period"] == 5
    old = (await c.get(f"/api/v1/strategies/{sid}?version=1")).json()
    assert old["version"] == 1 and old["latest_version"] == 2 and old["strategy"] == v1["strategy"]
    missing_version = await c.get(f"/api/v1/strategies/{sid}?version=9")
    assert missing_version.status_code == 404 and "no version 9" in missing_version.json()["message"]

    versions = (await c.get(f"/api/v1/strategies/{sid}/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    listed = (await c.get("/api/v1/strategies")).json()
    assert [(s["strategy_id"], s["version"]) for s in listed["strategies"]] == [(sid, 2)]

    again = await c.post("/api/v1/strategies", json={"strategy_id": sid, "strategy": sma()})
    assert again.status_code == 409 and again.json()["code"] == 6  # ALREADY_EXISTS
    default = await c.post("/api/v1/strategies", json={"strategy": sma()})
    assert default.json()["strategy_id"] == f"{sid}-2"

    assert (await c.delete(f"/api/v1/strategies/{sid}")).json() == {"strategy_id": sid}
    assert (await c.get(f"/api/v1/strategies/{sid}")).status_code == 404
    assert (await c.delete(f"/api/v1/strategies/{sid}-2")).status_code == 200


async def test_problems_are_400_with_validate_strategys_fields(stack: dict[str, Any]) -> None:
    c: httpx.AsyncClient = stack["alice"]
    bad = sma()
    bad["indicators"][0]["period"] = 0
    checked = (await c.post("/api/v1/strategies:validate", json={"strategy": bad})).json()
    assert checked.get("valid") is not True and checked["problems"]
    r = await c.post("/api/v1/strategies", json={"strategy": bad, "strategy_id": "Bad Id"})
    assert r.status_code == 400
    assert fields(r) == [f"strategy.{p['field']}" for p in checked["problems"]] + ["strategy_id"]
    assert (await c.get("/api/v1/strategies?page_size=501")).status_code == 400
    unknown = await c.post("/api/v1/strategies", json={"strategy": sma(), "colour": "red"})
    assert unknown.status_code == 400


async def test_pages_over_rest(stack: dict[str, Any]) -> None:
    c: httpx.AsyncClient = stack["alice"]
    for n in range(5):
        assert (await c.post("/api/v1/strategies", json={"strategy_id": f"page-{n}", "strategy": sma(2 + n)})
                ).status_code == 200
    seen, token = [], ""
    while True:
        page = (await c.get("/api/v1/strategies", params={"page_size": 2, "page_token": token})).json()
        assert len(page["strategies"]) <= 2
        seen += [s["strategy_id"] for s in page["strategies"]]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert seen == [f"page-{n}" for n in range(4, -1, -1)]
    first = (await c.get("/api/v1/strategies", params={"page_size": 2})).json()
    theirs = await c.get("/api/v1/strategies", params={"page_token": first["next_page_token"]},
                         headers=stack["keys"]["bob"])
    assert theirs.status_code == 400 and fields(theirs) == ["page_token"]
    for n in range(5):
        await c.delete(f"/api/v1/strategies/page-{n}")


async def test_a_backtest_by_reference_over_rest(stack: dict[str, Any]) -> None:
    c: httpx.AsyncClient = stack["alice"]
    await c.post("/api/v1/strategies", json={"strategy_id": "ref", "strategy": sma()})
    await c.put("/api/v1/strategies/ref", json={"strategy": sma(5, 20)})
    run = {"strategy_id": "ref", "strategy_version": 1, "symbol": "SIM-NIFTY", "start_date": "2024-01-01",
           "end_date": "2024-01-12"}
    r = await c.post("/api/v1/backtests", json=run)
    assert r.status_code == 200, r.text
    bid = r.json()["backtest_id"]
    await c.get(f"/api/v1/backtests/{bid}/stream", headers={"accept": "text/event-stream"})  # to its end
    got = (await c.get(f"/api/v1/backtests/{bid}?omit_days=true")).json()
    assert got["status"] == "BACKTEST_STATUS_COMPLETED" and got["strategy_id"] == "ref"
    assert got["config"]["strategy_id"] == "ref" and got["config"]["strategy_version"] == 1
    assert got["config"]["strategy"]["indicators"][0]["period"] == 10
    listed = (await c.get("/api/v1/backtests", params={"strategy_id": "ref"})).json()["backtests"]
    assert [b["backtest_id"] for b in listed] == [bid]

    for body, field in (({**run, "strategy_version": 3}, "strategy_version"),
                        ({**run, "strategy_id": "nope"}, "strategy_id"),
                        ({**run, "strategy": sma()}, "strategy_version"),
                        ({k: v for k, v in run.items() if k not in ("strategy_id", "strategy_version")}, "strategy")):
        refused = await c.post("/api/v1/backtests", json=body)
        assert refused.status_code == 400 and fields(refused)[0] == field, refused.text
    # bob cannot run alice's strategy: it is exactly one he does not have.
    theirs = await c.post("/api/v1/backtests", json=run, headers=stack["keys"]["bob"])
    absent = await c.post("/api/v1/backtests", json={**run, "strategy_id": "zzz"}, headers=stack["keys"]["bob"])
    assert theirs.status_code == absent.status_code == 400
    assert theirs.json()["message"].replace("'ref'", "'X'") == absent.json()["message"].replace("'zzz'", "'X'")
    await c.delete("/api/v1/strategies/ref")


ROUTES = [
    ("GET", "/api/v1/strategies/{id}", None),
    ("GET", "/api/v1/strategies/{id}?version=1", None),
    ("GET", "/api/v1/strategies/{id}/versions", None),
    ("PUT", "/api/v1/strategies/{id}", {"strategy": sma(3, 9)}),
    ("PUT", "/api/v1/strategies/{id}", {"strategy": sma(3, 9), "expected_version": 1}),
    ("DELETE", "/api/v1/strategies/{id}", None),
]


async def test_the_matrix_covers_every_route_with_an_id() -> None:
    from services.gateway.app import default_services
    from services.gateway.bindings import compile_bindings

    served = {(b.http_method, b.template.template.replace("{strategy_id}", "{id}"))
              for b in compile_bindings(default_services()) if "strategy_id" in b.bound_fields()
              and b.template.template.startswith("/api/v1/strategies")}
    assert served == {(method, path.split("?")[0]) for method, path, _ in ROUTES}


@pytest.mark.parametrize("method,path,body", ROUTES)
async def test_another_users_strategy_is_exactly_a_missing_one(stack: dict[str, Any], method: str, path: str,
                                                               body: dict[str, Any] | None) -> None:
    c: httpx.AsyncClient = stack["alice"]
    sid = "private"
    r = await c.post("/api/v1/strategies", json={"strategy_id": sid, "strategy": sma()})
    assert r.status_code in (200, 409)
    bob = stack["keys"]["bob"]
    theirs = await c.request(method, path.format(id=sid), json=body, headers=bob)
    absent = await c.request(method, path.format(id="absent"), json=body, headers=bob)
    assert theirs.status_code == absent.status_code == 404, theirs.text
    assert theirs.headers.get("content-type") == absent.headers.get("content-type")
    assert theirs.json()["message"].replace(sid, "<id>") == absent.json()["message"].replace("absent", "<id>")
    assert ([json.dumps(d, sort_keys=True).replace(sid, "<id>") for d in theirs.json()["details"]]
            == [json.dumps(d, sort_keys=True).replace("absent", "<id>") for d in absent.json()["details"]])
    mine = await c.get(f"/api/v1/strategies/{sid}")
    assert mine.status_code == 200 and mine.json()["version"] == 1
    assert (await c.get("/api/v1/strategies", headers=bob)).json().get("strategies", []) == []
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as anonymous:
        assert (await anonymous.get("/api/v1/strategies")).status_code == 401
