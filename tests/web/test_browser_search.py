"""Search in a real browser: "Search conversations" in the sidebar, results in place of the
list, a hit opening its conversation on the branch of the message that matched (even one
that is not the branch shown), scrolled to it, its words marked; Esc clears the box."""

from __future__ import annotations

from tests.conftest import BROWSER_TEST, expect, log_in, send
from tests.fakes.upstream import Reply, Text

pytestmark = BROWSER_TEST

MARKED = "() => (CSS.highlights.get('search') || new Set()).size"


def finished(page):
    return page.locator("article.msg-assistant:not(.msg-active)").last


def test_a_hit_on_an_older_version_opens_that_branch_scrolled_to_it_with_its_words_marked(
    page, aimlapi
):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Zebras have stripes.")]))
    send(page, "Tell me about zebras")
    expect(finished(page).locator(".msg-body")).to_have_text("Zebras have stripes.")
    aimlapi.enqueue(Reply([Text("Horses do not.")]))
    finished(page).get_by_role("button", name="Regenerate").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Horses do not.")
    page.goto("/")
    aimlapi.enqueue(Reply([Text("Another chat entirely.")]))
    send(page, "Something else")
    expect(finished(page).locator(".msg-body")).to_have_text("Another chat entirely.")

    box = page.get_by_role("searchbox", name="Search conversations")
    box.fill("stripes")
    results = page.get_by_role("region", name="Search results")
    expect(results.get_by_role("link")).to_have_count(1)
    expect(results.locator("mark")).to_have_text("stripes")
    expect(page.get_by_role("navigation", name="Your conversations")).to_be_hidden()
    results.get_by_role("link").click()

    hit = page.locator("article.search-hit")
    expect(hit.locator(".msg-body")).to_have_text("Zebras have stripes.")  # not the one shown
    expect(hit).to_be_in_viewport()
    expect(hit.locator(".version-count")).to_have_text("1 / 2")
    assert page.evaluate(MARKED) == 1
    # The next message follows the branch the hit opened.
    aimlapi.enqueue(Reply([Text("On the zebra branch.")]))
    send(page, "More please")
    expect(finished(page).locator(".msg-body")).to_have_text("On the zebra branch.")
    sent = [m["content"] for m in aimlapi.requests[-1].json["messages"]]
    assert sent == ["Tell me about zebras", "Zebras have stripes.", "More please"]


def test_a_search_says_when_nothing_matches_and_esc_brings_the_list_back(page, aimlapi):
    log_in(page)
    aimlapi.enqueue(Reply([Text("Hello there.")]))
    send(page, "Hi")
    expect(finished(page).locator(".msg-body")).to_have_text("Hello there.")
    box = page.get_by_role("searchbox", name="Search conversations")
    box.fill("nonexistentword")
    results = page.get_by_role("region", name="Search results")
    expect(results).to_contain_text("No conversation matches “nonexistentword”.")
    box.fill("-hello")
    expect(results).to_contain_text("Type a word to look for")
    box.press("Escape")
    expect(box).to_have_value("")
    expect(results).to_be_hidden()
    expect(page.get_by_role("navigation", name="Your conversations")).to_be_visible()
