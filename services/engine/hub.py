"""Wake asyncio stream readers when a backtest's event log grows, from any thread.

Readers take the current future *before* reading the log, then await it only if the log had
nothing new; both steps run on the event loop, so a notification can never fall between them.
"""

from __future__ import annotations

import asyncio


class StreamHub:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._futures: dict[str, asyncio.Future] = {}

    def future(self, backtest_id: str) -> asyncio.Future:
        fut = self._futures.get(backtest_id)
        if fut is None or fut.done():
            fut = self._futures[backtest_id] = self._loop.create_future()
        return fut

    def notify(self, backtest_id: str) -> None:
        """Call from any thread."""
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._wake, backtest_id)
        except RuntimeError:  # loop closed between the check and the call
            pass

    def _wake(self, backtest_id: str) -> None:
        fut = self._futures.pop(backtest_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
