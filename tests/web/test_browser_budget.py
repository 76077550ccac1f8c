"""Browser: the composer's cost estimate (app.js, from the model options' list input prices)
follows what is typed, the conversation shown, the system prompt and the model chosen; and an
administrator sets a person's monthly budget on the Admin page.

Real Chromium against the real app; the waits are on page states."""

from __future__ import annotations

import re

from django.contrib.auth.models import User

from tests.conftest import BROWSER_TEST, PASSWORD, add_message, expect, log_in, open_settings, ready

pytestmark = BROWSER_TEST

ESTIMATE = "#cost-estimate"


def test_the_estimate_follows_the_typing_and_the_model(page):
    log_in(page)
    estimate = page.locator(ESTIMATE)
    expect(estimate).to_be_hidden()  # nothing to send yet
    box = page.get_by_role("textbox", name="Message")
    model = page.get_by_label("Model", exact=True)
    model.select_option("aimlapi:google/gemini-2.5-flash")

    box.fill("x" * 4000)  # 1,000 tokens at $0.30 per million
    expect(estimate).to_have_text("≈ $0.0003 estimated for this prompt")
    expect(estimate).to_have_attribute("aria-live", "polite")
    expect(estimate).to_have_attribute("title", re.compile(r"input only: about 1,000 tokens"))
    box.press_sequentially("y" * 4)
    expect(estimate).to_have_attribute("title", re.compile(r"about 1,001 tokens"))
    box.fill("x" * 40_000)  # 10,000 tokens
    expect(estimate).to_have_text("≈ $0.0030 estimated for this prompt")

    model.select_option("aimlapi:google/gemini-2.5-pro")  # $1.25 per million
    expect(estimate).to_have_text("≈ $0.0125 estimated for this prompt")
    model.select_option("aimlapi:google/gemini-3-5-flash")  # no list price
    expect(estimate).to_be_hidden()
    model.select_option("aimlapi:google/gemini-2.5-flash")
    expect(estimate).to_have_text("≈ $0.0030 estimated for this prompt")


def test_the_estimate_counts_the_conversation_shown_and_the_system_prompt(page):
    from chatapp.conversations.models import Conversation

    log_in(page)
    owner = User.objects.get(username="alice")
    chat = Conversation.objects.create(
        owner=owner, route="aimlapi", model="google/gemini-2.5-pro", title="Long one"
    )
    add_message(chat, role="user", content="q" * 4000)
    add_message(
        chat,
        role="assistant",
        status="complete",
        content="a" * 4000,
        route="aimlapi",
        model="google/gemini-2.5-pro",
    )
    page.goto(f"/c/{chat.pk}/")
    ready(page)
    estimate = page.locator(ESTIMATE)
    # 8,000 characters of thread: 2,000 tokens at $1.25 per million.
    expect(estimate).to_have_text("≈ $0.0025 estimated for this prompt")
    expect(estimate).to_have_attribute("title", re.compile(r"about 2,000 tokens"))
    page.get_by_role("textbox", name="Message").fill("m" * 4800)
    expect(estimate).to_have_text("≈ $0.0040 estimated for this prompt")  # 3,200 tokens
    open_settings(page)
    page.get_by_label("System prompt").fill("s" * 8000)
    expect(estimate).to_have_text("≈ $0.0065 estimated for this prompt")  # 5,200 tokens


def test_an_administrator_sets_a_budget_and_a_refusal_names_its_limit(page):
    User.objects.create_superuser(username="boss", password=PASSWORD)
    User.objects.create_user(username="ann", password=PASSWORD)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    page.goto("/manage/")
    ready(page)
    row = page.get_by_role("table", name="People").get_by_role("row").filter(has_text="ann")
    row.get_by_role("spinbutton", name="Monthly budget").fill("12.345")
    row.get_by_role("button", name="Save budget").click()
    expect(page.get_by_role("alert")).to_have_text(
        "A monthly budget in dollars has at most 2 decimal places (cents)."
    )
    row.get_by_role("spinbutton", name="Monthly budget").fill("12.5")
    row.get_by_role("combobox", name="Budget unit").select_option(label="credits")
    row.get_by_role("button", name="Save budget").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(row).to_contain_text("0 credits of 12.5 credits")
    expect(row.get_by_role("spinbutton", name="Monthly budget")).to_have_value("12.5")
    expect(row.get_by_role("combobox", name="Budget unit")).to_have_value("credits")
