"""Keeping conversations in a real browser: Rename in place (the header and the sidebar
follow; Esc cancels; a name too long is refused in words), Archive (out of the sidebar, into
the Archived list, found by search, back with Unarchive), and the sidebar's date groups."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.conftest import BROWSER_TEST, expect, log_in, send
from tests.fakes.upstream import Reply, Text

pytestmark = BROWSER_TEST


def finished(page):
    return page.locator("article.msg-assistant:not(.msg-active)").last


def one_chat(page, aimlapi, text="Plan a trip to Lisbon"):
    aimlapi.enqueue(Reply([Text("Sure.")]))
    send(page, text)
    expect(finished(page).locator(".msg-body")).to_have_text("Sure.")


def test_rename_in_place_updates_the_header_and_the_sidebar_and_survives_a_reload(page, aimlapi):
    log_in(page)
    one_chat(page, aimlapi)
    page.get_by_role("button", name="Rename").click()
    name = page.get_by_role("textbox", name="Conversation name")
    expect(name).to_be_focused()
    name.press("Escape")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plan a trip to Lisbon")

    page.get_by_role("button", name="Rename").click()
    name = page.get_by_role("textbox", name="Conversation name")
    expect(name).to_be_focused()
    name.fill("x" * 80 + "y")  # the box holds 80; typed past it by a script
    name.evaluate("(box) => { box.removeAttribute('maxlength'); box.value = 'z'.repeat(81); }")
    name.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("a name has at most 80")
    name = page.get_by_role("textbox", name="Conversation name")
    expect(name).to_be_focused()  # the caret placed: a fill now replaces the whole name
    name.fill("Lisbon, three days")
    name.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lisbon, three days")
    sidebar = page.get_by_role("navigation", name="Your conversations")
    expect(sidebar.get_by_role("link", name="Lisbon, three days")).to_be_visible()
    expect(page).to_have_title("Lisbon, three days · Gemini Chat")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lisbon, three days")


def test_archive_moves_a_conversation_to_the_archived_list_and_unarchive_brings_it_back(
    page, aimlapi
):
    log_in(page)
    one_chat(page, aimlapi, "Archive me please")
    sidebar = page.get_by_role("navigation", name="Your conversations")
    expect(sidebar.get_by_role("link", name="Archive me please")).to_be_visible()
    page.get_by_role("button", name="Archive", exact=True).click()
    page.wait_for_url("**/")  # to a new chat
    expect(sidebar.get_by_role("link", name="Archive me please")).to_have_count(0)

    page.locator(".archived-list summary").click()
    archived = page.locator(".archived-list")
    archived.get_by_role("link", name="Archive me please").click()
    page.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_role("button", name="Archive", exact=True)).to_be_visible()
    expect(sidebar.get_by_role("link", name="Archive me please")).to_be_visible()


def test_the_sidebar_groups_conversations_by_day(page, aimlapi):
    from django.contrib.auth import get_user_model

    from chatapp.models import Conversation

    log_in(page)
    owner = get_user_model().objects.get(username="alice")
    now = timezone.now()
    for title, days in [("Fresh", 0), ("From yesterday", 1), ("Last week", 4), ("Old", 90)]:
        Conversation.objects.create(
            owner=owner,
            title=title,
            route="aimlapi",
            model="m",
            updated_at=now - timedelta(days=days),
        )
    page.reload()  # the browser's time zone is known from now on
    headings = page.get_by_role("navigation", name="Your conversations").get_by_role("heading")
    expect(headings).to_have_count(4)
    assert headings.all_text_contents()[:3] == ["Today", "Yesterday", "Previous 7 days"]
