"""Browser: sign-up with an administrator's approval (DJANGO_SIGNUP=approval, the default),
from the newcomer's side and from the Admin page."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, ready

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]


def sign_up(page: Page, username: str) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()


def log_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_newcomer_waits_for_approval_and_logs_in_once_approved(page, browser, live_url):
    sign_up(page, "boss")  # the first account: the administrator, at once
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    ready(page)

    context = browser.new_context(base_url=live_url)
    newcomer = context.new_page()
    try:
        sign_up(newcomer, "newbie")
        expect(newcomer.get_by_role("heading", name="Awaiting approval")).to_be_visible()
        expect(newcomer.get_by_role("status")).to_contain_text("awaiting approval")
        log_in(newcomer, "newbie")
        expect(newcomer.get_by_role("alert")).to_contain_text("awaiting approval")

        page.get_by_role("link", name="Admin").click()
        people = page.get_by_role("table", name="People")
        row = people.get_by_role("row").filter(has_text="newbie")
        expect(row).to_contain_text("Awaiting approval")
        ready(page)
        row.get_by_role("button", name="Approve").click()
        expect(row).to_contain_text("Member")
        expect(row.get_by_role("button", name="Approve")).to_have_count(0)
        expect(row.get_by_role("button", name="Make administrator")).to_be_visible()

        log_in(newcomer, "newbie")
        expect(newcomer.get_by_role("textbox", name="Message")).to_be_visible()
    finally:
        context.close()


def test_the_usage_page_charts_the_month_with_its_totals_in_words(page):
    from django.contrib.auth.models import User

    from tests.web.test_usage_page import answered

    answered(User.objects.create_user(username="counter", password=PASSWORD), 1500, 250)
    log_in(page, "counter")
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    page.get_by_role("link", name="Usage").click()
    chart = page.get_by_role("img", name=re.compile(r"Tokens per day, .*: 1,500 in, 250 out"))
    expect(chart).to_be_visible()
    expect(page.get_by_role("combobox", name="Month")).to_be_visible()
    table = page.get_by_role("table", name=re.compile("Usage in"))
    expect(table.get_by_role("row").filter(has_text="gemini-2.5-flash")).to_contain_text("1,500")
