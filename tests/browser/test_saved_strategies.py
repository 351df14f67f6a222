"""Saved strategies in the dashboard's run form, in real headless Chromium against a real engine and
gateway: save from the form, reload the page, load it, run it (the run references the saved
strategy's id and version); an edited one runs inline; Save version adds a version and never
overwrites one saved meanwhile; problems are shown as Validate shows them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import OpenPage, example, wait_finished

pytestmark = pytest.mark.browser

TWO_WEEKS = ("2024-01-01", "2024-01-12")


def as_proto(strategy: dict[str, Any]) -> Any:
    """A strategy's JSON as its message: the API writes fields at their defaults, files leave them out."""
    from google.protobuf import json_format

    from hindsight.v1 import strategy_pb2

    return json_format.ParseDict(strategy, strategy_pb2.Strategy())


def wait_for_saved(page: Any, strategy_id: str) -> None:
    page.wait_for_function("id => [...document.querySelectorAll('#f-saved option')].some(o => o.value === id)",
                           arg=strategy_id)


def load_saved(page: Any, strategy_id: str, version: int | None = None) -> None:
    wait_for_saved(page, strategy_id)
    page.select_option("[data-testid=saved-select]", strategy_id)
    page.wait_for_function("() => document.querySelector('#f-saved-version').options.length > 0")
    if version is not None:
        page.select_option("[data-testid=saved-version-select]", str(version))
    page.click("[data-testid=saved-load-button]")
    page.wait_for_selector(f"[data-testid=saved-state][data-state=loaded][data-strategy-id={strategy_id}]"
                           + (f"[data-version='{version}']" if version is not None else ""))


def start_run(page: Any) -> tuple[str, dict[str, Any]]:
    """Start from the form over two weeks; (backtest id, the StartBacktest body the page sent)."""
    page.select_option("[data-testid=symbol-select]", "SIM-NIFTY")
    page.fill("[data-testid=start-date]", TWO_WEEKS[0])
    page.fill("[data-testid=end-date]", TWO_WEEKS[1])
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/v1/backtests")) as sent:
        page.click("[data-testid=start-button]")
    page.wait_for_function("window.hindsight.run !== null")
    return str(page.evaluate("window.hindsight.run.id")), json.loads(sent.value.post_data)


def editor(page: Any) -> dict[str, Any]:
    return json.loads(page.input_value("[data-testid=strategy-json]"))


def shown_problems(page: Any) -> list[tuple[str, str]]:
    return [(p.get_attribute("data-field") or "", p.inner_text())
            for p in page.query_selector_all("[data-testid=strategy-problem]")]


def test_save_reload_load_and_run_by_reference(open_dashboard: OpenPage, api: httpx.Client) -> None:
    page, problems = open_dashboard()
    page.select_option("[data-testid=example-select]", "sma_cross.json")
    page.fill("[data-testid=saved-id]", "browser-sma")
    page.click("[data-testid=save-button]")
    page.wait_for_selector("[data-testid=saved-state][data-state=loaded][data-strategy-id=browser-sma]")
    saved = api.get("api/v1/strategies/browser-sma").json()
    assert saved["version"] == 1 and as_proto(saved["strategy"]) == as_proto(example("sma_cross.json"))

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("document.querySelector('#f-strategy').value.length > 0")
    wait_for_saved(page, "browser-sma")
    assert page.get_attribute("[data-testid=saved-state]", "data-state") == "none"
    load_saved(page, "browser-sma")
    assert editor(page) == saved["strategy"]
    assert page.input_value("[data-testid=example-select]") == ""

    backtest_id, body = start_run(page)
    assert "strategy" not in body and body["strategy_id"] == "browser-sma" and body["strategy_version"] == 1
    wait_finished(page)
    bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    assert bt["status"] == "BACKTEST_STATUS_COMPLETED" and bt["strategy_id"] == "browser-sma"
    assert bt["config"]["strategy_id"] == "browser-sma" and bt["config"]["strategy_version"] == 1
    assert bt["config"]["strategy"] == saved["strategy"]
    runs = api.get("api/v1/backtests", params={"strategy_id": "browser-sma"}).json()["backtests"]
    assert [r["backtest_id"] for r in runs] == [backtest_id]
    problems.check()


def test_an_edit_runs_inline_and_save_version_never_overwrites(open_dashboard: OpenPage, api: httpx.Client) -> None:
    r = api.post("api/v1/strategies", json={"strategy_id": "browser-rsi", "strategy": example()})
    assert r.status_code == 200, r.text
    # expect_errors: Chromium logs the 409 of the stale save to the console itself.
    page, problems = open_dashboard(expect_errors=True)
    load_saved(page, "browser-rsi")

    # Reformatting is not an edit: still the saved version.
    page.fill("[data-testid=strategy-json]", json.dumps(editor(page)))
    page.wait_for_selector("[data-testid=saved-state][data-state=loaded]")
    edited = editor(page)
    edited["indicators"][0]["period"] = 21
    page.fill("[data-testid=strategy-json]", json.dumps(edited, indent=2))
    page.wait_for_selector("[data-testid=saved-state][data-state=edited]")
    backtest_id, body = start_run(page)
    assert body["strategy"] == edited and not body.get("strategy_version")
    wait_finished(page)
    bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    assert bt["config"]["strategy"]["indicators"][0]["period"] == 21 and bt["config"].get("strategy_version", 0) == 0

    # Save version: version 2 holds the edit; the editor is that version now.
    page.click("[data-testid=save-version-button]")
    page.wait_for_selector("[data-testid=saved-state][data-state=loaded][data-version='2']")
    latest = api.get("api/v1/strategies/browser-rsi").json()
    assert latest["version"] == 2 and latest["strategy"]["indicators"][0]["period"] == 21
    assert page.input_value("[data-testid=saved-version-select]") == "2"

    # Someone saves version 3 meanwhile: this editor's Save version is refused and says so.
    other = {**latest["strategy"], "name": "changed elsewhere"}
    assert api.put("api/v1/strategies/browser-rsi", json={"strategy": other}).json()["version"] == 3
    mine = editor(page)
    mine["indicators"][0]["period"] = 9
    page.fill("[data-testid=strategy-json]", json.dumps(mine, indent=2))
    page.click("[data-testid=save-version-button]")
    page.wait_for_selector("[data-testid=form-status][data-conflict=true]")
    status = page.text_content("[data-testid=form-status]")
    assert "someone saved a newer version" in status and "v3" in status
    latest = api.get("api/v1/strategies/browser-rsi").json()
    assert latest["version"] == 3 and latest["strategy"]["name"] == "changed elsewhere"
    # Loading the latest and saving from it works.
    load_saved(page, "browser-rsi", 3)
    assert editor(page)["name"] == "changed elsewhere"
    problems.check()


def test_problems_show_as_validate_shows_them(open_dashboard: OpenPage, api: httpx.Client) -> None:
    page, problems = open_dashboard(expect_errors=True)  # the 400 is logged to the console
    before = len(api.get("api/v1/strategies").json().get("strategies", []))
    bad = example()
    bad["indicators"][0]["period"] = 0
    bad["entries"][0]["when"] = {}
    page.fill("[data-testid=strategy-json]", json.dumps(bad, indent=2))
    page.click("[data-testid=validate-button]")
    page.wait_for_selector("[data-testid=strategy-problem]")
    validated = shown_problems(page)
    assert len(validated) >= 2
    page.fill("[data-testid=strategy-json]", json.dumps(bad, indent=1))  # clears the list
    assert shown_problems(page) == []
    page.click("[data-testid=save-button]")
    page.wait_for_selector("[data-testid=strategy-problem]")
    assert shown_problems(page) == validated
    assert len(api.get("api/v1/strategies").json().get("strategies", [])) == before

    # The engine's own refusal (an id it does not accept) is listed the same way.
    page.fill("[data-testid=strategy-json]", json.dumps(example(), indent=2))
    page.fill("[data-testid=saved-id]", "Not An Id")
    page.click("[data-testid=save-button]")
    page.wait_for_selector("[data-testid=strategy-problem][data-field=strategy_id]")
    assert page.get_attribute("[data-testid=saved-state]", "data-state") == "none"
    problems.check()
