"""Request streaming: the raw request body of a client-streaming binding, as its messages.

A client-streaming RPC whose http rule binds the body to a google.api.HttpBody field
(`Binding.request_stream`, e.g. `post: "/api/v1/datasets/{symbol}:upload" body: "chunk"`) is
served as an upload (endpoints.BindingEndpoint.upload): the first message is built from the path
and query as a unary request is (without the body); then the body, read piece by piece as the
server hands it over (~64 KiB), goes out in messages of `MESSAGE_BYTES` that each set only the
body field, `HttpBody{content_type: <the request's Content-Type>, data: <piece>}`.

Each message is written (and awaited: gRPC flow control) before more of the body is read, so an
engine that reads slowly slows the reading of the body, and the gateway holds at most one
message and the server's buffer of it (the server stops reading the socket past 64 KiB).

Those messages are serialized here, not by protobuf: the field's tag and length, the HttpBody's
content_type, the data's tag and length, then the pieces themselves, joined once
(`BodyEncoder.encode`). The bytes are those `SerializeToString` writes (tests/gateway/
test_uploads.py compares them); building a message object would copy the data three more times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.types import Receive

from .bindings import Binding

# Body bytes per message after the first (the engine takes messages up to 8 MiB). Fewer, larger
# messages cost less per byte on both sides; each is held once while it is written.
MESSAGE_BYTES = 1 << 20

_LENGTH_DELIMITED = 2
_HTTP_BODY_CONTENT_TYPE = b"\x0a"  # google.api.HttpBody field 1 (string content_type)
_HTTP_BODY_DATA = b"\x12"  # field 2 (bytes data)


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""


class ClientIdle(Exception):
    """The client sent none of its body for the idle timeout."""


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class BodyEncoder:
    """Serialized request messages that set only the binding's body field:
    `<Request>{<body field>: HttpBody{content_type, data}}`."""

    __slots__ = ("_content_type", "_tag")

    def __init__(self, binding: Binding, content_type: str) -> None:
        field = binding.request_class.DESCRIPTOR.fields_by_name[binding.body]
        self._tag = varint(field.number << 3 | _LENGTH_DELIMITED)
        ct = content_type.encode("utf-8")
        # proto3: an empty string is not written.
        self._content_type = _HTTP_BODY_CONTENT_TYPE + varint(len(ct)) + ct if ct else b""

    def encode(self, pieces: list[bytes | memoryview], size: int) -> bytes:
        """One message whose data is the pieces (`size` bytes in all), joined."""
        data_length = varint(size)
        inner = len(self._content_type) + 1 + len(data_length) + size
        return b"".join([self._tag, varint(inner), self._content_type, _HTTP_BODY_DATA, data_length, *pieces])


class Rechunker:
    """Pieces of any size in, runs of exactly `size` bytes out (the last one shorter), with no
    copy: a piece that straddles a boundary is split with memoryviews."""

    __slots__ = ("_held", "_pieces", "size")

    def __init__(self, size: int = MESSAGE_BYTES) -> None:
        self.size = size
        self._pieces: list[bytes | memoryview] = []
        self._held = 0

    def add(self, piece: bytes) -> Iterator[list[bytes | memoryview]]:
        """The runs of `size` bytes that `piece` completes."""
        view: bytes | memoryview = piece
        while self._held + len(view) >= self.size:
            take = self.size - self._held
            if take == len(view):
                run, view = [*self._pieces, view], b""
            else:
                if not isinstance(view, memoryview):
                    view = memoryview(view)
                run, view = [*self._pieces, view[:take]], view[take:]
            self._pieces, self._held = [], 0
            yield run
        if len(view):
            self._pieces.append(view)
            self._held += len(view)

    def rest(self) -> tuple[list[bytes | memoryview], int]:
        """What is held (less than `size` bytes) and its size; held no more."""
        pieces, held = self._pieces, self._held
        self._pieces, self._held = [], 0
        return pieces, held


async def body_pieces(receive: Receive, idle_timeout_s: float) -> AsyncIterator[bytes]:
    """The request body as the server hands it over; ClientGone if the client goes away first,
    ClientIdle if it sends nothing for `idle_timeout_s`."""
    while True:
        try:
            async with asyncio.timeout(idle_timeout_s):
                message: Any = await receive()
        except TimeoutError:
            raise ClientIdle from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        piece = message.get("body", b"")
        if piece:
            yield piece
        if not message.get("more_body", False):
            return
