"""The gateway's HTTP/1.1 connections: uvicorn's httptools protocol with limits of its own.

`protocol_class(settings)` is handed to uvicorn as `http=` (app.build_server). Per connection it
adds what uvicorn does not do:

- **Connection limits.** Open connections are counted in all and per peer IP address. One over
  `max_connections` is answered 503 (UNAVAILABLE), one over `max_connections_per_client` 429
  (RESOURCE_EXHAUSTED), each with Retry-After and the gateway's error body, and closed. The
  answer goes out as soon as the connection opens (before its request is read); the socket is
  then shut for writing and its input discarded until the client closes it or for at most
  _LINGER_S, so that the client reads the answer rather than a reset.
- **Header-read timeout.** A request line and headers not complete `header_timeout_s` after the
  connection opened, or after the request's first byte on a kept-alive connection, get 408 and
  the connection is closed (slowloris). Idle kept-alive connections are uvicorn's
  `timeout_keep_alive` as before.
- **Malformed requests** get the gateway's JSON 400 (`{"code": 3, "message": "malformed HTTP
  request: <the parser's reason>", "details": []}`) instead of uvicorn's plain text.
- **Bodies answered early.** A request answered before its body has all arrived (a 413, an
  upload the engine refused midway) has the rest of its body read and dropped (uvicorn's way, so
  that a client still sending reads the answer rather than a reset), for `header_timeout_s` at
  most: then the connection is closed, so a body nobody reads cannot keep it busy for ever.
- **Clients gone mid-request.** `scope[LOST_KEY]()` is a future done when the connection is lost;
  while its request is unanswered and reading is paused (an upload waiting for the engine), the
  socket's TCP state is looked at every _PROBE_S, so a client that resets the connection then is
  noticed too (Linux).
- **Slow readers.** A connection whose client takes none of a response for
  `slow_reader_timeout_s` (the transport's buffer above its high-water mark all that time, not
  shrinking) is reset, unsent bytes dropped (the kernel's too). An event stream's pump resets
  its connection the same way when a piece of it is not taken within that time
  (`scope[RESET_KEY]`). An event-stream client resumes with Last-Event-ID.

httptools is a declared dependency. Where it cannot be installed, the same runs on uvicorn's h11
protocol, except that the header-read timeout covers a connection's first request only (later
ones on a kept-alive connection have uvicorn's keep-alive timeout until their first byte) and a
malformed request's 400 says h11's generic reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from typing import Any

import grpc
from uvicorn.protocols.utils import get_remote_addr

from .errors import error_body, make_status
from .settings import GatewaySettings

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - exercised only where httptools is missing
    httptools = None
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

logger = logging.getLogger("hindsight.gateway")

# How long a refused connection is kept (shut for writing, reading and discarding) so that its
# client reads the refusal instead of a connection reset.
_LINGER_S = 1.0
_LOG_EVERY_S = 10.0
# How often a connection whose reading is paused is looked at for a client that has closed it
# (GatewayProtocol.lost).
_PROBE_S = 0.5
# Linux's TCP states (include/net/tcp_states.h): a connection the peer has not closed is one of
# these; CLOSE_WAIT (it sent FIN) and CLOSE (it reset) are not.
_TCP_OPEN_STATES = frozenset({1, 4, 5})  # ESTABLISHED, FIN_WAIT1, FIN_WAIT2

# The scope key of a request's `reset(why)`: drops its connection at once (see
# GatewayProtocol.reset). Absent under another server.
RESET_KEY = "hindsight.reset_connection"
# The scope key of a request's `lost()`: a future done once its connection is lost (an upload
# waiting on the engine learns that its client went away). Absent under another server.
LOST_KEY = "hindsight.connection_lost"

__all__ = ["LOST_KEY", "RESET_KEY", "ConnectionLimits", "protocol_class"]


class ConnectionLimits:
    """Open connections in all and per peer address, shared by one server's connections."""

    def __init__(self, max_total: int, max_per_client: int, retry_after_s: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.retry_after_s = retry_after_s
        self.total = 0
        self.by_client: dict[str, int] = {}
        # Refusals are logged at most every _LOG_EVERY_S, with how many there were since.
        self.refused = 0
        self._refused_logged = 0
        self._logged_at = float("-inf")

    def admit(self, client: str) -> bytes | None:
        """Count a new connection from `client`, or return the response that refuses it."""
        if self.max_total and self.total >= self.max_total:
            return self._refusal(503, grpc.StatusCode.UNAVAILABLE,
                                 f"the gateway has its limit of {self.max_total} open connections; retry later")
        held = self.by_client.get(client, 0)
        if self.max_per_client and held >= self.max_per_client:
            return self._refusal(429, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                 f"too many open connections from {client} (the limit is {self.max_per_client}); "
                                 "reuse or close some, then retry")
        self.total += 1
        self.by_client[client] = held + 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        held = self.by_client.get(client, 0) - 1
        if held > 0:
            self.by_client[client] = held
        else:
            self.by_client.pop(client, None)

    def _refusal(self, status: int, code: grpc.StatusCode, message: str) -> bytes:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            logger.warning("refused %d connection(s) since the last report; the latest: %d %s",
                           self.refused - self._refused_logged, status, message)
            self._logged_at, self._refused_logged = now, self.refused
        return _response(status, error_body(make_status(code, message)), retry_after_s=self.retry_after_s)


_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 429: b"Too Many Requests", 503: b"Service Unavailable"}


def _response(status: int, body: bytes, *, retry_after_s: int | None = None) -> bytes:
    """A whole `connection: close` response with a JSON body."""
    head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body)]
    if retry_after_s is not None:
        head.append(b"retry-after: %d\r\n" % retry_after_s)
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + body


def _error(status: int, code: grpc.StatusCode, message: str) -> bytes:
    return _response(status, error_body(make_status(code, message)))


class GatewayProtocol(_Base):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol with connection limits, a header-read timeout, JSON 400s and a
    slow-reader timeout (see the module's docstring). Made per server by `protocol_class`."""

    limits: ConnectionLimits
    header_timeout_s: float
    slow_reader_timeout_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer: str | None = None  # counted in `limits` under this address while open
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # the parser is inside a request line or headers
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_size = 0  # bytes waiting when the stall timer was (re)armed
        self._reset = False
        self._parse_error = ""
        self._lost: asyncio.Future[None] | None = None  # made when a request asks (LOST_KEY)
        self._connection_lost = False
        self._probe_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        if httptools is not None:
            self.parser = _Parser(self)
            try:
                self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn does
            except AttributeError:  # pragma: no cover - httptools < 0.6.3
                pass

    # ---- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        remote = get_remote_addr(transport)
        peer = remote[0] if remote else ""
        refusal = self.limits.admit(peer)
        if refusal is not None:
            self._refuse(transport, refusal)
            return
        self._peer = peer
        super().connection_made(transport)
        self._arm_head_timer()

    def _refuse(self, transport: asyncio.Transport, response: bytes) -> None:
        self._refused = True
        self.transport = transport
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()
            self._linger = self.loop.call_later(_LINGER_S, transport.abort)
        else:  # pragma: no cover - TLS transports cannot half-close
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            if self._linger is not None:
                self._linger.cancel()
            return
        if self._peer is not None:
            self.limits.release(self._peer)
            self._peer = None
        for timer in (self._head_timer, self._stall_timer, self._drain_timer, self._probe_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._stall_timer = self._drain_timer = self._probe_timer = None
        self._connection_lost = True
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        super().connection_lost(exc)

    def lost(self) -> asyncio.Future[None]:
        """A future done once the connection is lost (the client closed it, or it was reset).

        While a request that asked for it is unanswered, a client that resets the connection
        while the server has stopped reading it (its request body not taken: an upload whose
        engine does not read) is noticed too, within _PROBE_S: the event loop learns of a close
        only by reading, so the socket's TCP state is looked at instead. (A plain close is not
        seen before the bytes sent ahead of it are read: the client's kernel sends its FIN after
        them.)"""
        if self._lost is None:
            self._lost = self.loop.create_future()
            if self._connection_lost:
                self._lost.set_result(None)
        if self._probe_timer is None and not self._lost.done():
            self._probe_timer = self.loop.call_later(_PROBE_S, self._probe)
        return self._lost

    def _probe(self) -> None:
        self._probe_timer = None
        if self._connection_lost or self.cycle is None or self.cycle.response_complete:
            return  # the next request that asks starts it again
        if not self.transport.is_reading() and _peer_closed(self.transport):
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            logger.info("closing the connection from %s: the client closed it during its request", client)
            self.transport.abort()  # connection_lost: the request sees http.disconnect, `lost` is done
            return
        self._probe_timer = self.loop.call_later(_PROBE_S, self._probe)

    def eof_received(self) -> bool | None:
        if self._refused:
            self.transport.close()
            return None
        return super().eof_received()  # type: ignore[no-any-return]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # discarded: the refusal is on its way
        super().data_received(data)
        if self._in_head and self._head_timer is None and not self.transport.is_closing():
            # The first bytes of a request on a kept-alive connection: its head has
            # header_timeout_s from now. (Armed here rather than in on_message_begin, so that a
            # request whose head comes in one read costs no timer.)
            self._arm_head_timer()
        elif httptools is None and self.cycle is not None and self._head_timer is not None:  # pragma: no cover
            self._cancel_head_timer()  # h11: the first request's head is complete

    # ---- the header-read timeout ----------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        # How the app drops a connection whose client does not keep up (streams.pump). The
        # request's task has been scheduled, not run: it sees this.
        self.scope[RESET_KEY] = self.reset
        self.scope[LOST_KEY] = self.lost

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._drain_timer is not None:
            # The rest of a body answered early has arrived: the connection is idle now, kept
            # alive for timeout_keep_alive as after any response (uvicorn armed that timer when
            # the response completed, and the body's bytes since cancelled it).
            self._drain_timer.cancel()
            self._drain_timer = None
            if self.timeout_keep_alive_task is None and not self.transport.is_closing():
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if cycle is not None and cycle.more_body and not self.transport.is_closing() and self._drain_timer is None:
            # Answered before its body was all read (a 413, an error from the engine mid-upload):
            # uvicorn reads the rest of the body and drops it (so that a client still sending
            # reads the answer rather than a reset); if it has not ended in header_timeout_s, the
            # connection is closed.
            self._drain_timer = self.loop.call_later(self.header_timeout_s, self._drain_timed_out)
        if self._in_head and self._head_timer is None and not self.transport.is_closing():
            self._arm_head_timer()  # a pipelined request's head began during that response

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            logger.info("closing the connection from %s: the body of a request answered early was still coming "
                        "after %g s", client, self.header_timeout_s)
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is underway; the next head is timed once it completes
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        logger.info("closing the connection from %s: no complete request head within %g s", client,
                    self.header_timeout_s)
        self.transport.write(_error(408, grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"the request line and headers did not arrive within {self.header_timeout_s:g} s"))
        self.transport.close()

    # ---- malformed requests ---------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        reason = self._parse_error or msg
        self._parse_error = ""
        self._cancel_head_timer()
        self.transport.write(_error(400, grpc.StatusCode.INVALID_ARGUMENT, f"malformed HTTP request: {reason}"))
        self.transport.close()

    # ---- slow readers ---------------------------------------------------------------------

    def pause_writing(self) -> None:
        if self._refused:
            return
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_size = self.transport.get_write_buffer_size()
            self._stall_timer = self.loop.call_later(self.slow_reader_timeout_s, self._check_stall)

    def resume_writing(self) -> None:
        if self._refused:
            return
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _check_stall(self) -> None:
        """slow_reader_timeout_s after writing paused (or after the last check), still paused."""
        self._stall_timer = None
        size = self.transport.get_write_buffer_size()
        if size and size < self._stall_size:
            # The client took some, just slowly (a large response on a slow link): again.
            self._stall_size = size
            self._stall_timer = self.loop.call_later(self.slow_reader_timeout_s, self._check_stall)
        elif size:
            self.reset(f"it took none of its response for {self.slow_reader_timeout_s:g} s ({size} bytes waiting)")

    def reset(self, why: str) -> None:
        """Drop the connection at once, with what is still unsent (what a client that does not
        read makes the server keep). The app finds the client gone (http.disconnect)."""
        if self._reset:
            return
        self._reset = True
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        logger.info("closing the connection from %s: %s", client, why)
        # A reset, not a close: a closed socket would keep what the kernel still holds for the
        # client (up to its send buffer, megabytes) until the client reads it, which it does
        # not; and the client would not learn that it should reconnect.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def _peer_closed(transport: asyncio.Transport) -> bool:
    """Whether the client has closed (or reset) its end of the connection, as far as the socket's
    TCP state tells without reading it; False where it cannot tell (not Linux, not TCP)."""
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, 8)
    except (OSError, AttributeError, TypeError, ValueError):
        return False
    return bool(info) and info[0] not in _TCP_OPEN_STATES


if httptools is not None:

    class _Parser(httptools.HttpRequestParser):  # type: ignore[misc,name-defined]
        """httptools's parser, keeping the reason of the error it raises for the 400's message."""

        __slots__ = ("_protocol",)

        def __init__(self, protocol: GatewayProtocol) -> None:
            super().__init__(protocol)
            self._protocol = protocol

        def feed_data(self, data: bytes) -> None:
            try:
                super().feed_data(data)
            except httptools.HttpParserError as exc:
                self._protocol._parse_error = str(exc) or type(exc).__name__
                raise


def protocol_class(settings: GatewaySettings) -> type[GatewayProtocol]:
    """The protocol class for one server (uvicorn.Config's `http=`): its connections share one
    `ConnectionLimits`."""
    limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_client,
                              settings.retry_after_s)
    return type("GatewayProtocol", (GatewayProtocol,), {
        "limits": limits, "header_timeout_s": settings.header_timeout_s,
        "slow_reader_timeout_s": settings.slow_reader_timeout_s})
