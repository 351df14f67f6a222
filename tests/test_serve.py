"""`hindsight serve` starts engine + gateway together and stops both cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_both_and_stops_on_sigint(tmp_path):
    grpc_port, http_port = _free_port(), _free_port()
    env = {**os.environ, "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
           "HINDSIGHT_HTTP_ADDR": f"127.0.0.1:{http_port}", "HINDSIGHT_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # a cold numba cache: the warm-up compiles every kernel
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, proc.stdout.read() if proc.poll() is not None else ""
        ds = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/datasets", timeout=5).json()
        assert any(d["symbol"] == "SIM-NIFTY" for d in ds["datasets"])
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{http_port}/" in out and "hindsight: stopped" in out
    assert "Traceback" not in out
