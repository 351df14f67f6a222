"""The one endpoint factory: every binding is served by `make_endpoint(binding, ...)`.

Unary → JSON; server stream → SSE (or NDJSON on `Accept: application/x-ndjson`);
google.api.HttpBody → raw bytes. A stream's HTTP status waits for its first message (or its
end, or `stream_open_wait_s`), so that an error before the first event keeps its real status
(grpc-gateway, runtime/handler.go) and an empty stream is answered 204.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import operator
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from .bindings import Binding, ResponseKind
from .session import MAX_TOKEN_CHARS, cookie_authorization
from .errors import (
    GatewayError,
    bad_request,
    error_body,
    make_status,
    status_from_rpc_error,
    status_headers,
    status_http,
    upload_too_large,
)
from .protocol import LOST_KEY, RESET_KEY
from .settings import GatewaySettings
from .streams import BytesFraming, Framing, NdjsonFraming, SseFraming, pump, wait_for_disconnect
from .transcoding import build_request, response_json
from .uploads import BodyEncoder, ClientGone, ClientIdle, Rechunker, body_pieces, varint

REQUEST_ID_KEY = "hindsight.request_id"  # where the request-context middleware keeps the id
_PATH_KEY = "hindsight.path"  # the split request path, cached for the other routes
_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_MAX_TIMEOUT_S = 100 * 86_400.0
_METADATA_PREFIX = "grpc-metadata-"
# Longest Authorization header passed on: the call's metadata must stay under gRPC's 8 KiB.
MAX_AUTHORIZATION_CHARS = MAX_TOKEN_CHARS + len("Bearer ")
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_UNBATCHED_RETRY_S = 60.0
logger = logging.getLogger("hindsight.gateway")
_NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-seq")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Engine:
    """The channel to the engine and one multi-callable per binding, made on first use.

    `closing` is set when the server starts to shut down: open event streams then end cleanly,
    and their clients reconnect (to any gateway process) with Last-Event-ID.
    """

    def __init__(self, target: str | grpc.aio.Channel, settings: GatewaySettings) -> None:
        self._target = target
        self._settings = settings
        self._channel: grpc.aio.Channel | None = None if isinstance(target, str) else target
        self._callables: dict[str, Any] = {}
        # Batched siblings the engine answered UNIMPLEMENTED (an older engine): path -> when.
        # Retried after _UNBATCHED_RETRY_S, so an upgraded engine is used without a restart.
        self._unbatched: dict[str, float] = {}
        self.closing = asyncio.Event()

    @property
    def target(self) -> str:
        return self._target if isinstance(self._target, str) else "<channel>"

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            options = [
                ("grpc.max_receive_message_length", self._settings.max_message_bytes),
                ("grpc.max_send_message_length", self._settings.max_message_bytes),
                # Recover quickly once an engine (re)starts; the default back-off reaches 120 s.
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2000),
                *stream_window_options(self._settings.grpc_stream_window_bytes),
            ]
            self._channel = grpc.aio.insecure_channel(str(self._target), options=options)
        return self._channel

    def callable_for(self, binding: Binding) -> Any:
        multi = self._callables.get(binding.grpc_path)
        if multi is None:
            kwargs = {"request_serializer": binding.request_class.SerializeToString,
                      "response_deserializer": binding.response_class.FromString}
            if binding.request_stream:
                # The first message is a message; the others come serialized (uploads.BodyEncoder).
                kwargs["request_serializer"] = _message_or_bytes
                multi = self.channel.stream_unary(binding.grpc_path, **kwargs)
            elif binding.method.server_streaming:
                multi = self.channel.unary_stream(binding.grpc_path, **kwargs)
            else:
                multi = self.channel.unary_unary(binding.grpc_path, **kwargs)
            self._callables[binding.grpc_path] = multi
        return multi

    def batched_callable_for(self, binding: Binding) -> Any | None:
        """The multi-callable of the binding's batched sibling, if it has one the engine serves.

        It is sent the binding's own request type: the sibling's request reads it unchanged
        (checked when the binding was compiled)."""
        batched = binding.batched
        if batched is None:
            return None
        since = self._unbatched.get(batched.grpc_path)
        if since is not None:
            if time.monotonic() - since < _UNBATCHED_RETRY_S:
                return None
            del self._unbatched[batched.grpc_path]
        # Not the sibling's own callable (its binding, if it has one, sends its own request):
        # this one sends the binding's request and the batch size.
        key = binding.grpc_path + " batched"
        multi = self._callables.get(key)
        if multi is None:
            multi = self.channel.unary_stream(
                batched.grpc_path, request_serializer=batch_size_serializer(binding, self._settings.stream_batch_events),
                response_deserializer=batched.batch_class.FromString)
            self._callables[key] = multi
        return multi

    def batches_unimplemented(self, binding: Binding) -> None:
        assert binding.batched is not None
        logger.info("the engine does not serve %s; streaming %s message by message",
                    binding.batched.method.full_name, binding.method.full_name)
        self._unbatched[binding.batched.grpc_path] = time.monotonic()

    async def close(self) -> None:
        """Close the channel if this object made it (a channel passed in belongs to the caller)."""
        if isinstance(self._target, str) and self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._callables.clear()


def _message_or_bytes(message: Message | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def stream_window_options(window_bytes: int) -> list[tuple[str, int]]:
    """Channel options that hold each stream's HTTP/2 receive window at `window_bytes` (0: gRPC's
    own, grown by its bandwidth-delay probe).

    The window is what gRPC takes in for a stream ahead of its reader. With the probe on, each
    SSE client that stopped reading cost the gateway ~8 MB, ~7.5 MB of it gRPC's (200 such
    clients: 1.75 GB; benchmarks/load_bench.py); without it, gRPC keeps
    `grpc.http2.lookahead_bytes` per stream (and still takes in any one message whole, up to
    max_message_bytes)."""
    if window_bytes <= 0:
        return []
    return [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", window_bytes)]


def batch_size_serializer(binding: Binding, max_events: int) -> Callable[[Message], bytes]:
    """The request serializer of a binding's batched sibling: the binding's own request bytes
    (a valid request of the sibling, checked when the binding was compiled) followed by the
    sibling's `max_events` field, when it has one and `max_events` > 0. Smaller batches bound
    what a stream whose client is behind holds: the gateway keeps the batch it is framing."""
    serialize: Callable[[Message], bytes] = binding.request_class.SerializeToString
    assert binding.batched is not None
    field = binding.batched.method.input_type.fields_by_name.get("max_events")
    if max_events <= 0 or field is None or field.type != field.TYPE_UINT32 or field.is_repeated \
            or field.number in binding.request_class.DESCRIPTOR.fields_by_number:
        return serialize
    # The field's tag (varint wire type 0) and value, appended: protobuf parsers merge
    # concatenated messages, so this sets the field in the bytes the engine reads.
    suffix = varint(field.number << 3) + varint(max_events)

    def with_batch_size(message: Message) -> bytes:
        return serialize(message) + suffix

    return with_batch_size


class BindingRoute(BaseRoute):
    """A Starlette route matching one binding's path template against the raw request path."""

    def __init__(self, binding: Binding, endpoint: BindingEndpoint, *, verbs: frozenset[str],
                 allowed: Sequence[str]) -> None:
        self.binding = binding
        self.endpoint = endpoint
        self._verbs = verbs
        self._allowed = ", ".join(sorted(set(allowed)))
        self.path = binding.template.template
        self.name = binding.method.name

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        segments, verb, raw_verb = _split_path(scope)
        template = self.binding.template
        values = template.match(segments, verb)
        if values is None and verb is not None and template.verb is None and verb not in self._verbs:
            # The ':' is part of the last segment's value (an id with a colon), not a verb.
            values = template.match([*segments[:-1], segments[-1] + ":" + raw_verb], None)
        if values is None:
            return Match.NONE, {}
        child = {"endpoint": self.endpoint, "path_params": values}
        return (Match.FULL if scope["method"] == self.binding.http_method else Match.PARTIAL), child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != self.binding.http_method:
            error = GatewayError(grpc.StatusCode.UNIMPLEMENTED,
                                 f"method {scope['method']} is not allowed here; use {self._allowed}",
                                 http_status=405, headers={"allow": self._allowed})
            await error_response(error.to_status(), error.http_status, error.headers)(scope, receive, send)
            return
        await self.endpoint(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def __repr__(self) -> str:
        return f"BindingRoute({self.binding.http_method} {self.path} → {self.binding.name})"


RawHeaders = list[tuple[bytes, bytes]]
# A whole response: status, raw headers (as a Starlette `Response` would send them), body.
ResponseParts = tuple[int, RawHeaders, bytes]


class BindingEndpoint:
    """The ASGI app serving one binding: transcode, call the engine, write the response.

    A unary binding's whole response is also available as data, `await unary(scope, receive)`:
    the app's direct path for unary calls (app.py) sends it itself.
    """

    def __init__(self, binding: Binding, engine: Engine, settings: GatewaySettings) -> None:
        self.binding = binding
        self.engine = engine
        self.settings = settings
        self.is_stream = binding.method.server_streaming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.is_stream:
            status, headers, body = await self.unary(scope, receive)
            # What a Starlette Response sends.
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = Headers(scope=scope)
        try:
            message, metadata, timeout = await self._prepare(scope, receive, headers)
        except GatewayError as exc:
            await error_response(exc.to_status(), exc.http_status, exc.headers)(scope, receive, send)
            return
        await _serve_stream(self.binding, self.engine, self.settings, message, metadata, timeout, scope, receive,
                            send)

    async def _prepare(self, scope: Scope, receive: Receive,
                       headers: Headers) -> tuple[Message, list[tuple[str, str | bytes]], float | None]:
        binding, settings = self.binding, self.settings
        body = await read_body(receive, headers, settings.max_body_bytes) if binding.body else None
        query = scope.get("query_string", b"")
        message = build_request(
            binding, scope.get("path_params", {}),
            parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else (),
            body=body, content_type=headers.get("content-type"),
            last_event_id=headers.get("last-event-id") if self.is_stream else None)
        metadata = _metadata(scope, headers)
        timeout = _timeout(headers, None if self.is_stream else settings.default_timeout_s)
        return message, metadata, timeout

    async def unary(self, scope: Scope, receive: Receive) -> ResponseParts:
        """The response to a unary binding's request: the reply, or the error, as JSON (or raw bytes)."""
        binding, settings = self.binding, self.settings
        if binding.request_stream:
            return await self.upload(scope, receive)
        try:
            message, metadata, timeout = await self._prepare(scope, receive, Headers(scope=scope))
        except GatewayError as exc:
            return error_parts(exc.to_status(), exc.http_status, exc.headers)
        call = self.engine.callable_for(binding)(message, timeout=timeout, metadata=metadata)
        try:
            reply = await call
        except grpc.RpcError as exc:
            return error_parts(status_from_rpc_error(exc), retry_after_s=settings.retry_after_s)
        return await self._reply(scope, call, reply)

    async def _reply(self, scope: Scope, call: Any, reply: Message) -> ResponseParts:
        binding = self.binding
        headers = _metadata_headers(await call.initial_metadata())
        if binding.kind is ResponseKind.BYTES:
            headers["content-disposition"] = _disposition(binding, scope, headers)
            return raw_response(200, headers, reply.data, reply.content_type or "application/octet-stream")
        return raw_response(200, headers, response_json(binding, reply), "application/json")

    async def upload(self, scope: Scope, receive: Receive) -> ResponseParts:
        """A client-streaming binding's request (uploads.py): the first message from the path and
        query, then the raw body in messages that each set only the body field; the reply as a
        unary call's. The body is read as the engine takes it, never held whole, and limited to
        `max_upload_bytes`; a client that goes away (or stalls) mid-body has the call cancelled,
        so the engine keeps nothing of it."""
        binding, settings = self.binding, self.settings
        headers = Headers(scope=scope)
        limit = settings.max_upload_bytes
        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise upload_too_large(limit)  # before a byte is read (curl's Expect: 100-continue stops here)
            query = scope.get("query_string", b"")
            first = build_request(binding, scope.get("path_params", {}),
                                  parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else ())
            metadata = _metadata(scope, headers)  # the session cookie's origin check included
            timeout = _timeout(headers, None)  # the body takes as long as the client's link: no default
        except GatewayError as exc:
            return error_parts(exc.to_status(), exc.http_status, exc.headers)
        encoder = BodyEncoder(binding, headers.get("content-type") or "application/octet-stream")
        lost = scope.get(LOST_KEY)
        write = _Writer(self.engine.callable_for(binding)(timeout=timeout, metadata=metadata),
                        lost() if lost is not None else None)
        call = write.call
        ended = _EndStatuses()
        call.add_done_callback(ended)
        try:
            try:
                await write(first)
                chunks = Rechunker()
                size = 0
                async for piece in body_pieces(receive, settings.upload_idle_timeout_s):
                    size += len(piece)
                    if size > limit:
                        raise upload_too_large(limit)
                    for run in chunks.add(piece):
                        await write(encoder.encode(run, chunks.size))
                rest, held = chunks.rest()
                if held:
                    await write(encoder.encode(rest, held))
                await call.done_writing()
            except (asyncio.InvalidStateError, grpc.RpcError, _CoreError):
                # The call ended before the body did (the engine refused it, the deadline passed):
                # its status is the answer, which awaiting the call gives (a failed write's own
                # error may be grpc.aio's INTERNAL instead, see _EndStatuses; a failed half-close
                # raises grpc's own error).
                pass
            except ClientGone:
                call.cancel()
                return error_parts(make_status(grpc.StatusCode.CANCELLED, "the client went away mid-upload"))
            except ClientIdle:
                call.cancel()
                status = make_status(grpc.StatusCode.DEADLINE_EXCEEDED,
                                     f"the upload's body stopped arriving for {settings.upload_idle_timeout_s:g} s")
                return error_parts(status, 408, {"connection": "close"})
            except GatewayError as exc:
                call.cancel()
                return error_parts(exc.to_status(), exc.http_status, exc.headers)
            reply = await call
        except grpc.RpcError as exc:
            return error_parts(status_from_rpc_error(ended.real(exc)), retry_after_s=settings.retry_after_s)
        finally:
            call.cancel()  # a no-op once it has ended; on any other way out the engine sees it cancelled
        return await self._reply(scope, call, reply)


class _EndStatuses:
    """The statuses a client-streaming call was given as it ended (its done callback runs at each).

    grpc.aio replaces a call's status with INTERNAL "Internal error from Core" when a write was
    under way as the call ended (the engine refused an upload midway, or the deadline passed):
    the write fails, and its failure is set as the status, after the engine's when that came
    first (~2 % of refusals midway, measured). `real(error)` is the first other status, as the
    error the call would have raised."""

    __slots__ = ("statuses",)

    def __init__(self) -> None:
        self.statuses: list[tuple[grpc.StatusCode, str, Any]] = []

    def __call__(self, call: Any) -> None:
        # The status is set when this runs (inside grpc's own code, which must not see an
        # exception): these coroutines return without suspending.
        try:
            self.statuses.append((_now(call.code()), _now(call.details()), _now(call.trailing_metadata())))
        except Exception:  # pragma: no cover - a grpcio that works otherwise: its error stands
            logger.debug("could not read a call's status as it ended", exc_info=True)

    def real(self, error: grpc.RpcError) -> grpc.RpcError:
        if getattr(error, "code", None) is None or error.code() != grpc.StatusCode.INTERNAL \
                or error.details() != _CORE_INTERNAL:
            return error
        for code, details, trailing in self.statuses:
            if (code, details) != (grpc.StatusCode.INTERNAL, _CORE_INTERNAL):
                return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)
        return error


_CORE_INTERNAL = "Internal error from Core"
try:  # what grpc.aio's done_writing() on a call that has ended raises (not an RpcError)
    from grpc._cython.cygrpc import BaseError as _CoreError
except ImportError:  # pragma: no cover - another grpcio layout
    _CoreError = grpc.RpcError


def _now(coroutine: Any) -> Any:
    """The result of a coroutine that returns without suspending."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the call's status is not set")


class _Writer:
    """`await writer(message)`: the message written to a client-streaming call (gRPC flow control:
    it returns once the engine has room for it), or ClientGone when the client's connection is
    lost first (`lost`: an engine that has stopped reading must not keep the call open)."""

    __slots__ = ("_lost", "call")

    def __init__(self, call: Any, lost: asyncio.Future[None] | None) -> None:
        self.call = call
        self._lost = lost

    async def __call__(self, message: Message | bytes) -> None:
        lost = self._lost
        if lost is None:
            await self.call.write(message)
            return
        if lost.done():
            raise ClientGone
        write = asyncio.ensure_future(self.call.write(message))
        abandoned = False
        try:
            await asyncio.wait((write, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not write.done():
                abandoned = True
                write.cancel()  # grpc.aio cancels the call with its write
                write.add_done_callback(_retrieve)
        if abandoned:
            raise ClientGone
        write.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def make_endpoint(binding: Binding, engine: Engine, settings: GatewaySettings) -> BindingEndpoint:
    """The ASGI app serving one binding: transcode, call the engine, write the response."""
    return BindingEndpoint(binding, engine, settings)


def raw_response(status: int, headers: dict[str, str] | None, body: bytes, media_type: str | None) -> ResponseParts:
    """What `starlette.responses.Response(body, status, headers, media_type)` sends, without the object:
    its headers (lower-cased), then content-length and content-type unless given (a text/ type
    gets `; charset=utf-8`)."""
    raw: RawHeaders = []
    length = content_type = True
    if headers:
        for k, v in headers.items():
            key = k.lower().encode("latin-1")
            if key == b"content-length":
                length = False
            elif key == b"content-type":
                content_type = False
            raw.append((key, v.encode("latin-1")))
    if length and not (status < 200 or status in (204, 304)):
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
    if media_type is not None and content_type:
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"
        raw.append((b"content-type", media_type.encode("latin-1")))
    return status, raw, body


def error_parts(status: status_pb2.Status, http: int | None = None, headers: dict[str, str] | None = None, *,
                retry_after_s: int = 1) -> ResponseParts:
    """`error_response(...)` as data."""
    all_headers = status_headers(status, retry_after_s)
    all_headers.update(headers or {})
    return raw_response(http or status_http(status), all_headers, error_body(status), "application/json")


def error_response(status: status_pb2.Status, http: int | None = None,
                   headers: dict[str, str] | None = None, *, retry_after_s: int = 1) -> Response:
    all_headers = status_headers(status, retry_after_s)
    all_headers.update(headers or {})
    return Response(error_body(status), status_code=http or status_http(status), headers=all_headers,
                    media_type="application/json")


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    too_large = GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"request body is larger than the limit of {limit} bytes", http_status=413)
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(grpc.StatusCode.CANCELLED, "client went away while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def request_id(scope: Scope) -> str:
    rid = scope.get(REQUEST_ID_KEY)
    if rid is None:
        rid = scope[REQUEST_ID_KEY] = uuid.uuid4().hex
    return str(rid)


async def _serve_stream(binding: Binding, engine: Engine, settings: GatewaySettings, message: Message,
                        metadata: list[tuple[str, str | bytes]], timeout: float | None,
                        scope: Scope, receive: Receive, send: Send) -> None:
    def open_call() -> tuple[Any, asyncio.Future[Any], Callable[[Any], Any] | None]:
        multi = engine.batched_callable_for(binding)
        unbatch = None
        if multi is None:
            multi = engine.callable_for(binding)
        else:
            assert binding.batched is not None
            unbatch = operator.attrgetter(binding.batched.field)
        call = multi(message, timeout=timeout, metadata=metadata)
        return call, asyncio.ensure_future(call.read()), unbatch

    call, first, unbatch = open_call()
    disconnected = asyncio.ensure_future(wait_for_disconnect(receive))
    # A download is left to finish during shutdown (it cannot be resumed); events can.
    closing = asyncio.ensure_future(engine.closing.wait()) if binding.kind is ResponseKind.STREAM else None
    try:
        # Raw bytes need the first message's content type before the headers: wait for it.
        wait = None if binding.kind is ResponseKind.BYTES else settings.stream_open_wait_s
        while True:
            waited = [first, disconnected, *([closing] if closing else [])]
            done, _ = await asyncio.wait(waited, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if unbatch is not None and first in done and _unimplemented(first):
                engine.batches_unimplemented(binding)  # an older engine: read message by message
                call, first, unbatch = open_call()
                continue
            break
        if disconnected in done:
            return
        if closing is not None and closing in done and first not in done:
            status = make_status(grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down; retry")
            await error_response(status, retry_after_s=settings.retry_after_s)(scope, receive, send)
            return
        headers: dict[str, str] = {"cache-control": "no-cache"}
        head: Any = None
        if first in done:
            try:
                head = first.result()
            except grpc.RpcError as exc:
                status = status_from_rpc_error(exc)
                await error_response(status, retry_after_s=settings.retry_after_s)(scope, receive, send)
                return
            if head is grpc.aio.EOF:
                if binding.kind is ResponseKind.BYTES:
                    await Response(b"", media_type="application/octet-stream")(scope, receive, send)
                else:
                    # Nothing after the cursor: the stream is over (204 stops an EventSource).
                    await Response(status_code=204)(scope, receive, send)
                return
            headers.update(_metadata_headers(await call.initial_metadata()))
        framing: Framing
        if binding.kind is ResponseKind.BYTES:
            framing = BytesFraming(getattr(head, "content_type", "") or "application/octet-stream")
            headers["content-disposition"] = _disposition(binding, scope, headers)
        else:
            framing = NdjsonFraming() if any(t in _accept(scope) for t in _NDJSON_TYPES) else \
                SseFraming(settings.sse_retry_ms)
            headers["x-accel-buffering"] = "no"  # nginx: pass events through as they come
        headers["content-type"] = framing.media_type
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]})
        # When raw bytes fail midway the pump returns without completing the response: the
        # server then drops the connection, and the client sees a truncated transfer rather
        # than a valid-looking file.
        await pump(call, first, framing, send, disconnected, heartbeat_s=settings.heartbeat_s,
                   opening=framing.opening(), closing=closing, unbatch=unbatch,
                   buffer_bytes=settings.stream_buffer_bytes, send_timeout_s=settings.slow_reader_timeout_s,
                   reset=scope.get(RESET_KEY))
    finally:
        call.cancel()  # no-op if it has ended; otherwise the engine sees the cancellation now
        tasks = [t for t in (first, disconnected, closing) if t is not None]
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _unimplemented(read: asyncio.Future[Any]) -> bool:
    exc = read.exception()
    return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNIMPLEMENTED


def _accept(scope: Scope) -> str:
    return Headers(scope=scope).get("accept", "").lower()


def _split_path(scope: Scope) -> tuple[list[str], str | None, str]:
    cached = scope.get(_PATH_KEY)
    if cached is None:
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(scope["path"])
        root = quote(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root):]
        segments = path[1:].split("/") if path.startswith("/") else path.split("/")
        verb: str | None = None
        raw_verb = ""
        last = segments[-1]
        idx = last.rfind(":")
        if idx > 0:
            segments[-1], raw_verb = last[:idx], last[idx + 1:]
            verb = unquote(raw_verb)
        cached = scope[_PATH_KEY] = (segments, verb, raw_verb)
    return cast(tuple[list[str], str | None, str], cached)


def _metadata(scope: Scope, headers: Headers) -> list[tuple[str, str | bytes]]:
    """gRPC metadata for the call: request id, Authorization, Grpc-Metadata-*, X-Forwarded-*."""
    md: list[tuple[str, str | bytes]] = [("x-request-id", request_id(scope))]
    auth = headers.get("authorization")
    if auth is None:
        # The dashboard's session cookie (EventSource cannot send headers); a state-changing
        # request authenticated by it must pass the origin check (session.py).
        auth = cookie_authorization(scope, headers)
    if auth is not None:
        if len(auth) > MAX_AUTHORIZATION_CHARS:  # gRPC refuses metadata over 8 KiB (as a 429)
            raise bad_request(f"header 'Authorization' is longer than {MAX_AUTHORIZATION_CHARS} characters",
                              ("Authorization", "too long"))
        md.append(("authorization", _ascii(auth, "Authorization")))
    for key, value in headers.items():
        if not key.startswith(_METADATA_PREFIX):
            continue
        name = key[len(_METADATA_PREFIX):]
        if not _METADATA_KEY.match(name) or name.startswith("grpc-"):
            raise bad_request(f"header '{key}' does not name valid gRPC metadata", (key, "invalid metadata key"))
        if name.endswith("-bin"):
            try:
                md.append((name, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)))
            except (binascii.Error, ValueError):
                raise bad_request(f"header '{key}' must be base64", (key, "not base64")) from None
        else:
            md.append((name, _ascii(value, key)))
    client = scope.get("client")
    if client:
        forwarded = headers.get("x-forwarded-for")
        md.append(("x-forwarded-for", _ascii(f"{forwarded}, {client[0]}" if forwarded else client[0],
                                             "X-Forwarded-For")))
    host = headers.get("host")
    if host:
        md.append(("x-forwarded-host", _ascii(host, "Host")))
    return md


def _ascii(value: str, header: str) -> str:
    if not _PRINTABLE.match(value):
        raise bad_request(f"header '{header}' has characters that gRPC metadata cannot carry",
                          (header, "not printable ASCII"))
    return value


def _timeout(headers: Headers, default: float | None) -> float | None:
    raw = headers.get("grpc-timeout")
    if raw is None:
        return default
    m = _GRPC_TIMEOUT.match(raw.strip())
    if m is None:
        raise bad_request(f"header 'Grpc-Timeout' must be digits and a unit (H, M, S, m, u, n), e.g. 10S "
                          f"or 500m; got '{raw}'", ("Grpc-Timeout", "malformed"))
    # gRPC turns a deadline beyond ~2,000,000 hours into one already past (its nanosecond
    # clock overflows): the call failed at once with 504. Longer than 100 days is as good as none.
    return min(int(m.group(1)) * _TIMEOUT_UNITS[m.group(2)], _MAX_TIMEOUT_S)


def _metadata_headers(metadata: Any) -> dict[str, str]:
    """The engine's initial metadata, as grpc-gateway passes it on: `Grpc-Metadata-<key>`."""
    out: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str) and not key.endswith("-bin") and _PRINTABLE.match(value):
            out[_METADATA_PREFIX + key] = value
    return out


def _disposition(binding: Binding, scope: Scope, headers: dict[str, str]) -> str:
    """`attachment; filename=...`: the engine's `content-disposition` metadata if it sent one,
    else `<resource>_<last path value><extension>`, e.g. backtest_2024-01-02.zip for
    /backtests/{backtest_id}/days/{date}/archive.zip."""
    sent = headers.pop(_METADATA_PREFIX + "content-disposition", None)
    if sent:
        return sent
    segments = binding.template.segments
    variables = binding.template.variables
    last = segments[-1] if segments else ""
    extension = "." + last.rsplit(".", 1)[1] if isinstance(last, str) and "." in last else ""
    stem = "download"
    if variables:
        collection = segments[variables[0].start - 1] if variables[0].start > 0 else ""
        resource = collection.removesuffix("s") if isinstance(collection, str) and collection else "download"
        stem = f"{resource}_{scope.get('path_params', {}).get(variables[-1].name, '')}"
    filename = _FILENAME_UNSAFE.sub("_", stem + extension).strip("_.") or "download"
    return f'attachment; filename="{filename}"'
