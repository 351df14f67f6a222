"""An option-legs run on the dashboard, in real headless Chromium against a real engine.

The short straddle (examples/strategies/short_straddle.json) on SIM-NIFTY, started from the page:
its legs grouped under their positions in the trades table, a position's payoff diagram (the
tent of a short straddle at expiry, "now" priced as the engine prices) and how each leg's strike
was chosen.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import OpenPage, run_trade_ids, table_trade_ids, wait_finished

pytestmark = pytest.mark.browser

# Five sessions: 2 October 2024 (Gandhi Jayanti) is an exchange holiday, which the "now" curve
# must skip as the engine does.
FIVE_DAYS = ("2024-10-01", "2024-10-08")


def start_straddle(page: Any) -> str:
    page.select_option("[data-testid=example-select]", "short_straddle.json")
    page.select_option("[data-testid=symbol-select]", "SIM-NIFTY")
    page.fill("[data-testid=start-date]", FIVE_DAYS[0])
    page.fill("[data-testid=end-date]", FIVE_DAYS[1])
    page.click("[data-testid=start-button]")
    page.wait_for_function("window.hindsight.run !== null")
    return str(page.evaluate("window.hindsight.run.id"))


def run_days(api: httpx.Client, backtest_id: str) -> list[dict[str, Any]]:
    bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    return [api.get(f"api/v1/backtests/{backtest_id}/days/{d['date']}").json() for d in bt["daily_summaries"]]


def drawn_rows(page: Any) -> list[dict[str, str]]:
    return list(page.eval_on_selector_all("#trades-body tr:not(.spacer)",
                                          "rows => rows.map(r => ({...r.dataset}))"))


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


def test_option_positions_legs_and_payoff(open_dashboard: OpenPage, api: httpx.Client, artifacts_dir: Path) -> None:
    page, problems = open_dashboard()
    backtest_id = start_straddle(page)
    wait_finished(page)

    days = run_days(api, backtest_id)
    trades = [t for day in days for t in day["trades"]]
    legs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        legs[t["position_id"]].append(t)
    assert len(days) == 5 and len(legs) == 5, [d["date"] for d in days]
    assert all(sorted(t["leg_id"] for t in ls) == ["ce", "pe"] for ls in legs.values())

    # The table's model: every trade of the run exactly once, legs after their position's row.
    ids = table_trade_ids(page)
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(run_trade_ids(api, backtest_id))
    rows = drawn_rows(page)
    assert len(rows) == len(legs) * 3
    heads = page.locator("[data-testid=trades-table] thead th").all_text_contents()
    assert "Position / leg" in heads and "Strike" in heads and "Lots" in heads
    for i in range(0, len(rows), 3):
        position, first, second = rows[i:i + 3]
        pid = position["positionId"]
        assert position["testid"] == "position-row" and position["legs"] == "2", position
        assert [first["testid"], second["testid"]] == ["trade-row", "trade-row"]
        assert {first["tradeId"], second["tradeId"]} == {t["trade_id"] for t in legs[pid]}
        assert first["positionId"] == second["positionId"] == pid
        # Combined P&L: the sum of the legs' pnl (as PositionSummary says too).
        total = sum(float(t["pnl"]) for t in legs[pid])
        assert float(position["pnl"]) == pytest.approx(total, abs=0.005)
        summary = next(p for d in days for p in d["positions"] if p["position_id"] == pid)
        assert float(summary["pnl"]) == pytest.approx(total, abs=0.015)
        cell = page.locator(f"[data-testid=position-row][data-position-id='{pid}'] [data-testid=position-pnl]")
        assert float(cell.text_content().replace(",", "")) == pytest.approx(total, abs=0.005)

    # A position opens its panel: header, payoff diagram with both curves, the legs' table.
    pid = next(iter(legs))
    straddle = legs[pid]
    page.click(f"[data-testid=position-row][data-position-id='{pid}']")
    chart = page.locator("[data-testid=diagnostics] [data-testid=payoff-chart]")
    chart.wait_for()
    assert pid in page.text_content("[data-testid=diag-header]")
    assert page.locator("[data-testid=diagnostics] svg path").count() == 2
    assert page.get_attribute(f"[data-testid=position-row][data-position-id='{pid}']", "aria-selected") == "true"
    for t in straddle:
        assert page.get_attribute(f"[data-testid=trade-row][data-trade-id='{t['trade_id']}']", "aria-selected") == "true"
    leg_rows = page.locator("[data-testid=legs-table] [data-testid=leg-row]")
    assert sorted(leg_rows.evaluate_all("rs => rs.map(r => r.dataset.tradeId)")) == sorted(t["trade_id"] for t in straddle)
    assert straddle[0]["symbol"] in page.text_content("[data-testid=legs-table]")

    # At expiry a short straddle is a tent: highest at its strike, lower at both edges.
    strike = straddle[0]["strike"]
    expiry = path_points(chart.locator("[data-testid=payoff-expiry]").get_attribute("d"))
    now = path_points(chart.locator("[data-testid=payoff-now]").get_attribute("d"))
    assert len(expiry) == 3 and len(now) > 50
    box = chart.evaluate("s => ({lo: +s.dataset.priceMin, hi: +s.dataset.priceMax, left: +s.dataset.left, right: +s.dataset.right})")
    strike_x = box["left"] + (strike - box["lo"]) / (box["hi"] - box["lo"]) * (box["right"] - box["left"])
    (x0, y0), (xk, yk), (x1, y1) = expiry
    assert xk == pytest.approx(strike_x, abs=0.5)
    assert yk < y0 and yk < y1  # SVG y grows downwards: the strike is the highest P&L
    peak = min(now, key=lambda p: p[1])
    assert abs(peak[0] - strike_x) < (x1 - x0) * 0.1  # before expiry too, best near the strike
    for kind in ("entry", "exit"):
        assert chart.locator(f"[data-testid=payoff-spot-{kind}]").count() == 1

    # The numbers behind the curves: at expiry at the strike, both premiums kept; "now" at entry
    # prices each leg as the engine did at the fill (Black-Scholes, its IV, trading time that
    # skips the holiday), so at the entry spot it is about the slippage paid.
    curves = page.evaluate("""async ([legs]) => {
      const m = await import(new URL('ui/js/payoff.js', document.baseURI));
      const sessions = (await import(new URL('ui/js/position.js', document.baseURI))).runSessions(window.hindsight.run);
      const c = m.payoffCurves(legs, 'entry', sessions);
      const spot = legs[0].underlying_at_entry;
      return {atStrike: c.atExpiry(legs[0].strike), nowAtEntry: c.atNow(spot)};
    }""", [straddle])
    kept = sum(float(t["entry_price"]) * t["quantity"] for t in straddle)
    assert curves["atStrike"] == pytest.approx(kept, abs=0.01)
    assert abs(curves["nowAtEntry"]) < 0.005 * kept, curves

    # How each leg's strike was chosen, in the entry's node event.
    selections = page.locator("[data-testid=diag-entry] [data-testid=strike-selections]")
    selections.wait_for()
    entry_event = next(d["events_history"][t["entry_flow_ids"][0]] for d in days for t in straddle
                       if t["entry_flow_ids"][0] in d["events_history"])
    expected = {s["leg_id"]: s for s in entry_event["strike_selections"]}
    strike_rows = selections.locator("[data-testid=strike-row]")
    assert strike_rows.count() == 2
    for i in range(2):
        row = strike_rows.nth(i)
        s = expected[row.get_attribute("data-leg-id")]
        assert row.locator("[data-testid=strike-symbol]").text_content() == s["symbol"]
        assert float(row.locator("[data-testid=strike-premium]").text_content().replace(",", "")) == pytest.approx(s["premium"])
    assert {s["symbol"] for s in expected.values()} == {t["symbol"] for t in straddle}

    # The whole panel in the picture (taller than the panel's scroll box and the window).
    page.add_style_tag(content=".diag-panel { max-height: none; }")
    page.set_viewport_size({"width": 1600, "height": 2400})
    page.locator("[data-testid=diagnostics]").screenshot(path=str(artifacts_dir / "option-position-panel.png"))
    page.set_viewport_size({"width": 1600, "height": 1100})

    # "now" at entry redraws the diagram; a leg row opens the same position.
    assert page.get_attribute("[data-testid=payoff-at-exit]", "aria-pressed") == "true"
    before = chart.locator("[data-testid=payoff-now]").get_attribute("d")
    page.click("[data-testid=payoff-at-entry]")
    assert page.get_attribute("[data-testid=payoff-at-entry]", "aria-pressed") == "true"
    assert page.locator("[data-testid=diagnostics] [data-testid=payoff-now]").get_attribute("d") != before
    other = list(legs)[1]
    page.click(f"[data-testid=trade-row][data-trade-id='{legs[other][1]['trade_id']}']")
    page.wait_for_function(f"document.querySelector('[data-testid=diag-header]').textContent.includes('{other}')")
    page.locator("[data-testid=diagnostics] [data-testid=payoff-chart]").wait_for()

    # A day of the calendar shows that day's positions with their legs.
    day = days[2]
    page.click(f"[data-testid=calendar-day][data-date='{day['date']}']")
    shown = drawn_rows(page)
    assert [r["testid"] for r in shown] == ["position-row", "trade-row", "trade-row"]
    assert {r["tradeId"] for r in shown[1:]} == {t["trade_id"] for t in day["trades"]}
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "dashboard-options.png"), full_page=True)
    problems.check()


def test_legs_join_their_position_whatever_order_they_close_in(open_dashboard: OpenPage) -> None:
    # Legs close when they close: another position's legs, or a trade of the underlying, may come
    # in between. A table of its own, fed such a sequence, keeps each position's legs together.
    page, problems = open_dashboard()
    model = page.evaluate("""async () => {
      const { TradesTable } = await import(new URL('ui/js/trades.js', document.baseURI));
      const wrap = document.body.appendChild(document.createElement('div'));
      wrap.className = 'table-wrap';
      const body = wrap.appendChild(document.createElement('table')).createTBody();
      const table = new TradesTable(body, document.createElement('span'), document.createElement('span'), () => {});
      const leg = (pos, id, day, pnl) => ({trade_id: `${pos}-${id}`, position_id: pos, leg_id: id, side: 'sell',
        quantity: 25, lots: 1, lot_size: 25, strike: 25000, option_type: id === 'ce' ? 'CE' : 'PE',
        symbol: `NIFTY:2024-10-10:OPT:25000:${id.toUpperCase()}`, entry_price: '100', exit_price: '90', pnl,
        entry_time: '2024-10-01T09:20:00+05:30', exit_time: `${day}T15:15:00+05:30`});
      table.append([leg('a', 'ce', '2024-10-01', '10.50'), leg('b', 'ce', '2024-10-01', '-3')]);
      table.append([{trade_id: 'u1', position_id: 'u1', side: 'buy', quantity: 1, pnl: '1',
                     entry_time: '2024-10-01T10:00:00+05:30', exit_time: '2024-10-01T11:00:00+05:30'}]);
      table.append([leg('a', 'pe', '2024-10-03', '-0.25'), leg('b', 'pe', '2024-10-01', '7')]);
      const rows = () => [...body.querySelectorAll('tr:not(.spacer)')].map((r) => r.dataset.positionId
        ? `${r.dataset.testid === 'position-row' ? 'P' : 'L'}:${r.dataset.tradeId || r.dataset.positionId}:${r.dataset.pnl || ''}`
        : `T:${r.dataset.tradeId}`);
      const all = { ids: table.ids(), rows: rows() };
      table.setFilter('2024-10-03');
      const filtered = { ids: table.ids(), rows: rows() };
      wrap.remove();
      return { all, filtered };
    }""")
    assert model["all"]["ids"] == ["a-ce", "a-pe", "b-ce", "b-pe", "u1"]
    assert model["all"]["rows"] == ["P:a:10.25", "L:a-ce:", "L:a-pe:", "P:b:4.00", "L:b-ce:", "L:b-pe:", "T:u1"]
    # A day shows the legs that closed on it, under their position (whose P&L stays the whole's).
    assert model["filtered"] == {"ids": ["a-pe"], "rows": ["P:a:10.25", "L:a-pe:"]}
    problems.check()
