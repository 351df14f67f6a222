"""`hindsight serve` (what `make run` runs): the engine and the gateway in one process.

Both share one event loop; Ctrl-C (or SIGTERM) stops the gateway first — open event streams
end so browsers reconnect elsewhere — then the engine, gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Iterator

from services.engine.auth import is_loopback
from services.engine.server import create_server, warm_up
from services.engine.settings import EngineSettings
from services.gateway.app import GatewayServer, build_server
from services.gateway.settings import GatewaySettings

log = logging.getLogger("hindsight.serve")


class _QuietSignals(GatewayServer):
    """uvicorn re-raises the signal it caught after shutting down; here the caller owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _loopback(addr: str, port: int) -> str:
    host = addr.rsplit(":", 1)[0].strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_all() -> None:
    engine_settings = EngineSettings.from_env()
    gateway_settings = GatewaySettings.from_env()
    engine = await create_server(engine_settings)
    local = not engine.servicer.auth.configured
    http_host = gateway_settings.http_addr.rsplit(":", 1)[0]
    if local and not is_loopback(http_host):
        engine.store.close()
        raise SystemExit(f"hindsight: refusing to serve http://{gateway_settings.http_addr}: no users are configured, so "
                         "anyone who can reach it would act as the local user. Add a user ('hindsight users add NAME') "
                         "or bind to 127.0.0.1 (HINDSIGHT_HTTP_ADDR).")
    took = await asyncio.to_thread(warm_up, engine.catalog)
    await engine.start()
    target = _loopback(engine_settings.grpc_addr, engine.port)
    server = build_server(gateway_settings, target)
    server.__class__ = _QuietSignals
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = gateway_settings.http_addr
    print(f"hindsight: engine gRPC on {target} (warm-up {took:.1f}s)", flush=True)
    print(f"hindsight: dashboard and REST API on http://{http}/  (API docs: http://{http}/docs) — Ctrl-C stops",
          flush=True)
    if local:
        print("hindsight: no users configured — you are the one user 'local', no token needed, on this machine only "
              "('hindsight users add NAME' turns tokens on)", flush=True)
    else:
        print("hindsight: users configured — every call needs a token (sign in on the dashboard with an API key)",
              flush=True)
    gateway = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({gateway, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if gateway in done and gateway.exception() is not None:
            raise gateway.exception()  # e.g. the HTTP port is taken
    finally:
        print("hindsight: shutting down", flush=True)
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await gateway
        stopper.cancel()
        await engine.stop()
        print("hindsight: stopped", flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_all())
    except OSError as exc:
        print(f"hindsight: {exc}", flush=True)
        return 1
    return 0
