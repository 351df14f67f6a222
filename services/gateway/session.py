"""The dashboard's sign-in: a session cookie that carries a bearer token.

EventSource cannot send an Authorization header, so the dashboard signs in once:
`POST /api/v1/session {"token": "..."}` checks the token with the engine (GetCaller) and sets
`hindsight_session=<token>` (HttpOnly, SameSite=Strict, Path=/, Secure over https); from then on
a request without an Authorization header but with the cookie is forwarded to the engine with
`authorization: Bearer <cookie>` (`cookie_authorization`, called by endpoints._metadata).
`DELETE /api/v1/session` clears the cookie. The gateway keeps no state: the cookie is the token,
so revoking the key signs the browser out at its next request.

Cross-site requests: SameSite=Strict keeps browsers from sending the cookie from other sites,
and a state-changing request (POST, PUT, PATCH, DELETE) authenticated by the cookie must also
come from the gateway's own origin or a configured CORS origin (its Origin header, else its
Referer's); one with neither header is refused as well (browsers send Origin on every
cross-origin POST; other clients send the Authorization header instead).

`refuse_exposed_local_engine` is the start-up check of a gateway bound to a non-loopback
address: an engine in local mode (no users) would serve everyone who reaches the gateway as the
local user.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import grpc
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .errors import GatewayError, bad_request, status_from_rpc_error
from .settings import GatewaySettings, split_host_port

if TYPE_CHECKING:
    from .bindings import Binding
    from .endpoints import Engine, ResponseParts

COOKIE = "hindsight_session"
SESSION_PATH = "/api/v1/session"
# The engine refuses longer tokens too (services/engine/auth.py MAX_TOKEN_CHARS).
# Tokens longer than this are refused: with the other metadata a call must stay under gRPC's
# 8 KiB metadata limit (a longer header came back as RESOURCE_EXHAUSTED).
MAX_TOKEN_CHARS = 6144
GET_CALLER = "hindsight.v1.BacktestService.GetCaller"
# What a cookie value may hold (RFC 6265 cookie-octet); API keys and JWTs are made of these.
COOKIE_SAFE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$")
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_MAX_SESSION_BODY = 64 * 1024
_ALLOW = "DELETE, POST"


# ---- the cookie on proxied requests -----------------------------------------------------------

def cookie_token(headers: Headers) -> str | None:
    """The session cookie's value, if the request has one (the first, as browsers order them).
    A value no sign-in could have set (empty, too long, characters outside a cookie's) counts
    as no cookie."""
    for raw in headers.getlist("cookie"):
        for part in raw.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name.strip() == COOKIE:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                return value if len(value) <= MAX_TOKEN_CHARS and COOKIE_SAFE.match(value) else None
    return None


def cookie_authorization(scope: Scope, headers: Headers) -> str | None:
    """`Bearer <cookie>` for a request without an Authorization header that has the session
    cookie, else None. A state-changing request authenticated so must pass the origin check
    (GatewayError PERMISSION_DENIED, 403, otherwise)."""
    token = cookie_token(headers)
    if token is None:
        return None
    if scope.get("method") in _STATE_CHANGING:
        app = scope.get("app")
        settings = getattr(getattr(app, "state", None), "settings", None)
        check_origin(scope, headers, getattr(settings, "cors_origins", ()), required=True)
    return f"Bearer {token}"


def check_origin(scope: Scope, headers: Headers, cors_origins: Iterable[str], *, required: bool) -> None:
    """Refuse (403) a request whose Origin (else Referer's origin) is neither the gateway's own
    origin nor a configured CORS origin; with neither header, refuse only when `required`."""
    method = scope.get("method", "")
    sent = headers.get("origin")
    if sent is None:
        referer = headers.get("referer")
        if referer is not None:
            sent = _origin_of_url(referer) or "null"  # an unparsable Referer matches nothing
    if sent is None:
        if required:
            raise _cross_origin(f"a {method} authenticated by the session cookie must carry an Origin or Referer "
                                "header; clients other than browsers send 'Authorization: Bearer <token>' instead")
        return
    origin = _normalized(sent)
    own = own_origin(scope, headers)
    if origin is not None and (origin == own or origin in {_normalized(o) for o in cors_origins}):
        return
    shown = sent if len(sent) <= 200 else sent[:200] + "…"
    raise _cross_origin(f"{method} from origin {shown!r}: the session cookie is for pages of {own} (or of an origin "
                        "in HINDSIGHT_CORS_ORIGINS) only; other clients send 'Authorization: Bearer <token>'")


def own_origin(scope: Scope, headers: Headers) -> str:
    """scheme://host[:port] of the gateway as the client reached it (Host header, scheme or
    X-Forwarded-Proto), default ports left out."""
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return _normalized(f"{request_scheme(scope, headers)}://{host}") or ""


def request_scheme(scope: Scope, headers: Headers) -> str:
    forwarded = headers.get("x-forwarded-proto")
    if forwarded:
        first = forwarded.split(",")[0].strip().lower()
        if first in ("http", "https"):
            return first
    return str(scope.get("scheme", "http")).lower()


def _origin_of_url(url: str) -> str | None:
    """The origin of a URL (a Referer), normalized as `_normalized` does."""
    return _normalized(url, whole_url=True)


def _normalized(origin: str, *, whole_url: bool = False) -> str | None:
    """scheme://host[:port], lower-cased, without the scheme's default port; None for "null",
    another scheme or anything unparsable (or, unless `whole_url`, anything with a path)."""
    try:
        parts = urlsplit(origin.strip().lower())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if not whole_url and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return None
    host = f"[{host}]" if ":" in host else host
    if port is not None and str(port) != _DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}"


def _cross_origin(detail: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.PERMISSION_DENIED, f"cross-origin request refused: {detail}")


# ---- POST / DELETE /api/v1/session ------------------------------------------------------------

def caller_binding(bindings: Iterable[Binding]) -> Binding | None:
    """The GetCaller binding (GET /api/v1/me), whose reply a sign-in answers with."""
    return next((b for b in bindings if b.method.full_name == GET_CALLER), None)


def session_routes(bindings: Sequence[Binding], engine: Engine, settings: GatewaySettings) -> list[BaseRoute]:
    """The session route, if the services have GetCaller (the routes come before the bindings')."""
    binding = caller_binding(bindings)
    if binding is None:
        return []
    return [Route(SESSION_PATH, SessionEndpoint(binding, engine, settings), name="session")]


class SessionEndpoint:
    """ASGI app of /api/v1/session: POST signs in, DELETE signs out, anything else is 405."""

    def __init__(self, binding: Binding, engine: Engine, settings: GatewaySettings) -> None:
        self.binding = binding
        self.engine = engine
        self.settings = settings
        self.max_age_s = int(settings.session_max_age_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from .endpoints import error_parts

        headers = Headers(scope=scope)
        method = scope.get("method")
        try:
            if method not in ("POST", "DELETE"):
                raise GatewayError(grpc.StatusCode.UNIMPLEMENTED, f"method {method} is not allowed here; use {_ALLOW}",
                                   http_status=405, headers={"allow": _ALLOW})
            # A sign-in or sign-out from another site's page is refused; curl (no Origin) may.
            check_origin(scope, headers, self.settings.cors_origins, required=False)
            if method == "POST":
                parts = await self._sign_in(scope, receive, headers)
            else:
                parts = self._sign_out(scope, headers)
        except GatewayError as exc:
            parts = error_parts(exc.to_status(), exc.http_status, exc.headers)
        status, raw, body = parts
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _sign_in(self, scope: Scope, receive: Receive, headers: Headers) -> ResponseParts:
        from .endpoints import error_parts, raw_response, read_body, request_id
        from .transcoding import response_json

        content_type = headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"the body must be JSON ({{\"token\": \"...\"}}), not {content_type[:100]}",
                               http_status=415)
        token = _token_of(await read_body(receive, headers, _MAX_SESSION_BODY))
        metadata: list[tuple[str, str]] = [("x-request-id", request_id(scope)), ("authorization", f"Bearer {token}")]
        client = scope.get("client")
        forwarded = headers.get("x-forwarded-for")
        if client:
            hops = f"{forwarded}, {client[0]}" if forwarded else client[0]
            if hops.isascii() and hops.isprintable():
                metadata.append(("x-forwarded-for", hops))
        call = self.engine.callable_for(self.binding)(self.binding.request_class(),
                                                      timeout=self.settings.default_timeout_s, metadata=metadata)
        try:
            reply = await call
        except grpc.RpcError as exc:
            return error_parts(status_from_rpc_error(exc), retry_after_s=self.settings.retry_after_s)
        cookie = f"{COOKIE}={token}; Max-Age={self.max_age_s}; Path=/; HttpOnly; SameSite=Strict"
        if request_scheme(scope, headers) == "https":
            cookie += "; Secure"
        return raw_response(200, {"cache-control": "no-store", "set-cookie": cookie},
                            response_json(self.binding, reply), "application/json")

    def _sign_out(self, scope: Scope, headers: Headers) -> ResponseParts:
        from .endpoints import raw_response

        cookie = f"{COOKIE}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict"
        if request_scheme(scope, headers) == "https":
            cookie += "; Secure"
        return raw_response(204, {"cache-control": "no-store", "set-cookie": cookie}, b"", None)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _token_of(body: bytes) -> str:
    """The token of a sign-in body, `{"token": "..."}`; 400 naming the field otherwise."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise bad_request('the body must be JSON: {"token": "<API key or JWT>"}', ("token", "body is not JSON")) \
            from None
    if not isinstance(data, dict):
        raise bad_request('the body must be a JSON object: {"token": "<API key or JWT>"}', ("token", "missing"))
    unknown = sorted(set(data) - {"token"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0][:100]!r}: the body has only 'token'", (unknown[0][:100], "unknown"))
    token = data.get("token")
    if token is None:
        raise bad_request("field 'token' is required: an API key (hsk_…) or a JWT", ("token", "missing"))
    if not isinstance(token, str):
        raise bad_request("field 'token' must be a string", ("token", "not a string"))
    if not token:
        raise bad_request("field 'token' must not be empty", ("token", "empty"))
    if len(token) > MAX_TOKEN_CHARS:
        raise bad_request(f"field 'token' is longer than {MAX_TOKEN_CHARS} characters", ("token", "too long"))
    if not COOKIE_SAFE.match(token):
        raise bad_request("field 'token' has characters no API key or JWT has (spaces, quotes, ';', ',' or "
                          "non-ASCII)", ("token", "invalid characters"))
    return token


# ---- OpenAPI --------------------------------------------------------------------------------

def openapi_paths(bindings: Sequence[Binding], caller_schema: Callable[[Any], dict[str, Any]],
                  request_id: dict[str, Any], error_ref: str) -> dict[str, Any]:
    """The session operations for openapi.build_openapi (none without GetCaller)."""
    binding = caller_binding(bindings)
    if binding is None:
        return {}
    error = {"content": {"application/json": {"schema": {"$ref": error_ref}}}, "headers": dict(request_id)}
    errors = {"400": "The body is not {\"token\": \"...\"} or the token is malformed",
              "401": "The engine refused the token (WWW-Authenticate says why)",
              "403": "Sent from another site's page (Origin)",
              "405": "Another method", "413": "The body is too large", "415": "The body is not JSON",
              "503": "The engine is unavailable", "504": "The engine did not answer in time"}
    cookie_header = {"Set-Cookie": {"description": f"{COOKIE}=…; HttpOnly; SameSite=Strict; Path=/",
                                    "required": True, "schema": {"type": "string"}}}
    post = {
        "operationId": "gateway_createSession", "tags": ["gateway"],
        "summary": "Sign in: check a token with the engine and keep it in a session cookie.",
        "description": f"Sets the `{COOKIE}` cookie (HttpOnly, SameSite=Strict) that the dashboard's requests and "
                       "event streams then carry instead of an Authorization header (EventSource cannot send "
                       "headers). State-changing requests authenticated by the cookie must come from the "
                       "gateway's own origin. Answers with the caller, as GET /api/v1/me.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["token"], "additionalProperties": False,
            "properties": {"token": {"type": "string", "description": "An API key (hsk_…) or a JWT.",
                                     "minLength": 1, "maxLength": MAX_TOKEN_CHARS,
                                     "pattern": "^[\\x21\\x23-\\x2b\\x2d-\\x3a\\x3c-\\x5b\\x5d-\\x7e]+$"}}}}}},
        "responses": {"200": {"description": "Signed in.", "headers": {**request_id, **cookie_header},
                              "content": {"application/json": {"schema": caller_schema(binding.method.output_type)}}},
                      **{code: {"description": f"{text} (a google.rpc.Status).", **error}
                         for code, text in errors.items()}},
    }
    delete = {
        "operationId": "gateway_deleteSession", "tags": ["gateway"],
        "summary": "Sign out: clear the session cookie.",
        "responses": {"204": {"description": "Signed out (the cookie is cleared).",
                              "headers": {**request_id, **cookie_header}},
                      **{code: {"description": f"{errors[code]} (a google.rpc.Status).", **error}
                         for code in ("403", "405")}},
    }
    return {SESSION_PATH: {"post": post, "delete": delete}}


# ---- start-up: no local-mode engine behind a public address --------------------------------------

class ExposedLocalEngine(SystemExit):
    """The gateway refuses to start (its message says why); uncaught, it ends the process with it."""


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def refuse_exposed_local_engine(settings: GatewaySettings, target: str | grpc.aio.Channel | None = None, *,
                                      timeout_s: float = 5.0) -> None:
    """Raise ExposedLocalEngine when the gateway would listen on a non-loopback address in
    front of an engine in local mode (no users: every caller would be the local user) or one
    it cannot ask. An engine that wants a token (UNAUTHENTICATED without one) is fine."""
    host, port = split_host_port(settings.http_addr)
    if is_loopback(host):
        return
    from hindsight.v1 import backtest_service_pb2 as pb

    where = target if isinstance(target, str) else settings.engine_addr if target is None else "<channel>"
    refusing = f"hindsight gateway: refusing to serve http://{settings.http_addr} (not a loopback address): "
    channel = target if isinstance(target, grpc.aio.Channel) else grpc.aio.insecure_channel(str(where))
    try:
        get_caller = channel.unary_unary(f"/{GET_CALLER.rsplit('.', 1)[0]}/GetCaller",
                                         request_serializer=pb.GetCallerRequest.SerializeToString,
                                         response_deserializer=pb.Caller.FromString)
        try:
            caller = await get_caller(pb.GetCallerRequest(), timeout=timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return  # users or an issuer are configured: every caller needs a token
            if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                raise ExposedLocalEngine(
                    refusing + f"the engine at {where} did not answer within {timeout_s:g} s, so the gateway cannot "
                    "check that it requires tokens. Start the engine first, or bind the gateway to 127.0.0.1 "
                    "(HINDSIGHT_HTTP_ADDR).") from None
            details = exc.details() if hasattr(exc, "details") else ""
            raise ExposedLocalEngine(
                refusing + f"asking the engine at {where} who a caller without a token is failed ({code.name}: "
                f"{details}), so the gateway cannot check that it requires tokens. Bind the gateway to 127.0.0.1 "
                "(HINDSIGHT_HTTP_ADDR).") from None
    finally:
        if channel is not target:
            await channel.close()
    if caller.auth_method == "local":
        raise ExposedLocalEngine(
            refusing + f"the engine has no users configured: anyone who reaches port {port} would act as its local "
            "user. Add a user with `hindsight users add NAME` (then sign in with its API key) or bind the gateway "
            "to 127.0.0.1 (HINDSIGHT_HTTP_ADDR).")
