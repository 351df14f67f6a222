"""The dashboard's session cookie (services/gateway/session.py) through a real engine with users.

A real engine (services.engine.server, SIM-NIFTY, a users database with alice and bob) and a
real gateway over HTTP: sign in with an API key, the cookie alone for reads and event streams,
the origin check on state-changing requests, sign-out, and the refusal of a gateway bound to a
public address in front of an engine in local mode.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.gateway.session import COOKIE, ExposedLocalEngine, refuse_exposed_local_engine
from services.gateway.settings import GatewaySettings

from .conftest import StartGateway, events_of, parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]
FOREIGN = "http://evil.example"


@dataclasses.dataclass
class Stack:
    url: str
    keys: dict[str, str]  # user → API key
    engine_target: str

    def cookie(self, user: str) -> dict[str, str]:
        return {"cookie": f"{COOKIE}={self.keys[user]}"}

    def bearer(self, user: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[user]}"}


async def _engine(data: Path, users_file: Path) -> Any:
    from services.engine.server import create_server
    from services.engine.settings import EngineSettings

    settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=data, store_dir=data / "store", users_file=users_file,
                              max_concurrent=2, fsync=False, shutdown_grace_seconds=0.5)
    engine = await create_server(settings, "127.0.0.1:0")
    await engine.start()
    return engine


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from services.engine.core.catalog import Catalog

    data = tmp_path_factory.mktemp("session-data")
    Catalog(data).load("SIM-NIFTY", None, None)
    return data


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(start_gateway: StartGateway, data_dir: Path) -> AsyncIterator[Stack]:
    """An engine whose users database has alice and bob (one API key each), and a gateway."""
    from services.engine.auth import UserStore

    users_file = data_dir / "auth-users.sqlite3"
    users = UserStore(users_file)
    keys = {}
    for name in ("alice", "bob"):
        users.add_user(name)
        keys[name] = users.issue_key(name)
    users.close()
    engine = await _engine(data_dir, users_file)
    try:
        target = f"127.0.0.1:{engine.port}"
        yield Stack(await start_gateway(target), keys, target)
    finally:
        await engine.stop(0.2)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def local_engine(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> AsyncIterator[str]:
    """An engine in local mode (an empty users database): its target."""
    engine = await _engine(data_dir, tmp_path_factory.mktemp("no-users") / "users.sqlite3")
    try:
        yield f"127.0.0.1:{engine.port}"
    finally:
        await engine.stop(0.2)


def start_body(days: tuple[str, str] = ("2024-01-01", "2024-01-03")) -> dict[str, Any]:
    strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
    return {"strategy": strategy, "strategy_id": "rsi", "symbol": "SIM-NIFTY",
            "start_date": days[0], "end_date": days[1]}


def set_cookie(r: httpx.Response) -> str:
    values = r.headers.get_list("set-cookie")
    assert len(values) == 1, values
    return values[0]


def attributes(cookie: str) -> dict[str, str]:
    parts = [p.strip() for p in cookie.split(";")]
    return {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}


# ---- signing in -------------------------------------------------------------------------------

async def test_sign_in_sets_an_http_only_strict_cookie(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        r = await c.post("/api/v1/session", json={"token": stack.keys["alice"]}, headers={"origin": stack.url})
        assert r.status_code == 200, r.text
        caller = r.json()
        assert caller["user_id"] == "alice" and caller["role"] == "user" and caller["auth_method"] == "api_key"
        assert {q["name"] for q in caller["quotas"]} >= {"running_backtests"}
        assert caller == (await c.get("/api/v1/me", headers=stack.bearer("alice"))).json()
        cookie = set_cookie(r)
        assert cookie.startswith(f"{COOKIE}={stack.keys['alice']};")
        attrs = attributes(cookie)
        assert "httponly" in attrs and attrs["samesite"] == "Strict" and attrs["path"] == "/"
        assert attrs["max-age"] == str(GatewaySettings().session_max_age_s) == str(12 * 3600)
        assert "secure" not in attrs
        assert r.headers["cache-control"] == "no-store"

        # Over https (a TLS-terminating proxy says so), the cookie is Secure.
        r = await c.post("/api/v1/session", json={"token": stack.keys["alice"]},
                         headers={"x-forwarded-proto": "https"})
        assert r.status_code == 200 and "secure" in attributes(set_cookie(r))


async def test_a_bad_token_is_401_with_www_authenticate(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        for token in ("hsk_0123456789abcdef_nope", "not-a-token"):
            r = await c.post("/api/v1/session", json={"token": token})
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"].startswith('Bearer realm="hindsight"')
            body = r.json()
            assert body["code"] == 16 and body["message"] and body["details"] == []
            assert "set-cookie" not in r.headers
        # A revoked-looking key id: the same answer.
        key_id = stack.keys["alice"].split("_")[1]
        r = await c.post("/api/v1/session", json={"token": f"hsk_{key_id}_wrong-secret"})
        assert r.status_code == 401 and r.json()["code"] == 16


@pytest.mark.parametrize("body, field", [
    (b"", "token"), (b"not json", "token"), (b"[]", "token"), (b"{}", "token"), (b'{"token": 5}', "token"),
    (b'{"token": ""}', "token"), (b'{"token": "a b"}', "token"), (b'{"token": "x", "user": "y"}', "user"),
    (json.dumps({"token": "x" * 8193}).encode(), "token"), (b"[" * 50_000, "token"), (b"\xff\xfe", "token"),
])
async def test_a_malformed_sign_in_is_400_naming_the_field(stack: Stack, body: bytes, field: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        r = await c.post("/api/v1/session", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        payload = r.json()
        assert payload["code"] == 3
        violations = payload["details"][0]["field_violations"]
        assert violations[0]["field"] == field
        assert field in payload["message"] or field == "token"


async def test_sign_in_refuses_other_content_types_methods_and_sites(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        r = await c.post("/api/v1/session", content=f"token={stack.keys['alice']}",
                         headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415 and "set-cookie" not in r.headers
        r = await c.get("/api/v1/session")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, POST" and r.json()["code"] == 12
        # Another site's page cannot sign the browser in (login CSRF) or out.
        r = await c.post("/api/v1/session", json={"token": stack.keys["alice"]}, headers={"origin": FOREIGN})
        assert r.status_code == 403 and "set-cookie" not in r.headers
        assert r.json()["message"].startswith("cross-origin request refused: ")
        r = await c.delete("/api/v1/session", headers={"origin": FOREIGN})
        assert r.status_code == 403


# ---- the cookie on proxied requests ---------------------------------------------------------------

async def test_the_cookie_alone_authenticates_reads(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        r = await c.get("/api/v1/backtests")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith('Bearer realm="hindsight"')
        r = await c.get("/api/v1/backtests", headers=stack.cookie("alice"))
        assert r.status_code == 200, r.text
        me = await c.get("/api/v1/me", headers={"cookie": f"a=1; {COOKIE}={stack.keys['bob']}; b=2"})
        assert me.json()["user_id"] == "bob"
        # An Authorization header wins over the cookie.
        me = await c.get("/api/v1/me", headers={**stack.cookie("bob"), **stack.bearer("alice")})
        assert me.json()["user_id"] == "alice"
        # A cookie that is not a key is refused by the engine like any bad token.
        r = await c.get("/api/v1/backtests", headers={"cookie": f"{COOKIE}=hsk_0123456789abcdef_nope"})
        assert r.status_code == 401
        # One no sign-in could have set counts as none.
        r = await c.get("/api/v1/backtests", headers={"cookie": f'{COOKIE}="a b"'})
        assert r.status_code == 401 and "missing credentials" in r.json()["message"]


async def test_state_changing_requests_with_the_cookie_need_our_origin(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json=start_body(), headers={**stack.cookie("alice"), "origin": FOREIGN})
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["code"] == 7 and body["details"] == []
        assert body["message"].startswith("cross-origin request refused: ") and FOREIGN in body["message"]

        r = await c.post("/api/v1/backtests", json=start_body(), headers=stack.cookie("alice"))
        assert r.status_code == 403 and r.json()["code"] == 7  # neither Origin nor Referer
        assert "Origin or Referer" in r.json()["message"]
        r = await c.post("/api/v1/backtests", json=start_body(), headers={**stack.cookie("alice"), "origin": "null"})
        assert r.status_code == 403
        r = await c.post("/api/v1/backtests", json=start_body(),
                         headers={**stack.cookie("alice"), "referer": f"{FOREIGN}/page"})
        assert r.status_code == 403
        r = await c.delete("/api/v1/backtests/bt_x", headers={**stack.cookie("alice"), "origin": FOREIGN})
        assert r.status_code == 403

        r = await c.post("/api/v1/backtests", json=start_body(), headers={**stack.cookie("alice"), "origin": stack.url})
        assert r.status_code == 200, r.text
        assert r.json()["backtest_id"]
        # The default port may be left out or written; the Referer of one of our pages will do.
        r = await c.post("/api/v1/strategies:validate", json={"strategy": start_body()["strategy"]},
                         headers={**stack.cookie("alice"), "referer": f"{stack.url}/#bt=x"})
        assert r.status_code == 200, r.text

        # Origins compare as origins: case and the default port do not matter; scheme does.
        validate = {"strategy": start_body()["strategy"]}
        for origin, status in (("HTTP://GW.example:80", 200), ("http://gw.example", 200),
                               ("https://gw.example", 403), ("http://gw.example:8080", 403)):
            r = await c.post("/api/v1/strategies:validate", json=validate,
                             headers={**stack.cookie("alice"), "host": "gw.example", "origin": origin})
            assert r.status_code == status, (origin, r.text)
        r = await c.post("/api/v1/strategies:validate", json=validate, headers={
            **stack.cookie("alice"), "host": "gw.example", "x-forwarded-proto": "https", "origin": "https://gw.example"})
        assert r.status_code == 200, r.text

        # With the Authorization header instead of the cookie, no Origin is needed (nor checked).
        for extra in ({}, {"origin": FOREIGN}):
            r = await c.post("/api/v1/backtests", json=start_body(), headers={**stack.bearer("alice"), **extra})
            assert r.status_code == 200, r.text


async def test_configured_cors_origins_may_use_the_cookie(stack: Stack, start_gateway: StartGateway) -> None:
    url = await start_gateway(stack.engine_target, cors_origins=("http://app.example:3000",))
    validate = {"strategy": start_body()["strategy"]}
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/api/v1/strategies:validate", json=validate,
                         headers={**stack.cookie("alice"), "origin": "http://app.example:3000"})
        assert r.status_code == 200, r.text
        r = await c.post("/api/v1/strategies:validate", json=validate,
                         headers={**stack.cookie("alice"), "origin": "http://app.example"})
        assert r.status_code == 403 and r.json()["code"] == 7
        r = await c.post("/api/v1/strategies:validate", json=validate, headers={**stack.cookie("alice"), "origin": url})
        assert r.status_code == 200


async def test_the_event_stream_works_with_the_cookie_alone(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json=start_body(), headers=stack.bearer("alice"))
        assert r.status_code == 200, r.text
        bid = r.json()["backtest_id"]
        r = await c.get(f"/api/v1/backtests/{bid}/stream", headers={"accept": "text/event-stream"})
        assert r.status_code == 401
        r = await c.get(f"/api/v1/backtests/{bid}/stream",
                        headers={"accept": "text/event-stream", **stack.cookie("alice")})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kinds = [e["event"] for e in events_of(parse_sse(r.text))]
        assert kinds[0] == "backtest_started" and kinds[-1] == "backtest_completed"
        # The batched stream (what the dashboard reads) and a download, too.
        r = await c.get(f"/api/v1/backtests/{bid}/stream:batches", headers=stack.cookie("alice"))
        assert r.status_code == 200 and events_of(parse_sse(r.text))
        r = await c.get(f"/api/v1/backtests/{bid}/archive.zip", headers=stack.cookie("alice"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"


async def test_sign_out_clears_the_cookie(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        r = await c.post("/api/v1/session", json={"token": stack.keys["bob"]})
        assert r.status_code == 200 and c.cookies.get(COOKIE) == stack.keys["bob"]
        assert (await c.get("/api/v1/me")).json()["user_id"] == "bob"  # the client's jar sends it
        r = await c.delete("/api/v1/session", headers={"origin": stack.url})
        assert r.status_code == 204 and r.content == b""
        cookie = set_cookie(r)
        assert cookie.startswith(f"{COOKIE}=;")
        attrs = attributes(cookie)
        assert attrs["max-age"] == "0" and "httponly" in attrs and attrs["samesite"] == "Strict"
        assert c.cookies.get(COOKIE) is None
        r = await c.get("/api/v1/me")
        assert r.status_code == 401


async def test_another_users_backtest_is_a_missing_one(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json=start_body(), headers=stack.bearer("alice"))
        assert r.status_code == 200, r.text
        bid = r.json()["backtest_id"]
        assert (await c.get(f"/api/v1/backtests/{bid}", headers=stack.cookie("alice"))).status_code == 200
        missing = re.sub(r"[0-9a-f]{8}$", "00000000", bid)
        assert missing != bid and len(missing) == len(bid)
        for path in ("/api/v1/backtests/{}", "/api/v1/backtests/{}/stream", "/api/v1/backtests/{}/archive.zip"):
            theirs = await c.get(path.format(bid), headers=stack.cookie("bob"))
            nobody = await c.get(path.format(missing), headers=stack.cookie("bob"))
            assert theirs.status_code == nobody.status_code == 404, (path, theirs.text)
            assert theirs.text.replace(bid, "<id>") == nobody.text.replace(missing, "<id>"), path
        ids = [b["backtest_id"] for b in (await c.get("/api/v1/backtests", headers=stack.cookie("bob"))).json().get(
            "backtests", [])]
        assert bid not in ids


# ---- a public address needs an engine with users ----------------------------------------------------

async def test_a_public_gateway_refuses_a_local_mode_engine(local_engine: str) -> None:
    from services.gateway.app import serve

    settings = GatewaySettings(http_addr="0.0.0.0:0", engine_addr=local_engine, docs_dir=None)
    with pytest.raises(ExposedLocalEngine) as caught:
        await serve(settings)
    message = str(caught.value)
    assert isinstance(caught.value, SystemExit)
    assert "the engine has no users configured" in message
    assert "hindsight users add" in message and "127.0.0.1" in message
    # On loopback the local user is only this machine's: fine.
    await refuse_exposed_local_engine(dataclasses.replace(settings, http_addr="127.0.0.1:0"))
    await refuse_exposed_local_engine(dataclasses.replace(settings, http_addr="[::1]:0"))


async def test_a_public_gateway_accepts_an_engine_with_users(stack: Stack) -> None:
    settings = GatewaySettings(http_addr="0.0.0.0:8080", engine_addr=stack.engine_target, docs_dir=None)
    await refuse_exposed_local_engine(settings)  # UNAUTHENTICATED without a token: users are configured


async def test_a_public_gateway_refuses_an_unreachable_engine(closed_port: int) -> None:
    settings = GatewaySettings(http_addr="0.0.0.0:8080", engine_addr=f"127.0.0.1:{closed_port}", docs_dir=None)
    with pytest.raises(ExposedLocalEngine, match="did not answer"):
        await refuse_exposed_local_engine(settings, timeout_s=0.5)


async def test_session_max_age_setting() -> None:
    assert GatewaySettings.from_env({"HINDSIGHT_SESSION_MAX_AGE_S": "600"}).session_max_age_s == 600
    assert GatewaySettings.from_env({}).session_max_age_s == 12 * 3600
    with pytest.raises(ValueError, match="HINDSIGHT_SESSION_MAX_AGE_S"):
        GatewaySettings(session_max_age_s=0, docs_dir=None)
