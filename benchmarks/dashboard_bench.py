"""Dashboard figures for `make bench`: how soon the page is final after a big run's last event.

The engine and the gateway run as separate processes (as deployed), the page in headless
Chromium driven by Playwright (Debian's Chromium, as the browser tests use). The page opens a
decade of the SMA crossover without fees (examples/strategies/sma_cross.json, commission_pct 0,
SIM-NIFTY: ~50,700 trades over ~2,460 days, ~106,000 events: a node event and a trade update per
trade, two events a day) as it starts, and follows it live; the figures:

* final_after_terminal_s: from the terminal event's `emitted_at` (the engine appending
  backtest_completed to its log) to the page being final: the metric cards say so (data-final,
  set once the run is over and every chart holds all of it), every trade is in the table object,
  the calendar and the charts hold every day and point, and that frame has been painted. The
  engine's own speed is out of it: a slower engine only gives the page more time to keep up.
* final_after_received_s: from the moment the batch with the terminal event reached the page's
  stream reader to final (the page's own share of the above).
* longtask_max_ms / longtask_total_ms / longtask_count: the page's main-thread long tasks (> 50
  ms, the browser's Long Tasks API) from opening the run to final; loaf_max_ms the longest
  animation frame (Long Animation Frames API).
* main_thread_busy_s, script_s, layout_s, style_s: the renderer's main-thread time over the same
  span (CDP Performance.getMetrics: TaskDuration, ScriptDuration, LayoutDuration, RecalcStyleDuration,
  all wall-clock: on a loaded machine they include time the thread waited for a core);
  main_thread_cpu_s and renderer_cpu_s the CPU time of the main thread and of the whole renderer
  process (the stream's worker included): ThreadTime and ProcessTime.
* replay_*: the same run opened again once finished, every event already there: the page's
  own throughput, the worst case for a page following an engine faster than it.
* complete: the page ended with the whole run (trades, days, points, event count), no errors.

    python benchmarks/dashboard_bench.py                       # one JSON line
    python benchmarks/dashboard_bench.py --tick-interval 10    # + a tick update every 10 bars (~200 k events)
    python benchmarks/dashboard_bench.py --profile prof.json   # + the page's CPU profile, summarised
    python benchmarks/dashboard_bench.py --trace trace.json    # + a Chrome trace, main thread summarised
    python benchmarks/dashboard_bench.py --static DIR          # another copy of services/gateway/static
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.gateway_bench import _free_port, _stop, _wait_http  # noqa: E402
SMA = REPO / "examples" / "strategies" / "sma_cross.json"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FINAL_TIMEOUT_MS = 600_000

# Installed before the page's own scripts: long tasks and long animation frames from the start.
OBSERVE = """
window.__bench = { longtasks: [], loafs: [] };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask', buffered: true });
} catch (e) { window.__bench.noLongtasks = String(e); }
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__bench.loafs.push([e.startTime, e.duration, e.blockingDuration,
        (e.scripts || []).filter((s) => s.duration >= 20).map((s) => `${s.invoker} ${Math.round(s.duration)}ms`)]);
    }
  }).observe({ type: 'long-animation-frame', buffered: true });
} catch (e) { window.__bench.noLoaf = String(e); }
"""

# Resolves (epoch ms) once the cards say the run is final, and the frame after that one has
# begun, i.e. the final frame has been laid out and painted.
WAIT_FINAL = """(timeoutMs) => new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error(`not final after ${timeoutMs} ms`)), timeoutMs);
  const cards = document.querySelector('[data-testid=metric-cards]');
  const now = () => performance.timeOrigin + performance.now();
  const done = (dom) => requestAnimationFrame(() => resolve({ dom, painted: now() }));
  if (cards.dataset.final === 'true') { done(now()); return; }
  const mo = new MutationObserver(() => {
    if (cards.dataset.final === 'true') { mo.disconnect(); done(now()); }
  });
  mo.observe(cards, { attributes: true, attributeFilter: ['data-final'] });
})"""

# What the page shows once final, to check it is the whole run.
SHOWN = """() => {
  const h = window.hindsight, c = h.charts, r = h.run;
  const n = (s) => (s && s.series ? s.series.data().length : -1);
  return {
    status: r.status, trades_in_run: r.trades.length, trades_in_table: h.trades.ids().length,
    trades_count_text: document.querySelector('[data-testid=trades-count]').textContent,
    trades_card: document.querySelector('[data-testid=metric-trades] .value').textContent,
    days: r.days.size,
    calendar_done: document.querySelectorAll('[data-testid=calendar-day][data-state=done]').length,
    equity_points: r.equity.length, equity_drawn: n(c.equity), drawdown_drawn: n(c.drawdown), daily_drawn: n(c.daily),
    events: h.stream.stats.events, duplicates: h.stream.stats.duplicates,
    terminal: r.terminal || null,
    heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
  };
}"""


def _epoch_ms(rfc3339: str) -> float:
    """'2025-01-01T10:00:00.123456789Z' → epoch ms (fractions beyond microseconds dropped)."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head + "+00:00").timestamp()
    return (base + (float("0." + frac) if frac else 0.0)) * 1e3


def _strategy(commission_pct: float) -> dict:
    doc = json.loads(SMA.read_text())
    doc["execution"]["commission_pct"] = commission_pct
    return doc


def _servers(data_dir: Path, store: Path) -> tuple[list[subprocess.Popen], str]:
    grpc_port, http_port = _free_port(), _free_port()
    env = {**os.environ, "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{grpc_port}", "HINDSIGHT_DATA_DIR": str(data_dir),
           "HINDSIGHT_STORE_DIR": str(store), "HINDSIGHT_HTTP_ADDR": f"127.0.0.1:{http_port}",
           "HINDSIGHT_ENGINE_ADDR": f"127.0.0.1:{grpc_port}", "HINDSIGHT_LOG_LEVEL": "warning"}
    procs = [subprocess.Popen([sys.executable, "-m", "services.cli", name], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in ("engine", "gateway")]
    base = f"http://127.0.0.1:{http_port}/"
    try:
        _wait_http(f"{base}readyz")
    except BaseException:
        _stop(procs)
        raise
    return procs, base


def _chromium() -> str:
    """Debian's Chromium, as the browser tests find it (HINDSIGHT_CHROMIUM, else on the PATH)."""
    explicit = os.environ.get("HINDSIGHT_CHROMIUM")
    for candidate in ([explicit] if explicit else
                      [shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium"]):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no Chromium found (apt-get install chromium, or set HINDSIGHT_CHROMIUM)")


def _profile_summary(profile: dict, top: int = 25) -> dict:
    """Self time by function (name url:line) and by script, from a CDP Profiler profile."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas") or []
    self_us: Counter[int] = Counter()
    for node_id, dt in zip(profile.get("samples") or [], deltas[1:] + [0]):
        self_us[node_id] += dt
    by_fn: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    for node_id, us in self_us.items():
        f = nodes[node_id]["callFrame"]
        url = f.get("url", "").rsplit("/", 1)[-1]
        name = f.get("functionName") or "(anonymous)"
        by_fn[f"{name} {url}:{f.get('lineNumber', -1) + 1}" if url else name] += us
        by_file[url or name] += us
    total = sum(self_us.values()) or 1
    ms = lambda us: round(us / 1e3, 1)
    return {"total_ms": ms(total),
            "by_function_ms": [[k, ms(v)] for k, v in by_fn.most_common(top)],
            "by_script_ms": [[k, ms(v)] for k, v in by_file.most_common(top)]}


_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8"}


def _serve_static_from(ctx: Any, base: str, static: Path) -> None:
    """Serve the page's own files (index.html, ui/app.css, ui/js/*) from another copy of
    services/gateway/static: an earlier page measured against the same engine and gateway."""
    from urllib.parse import urlparse

    root = urlparse(base).path

    def handle(route: Any) -> None:
        path = urlparse(route.request.url).path
        rel = "index.html" if path == root else path[len(root) + 3:] if path.startswith(root + "ui/") else ""
        file = static / rel
        if rel and file.suffix in _TYPES and file.is_file():
            route.fulfill(status=200, body=file.read_bytes(), headers={"content-type": _TYPES[file.suffix]})
        else:
            route.continue_()

    ctx.route(base + "**", handle)


TRACE_CATEGORIES = ["toplevel", "devtools.timeline", "v8", "v8.execute", "blink", "cc", "loading", "netlog"]


def _trace_summary(raw: bytes, top: int = 30) -> dict:
    """The page's main thread (CrRendererMain) in a Chrome trace: self time by event name (where
    the time that a CPU profile calls "(program)" goes: style, layout, paint, messages...), and its
    tasks in wall-clock and in CPU time (on a loaded machine a task can take far longer than the
    CPU it used: waiting for a core, or for GC helper threads that wait for one)."""
    doc = json.loads(raw)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    names = {(e["pid"], e["tid"]): e["args"].get("name") for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    mains = {k for k, v in names.items() if v == "CrRendererMain"}
    mine = [e for e in events if (e.get("pid"), e.get("tid")) in mains and e.get("ph") == "X" and e.get("dur")]
    spans = sorted(((e["ts"], e["ts"] + e["dur"], e["name"]) for e in mine), key=lambda s: (s[0], -s[1]))
    self_us: Counter[str] = Counter()
    stack: list[list] = []  # [end, name, child time, own time]
    for start, end, name in spans:
        while stack and stack[-1][0] <= start:
            done = stack.pop()
            self_us[done[1]] += done[3] - done[2]
        if stack:
            stack[-1][2] += end - start
        stack.append([end, name, 0, end - start])
    for done in stack:
        self_us[done[1]] += done[3] - done[2]
    tasks = [e for e in mine if e["name"] == "ThreadControllerImpl::RunTask"]
    by_wall = max(tasks, key=lambda e: e["dur"], default={"dur": 0})
    by_cpu = max(tasks, key=lambda e: e.get("tdur", 0), default={"dur": 0})
    ms = lambda us: round(us / 1e3, 1)
    return {"main_tasks_wall_ms": ms(sum(e["dur"] for e in tasks)),
            "main_tasks_cpu_ms": ms(sum(e.get("tdur", 0) for e in tasks)),
            "longest_task_wall_ms": ms(by_wall["dur"]), "longest_task_wall_cpu_ms": ms(by_wall.get("tdur", 0)),
            "longest_task_cpu_ms": ms(by_cpu.get("tdur", 0)), "longest_task_cpu_wall_ms": ms(by_cpu["dur"]),
            "self_ms": [[k, ms(v)] for k, v in self_us.most_common(top)]}


def measure(base: str, browser: Any, *, start: str = "", end: str = "", commission_pct: float = 0.0,
            tick_interval: int = 0, replay: str = "", profile: Path | None = None, trace: Path | None = None,
            static: Path | None = None) -> dict:
    """Open the page, start a run (or, with `replay`, open that finished run) and follow it
    until the page is final."""
    import httpx

    ctx = browser.new_context(viewport={"width": 1600, "height": 1100})
    ctx.add_init_script(OBSERVE)
    if static:
        _serve_static_from(ctx, base, static)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(base)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_timeout(300)  # the runs list and the form settle
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    if profile:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 500})
        cdp.send("Profiler.start")
    if trace:
        browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    with httpx.Client(base_url=base, timeout=60) as api:
        if replay:
            backtest_id = replay
        else:
            r = api.post("api/v1/backtests", json={
                "strategy": _strategy(commission_pct), "strategy_id": "dashboard-bench", "symbol": "SIM-NIFTY",
                "start_date": start, "end_date": end, "tick_interval": tick_interval})
            r.raise_for_status()
            backtest_id = r.json()["backtest_id"]
        page.evaluate("(id) => { window.__bench.openedNow = performance.now(); "
                      "window.__bench.opened = performance.timeOrigin + window.__bench.openedNow; "
                      "window.hindsight.openRun(id); }", backtest_id)
        final = page.evaluate(WAIT_FINAL, FINAL_TIMEOUT_MS)
        shown = page.evaluate(SHOWN)
        after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        bench = page.evaluate("window.__bench")
        bt = api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()
    out: dict = {}
    if trace:
        raw = browser.stop_tracing()
        trace.write_bytes(raw)
        out["trace"] = _trace_summary(raw)
    if profile:
        prof = cdp.send("Profiler.stop")["profile"]
        profile.write_text(json.dumps(prof))
        out["profile"] = _profile_summary(prof)
    ctx.close()

    terminal = shown["terminal"]
    emitted = _epoch_ms(terminal["emitted_at"]) if terminal else _epoch_ms(bt["finished_at"])
    received = terminal["received"] if terminal else None
    opened = bench["opened"]
    # Long tasks (and long animation frames) from the moment the run was opened.
    longtasks = [d for s, d in bench["longtasks"] if s >= bench["openedNow"]]
    total_trades = int(bt["summary"]["total_trades"])
    out.update({
        "backtest_id": backtest_id,
        "events": int(bt["last_event_id"]), "trades": total_trades, "days": shown["days"],
        "engine_run_s": (_epoch_ms(bt["finished_at"]) - _epoch_ms(bt["created_at"])) / 1e3,
        "final_after_open_s": (final["painted"] - opened) / 1e3,
        "longtask_max_ms": max(longtasks, default=0.0), "longtask_total_ms": sum(longtasks),
        "longtask_count": len(longtasks),
        "loaf_max_ms": max((d for s, d, _, _ in bench["loafs"] if s >= bench["openedNow"]), default=0.0),
        "main_thread_busy_s": after.get("TaskDuration", 0) - before.get("TaskDuration", 0),
        "main_thread_cpu_s": after.get("ThreadTime", 0) - before.get("ThreadTime", 0),
        "renderer_cpu_s": after.get("ProcessTime", 0) - before.get("ProcessTime", 0),
        "script_s": after.get("ScriptDuration", 0) - before.get("ScriptDuration", 0),
        "layout_s": after.get("LayoutDuration", 0) - before.get("LayoutDuration", 0),
        "style_s": after.get("RecalcStyleDuration", 0) - before.get("RecalcStyleDuration", 0),
        "heap_mb": shown["heap_mb"],
        "complete": (shown["status"] == "COMPLETED" and shown["trades_in_table"] == total_trades
                     and shown["trades_in_run"] == total_trades and shown["events"] == int(bt["last_event_id"])
                     and shown["calendar_done"] == shown["days"] and shown["daily_drawn"] == shown["days"]
                     and shown["equity_drawn"] == shown["equity_points"] == shown["drawdown_drawn"]
                     and shown["trades_card"] == f"{total_trades:,}" and not errors),
    })
    if not replay:
        out["final_after_terminal_s"] = (final["painted"] - emitted) / 1e3
        out["final_after_received_s"] = (final["painted"] - received) / 1e3 if received else None
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = round(v, 3)
    # The three longest animation frames: when (s after opening), how long, and their scripts.
    loafs = sorted((f for f in bench["loafs"] if f[0] >= bench["openedNow"]), key=lambda f: -f[1])
    out["longest_frames"] = [{"at_s": round((f[0] - bench["openedNow"]) / 1e3, 2), "ms": round(f[1]), "scripts": f[3]}
                             for f in loafs[:3]]
    if not out["complete"]:
        out["shown"] = shown
        out["errors"] = errors[:5]
    return out


def run(data_dir: Path, *, start: str = "2015-01-01", end: str = "2025-12-31", commission_pct: float = 0.0,
        tick_interval: int = 0, replay: bool = True, profile: Path | None = None, trace: Path | None = None,
        static: Path | None = None, detail: bool = False) -> dict:
    """The figures for one run followed live (and, with `replay`, the same run opened once finished).
    `detail`: also the longest frames, and the CPU profile's or trace's summary when asked for."""
    from playwright.sync_api import sync_playwright

    (REPO / "bench-out").mkdir(exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="dash-store-", dir=REPO / "bench-out"))
    procs, base = _servers(data_dir, store)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
            try:
                # A short run first: numba's kernels, the catalog and the page's modules warm.
                measure(base, browser, start="2024-01-01", end="2024-01-31", static=static)
                live = measure(base, browser, start=start, end=end, commission_pct=commission_pct,
                               tick_interval=tick_interval, profile=profile, trace=trace, static=static)
                out = {"run": f"sma_cross {start}..{end} commission {commission_pct} tick {tick_interval}", **live}
                if replay:
                    again = measure(base, browser, replay=live["backtest_id"], static=static)
                    out.update({f"replay_{k}": again[k] for k in ("final_after_open_s", "longtask_max_ms",
                                                                  "main_thread_busy_s", "main_thread_cpu_s",
                                                                  "renderer_cpu_s", "complete")})
                    if detail:
                        out["replay_longest_frames"] = again["longest_frames"]
                if not detail:
                    for k in ("longest_frames", "profile", "trace"):
                        out.pop(k, None)
                return out
            finally:
                browser.close()
    finally:
        _stop(procs)
        shutil.rmtree(store, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default="2015-01-01")
    ap.add_argument("--end", default="2025-12-31")
    ap.add_argument("--commission", type=float, default=0.0)
    ap.add_argument("--tick-interval", type=int, default=0)
    ap.add_argument("--no-replay", action="store_true", help="skip opening the finished run again")
    ap.add_argument("--profile", type=Path, help="write the page's CPU profile (.cpuprofile JSON) here")
    ap.add_argument("--trace", type=Path, help="write a Chrome trace of the page here (and summarise its main thread)")
    ap.add_argument("--detail", action="store_true", help="also the longest frames and the profile's summary")
    ap.add_argument("--static", type=Path, help="serve the page's files from this copy of services/gateway/static "
                    "(to compare an earlier page against the same servers)")
    args = ap.parse_args()
    data_dir = Path(os.environ.get("HINDSIGHT_DATA_DIR", REPO / "var"))
    out = run(data_dir, start=args.start, end=args.end, commission_pct=args.commission,
              tick_interval=args.tick_interval, replay=not args.no_replay, profile=args.profile, trace=args.trace,
              static=args.static, detail=args.detail or bool(args.profile or args.trace))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
