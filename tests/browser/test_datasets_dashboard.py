"""The dashboard's Datasets view in real headless Chromium, against a real engine and gateway
(GET/DELETE /datasets/{symbol}, POST /datasets/{symbol}:upload).

A CSV chosen in the page's file input is uploaded as the raw body: its quality report shows, the
dataset is listed and both forms' symbol lists offer it at once (a backtest runs on it); the same
symbol again is refused as taken. A CSV with an unparsable cell is refused: the page shows the
finding naming its line and column, and nothing is listed. Delete (confirmed) removes it from
the list, the forms and the API. Details shows a dataset's report and its first and last rows.
"""

from __future__ import annotations

import csv
import random
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import OpenPage, example

pytestmark = pytest.mark.browser

DAYS = (date(2024, 1, 2), date(2024, 1, 3))  # a Tuesday and a Wednesday the BSE traded
BARS_A_DAY = 375  # 09:15 … 15:29, one a minute
TERMINAL = {"BACKTEST_STATUS_COMPLETED", "BACKTEST_STATUS_FAILED", "BACKTEST_STATUS_CANCELLED"}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def write_bars(path: Path, *, bad_close_on_line: int | None = None) -> Path:
    """2 days × 375 one-minute XBOM bars, naive timestamps in Asia/Kolkata, a gentle zigzag
    (a seeded random walk: no stale runs, no spikes). Line 1 is the header; `bad_close_on_line` puts 'abc' in that
    line's close."""
    rng = random.Random(7)
    rows: list[list[Any]] = []
    price = 100.0
    for day in DAYS:
        t = datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=15)
        for i in range(BARS_A_DAY):
            o, c = price, round(price + rng.gauss(0, 0.05), 2)
            rows.append([t.strftime("%Y-%m-%d %H:%M:%S"), f"{o:.2f}", f"{max(o, c) + 0.03:.2f}",
                         f"{min(o, c) - 0.03:.2f}", f"{c:.2f}", 1000 + (i * 37) % 500])
            price = c
            t += timedelta(minutes=1)
    if bad_close_on_line is not None:
        rows[bad_close_on_line - 2][4] = "abc"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        w.writerows(rows)
    return path


def open_datasets(open_dashboard: OpenPage) -> tuple[Any, Any]:
    page, problems = open_dashboard()
    # The Optimize form loads its symbol list the first time it is shown: load it, so that its
    # refresh after an upload is tested too.
    page.click("[data-testid=nav-optimize]")
    page.wait_for_selector("body[data-opt-ready=true]")
    page.wait_for_function("document.querySelector('#o-symbol').options.length > 0")
    page.click("[data-testid=nav-datasets]")
    page.wait_for_selector("[data-testid=ds-app]:not([hidden])")
    page.wait_for_selector("[data-testid=ds-list][data-state=ready]")
    assert page.evaluate("location.hash") == "#datasets"
    return page, problems


def upload(page: Any, path: Path, symbol: str, calendar: str = "XBOM", timezone: str = "Asia/Kolkata") -> None:
    page.set_input_files("[data-testid=ds-file]", str(path))
    page.fill("[data-testid=ds-symbol]", symbol)
    page.fill("[data-testid=ds-calendar]", calendar)
    page.fill("[data-testid=ds-timezone]", timezone)
    page.click("[data-testid=ds-upload-button]")


def shown(v: float) -> str:
    """A number as dom.js's fmtNum shows it (at most 2 decimals)."""
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def options(page: Any, select: str) -> list[str]:
    return list(page.eval_on_selector_all(f"{select} option", "os => os.map(o => o.value)"))


def listed(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("[data-testid=ds-row]", "rs => rs.map(r => r.dataset.symbol)"))


def wait_status(api: httpx.Client, backtest_id: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(api.get(f"api/v1/backtests/{backtest_id}?omit_days=true").json()["status"])
        if status in TERMINAL:
            return status
        assert time.monotonic() < deadline, f"{backtest_id} still {status}"
        time.sleep(0.1)


def test_an_uploaded_csv_is_reported_listed_offered_and_runs(open_dashboard: OpenPage, api: httpx.Client,
                                                              tmp_path: Path) -> None:
    symbol = unique("UPOK")
    page, problems = open_datasets(open_dashboard)
    assert "SIM-NIFTY" in listed(page)  # the built-in one, which has no Delete
    assert page.locator("[data-testid=ds-row][data-symbol=SIM-NIFTY] [data-testid=ds-delete-button]").count() == 0
    assert symbol not in options(page, "#f-symbol")

    upload(page, write_bars(tmp_path / "bars.csv"), symbol)
    page.wait_for_selector(f"[data-testid=ds-report][data-state=ready][data-symbol={symbol}]")
    assert page.get_attribute("[data-testid=ds-upload-form]", "data-state") == "done"

    detail = api.get(f"api/v1/datasets/{symbol}")
    assert detail.status_code == 200, detail.text
    quality = detail.json()["quality"]
    score = page.get_attribute("[data-testid=ds-report]", "data-score")
    assert score is not None and float(score) == pytest.approx(quality["score"])
    assert page.text_content("[data-testid=ds-report-score]") == f"{shown(quality['score'])} / 100"
    assert f"quality {shown(quality['score'])} / 100" in page.text_content("[data-testid=ds-upload-status]")
    assert page.locator("[data-testid=ds-preview] tbody tr").count() >= 2  # head and tail rows
    assert page.locator("[data-testid=ds-finding][data-severity=error]").count() == 0

    # Listed (bars from the API), and offered by both forms at once.
    row = f"[data-testid=ds-row][data-symbol={symbol}]"
    page.wait_for_selector(row)
    assert page.get_attribute(row, "data-source") == "upload"
    assert page.text_content(f"{row} td.num") == f"{len(DAYS) * BARS_A_DAY:,}"
    page.wait_for_function(f"[...document.querySelectorAll('#f-symbol option')].some(o => o.value === '{symbol}')")
    page.wait_for_function(f"[...document.querySelectorAll('#o-symbol option')].some(o => o.value === '{symbol}')")

    # The same symbol again: taken.
    upload(page, tmp_path / "bars.csv", symbol)
    page.wait_for_selector("[data-testid=ds-upload-form][data-state=error]")
    assert "is taken" in page.text_content("[data-testid=ds-upload-status]")

    # Details of the built-in dataset: no quality report, its rows.
    page.click("[data-testid=ds-row][data-symbol=SIM-NIFTY] [data-testid=ds-details-button]")
    page.wait_for_selector("[data-testid=ds-report][data-symbol=SIM-NIFTY]")
    assert page.locator("[data-testid=ds-preview] tbody tr").count() >= 2

    # A backtest on it, from the API.
    res = api.post("api/v1/backtests", json={"strategy": example("rsi_reversion.json"), "strategy_id": "rsi_reversion",
                                             "symbol": symbol, "start_date": DAYS[0].isoformat(),
                                             "end_date": DAYS[-1].isoformat()})
    assert res.status_code == 200, res.text
    assert wait_status(api, res.json()["backtest_id"]) == "BACKTEST_STATUS_COMPLETED"
    api.delete(f"api/v1/datasets/{symbol}")
    # The one error expected: the browser logs the 409 of the second upload.
    assert [e for e in problems.errors if "409" in e], problems.errors
    problems.errors = [e for e in problems.errors if "409" not in e]
    problems.check()


def test_a_csv_with_a_bad_cell_is_refused_with_its_finding(open_dashboard: OpenPage, api: httpx.Client,
                                                            tmp_path: Path) -> None:
    symbol = unique("UPBAD")
    page, problems = open_dashboard("#datasets", expect_errors=True)  # the 400 is a console error
    page.wait_for_selector("[data-testid=ds-list][data-state=ready]")
    upload(page, write_bars(tmp_path / "bad.csv", bad_close_on_line=3), symbol)
    page.wait_for_selector(f"[data-testid=ds-report][data-state=refused][data-symbol={symbol}]")
    assert "refused" in page.text_content("[data-testid=ds-upload-status]")
    finding = page.locator("[data-testid=ds-finding][data-severity=error][data-check=unparsable_values]")
    assert finding.count() == 1
    assert finding.get_attribute("data-column") == "close"
    message = finding.locator("td").nth(2).text_content()
    assert "line 3" in message and "column close" in message and "'abc'" in message

    page.click("[data-testid=ds-refresh]")
    page.wait_for_selector("[data-testid=ds-list][data-state=ready]")
    assert symbol not in listed(page)
    assert symbol not in options(page, "#f-symbol")
    assert api.get(f"api/v1/datasets/{symbol}").status_code == 404
    problems.check()


def test_delete_removes_an_upload_from_the_list_the_forms_and_the_api(open_dashboard: OpenPage, api: httpx.Client,
                                                                      tmp_path: Path) -> None:
    symbol = unique("UPDEL")
    page, problems = open_datasets(open_dashboard)
    upload(page, write_bars(tmp_path / "bars.csv"), symbol)
    row = f"[data-testid=ds-row][data-symbol={symbol}]"
    page.wait_for_selector(row)
    page.wait_for_function(f"[...document.querySelectorAll('#f-symbol option')].some(o => o.value === '{symbol}')")

    # Dismissed: nothing happens.
    page.once("dialog", lambda d: d.dismiss())
    page.click(f"{row} [data-testid=ds-delete-button]")
    page.click("[data-testid=ds-refresh]")
    page.wait_for_selector("[data-testid=ds-list][data-state=ready]")
    assert symbol in listed(page)
    assert api.get(f"api/v1/datasets/{symbol}").status_code == 200

    dialogs: list[str] = []

    def accept(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.click(f"{row} [data-testid=ds-delete-button]")
    page.wait_for_selector(row, state="detached")
    assert symbol in dialogs[0]
    assert page.text_content("[data-testid=ds-message]") == f"Deleted {symbol}."
    page.wait_for_function(f"![...document.querySelectorAll('#f-symbol option')].some(o => o.value === '{symbol}')")
    page.wait_for_function(f"![...document.querySelectorAll('#o-symbol option')].some(o => o.value === '{symbol}')")
    assert api.get(f"api/v1/datasets/{symbol}").status_code == 404
    problems.check()
