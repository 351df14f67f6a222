"""Hardening of the gateway's connections (protocol.py) and streams (streams.py), over real sockets.

Connection limits (429 per client, 503 in all), the header-read timeout (408), malformed requests
(JSON 400), and event-stream clients that stop reading (disconnected, the engine's call
cancelled, a reading client unaffected; the pump's buffer and send deadline on their own).
Timeouts here are short and every wait for their effect is generous: nothing asserts how soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

from services.gateway import streams
from services.gateway.protocol import ConnectionLimits
from services.gateway.settings import GatewaySettings

from .conftest import FakeBacktestService, Gateways, StartGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_S = 30.0  # the most any effect below is waited for (each happens within a few seconds)


# ---- raw HTTP over a socket ------------------------------------------------------------------------

def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*_host_port(url))


async def _read_to_close(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection (a reset counts as closed)."""
    chunks = []

    async def read() -> None:
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionResetError:
                return
            if not data:
                return
            chunks.append(data)

    await asyncio.wait_for(read(), WAIT_S)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response with a content-length, the connection left open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    status, headers, _ = _parse(head)
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), WAIT_S)
    return status, headers, body


def _assert_json_error(headers: dict[str, str], body: bytes, code: int) -> dict[str, Any]:
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert set(error) == {"code", "message", "details"} and error["code"] == code and error["details"] == []
    return error


GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


# ---- the header-read timeout ---------------------------------------------------------------------

async def test_a_request_head_that_never_completes_gets_408_and_is_closed(start_gateway: StartGateway) -> None:
    url = await start_gateway(header_timeout_s=0.5)
    reader, writer = await _connect(url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Half: ")
    raw = await _read_to_close(reader)
    writer.close()
    status, headers, body = _parse(raw)
    assert status == 408 and headers["connection"] == "close"
    error = _assert_json_error(headers, body, 4)  # DEADLINE_EXCEEDED
    assert "within 0.5 s" in error["message"]


async def test_a_connection_that_sends_nothing_is_closed(start_gateway: StartGateway) -> None:
    url = await start_gateway(header_timeout_s=0.5)
    reader, writer = await _connect(url)
    raw = await _read_to_close(reader)
    writer.close()
    assert _parse(raw)[0] == 408


async def test_each_request_on_a_kept_alive_connection_has_the_timeout(start_gateway: StartGateway) -> None:
    url = await start_gateway(header_timeout_s=3.0)
    reader, writer = await _connect(url)
    # A head that comes in pieces, but within the timeout, is served; the connection stays open.
    for piece in (b"GET /heal", b"thz HTTP/1.1\r\n", b"Host: test\r\n", b"\r\n"):
        writer.write(piece)
        await asyncio.sleep(0.05)
    status, _, body = await _response(reader)
    assert status == 200 and body == b'{"status":"ok"}'
    writer.write(GET_HEALTHZ)
    assert (await _response(reader))[0] == 200
    # The next one stops halfway: 408, then the connection is closed.
    writer.write(b"GET /healthz HTTP/1.1\r\nHo")
    status, headers, body = _parse(await _read_to_close(reader))
    writer.close()
    assert status == 408
    _assert_json_error(headers, body, 4)


async def test_a_slow_request_head_does_not_hold_up_others(start_gateway: StartGateway) -> None:
    url = await start_gateway(header_timeout_s=60)
    _, slow = await _connect(url)
    slow.write(b"GET /healthz HTTP/1.1\r\n")
    reader, writer = await _connect(url)
    writer.write(GET_HEALTHZ)
    assert (await _response(reader))[0] == 200
    writer.close()
    slow.close()


# ---- malformed requests ------------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes, reason", [
    (b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Bad\tName: 1\r\n\r\n", "Invalid header token"),
    (b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Bad: \x01\r\n\r\n", "Invalid header value char"),
    (b"GET /a\tb HTTP/1.1\r\nHost: test\r\n\r\n", ""),
    (b"NOT HTTP AT ALL\r\n\r\n", ""),
])
async def test_a_malformed_request_gets_a_json_400(gateway: str, request_bytes: bytes, reason: str) -> None:
    reader, writer = await _connect(gateway)
    writer.write(request_bytes)
    status, headers, body = _parse(await _read_to_close(reader))
    writer.close()
    assert status == 400 and headers["connection"] == "close"
    error = _assert_json_error(headers, body, 3)  # INVALID_ARGUMENT
    assert error["message"].startswith("malformed HTTP request: ")
    assert reason in error["message"]


# ---- connection limits -----------------------------------------------------------------------------

async def _wait_admitted(url: str) -> None:
    """Until a new connection is served (the server has seen an earlier one close)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        reader, writer = await _connect(url)
        writer.write(GET_HEALTHZ)
        status = (await _response(reader))[0]
        writer.close()
        if status == 200:
            return
        assert time.monotonic() < deadline, "the gateway did not release a closed connection"
        await asyncio.sleep(0.05)


async def test_more_connections_than_a_client_may_hold_get_429(start_gateway: StartGateway) -> None:
    url = await start_gateway(max_connections_per_client=3, header_timeout_s=60)
    held = [await _connect(url) for _ in range(3)]
    # Each is served (and stays open).
    for reader, writer in held:
        writer.write(GET_HEALTHZ)
        assert (await _response(reader))[0] == 200
    reader, writer = await _connect(url)
    writer.write(GET_HEALTHZ)
    status, headers, body = _parse(await _read_to_close(reader))
    writer.close()
    assert status == 429 and headers["connection"] == "close" and headers["retry-after"] == "1"
    error = _assert_json_error(headers, body, 8)  # RESOURCE_EXHAUSTED
    assert "127.0.0.1" in error["message"] and "3" in error["message"]
    # The ones held still work; closing one makes room for another.
    reader, writer = held[0]
    writer.write(GET_HEALTHZ)
    assert (await _response(reader))[0] == 200
    writer.close()
    await _wait_admitted(url)
    for _, writer in held[1:]:
        writer.close()


async def test_more_connections_than_the_gateway_takes_get_503(start_gateway: StartGateway) -> None:
    url = await start_gateway(max_connections=2, max_connections_per_client=0, header_timeout_s=60)
    held = [await _connect(url) for _ in range(2)]
    for reader, writer in held:
        writer.write(GET_HEALTHZ)
        assert (await _response(reader))[0] == 200
    reader, writer = await _connect(url)
    status, headers, body = _parse(await _read_to_close(reader))  # answered without a request
    writer.close()
    assert status == 503 and headers["retry-after"] == "1"
    assert "2 open connections" in _assert_json_error(headers, body, 14)["message"]  # UNAVAILABLE
    for _, writer in held:
        writer.close()
    await _wait_admitted(url)


async def test_connection_counts() -> None:
    limits = ConnectionLimits(max_total=3, max_per_client=2, retry_after_s=7)
    assert limits.admit("a") is None and limits.admit("a") is None
    refused = limits.admit("a")
    assert refused is not None and refused.startswith(b"HTTP/1.1 429 ") and b"retry-after: 7\r\n" in refused
    assert limits.admit("b") is None
    refused = limits.admit("c")
    assert refused is not None and refused.startswith(b"HTTP/1.1 503 ")
    limits.release("a")
    limits.release("a")
    assert limits.by_client == {"b": 1} and limits.total == 1
    unlimited = ConnectionLimits(0, 0, 1)
    assert all(unlimited.admit("a") is None for _ in range(10_000))


async def test_settings_from_the_environment() -> None:
    env = {"HINDSIGHT_MAX_CONNECTIONS": "10", "HINDSIGHT_MAX_CONNECTIONS_PER_CLIENT": "0",
           "HINDSIGHT_HEADER_TIMEOUT_S": "2.5", "HINDSIGHT_SLOW_READER_TIMEOUT_S": "4",
           "HINDSIGHT_STREAM_BUFFER_BYTES": "1000", "HINDSIGHT_GRPC_STREAM_WINDOW_BYTES": "0",
           "HINDSIGHT_STREAM_BATCH_EVENTS": "50"}
    s = GatewaySettings.from_env(env)
    assert (s.max_connections, s.max_connections_per_client, s.header_timeout_s, s.slow_reader_timeout_s,
            s.stream_buffer_bytes, s.grpc_stream_window_bytes, s.stream_batch_events) == (10, 0, 2.5, 4.0, 1000, 0, 50)
    d = GatewaySettings(docs_dir=None)
    assert (d.max_connections, d.max_connections_per_client, d.header_timeout_s, d.slow_reader_timeout_s) == \
        (2048, 512, 10.0, 30.0)
    for bad in ({"HINDSIGHT_MAX_CONNECTIONS": "-1"}, {"HINDSIGHT_HEADER_TIMEOUT_S": "0"},
                {"HINDSIGHT_STREAM_BUFFER_BYTES": "0"}, {"HINDSIGHT_SLOW_READER_TIMEOUT_S": "x"}):
        with pytest.raises(ValueError):
            GatewaySettings.from_env(bad)


# ---- event-stream clients that stop reading ----------------------------------------------------------

PAD = "x" * 4000  # per event: a stalled client's socket buffers fill in a few hundred events


class EndlessService(FakeBacktestService):
    """Ids starting with `endless` stream forever (4 KB events, paced), until cancelled."""

    async def StreamBacktestBatches(self, request: pb.StreamBacktestBatchesRequest,
                                    context: grpc.aio.ServicerContext) -> AsyncIterator[pb.BacktestEventBatch]:
        bid = request.backtest_id
        if not bid.startswith("endless"):
            async for batch in super().StreamBacktestBatches(request, context):
                yield batch
            return
        self.record("StreamBacktestBatches", request, context)
        event_id = request.after_event_id
        try:
            while True:
                batch = pb.BacktestEventBatch()
                for _ in range(8):
                    event_id += 1
                    batch.events.add(event_id=event_id, backtest_id=bid,
                                     day_started=pb.DayStarted(date=PAD, day_number=event_id))
                yield batch
                await asyncio.sleep(0.005)  # ~6 MB/s: enough, without starving the test's loop
        finally:
            # Cancelled: at an await, or at a write after the client went (the generator closed).
            self.cancel_event(bid).set()


@contextlib.asynccontextmanager
async def endless_engine() -> AsyncIterator[tuple[str, EndlessService]]:
    server = grpc.aio.server()
    service = EndlessService()
    pb_grpc.add_BacktestServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", service
    finally:
        await server.stop(0)


class Reader(threading.Thread):
    """A client reading an event stream on its own thread (unaffected by the test's event loop),
    counting the SSE events it gets and checking their ids are consecutive."""

    def __init__(self, url: str, path: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(_host_port(url), timeout=WAIT_S)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.events = 0
        self.closed = False
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        buffer = b""
        try:
            while not self._halt.is_set():
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    return
                buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"id: "):
                            if int(line[4:]) != self.events + 1:
                                self.error = f"event {int(line[4:])} after {self.events}"
                            self.events += 1
        except OSError as exc:
            if not self._halt.is_set():
                self.error = repr(exc)

    def stop(self) -> None:
        self._halt.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.join(WAIT_S)


async def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_client_that_stops_reading_is_disconnected_and_a_reader_is_not(start_gateway: StartGateway) -> None:
    async with endless_engine() as (target, service):
        url = await start_gateway(target, slow_reader_timeout_s=2.0, stream_buffer_bytes=32 * 1024,
                                  heartbeat_s=0.2)
        reader = Reader(url, "/api/v1/backtests/endless-read/stream")
        reader.start()
        # The stalled client: a small receive buffer, a request, and nothing read after that.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(_host_port(url))
        stalled.sendall(b"GET /api/v1/backtests/endless-stall/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        try:
            # Its call to the engine is cancelled once the gateway gives up on it ...
            await asyncio.wait_for(service.cancel_event("endless-stall").wait(), WAIT_S)
            # ... and its connection is closed (after whatever its socket buffers held).
            stalled.setblocking(False)
            loop = asyncio.get_running_loop()

            async def drain() -> bytes:
                got = []
                while True:
                    try:
                        data = await loop.sock_recv(stalled, 65536)
                    except ConnectionResetError:
                        return b"".join(got)
                    if not data:
                        return b"".join(got)
                    got.append(data)

            head = await asyncio.wait_for(drain(), WAIT_S)
            assert head.startswith(b"HTTP/1.1 200 ")
            # The reader goes on as before: more events, in order, its connection open.
            seen = reader.events
            await _until(lambda: reader.events >= seen + 200 or reader.closed or reader.error is not None,
                         "the reading client stopped getting events")
            assert not reader.closed and reader.error is None
            assert not service.cancel_event("endless-read").is_set()
        finally:
            stalled.close()
            reader.stop()
        await asyncio.wait_for(service.cancel_event("endless-read").wait(), WAIT_S)


async def test_shutdown_ends_an_endless_stream_that_is_being_read(start_gateway: StartGateway,
                                                                   gateways: Gateways) -> None:
    """An engine stream that never ends, read as fast as it comes: shutdown completes the response
    (what was queued, then the end) and cancels the engine's call."""
    async with endless_engine() as (target, service):
        url = await start_gateway(target, grace_s=5)
        ids: list[int] = []
        async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as client, \
                client.stream("GET", "/api/v1/backtests/endless-shutdown/stream") as r:
            assert r.status_code == 200
            stopping = None
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
                if len(ids) == 50 and stopping is None:
                    stopping = asyncio.create_task(gateways.stop(url))
            # The loop ended: the response was completed (a cut connection raises instead).
        assert stopping is not None
        await asyncio.wait_for(stopping, WAIT_S)
        assert ids == list(range(1, len(ids) + 1))
        await asyncio.wait_for(service.cancel_event("endless-shutdown").wait(), WAIT_S)


class FakeCall:
    """Stands in for a grpc.aio server-stream call: `read()` makes a message per call, forever."""

    def __init__(self, size: int) -> None:
        self.reads = 0
        self.cancelled = False
        self._size = size

    async def read(self) -> Any:
        self.reads += 1
        await asyncio.sleep(0)
        return pb.BacktestEvent(event_id=self.reads, day_started=pb.DayStarted(date="y" * self._size))

    def cancel(self) -> bool:
        self.cancelled = True
        return True


async def test_the_pump_holds_a_bounded_buffer_and_gives_up_on_a_send_that_never_completes() -> None:
    call = FakeCall(1000)
    first = asyncio.ensure_future(call.read())
    sent: list[dict[str, Any]] = []
    blocked = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) > 1:  # the opening goes; then the client stops taking anything
            blocked.set()
            await asyncio.Event().wait()

    disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    completed = await asyncio.wait_for(streams.pump(
        call, first, streams.NdjsonFraming(), send, disconnected, heartbeat_s=60, opening=b"{}\n",
        buffer_bytes=16 * 1024, send_timeout_s=0.3), WAIT_S)
    assert completed is False and call.cancelled and blocked.is_set()
    assert time.monotonic() - started >= 0.3
    # ~1 KB per message: the producer stopped reading at the buffer's 16 KiB, plus the one piece
    # given to the blocked send (at most 64 KiB) and the message in hand.
    assert call.reads <= (16 + 64) + 2
    assert all(len(m["body"]) <= streams.PIECE_BYTES for m in sent)


async def test_the_pump_sends_a_big_batch_in_pieces_and_all_of_it() -> None:
    class BatchCall:
        def __init__(self) -> None:
            self.batches = [pb.BacktestEventBatch(events=[
                pb.BacktestEvent(event_id=b * 500 + i + 1, day_started=pb.DayStarted(date="z" * 900))
                for i in range(500)]) for b in range(3)]

        async def read(self) -> Any:
            return self.batches.pop(0) if self.batches else grpc.aio.EOF

        def cancel(self) -> bool:
            return False

    call = BatchCall()
    first = asyncio.ensure_future(call.read())
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        await asyncio.sleep(0)

    disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert await streams.pump(call, first, streams.NdjsonFraming(), send, disconnected, heartbeat_s=60,
                              unbatch=lambda batch: batch.events, buffer_bytes=128 * 1024, send_timeout_s=5)
    assert all(len(m["body"]) <= streams.PIECE_BYTES for m in sent)
    assert [m["more_body"] for m in sent] == [True] * (len(sent) - 1) + [False]
    lines = b"".join(m["body"] for m in sent).splitlines()
    assert [json.loads(line)["result"]["event_id"] for line in lines] == [str(i) for i in range(1, 1501)]
