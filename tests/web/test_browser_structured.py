"""Browser: a schema-constrained answer. The person picks "JSON schema" as the Response format,
writes a schema (a broken one is refused in the panel first), sends, and the answer is shown
formatted with a badge saying it matches, and a Copy JSON button."""

from __future__ import annotations

import pytest

from tests.conftest import answer, log_in, open_settings, send, settings_saved
from tests.fakes.upstream import Reply

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

SCHEMA = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'


def test_a_schema_constrained_answer_with_its_badge(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    with settings_saved(page):
        page.get_by_label("Response format").select_option(label="JSON schema")
    box = page.get_by_role("textbox", name="JSON schema")
    with settings_saved(page):
        box.fill('{"type": "nope"}')
        box.press("Tab")
    expect(page.locator("#err-json_schema")).to_contain_text("is not a valid JSON Schema")
    with settings_saved(page):
        box.fill(SCHEMA)
        box.press("Tab")
    expect(page.locator("#err-json_schema")).to_have_text("")

    aimlapi.enqueue(Reply.text('{"city":"Paris"}'))
    send(page, "Where is the Louvre? Answer as JSON.")
    reply = answer(page)
    expect(reply.locator(".json-badge")).to_have_text("Matches the schema")
    expect(reply.get_by_role("button", name="Copy JSON")).to_be_visible()
    expect(reply.locator(".json-code pre")).to_have_text('{\n  "city": "Paris"\n}')
    sent = aimlapi.requests[-1].json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city"]


def test_a_saved_schema_is_kept_under_a_name_and_used_again(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    with settings_saved(page):
        page.get_by_label("Response format").select_option(label="JSON schema")
    box = page.get_by_role("textbox", name="JSON schema")
    with settings_saved(page):
        box.fill(SCHEMA)
        box.press("Tab")

    with page.expect_response(lambda r: r.url.endswith("/schemas/")):
        page.get_by_text("Saved schemas", exact=True).click()
    saved = page.locator(".saved-schemas")
    expect(saved).to_contain_text("No saved schemas yet")
    saved.get_by_label("Schema name").fill("City")
    saved.get_by_role("button", name="Save schema").click()
    expect(saved.get_by_role("status")).to_have_text("Saved the schema “City”.")

    with settings_saved(page):
        box.fill('{"type": "object"}')
        box.press("Tab")
    with settings_saved(page):
        saved.get_by_role("button", name="Use schema City").click()
    expect(box).to_have_value(SCHEMA)
    expect(box).to_be_focused()

    aimlapi.enqueue(Reply.text('{"city":"Rome"}'))
    send(page, "Where is the Colosseum? Answer as JSON.")
    expect(answer(page).locator(".json-badge")).to_have_text("Matches the schema")
    assert aimlapi.requests[-1].json["response_format"]["json_schema"]["schema"]["required"] == [
        "city"
    ]
