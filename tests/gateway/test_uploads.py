"""Request streaming: a client-streaming RPC whose body is a google.api.HttpBody field is served as
an upload (services/gateway/uploads.py), over real HTTP against the session's fake engine, which
records every message of each client stream (conftest.FakeDatasetService, EchoService.Ingest).
The pieces without a server: test_upload_pieces.py.

What is checked: the exact message sequence (the first message from the path and query, no data;
then pieces of `MESSAGE_BYTES` carrying the request's Content-Type; their concatenation is the
body), the size limit (Content-Length before anything is read or called; chunked while
streaming, the call cancelled), the engine's errors (UPLOAD_TOO_LARGE → 413, other
RESOURCE_EXHAUSTED → 429, field violations → 400), clients that go away, stall or reset
mid-body (the call cancelled, never ended), a body read only as fast as the engine takes it,
and the session cookie's origin check.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.rpc import code_pb2
from hindsight.v1 import datasets_pb2 as dpb

from services.gateway.uploads import MESSAGE_BYTES

from .conftest import FakeBacktestService, StartGateway, Upload, echo_class

pytestmark = pytest.mark.asyncio(loop_scope="session")

MIB = 1 << 20
UPLOAD = "/api/v1/datasets/{}:upload"


def body_of(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


async def one_upload(fake: FakeBacktestService, *, timeout: float = 10) -> Upload:
    """The one client stream the fake engine has seen (waiting for it to start)."""
    deadline = time.monotonic() + timeout
    while not fake.uploads:
        assert time.monotonic() < deadline, "the engine saw no call"
        await asyncio.sleep(0.01)
    assert len(fake.uploads) == 1, [u.method for u in fake.uploads]
    return fake.uploads[0]


async def cancelled(upload: Upload, timeout: float = 10) -> bool:
    await asyncio.wait_for(upload.cancelled.wait(), timeout)
    return upload.cancelled.is_set() and not upload.ended


def assert_pieces(upload: Upload, body: bytes, content_type: str) -> None:
    """Messages after the first: only the body field, `content_type` each, MESSAGE_BYTES each but
    the last; their data is the body."""
    pieces = upload.messages[1:]
    assert pieces, "no data messages"
    for message in pieces:
        assert message.ListFields()[0][0].message_type.full_name == "google.api.HttpBody"
        assert len(message.ListFields()) == 1, message  # nothing but the body field
    field = pieces[0].ListFields()[0][0].name
    bodies = [getattr(m, field) for m in pieces]
    assert [b.content_type for b in bodies] == [content_type] * len(bodies)
    assert [len(b.data) for b in bodies[:-1]] == [MESSAGE_BYTES] * (len(bodies) - 1)
    assert 0 < len(bodies[-1].data) <= MESSAGE_BYTES
    assert b"".join(b.data for b in bodies) == body


# ---- raw HTTP -------------------------------------------------------------------------------------

async def connect(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def head(path: str, **headers: str | int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-cased), body (by Content-Length). A 100 Continue
    before it is skipped."""
    async def read() -> tuple[int, dict[str, str], bytes]:
        while True:
            status_line = (await reader.readline()).decode()
            assert status_line.startswith("HTTP/1.1 "), status_line
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().rstrip("\r\n")):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(status_line.split()[1])
            if status != 100:
                return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))

    return await asyncio.wait_for(read(), timeout)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (SO_LINGER 0): the peer learns at once, whatever is unsent."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def error_info(body: dict[str, Any]) -> list[str]:
    return [d["reason"] for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]


# ---- the message sequence -------------------------------------------------------------------------

async def test_a_large_body_arrives_intact_in_pieces_of_a_mebibyte(client: httpx.AsyncClient,
                                                                   fake: FakeBacktestService) -> None:
    body = body_of(50 * MIB + 12345)
    r = await client.post(UPLOAD.format("NIFTY50") + "?timezone=Asia/Kolkata&calendar=XBOM", content=body,
                          headers={"content-type": "text/csv", "x-request-id": "up-1",
                                   "authorization": "Bearer k-1"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["x-request-id"] == "up-1"
    assert r.json()["dataset"] == {**r.json()["dataset"], "symbol": "NIFTY50", "bars": str(len(body)),
                                   "timezone": "Asia/Kolkata", "calendar": "XBOM"}
    upload = await one_upload(fake)
    assert upload.method == "UploadDataset" and upload.ended and not upload.cancelled.is_set()
    assert upload.messages[0] == dpb.UploadDatasetRequest(symbol="NIFTY50", timezone="Asia/Kolkata", calendar="XBOM")
    assert not upload.messages[0].HasField("chunk")  # the first message carries no data
    assert len(upload.messages) == 1 + 51
    assert_pieces(upload, body, "text/csv")
    assert upload.metadata["x-request-id"] == "up-1" and upload.metadata["authorization"] == "Bearer k-1"
    assert upload.metadata["x-forwarded-for"] == "127.0.0.1"


async def test_every_query_parameter_binds_to_the_first_message(client: httpx.AsyncClient,
                                                                fake: FakeBacktestService) -> None:
    query = "timezone=UTC&calendar=XNYS&timeframe=5m&description=my%20data%20%E2%9C%93&format=csv.gz"
    r = await client.post(UPLOAD.format("SPX.5m") + "?" + query, content=b"\x1f\x8b gz",
                          headers={"content-type": "application/gzip"})
    assert r.status_code == 200, r.text
    upload = await one_upload(fake)
    assert upload.messages[0] == dpb.UploadDatasetRequest(symbol="SPX.5m", timezone="UTC", calendar="XNYS",
                                                          timeframe="5m", description="my data ✓", format="csv.gz")
    assert_pieces(upload, b"\x1f\x8b gz", "application/gzip")


async def test_the_option_chain_upload_is_served_the_same_way(client: httpx.AsyncClient,
                                                              fake: FakeBacktestService) -> None:
    body = body_of(MIB + 1, seed=3)
    r = await client.post("/api/v1/datasets/NIFTY50/options:upload?format=parquet", content=body,
                          headers={"content-type": "application/vnd.apache.parquet"})
    assert r.status_code == 200, r.text
    upload = await one_upload(fake)
    assert upload.method == "UploadOptionChain"
    assert upload.messages[0] == dpb.UploadOptionChainRequest(symbol="NIFTY50", format="parquet")
    assert_pieces(upload, body, "application/vnd.apache.parquet")


async def test_nested_repeated_and_enum_query_parameters_and_a_two_byte_field_tag(
        client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    """The generic transcoding (EchoService.Ingest: the body field is number 20)."""
    body = body_of(2 * MIB, seed=5)
    r = await client.post("/test/v1/ingest/i-9?inner.name=n&inner.level=4&tags=a&tags=b&color=COLOR_BLUE",
                          content=body, headers={"content-type": "application/x-thing; v=1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "i-9", "content_type": "application/x-thing; v=1", "size": len(body), "label": "a,b"}
    upload = await one_upload(fake)
    ingest = echo_class("IngestRequest")
    assert upload.messages[0] == ingest(id="i-9", inner=echo_class("Inner")(name="n", level=4), tags=["a", "b"],
                                        color=2)
    assert_pieces(upload, body, "application/x-thing; v=1")


async def test_without_a_content_type_the_pieces_say_octet_stream(gateway: str, fake: FakeBacktestService) -> None:
    reader, writer = await connect(gateway)
    writer.write(head(UPLOAD.format("RAW"), content_length=5) + b"a,b\n1")
    status, _, _ = await read_response(reader)
    writer.close()
    assert status == 200
    assert_pieces(await one_upload(fake), b"a,b\n1", "application/octet-stream")


async def test_an_empty_body_is_the_first_message_alone(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.post(UPLOAD.format("EMPTY"), content=b"", headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["dataset"]["bars"] == "0"
    upload = await one_upload(fake)
    assert upload.ended and upload.messages == [dpb.UploadDatasetRequest(symbol="EMPTY")]


async def test_a_chunked_body_and_expect_100_continue(gateway: str, fake: FakeBacktestService) -> None:
    """What curl sends for a file from a pipe: Expect: 100-continue, then chunks."""
    body = body_of(3 * MIB + 7, seed=11)
    reader, writer = await connect(gateway)
    writer.write(head(UPLOAD.format("PIPED"), content_type="text/csv", transfer_encoding="chunked",
                      expect="100-continue"))
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 100 ")
    assert await reader.readline() == b"\r\n"
    for i in range(0, len(body), 100_000):
        piece = body[i:i + 100_000]
        writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
    writer.write(b"0\r\n\r\n")
    status, _, content = await read_response(reader)
    writer.close()
    assert status == 200, content
    assert_pieces(await one_upload(fake), body, "text/csv")


# ---- limits -------------------------------------------------------------------------------------

async def test_a_content_length_over_the_limit_is_413_before_anything_is_read(start_gateway: StartGateway,
                                                                              fake: FakeBacktestService) -> None:
    base = await start_gateway(max_upload_bytes=MIB)
    reader, writer = await connect(base)
    # The head only: the answer comes without a byte of the body (and without 100 Continue).
    writer.write(head(UPLOAD.format("BIG"), content_type="text/csv", content_length=MIB + 1, expect="100-continue"))
    status, headers, content = await read_response(reader)
    writer.close()
    assert status == 413 and headers["content-type"] == "application/json"
    error = json.loads(content)
    assert error["code"] == code_pb2.RESOURCE_EXHAUSTED and error_info(error) == ["UPLOAD_TOO_LARGE"]
    assert "limit of 1048576 bytes" in error["message"]
    assert fake.uploads == []  # no call opened
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:  # exactly the limit is fine
        r = await c.post(UPLOAD.format("FITS"), content=body_of(MIB), headers={"content-type": "text/csv"})
        assert r.status_code == 200 and r.json()["dataset"]["bars"] == str(MIB)
        # The unary routes keep their own limit (max_body_bytes), and uploads are not held to it.
        big_json = json.dumps({"symbol": "x" * (2 * MIB)})
        assert (await c.post("/api/v1/backtests", content=big_json,
                             headers={"content-type": "application/json"})).status_code == 413


async def test_a_chunked_body_over_the_limit_is_413_and_the_call_cancelled(start_gateway: StartGateway,
                                                                           fake: FakeBacktestService) -> None:
    base = await start_gateway(max_upload_bytes=2 * MIB)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        piece = body_of(256 * 1024)
        for _ in range(16):  # 4 MiB
            sent += len(piece)
            yield piece

    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post(UPLOAD.format("SLOW-GROWING"), content=chunks(), headers={"content-type": "text/csv"})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == code_pb2.RESOURCE_EXHAUSTED and error_info(r.json()) == ["UPLOAD_TOO_LARGE"]
    upload = await one_upload(fake)
    assert await cancelled(upload)
    assert upload.data_bytes <= 2 * MIB  # nothing past the limit reached the engine


async def test_a_body_answered_early_is_drained_for_the_header_timeout_then_closed(
        start_gateway: StartGateway, fake: FakeBacktestService) -> None:
    """A client that keeps sending after the 413 reads the 413, then has its connection closed."""
    base = await start_gateway(max_upload_bytes=MIB, header_timeout_s=0.5)
    reader, writer = await connect(base)
    writer.write(head(UPLOAD.format("ENDLESS"), transfer_encoding="chunked"))
    piece = b"%x\r\n" % (64 * 1024) + bytes(64 * 1024) + b"\r\n"
    for _ in range(20):
        writer.write(piece)
    status, _, _ = await read_response(reader)
    assert status == 413
    started = time.monotonic()
    with pytest.raises((ConnectionError, OSError)):
        while time.monotonic() - started < 10:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
    assert 0.3 < time.monotonic() - started < 5
    writer.close()


async def test_a_body_answered_early_that_ends_leaves_the_connection_usable(start_gateway: StartGateway,
                                                                         fake: FakeBacktestService) -> None:
    base = await start_gateway(max_upload_bytes=MIB, header_timeout_s=0.5)
    reader, writer = await connect(base)
    writer.write(head(UPLOAD.format("OVER"), transfer_encoding="chunked"))
    piece = b"%x\r\n" % (64 * 1024) + bytes(64 * 1024) + b"\r\n"
    for _ in range(40):  # 2.5 MiB
        writer.write(piece)
    writer.write(b"0\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 413
    await asyncio.sleep(1)  # past the drain's limit: the body had ended, nothing is closed
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    status, _, content = await read_response(reader)
    assert (status, content) == (200, b'{"status":"ok"}')
    writer.close()


async def test_the_engines_upload_too_large_is_413_and_other_exhaustion_429(client: httpx.AsyncClient,
                                                                            fake: FakeBacktestService) -> None:
    r = await client.post(UPLOAD.format("TOO-LARGE"), content=body_of(3 * MIB), headers={"content-type": "text/csv"})
    assert r.status_code == 413, r.text
    assert r.json()["message"] == "the upload is larger than the engine's limit of 3 bytes"
    assert error_info(r.json()) == ["UPLOAD_TOO_LARGE"] and "retry-after" not in r.headers
    r = await client.post(UPLOAD.format("QUOTA"), content=body_of(3 * MIB), headers={"content-type": "text/csv"})
    assert r.status_code == 429, r.text
    assert error_info(r.json()) == ["STORED_BYTES"] and r.headers["retry-after"] == "7"


async def test_a_refusal_or_deadline_midway_keeps_its_status_however_the_writes_race_it(
        client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    """grpc.aio turns a write under way as the call ends into INTERNAL "Internal error from Core";
    it took ~2 % of these (endpoints._EndStatuses): none may be a 500."""
    answers = []
    for _ in range(100):
        r = await client.post(UPLOAD.format("TOO-LARGE"), content=bytes(4 * MIB), headers={"content-type": "text/csv"})
        answers.append((r.status_code, r.json()["code"], error_info(r.json())))
    for timeout in ("0H", "1n", "10u", "100u", "1m", "3m") * 5:
        for size in (1, 2 * MIB):  # the half-close fails, or a write
            r = await client.post(UPLOAD.format("SLOW-DEADLINE"), content=bytes(size),
                                  headers={"content-type": "text/csv", "grpc-timeout": timeout})
            answers.append((r.status_code, r.json()["code"], error_info(r.json())))
    assert answers == [(413, code_pb2.RESOURCE_EXHAUSTED, ["UPLOAD_TOO_LARGE"])] * 100 + \
        [(504, code_pb2.DEADLINE_EXCEEDED, [])] * 60


async def test_field_violations_from_the_engine_are_a_400_with_them(client: httpx.AsyncClient,
                                                                    fake: FakeBacktestService) -> None:
    r = await client.post(UPLOAD.format("INVALID") + "?timezone=Mars/Olympus", content=b"time,close\n1,abc\n",
                          headers={"content-type": "text/csv"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == code_pb2.INVALID_ARGUMENT and body["message"] == "chunk: the file has 2 problems"
    (detail,) = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["field_violations"] == [
        {"field": "chunk", "description": "line 3, column 'close': 'abc' is not a number"},
        {"field": "timezone", "description": "unknown zone 'Mars/Olympus'"}]
    assert (await one_upload(fake)).ended


@pytest.mark.parametrize(("query", "field", "words"), [
    ("nope=1", "nope", "unknown query parameter"),
    ("chunk.data=eA", "chunk.data", "the body already sets"),  # the body field is the body's
    ("timezone=UTC&timezone=UTC", "timezone", "more than once"),
])
async def test_a_bad_query_parameter_is_400_before_any_call(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                            query: str, field: str, words: str) -> None:
    r = await client.post(UPLOAD.format("Q") + "?" + query, content=b"a,b\n", headers={"content-type": "text/csv"})
    assert r.status_code == 400, r.text
    assert words in r.json()["message"]
    assert r.json()["details"][0]["field_violations"][0]["field"] == field
    assert fake.uploads == []


async def test_a_bad_header_is_400_before_any_call(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.post(UPLOAD.format("H"), content=b"a", headers={"grpc-timeout": "soon"})
    assert r.status_code == 400 and "Grpc-Timeout" in r.json()["message"]
    assert fake.uploads == []


# ---- clients that go away, stall or reset -----------------------------------------------------------

async def test_a_truncated_upload_has_its_call_cancelled(gateway: str, fake: FakeBacktestService) -> None:
    """Headers and half the declared Content-Length, then the connection closes: the engine's call
    is cancelled (never ended), so it keeps nothing."""
    declared = 4 * MIB
    _, writer = await connect(gateway)
    writer.write(head(UPLOAD.format("SLOW-HALF"), content_type="text/csv", content_length=declared))
    writer.write(body_of(declared // 2))
    await writer.drain()
    upload = await one_upload(fake)
    deadline = time.monotonic() + 10
    while upload.data_bytes < MIB:  # the call is open and data flowing
        assert time.monotonic() < deadline, upload.data_bytes
        await asyncio.sleep(0.01)
    writer.close()
    assert await cancelled(upload)
    assert upload.data_bytes <= declared // 2


async def test_a_stalled_body_is_408_and_its_call_cancelled(start_gateway: StartGateway,
                                                            fake: FakeBacktestService) -> None:
    base = await start_gateway(upload_idle_timeout_s=0.3)
    reader, writer = await connect(base)
    writer.write(head(UPLOAD.format("SLOW-STALL"), content_type="text/csv", content_length=MIB) + b"a,b\n")
    started = time.monotonic()
    status, headers, content = await read_response(reader)
    assert 0.25 < time.monotonic() - started < 5
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(content)["code"] == code_pb2.DEADLINE_EXCEEDED
    assert await reader.read() == b""  # closed
    writer.close()
    assert await cancelled(await one_upload(fake))


async def test_the_body_is_read_only_as_fast_as_the_engine_takes_it(gateway: str, fake: FakeBacktestService) -> None:
    """An engine that stops reading (HOLD) stops the reading of the body: the client can send
    only what the buffers on the way hold (the gateway never holds the body), and a client that
    then resets the connection has the call cancelled although the engine reads nothing."""
    declared = 1 << 30
    _, writer = await connect(gateway)
    writer.write(head(UPLOAD.format("HOLD"), content_type="text/csv", content_length=declared))
    block = bytes(MIB)
    sent, idle_since = 0, time.monotonic()
    while time.monotonic() - idle_since < 1.0:
        writer.write(block)
        try:
            await asyncio.wait_for(writer.drain(), 0.2)
        except TimeoutError:
            continue
        sent += len(block)
        idle_since = time.monotonic()
        assert sent < 128 * MIB, "the gateway reads the body faster than the engine takes it"
    upload = await one_upload(fake)
    assert upload.data_bytes <= MIB  # the engine has taken at most the first piece
    assert sent < 64 * MIB  # socket buffers, one message, gRPC's windows
    reset(writer)
    assert await cancelled(upload)


# ---- the session cookie -----------------------------------------------------------------------------

async def test_an_upload_authenticated_by_the_session_cookie_needs_a_same_origin(
        client: httpx.AsyncClient, gateway: str, fake: FakeBacktestService) -> None:
    cookie = {"cookie": "hindsight_session=hsk_abc", "content-type": "text/csv"}
    for refused in ({}, {"origin": "https://evil.example"}, {"referer": "https://evil.example/page"}):
        r = await client.post(UPLOAD.format("C"), content=b"a,b\n", headers={**cookie, **refused})
        assert r.status_code == 403 and r.json()["code"] == code_pb2.PERMISSION_DENIED, refused
    assert fake.uploads == []
    r = await client.post(UPLOAD.format("C"), content=b"a,b\n", headers={**cookie, "origin": gateway})
    assert r.status_code == 200, r.text
    assert (await one_upload(fake)).metadata["authorization"] == "Bearer hsk_abc"


# ---- the document -------------------------------------------------------------------------------------

async def test_the_served_document_says_the_gateways_limit(start_gateway: StartGateway) -> None:
    base = await start_gateway(max_upload_bytes=3 * MIB)
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        doc = (await c.get("/openapi.json")).json()
    assert "at most 3 MiB" in doc["paths"]["/api/v1/datasets/{symbol}:upload"]["post"]["requestBody"]["description"]
