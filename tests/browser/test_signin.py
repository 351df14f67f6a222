"""Signing in on the dashboard, in real headless Chromium, against an engine with users.

The page asks GET /api/v1/me; on 401 it shows the sign-in form, which posts the API key to
/api/v1/session (an HttpOnly cookie comes back). Then a run started from the form streams to
completion on the cookie alone (EventSource, in the stream worker), sign-out brings the form back,
and a key revoked while signed in sends the page back to the form at its next request. In local
mode nothing asks for a sign-in: the top bar says "local mode".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import OpenPage, PageProblems, Stack, wait_finished

pytestmark = pytest.mark.browser

COOKIE = "hindsight_session"
DAYS = ("2024-01-01", "2024-01-12")


def open_signed_out(context: Any, stack: Stack) -> tuple[Any, PageProblems]:
    """The page, waiting at its sign-in form. 401s are expected: Chromium logs each one."""
    page = context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda exc: problems.errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and "401" not in msg.text
            and problems.errors.append(f"console: {msg.text}"))
    page.goto(stack.base_url)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("[data-testid=signin-form]", state="visible")
    return page, problems


def sign_in(page: Any, key: str) -> None:
    page.get_by_label("API key or token").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[data-testid=app]", state="visible")
    # The form is ready once the examples and datasets have loaded.
    page.wait_for_function("document.querySelector('#f-symbol').options.length > 0"
                           " && document.querySelector('#f-strategy').value.length > 0")


def start_from_form(page: Any, dates: tuple[str, str]) -> str:
    page.select_option("[data-testid=example-select]", "rsi_reversion.json")
    page.select_option("[data-testid=symbol-select]", "SIM-NIFTY")
    page.fill("[data-testid=start-date]", dates[0])
    page.fill("[data-testid=end-date]", dates[1])
    page.fill("[data-testid=tick-interval]", "0")
    page.click("[data-testid=start-button]")
    page.wait_for_function("window.hindsight.run !== null")
    return str(page.evaluate("window.hindsight.run.id"))


def session_cookies(context: Any) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == COOKIE]


def test_sign_in_run_stream_and_sign_out(context: Any, users_stack: Stack) -> None:
    stack = users_stack
    page, problems = open_signed_out(context, stack)
    token = page.get_by_label("API key or token")
    assert token.get_attribute("type") == "password"
    assert page.is_hidden("[data-testid=app]") and page.is_hidden("[data-testid=who]")
    assert page.get_attribute("body", "data-auth") == "signed-out"

    # A wrong key: the form says so and stays.
    token.fill("hsk_0123456789abcdef_not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("document.querySelector('[data-testid=signin-status]').textContent.startsWith('Not signed in')")
    assert page.is_visible("[data-testid=signin-form]") and not session_cookies(context)

    sign_in(page, stack.keys["alice"])
    assert page.text_content("[data-testid=who]") == "alice"
    assert page.is_visible("[data-testid=signout-button]")
    assert page.get_attribute("body", "data-auth") == "api_key"
    [cookie] = session_cookies(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # the page itself never sees the token
    assert page.input_value("[data-testid=signin-token]") == ""

    # A run from the form streams in on the cookie alone (EventSource in the worker) to the end.
    backtest_id = start_from_form(page, DAYS)
    wait_finished(page)
    assert page.text_content("[data-testid=connection]") == "done"
    assert page.get_attribute("[data-testid=progress]", "aria-valuenow") == "100"
    assert page.evaluate("window.hindsight.stream.stats.events") > 0
    with httpx.Client(base_url=stack.base_url, timeout=30,
                      headers={"authorization": f"Bearer {stack.keys['alice']}"}) as api:
        bt = api.get(f"api/v1/backtests/{backtest_id}").json()
    assert bt["status"] == "BACKTEST_STATUS_COMPLETED"
    assert page.text_content("[data-testid=metric-trades] .value") == str(bt["summary"]["total_trades"])
    page.wait_for_selector(f"[data-testid=run-item][data-id='{backtest_id}']")

    # Sign out: the form again, the cookie gone, nothing of the run left on the page.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("[data-testid=signin-form]", state="visible")
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_hidden("[data-testid=app]") and page.is_hidden("[data-testid=who]")
    assert not session_cookies(context)
    assert backtest_id not in page.url
    problems.check()


def test_a_revoked_key_returns_to_the_form(context: Any, users_stack: Stack) -> None:
    from services.engine.auth import UserStore

    stack = users_stack
    page, problems = open_signed_out(context, stack)
    sign_in(page, stack.keys["alice-2"])
    assert page.text_content("[data-testid=who]") == "alice"
    users = UserStore(stack.users_file)
    try:
        key_id = stack.keys["alice-2"].split("_")[1]
        assert users.revoke(key_id) == 1
    finally:
        users.close()
    page.click("[data-testid=runs-refresh]")  # the next request answers 401
    page.wait_for_selector("[data-testid=signin-form]", state="visible")
    assert page.is_hidden("[data-testid=app]")
    assert page.text_content("[data-testid=signin-status]").startswith("Signed out")
    # Another (valid) key signs in again.
    sign_in(page, stack.keys["alice"])
    assert page.text_content("[data-testid=who]") == "alice"
    problems.check()


def test_local_mode_needs_no_sign_in(open_dashboard: OpenPage) -> None:
    page, problems = open_dashboard()
    assert page.is_hidden("[data-testid=signin]")
    assert page.text_content("[data-testid=who]") == "local mode"
    assert page.get_attribute("[data-testid=who]", "data-method") == "local"
    assert page.is_hidden("[data-testid=signout-button]")
    assert page.get_attribute("body", "data-auth") == "local"
    problems.check()
