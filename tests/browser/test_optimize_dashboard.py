"""The dashboard's optimization view in real headless Chromium, against a real engine and gateway.

Start a grid sweep from the page and see it complete: the heatmap fills a cell per parameter
pair, the best trials are listed, DSR/PBO read in plain words; a best trial opens as an ordinary
backtest that reproduces the trial's numbers. Two objectives draw a Pareto front; walk-forward
lists its windows and draws the out-of-sample equity; an earlier optimization reopens from the
list (its stream replayed from the first event).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import OpenPage, example, wait_finished

pytestmark = pytest.mark.browser

ONE_MONTH = ("2024-01-01", "2024-01-31")
# What the view suggests for the SMA crossover (examples/strategies/sma_cross.json: periods 10
# and 20): half to twice each period, 8 steps, and fast < slow.
FAST = list(range(5, 21, 2))
SLOW = list(range(10, 41, 4))
GRID = [(f, s) for f in FAST for s in SLOW if f < s]


def open_optimize(open_dashboard: OpenPage, path: str = "", **kwargs: Any) -> tuple[Any, Any]:
    page, problems = open_dashboard(path, **kwargs)
    page.click("[data-testid=nav-optimize]")
    page.wait_for_selector("[data-testid=opt-app]", state="visible")
    page.wait_for_selector("body[data-opt-ready=true]")
    return page, problems


def start_sweep(page: Any, dates: tuple[str, str] = ONE_MONTH, *, second_objective: str = "",
                walk_forward: tuple[int, int] | None = None, example: bool = True) -> str:
    if example:  # its parameters suggested (what the first test checks)
        page.select_option("[data-testid=opt-example-select]", "sma_cross.json")
    page.select_option("[data-testid=opt-symbol]", "SIM-NIFTY")
    page.select_option("[data-testid=opt-method]", "grid")
    page.select_option("[data-testid=opt-objective-1]", "sharpe:maximize")
    page.select_option("[data-testid=opt-objective-2]", second_objective)
    page.fill("[data-testid=opt-start-date]", dates[0])
    page.fill("[data-testid=opt-end-date]", dates[1])
    if walk_forward:
        page.fill("[data-testid=opt-wf-train]", str(walk_forward[0]))
        page.fill("[data-testid=opt-wf-test]", str(walk_forward[1]))
    page.click("[data-testid=opt-start-button]")
    page.wait_for_function("window.hindsight.optimize.state !== null")
    return str(page.evaluate("window.hindsight.optimize.state.id"))


def wait_optimized(page: Any, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector("[data-testid=opt-main][data-final=true]", timeout=timeout_ms)


def test_grid_sweep_from_the_page_and_a_best_trial_as_a_backtest(open_dashboard: OpenPage, api: httpx.Client) -> None:
    page, problems = open_optimize(open_dashboard)
    rows = page.locator("[data-testid=opt-param-row]")
    assert rows.count() == 2
    assert rows.nth(0).locator(".path").input_value() == "indicators[0].period"
    assert [rows.nth(1).locator(f".{k}").input_value() for k in ("low", "high", "step")] == ["10", "40", "4"]
    assert page.input_value("[data-testid=opt-constraints]") == "sma_fast < sma_slow"

    opt_id = start_sweep(page)
    assert page.evaluate("location.hash") == f"#opt={opt_id}"
    wait_optimized(page)
    opt = api.get(f"api/v1/optimizations/{opt_id}").json()
    assert opt["status"] == "OPTIMIZATION_STATUS_COMPLETED"
    assert int(opt["progress"]["total_trials"]) == len(GRID)

    # The heatmap: one cell per parameter pair, each drawn.
    assert page.get_attribute("[data-testid=opt-heatmap]", "data-cells") == str(len(GRID))
    assert page.evaluate("window.hindsight.optimize.heatmap.filled") == len(GRID)
    assert page.get_attribute("[data-testid=opt-progress]", "aria-valuenow") == "100"
    assert page.text_content("[data-testid=opt-progress-text]").startswith(f"{len(GRID)} / {len(GRID)} trials")
    box = page.locator("[data-testid=opt-heatmap]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
    page.wait_for_selector("[data-testid=opt-heatmap-tooltip]", state="visible")
    assert "trial #" in page.text_content("[data-testid=opt-heatmap-tooltip]")
    # Another metric, another pair of axes: the same cells, coloured again.
    page.select_option("[data-testid=heat-metric]", "total_trades")
    page.select_option("[data-testid=heat-x]", "sma_slow")
    page.select_option("[data-testid=heat-y]", "sma_fast")
    page.wait_for_function(f"document.querySelector('[data-testid=opt-heatmap]').dataset.cells === '{len(GRID)}'")

    # The best trials, as the engine ranks them; the overfitting reading.
    top = opt["result"]["top"]
    drawn = page.locator("[data-testid=opt-top-row]")
    assert drawn.count() == len(top) == 10
    assert [drawn.nth(i).get_attribute("data-number") for i in range(10)] == [t["number"] for t in top]
    assert page.text_content("[data-testid=opt-top-count]") == "10"
    reading = page.text_content("[data-testid=opt-reading]")
    assert reading == opt["result"]["overfitting"]["reading"] and "DSR" in reading
    assert page.text_content("[data-testid=opt-dsr]") not in ("", "—")
    assert page.is_hidden("[data-testid=opt-pareto-panel]") and page.is_hidden("[data-testid=opt-wf-panel]")
    page.wait_for_selector(f"[data-testid=opt-item][data-id='{opt_id}'][data-status=COMPLETED][aria-current=true]")

    # A best trial opens as a backtest that gives the trial's numbers: the winner (the result's
    # best_strategy) and the runner-up (its values applied to the strategy on the page).
    for rank in (0, 1):
        if rank:
            page.click("[data-testid=nav-optimize]")
            page.wait_for_selector("[data-testid=opt-app]", state="visible")
            assert page.evaluate("location.hash") == f"#opt={opt_id}"
        page.locator("[data-testid=opt-top-row]").nth(rank).click()
        page.wait_for_function("location.hash.startsWith('#bt=')")
        page.wait_for_selector("[data-testid=app]", state="visible")
        wait_finished(page)
        backtest_id = page.evaluate("window.hindsight.run.id")
        bt = api.get(f"api/v1/backtests/{backtest_id}").json()
        trial = top[rank]
        assert bt["config"]["symbol"] == "SIM-NIFTY"
        assert (bt["config"]["start_date"], bt["config"]["end_date"]) == ONE_MONTH
        periods = [i["period"] for i in bt["config"]["strategy"]["indicators"]]
        assert periods == [trial["parameters"]["sma_fast"], trial["parameters"]["sma_slow"]]
        assert bt["metrics"]["total_trades"] == trial["metrics"]["total_trades"]
        assert bt["metrics"]["sharpe"] == pytest.approx(trial["metrics"]["sharpe"], rel=1e-9, abs=1e-9)
        assert page.text_content("[data-testid=metric-trades] .value") == str(trial["metrics"]["total_trades"])
    problems.check()


def test_two_objectives_and_walk_forward(open_dashboard: OpenPage, api: httpx.Client) -> None:
    page, problems = open_optimize(open_dashboard)
    opt_id = start_sweep(page, ("2024-01-01", "2024-02-29"), second_objective="max_drawdown_pct:maximize",
                         walk_forward=(10, 5))
    wait_optimized(page)
    opt = api.get(f"api/v1/optimizations/{opt_id}").json()
    assert opt["status"] == "OPTIMIZATION_STATUS_COMPLETED", opt.get("error_message")
    windows = opt["result"]["walk_forward"]["windows"]
    assert len(windows) >= 3

    # The plots show the latest window's sweep. Pareto: every feasible trial a point, the front joined.
    per_window = int(opt["progress"]["total_trials"]) // len(windows)
    assert per_window == len(GRID)
    assert page.text_content("[data-testid=opt-heat-window]") == f"window {len(windows)}"
    assert page.get_attribute("[data-testid=opt-heatmap]", "data-cells") == str(len(GRID))
    assert page.is_visible("[data-testid=opt-pareto-panel]")
    points = int(page.get_attribute("[data-testid=opt-pareto]", "data-points"))
    assert points == per_window
    assert int(page.get_attribute("[data-testid=opt-pareto]", "data-front")) >= 1
    # Walk-forward: the windows, the out-of-sample equity, the efficiency.
    assert page.locator("[data-testid=opt-wf-row]").count() == len(windows)
    equity = opt["result"]["walk_forward"]["equity"]
    assert int(page.get_attribute("[data-testid=opt-wf-chart]", "data-points")) == len(equity) > 0
    assert "efficiency" in page.text_content("[data-testid=opt-wf-summary]")
    assert f"window {len(windows)}/{len(windows)}" in page.text_content("[data-testid=opt-progress-text]")
    # The top table is the latest window's, each row with its window.
    rows = page.locator("[data-testid=opt-top-row]")
    assert rows.count() >= 1
    assert {rows.nth(i).get_attribute("data-window") for i in range(rows.count())} == {str(len(windows))}
    assert page.text_content("[data-testid=opt-reading]")
    problems.check()


def test_an_earlier_optimization_reopens_and_replays(open_dashboard: OpenPage, api: httpx.Client) -> None:
    listed = api.get("api/v1/optimizations").json()["optimizations"]
    done = [o for o in listed if o["status"] == "OPTIMIZATION_STATUS_COMPLETED" and not o["config"].get("walk_forward")]
    if not done:  # alone: start one through the API
        res = api.post("api/v1/optimizations", json={"config": {
            "strategy": example("sma_cross.json"), "method": "grid", "symbol": "SIM-NIFTY",
            "start_date": ONE_MONTH[0], "end_date": ONE_MONTH[1],
            "space": {"parameters": [{"name": "sma_fast", "path": "indicators[0].period",
                                      "int_range": {"low": 5, "high": 19, "step": 2}},
                                     {"name": "sma_slow", "path": "indicators[1].period",
                                      "int_range": {"low": 10, "high": 38, "step": 4}}],
                      "constraints": [{"lhs": "sma_fast", "op": "<", "rhs": "sma_slow"}]}}})
        assert res.status_code == 200, res.text
        opt_id = res.json()["optimization_id"]
    else:
        opt_id = done[0]["optimization_id"]
    page, problems = open_optimize(open_dashboard)
    page.wait_for_selector(f"[data-testid=opt-item][data-id='{opt_id}']")
    page.click(f"[data-testid=opt-item][data-id='{opt_id}']")
    wait_optimized(page)
    opt = api.get(f"api/v1/optimizations/{opt_id}").json()
    total = int(opt["progress"]["total_trials"])
    assert page.evaluate("window.hindsight.optimize.state.trials.length") == total
    assert page.get_attribute("[data-testid=opt-heatmap]", "data-cells") == str(total)
    assert page.locator("[data-testid=opt-top-row]").count() == len(opt["result"]["top"])
    assert page.evaluate("window.hindsight.optimize.stream.stats.duplicates") == 0

    # The address opens it too, on a fresh page.
    page2, problems2 = open_dashboard(f"#opt={opt_id}")
    page2.wait_for_selector("[data-testid=opt-app]", state="visible")
    wait_optimized(page2)
    assert page2.get_attribute("[data-testid=opt-heatmap]", "data-cells") == str(total)
    assert page2.is_hidden("[data-testid=app]")
    page2.click("[data-testid=nav-backtests]")
    page2.wait_for_selector("[data-testid=app]", state="visible")
    assert page2.is_hidden("[data-testid=opt-app]")
    problems.check()
    problems2.check()


def test_bad_parameters_are_shown_on_their_rows(open_dashboard: OpenPage) -> None:
    # expect_errors: Chromium logs the 400 itself to the console.
    page, problems = open_optimize(open_dashboard, expect_errors=True)
    page.select_option("[data-testid=opt-example-select]", "sma_cross.json")
    page.locator("[data-testid=opt-param-row] .path").nth(1).fill("indicators[7].period")
    page.click("[data-testid=opt-start-button]")
    page.wait_for_selector("[data-testid=opt-problem]")
    fields = page.eval_on_selector_all("[data-testid=opt-problem]", "ps => ps.map(p => p.dataset.field)")
    assert "config.space.parameters[1].path" in fields
    assert page.locator("[data-testid=opt-param-row]").nth(1).locator(".path").get_attribute("aria-invalid") == "true"
    assert page.evaluate("window.hindsight.optimize.state") is None
    problems.check()


def test_ten_thousand_trials_stream_in_without_a_long_task(open_dashboard: OpenPage, api: httpx.Client) -> None:
    """A 100 × 100 grid followed live: the stream is read in a Web Worker, the page draws once per
    frame, and no task on the page's main thread takes long while the trials stream in."""
    page, problems = open_optimize(open_dashboard)
    page.select_option("[data-testid=opt-example-select]", "sma_cross.json")
    rows = page.locator("[data-testid=opt-param-row]")
    for i, values in enumerate([("2", "101", "1"), ("102", "201", "1")]):
        for cls, v in zip(("low", "high", "step"), values):
            rows.nth(i).locator(f".{cls}").fill(v)
    page.fill("[data-testid=opt-constraints]", "")
    page.evaluate("""() => {
      window.__long = []; window.__seen = [];
      const t0 = performance.now();
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) if (e.startTime > t0) window.__long.push(Math.round(e.duration));
      }).observe({type: 'longtask'});
      const poll = () => {
        const s = window.hindsight.optimize.state;
        if (s) window.__seen.push(Number(document.querySelector('[data-testid=opt-heatmap]').dataset.cells));
        if (!s || !s.finished) setTimeout(poll, 50);
      };
      poll();
    }""")
    opt_id = start_sweep(page, ("2024-01-01", "2024-01-31"), example=False)
    wait_optimized(page, timeout_ms=240_000)
    assert page.evaluate("(s => s.worker !== null && s.feed === null)(window.hindsight.optimize.stream)")
    opt = api.get(f"api/v1/optimizations/{opt_id}").json()
    assert int(opt["progress"]["total_trials"]) == 10_000
    assert page.get_attribute("[data-testid=opt-heatmap]", "data-cells") == "10000"
    assert page.locator("[data-testid=opt-top-row]").count() == 10
    seen = page.evaluate("window.__seen")
    assert any(0 < n < 10_000 for n in seen), "the heatmap never showed the sweep part-way"
    long = page.evaluate("window.__long")
    assert max(long, default=0) < 250, f"long tasks while 10,000 trials streamed in: {long}"
    problems.check()


def test_without_the_worker_the_page_reads_the_stream_itself(context: Any, open_dashboard: OpenPage,
                                                             api: httpx.Client) -> None:
    context.route("**/ui/js/stream-worker.js", lambda route: route.fulfill(status=404, body="gone"))
    strategy = example("sma_cross.json")
    res = api.post("api/v1/optimizations", json={"config": {
        "strategy": strategy, "method": "random", "max_trials": 20, "seed": 5, "symbol": "SIM-NIFTY",
        "start_date": ONE_MONTH[0], "end_date": ONE_MONTH[1],
        "objectives": [{"metric": "sharpe"}, {"metric": "total_trades", "direction": "minimize"}],
        "space": {"parameters": [
            {"name": "fast", "path": "indicators[0].period", "int_range": {"low": 2, "high": 30}},
            {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 31, "high": 90}}]}}})
    assert res.status_code == 200, res.text
    opt_id = res.json()["optimization_id"]
    page, problems = open_dashboard(f"#opt={opt_id}", expect_errors=True)  # the 404 is logged
    wait_optimized(page)
    assert page.evaluate("window.hindsight.optimize.stream.feed !== null")
    assert page.evaluate("window.hindsight.optimize.state.trials.length") == 20
    assert page.is_visible("[data-testid=opt-pareto-panel]")
    assert int(page.get_attribute("[data-testid=opt-pareto]", "data-points")) >= 1
    # Random trials over wide ranges: the heatmap bins them (more values than cells).
    assert 1 <= int(page.get_attribute("[data-testid=opt-heatmap]", "data-cells")) <= 20
    problems.check()
