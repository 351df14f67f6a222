"""The example clients (examples/clients/) against a real engine on port 0.

- Node.js: `client.js` drops its connection midway and resumes with after_event_id; its JSON
  summary must show no lost and no repeated event.
- Python: `client.py` runs to completion as a subprocess, and its `follow()` resumes across an
  engine restart (UNAVAILABLE) without losing or repeating an event.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import grpc
import pytest

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from tests.engine.conftest import data_dir, engine, settings, start_request, tokens  # noqa: F401 (fixtures)
from tests.netcut import CutProxy

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "examples" / "clients" / "node"
PY_CLIENT = REPO / "examples" / "clients" / "python" / "client.py"
IN_CI = bool(os.environ.get("CI"))


def _node() -> str:
    """The node binary; skips (fails in CI) when the Node client cannot run here."""
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node is not on PATH")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        missing.append(f"{NODE_DIR.relative_to(REPO)}/node_modules is missing (`make node-client` installs it)")
    if missing:
        reason = "Node client cannot run: " + "; ".join(missing)
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return node


async def _run(*argv: str, timeout: float = 120, env: dict | None = None) -> tuple[int, str, str]:
    """Runs a subprocess without blocking the event loop the engine serves on."""
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env={**os.environ, **(env or {})},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("batches", [0, 16], ids=["StreamBacktest", "StreamBacktestBatches"])
async def test_node_client_drops_and_resumes_without_loss(engine, batches):
    node = _node()
    rc, out, err = await _run(node, str(NODE_DIR / "client.js"), "--from", "2024-01-01", "--to", "2024-01-31",
                              "--drop-after", "50", "--batches", str(batches),
                              env={"HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{engine.port}"})
    assert rc == 0, f"node client exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rpc"] == ("StreamBacktestBatches" if batches else "StreamBacktest"), summary
    assert summary["terminal"] == "backtest_completed", summary
    assert summary["lost"] == 0 and summary["repeated"] == 0 and summary["contiguous"] is True, summary
    assert summary["resumed_at"] == 50 and summary["reconnects"] >= 1, summary
    assert summary["events"] > summary["resumed_at"], summary
    # The engine agrees on the length of the log.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        bt = await pb_grpc.BacktestServiceStub(channel).GetBacktest(
            pb.GetBacktestRequest(backtest_id=summary["backtest_id"], omit_days=True))
    assert bt.last_event_id == summary["events"]


async def test_node_client_reports_an_invalid_strategy(engine, tmp_path):
    node = _node()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "indicators": [{"id": "rsi", "kind": "rsi2", "period": 14}]}))
    rc, out, err = await _run(node, str(NODE_DIR / "client.js"), "--strategy", str(bad),
                              env={"HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{engine.port}"})
    assert rc == 2, (out, err)
    assert "INVALID_ARGUMENT" in err and "rsi2" in err


async def test_python_client_runs_to_completion(engine):
    rc, out, err = await _run(sys.executable, str(PY_CLIENT), "--addr", f"127.0.0.1:{engine.port}",
                              "--from", "2024-01-01", "--to", "2024-01-12")
    assert rc == 0, f"python client exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
    lines = out.splitlines()
    assert lines[0].startswith("backtest bt_") and "trading days of SIM-NIFTY" in lines[0]
    total_days = int(lines[0].split(": ")[1].split()[0])
    days = [line for line in lines if "  day " in line]
    assert total_days > 5 and len(days) == total_days
    assert days[0].lstrip().startswith("2024-01-01") and f"day {total_days:>3}/{total_days}" in days[-1]
    assert any(line.startswith("backtest_completed: ") for line in lines)
    assert any("Sharpe" in line and "max drawdown" in line for line in lines)


async def test_clients_send_hindsight_token(tokens, engine):  # noqa: F811
    """With users configured, the clients authenticate with HINDSIGHT_TOKEN; without it they are refused."""
    token = tokens["alice"][0][1].split(" ", 1)[1]
    argv = (sys.executable, str(PY_CLIENT), "--addr", f"127.0.0.1:{engine.port}", "--from", "2024-01-01",
            "--to", "2024-01-03")
    rc, out, err = await _run(*argv, env={"HINDSIGHT_TOKEN": token})
    assert rc == 0 and "backtest_completed: " in out, err
    bid = out.splitlines()[0].split()[1].rstrip(":")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        mine = await pb_grpc.BacktestServiceStub(channel).GetBacktest(pb.GetBacktestRequest(backtest_id=bid),
                                                                     metadata=tokens["alice"])
    assert mine.owner == "alice"
    rc, out, err = await _run(*argv, env={"HINDSIGHT_TOKEN": ""})
    assert rc == 2 and "UNAUTHENTICATED" in err
    node = _node()
    env = {"HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{engine.port}", "HINDSIGHT_TOKEN": token}
    rc, out, err = await _run(node, str(NODE_DIR / "client.js"), "--from", "2024-01-01", "--to", "2024-01-03", env=env)
    assert rc == 0, f"node client exited {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert json.loads(out.strip().splitlines()[-1])["terminal"] == "backtest_completed"
    rc, out, err = await _run(node, str(NODE_DIR / "client.js"), "--from", "2024-01-01", "--to", "2024-01-03",
                              env={**env, "HINDSIGHT_TOKEN": ""})
    assert rc != 0 and "UNAUTHENTICATED" in err


def _load_python_client():
    spec = importlib.util.spec_from_file_location("hindsight_example_client", PY_CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_python_client_resumes_after_a_dropped_connection(engine, capsys):
    """follow() sees UNAVAILABLE when the connection drops mid-stream and resumes after the last event."""
    client = _load_python_client()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        stub = pb_grpc.BacktestServiceStub(channel)
        # tick_interval=1: ~2000 events (~350 kB), well beyond the proxy's budget.
        started = await stub.StartBacktest(start_request(days=("2024-01-01", "2024-01-05"), tick_interval=1))
        request = pb.GetBacktestRequest(backtest_id=started.backtest_id, omit_days=True)
        while (bt := await stub.GetBacktest(request)).status != pb.BACKTEST_STATUS_COMPLETED:
            await asyncio.sleep(0.05)
    total = bt.last_event_id
    assert total > 1000

    # Its first connection forwards 32 kB and stalls: the stream cannot have reached the client
    # whole (in the transport's buffers) before the cut.
    proxy = CutProxy(engine.port, budget=lambda n, data: 32 * 1024 if n == 1 else None)
    port = await proxy.start()
    got: list[tuple[int, str]] = []
    paused, resume = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def reader():
        try:
            # Batches of 20 events (~3.5 kB): the first ones fit through the proxy's budget.
            for event in client.follow(f"127.0.0.1:{port}", started.backtest_id, batch_size=20):
                got.append((event.event_id, event.WhichOneof("event")))
                if len(got) == 50:
                    paused.set()
                    resume.wait(30)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            failure.append(exc)
        finally:
            paused.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert await asyncio.to_thread(paused.wait, 30)
        await proxy.cut()
        resume.set()
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive() and not failure, failure
    finally:
        resume.set()
        await proxy.stop()

    assert [event_id for event_id, _ in got] == list(range(1, total + 1))
    assert got[-1][1] == "backtest_completed"
    assert proxy.connections >= 2
    assert "UNAVAILABLE" in capsys.readouterr().err  # it reconnected after the drop
