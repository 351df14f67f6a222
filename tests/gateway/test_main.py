"""`main()`: the gateway as a process, started and stopped as `hindsight gateway` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

MAIN = "from services.gateway.app import main; raise SystemExit(main())"


def test_main_serves_until_interrupted(closed_port: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HINDSIGHT_HTTP_ADDR": f"127.0.0.1:{port}",
           "HINDSIGHT_ENGINE_ADDR": f"127.0.0.1:{closed_port}", "HINDSIGHT_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-c", MAIN],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
    assert "Traceback" not in out


def test_main_rejects_bad_settings() -> None:
    env = {**os.environ, "HINDSIGHT_HTTP_ADDR": "nowhere"}
    out = subprocess.run([sys.executable, "-c", MAIN],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "HINDSIGHT_HTTP_ADDR" in out.stderr and "Traceback" not in out.stderr
