"""Browser tests for the three routes: one conversation continued over AI/ML API, Google and
Segmind in turn (system prompt and image carried over, each request valid in its route's
format), Segmind's live wait with Stop, and Gemini's endings explained on the page.

Synchronisation is by events only: Playwright's `expect` waits for the page, the fake
upstream holds Segmind's answer at a `Gate`, and settings changes are awaited as responses.
"""

from __future__ import annotations

import base64
import re

import pytest
from django.core.files.storage import default_storage

from chatapp.models import Attachment, Conversation, Message
from tests import imagegen
from tests.conftest import answer, log_in, open_settings, send, settings_saved
from tests.fakes.gemini_schema import validate_gemini_request, validate_segmind_request
from tests.fakes.openapi import validate_chat_request
from tests.fakes.upstream import Gate, Reply, Text
from tests.web.test_browser_vision import ALL_LOADED, attach_file, tray

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

SYSTEM = "Answer in one short sentence."
RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def choose_model(page: Page, key: str) -> None:
    with settings_saved(page) as saved:
        page.get_by_label("Model", exact=True).select_option(key)
    # app.js names the field that changed: a new model re-renders the options section.
    assert saved.value.request.headers.get("hx-trigger-name") == "model"
    expect(page.locator("#settings-options input[name=options_for]")).to_have_value(key)


def test_one_conversation_over_aimlapi_google_and_segmind(page, all_routes):
    log_in(page)
    open_settings(page)
    expect(page.get_by_label("Model", exact=True).locator("optgroup")).to_have_count(3)
    choose_model(page, "aimlapi:google/gemini-2.5-flash")
    expect(page.locator("#model-route")).to_have_text("Route: AI/ML API")
    expect(page.get_by_label("Top K")).to_have_count(0)  # not an AI/ML API parameter
    with settings_saved(page):
        page.get_by_label("System prompt").fill(SYSTEM)
        page.get_by_label("System prompt").press("Tab")

    # Turn 1, AI/ML API: the system prompt and an image.
    attach_file(page, "photo.jpg", imagegen.jpeg(640, 480))
    expect(page.locator("#attachments input[name=attachments]")).to_have_count(1)
    page.wait_for_function(ALL_LOADED, arg="#attachments img")
    all_routes.enqueue(Reply([Text("A test card.")]))
    send(page, "What is this?")
    expect(answer(page).locator(".msg-body")).to_have_text("A test card.")
    expect(answer(page).locator(".meta-model")).to_contain_text("AI/ML API · ")
    expect(tray(page)).to_have_count(0)

    # Turn 2, Google, with one safety setting.
    open_settings(page)
    expect(page.get_by_label("System prompt")).to_have_value(SYSTEM)
    choose_model(page, "gemini:gemini-2.5-flash")
    expect(page.locator("#model-route")).to_have_text("Route: Google")
    expect(page.get_by_label("Top K")).to_be_visible()
    expect(page.get_by_label("Response format")).to_have_value("")  # Text
    for label in ("Harassment", "Hate speech", "Sexually explicit", "Dangerous content"):
        expect(page.get_by_label(label, exact=True)).to_have_value("")
    with settings_saved(page) as saved:
        page.get_by_label("Harassment").select_option("BLOCK_NONE")
    assert saved.value.request.headers.get("hx-trigger-name") == "safety_harassment"
    expect(page.locator("#settings-status")).to_have_text("Saved.")
    all_routes.enqueue(Reply([Text("Still a test card.")]))
    send(page, "Are you sure?")
    expect(answer(page).locator(".msg-body")).to_have_text("Still a test card.")
    expect(answer(page).locator(".meta-model")).to_contain_text("Google · ")

    # Turn 3, Segmind: Google's safety setting is not silently dropped but set aside, in view,
    # one click from Google again; the switch is saved and Send is not blocked. The note says
    # Segmind may ignore the settings.
    open_settings(page)
    choose_model(page, "segmind:gemini-2.5-flash")
    expect(page.locator("#model-route")).to_contain_text(
        "Route: Segmind. Segmind may ignore these settings"
    )
    notice = page.locator("#set-aside")
    expect(notice).to_contain_text(
        "Not sent to Gemini 2.5 Flash on Segmind: Safety settings (1 set)"
    )
    expect(page.locator("#settings-status")).to_have_text("Saved.")
    with settings_saved(page):
        notice.get_by_role("button", name="Restore").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value("gemini:gemini-2.5-flash")
    expect(page.get_by_label("Harassment")).to_have_value("BLOCK_NONE")
    choose_model(page, "segmind:gemini-2.5-flash")
    with settings_saved(page):
        notice.get_by_role("button", name="Discard").click()
    expect(notice).to_have_count(0)
    expect(page.locator("#settings-status")).to_have_text("Saved.")

    all_routes.enqueue(Reply([Gate("segmind"), Text("Yes, a test card.")]))
    send(page, "Last question?")
    status = answer(page).locator(".msg-status")
    expect(status).to_have_text(re.compile(r"^Waiting for Segmind · \d+ s$"))
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    all_routes.wait_for_gate("segmind")
    all_routes.release("segmind")
    expect(answer(page).locator(".msg-body")).to_have_text("Yes, a test card.")
    expect(answer(page).locator(".meta-model")).to_contain_text("Segmind · ")

    # Each upstream request carried the whole history, the system prompt and the image,
    # in its own format.
    attachment = Attachment.objects.get()
    with default_storage.open(attachment.file_name) as fh:
        image = fh.read()
    encoded = base64.b64encode(image).decode()
    aiml, google, segmind = all_routes.chat_requests

    validate_chat_request(aiml.json)
    assert aiml.path == "/v1/chat/completions"
    assert aiml.json["messages"] == [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{attachment.mime_type};base64,{encoded}"},
                },
                {"type": "text", "text": "What is this?"},
            ],
        },
    ]

    validate_gemini_request(google.json)
    assert google.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert google.headers["x-goog-api-key"]
    first_turn = [
        {"role": "user", "parts": [{"inlineData": {"mimeType": attachment.mime_type, "data": encoded}}, {"text": "What is this?"}]},
        {"role": "model", "parts": [{"text": "A test card."}]},
    ]  # fmt: skip
    assert google.json["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert google.json["contents"] == [
        *first_turn,
        {"role": "user", "parts": [{"text": "Are you sure?"}]},
    ]
    assert google.json["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    ]

    validate_segmind_request(segmind.json)
    assert segmind.path == "/segmind/gemini-2.5-flash"
    body = segmind.json["messages"]
    assert body["system_instruction"] == {"parts": {"text": SYSTEM}}
    assert body["contents"] == [
        *first_turn,
        {"role": "user", "parts": [{"text": "Are you sure?"}]},
        {"role": "model", "parts": [{"text": "Still a test card."}]},
        {"role": "user", "parts": [{"text": "Last question?"}]},
    ]
    assert "generationConfig" not in body
    conversation = Conversation.objects.get()
    assert list(conversation.messages.filter(role="assistant").values_list("route", flat=True)) == [
        "aimlapi",
        "gemini",
        "segmind",
    ]

    # A second Segmind wait, stopped: the request is closed and nothing half-arrived stays.
    all_routes.enqueue(Reply([Gate("never"), Text("never shown")]))
    send(page, "One more?")
    expect(answer(page).locator(".msg-status")).to_contain_text("Waiting for Segmind")
    all_routes.wait_for_gate("never")
    page.get_by_role("button", name="Stop").click()
    expect(answer(page).locator(".msg-note")).to_have_text("Stopped before any text arrived.")
    expect(answer(page).get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    assert all_routes.wait_closed(len(all_routes.requests) - 1).client_disconnected
    assert Message.objects.filter(status=Message.Status.STOPPED).count() == 1


def test_a_safety_ending_and_a_blocked_prompt_explain_themselves(page, all_routes):
    log_in(page)
    open_settings(page)
    choose_model(page, "gemini:gemini-2.5-flash")

    all_routes.enqueue(Reply(finish="SAFETY", safety_ratings=RATINGS))
    send(page, "Something risky")
    ending = answer(page).locator(".msg-ending")
    expect(ending).to_contain_text("No answer: the safety filters blocked it.")
    expect(answer(page).locator(".msg-body")).to_have_count(0)  # no empty bubble
    expect(answer(page).locator(".meta-finish")).to_have_text("blocked by safety filters")
    ratings = answer(page).locator("details.msg-safety")
    expect(ratings.locator("li").first).not_to_be_visible()  # closed until asked
    ratings.get_by_text("Safety ratings").click()
    expect(ratings.locator("li")).to_have_text(
        ["Harassment: negligible probability", "Dangerous content: high probability · blocked"]
    )

    all_routes.enqueue(Reply(blocked="SAFETY", safety_ratings=RATINGS))
    send(page, "Something riskier")
    expect(answer(page).locator(".msg-error")).to_contain_text(
        "Your prompt was blocked: the safety filters flagged it"
    )
    expect(answer(page).get_by_role("button", name="Retry")).to_be_visible()
    blocked = answer(page).locator("details.msg-safety")
    blocked.get_by_text("Safety ratings").click()
    expect(blocked).to_contain_text("Your prompt was blocked: the safety filters flagged it")
    expect(blocked.locator("li").last).to_have_text("Dangerous content: high probability · blocked")


def test_the_settings_panel_fits_at_360_px(browser, live_url, all_routes):
    context = browser.new_context(base_url=live_url, viewport={"width": 360, "height": 740})
    page = context.new_page()
    log_in(page, "narrow")
    open_settings(page)
    choose_model(page, "gemini:gemini-3-flash-preview")
    expect(page.get_by_label("Thinking level")).to_be_visible()
    expect(page.get_by_label("Dangerous content")).to_be_attached()
    page.get_by_label("Dangerous content").scroll_into_view_if_needed()
    expect(page.get_by_label("Dangerous content")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    widths = page.eval_on_selector_all(
        "#settings-options select, #settings-options input:not([type=hidden])",
        "els => els.map((el) => el.getBoundingClientRect().right)",
    )
    assert widths
    assert max(widths) <= 360
    context.close()
