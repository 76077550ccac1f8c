"""Browser: "Your API keys" - a person saves their own Google key on a server that has only
AI/ML API, sees it back by its last four characters alone, gets Google's models in the Model
choice and an answer through their key, and removes it again."""

from __future__ import annotations

import pytest

from chatapp.credentials.models import PersonKey
from tests.conftest import answer, log_in, open_settings, ready, send

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

OWN_KEY = "AIzaSy-browser-own-key-0123456789-Zq7w"


def key_section(page: Page, label: str):
    return page.get_by_role("region", name=label)


def test_a_person_saves_a_key_uses_its_route_and_removes_it(page: Page, aimlapi, settings):
    settings.ROUTES = {
        **settings.ROUTES,
        "gemini": {**settings.ROUTES["gemini"], "OPTIONS": {"base_url": aimlapi.gemini_base_url}},
    }
    log_in(page)
    open_settings(page)
    model = page.get_by_label("Model", exact=True)
    expect(model.locator("option[value='gemini:gemini-2.5-flash']")).to_have_count(0)

    page.get_by_role("link", name="Your API keys").click()
    expect(page.get_by_role("heading", name="Your API keys", level=1)).to_be_visible()
    ready(page)
    google = key_section(page, "Google")
    expect(google).to_contain_text("This server has no Google key")
    field = google.get_by_label("Google API key")
    expect(field).to_have_attribute("type", "password")
    field.fill("not a key")
    google.get_by_role("button", name="Save key").click()
    expect(key_section(page, "Google").get_by_role("alert")).to_contain_text("no spaces")
    key_section(page, "Google").get_by_label("Google API key").fill(OWN_KEY)
    key_section(page, "Google").get_by_role("button", name="Save key").click()
    google = key_section(page, "Google")
    expect(google.get_by_role("status")).to_have_text("Saved your Google API key.")
    expect(google).to_contain_text("Your key ending in …Zq7w")
    expect(google.get_by_label("Google API key")).to_have_value("")
    assert OWN_KEY not in page.content()
    assert PersonKey.objects.get(route="gemini").last_four == "Zq7w"

    page.get_by_role("link", name="← Back to the chat").click()
    ready(page)
    open_settings(page)
    with page.expect_response(lambda r: "/settings/" in r.url):
        page.get_by_label("Model", exact=True).select_option("gemini:gemini-2.5-flash")
    send(page, "Hello through my own key")
    expect(answer(page)).to_contain_text("Echo: Hello through my own key")
    expect(answer(page)).to_contain_text("Google · gemini-2.5-flash")
    assert aimlapi.requests[-1].api_key == OWN_KEY
    assert aimlapi.requests[-1].path.endswith(":streamGenerateContent")  # Google's own wire

    page.get_by_role("link", name="Your API keys").click()
    ready(page)
    key_section(page, "Google").get_by_role("button", name="Remove key").click()
    google = key_section(page, "Google")
    expect(google.get_by_role("status")).to_have_text("Removed your Google API key.")
    expect(google.get_by_role("button", name="Remove key")).to_have_count(0)
    assert not PersonKey.objects.exists()
