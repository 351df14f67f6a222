"""The dashboard's Analytics tab and Compare view in real headless Chromium, against a real
engine and gateway (GET /backtests/{id}/analytics, GET /backtests:compare).

A finished run's Analytics tab shows the API's numbers: the monthly returns heatmap cell by
cell, the drawdown table row by row, the scatter a point a trade; a new rolling window is
fetched; each picture's CSV download is the API's data; a point of the scatter opens its
trade's day. Two runs compared: a metrics column and an equity line each, CSVs equal to the
API's. A running run's tab says analytics come when it has finished; without the Web Worker
the page fetches and parses the analytics itself.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import OpenPage, example

pytestmark = pytest.mark.browser

# More trading days than the default 63-day window, so the rolling charts have points at both
# windows the test uses.
FOUR_MONTHS = ("2024-01-01", "2024-04-30")
TWO_MONTHS = ("2024-01-01", "2024-02-29")
# A decade with a tick every bar: ~20 s of engine time, running while the page is looked at
# (then cancelled).
DECADE = ("2016-01-01", "2025-12-31")
WAITING = "Analytics are available when the run has finished."
# js/analytics.js and js/analytics-data.js: the columns of the CSVs.
PERIOD_FIELDS = ["year", "month", "return_pct", "pnl", "trading_days", "trades"]
TRADE_FIELDS = ["trade_id", "entry_time", "exit_time", "duration_minutes", "pnl", "return_pct", "entry_hour",
                "entry_minute_of_day", "side", "exit_reason", "node_id"]
DRAWDOWN_FIELDS = ["start", "trough", "recovery", "depth_pct", "length_days", "decline_days", "recovery_days"]
TERMINAL = {"BACKTEST_STATUS_COMPLETED", "BACKTEST_STATUS_FAILED", "BACKTEST_STATUS_CANCELLED"}


def start(api: httpx.Client, strategy: str, dates: tuple[str, str], **extra: Any) -> str:
    res = api.post("api/v1/backtests", json={"strategy": example(strategy), "strategy_id": Path(strategy).stem,
                                             "symbol": "SIM-NIFTY", "start_date": dates[0], "end_date": dates[1], **extra})
    assert res.status_code == 200, res.text
    return str(res.json()["backtest_id"])


def wait_status(api: httpx.Client, backtest_id: str, statuses: set[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()["status"])
        if status in statuses:
            return status
        assert time.monotonic() < deadline, f"{backtest_id} still {status}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def finished(api: httpx.Client) -> tuple[str, str]:
    """Two finished runs: RSI reversion over four months, the SMA crossover over two."""
    ids = (start(api, "rsi_reversion.json", FOUR_MONTHS), start(api, "sma_cross.json", TWO_MONTHS))
    for backtest_id in ids:
        assert wait_status(api, backtest_id, TERMINAL) == "BACKTEST_STATUS_COMPLETED"
    return ids


def analytics(api: httpx.Client, backtest_id: str, window: int = 63, bins: int = 50) -> dict[str, Any]:
    res = api.get(f"api/v1/backtests/{backtest_id}/analytics",
                  params={"rolling_window_days": window, "histogram_bins": bins})
    assert res.status_code == 200, res.text
    return dict(res.json())


def download(page: Any, testid: str, tmp_path: Path) -> tuple[str, list[list[str]]]:
    """Click a CSV button; the file's name and its rows (the header first)."""
    with page.expect_download() as info:
        page.click(f"[data-testid={testid}]")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    text = target.read_bytes().decode("utf-8")
    assert text.endswith("\r\n")
    return info.value.suggested_filename, list(csv.reader(io.StringIO(text, newline="")))


def same(cell: str, value: Any) -> bool:
    """A CSV field against the API's JSON value (int64 and NaN arrive as strings)."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, float):
        return float(cell) == value or (math.isnan(value) and cell == "NaN")
    return cell == str(value)


def assert_rows(rows: list[list[str]], header: list[str], expected: list[list[Any]]) -> None:
    assert rows[0] == header
    assert len(rows) - 1 == len(expected)
    for got, want in zip(rows[1:], expected):
        assert len(got) == len(want) and all(same(c, v) for c, v in zip(got, want)), (got, want)


def shown_pct(text: str, value: float) -> bool:
    """The page's two-decimal percent ("+1.23", "-0.40") of a value."""
    return bool(re.fullmatch(r"[+-]?\d+\.\d\d", text)) and abs(float(text) - value) <= 0.005 + 1e-9


def open_analytics(open_dashboard: OpenPage, backtest_id: str, **kwargs: Any) -> tuple[Any, Any]:
    page, problems = open_dashboard(f"#bt={backtest_id}", **kwargs)
    page.click("[data-testid=tab-analytics]")
    page.wait_for_selector("[data-testid=analytics]", state="visible")
    page.wait_for_selector("[data-testid=analytics][data-state=ready]", timeout=60_000)
    return page, problems


def test_analytics_tab_shows_the_api_numbers(open_dashboard: OpenPage, api: httpx.Client, finished: tuple[str, str],
                                             tmp_path: Path, artifacts_dir: Path) -> None:
    backtest_id = finished[0]
    page, problems = open_dashboard(f"#bt={backtest_id}")
    asked: list[str] = []
    page.on("request", lambda req: "/api/v1/backtests/" in req.url and "/analytics" in req.url and asked.append(req.url))
    page.click("[data-testid=tab-analytics]")
    page.wait_for_selector("[data-testid=analytics][data-state=ready]", timeout=60_000)
    assert page.evaluate("location.hash") == f"#bt={backtest_id}/analytics"
    assert page.is_hidden("[data-testid=metric-cards]") and page.is_hidden("[data-testid=calendar]")
    assert page.evaluate("window.hindsight.analytics.transport") == "worker"
    a = analytics(api, backtest_id)
    assert len(asked) == 1 and "rolling_window_days=63" in asked[0] and "histogram_bins=50" in asked[0]

    # The heatmap: a cell a month and a year, each the API's return (its value, and shown to 0.01).
    months = a["monthly_returns"]
    assert len(months) == 4
    assert page.locator("[data-testid=an-month]").count() == len(months)
    assert page.locator("[data-testid=an-year]").count() == len(a["yearly_returns"]) == 1
    for p, testid in [(p, "an-month") for p in months] + [(p, "an-year") for p in a["yearly_returns"]]:
        cell = page.locator(f"[data-testid={testid}][data-year='{p['year']}'][data-month='{p['month']}']")
        assert float(cell.get_attribute("data-value")) == p["return_pct"]
        assert shown_pct(cell.text_content(), p["return_pct"]), (cell.text_content(), p)

    # The drawdown table: the API's periods, deepest first.
    rows = page.locator("[data-testid=an-drawdown-row]")
    assert rows.count() == len(a["drawdowns"]) >= 1
    for i, d in enumerate(a["drawdowns"]):
        cells = rows.nth(i).locator("td").all_text_contents()
        assert cells[0] == str(i + 1)
        assert cells[1:4] == [d["start"], d["trough"], d["recovery"] or "not recovered"]
        assert shown_pct(cells[4], d["depth_pct"])
        assert cells[5:] == [str(d["length_days"]), str(d["decline_days"]), str(d["recovery_days"])]

    # The other pictures hold what the API gave.
    assert int(page.get_attribute("[data-testid=an-scatter]", "data-points")) == len(a["trades"]) > 0
    assert page.get_attribute("[data-testid=an-histogram]", "data-bins") == "50"
    assert int(page.get_attribute("[data-testid=an-rolling-sharpe]", "data-points")) == len(a["rolling"]) > 0
    assert page.text_content("[data-testid=an-fig-days]") == str(a["returns_distribution"]["days"])
    keys = page.eval_on_selector_all("[data-testid=an-weekday] [data-testid=an-group-row]", "rs => rs.map(r => r.dataset.key)")
    assert keys == [g["key"] for g in a["pnl_by_weekday"]]
    keys = page.eval_on_selector_all("[data-testid=an-exit] [data-testid=an-group-row]", "rs => rs.map(r => r.dataset.key)")
    assert keys == [g["key"] for g in a["exit_reasons"]]
    page.screenshot(path=str(artifacts_dir / "analytics.png"), full_page=True)

    # CSV downloads: exactly the API's data.
    name, rows_ = download(page, "an-csv-monthly", tmp_path)
    assert name == f"{backtest_id}-monthly-returns.csv"
    assert_rows(rows_, PERIOD_FIELDS, [[p[k] for k in PERIOD_FIELDS] for p in months + a["yearly_returns"]])
    name, rows_ = download(page, "an-csv-trades", tmp_path)
    assert name == f"{backtest_id}-trades.csv"
    assert_rows(rows_, TRADE_FIELDS, [[t[k] for k in TRADE_FIELDS] for t in a["trades"]])
    name, rows_ = download(page, "an-csv-drawdowns", tmp_path)
    assert name == f"{backtest_id}-drawdowns.csv"
    assert_rows(rows_, DRAWDOWN_FIELDS, [[d[k] for k in DRAWDOWN_FIELDS] for d in a["drawdowns"]])
    name, rows_ = download(page, "an-csv-histogram", tmp_path)
    dist = a["returns_distribution"]
    assert_rows(rows_, ["bin_start_pct", "bin_end_pct", "days", "normal_days"],
                [[dist["bin_edges"][i], dist["bin_edges"][i + 1], c, dist["normal_counts"][i]] for i, c in enumerate(dist["counts"])])

    # Another window: asked for, drawn, and its CSV is the new window's.
    page.select_option("[data-testid=an-window]", "21")
    page.wait_for_selector("[data-testid=analytics][data-window='21'][data-state=ready]")
    assert len(asked) == 2 and "rolling_window_days=21" in asked[1]
    a21 = analytics(api, backtest_id, window=21)
    assert len(a21["rolling"]) > len(a["rolling"])
    assert int(page.get_attribute("[data-testid=an-rolling-sharpe]", "data-points")) == len(a21["rolling"])
    assert page.get_attribute("[data-testid=an-rolling-sharpe]", "data-window") == "21"
    name, rows_ = download(page, "an-csv-rolling", tmp_path)
    assert name == f"{backtest_id}-rolling-21d.csv"
    assert_rows(rows_, ["date", "sharpe", "volatility_pct"], [[p["date"], p["sharpe"], p["volatility_pct"]] for p in a21["rolling"]])
    # Back to 63: the answer already fetched is shown again, without asking.
    page.select_option("[data-testid=an-window]", "63")
    page.wait_for_selector("[data-testid=analytics][data-window='63'][data-state=ready]")
    assert len(asked) == 2

    # The scatter's other axis and colouring: the same points.
    page.click("[data-testid=an-scatter-x-hour]")
    page.select_option("[data-testid=an-scatter-color]", "exit_reason")
    scatter = page.locator("[data-testid=an-scatter]")
    assert scatter.get_attribute("data-mode") == "hour" and scatter.get_attribute("data-color-by") == "exit_reason"
    assert int(scatter.get_attribute("data-points")) == len(a["trades"])
    legend = page.locator("[data-testid=an-legend-item]").count()
    assert legend == len({t["exit_reason"] for t in a["trades"]})

    # A point: its tooltip names a trade, a click opens that trade's day in the run view.
    x, y = page.evaluate("(() => { const d = window.hindsight.analytics.scatter.drawn; return [d.px[0], d.py[0]]; })()")
    scatter.scroll_into_view_if_needed()
    box = scatter.bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_selector("[data-testid=an-scatter-tooltip]", state="visible")
    trade_id = page.text_content("[data-testid=an-scatter-tooltip] div").split(" · ")[0]
    trade = next(t for t in a["trades"] if t["trade_id"] == trade_id)
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"location.hash === '#bt={backtest_id}'")
    assert page.get_attribute("[data-testid=tab-run]", "aria-selected") == "true"
    assert page.is_visible("[data-testid=calendar]") and page.is_hidden("[data-testid=analytics]")
    assert page.get_attribute("[data-testid=calendar-day][aria-pressed=true]", "data-date") == trade["exit_time"][:10]
    page.wait_for_selector(f"[data-testid=trade-row][aria-selected=true][data-trade-id='{trade_id}']")
    problems.check()


def test_compare_two_runs(open_dashboard: OpenPage, api: httpx.Client, finished: tuple[str, str], tmp_path: Path,
                          artifacts_dir: Path) -> None:
    page, problems = open_dashboard("#compare")
    page.wait_for_selector("[data-testid=cmp-app]", state="visible")
    for backtest_id in finished:
        page.wait_for_selector(f"[data-testid=cmp-pick-item][data-id='{backtest_id}']")
    assert page.is_disabled("[data-testid=cmp-button]")
    page.check(f"[data-testid=cmp-pick-item][data-id='{finished[0]}'] input")
    assert page.is_disabled("[data-testid=cmp-button]")  # one run is not a comparison
    page.check(f"[data-testid=cmp-pick-item][data-id='{finished[1]}'] input")
    assert page.is_enabled("[data-testid=cmp-button]")
    page.click("[data-testid=cmp-button]")
    page.wait_for_selector("[data-testid=cmp-app][data-state=ready]")
    assert page.evaluate("location.hash") == f"#compare={finished[0]},{finished[1]}"
    res = api.get("api/v1/backtests:compare", params=[("backtest_ids", i) for i in finished])
    assert res.status_code == 200, res.text
    cmp = res.json()
    runs = cmp["backtests"]
    assert [b["backtest_id"] for b in runs] == list(finished)

    # The metrics: a column a run, a row a metric; the best of a row marked.
    cols = page.eval_on_selector_all("[data-testid=cmp-run-col]", "cs => cs.map(c => c.dataset.id)")
    assert cols == list(finished)
    trades = page.locator("[data-testid=cmp-metric-row][data-metric=total_trades] td").all_text_contents()
    assert trades == [f"{b['metrics']['total_trades']:,}" for b in runs]
    sharpe = [float(b["metrics"]["sharpe"]) for b in runs]
    assert sharpe[0] != sharpe[1]
    best = page.eval_on_selector_all("[data-testid=cmp-metric-row][data-metric=sharpe] td", "ts => ts.map(t => t.dataset.best)")
    assert best == ["true" if s == max(sharpe) else "false" for s in sharpe]
    assert page.locator("[data-testid=cmp-metric-row][data-metric=total_trades] td.best").count() == 0  # no better or worse

    # The equity: a line a run, on the comparison's dates.
    equity = page.locator("[data-testid=cmp-equity]")
    assert equity.get_attribute("data-lines") == "2"
    assert int(equity.get_attribute("data-points")) == len(cmp["dates"]) > 0
    assert page.locator("[data-testid=cmp-legend-item]").count() == 2
    page.screenshot(path=str(artifacts_dir / "compare.png"), full_page=True)

    # CSVs: the API's numbers.
    name, rows = download(page, "cmp-csv-equity", tmp_path)
    assert name == f"compare-{finished[0]}-{finished[1]}-equity.csv"
    assert_rows(rows, ["date", *finished], [[d, *(b["return_pct"][i] for b in runs)] for i, d in enumerate(cmp["dates"])])
    name, rows = download(page, "cmp-csv-metrics", tmp_path)
    assert name == f"compare-{finished[0]}-{finished[1]}-metrics.csv"
    by_name = {r[0]: r[1:] for r in rows[1:]}
    assert rows[0] == ["metric", *finished]
    for key in ("strategy_id", "strategy_name", "symbol", "start_date", "end_date"):
        assert by_name[key] == [b[key] for b in runs]
    assert set(runs[0]["metrics"]) <= set(by_name)
    for key in runs[0]["metrics"]:
        assert all(same(c, b["metrics"][key]) for c, b in zip(by_name[key], runs)), key

    # A run's name opens it.
    page.click(f"[data-testid=cmp-run-col][data-id='{finished[1]}'] button")
    page.wait_for_function(f"location.hash === '#bt={finished[1]}'")
    page.wait_for_selector("[data-testid=app]", state="visible")
    problems.check()


def test_a_running_run_says_analytics_come_when_it_ends(open_dashboard: OpenPage, api: httpx.Client) -> None:
    backtest_id = start(api, "rsi_reversion.json", DECADE, tick_interval=1)
    try:
        wait_status(api, backtest_id, {"BACKTEST_STATUS_RUNNING"})
        page, problems = open_dashboard(f"#bt={backtest_id}/analytics")
        asked: list[str] = []
        page.on("request", lambda req: "/analytics" in req.url and "/api/" in req.url and asked.append(req.url))
        page.wait_for_selector("[data-testid=analytics][data-state=waiting]")
        assert page.text_content("[data-testid=an-status]") == WAITING
        assert not asked  # the page knows the run is running: it does not ask
        assert page.is_visible("[data-testid=an-status]") and page.is_hidden("[data-testid=an-monthly]")
        # ... and it was running all along (the engine says so too).
        assert api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()["status"] == "BACKTEST_STATUS_RUNNING"
        assert api.get(f"api/v1/backtests/{backtest_id}/analytics").status_code == 400
        page.close()
    finally:
        api.post(f"api/v1/backtests/{backtest_id}:cancel", json={})
    # Cancelled: analysed over the days it completed.
    assert wait_status(api, backtest_id, TERMINAL) == "BACKTEST_STATUS_CANCELLED"
    a = analytics(api, backtest_id)
    page, problems2 = open_dashboard(f"#bt={backtest_id}/analytics")
    page.wait_for_selector("[data-testid=analytics][data-state=ready]", timeout=60_000)
    assert page.locator("[data-testid=an-month]").count() == len(a["monthly_returns"]) > 0
    problems.check()
    problems2.check()


def test_without_the_worker_the_page_parses_the_analytics(context: Any, open_dashboard: OpenPage, api: httpx.Client,
                                                          finished: tuple[str, str]) -> None:
    context.route("**/ui/js/analytics-worker.js", lambda route: route.fulfill(status=404, body="gone"))
    backtest_id = finished[1]
    page, problems = open_analytics(open_dashboard, backtest_id, expect_errors=True)  # the 404 is logged
    assert page.evaluate("window.hindsight.analytics.transport") == "page"
    a = analytics(api, backtest_id)
    assert page.locator("[data-testid=an-month]").count() == len(a["monthly_returns"])
    assert int(page.get_attribute("[data-testid=an-scatter]", "data-points")) == len(a["trades"])
    problems.check()


def test_an_unknown_run_says_so(open_dashboard: OpenPage) -> None:
    page, problems = open_dashboard("#bt=bt_missing/analytics", expect_errors=True)  # the 404s are logged
    page.wait_for_selector("[data-testid=analytics][data-state=error]")
    assert page.text_content("[data-testid=an-status]") == "Backtest bt_missing not found (expired or deleted)."
    problems.check()
