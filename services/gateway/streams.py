"""Server streams to HTTP: framings (SSE, NDJSON, raw bytes) and the pump that feeds them.

The pump reads and frames the gRPC call's messages in a producer task into a buffer bounded in
bytes (so a slow client slows only its own call, through gRPC flow control), writes whatever is
ready in pieces of at most 64 KiB, sends a heartbeat when the stream is idle, cancels the call
the moment the client goes, and gives up on a client that takes nothing for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import operator
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import status_pb2
from starlette.types import Receive

from .errors import status_from_rpc_error, status_to_dict
from .transcoding import dumps, to_dict

logger = logging.getLogger("hindsight.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
# The SSE event name of a failure after the first event. Not "error": EventSource reserves
# that name for its own connection errors (docs/architecture.md, "The event stream").
STREAM_ERROR_EVENT = "stream_error"
# Bytes of framed messages the producer gets ahead of the client before it stops reading
# (GatewaySettings.stream_buffer_bytes), and the most one send hands the server: uvicorn writes
# a body chunk whole into its transport after waiting for the transport's buffer to drain below
# its high-water mark (64 KiB), so a client that stops reading holds at most that and one piece.
BUFFER_BYTES = 256 * 1024
PIECE_BYTES = 64 * 1024


class Framing(Protocol):
    media_type: str
    heartbeat: bytes | None

    def opening(self) -> bytes: ...

    def message(self, message: Message) -> bytes: ...

    def error(self, status: status_pb2.Status) -> bytes: ...


class SseFraming:
    """text/event-stream: `id:` the message's `event_id`, `event:` its set oneof, `data:` JSON.

    A batch (a message whose one field is a repeated message with an `event_id`) takes the id
    of its last item, so that Last-Event-ID resumes a batched stream too.
    """

    media_type = SSE_MEDIA_TYPE
    heartbeat: bytes | None = b": keepalive\n\n"

    def __init__(self, retry_ms: int) -> None:
        self._retry_ms = retry_ms

    def opening(self) -> bytes:
        return f"retry: {self._retry_ms}\n\n".encode()

    def message(self, message: Message) -> bytes:
        id_of, oneof = sse_shape(message.DESCRIPTOR)
        event_id = id_of(message) if id_of else None
        head = f"id: {event_id}\n" if event_id is not None else ""
        kind = message.WhichOneof(oneof) if oneof else None
        if kind:
            head += f"event: {kind}\n"
        # json.dumps escapes newlines inside strings, so the data is always one line.
        return head.encode() + b"data: " + dumps(to_dict(message)) + b"\n\n"

    def error(self, status: status_pb2.Status) -> bytes:
        return f"event: {STREAM_ERROR_EVENT}\n".encode() + b"data: " + dumps(status_to_dict(status)) + b"\n\n"


IdOf = Callable[[Message], Any]


def _has_event_id(desc: Descriptor) -> bool:
    field = desc.fields_by_name.get("event_id")
    return field is not None and not field.is_repeated and field.message_type is None


def event_batch_field(desc: Descriptor) -> str | None:
    """The field of a batch of events (a message whose one field is a repeated message with
    an `event_id`), or None when `desc` is not one."""
    fields = desc.fields
    if len(fields) == 1 and fields[0].is_repeated and fields[0].message_type is not None \
            and _has_event_id(fields[0].message_type):
        return str(fields[0].name)
    return None


@functools.cache
def sse_shape(desc: Descriptor) -> tuple[IdOf | None, str | None]:
    """(how to read a message's SSE id, name of its first real oneof): fixed per message type."""
    id_of: IdOf | None = None
    name = event_batch_field(desc)
    if _has_event_id(desc):
        id_of = operator.attrgetter("event_id")
    elif name is not None:

        def id_of(message: Message) -> Any:
            items = getattr(message, name)
            return items[-1].event_id if len(items) else None
    for oneof in desc.oneofs:
        # protoc names the synthetic oneof of a proto3 `optional` field "_<field>".
        synthetic = len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name
        if not synthetic:
            return id_of, oneof.name
    return id_of, None


class NdjsonFraming:
    """application/x-ndjson: `{"result": ...}` per message, a final `{"error": ...}` on failure."""

    media_type = NDJSON_MEDIA_TYPE
    heartbeat: bytes | None = None  # a blank line would break naive line-by-line JSON readers

    def opening(self) -> bytes:
        return b""

    def message(self, message: Message) -> bytes:
        return b'{"result":' + dumps(to_dict(message)) + b"}\n"

    def error(self, status: status_pb2.Status) -> bytes:
        return b'{"error":' + dumps(status_to_dict(status)) + b"}\n"


class BytesFraming:
    """google.api.HttpBody: the `data` of each message, nothing else."""

    heartbeat: bytes | None = None

    def __init__(self, media_type: str) -> None:
        self.media_type = media_type

    def opening(self) -> bytes:
        return b""

    def message(self, message: Message) -> bytes:
        data: bytes = message.data  # a google.api.HttpBody
        return data

    def error(self, status: status_pb2.Status) -> bytes:
        # Raw bytes have no way to say "failed": the pump aborts the response instead.
        raise NotImplementedError


@dataclass(slots=True)
class _Failure:
    status: status_pb2.Status


_END = object()


class _TooSlow(Exception):
    """A send did not complete within the pump's send_timeout_s."""


def _alone(message: Message) -> tuple[Message]:
    return (message,)


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the request body must already have been read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def pump(call: grpc.aio.UnaryStreamCall, first: asyncio.Future[Any], framing: Framing, send: Send,
               disconnected: asyncio.Future[None], *, heartbeat_s: float, opening: bytes = b"",
               closing: asyncio.Future[Any] | None = None,
               unbatch: Callable[[Any], Iterable[Message]] | None = None,
               buffer_bytes: int = BUFFER_BYTES, send_timeout_s: float | None = None,
               reset: Callable[[str], None] | None = None) -> bool:
    """Write the call's messages to an HTTP response whose headers are already sent.

    `first` is the pending or finished first `call.read()`. With `unbatch`, each message the
    call yields is a batch and `unbatch(batch)` its messages, framed one by one. When `closing` completes, the
    response is ended cleanly after what is already queued (the client resumes elsewhere).
    Returns True when the response was completed, False when it was abandoned (client gone, a
    client that did not take a piece within `send_timeout_s`, or bytes that cannot carry an
    error). `reset(why)`, where the server offers one (protocol.py), then drops that client's
    connection at once.

    A producer task reads and frames the messages into a buffer of `buffer_bytes` (past it, it
    stops reading: gRPC flow control then holds the rest back in the engine); this coroutine
    sends what has accumulated, at most PIECE_BYTES per send, so that a client that does not
    read costs the server's transport at most its high-water mark and one piece. The two meet
    through one plain future per wake-up (no task or `asyncio.wait` per message), and the
    disconnect and shutdown futures wake the sender through done-callbacks.
    """
    loop = asyncio.get_running_loop()
    chunks: deque[bytes] = deque()  # framed messages not yet sent
    pending = 0  # their bytes
    ended: list[Any] = []  # [_END], [_Failure] or [an exception]: what followed the last chunk
    waiter: asyncio.Future[None] | None = None  # the sender, idle, waits on this
    room: asyncio.Future[None] | None = None  # the producer, buffer_bytes ahead, waits on this

    def wake(_: Any = None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_disconnect(_: Any) -> None:
        call.cancel()  # at once: the engine sees the client go even while a send is blocked
        wake()

    async def produce() -> None:
        nonlocal room, pending
        frame = framing.message
        items = unbatch or _alone
        try:
            message = await first
            while message is not grpc.aio.EOF:
                for item in items(message):
                    data = frame(item)
                    chunks.append(data)
                    pending += len(data)
                    if pending >= buffer_bytes:
                        wake()
                        room = loop.create_future()
                        await room
                wake()
                message = await call.read()
            ended.append(_END)
        except grpc.RpcError as exc:
            ended.append(_Failure(status_from_rpc_error(exc)))
        except Exception as exc:  # noqa: BLE001 - re-raised by the sender
            ended.append(exc)
        wake()

    def take(limit: int) -> bytes:
        """Up to `limit` bytes of whole framed messages off the buffer (at least one)."""
        nonlocal pending
        taken = [chunks.popleft()]
        size = len(taken[0])
        while chunks and size + len(chunks[0]) <= limit:
            size += len(chunks[0])
            taken.append(chunks.popleft())
        pending -= size
        if room is not None and pending < buffer_bytes and not room.done():
            room.set_result(None)
        return taken[0] if len(taken) == 1 else b"".join(taken)

    async def write(body: bytes, more: bool) -> None:
        message = {"type": "http.response.body", "body": body, "more_body": more}
        if send_timeout_s is None:
            await send(message)
            return
        try:
            async with asyncio.timeout(send_timeout_s):
                await send(message)
        except TimeoutError:
            raise _TooSlow from None

    async def write_all(more: bool) -> None:
        """Everything queued, in pieces; the last one ends the response unless `more`."""
        while chunks:
            body = take(PIECE_BYTES)
            if not chunks and not more:
                await write(body, False)
                return
            await write(body, True)
        if not more:
            await write(b"", False)

    producer = asyncio.create_task(produce())
    disconnected.add_done_callback(on_disconnect)
    if closing is not None:
        closing.add_done_callback(wake)
    try:
        if opening:
            await write(opening, True)
        while True:
            if not chunks and not ended:
                if disconnected.done():
                    return False
                if closing is not None and closing.done():
                    await write(b"", False)
                    return True
                waiter = loop.create_future()
                timer = loop.call_later(heartbeat_s, wake)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    waiter = None
                if disconnected.done():
                    return False
                if not chunks and not ended:
                    if closing is not None and closing.done():
                        await write(b"", False)
                        return True
                    if framing.heartbeat:
                        await write(framing.heartbeat, True)
                    continue
            elif disconnected.done():
                return False
            if not ended:
                if closing is not None and closing.done():
                    # What is queued, and no more: the producer would refill the buffer.
                    producer.cancel()
                    await asyncio.gather(producer, return_exceptions=True)
                    await write_all(more=False)
                    return True
                # more may follow (`ended` is only ever set after the last chunk is appended)
                await write(take(PIECE_BYTES), True)
                continue
            end = ended[0]
            if end is _END:
                await write_all(more=False)
                return True
            if isinstance(end, _Failure):
                if isinstance(framing, BytesFraming):
                    await write_all(more=True)
                    logger.warning("download aborted by the engine: code %d: %s", end.status.code, end.status.message)
                    return False
                chunks.append(framing.error(end.status))
                await write_all(more=False)
                return True
            await write_all(more=True)
            raise end
    except _TooSlow:
        # A piece not taken within send_timeout_s: the client is too far behind (it resumes
        # with Last-Event-ID). The server's reset (protocol.py) drops the connection and says so
        # in the log; wait for that to land, so that the server sees a client gone rather than
        # an unfinished response. Another server closes the connection when this returns.
        call.cancel()
        if reset is None:
            logger.info("ending a stream whose client did not take %d bytes within %g s", PIECE_BYTES,
                        send_timeout_s)
            return False
        reset(f"its stream was not read for {send_timeout_s:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(disconnected), 1.0)
        return False
    finally:
        disconnected.remove_done_callback(on_disconnect)
        if closing is not None:
            closing.remove_done_callback(wake)
        call.cancel()  # a no-op once the call has ended; frees it at once when the client went
        if not producer.done():
            producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
