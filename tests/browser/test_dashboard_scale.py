"""The dashboard on a big run, in real headless Chromium against a real engine and gateway.

A year of the SMA crossover without fees (~5,000 trades, ~10,000 events) followed live: the
stream is read in a Web Worker, the page ends with every trade in its table and every point in
its charts, and while the run streamed in the charts held a thinned view rather than being fed
point by point. Without the worker (its script not served) the page reads the stream itself.
How fast the page is on a decade's run is benchmarks/dashboard_bench.py's business, not a test's.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import OpenPage, example, run_trade_ids, table_trade_ids, wait_finished

pytestmark = pytest.mark.browser

ONE_YEAR = ("2024-01-01", "2024-12-31")
TWO_WEEKS = ("2024-01-01", "2024-01-12")
# charts.js: while a run streams in, a series holds at most 2 × LIVE_POINTS of its points.
LIVE_POINTS = 500


def start_sma(api: httpx.Client, dates: tuple[str, str], strategy_id: str) -> str:
    strategy = example("sma_cross.json")
    strategy["execution"]["commission_pct"] = 0  # every crossover trades
    started = api.post("api/v1/backtests", json={"strategy": strategy, "strategy_id": strategy_id,
                                                 "symbol": "SIM-NIFTY", "start_date": dates[0], "end_date": dates[1]})
    assert started.status_code == 200, started.text
    return str(started.json()["backtest_id"])


def watch_charts(page: Any) -> None:
    """Record, every few ms while the run is live, the most points a chart series held."""
    page.evaluate("""() => {
      window.__held = 0;
      const poll = () => {
        const h = window.hindsight;
        if (h.run && !h.run.finished) {
          window.__held = Math.max(window.__held, h.charts.equity.series.data().length,
                                   h.charts.drawdown.series.data().length);
        }
        if (!h.run || !h.run.finished) setTimeout(poll, 20);
      };
      poll();
    }""")


def shown(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("""() => {
      const h = window.hindsight, c = h.charts, r = h.run;
      return {equity: r.equity.length, equityDrawn: c.equity.series.data().length,
              drawdownDrawn: c.drawdown.series.data().length, dailyDrawn: c.daily.series.data().length,
              days: r.days.size, events: h.stream.stats.events, duplicates: h.stream.stats.duplicates,
              inWorker: h.stream.worker !== null && h.stream.feed === null,
              calendarDone: document.querySelectorAll('[data-testid=calendar-day][data-state=done]').length,
              status: r.status};
    }"""))


def test_a_big_run_ends_with_every_trade_and_point(open_dashboard: OpenPage, api: httpx.Client) -> None:
    page, problems = open_dashboard()
    backtest_id = start_sma(api, ONE_YEAR, "browser-big")
    page.evaluate("(id) => window.hindsight.openRun(id)", backtest_id)
    watch_charts(page)
    wait_finished(page, timeout_ms=120_000)

    bt = api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()
    total = bt["summary"]["total_trades"]
    assert total > 3000, total  # big enough that per-event work on the page would show
    state = shown(page)
    assert state["inWorker"], state
    assert state["status"] == "COMPLETED" and state["events"] == int(bt["last_event_id"]), state
    # Every trade, once, in the table object (it draws only the rows in view) and in the count.
    ids = table_trade_ids(page)
    assert len(ids) == len(set(ids)) == total
    assert sorted(ids) == sorted(run_trade_ids(api, backtest_id))
    assert page.text_content("[data-testid=trades-count]") == f"{total:,}"
    assert page.text_content("[data-testid=metric-trades] .value") == f"{total:,}"
    # Every point in the charts once the run is over, every day in the calendar.
    assert state["equity"] > 2 * LIVE_POINTS, state
    assert state["equityDrawn"] == state["drawdownDrawn"] == state["equity"], state
    assert state["dailyDrawn"] == state["days"] == state["calendarDone"] == bt["summary"]["total_days"], state
    # While it streamed in, the equity and drawdown series held a thinned view, not every point.
    held = page.evaluate("window.__held")
    assert 0 < held <= 2 * LIVE_POINTS, held
    problems.check()


def test_diagnostics_can_ask_the_stream_for_node_events(open_dashboard: OpenPage, api: httpx.Client) -> None:
    # Node events stay with the stream's reader (a worker); diagnostics fall back on them when a
    # day's file lacks one, through RunState.findNodeEvents.
    backtest_id = start_sma(api, TWO_WEEKS, "browser-nodes")
    page, problems = open_dashboard(f"#bt={backtest_id}")
    wait_finished(page)
    found = page.evaluate("""async () => {
      const r = window.hindsight.run;
      const t = r.trades[0];
      const ids = [...t.entry_flow_ids, ...t.exit_flow_ids, 'no-such-execution'];
      const got = await r.findNodeEvents(ids);
      return {ids, got: [...got].map(([id, ev]) => [id, ev.execution_id, ev.node_id])};
    }""")
    wanted = found["ids"][:-1]
    assert wanted and [g[0] for g in found["got"]] == wanted, found
    assert all(g[0] == g[1] and g[2] in ("long", "short") for g in found["got"]), found
    problems.check()


def test_without_the_worker_the_page_reads_the_stream_itself(context: Any, open_dashboard: OpenPage,
                                                             api: httpx.Client) -> None:
    context.route("**/ui/js/stream-worker.js", lambda route: route.fulfill(status=404, body="gone"))
    backtest_id = start_sma(api, TWO_WEEKS, "browser-no-worker")
    page, problems = open_dashboard(f"#bt={backtest_id}", expect_errors=True)  # the 404 is logged
    wait_finished(page)
    state = shown(page)
    assert not state["inWorker"] and page.evaluate("window.hindsight.stream.feed !== null"), state
    bt = api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()
    assert state["events"] == int(bt["last_event_id"]), state
    ids = table_trade_ids(page)
    assert sorted(ids) == sorted(run_trade_ids(api, backtest_id)) and len(ids) == bt["summary"]["total_trades"]
    assert state["equityDrawn"] == state["equity"] and state["dailyDrawn"] == state["days"], state
    got = page.evaluate("""async () => {
      const t = window.hindsight.run.trades[0];
      return [...(await window.hindsight.run.findNodeEvents(t.entry_flow_ids)).keys()];
    }""")
    assert got and got == page.evaluate("window.hindsight.run.trades[0].entry_flow_ids")
    problems.check()
