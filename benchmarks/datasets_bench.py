"""Issue 12's figures for `make bench` (section `datasets`): an upload of a 5-million-row
one-minute CSV through the gateway, the quality report on that file, and GetAnalytics on a
10-year one-minute run (benchmarks/analytics_bench.py: first, uncached, cached).

The engine and the gateway run as separate processes (as deployed: `hindsight engine`,
`hindsight gateway`); the client and the measurements run here. Peak memory is each server's
VmHWM over the upload alone: it is reset (`/proc/<pid>/clear_refs` = 5) just before the upload
starts, so the engine's warm-up (kernel compiles, SIM-NIFTY) does not count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = REPO / "examples" / "strategies"
ROWS = 5_000_000
CSV_NAME = f"upload-{ROWS // 1_000_000}m-1min.csv"


def make_csv(path: Path, rows: int = ROWS, seed: int = 12) -> Path:
    """`rows` one-minute bars around the clock from 2016-01-01 (a 24/7 market: ~9.5 years), a
    random walk with consistent OHLC and integer volumes, written once and kept under bench-out/."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    start = np.datetime64("2016-01-01T00:00", "m")
    block = 1_000_000
    last = 20_000.0
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)  # as vendors write them
    with open(tmp, "wb") as sink:
        sink.write(b"timestamp,open,high,low,close,volume\n")
    with open(tmp, "ab") as sink, pacsv.CSVWriter(sink, write_options=options, schema=pa.schema([("timestamp", pa.string()), ("open", pa.float64()),
                                              ("high", pa.float64()), ("low", pa.float64()),
                                              ("close", pa.float64()), ("volume", pa.int64())])) as writer:
        for b0 in range(0, rows, block):
            n = min(block, rows - b0)
            steps = rng.normal(0, 0.00015, n)
            close = np.round(last * np.exp(np.cumsum(steps)), 2)
            open_ = np.round(np.concatenate(([last], close[:-1])), 2)
            wiggle = np.abs(rng.normal(0, 0.0001, (2, n))) * close
            high = np.round(np.maximum(open_, close) + wiggle[0], 2)
            low = np.round(np.minimum(open_, close) - wiggle[1], 2)
            volume = rng.integers(1_000, 200_000, n)
            ts = (start + np.arange(b0, b0 + n)).astype(str)
            ts = np.char.replace(ts, "T", " ")
            ts = np.char.add(ts, ":00")
            last = float(close[-1])
            writer.write_table(pa.table({"timestamp": ts, "open": open_, "high": high, "low": low,
                                         "close": close, "volume": volume}))
    os.replace(tmp, path)
    return path


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _file_chunks(path: Path, size: int = 1 << 20):
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def run(data_dir: Path) -> dict:
    from benchmarks.gateway_bench import served

    csv = make_csv(REPO / "bench-out" / CSV_NAME)
    out: dict = {"upload_rows": ROWS, "upload_mb": csv.stat().st_size / 1e6}
    out.update(_quality_alone(csv))
    with served(data_dir, "ds", MAX_UPLOAD_MB="4096") as (http_port, grpc_port, procs):
        engine, gateway = procs
        out.update(_upload(f"http://127.0.0.1:{http_port}", csv, engine.pid, gateway.pid))
    from benchmarks.analytics_bench import run as analytics

    out.update({f"analytics_{k}": v for k, v in analytics(data_dir).items()})
    return out


def _quality_alone(csv: Path) -> dict:
    """The quality report on the file (parse and every check, nothing stored), best of 2."""
    from services.engine.datasets.ingest import quality_report_of_file

    best, report = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        report = quality_report_of_file(csv, calendar="24/7")
        best = min(best, time.perf_counter() - t)
    return {"quality_s": best, "quality_score": report.score, "quality_findings": len(report.findings)}


def _upload(base: str, csv: Path, engine_pid: int, gateway_pid: int) -> dict:
    import httpx

    reset = _reset_peak(engine_pid) and _reset_peak(gateway_pid)
    symbol = f"BENCH-{os.getpid()}-{int(time.time())}"  # the bench's data dir persists between runs
    url = f"{base}/api/v1/datasets/{symbol}:upload?calendar={quote('24/7', safe='')}&timezone=UTC"
    size = csv.stat().st_size
    t = time.perf_counter()
    r = httpx.post(url, content=_file_chunks(csv), timeout=600,
                   headers={"Content-Type": "text/csv", "Content-Length": str(size)})
    took = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"upload answered {r.status_code}: {r.text[:2000]}")
    detail = r.json()
    httpx.delete(f"{base}/api/v1/datasets/{symbol}", timeout=60).raise_for_status()
    return {"upload_s": took, "upload_mb_per_s": size / 1e6 / took, "upload_bars": int(detail["dataset"]["bars"]),
            "upload_score": detail["quality"]["score"], "peak_reset": reset,
            "engine_upload_peak_mib": _peak_mib(engine_pid), "gateway_upload_peak_mib": _peak_mib(gateway_pid)}
