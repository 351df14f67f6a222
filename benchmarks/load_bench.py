"""Load figures for `make bench` (section `load`): what clients that hold the gateway cost it.

The engine and the gateway run as separate processes (`hindsight engine`, `hindsight gateway`,
as deployed); the clients run here.

(b) GetBacktest while the engine is busy — 2 decade runs computing and 50 queued (issue 10's
    target: p99 <= 50 ms) — through the gateway, p50/p99, with and without 500 idle TCP
    connections held open to it (each a connection that has sent nothing), and straight to the
    engine over gRPC. A minimal keep-alive HTTP/1.1 client (see gateway_bench.py: httpx's own
    cost would blur it); rounds alternate the two conditions so that a noisy moment on a small
    machine hits both; calls go round the 52 runs (running, queued and, as they finish,
    completed with their ~2,500 daily summaries).
(a) 200 SSE clients on a long-running backtest (the 10-year SMA crossover without fees on
    SIM-NIFTY: ~106 k events) that send their request and never read: the gateway's RSS growth
    (target <= 400 MiB in all), followed until the gateway has closed every one of them
    (HINDSIGHT_SLOW_READER_TIMEOUT_S after each stopped taking data); then one reading client
    streams the whole run, to show the gateway is none the worse.

Every connection here comes from 127.0.0.1: the gateway is started with
HINDSIGHT_MAX_CONNECTIONS_PER_CLIENT=1024 (default 512), and with HINDSIGHT_HEADER_TIMEOUT_S=120
so that the idle connections of (b) stay open while they are measured (by default one that sends
no request is closed after 10 s).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import struct
import time
from pathlib import Path

from benchmarks.gateway_bench import keepalive_request, served

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = REPO / "examples" / "strategies"

BUSY_RUNS = 52  # 2 computing, 50 queued
IDLE_CONNECTIONS = 500
LATENCY_ROUNDS = 5
LATENCY_PER_ROUND = 400
SLOW_READERS = 200
SLOW_READER_TIMEOUT_S = 30  # the gateway's default, set explicitly
_TCP_ESTABLISHED = 1


def run(data_dir: Path) -> dict:
    with served(data_dir, "load", MAX_CONNECTIONS_PER_CLIENT="1024", HEADER_TIMEOUT_S="120",
                SLOW_READER_TIMEOUT_S=str(SLOW_READER_TIMEOUT_S),
                # 2 runs computing and 50 queued, from one (local) user.
                MAX_CONCURRENT="2", MAX_RUNNING_PER_CALLER="2", MAX_QUEUED="64", MAX_QUEUED_PER_USER="64",
                STARTS_PER_MINUTE="0") as (http_port, grpc_port, procs):
        return asyncio.run(_measure("127.0.0.1", http_port, procs[1].pid, f"127.0.0.1:{grpc_port}"))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for {pid}")


def _tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of a client socket, read without reading the socket (Linux)."""
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _post(host: str, port: int, path: str, body: dict) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        r = await client.post(f"http://{host}:{port}{path}", json=body)
        r.raise_for_status()
        return r.json()


async def _measure(host: str, port: int, gateway_pid: int, grpc_target: str) -> dict:
    out: dict = {}
    sma = json.loads((STRATEGIES / "sma_cross.json").read_text())
    sma["execution"]["commission_pct"] = 0  # every crossover trades: ~50 k trades, ~106 k events
    busy = [(await _post(host, port, "/api/v1/backtests", {"strategy": sma, "strategy_id": "busy",
                                                           "symbol": "SIM-NIFTY"}))["backtest_id"]
            for _ in range(BUSY_RUNS)]
    await asyncio.sleep(1.0)
    out.update(await _busy_state(grpc_target, busy))
    out.update(await _idle_connections(host, port, gateway_pid, busy, grpc_target))
    out["busy_days_done"] = (await _busy_state(grpc_target, busy))["busy_days_done"]
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        for bid in reversed(busy):  # the queued first, before a slot frees up
            await client.post(f"http://{host}:{port}/api/v1/backtests/{bid}:cancel")
    decade = await _post(host, port, "/api/v1/backtests", {"strategy": sma, "strategy_id": "load-decade",
                                                           "symbol": "SIM-NIFTY"})
    out.update(await _slow_readers(host, port, gateway_pid, decade["stream_url"]))
    return out


# ---- (b) GetBacktest with and without idle connections ---------------------------------------------

async def _busy_state(grpc_target: str, ids: list[str]) -> dict:
    import grpc

    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(grpc_target) as ch:
        stub = pb_grpc.BacktestServiceStub(ch)
        got = [await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=b, omit_days=True)) for b in ids]
    return {"busy_running": sum(g.status == pb.BACKTEST_STATUS_RUNNING for g in got),
            "busy_queued": sum(g.status == pb.BACKTEST_STATUS_QUEUED for g in got),
            "busy_days_done": sum(g.progress.completed_days for g in got)}


async def _grpc_latencies(grpc_target: str, ids: list[str], n: int) -> list[float]:
    import grpc

    from hindsight.v1 import backtest_service_pb2 as pb
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    times = []
    async with grpc.aio.insecure_channel(grpc_target) as ch:
        stub = pb_grpc.BacktestServiceStub(ch)
        for k in range(n):
            t0 = time.perf_counter()
            await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=ids[k % len(ids)]))
            times.append(time.perf_counter() - t0)
    return times


async def _idle_connections(host: str, port: int, gateway_pid: int, ids: list[str], grpc_target: str) -> dict:
    requests = [f"GET /api/v1/backtests/{bid} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for bid in ids]
    reader, writer = await asyncio.open_connection(host, port)

    async def timed(n: int) -> list[float]:
        times = []
        for k in range(n):
            request = requests[k % len(requests)]
            t0 = time.perf_counter()
            head = await keepalive_request(reader, writer, request)
            times.append(time.perf_counter() - t0)
            assert head.startswith(b"HTTP/1.1 200"), head
        return times

    without: list[float] = []
    with_idle: list[float] = []
    direct: list[float] = []
    held_all = True
    rss_idle: list[float] = []
    try:
        await timed(200)  # warm every path
        for _ in range(LATENCY_ROUNDS):
            without += await timed(LATENCY_PER_ROUND)
            direct += await _grpc_latencies(grpc_target, ids, LATENCY_PER_ROUND // 2)
            before = _rss_mib(gateway_pid)
            idle = [socket.create_connection((host, port)) for _ in range(IDLE_CONNECTIONS)]
            try:
                await asyncio.sleep(0.5)  # all accepted by the gateway
                rss_idle.append(_rss_mib(gateway_pid) - before)
                with_idle += await timed(LATENCY_PER_ROUND)
                held_all = held_all and all(_tcp_state(s) == _TCP_ESTABLISHED for s in idle)
            finally:
                for s in idle:
                    s.close()
            await asyncio.sleep(0.5)  # and all closed again
    finally:
        writer.close()
    ms = 1e3
    return {
        "get_ms_p50": statistics.median(without) * ms, "get_ms_p99": _pct(without, 0.99) * ms,
        "get_idle_500_ms_p50": statistics.median(with_idle) * ms, "get_idle_500_ms_p99": _pct(with_idle, 0.99) * ms,
        "get_idle_500_ms_max": max(with_idle) * ms,
        "get_grpc_ms_p50": statistics.median(direct) * ms, "get_grpc_ms_p99": _pct(direct, 0.99) * ms,
        "idle_500_held": held_all, "idle_500_rss_mib": statistics.median(rss_idle),
        "get_requests_each": len(without),
    }


# ---- (a) SSE clients that never read -----------------------------------------------------------------

async def _slow_readers(host: str, port: int, gateway_pid: int, stream_url: str) -> dict:
    request = f"GET {stream_url} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    await asyncio.sleep(1.0)
    base = _rss_mib(gateway_pid)
    t0 = time.monotonic()
    readers = []
    for _ in range(SLOW_READERS):
        s = socket.socket()
        # A small receive buffer: the kernel holds little for the client, so the gateway's own
        # buffers fill (and stay full) sooner. It changes nothing of what the gateway keeps.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, port))
        s.sendall(request)
        readers.append(s)
    peak = base
    open_at_peak = SLOW_READERS
    closed_after = None
    samples = []
    deadline = t0 + SLOW_READER_TIMEOUT_S + 90
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            rss = _rss_mib(gateway_pid)
            still_open = sum(_tcp_state(s) == _TCP_ESTABLISHED for s in readers)
            samples.append((round(time.monotonic() - t0, 1), round(rss - base, 1), still_open))
            if rss > peak:
                peak, open_at_peak = rss, still_open
            if still_open == 0:
                closed_after = time.monotonic() - t0
                break
        still_open = sum(_tcp_state(s) == _TCP_ESTABLISHED for s in readers)
    finally:
        for s in readers:
            s.close()
    after = _rss_mib(gateway_pid) - base
    # A client reading the whole run now, as the dashboard would.
    complete, events = await _read_stream(host, port, stream_url)
    return {
        "slow_readers": SLOW_READERS,
        "slow_readers_rss_growth_mib": peak - base,
        "slow_readers_rss_per_reader_mib": (peak - base) / SLOW_READERS,
        "slow_readers_open_at_peak": open_at_peak,
        "slow_readers_closed": SLOW_READERS - still_open,
        "slow_readers_all_closed_after_s": closed_after,
        "slow_readers_rss_after_close_mib": after,
        "slow_readers_rss_samples": samples[::4],
        "sse_after_complete": complete,
        "sse_after_events": events,
        "gateway_base_rss_mib": base,
    }


async def _read_stream(host: str, port: int, stream_url: str) -> tuple[bool, int]:
    import httpx

    last_kind, count = "", 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as client, \
            client.stream("GET", f"http://{host}:{port}{stream_url}", headers={"Accept": "text/event-stream"}) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                last_kind = line[7:]
                count += 1
    return last_kind == "backtest_completed", count
