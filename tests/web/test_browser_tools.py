"""Browser: Gemini's built-in tools on the Google route. The switches are offered with a Google
model only; a grounded answer shows its citation markers, its "Sources" and Google's search
suggestions; hostile suggestions can neither run nor reach the page; a code-execution answer
shows its code and output as they stream, and the same after a reload.

Synchronisation is by events only: Playwright's `expect` waits for the page, console messages
and responses are awaited as they come, the fake upstream holds a stream at a `Gate`."""

from __future__ import annotations

import re

import pytest

from tests.conftest import answer, log_in, open_settings, send, settings_saved
from tests.fakes.upstream import Code, CodeResult, Gate, Reply, Text, grounding_metadata
from tests.web.test_browser_routes import choose_model

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

GOOGLE = "gemini:gemini-2.5-flash"
TEXT = "Die Aare fließt durch Bern. Sie ist im Sommer grün."
SUGGESTIONS = (
    '<div class="container"><div class="carousel">'
    '<a class="chip" href="https://www.google.com/search?q=Aare+Bern">Aare Bern</a>'
    "</div></div>"
)
HOSTILE = (
    "<style>body{background:rgb(255,0,0) !important} .msg{display:none !important}</style>"
    "<script>parent.document.title='pwned'; top.location='https://evil.example/script'</script>"
    '<img src="https://evil.example/pixel.png" onerror="parent.document.title=\'pwned\'">'
    '<a target="_top" href="https://evil.example/top">Escape</a>'
    '<meta http-equiv="refresh" content="0;url=https://evil.example/refresh">'
)


def switch_on(page: Page, name: str) -> None:
    with settings_saved(page):
        page.get_by_role("switch", name=name).check()


def grounded(rendered: str) -> Reply:
    return Reply(
        [Text("Die Aare fließt durch "), Text("Bern. Sie ist im Sommer grün.")],
        grounding=grounding_metadata(
            TEXT,
            [("Die Aare fließt durch Bern.", [0]), ("Sie ist im Sommer grün.", [0, 1])],
            sources=[
                ("bern.ch", "https://r.example/1", "bern.ch"),
                ("Aare – Wikipedia", "https://r.example/2", "wikipedia.org"),
            ],
            queries=["Aare Bern"],
            rendered=rendered,
        ),
    )


def test_a_grounded_answer_with_citations_sources_and_search_suggestions(page, all_routes):
    log_in(page)
    open_settings(page)
    expect(page.locator("#model-route")).to_have_text("Route: AI/ML API")
    expect(page.get_by_role("switch", name="Google Search")).to_have_count(0)
    choose_model(page, GOOGLE)
    for name in ("Google Search", "URL context", "Code execution"):
        expect(page.get_by_role("switch", name=name)).not_to_be_checked()
    switch_on(page, "Google Search")

    all_routes.enqueue(grounded(SUGGESTIONS))
    send(page, "Wo fließt die Aare?")
    assert all_routes.last_request.json["tools"] == [{"googleSearch": {}}]

    for _ in ("live", "reloaded"):
        reply = answer(page)
        sources = reply.get_by_role("list", name="Sources")
        expect(sources.get_by_role("listitem")).to_have_text(
            ["bern.ch", "Aare – Wikipedia wikipedia.org"]
        )
        link = sources.get_by_role("link", name="Aare – Wikipedia")
        expect(link).to_have_attribute("href", "https://r.example/2")
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(reply.locator(".msg-body sup.cite")).to_have_text(["[1]", "[1, 2]"])
        expect(reply.locator(".msg-body")).to_have_text(re.compile(r"Bern\.\[1\].*grün\.\[1, 2\]"))
        marker = reply.get_by_role("link", name="Source 2")
        expect(marker).to_have_attribute("href", re.compile(r"^#m-[0-9a-f-]+-source-2$"))
        expect(reply.locator(".msg-queries")).to_have_text("Searched Google for Aare Bern")
        frame = reply.locator("iframe.search-suggestions")
        expect(frame).to_have_attribute("sandbox", "allow-popups allow-popups-to-escape-sandbox")
        chip = page.frame_locator("iframe.search-suggestions").get_by_role("link", name="Aare Bern")
        expect(chip).to_have_attribute("href", "https://www.google.com/search?q=Aare+Bern")
        # The chips' look is the app's stylesheet: the CSP the frame inherits refuses inline.
        expect(chip).to_have_css("border-radius", "16px")
        page.reload()

    marker = answer(page).get_by_role("link", name="Source 2")
    marker.click()
    expect(page).to_have_url(re.compile(r"#m-[0-9a-f-]+-source-2$"))


def test_hostile_search_suggestions_cannot_run_style_the_page_or_reach_anywhere(page, all_routes):
    """docs/SECURITY.md rule 18: whatever Google's snippet holds runs no script (its script and
    handler are refused, the console says so), styles nothing outside its frame, navigates
    neither the page nor itself away, and loads nothing from anywhere."""
    reached: list[str] = []
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    page.context.route(
        re.compile(r"https?://evil\.example/.*"),
        lambda route: (reached.append(route.request.url), route.abort()),
    )
    log_in(page)
    origin = "/".join(page.url.split("/")[:3])
    open_settings(page)
    choose_model(page, GOOGLE)
    switch_on(page, "Google Search")
    all_routes.enqueue(grounded(HOSTILE))
    with page.expect_console_message(
        lambda m: "Blocked script execution in 'about:srcdoc'" in m.text, timeout=15_000
    ):
        send(page, "Wo fließt die Aare?")
        expect(answer(page).get_by_role("list", name="Sources")).to_be_visible()

    frame = page.frame_locator("iframe.search-suggestions")
    escape = frame.get_by_role("link", name="Escape")
    expect(escape).to_be_visible()
    with page.expect_console_message(lambda m: "sandboxed" in m.text and "navigat" in m.text):
        escape.click()
    # The frame's document was parsed before its link could be clicked: each hostile piece was
    # refused by then, and Chromium said so.
    refused = {
        "script and handler": "Blocked script execution in 'about:srcdoc'",
        "meta refresh": "Refused to execute the redirect specified via '<meta http-equiv='refresh'",
        "remote image": "Loading the image 'https://evil.example/pixel.png' violates",
        "inline style": "Applying inline style violates",
    }
    assert {what for what, words in refused.items() if any(words in m for m in said)} == set(
        refused
    )

    expect(page).not_to_have_title(re.compile("pwned"))
    assert page.url.startswith(origin)
    expect(answer(page)).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 0, 0)"
    # The frame is still the document it was given: neither the refresh nor the link took it.
    assert [f.url for f in page.frames[1:]] == ["about:srcdoc"]
    assert reached == []


def test_a_code_execution_answer_streams_and_reloads_with_its_labelled_blocks(page, all_routes):
    log_in(page)
    open_settings(page)
    choose_model(page, GOOGLE)
    switch_on(page, "Code execution")
    all_routes.enqueue(
        Reply(
            [
                Text("Let me compute it."),
                Code("total = sum(range(10))\nprint(total)"),
                CodeResult("45\n"),
                Gate("after-output"),
                Code("print(1 / 0)"),
                CodeResult("ZeroDivisionError: division by zero", outcome="OUTCOME_FAILED"),
                Text("The sum is 45; dividing by zero failed."),
            ]
        )
    )
    send(page, "Sum 0..9, then divide by zero.")
    all_routes.wait_for_gate("after-output")
    assert all_routes.last_request.json["tools"] == [{"codeExecution": {}}]
    live = page.locator("article.msg-active")
    expect(live.locator(".code-run .code-lang")).to_have_text("Code run by the model · python")
    expect(live.locator(".code-output .code-lang")).to_have_text("Output · OK")
    expect(live.locator(".code-output pre")).to_have_text("45")
    all_routes.release("after-output")

    for _ in ("live", "reloaded"):
        reply = answer(page)
        expect(reply.locator(".msg-body > *")).to_have_class(
            [
                re.compile("^$"),
                re.compile("code-run"),
                re.compile("outcome-ok"),
                re.compile("code-run"),
                re.compile("outcome-failed"),
                re.compile("^$"),
            ]
        )
        expect(reply.locator(".outcome-failed .code-lang")).to_have_text("Output · failed")
        expect(reply.locator(".msg-body")).to_contain_text("The sum is 45")
        page.reload()
