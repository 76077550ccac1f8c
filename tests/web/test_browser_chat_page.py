"""The chat page while an answer streams and after (docs/ARCHITECTURE.md, "Formatted while it
streams"): blocks formatted as they close, a view that follows the reader's wishes and never
jumps, named Copy buttons, keyboard shortcuts, announcements, the app's own "Not found" page.

Real Chromium against the real app and the fake upstream; waits are on page states and gates.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import BROWSER_TEST, expect, log_in, open_settings, send
from tests.fakes.upstream import Gate, Reply, Text, chunks

pytestmark = BROWSER_TEST

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}

# Each block's top inside the thread's scrolled content, for every block of the answer.
BLOCK_TOPS = """(answer) => {
  const thread = document.getElementById("thread");
  const base = thread.getBoundingClientRect().top - thread.scrollTop;
  const body = answer.querySelector(".msg-body");
  return Array.from(body.children)
    .filter((el) => !el.classList.contains("msg-tail"))
    .map((el) => Math.round((el.getBoundingClientRect().top - base) * 100) / 100);
}"""

AT_BOTTOM = """() => {
  const t = document.getElementById("thread");
  return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
}"""


def last_answer(page):
    return page.locator("article.msg-assistant").last


def finished(page):
    return page.locator("article.msg-assistant:not(.msg-active)").last


def test_finished_blocks_are_formatted_while_the_answer_streams_and_the_end_moves_nothing(
    page, aimlapi
):
    log_in(page)
    head = "# Plan\n\nSome **bold** text and `code`.\n\n- one\n- two\n\n```python\nprint('hi')\n"
    rest = "x = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nThe $E=mc^2$ end."
    aimlapi.enqueue(
        Reply([*chunks(head, size=7), Gate("fence"), *chunks(rest, size=7), Gate("end")])
    )
    send(page, "Format as you go")
    aimlapi.wait_for_gate("fence")
    answer = last_answer(page)
    body = answer.locator(".msg-body")
    # Closed blocks are already HTML from the server...
    expect(body.locator("h1")).to_have_text("Plan")
    expect(body.locator("p strong")).to_have_text("bold")
    expect(body.locator("ul li")).to_have_count(2)
    # ...and the open fence is a code box already, its fence line not shown.
    tail = answer.locator(".msg-tail.code-block")
    expect(tail.locator(".code-lang")).to_have_text("python")
    expect(tail.locator("pre code")).to_have_text("print('hi')\n")
    assert "**" not in body.inner_text()
    assert "```" not in body.inner_text()
    assert answer.get_attribute("class").split().count("msg-active") == 1

    aimlapi.release("fence")
    aimlapi.wait_for_gate("end")
    expect(body.locator("table td")).to_have_count(2)
    expect(body.locator(".code-block pre code")).to_contain_text("x = 1")
    expect(answer.locator(".msg-tail")).to_have_text("The $E=mc^2$ end.")
    before = answer.evaluate(BLOCK_TOPS)
    assert len(before) == 5  # heading, paragraph, list, code, table

    aimlapi.release("end")
    done = finished(page)
    expect(done.locator(".msg-meta")).to_be_visible()
    after = done.evaluate(BLOCK_TOPS)
    assert after[: len(before)] == before  # 0 px: nothing on screen moved at the end
    expect(done.locator(".msg-body math")).to_have_count(1)
    expect(done.locator(".msg-body p").last).to_contain_text("end.")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_view_follows_the_stream_and_stays_put_at_the_end(browser, live_url, aimlapi, size):
    context = browser.new_context(base_url=live_url, **size)
    page = context.new_page()
    log_in(page, "follower")
    paragraphs = "".join(
        f"Paragraph {i} of a long answer, long enough to wrap.\n\n" for i in range(40)
    )
    aimlapi.enqueue(
        Reply(
            [*chunks(paragraphs, size=40), Gate("mid"), *chunks(paragraphs, size=40), Gate("end")]
        )
    )
    send(page, "A long answer")
    page.evaluate(
        """() => { const t = document.getElementById("thread"); window.minTop = Infinity;
        t.addEventListener("scroll", () => { window.minTop = Math.min(window.minTop, t.scrollTop); }); }"""
    )
    aimlapi.wait_for_gate("mid")
    page.wait_for_function(AT_BOTTOM)
    aimlapi.release("mid")
    aimlapi.wait_for_gate("end")
    page.wait_for_function(AT_BOTTOM)
    aimlapi.release("end")
    expect(finished(page).locator(".msg-meta")).to_be_visible()
    page.wait_for_function(AT_BOTTOM)
    assert page.evaluate("window.minTop") > 0  # never back to the top
    expect(page.get_by_role("button", name="Jump to latest")).to_be_hidden()

    # A second answer: the sent message and the start of the answer come into view; then the
    # reader scrolls up, and from there nothing moves their view, not even the end. The
    # answer waits for the sent message to be seen: followed to its end, 40 paragraphs on,
    # the message is out of view again (CI's PostgreSQL pass once looked only then).
    aimlapi.enqueue(
        Reply(
            [
                Gate("sent"),
                *chunks(paragraphs, size=40),
                Gate("read"),
                *chunks(paragraphs, size=40),
                Gate("fin"),
            ]
        )
    )
    send(page, "Another long answer")
    aimlapi.wait_for_gate("sent")
    expect(page.locator("article.msg-user").last).to_be_in_viewport()
    aimlapi.release("sent")
    aimlapi.wait_for_gate("read")
    page.wait_for_function(AT_BOTTOM)
    thread = page.locator("#thread")
    thread.hover()
    page.mouse.wheel(0, -1500)
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    top = page.evaluate("document.getElementById('thread').scrollTop")
    aimlapi.release("read")
    aimlapi.wait_for_gate("fin")
    expect(last_answer(page).locator(".msg-body p")).to_have_count(80)
    assert page.evaluate("document.getElementById('thread').scrollTop") == top
    aimlapi.release("fin")
    expect(page.locator("article.msg-assistant:not(.msg-active)")).to_have_count(2)
    assert page.evaluate("document.getElementById('thread').scrollTop") == top
    jump.click()
    page.wait_for_function(AT_BOTTOM)
    expect(jump).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= size["viewport"]["width"]
    context.close()


def test_escape_stops_the_answer_being_written(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Half an answer"), Gate("never"), Text(" never shown")]))
    send(page, "Stop me with Esc")
    aimlapi.wait_for_gate("never")
    expect(last_answer(page).locator(".msg-tail")).to_have_text("Half an answer")
    page.keyboard.press("Escape")
    expect(finished(page).locator(".msg-note")).to_have_text("Stopped.")
    expect(finished(page).locator(".msg-body")).to_have_text("Half an answer")


def test_copy_buttons_say_what_they_copy_and_copy_answer_takes_the_markdown(
    browser, live_url, aimlapi
):
    context = browser.new_context(base_url=live_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, "copier")
    markdown = "Use **this**:\n\n```sh\nls -la\n```\n\nThen $x^2$."
    aimlapi.enqueue(Reply([Text(markdown)]))
    send(page, "Something to copy")
    done = finished(page)
    expect(done.get_by_role("button", name="Copy code")).to_have_count(1)
    done.get_by_role("button", name="Copy answer").click()
    expect(done.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == markdown

    done.get_by_role("button", name="Copy code").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'ls -la\\n'")

    # The shortcut copies the last answer.
    page.evaluate("navigator.clipboard.writeText('nothing yet')")
    page.locator("body").press("Control+Shift+C")
    page.wait_for_function(
        "async (want) => (await navigator.clipboard.readText()) === want", arg=markdown
    )
    context.close()


def test_shortcuts_are_listed_and_the_composer_has_the_focus(page, aimlapi):
    log_in(page)
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_focused()
    page.keyboard.press("Control+/")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Stop the answer being written")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Keyboard shortcuts").focus()
    page.keyboard.press("Shift+Escape")
    expect(composer).to_be_focused()

    aimlapi.enqueue(Reply([Text("A short answer.")]))
    send(page, "Hello")
    expect(finished(page).locator(".msg-body")).to_have_text("A short answer.")
    # A finished answer is announced politely, and the box has the focus again.
    expect(page.locator("#announcer")).to_have_text("Answer finished: A short answer.")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    expect(composer).to_be_focused()
    conversation_url = page.url
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(lambda url: url != conversation_url)
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()


def test_a_conversation_that_no_longer_exists_gets_the_apps_own_page(page):
    log_in(page)
    response = page.goto(f"/c/{uuid.uuid4()}/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text("This conversation does not exist any more")
    link = page.get_by_role("link", name="New chat")
    # Styled by the app's stylesheet, not the browser's defaults.
    assert page.evaluate("getComputedStyle(document.querySelector('main.auth')).maxWidth") != "none"
    link.click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_model_is_in_the_header_and_the_settings_do_not_cover_the_conversation(
    browser, live_url, all_routes, size
):
    context = browser.new_context(base_url=live_url, **size)
    page = context.new_page()
    log_in(page, "picker")
    header = page.locator("header.topbar")
    model = header.get_by_role("combobox", name="Model")
    expect(model).to_be_in_viewport()
    routes = model.locator("optgroup").evaluate_all("groups => groups.map((g) => g.label)")
    assert routes == ["AI/ML API", "Google", "Segmind"]
    toggle = header.get_by_role("button", name="Settings", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    panel = page.get_by_role("region", name="Chat settings")
    expect(panel).to_be_hidden()
    toggle.click()
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    box = panel.bounding_box()
    thread = page.locator("#thread").bounding_box()
    width, height = size["viewport"]["width"], size["viewport"]["height"]
    if size is DESKTOP:
        # Beside the conversation, which makes room for it.
        assert box["x"] + box["width"] == pytest.approx(width, abs=1)
        assert thread["x"] + thread["width"] <= box["x"] + 1
    else:
        # A sheet over the bottom of the screen, the header still usable above it.
        assert box["y"] + box["height"] == pytest.approx(height, abs=1)
        assert box["width"] == pytest.approx(width, abs=1)
        expect(model).to_be_in_viewport()
    panel.get_by_role("button", name="Close settings").click()
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_while_the_server_cannot_be_reached_the_page_says_so_and_keeps_the_text(page, aimlapi):
    log_in(page)
    notice = page.get_by_role("status").filter(has_text="Reconnecting")
    expect(notice).to_be_hidden()
    page.context.set_offline(True)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Typed while offline")
    box.press("Enter")
    expect(notice).to_be_visible()
    expect(box).to_have_value("Typed while offline")
    page.context.set_offline(False)
    expect(notice).to_be_hidden()
    expect(box).to_have_value("Typed while offline")
    aimlapi.enqueue(Reply([Text("Back.")]))
    box.press("Enter")
    expect(finished(page).locator(".msg-body")).to_have_text("Back.")


def test_on_a_phone_the_box_shows_three_lines_while_typing_and_nothing_scrolls_sideways(
    browser, live_url, aimlapi, tmp_path
):
    context = browser.new_context(base_url=live_url, **PHONE)
    page = context.new_page()
    log_in(page, "phone")
    box = page.get_by_role("textbox", name="Message")
    box.click()
    box.press_sequentially("Typing on a phone")
    lines = page.evaluate(
        """() => { const t = document.getElementById("composer-text");
        const style = getComputedStyle(t);
        const inner = t.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
        return inner / parseFloat(style.lineHeight); }"""
    )
    assert lines >= 3
    header = page.locator("header.topbar")
    for control in (
        header.get_by_role("button", name="Menu", exact=True),
        header.get_by_role("combobox", name="Model"),
        header.get_by_role("button", name="Settings", exact=True),
    ):
        expect(control).to_be_in_viewport()
        assert control.bounding_box()["height"] >= 32  # big enough to tap
    aimlapi.enqueue(Reply([Text("A reply that is long enough to wrap on a narrow screen. " * 4)]))
    box.press("Enter")
    expect(finished(page).locator(".msg-meta")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
    context.close()


def test_defaults_and_presets_are_chosen_explicitly(page, aimlapi):
    log_in(page)
    open_settings(page)
    page.get_by_label("Model", exact=True).select_option("aimlapi:google/gemini-2.5-pro")
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_role("button", name="Use as default for new chats").click()
    expect(page.locator("#preset-status")).to_contain_text(
        "New chats will start with Gemini 2.5 Pro"
    )
    page.get_by_label("Preset name").fill("Careful")
    page.get_by_label("Temperature").fill("0.1")
    page.get_by_role("button", name="Save as preset").click()
    expect(page.locator("#preset-status")).to_have_text("Saved the preset “Careful”.")

    page.goto("/")
    expect(page.get_by_label("Model", exact=True)).to_have_value("aimlapi:google/gemini-2.5-pro")
    open_settings(page)
    expect(page.get_by_label("Temperature")).to_have_value("0.3")  # the defaults
    page.get_by_label("Start from a preset").select_option(label="Careful")
    expect(page.get_by_label("Temperature")).to_have_value("0.1")
    expect(page).to_have_url(re.compile(r"\?preset="))
    page.get_by_role("button", name="Delete preset Careful").click()
    expect(page.locator("#preset-status")).to_have_text("Deleted the preset “Careful”.")
    expect(page.get_by_label("Start from a preset")).to_have_count(0)


def test_a_preset_saved_as_the_panel_autosaves_is_still_confirmed(page, aimlapi):
    """Clicking "Save as preset" takes focus from a changed field, so the panel's autosave
    follows 150 ms later. The panel's requests replace one another; a preset's must not be
    among them, or a save slower than 150 ms is dropped with its confirmation."""
    log_in(page)
    open_settings(page)
    held = []

    def hold(route):
        held.append((route, route.fetch()))  # answered by the server, not yet by the page

    page.route("**/presets/", hold)
    page.get_by_label("Preset name").fill("Careful")
    page.get_by_label("Temperature").fill("0.1")
    with page.expect_request(lambda r: "/settings/check/" in r.url):
        page.get_by_role("button", name="Save as preset").click()
    route, response = held[0]
    route.fulfill(response=response)
    expect(page.locator("#preset-status")).to_have_text("Saved the preset “Careful”.")


# Records whether the settings panel is ever closed, checked after each batch of DOM changes
# (a microtask: before the browser can paint or take a click).
CLOSED_PANEL_WATCH = """() => {
  window.__panelClosed = false;
  new MutationObserver(() => {
    const panel = document.getElementById("settings");
    if (!panel || panel.hidden) window.__panelClosed = true;
  }).observe(document.body, { subtree: true, childList: true, attributes: true });
}"""


def test_a_model_that_rejects_a_value_sets_it_aside_in_view_and_send_still_works(page, all_routes):
    log_in(page)
    open_settings(page)
    model = page.get_by_label("Model", exact=True)
    with page.expect_response(lambda r: "/settings/" in r.url):
        model.select_option("gemini:gemini-2.5-flash")
    page.get_by_label("Top K").fill("40")
    page.get_by_label("Top K").press("Tab")
    with page.expect_response(lambda r: "/settings/" in r.url):
        model.select_option("segmind:gemini-2.5-flash")
    notice = page.locator("#set-aside")
    expect(notice).to_contain_text("Not sent to Gemini 2.5 Flash on Segmind: Top K 40 · Restore")
    expect(page.get_by_label("Top K")).to_have_count(0)
    all_routes.enqueue(Reply([Text("Sent without Top K.")]))
    page.evaluate(CLOSED_PANEL_WATCH)
    send(page, "Does Send still work?")
    expect(finished(page).locator(".msg-body")).to_have_text("Sent without Top K.")
    assert "topK" not in str(all_routes.requests[-1].json)
    # The first message moved to the conversation's page; a wide screen keeps the panel open,
    # without a moment closed in between.
    expect(page.get_by_role("region", name="Chat settings")).to_be_visible()
    assert page.evaluate("window.__panelClosed") is False
    expect(notice).to_contain_text("Top K 40")
    with page.expect_response(lambda r: "/settings/" in r.url):
        model.select_option("gemini:gemini-2.5-flash")
    expect(page.get_by_label("Top K")).to_have_value("40")  # back in use, nothing lost


def test_a_second_tab_shows_messages_sent_from_the_first_as_they_are_sent(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("First answer.")]))
    send(page, "Start a conversation")
    expect(finished(page).locator(".msg-body")).to_have_text("First answer.")
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator("article.msg-user")).to_have_count(1)

    aimlapi.enqueue(Reply([Text("Second "), Gate("mid"), Text("answer.")]))
    send(page, "Sent from the first tab")
    expect(other.locator("article.msg-user .msg-text").last).to_have_text("Sent from the first tab")
    aimlapi.wait_for_gate("mid")
    expect(other.locator("article.msg-assistant").last.locator(".msg-tail")).to_have_text("Second ")
    expect(other.get_by_role("textbox", name="Message")).to_be_disabled()  # an answer is on
    aimlapi.release("mid")
    expect(finished(other).locator(".msg-body")).to_have_text("Second answer.")
    # Nothing twice, in either tab.
    expect(page.locator("article.msg-user")).to_have_count(2)
    expect(other.locator("article.msg-user")).to_have_count(2)
    expect(other.locator("article.msg-assistant")).to_have_count(2)
    other.close()
