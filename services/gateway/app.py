"""The gateway application: `build_app()` for tests and embedding, `serve()` and `main()` to run it.

Routes are data: one `BindingRoute` per `google.api.http` rule, plus /healthz, /readyz,
/openapi.json, /docs and the dashboard's static files (/ and /ui/…). Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import socket
import sys
import uuid
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import uvicorn
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bindings import Binding, compile_bindings, known_verbs
from .comments import load_comments
from .endpoints import REQUEST_ID_KEY, BindingRoute, Engine, ResponseParts, error_parts, error_response, make_endpoint
from .errors import make_status
from .openapi import build_openapi
from .session import refuse_exposed_local_engine, session_routes
from .settings import GatewaySettings, split_host_port
from .streams import NDJSON_MEDIA_TYPE
from .transcoding import dumps

logger = logging.getLogger("hindsight.gateway")

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# Event streams and downloads are never compressed: gzip would hold back events until its
# buffer fills, and zips do not shrink.
_NO_GZIP = (*DEFAULT_EXCLUDED_CONTENT_TYPES, NDJSON_MEDIA_TYPE, "application/jsonl", "application/octet-stream")
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def default_services() -> list[ServiceDescriptor]:
    from hindsight.v1 import analytics_pb2, backtest_service_pb2, datasets_pb2, optimization_pb2, strategies_pb2

    return [service for module in (backtest_service_pb2, optimization_pb2, datasets_pb2, strategies_pb2, analytics_pb2)
            for service in module.DESCRIPTOR.services_by_name.values()]


def build_app(target: str | grpc.aio.Channel | None = None, *, settings: GatewaySettings | None = None,
              services: Sequence[ServiceDescriptor] | None = None) -> Starlette:
    """The gateway for `services` (default: hindsight.v1's) in front of the engine at `target`.

    `target` is a gRPC address (default: settings.engine_addr), whose channel the app opens and
    closes, or an open `grpc.aio.Channel`, which stays the caller's.
    """
    settings = settings if settings is not None else GatewaySettings.from_env()
    services = list(services) if services is not None else default_services()
    bindings = compile_bindings(services)
    engine = Engine(settings.engine_addr if target is None else target, settings)
    comments: dict[str, str] = {}
    for package in sorted({s.file.package for s in services}):
        comments.update(load_comments(package))
    openapi = dumps(build_openapi(bindings, comments=comments, max_upload_bytes=settings.max_upload_bytes))

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        return await _readiness(engine, [s.full_name for s in services], settings)

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def docs(request: Request) -> Response:
        if settings.docs_dir is None:
            status = make_status(grpc.StatusCode.NOT_FOUND,
                                 "API docs need the npm package swagger-ui-dist: run `make setup`, or point "
                                 "HINDSIGHT_DOCS_DIR at an installed copy. The spec itself is at /openapi.json.")
            return error_response(status)
        return HTMLResponse(_docs_page(request.scope.get("root_path", "")))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    if settings.docs_dir is not None:
        routes.append(Mount("/docs/assets", app=StaticFiles(directory=settings.docs_dir)))
    routes.extend(_dashboard_routes())
    routes.extend(session_routes(bindings, engine, settings))  # POST/DELETE /api/v1/session
    routes.extend(_binding_routes(bindings, engine, settings))

    middleware = [Middleware(RequestContextMiddleware)]
    if settings.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-Id", "Grpc-Timeout"],
            expose_headers=["X-Request-Id", "Retry-After", "Content-Disposition"]))
    middleware.append(Middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes,
                                 exclude_content_types=_NO_GZIP))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.close()

    app = GatewayApp(routes=routes, middleware=middleware, lifespan=lifespan)
    # CORS adds headers (Vary: Origin at least) to every response: then every request takes the
    # middleware stack.
    app.direct = None if settings.cors_origins else DirectUnary(app.router.routes, settings.gzip_min_bytes)
    # Paths are matched exactly, as grpc-gateway does: no redirects for trailing slashes.
    app.router.redirect_slashes = False
    app.router.default = _not_found
    app.state.bindings = bindings
    app.state.engine = engine
    app.state.settings = settings
    return app


def _binding_routes(bindings: Sequence[Binding], engine: Engine, settings: GatewaySettings) -> list[BaseRoute]:
    verbs = known_verbs(bindings)
    allowed: dict[str, list[str]] = defaultdict(list)
    for b in bindings:
        allowed[b.template.template].append(b.http_method)
    return [BindingRoute(b, make_endpoint(b, engine, settings), verbs=verbs, allowed=allowed[b.template.template])
            for b in bindings]


def _request_id_of(scope: Scope) -> str:
    """The request's X-Request-Id if it has a usable one, else a new one."""
    incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
    return incoming if incoming is not None and _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _log_unhandled(scope: Scope, rid: str) -> None:
    logger.exception("unhandled error in %s %s (request id %s)", scope.get("method"), scope.get("path"), rid)


def _internal_error(rid: str) -> ResponseParts:
    return error_parts(make_status(grpc.StatusCode.INTERNAL, f"internal error in the gateway (request id {rid})"),
                       500)


class RequestContextMiddleware:
    """Gives every request an id (X-Request-Id, passed on or made) and every failure a JSON body.

    An unexpected exception is logged with its traceback and answered 500 with a google.rpc.Status
    that names the request id, never with the traceback itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope[REQUEST_ID_KEY] = _request_id_of(scope)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            _log_unhandled(scope, rid)
            if not started:
                status, headers, body = _internal_error(rid)
                await send_with_id({"type": "http.response.start", "status": status, "headers": headers})
                await send_with_id({"type": "http.response.body", "body": body})
            # Otherwise the response is underway: returning unfinished makes the server drop the
            # connection, which is all that is left to say.


class GatewayApp(Starlette):
    """Starlette, with a direct path for the unary bindings (`DirectUnary`) in front of its stack.

    Per proxied unary call the stack cost ~50 µs, its gzip wrapper ~45 µs more (bench machine)."""

    direct: DirectUnary | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct
        if direct is not None and scope["type"] == "http" and len(self.router.routes) == direct.route_count:
            route = direct.route_for(scope)
            if route is not None:
                scope["app"] = self
                await direct.serve(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


_REPLAY_KEY = "hindsight.response"


async def _replay(scope: Scope, receive: Receive, send: Send) -> None:
    status, headers, body = scope.pop(_REPLAY_KEY)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DirectUnary:
    """Unary calls without the middleware stack: per request, one route match, one coroutine and
    the response in two ASGI messages, instead of six layers of middleware and their wrappers of
    `send` (ServerErrorMiddleware, RequestContextMiddleware, GZipMiddleware, ExceptionMiddleware,
    the router, the route).

    It answers exactly what the stack would (tests/gateway/test_direct.py compares the two byte
    for byte): the same route (every other route comes before the bindings, so a path that none
    of them claims goes to the first binding that matches it, as in the router), the request id
    of `RequestContextMiddleware` (and its JSON 500), and the response of `GZipMiddleware`, done
    inline for a JSON body (the same compression, so the same bytes) and by the middleware itself
    for anything else (a raw HttpBody, a body so large that it compresses it in a worker thread).
    A request it does not take (another route, a stream, a 405, a 404, a path under a
    root_path, any request while CORS is configured) goes through the stack as before.
    """

    def __init__(self, routes: Sequence[BaseRoute], gzip_min_bytes: int) -> None:
        self.gzip_min_bytes = gzip_min_bytes
        self._gzip = GZipMiddleware(_replay, minimum_size=gzip_min_bytes, exclude_content_types=_NO_GZIP)
        self._bindings: list[BindingRoute] = []
        exact: set[str] = set()
        prefixes: list[str] = []
        for route in routes:
            if isinstance(route, BindingRoute):
                self._bindings.append(route)
            elif self._bindings:
                raise ValueError(f"route {route!r} follows the bindings: the direct path assumes they come last")
            elif isinstance(route, Mount):
                prefixes.append(route.path.rstrip("/") + "/")
            elif isinstance(route, Route) and not route.param_convertors:
                exact.add(route.path)
            else:
                raise ValueError(f"the direct path cannot tell which paths {route!r} claims")
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        # A route added to the router later (add_route, mount) turns the direct path off.
        self.route_count = len(routes)

    def route_for(self, scope: Scope) -> BindingRoute | None:
        """The unary binding that the router would hand this request to, else None."""
        path = scope["path"]
        if scope.get("root_path") or path in self._exact or path.startswith(self._prefixes):
            return None
        for route in self._bindings:
            match, child = route.matches(scope)
            if match is Match.FULL:
                if route.endpoint.is_stream:
                    return None
                scope["route"] = route
                scope.update(child)
                return route
        return None

    async def serve(self, route: BindingRoute, scope: Scope, receive: Receive, send: Send) -> None:
        rid = scope[REQUEST_ID_KEY] = _request_id_of(scope)
        sender = _IdSender(send, rid)
        try:
            parts = await route.endpoint.unary(scope, receive)
            await self._send(parts, scope, receive, sender)
        except Exception:
            _log_unhandled(scope, rid)
            if not sender.started:
                status, headers, body = _internal_error(rid)
                await sender({"type": "http.response.start", "status": status, "headers": headers})
                await sender({"type": "http.response.body", "body": body})

    async def _send(self, parts: ResponseParts, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, body = parts
        if len(body) >= self.gzip_min_bytes:
            # GZipMiddleware's work, inline for JSON made by BindingEndpoint (its headers: the
            # engine's Grpc-Metadata-*, Retry-After, then content-length and content-type).
            if headers[-1] != (b"content-type", b"application/json") or status == 206 or \
                    len(body) >= _GZIP_INLINE_MAX or any(k in _GZIP_HEADERS for k, _ in headers):
                scope[_REPLAY_KEY] = parts
                await self._gzip(scope, receive, send)
                return
            accept = next((v for k, v in scope["headers"] if k == b"accept-encoding"), b"")
            if b"gzip" in accept:
                # The bytes of GZipMiddleware's compressobj(9, DEFLATED, 31) compress + flush, in
                # half the time.
                body = zlib.compress(body, 9, 16 + zlib.MAX_WBITS)
                length = (b"content-length", str(len(body)).encode("latin-1"))
                headers = [length if k == b"content-length" else (k, v) for k, v in headers]
                headers.append((b"vary", b"Accept-Encoding"))
                headers.append((b"content-encoding", b"gzip"))
            else:
                headers.append((b"vary", b"Accept-Encoding"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# Headers whose presence changes what GZipMiddleware does; and the body size from which it
# compresses in a worker thread (starlette's thread_minimum_size), left to it.
_GZIP_HEADERS = frozenset({b"content-encoding", b"vary"})
_GZIP_INLINE_MAX = 128 * 1024


class _IdSender:
    """RequestContextMiddleware's send: the response start gets the request id."""

    __slots__ = ("_send", "_rid", "started")

    def __init__(self, send: Send, rid: str) -> None:
        self._send = send
        self._rid = rid
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            if not any(k.lower() == b"x-request-id" for k, _ in headers):
                headers.append((b"x-request-id", self._rid.encode("latin-1")))
            message["headers"] = headers
        await self._send(message)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    status = make_status(grpc.StatusCode.NOT_FOUND, f"no route for {scope.get('method')} {scope.get('path')}")
    await error_response(status, 404)(scope, receive, send)


async def _readiness(engine: Engine, services: Sequence[str], settings: GatewaySettings) -> Response:
    check = engine.channel.unary_unary(
        _HEALTH_CHECK, request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    statuses: dict[str, str] = {}
    try:
        replies = await asyncio.gather(*(check(health_pb2.HealthCheckRequest(service=name),
                                               timeout=settings.ready_timeout_s) for name in services))
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        body: dict[str, Any] = {"status": "UNREACHABLE" if code != grpc.StatusCode.NOT_FOUND else "UNKNOWN_SERVICE",
                "engine": engine.target, "message": f"{code.name}: {exc.details() if hasattr(exc, 'details') else ''}"}
        return Response(dumps(body), status_code=503, media_type="application/json",
                        headers={"retry-after": str(settings.retry_after_s)})
    for name, reply in zip(services, replies, strict=True):
        statuses[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    ready = all(s == "SERVING" for s in statuses.values())
    body = {"status": "SERVING" if ready else "NOT_SERVING", "engine": engine.target, "services": statuses}
    headers = {} if ready else {"retry-after": str(settings.retry_after_s)}
    return Response(dumps(body), status_code=200 if ready else 503, media_type="application/json", headers=headers)


# ---- the dashboard: static files, nothing generated from the protos ----------------------------

_STATIC_DIR = Path(__file__).resolve().parent / "static"
_EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "strategies"
# Where `make setup` installs the charting library (npm `lightweight-charts`). The page says so
# when it is missing and works without charts.
_CHARTS_DIR = Path(__file__).resolve().parents[2] / "node_modules" / "lightweight-charts" / "dist"


def _dashboard_routes() -> list[BaseRoute]:
    """`/` (the page), `/ui/strategies.json` (the example strategies, read per request),
    `/ui/vendor/…` (the charting library) and `/ui/…` (the page's own files)."""

    async def index(request: Request) -> Response:
        # no-cache: revalidate (ETag) on every load, so an upgraded gateway never serves a stale page.
        return FileResponse(_STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache"})

    async def strategies(request: Request) -> Response:
        return JSONResponse({"strategies": _example_strategies()})

    # check_dir=False: a missing folder answers 404 per request instead of failing start-up.
    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/strategies.json", strategies, methods=["GET"]),
        Mount("/ui/vendor", app=StaticFiles(directory=_CHARTS_DIR, check_dir=False)),
        Mount("/ui", app=StaticFiles(directory=_STATIC_DIR, check_dir=False)),
    ]


def _example_strategies() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(_EXAMPLES_DIR.glob("*.json")) if _EXAMPLES_DIR.is_dir() else ():
        try:
            strategy = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("skipping example strategy %s: %s", path.name, exc)
            continue
        out.append({"file": path.name, "name": strategy.get("name") or path.stem, "strategy": strategy})
    return out


def _docs_page(root: str) -> str:
    # Everything is served from here (no CDN); validatorUrl null stops Swagger UI from sending
    # the spec to validator.swagger.io.
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Hindsight API</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{root}/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  validatorUrl: null, defaultModelsExpandDepth: 0}});
</script>
</body>
</html>
"""


class GatewayServer(uvicorn.Server):
    """uvicorn's server, ending event streams as soon as shutdown begins.

    Plain uvicorn waits for open responses until its grace period runs out; event streams never
    finish on their own, so each would be cut off at the end of it. Ending them first lets every
    client resume at once, from wherever another gateway process serves it.
    """

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self._closing = closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._closing.set()
        await super().shutdown(sockets=sockets)


def build_server(settings: GatewaySettings | None = None, target: str | grpc.aio.Channel | None = None, *,
                 services: Sequence[ServiceDescriptor] | None = None, **config: Any) -> GatewayServer:
    """A uvicorn server for the gateway, not yet started (`await server.serve()`).

    `config` overrides uvicorn.Config's arguments (tests pass log_config=None, for one).
    """
    from .protocol import protocol_class

    settings = settings if settings is not None else GatewaySettings.from_env()
    host, port = split_host_port(settings.http_addr)
    app = build_app(target, settings=settings, services=services)
    # uvicorn's httptools protocol (its C HTTP/1.1 parser, a declared dependency: 0.1-0.4 ms
    # less per request than h11) with connection limits, a header-read timeout, JSON 400s and
    # a slow-reader timeout (protocol.py).
    options: dict[str, Any] = {"host": host, "port": port, "lifespan": "on", "ws": "none",
                               "http": protocol_class(settings), "log_level": settings.log_level,
                               "timeout_graceful_shutdown": math.ceil(settings.shutdown_grace_s)}
    options.update(config)
    return GatewayServer(uvicorn.Config(app, **options), closing=app.state.engine.closing)


async def serve(settings: GatewaySettings | None = None, target: str | grpc.aio.Channel | None = None) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    settings = settings if settings is not None else GatewaySettings.from_env()
    await refuse_exposed_local_engine(settings, target)  # a public address needs an engine with users
    await build_server(settings, target).serve()


def main(argv: Sequence[str] | None = None) -> int:
    """`hindsight gateway`: serve on HINDSIGHT_HTTP_ADDR in front of HINDSIGHT_ENGINE_ADDR."""
    try:
        settings = GatewaySettings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = split_host_port(settings.http_addr)
    shown = f"[{host}]" if ":" in host else host
    print(f"Hindsight gateway on http://{shown}:{port}/ (engine at {settings.engine_addr})", flush=True)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's (None).

    libuv's loop takes ~0.1 ms less per proxied unary call than asyncio's selector loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)
