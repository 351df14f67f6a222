"""The dashboard at / in real headless Chromium, against a real engine and gateway.

Start a run from the page and watch it live, see it complete, open a trade's diagnostics,
download ZIPs, replay an earlier run, survive a dropped connection with every trade exactly once.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.netcut import CutProxy

from .conftest import (
    OpenPage,
    Stack,
    example,
    run_trade_ids,
    table_trade_ids,
    wait_finished,
)

pytestmark = pytest.mark.browser

TWO_WEEKS = ("2024-01-01", "2024-01-12")
# Long enough that the page is still receiving it when its stream opens (ten days with ticks
# could be all in the log before the first frame: seen once in CI).
TWO_MONTHS = ("2024-01-01", "2024-02-29")
# ≈ 30 k events with a tick every bar (≈ 9 MB of SSE), so that a connection held to
# STREAM_BUDGET bytes is far from the end of the stream.
LONG_RUN = ("2024-01-01", "2024-04-30")
STREAM_BUDGET = 2_000_000

def start_from_form(page: Any, dates: tuple[str, str], tick_interval: int = 0) -> str:
    page.select_option("[data-testid=example-select]", "rsi_reversion.json")
    page.select_option("[data-testid=symbol-select]", "SIM-NIFTY")
    page.fill("[data-testid=start-date]", dates[0])
    page.fill("[data-testid=end-date]", dates[1])
    page.fill("[data-testid=tick-interval]", str(tick_interval))
    page.click("[data-testid=start-button]")
    page.wait_for_function("window.hindsight.run !== null")
    return str(page.evaluate("window.hindsight.run.id"))


def watch_progress(page: Any) -> None:
    """Record, frame by frame, what the page shows while a run streams in."""
    page.evaluate("""() => {
      window.__seen = [];
      const snap = () => window.__seen.push({
        progress: Number(document.querySelector('[data-testid=progress]').getAttribute('aria-valuenow')),
        days: document.querySelectorAll('[data-testid=calendar-day][data-state=done]').length,
        rows: document.querySelectorAll('[data-testid=trade-row]').length,
      });
      new MutationObserver(snap).observe(document.querySelector('main'), {subtree: true, childList: true, attributes: true});
    }""")


def assert_charts_hold_the_run(page: Any) -> None:
    """Every equity point of the run is drawn (charts may defer drawing while events stream)."""
    points = page.evaluate("""() => {
      const c = window.hindsight.charts;
      return {run: window.hindsight.run.equity.length, equity: c.equity.series.data().length,
              drawdown: c.drawdown.series.data().length, daily: c.daily.series.data().length,
              days: window.hindsight.run.days.size};
    }""")
    assert points["run"] > 1 and points["equity"] == points["drawdown"] == points["run"], points
    assert points["daily"] == points["days"], points


def drawn_trade_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("[data-testid=trade-row]", "rows => rows.map(r => r.dataset.tradeId)"))


def read_zip(download: Any, tmp_path: Path) -> zipfile.ZipFile:
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    return zipfile.ZipFile(io.BytesIO(target.read_bytes()))


def test_run_from_the_page_live_to_completion(open_dashboard: OpenPage, stack: Stack, api: httpx.Client,
                                              tmp_path: Path, artifacts_dir: Path) -> None:
    page, problems = open_dashboard()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    watch_progress(page)
    backtest_id = start_from_form(page, TWO_MONTHS, tick_interval=1)

    # Live: progress moved through intermediate values while calendar days and trades arrived.
    wait_finished(page)
    seen = page.evaluate("window.__seen")
    partial = [s for s in seen if 0 < s["progress"] < 100]
    assert partial, f"never saw the run in progress: {seen[-3:]}"
    assert any(s["days"] > 0 for s in partial) and any(s["rows"] > 0 for s in partial)
    assert sorted({s["progress"] for s in seen}) != [0, 100]

    # Complete: metric cards, calendar, table and totals agree with the REST API.
    bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    assert bt["status"] == "BACKTEST_STATUS_COMPLETED"
    total = bt["summary"]["total_trades"]
    assert total > 0
    assert page.text_content("[data-testid=metric-trades] .value") == str(total)
    assert page.text_content("[data-testid=metric-total_return] .value").endswith("%")
    assert page.text_content("[data-testid=metric-sharpe] .value") != "—"
    assert page.text_content("[data-testid=connection]") == "done"
    assert page.get_attribute("[data-testid=progress]", "aria-valuenow") == "100"
    assert page.locator("[data-testid=calendar-day][data-state=done]").count() == len(bt["daily_summaries"])
    assert sorted(table_trade_ids(page)) == sorted(run_trade_ids(api, backtest_id))
    assert_charts_hold_the_run(page)

    # Diagnostics: the node events behind a trade, each condition with its values.
    page.locator("[data-testid=trade-row]").first.click()
    page.wait_for_selector("[data-testid=diag-entry] [data-testid=condition-row]")
    entry_rows = page.locator("[data-testid=diag-entry] [data-testid=condition-row]")
    assert entry_rows.count() == 3  # RSI crosses above 30, time >= 09:30, time < 15:00
    first = entry_rows.first
    assert first.locator("[data-testid=operator]").text_content() == "crosses_above"
    assert float(first.locator("[data-testid=lhs-value]").text_content().split()[0]) > 30
    assert first.locator("[data-testid=rhs-value]").text_content().startswith("30")
    assert "true" in first.locator("[data-testid=result]").text_content()
    assert page.locator("[data-testid=diag-exit] [data-testid=node-event]").count() >= 1

    # Downloads: a day's ZIP (from the calendar) holds the two gzipped JSON files of that day.
    day = next(d for d in bt["daily_summaries"] if d["trades"] > 0)
    page.click(f"[data-testid=calendar-day][data-date='{day['date']}']")
    assert page.locator("[data-testid=trade-row]:visible").count() == day["trades"]
    with page.expect_download() as info:
        page.click("[data-testid=day-zip]")
    archive = read_zip(info.value, tmp_path)
    assert sorted(archive.namelist()) == ["diagnostics_export.json.gz", "trades_daily.json.gz"]
    trades_daily = json.loads(gzip.decompress(archive.read("trades_daily.json.gz")))
    diagnostics = json.loads(gzip.decompress(archive.read("diagnostics_export.json.gz")))
    assert trades_daily["date"] == day["date"] and len(trades_daily["trades"]) == day["trades"]
    assert diagnostics["events_history"]

    # ... and the whole run's ZIP holds every day's pair.
    with page.expect_download() as info:
        page.click("[data-testid=run-zip]")
    names = read_zip(info.value, tmp_path).namelist()
    for d in bt["daily_summaries"]:
        assert f"{d['date']}/trades_daily.json.gz" in names and f"{d['date']}/diagnostics_export.json.gz" in names

    # Offline: everything the page loaded came from the gateway itself.
    assert requests and all(url.startswith(stack.base_url) for url in requests), requests
    page.click("[data-testid=calendar-day][aria-pressed=true]")  # back to all trades for the picture
    page.locator("[data-testid=trade-row]").nth(1).click()
    page.wait_for_selector("[data-testid=diag-entry] [data-testid=condition-row]")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "dashboard-finished.png"), full_page=True)
    problems.check()


def test_reconnect_mid_run_keeps_every_trade_exactly_once(open_dashboard: OpenPage, stack: Stack,
                                                          api: httpx.Client) -> None:
    # The page talks to the gateway through a TCP proxy. While armed, it lets each event-stream
    # request have STREAM_BUDGET bytes and then stalls its connection, so the page is mid-run however fast
    # the engine and the gateway are; cutting those connections is a real network drop.
    armed = threading.Event()
    armed.set()

    def budget(n: int, data: bytes) -> int | None:
        line = data.split(b"\r\n", 1)[0]
        is_stream = line.startswith(b"GET ") and b"/stream" in line
        return STREAM_BUDGET if is_stream and armed.is_set() else None

    proxy = CutProxy(stack.port, budget)
    port = stack.call(proxy.start())
    try:
        page, problems = open_dashboard(base=f"http://127.0.0.1:{port}/")
        backtest_id = start_from_form(page, LONG_RUN, tick_interval=1)
        page.wait_for_function("window.hindsight.run.trades.length >= 10")

        # 1. The page's own resume path, from a cursor behind what it has seen: the replayed
        #    events must all be dropped as duplicates.
        behind = page.evaluate("""() => {
          const s = window.hindsight.stream;
          const from = Math.max(0, s.lastId - 500);
          s.reopenFrom(from);
          return s.lastId - from;
        }""")
        page.wait_for_function(f"window.hindsight.stream.stats.duplicates >= {behind}")

        # 2. A real drop mid-run: the stalled connections are reset; EventSource reconnects with
        #    Last-Event-ID, this time at full speed.
        assert not page.evaluate("window.hindsight.run.finished")
        drops_before = page.evaluate("window.hindsight.stream.stats.drops")
        armed.clear()
        assert stack.call(proxy.cut(budgeted_only=True)) >= 1
        page.wait_for_function(f"window.hindsight.stream.stats.drops > {drops_before}")

        wait_finished(page, timeout_ms=60_000)
        stats = page.evaluate("window.hindsight.stream.stats")
        bt = api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()
        # Ids are contiguous from 1 and each accepted one is larger than the last: accepting
        # exactly last_event_id of them means none was missed and none was taken twice.
        assert stats["events"] == int(bt["last_event_id"]), stats
        assert stats["duplicates"] >= behind
        ids = table_trade_ids(page)
        assert len(ids) == len(set(ids)) == bt["summary"]["total_trades"]
        assert sorted(ids) == sorted(run_trade_ids(api, backtest_id))
        assert page.text_content("[data-testid=trades-count]") == f"{len(ids):,}"
        # Chromium logs the cut response itself to the console; nothing else may appear.
        from_cut = ("net::ERR_INCOMPLETE_CHUNKED_ENCODING", "net::ERR_CONNECTION_RESET")
        problems.errors = [e for e in problems.errors if not any(code in e for code in from_cut)]
        problems.check()
    finally:
        stack.call(proxy.stop())


def test_validation_problems_are_shown_by_field(open_dashboard: OpenPage) -> None:
    page, problems = open_dashboard()
    runs_before = page.locator("[data-testid=run-item]").count()
    strategy = example()
    strategy["entries"][0]["when"]["all"][0]["lhs"] = {"indicator": "rsi2"}
    page.fill("[data-testid=strategy-json]", json.dumps(strategy, indent=2))
    page.click("[data-testid=start-button]")
    problem = page.locator("[data-testid=strategy-problem]").first
    problem.wait_for()
    assert problem.get_attribute("data-field") == "entries[0].when.all[0].lhs"
    assert "did you mean 'rsi'" in problem.text_content()
    assert page.get_attribute("[data-testid=strategy-json]", "aria-invalid") == "true"

    page.fill("[data-testid=strategy-json]", '{"name": "broken",')
    page.click("[data-testid=validate-button]")
    page.wait_for_selector("[data-testid=strategy-problem][data-field=JSON]")
    assert page.evaluate("window.hindsight.run") is None
    assert page.locator("[data-testid=run-item]").count() == runs_before
    problems.check()


def test_earlier_runs_open_and_replay(open_dashboard: OpenPage, api: httpx.Client) -> None:
    started = api.post("api/v1/backtests", json={
        "strategy": example(), "strategy_id": "browser-replay", "symbol": "SIM-NIFTY",
        "start_date": TWO_WEEKS[0], "end_date": TWO_WEEKS[1]}).json()
    backtest_id = started["backtest_id"]
    page, problems = open_dashboard()
    item = page.locator(f"[data-testid=run-item][data-id='{backtest_id}']")
    item.click()
    wait_finished(page)
    assert page.url.endswith(f"#bt={backtest_id}")
    assert item.get_attribute("aria-current") == "true"
    total = api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()["summary"]["total_trades"]
    assert len(table_trade_ids(page)) == total and page.text_content("[data-testid=trades-count]") == f"{total:,}"

    # A link to the run opens it too (the same replay from event 0).
    page.reload()
    page.wait_for_selector("[data-testid=metric-cards][data-final=true]")
    assert len(table_trade_ids(page)) == total and page.text_content("[data-testid=trades-count]") == f"{total:,}"
    problems.check()


def test_a_long_trade_list_draws_only_the_rows_in_view(open_dashboard: OpenPage, api: httpx.Client) -> None:
    started = api.post("api/v1/backtests", json={
        "strategy": example(), "strategy_id": "browser-window", "symbol": "SIM-NIFTY",
        "start_date": "2024-01-01", "end_date": "2024-06-30"}).json()
    backtest_id = started["backtest_id"]
    page, problems = open_dashboard(f"#bt={backtest_id}")
    wait_finished(page)
    ids = table_trade_ids(page)
    assert sorted(ids) == sorted(run_trade_ids(api, backtest_id)) and len(ids) > 300
    drawn = drawn_trade_ids(page)
    assert 0 < len(drawn) <= 80 and drawn == ids[:len(drawn)]
    assert_charts_hold_the_run(page)  # hundreds of points a frame: drawn with setData
    # The spacers stand in for the rows not drawn: the table scrolls as if all were there.
    row_px = page.eval_on_selector("[data-testid=trade-row]", "r => r.getBoundingClientRect().height")
    body_px = page.eval_on_selector("#trades-body", "b => b.getBoundingClientRect().height")
    assert abs(body_px - row_px * len(ids)) <= len(ids) * 0.5, (body_px, row_px, len(ids))

    # Scrolled to the end, the last trades are drawn and can be opened.
    page.eval_on_selector(".table-wrap", "w => { w.scrollTop = w.scrollHeight; }")
    last = ids[-1]
    row = page.locator(f"[data-testid=trade-row][data-trade-id='{last}']")
    row.wait_for()
    drawn = drawn_trade_ids(page)
    assert drawn == ids[-len(drawn):] and len(drawn) <= 80
    row.click()
    assert row.get_attribute("aria-selected") == "true"
    page.wait_for_selector("[data-testid=diag-entry] [data-testid=condition-row]")
    assert last in page.text_content("[data-testid=diagnostics]")
    problems.check()


def test_without_the_chart_library_the_page_says_why_and_still_works(context: Any, stack: Stack,
                                                                     open_dashboard: OpenPage) -> None:
    context.route("**/ui/vendor/**", lambda route: route.fulfill(status=404, body="not installed"))
    page, problems = open_dashboard(expect_errors=True)  # the 404 itself is logged to the console
    banner = page.locator("[data-testid=banner]")
    assert banner.is_visible()
    assert "lightweight-charts" in banner.text_content() and "make setup" in banner.text_content()
    assert "lightweight-charts" in page.text_content("[data-testid=chart-equity]")
    start_from_form(page, ("2024-01-01", "2024-01-03"))
    wait_finished(page)
    assert page.locator("[data-testid=trade-row]").count() > 0
    problems.check()
