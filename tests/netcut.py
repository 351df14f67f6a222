"""A TCP proxy whose connections can be throttled to a byte budget and cut: a real network drop.

    proxy = CutProxy(target_port, budget=lambda n, data: 32_768 if n == 1 else None)
    port = await proxy.start()      # clients connect here
    ...
    await proxy.cut()               # abort the budgeted connections (or all of them)

`budget(n, data)` is asked about each chunk a client sends (`n` numbers the connection from 1;
`data` is an HTTP request, an HTTP/2 preface, ...) until it returns a number: from then on the
connection forwards at most that many more bytes towards the client, then stalls. A request on a
kept-alive connection is seen too. A stalled client cannot have received the whole response
before the cut, however fast the server is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

Budget = Callable[[int, bytes], "int | None"]


@dataclass
class _Connection:
    n: int
    limit: int | None = None  # bytes the server may send to the client in all; None: no limit
    sent: int = 0  # bytes sent to the client so far
    transports: list[asyncio.BaseTransport] = field(default_factory=list)
    pipes: list[asyncio.Task[None]] = field(default_factory=list)


class CutProxy:
    def __init__(self, target_port: int, budget: Budget | None = None) -> None:
        self.target_port = target_port
        self.budget = budget or (lambda n, data: None)
        self.connections = 0
        self._open: dict[int, _Connection] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    @property
    def budgeted_open(self) -> int:
        return sum(1 for c in self._open.values() if c.limit is not None)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = _Connection(self.connections)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        conn.transports = [client_writer.transport, server_writer.transport]
        conn.pipes = [asyncio.create_task(self._upstream(conn, client_reader, server_writer)),
                      asyncio.create_task(self._downstream(conn, server_reader, client_writer))]
        self._open[conn.n] = conn
        try:
            await asyncio.gather(*conn.pipes, return_exceptions=True)
        finally:
            self._open.pop(conn.n, None)
            for writer in (client_writer, server_writer):
                writer.close()

    async def _upstream(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if conn.limit is None:
                    more = self.budget(conn.n, data)
                    if more is not None:
                        conn.limit = conn.sent + more
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _downstream(conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if conn.limit is not None:
                    data = data[: max(0, conn.limit - conn.sent)]
                    if not data:
                        await asyncio.Event().wait()  # stall until cut
                writer.write(data)
                conn.sent += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def cut(self, *, budgeted_only: bool = False) -> int:
        """Abort open connections (both sides, no FIN: the client sees a reset); returns how many."""
        victims = [c for c in self._open.values() if c.limit is not None or not budgeted_only]
        for conn in victims:
            self._open.pop(conn.n, None)
            for transport in conn.transports:
                transport.abort()  # type: ignore[attr-defined]
            for task in conn.pipes:
                task.cancel()
        await asyncio.gather(*(t for c in victims for t in c.pipes), return_exceptions=True)
        return len(victims)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()
        if self._server is not None:
            await self._server.wait_closed()
