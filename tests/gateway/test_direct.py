"""The app's direct path for unary calls (app.DirectUnary) answers exactly what the middleware
stack answers, and uvicorn runs on httptools (raw_response, error_parts and `dumps`:
test_direct_pieces.py).

The comparisons call the ASGI app in-process twice per request, once with the direct path and
once without (`app.direct = None`: every request through the Starlette stack), against the
session's gRPC engine double, and compare status, headers and body byte for byte.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import pytest
import pytest_asyncio
from starlette.responses import Response
from starlette.routing import Mount, Route

from services.gateway import app as app_module
from services.gateway import endpoints
from services.gateway.app import DirectUnary, GatewayApp, build_app, build_server
from services.gateway.settings import GatewaySettings

from .conftest import N_EVENTS, EngineHandle, FakeBacktestService, StartGateway, events_of, parse_sse, services

pytestmark = pytest.mark.asyncio(loop_scope="session")


# ---- in-process ASGI calls -----------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(engine: EngineHandle) -> AsyncIterator[GatewayApp]:
    gateway = build_app(engine.target, settings=GatewaySettings(docs_dir=None), services=services())
    assert gateway.direct is not None
    yield gateway
    await gateway.state.engine.close()


async def asgi(app: GatewayApp, method: str, url: str, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request through `app`: (status, raw headers, whole body)."""
    path, _, query = url.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": unquote(path), "raw_path": path.encode(),
             "query_string": query.encode(), "root_path": "",
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {}}
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await asyncio.wait_for(app(scope, receive, send), 10)
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], list(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


async def both_ways(app: GatewayApp, method: str, url: str, headers: dict[str, str] | None = None,
                    body: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The response with the direct path and without it, asserted equal; returns it."""
    headers = {"x-request-id": "req-1", **(headers or {})}  # else each answer has an id of its own
    direct = await asgi(app, method, url, headers, body)
    saved, app.direct = app.direct, None
    try:
        stack = await asgi(app, method, url, headers, body)
    finally:
        app.direct = saved
    assert direct == stack, (method, url, headers)
    return direct


GZIP = {"accept-encoding": "gzip, deflate"}
IDENTITY = {"accept-encoding": "identity"}

# (method, URL, request headers, body)
SAME: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", "/api/v1/backtests/bt-1", GZIP, b""),  # large JSON, gzipped
    ("GET", "/api/v1/backtests/bt-1", IDENTITY, b""),  # large JSON, Vary only
    ("GET", "/api/v1/backtests/bt-1", {}, b""),
    ("GET", "/api/v1/backtests/bt-1?omit_days=true", GZIP, b""),  # small JSON: untouched
    ("GET", "/api/v1/backtests/meta?omit_days=1", GZIP, b""),  # the engine's initial metadata
    ("GET", "/api/v1/backtests/bad-unicode", GZIP, b""),
    ("GET", "/api/v1/backtests/code-NOT_FOUND", GZIP, b""),
    ("GET", "/api/v1/backtests/code-UNAVAILABLE", GZIP, b""),  # Retry-After
    ("GET", "/api/v1/backtests/rich", {}, b""),
    ("GET", "/api/v1/backtests/retry", {}, b""),
    ("GET", "/api/v1/backtests/bt-1?omit_days=maybe", {}, b""),  # 400 before the call
    ("GET", "/api/v1/backtests/bt-1", {"grpc-timeout": "soon"}, b""),
    ("GET", "/api/v1/backtests/a:b", {}, b""),
    ("GET", "/api/v1/datasets", {"authorization": "Bearer x", "grpc-metadata-tenant": "acme",
                                 "x-forwarded-for": "10.0.0.1"}, b""),
    ("GET", "/api/v1/datasets", {"grpc-metadata-bad key": "x"}, b""),
    ("GET", "/api/v1/backtests?status=NOPE", {}, b""),
    ("POST", "/api/v1/backtests", {"content-type": "application/json"},
     json.dumps({"symbol": "SIM-NIFTY", "strategy": {"name": "x"}}).encode()),
    ("POST", "/api/v1/backtests", {"content-type": "text/plain"}, b"{}"),  # 415
    ("POST", "/api/v1/backtests/bt-1:cancel", GZIP, b""),
    ("DELETE", "/api/v1/backtests/bt-1", {}, b""),
    ("GET", "/api/v1/backtests/bt-1/days/2024-01-02", GZIP, b""),
    ("GET", "/test/v1/tags/x?tags=a&tags=b", {}, b""),  # a response_body rule
    ("GET", "/test/v1/render/x/note.txt?note=" + "h%C3%A9llo" * 300, GZIP, b""),  # unary HttpBody, via GZip
    ("GET", "/test/v1/render/x/note.txt?note=hi", GZIP, b""),
    ("POST", "/test/v1/uploads/u1?label=first", {"content-type": "image/png"}, bytes(range(256)) * 4),
    # Client streams (uploads): the body streamed as messages, the reply as JSON.
    ("POST", "/test/v1/ingest/i1?tags=a&tags=b&inner.level=3", {"content-type": "text/csv"}, bytes(range(256)) * 4),
    ("POST", "/api/v1/datasets/ABC:upload?timezone=UTC", GZIP, b"time,open\n" * 200),
    ("POST", "/api/v1/datasets/INVALID:upload", {}, b"x"),  # 400 with field violations
    ("POST", "/api/v1/datasets/TOO-LARGE:upload", {}, b"x"),  # 413
    ("POST", "/api/v1/datasets/ABC:upload?nope=1", {}, b"x"),  # 400 before the call
    # Not for the direct path: the stack answers both times.
    ("PATCH", "/api/v1/backtests/bt-1", {}, b""),  # 405
    ("GET", "/api/v1/backtests/", {}, b""),  # 404
    ("GET", "/healthz", GZIP, b""),
    ("GET", "/openapi.json", GZIP, b""),
    ("GET", "/test/v1/count/3", {"accept": "application/x-ndjson"}, b""),  # a stream
]


@pytest.mark.parametrize(("method", "url", "headers", "body"), SAME, ids=[f"{m} {u[:60]}" for m, u, *_ in SAME])
async def test_the_direct_path_answers_what_the_stack_answers(app: GatewayApp, fake: FakeBacktestService,
                                                              method: str, url: str, headers: dict[str, str],
                                                              body: bytes) -> None:
    status, raw, content = await both_ways(app, method, url, headers, body)
    assert status != 500, content
    if dict(raw).get(b"content-encoding") == b"gzip":
        assert gzip.decompress(content)


async def test_gzip_headers_of_the_direct_path(app: GatewayApp, fake: FakeBacktestService) -> None:
    status, raw, body = await asgi(app, "GET", "/api/v1/backtests/bt-1", {**GZIP, "x-request-id": "r-7"})
    assert status == 200
    assert [k for k, _ in raw] == [b"content-length", b"content-type", b"vary", b"content-encoding",
                                   b"x-request-id"]
    headers = dict(raw)
    assert headers[b"vary"] == b"Accept-Encoding" and headers[b"x-request-id"] == b"r-7"
    assert int(headers[b"content-length"]) == len(body)
    assert len(json.loads(gzip.decompress(body))["daily_summaries"]) == 400


@pytest.mark.parametrize("past", [0, 1])
async def test_the_gzip_threshold_is_the_same(app: GatewayApp, engine: EngineHandle, fake: FakeBacktestService,
                                              past: int) -> None:
    """gzip_min_bytes at the size of the body (compressed) and one past it (not)."""
    length = len((await asgi(app, "GET", "/api/v1/backtests/bt-1?omit_days=true", IDENTITY))[2])
    gateway = build_app(engine.target, settings=GatewaySettings(docs_dir=None, gzip_min_bytes=length + past),
                        services=services())
    try:
        for headers in (GZIP, IDENTITY):
            _, raw, _ = await both_ways(gateway, "GET", "/api/v1/backtests/bt-1?omit_days=true", headers)
            assert (b"vary" in dict(raw)) == (past == 0)
            assert (b"content-encoding" in dict(raw)) == (past == 0 and headers is GZIP)
    finally:
        await gateway.state.engine.close()


async def test_a_large_body_is_left_to_the_gzip_middleware(app: GatewayApp, fake: FakeBacktestService,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Starlette compresses large bodies in a worker thread: the direct path hands those to it.
    monkeypatch.setattr(app_module, "_GZIP_INLINE_MAX", 2048)
    calls = []
    assert app.direct is not None
    original = app.direct._gzip

    async def spy(*args: Any) -> None:
        calls.append(args)
        await original(*args)

    monkeypatch.setattr(app.direct, "_gzip", spy)
    _, raw, body = await both_ways(app, "GET", "/api/v1/backtests/bt-1", GZIP)
    assert len(calls) == 1 and dict(raw)[b"content-encoding"] == b"gzip"
    assert len(json.loads(gzip.decompress(body))["daily_summaries"]) == 400


async def test_an_unexpected_failure_is_the_same_500(app: GatewayApp, fake: FakeBacktestService,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(endpoints, "response_json", broken)
    status, raw, body = await both_ways(app, "GET", "/api/v1/datasets", {"x-request-id": "req-500"})
    assert status == 500 and b"secret" not in body
    assert json.loads(body)["message"] == "internal error in the gateway (request id req-500)"
    assert dict(raw)[b"x-request-id"] == b"req-500"
    assert sum("req-500" in rec.getMessage() and rec.exc_info is not None for rec in caplog.records) == 2


async def test_a_made_request_id_reaches_the_engine(app: GatewayApp, fake: FakeBacktestService) -> None:
    _, raw, _ = await asgi(app, "GET", "/api/v1/datasets")
    rid = dict(raw)[b"x-request-id"].decode()
    assert len(rid) == 32 and fake.last("ListDatasets").metadata["x-request-id"] == rid


# ---- which requests take the direct path ------------------------------------------------------------

def _scope(method: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": root_path,
            "headers": [], "query_string": b""}


@pytest.mark.parametrize(("method", "path", "rpc"), [
    ("GET", "/api/v1/backtests/bt-1", "GetBacktest"),
    ("GET", "/api/v1/backtests", "ListBacktests"),
    ("POST", "/api/v1/backtests/bt-1:cancel", "CancelBacktest"),
    ("GET", "/test/v1/render/x/note.txt", "Render"),
    ("GET", "/api/v1/backtests/bt-1/stream", None),  # a stream
    ("GET", "/api/v1/backtests/bt-1/archive.zip", None),  # a streamed download
    ("PATCH", "/api/v1/backtests/bt-1", None),  # 405
    ("GET", "/api/v1/nothing", None),  # 404
    ("GET", "/healthz", None),
    ("GET", "/", None),
    ("GET", "/ui/app.js", None),
    ("GET", "/ui/strategies.json", None),
    ("GET", "/docs", None),
])
async def test_only_unary_bindings_take_the_direct_path(app: GatewayApp, method: str, path: str,
                                                        rpc: str | None) -> None:
    assert app.direct is not None
    route = app.direct.route_for(_scope(method, path))
    assert (route.binding.method.name if route else None) == rpc


async def test_a_root_path_or_a_late_route_turns_it_off(engine: EngineHandle) -> None:
    gateway = build_app(engine.target, settings=GatewaySettings(docs_dir=None), services=services())
    assert gateway.direct is not None
    assert gateway.direct.route_for(_scope("GET", "/api/v1/backtests/bt-1", root_path="/gw")) is None
    assert gateway.direct.route_count == len(gateway.router.routes)
    gateway.router.routes.append(Route("/api/v1/backtests/x", lambda request: Response()))
    assert gateway.direct.route_count != len(gateway.router.routes)  # GatewayApp then skips it


async def test_cors_turns_it_off(engine: EngineHandle) -> None:
    gateway = build_app(engine.target, settings=GatewaySettings(docs_dir=None, cors_origins=("http://a.test",)),
                        services=services())
    assert gateway.direct is None


async def test_direct_unary_refuses_routes_it_cannot_read() -> None:
    binding_route = next(r for r in build_app("127.0.0.1:1", settings=GatewaySettings(docs_dir=None)).router.routes
                         if isinstance(r, endpoints.BindingRoute))
    with pytest.raises(ValueError, match="follows the bindings"):
        DirectUnary([binding_route, Route("/x", lambda request: Response())], 1024)
    with pytest.raises(ValueError, match="cannot tell"):
        DirectUnary([Route("/x/{y}", lambda request: Response()), binding_route], 1024)
    direct = DirectUnary([Route("/x", lambda request: Response()), Mount("/m/", routes=[]), binding_route], 1024)
    assert direct.route_for(_scope("GET", "/x")) is None and direct.route_for(_scope("GET", "/m/a")) is None


# ---- the server -----------------------------------------------------------------------------------

async def test_uvicorn_parses_http_with_httptools() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    server = build_server(GatewaySettings(docs_dir=None, http_addr="127.0.0.1:0"), "127.0.0.1:1",
                          log_config=None)
    server.config.load()
    assert issubclass(server.config.http_protocol_class, HttpToolsProtocol)


async def test_a_unary_call_over_real_http(start_gateway: StartGateway, fake: FakeBacktestService) -> None:
    import httpx

    url = await start_gateway()
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.get("/api/v1/backtests/bt-1", headers={"accept-encoding": "gzip", "x-request-id": "over-http"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.headers["x-request-id"] == "over-http" and r.headers["vary"] == "Accept-Encoding"
        assert len(r.json()["daily_summaries"]) == 400
        r = await c.get("/api/v1/backtests/bt-1?omit_days=true")
        assert r.json()["backtest_id"] == "bt-1" and "content-encoding" not in r.headers


async def test_main_runs_on_uvloop_and_proxies(engine: EngineHandle, fake: FakeBacktestService) -> None:
    """`hindsight gateway` (main()) on uvloop, in front of the engine double: a unary call, an
    event stream, then SIGINT."""
    import os
    import signal
    import socket
    import sys

    import httpx
    import uvloop

    assert app_module.event_loop_factory() is uvloop.new_event_loop
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HINDSIGHT_HTTP_ADDR": f"127.0.0.1:{port}", "HINDSIGHT_ENGINE_ADDR": engine.target,
           "HINDSIGHT_LOG_LEVEL": "warning"}
    code = ("import asyncio, services.gateway.app as a; import uvloop; real = a.event_loop_factory; "
            "a.event_loop_factory = lambda: (print('loop factory', real() is uvloop.new_event_loop, flush=True), "
            "real())[1]; raise SystemExit(a.main())")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(300):
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None
                await asyncio.sleep(0.1)
            r = await c.get("/api/v1/backtests/bt-1", headers={"accept-encoding": "gzip"})
            assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
            assert len(r.json()["daily_summaries"]) == 400
            assert (await c.get("/api/v1/backtests/code-NOT_FOUND")).status_code == 404
            stream = await c.get("/api/v1/backtests/bt-1/stream")
            assert stream.status_code == 200 and len(events_of(parse_sse(stream.text))) == N_EVENTS
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out
    assert b"loop factory True" in out and b"Traceback" not in out
