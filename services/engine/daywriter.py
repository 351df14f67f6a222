"""Write each finished day's two result files off the engine's thread.

JSON encoding holds the GIL, gzip and the file-system calls do not: the caller encodes (orjson,
fast) and two background threads compress and write, overlapping the next days' computation
and each other. Encoding on the writer threads instead made the engine's thread wait for the
GIL each time a numpy call let go of it (a switch interval, ~5 ms, per wait).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from storage.atomic import dumps_json
from storage.dayfiles import write_day_files


class DayFileWriter:
    """`submit(day)` queues `<root>/<date>/trades_daily.json.gz` + `diagnostics_export.json.gz`."""

    def __init__(self, root: Path, max_pending: int = 64):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dayfiles")
        self._pending: list[Future] = []
        self._max_pending = max_pending
        self.sizes: dict[str, int] = {}

    def submit(self, day) -> None:
        # An export for people: atomic (no half-written file), but no fsync per file.
        fut = self._pool.submit(write_day_files, self.root / day.date, dumps_json(day.trades_daily()),
                                dumps_json(day.diagnostics_export()), fsync=False)
        fut.add_done_callback(lambda f, d=day.date: self.sizes.__setitem__(d, f.result()) if not f.exception() else None)
        self._pending.append(fut)
        if len(self._pending) >= self._max_pending:  # bound memory: wait for the oldest half
            for f in self._pending[: self._max_pending // 2]:
                f.result()
            self._pending = self._pending[self._max_pending // 2:]

    def close(self) -> None:
        for f in self._pending:
            f.result()
        self._pending.clear()
        self._pool.shutdown(wait=True)
