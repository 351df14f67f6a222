"""`make bench` section `output`: what turns a 50 k-trade run into files and JSON, whole processes.

- `hindsight run` on the bundled SMA 10/20 crossover without fees (every crossover trades:
  ~50,000 trades over 900,000 one-minute bars), as a user runs it: summary only, `--out DIR`
  (two gzipped day files for each of ~2,460 days) and `--json` (one JSON document on stdout).
  Per-trade output cost = (with output - summary only) / trades. Peak memory of each process.
- vectorbt's whole process on the same data file and the same trades: import, load the
  Parquet file, compute, write its trades to CSV; against ours with day files from that file.
- The gzip level: every day file's JSON of that run compressed by zlib and by ISA-L at several
  levels (size and time), which is how storage.atomic.GZIP_LEVEL was chosen.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMA = REPO / "examples" / "strategies" / "sma_cross.json"
# The code before the columnar output path (issue 9), measured in the same run for "today's"
# figures (time and peak memory). HINDSIGHT_BENCH_BASELINE= (empty) skips it.
BASELINE = os.environ.get("HINDSIGHT_BENCH_BASELINE", "350dc6f")

# Peak memory of a child process: run it under this wrapper, which prints its child's maxrss.
_PEAK = ("import resource, subprocess, sys; "
         "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
         "sys.stderr.write(r.stderr.decode()[-2000:]) if r.returncode else None; "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0); sys.exit(r.returncode)")

_VECTORBT = """
import sys, time
import numpy as np
import pandas as pd
import vectorbt as vbt
df = pd.read_parquet(sys.argv[1])
close = pd.Series(df["close"].to_numpy(), index=pd.DatetimeIndex(df["timestamp"]).tz_localize(None))
fast, slow = vbt.MA.run(close, 10), vbt.MA.run(close, 20)
entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
pf = vbt.Portfolio.from_signals(close, entries=entries, short_entries=exits, init_cash=1e5, size=np.inf,
                                freq="1min")
trades = pf.trades.records_readable
trades.to_csv(sys.argv[2], index=False)
print(len(trades))
"""


def _timed(cmd: list[str], env: dict, cwd: Path = REPO) -> tuple[float, float]:
    """(wall seconds, peak MB) of one process."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, *cmd], cwd=cwd, env=env, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{cmd[:6]} failed: {p.stderr[-2000:]}")
    return wall, float(p.stdout.strip().splitlines()[-1])


def _write_parquet(data_dir: Path, path: Path) -> int:
    import pandas as pd

    from services.engine.core.catalog import Catalog

    bars = Catalog(data_dir).load("SIM-NIFTY")
    frame = pd.DataFrame({"timestamp": bars.local_index, "open": bars.open, "high": bars.high, "low": bars.low,
                          "close": bars.close, "volume": bars.volume})
    frame.to_parquet(path, index=False)
    return len(frame)


def _gzip_levels(day_dir: Path) -> dict:
    from isal import igzip

    raw = [gzip.decompress(f.read_bytes()) for d in sorted(day_dir.iterdir()) for f in sorted(d.iterdir())]
    out = {"json_mb": sum(map(len, raw)) / 1e6, "files": len(raw)}
    for name, fn, levels in (("zlib", lambda b, lv: gzip.compress(b, compresslevel=lv, mtime=0), (1, 3, 5, 6, 9)),
                             ("isal", lambda b, lv: igzip.compress(b, compresslevel=lv, mtime=0), (0, 1, 2, 3))):
        for lv in levels:
            best, size = float("inf"), 0
            for _ in range(2):
                t0 = time.perf_counter()
                size = sum(len(fn(b, lv)) for b in raw)
                best = min(best, time.perf_counter() - t0)
            out[f"{name}{lv}"] = {"mb": round(size / 1e6, 2), "s": round(best, 3)}
    return out


def run(data_dir: Path) -> dict:
    (REPO / "bench-out").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="output-", dir=REPO / "bench-out"))
    env = {**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir)}
    data = work / "sim_nifty.parquet"
    n_bars = _write_parquet(data_dir, data)
    # The figures are for the catalog's dataset (SIM-NIFTY, .npy columns: what the issue
    # measured); the comparison with vectorbt has both read the same Parquet file.
    base = ["-m", "services.cli", "run", "--data", "SIM-NIFTY", "--strategy", str(SMA), "--commission-pct", "0"]
    from_file = ["-m", "services.cli", "run", "--data", str(data), "--strategy", str(SMA), "--commission-pct", "0"]
    out: dict = {"bars": n_bars}
    baseline = _baseline_tree(work) if BASELINE else None
    try:
        _timed(base, env)  # warm numba's cache and the page cache
        p = subprocess.run([sys.executable, *base, "--json"], cwd=REPO, env=env, capture_output=True, check=True)
        doc = json.loads(p.stdout)
        trades = len(doc["trades"])
        out["trades"] = trades
        out["json_mb"] = len(p.stdout) / 1e6
        runs: dict[str, list[tuple[float, float]]] = {"summary": [], "out": [], "json": [], "vectorbt": [],
                                                      "parquet_out": []}
        if baseline is not None:
            runs.update({"before_out": [], "before_json": []})
            _timed(base, env, cwd=baseline)  # its own numba cache
        vbt_csv = work / "vectorbt_trades.csv"
        subprocess.run([sys.executable, "-c", _VECTORBT, str(data), str(vbt_csv)], cwd=REPO, env=env,
                       capture_output=True, check=True)  # compile vectorbt's numba functions once
        for k in range(3):  # interleaved, so a slow moment of the machine hits every kind alike
            runs["summary"].append(_timed(base, env))
            # A new folder each time: deleting thousands of files just before (with the
            # `discard` mount option) slows the next writes down for seconds.
            runs["out"].append(_timed(base + ["--out", str(work / f"days{k}")], env))
            runs["json"].append(_timed(base + ["--json"], env))
            runs["vectorbt"].append(_timed(["-c", _VECTORBT, str(data), str(vbt_csv)], env))
            runs["parquet_out"].append(_timed(from_file + ["--out", str(work / f"file{k}")], env))
            if baseline is not None:
                runs["before_out"].append(_timed(base + ["--out", str(work / f"before{k}")], env, cwd=baseline))
                runs["before_json"].append(_timed(base + ["--json"], env, cwd=baseline))
        vbt_trades = sum(1 for _ in vbt_csv.open()) - 1
        for kind, values in runs.items():
            out[f"{kind}_s"] = min(w for w, _ in values)
            out[f"{kind}_peak_mb"] = max(m for _, m in values)
        out["vectorbt_trades"] = vbt_trades
        out["out_us_per_trade"] = (out["out_s"] - out["summary_s"]) / trades * 1e6
        out["json_us_per_trade"] = (out["json_s"] - out["summary_s"]) / trades * 1e6
        out["speedup_vs_vectorbt"] = out["vectorbt_s"] / out["parquet_out_s"]
        out["day_dirs"] = len(list((work / "days2").iterdir()))
        out["gzip"] = _gzip_levels(work / "days2")
    finally:
        if baseline is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _baseline_tree(work: Path) -> Path | None:
    """A checkout of BASELINE (git worktree), or None where there is no git history."""
    tree = work / "baseline"
    p = subprocess.run(["git", "worktree", "add", "--detach", str(tree), BASELINE], cwd=REPO, capture_output=True,
                       text=True)
    return tree if p.returncode == 0 else None


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(json.dumps(run(Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var")))))
