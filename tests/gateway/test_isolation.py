"""Isolation through the gateway: every REST route on another user's backtest answers exactly
as it does for a missing one; lists never leak; tokens are required once users exist."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from .conftest import StartGateway, events_of, parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(start_gateway: StartGateway, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
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
        strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await c.post("/api/v1/backtests", headers=keys["alice"], json={
                "strategy": strategy, "symbol": "SIM-NIFTY", "start_date": "2024-01-01", "end_date": "2024-01-05"})
            assert r.status_code == 200, r.text
            bid = r.json()["backtest_id"]
            stream = await c.get(f"/api/v1/backtests/{bid}/stream", headers=keys["alice"])
            assert events_of(parse_sse(stream.text))[-1]["event"] == "backtest_completed"
            day = (await c.get(f"/api/v1/backtests/{bid}", headers=keys["alice"])).json()["daily_summaries"][0]["date"]
        yield {"base": base, "keys": keys, "bid": bid, "day": day}
    finally:
        await engine.stop(0.2)


ROUTES = [
    ("GET", "/api/v1/backtests/{id}", {}),
    ("POST", "/api/v1/backtests/{id}:cancel", {}),
    ("DELETE", "/api/v1/backtests/{id}", {}),
    ("GET", "/api/v1/backtests/{id}/days/{day}", {}),
    ("GET", "/api/v1/backtests/{id}/days/{day}/archive.zip", {}),
    ("GET", "/api/v1/backtests/{id}/archive.zip", {}),
    ("GET", "/api/v1/backtests/{id}/stream", {"accept": "text/event-stream"}),
    ("GET", "/api/v1/backtests/{id}/stream", {"accept": "application/x-ndjson"}),
    ("GET", "/api/v1/backtests/{id}/stream:batches", {}),
    ("GET", "/api/v1/backtests/{id}/analytics", {}),
]


async def test_the_matrix_covers_every_route_with_a_backtest_id() -> None:
    from services.gateway.app import default_services
    from services.gateway.bindings import compile_bindings

    served = {(b.http_method, b.template.template.replace("{backtest_id}", "{id}").replace("{date}", "{day}"))
              for b in compile_bindings(default_services()) if "backtest_id" in b.bound_fields()}
    assert served == {(method, path) for method, path, _ in ROUTES}


def _shape(r: httpx.Response, ident: str) -> tuple:
    body = r.text.replace(ident, "<id>")
    body = re.sub(r'"request_id":\s*"[^"]*"', '"request_id":"<rid>"', body)
    return r.status_code, r.headers.get("content-type"), body


@pytest.mark.parametrize("method,path,headers", ROUTES)
async def test_another_users_backtest_is_exactly_a_missing_one(stack: dict[str, Any], method: str, path: str,
                                                               headers: dict[str, str]) -> None:
    bid, day, bob = stack["bid"], stack["day"], stack["keys"]["bob"]
    missing = bid[:-8] + ("0" * 8 if not bid.endswith("0" * 8) else "1" * 8)
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        theirs = await c.request(method, path.format(id=bid, day=day), headers={**bob, **headers})
        absent = await c.request(method, path.format(id=missing, day=day), headers={**bob, **headers})
        assert theirs.status_code == 404, theirs.text
        assert _shape(theirs, bid) == _shape(absent, missing)
        # Nothing happened to it: its owner still reads it whole.
        mine = await c.get(f"/api/v1/backtests/{bid}", headers=stack["keys"]["alice"])
        assert mine.status_code == 200 and mine.json()["status"] == "BACKTEST_STATUS_COMPLETED"


async def test_lists_and_tokens(stack: dict[str, Any]) -> None:
    keys, bid = stack["keys"], stack["bid"]
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        assert (await c.get("/api/v1/backtests", headers=keys["bob"])).json().get("backtests", []) == []
        mine = (await c.get("/api/v1/backtests", headers=keys["alice"])).json()["backtests"]
        assert [b["backtest_id"] for b in mine] == [bid] and mine[0]["owner"] == "alice"
        denied = await c.get("/api/v1/backtests?all_users=true", headers=keys["bob"])
        assert denied.status_code == 403 and denied.json()["code"] == 7
        everyone = (await c.get("/api/v1/backtests?all_users=true", headers=keys["root"])).json()["backtests"]
        assert bid in {b["backtest_id"] for b in everyone}
        me = (await c.get("/api/v1/me", headers=keys["bob"])).json()
        assert me["user_id"] == "bob" and me["auth_method"] == "api_key"
        for headers in ({}, {"authorization": "Bearer hsk_0000000000000000_x"}, {"authorization": "Basic eDp5"}):
            r = await c.get("/api/v1/backtests", headers=headers)
            assert r.status_code == 401 and r.json()["code"] == 16
            assert r.headers["www-authenticate"].startswith('Bearer realm="hindsight"')
            s = await c.get(f"/api/v1/backtests/{bid}/stream", headers={**headers, "accept": "text/event-stream"})
            assert s.status_code == 401 and "www-authenticate" in s.headers
