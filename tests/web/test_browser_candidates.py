"""Browser: several candidates. The person sets Candidates to 2 in the settings panel and
sends; the first candidate streams, and when the stream ends the answer shows "1 / 2" without
a reload; Next version shows the second candidate. With Token probabilities on, the answer
has a "Token probabilities" disclosure listing each token with its probability and
alternatives."""

from __future__ import annotations

import pytest

from tests.conftest import log_in, open_settings, send, settings_saved
from tests.fakes.upstream import Reply, Text

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]


def finished(page: Page):
    return page.locator("article.msg-assistant:not(.msg-active)").last


def test_two_candidates_end_as_1_of_2_and_the_next_version_is_the_second(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    with settings_saved(page):
        box = page.get_by_role("textbox", name="Candidates")
        box.fill("2")
        box.press("Tab")
    expect(page.locator("#err-candidate_count")).to_have_text("")

    aimlapi.enqueue(Reply.candidates("The first candidate.", "The second candidate."))
    send(page, "Say something, twice.")
    answer = finished(page)
    expect(answer.locator(".msg-body")).to_have_text("The first candidate.")
    expect(answer.locator(".version-count")).to_have_text("1 / 2")
    assert aimlapi.requests[-1].json["n"] == 2

    answer.get_by_role("button", name="Next version").click()
    expect(finished(page).locator(".msg-body")).to_have_text("The second candidate.")
    expect(finished(page).locator(".version-count")).to_have_text("2 / 2")
    expect(finished(page).locator(".msg-meta")).to_contain_text("candidate 2 of 2")

    page.reload()  # the version shown is the conversation's
    expect(finished(page).locator(".msg-body")).to_have_text("The second candidate.")


def test_token_probabilities_are_a_disclosure_under_the_answer(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    with settings_saved(page):
        page.get_by_label("Token probabilities").check()
    aimlapi.enqueue(
        Reply([Text("Hi", logprobs=[("Hi", -0.105, [("Hello", -2.3)])]), Text(" there")])
    )
    send(page, "Greet me.")
    answer = finished(page)
    expect(answer.locator(".msg-body")).to_have_text("Hi there")
    disclosure = answer.locator("details.msg-logprobs")
    expect(disclosure.locator("summary")).to_have_text("Token probabilities")
    disclosure.locator("summary").click()
    tokens = disclosure.get_by_role("list", name="Tokens")
    expect(tokens).to_be_visible()
    expect(tokens.locator(":scope > li").first).to_contain_text("Hi 90.0%")
    expect(tokens.get_by_role("list", name="Alternatives")).to_contain_text("Hello 10.0%")
    assert aimlapi.requests[-1].json["logprobs"] is True
