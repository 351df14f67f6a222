"""A real engine and a real gateway on ports 0, and headless Chromium driven by Playwright.

Engine and gateway run in one background thread's event loop, so the tests (Playwright's sync
API) stay plain functions; coroutines (a proxy's, for instance) run there through `Stack.call`.
Chromium is Debian's (`/usr/bin/chromium`, or HINDSIGHT_CHROMIUM); `playwright install` is never
needed. Without Chromium or Playwright the browser tests are skipped, unless CI is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "strategies"
# Flags for a headless Chromium that never reaches out to the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The EventSource reconnection delay the test gateway announces (`retry:`), ms.
SSE_RETRY_MS = 300
# The engine's warm-up compiles every kernel when numba's on-disk cache is cold (a fresh clone:
# the browser tests run first), ~60-90 s on a 2-core machine; a few seconds afterwards.
START_TIMEOUT_S = 300.0


def unavailable(reason: str) -> None:
    """Skip, or fail under CI (where the set-up is expected to have installed everything)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    explicit = os.environ.get("HINDSIGHT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def example(name: str = "rsi_reversion.json") -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


# ---- engine + gateway in a background event loop ---------------------------------------------

@dataclass
class Stack:
    """The running engine and gateway, served from a background thread's event loop."""

    data_dir: Path
    store_dir: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None
    engine: Any = None
    gateway: Any = None
    gateway_task: asyncio.Task[None] | None = None
    port: int = 0
    # The engine's users database (None: the default, empty: local mode) and its API keys by user.
    users_file: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def call(self, coro: Any, timeout: float = START_TIMEOUT_S) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="browser-test-servers", daemon=True)
        self.thread.start()
        self.call(self._start_engine())
        self.call(self._start_gateway())

    def stop(self) -> None:
        try:
            self.call(self._stop_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread is not None:
                self.thread.join(10)
            self.loop.close()

    async def _start_engine(self) -> None:
        from services.engine.server import create_server, warm_up
        from services.engine.settings import EngineSettings

        settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=self.data_dir, store_dir=self.store_dir,
                                  max_concurrent=2, max_queued=8, max_running_per_caller=4, fsync=False,
                                  shutdown_grace_seconds=0.5, users_file=self.users_file)
        self.engine = await create_server(settings, "127.0.0.1:0")
        await asyncio.to_thread(warm_up, self.engine.catalog)  # numba kernels and SIM-NIFTY, once
        await self.engine.start()

    async def _start_gateway(self) -> None:
        from services.gateway.app import build_server
        from services.gateway.settings import GatewaySettings

        settings = GatewaySettings(http_addr="127.0.0.1:0", engine_addr=f"127.0.0.1:{self.engine.port}",
                                   sse_retry_ms=SSE_RETRY_MS, shutdown_grace_s=1.0, log_level="warning")
        server = build_server(settings, log_config=None, log_level="warning", access_log=False,
                              timeout_graceful_shutdown=1)
        # Signals belong to pytest, not to a server under test.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.gateway = server
        self.gateway_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self.gateway_task.done():
                self.gateway_task.result()
                raise RuntimeError("the gateway stopped during start-up")
            await asyncio.sleep(0.01)

    async def _stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway_task is not None:
            self.gateway.should_exit = True
            await self.gateway_task
        self.gateway = self.gateway_task = None

    async def _stop_all(self) -> None:
        await self._stop_gateway()
        if self.engine is not None:
            await self.engine.stop(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from services.engine.core.catalog import Catalog

    data_dir = tmp_path_factory.mktemp("browser-data")
    Catalog(data_dir).load("SIM-NIFTY", None, None)
    running = Stack(data_dir, tmp_path_factory.mktemp("browser-store"))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def users_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Like `stack`, but the engine has users (alice, with two API keys in `keys`: "alice" and
    "alice-2"), so the dashboard must sign in."""
    from services.engine.auth import UserStore
    from services.engine.core.catalog import Catalog

    data_dir = tmp_path_factory.mktemp("browser-users-data")
    Catalog(data_dir).load("SIM-NIFTY", None, None)
    users_file = tmp_path_factory.mktemp("browser-users") / "users.sqlite3"
    users = UserStore(users_file)
    try:
        users.add_user("alice")
        keys = {"alice": users.issue_key("alice", "browser test"), "alice-2": users.issue_key("alice", "revoked")}
    finally:
        users.close()
    running = Stack(data_dir, tmp_path_factory.mktemp("browser-users-store"), users_file=users_file, keys=keys)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client


# ---- the browser -----------------------------------------------------------------------------

# Module scope, not session: while Playwright's sync API runs it marks an event loop as running
# in this thread, which would break every asyncio test collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright; no `playwright install` needed)")
    executable = chromium_path()
    if executable is None:
        unavailable("no Chromium found (apt-get install chromium, or set HINDSIGHT_CHROMIUM)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """Uncaught exceptions and console errors of a page; tests assert there are none."""

    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1600, "height": 1100}, accept_downloads=True)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: HINDSIGHT_BROWSER_ARTIFACTS, else a temporary folder (never the repo)."""
    explicit = os.environ.get("HINDSIGHT_BROWSER_ARTIFACTS")
    if explicit:
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("artifacts")


# ---- the dashboard ---------------------------------------------------------------------------

OpenPage = Callable[..., tuple[Any, PageProblems]]


@pytest.fixture
def open_dashboard(context: Any, stack: Stack) -> OpenPage:
    """Opens the page (at `path`: "#bt=<id>" opens a run) and collects its errors."""

    def open_page(path: str = "", *, expect_errors: bool = False, base: str = "") -> tuple[Any, PageProblems]:
        page = context.new_page()
        problems = PageProblems()
        page.on("pageerror", lambda exc: problems.errors.append(f"page error: {exc}"))
        if not expect_errors:
            page.on("console", lambda msg: msg.type == "error" and problems.errors.append(f"console: {msg.text}"))
        page.goto((base or stack.base_url) + path)
        page.wait_for_selector("body[data-ready=true]")
        # The form is ready once the examples and datasets have loaded.
        page.wait_for_function("document.querySelector('#f-symbol').options.length > 0"
                               " && document.querySelector('#f-strategy').value.length > 0")
        return page, problems

    return open_page


def wait_finished(page: Any, timeout_ms: int = 40_000) -> None:
    page.wait_for_selector("[data-testid=metric-cards][data-final=true]", timeout=timeout_ms)


def table_trade_ids(page: Any) -> list[str]:
    """Every trade id the table holds. The table draws only the rows near its viewport, so the
    ids come from the table object, not from the rows in the DOM."""
    return list(page.evaluate("window.hindsight.trades.ids()"))


def run_trade_ids(api: httpx.Client, backtest_id: str) -> list[str]:
    """Every trade of a run, from its day files (the ground truth the stream is built from)."""
    bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    ids: list[str] = []
    for day in bt["daily_summaries"]:
        if day.get("trades"):
            ids += [t["trade_id"] for t in api.get(f"api/v1/backtests/{backtest_id}/days/{day['date']}").json()["trades"]]
    assert len(ids) == bt["summary"]["total_trades"]
    return ids
