"""Edit, regenerate and branch in a real browser (docs/ARCHITECTURE.md, "The message tree"):
Regenerate on any answer (with this chat's model or another route's), Edit on any message,
"2 / 3" with Previous version / Next version, Delete turn with confirmation; every change
survives a reload, the next message follows the version shown, and two tabs on two branches
each keep their own.

Real Chromium against the real app and the fake upstream; waits are on page states and gates.
"""

from __future__ import annotations

import pytest

from tests.conftest import BROWSER_TEST, expect, log_in, send
from tests.fakes.upstream import Gate, Reply, Text

pytestmark = BROWSER_TEST


def answers(page):
    return page.locator("article.msg-assistant")


def prompts(page):
    return page.locator("article.msg-user")


def finished(page):
    return page.locator("article.msg-assistant:not(.msg-active)").last


def thread_text(page) -> list[str]:
    """What the thread shows, message by message: each text, without the controls."""
    return page.locator("#thread article .msg-text, #thread article .msg-body").all_inner_texts()


def two_turns(page, upstream) -> None:
    log_in(page)
    upstream.enqueue(Reply([Text("First answer.")]))
    send(page, "First question")
    expect(finished(page).locator(".msg-body")).to_have_text("First answer.")
    upstream.enqueue(Reply([Text("Second answer.")]))
    send(page, "Second question")
    expect(answers(page)).to_have_count(2)
    expect(finished(page).locator(".msg-body")).to_have_text("Second answer.")


def sent_user_texts(request) -> list[str]:
    """The user turns of an OpenAI-format request, as text."""
    return [m["content"] for m in request.json["messages"] if m["role"] == "user"]


def test_regenerate_an_earlier_answer_streams_a_version_in_its_place_and_keeps_the_old(
    page, aimlapi
):
    two_turns(page, aimlapi)
    aimlapi.enqueue(Reply([Text("First answer, "), Gate("mid"), Text("again.")]))
    answers(page).first.get_by_role("button", name="Regenerate").click()
    aimlapi.wait_for_gate("mid")
    # In place of the first answer, and what followed it is gone from view.
    expect(answers(page)).to_have_count(1)
    expect(prompts(page)).to_have_count(1)
    expect(answers(page).first.locator(".msg-tail")).to_have_text("First answer, ")
    assert sent_user_texts(aimlapi.requests[-1]) == ["First question"]
    aimlapi.release("mid")
    expect(finished(page).locator(".msg-body")).to_have_text("First answer, again.")
    expect(finished(page).locator(".version-count")).to_have_text("2 / 2")

    page.reload()
    assert thread_text(page) == ["First question", "First answer, again."]
    answers(page).first.get_by_role("button", name="Previous version").click()
    expect(answers(page)).to_have_count(2)
    assert thread_text(page) == [
        "First question",
        "First answer.",
        "Second question",
        "Second answer.",
    ]
    expect(answers(page).first.locator(".version-count")).to_have_text("1 / 2")
    expect(answers(page).first.get_by_role("button", name="Previous version")).to_be_disabled()

    page.reload()  # the version shown is the conversation's: it survives a reload
    expect(answers(page)).to_have_count(2)
    answers(page).first.get_by_role("button", name="Next version").click()
    expect(answers(page)).to_have_count(1)
    expect(answers(page).first.locator(".msg-body")).to_have_text("First answer, again.")


def test_regenerate_with_another_route_sends_it_there_and_each_version_shows_its_model(
    page, all_routes
):
    log_in(page)
    all_routes.enqueue(Reply([Text("From AI/ML API.")]))
    send(page, "Which route?")
    expect(finished(page).locator(".msg-body")).to_have_text("From AI/ML API.")
    expect(finished(page).locator(".msg-meta")).to_contain_text("AI/ML API")

    all_routes.enqueue(Reply([Text("From Segmind.")]))
    finished(page).get_by_label("Regenerate with another model").click()
    finished(page).get_by_role("button", name="Gemini 2.5 Flash · Segmind").click()
    expect(finished(page).locator(".msg-body")).to_have_text("From Segmind.")
    assert "segmind" in all_routes.requests[-1].path.lower()
    expect(finished(page).locator(".msg-meta")).to_contain_text("Segmind")
    expect(finished(page).locator(".version-count")).to_have_text("2 / 2")
    # The chat's own model is unchanged: the next message goes where it went before.
    expect(page.get_by_label("Model", exact=True)).to_have_value("aimlapi:google/gemini-2.5-flash")
    finished(page).get_by_role("button", name="Previous version").click()
    expect(finished(page).locator(".msg-meta")).to_contain_text("AI/ML API")


def test_edit_a_message_sends_a_new_version_with_a_new_answer_and_keeps_the_old_branch(
    page, aimlapi
):
    two_turns(page, aimlapi)
    first = prompts(page).first
    first.get_by_role("button", name="Edit").click()
    box = page.get_by_role("textbox", name="Edit message")
    expect(box).to_be_focused()
    expect(box).to_have_value("First question")
    box.press("Escape")  # Esc cancels, nothing changes
    expect(page.get_by_role("textbox", name="Edit message")).to_have_count(0)
    expect(prompts(page)).to_have_count(2)

    prompts(page).first.get_by_role("button", name="Edit").click()
    box = page.get_by_role("textbox", name="Edit message")
    # Once the page has put the caret at the end: a fill before it would have its selection
    # collapsed half-way and append instead of replacing.
    expect(box).to_be_focused()
    box.fill("First question, edited")
    aimlapi.enqueue(Reply([Text("Answer to the edit.")]))
    page.locator(".edit-form").get_by_role("button", name="Send").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Answer to the edit.")
    assert thread_text(page) == ["First question, edited", "Answer to the edit."]
    assert sent_user_texts(aimlapi.requests[-1]) == ["First question, edited"]
    expect(prompts(page).first.locator(".version-count")).to_have_text("2 / 2")

    page.reload()
    expect(prompts(page)).to_have_count(1)
    prompts(page).first.get_by_role("button", name="Previous version").click()
    expect(answers(page)).to_have_count(2)
    assert thread_text(page)[0] == "First question"
    assert thread_text(page)[-1] == "Second answer."


def test_the_next_message_follows_the_version_shown(page, aimlapi):
    two_turns(page, aimlapi)
    aimlapi.enqueue(Reply([Text("Another first answer.")]))
    answers(page).first.get_by_role("button", name="Regenerate").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Another first answer.")
    answers(page).first.get_by_role("button", name="Previous version").click()
    expect(answers(page)).to_have_count(2)

    aimlapi.enqueue(Reply([Text("Third answer.")]))
    send(page, "Third question")
    expect(finished(page).locator(".msg-body")).to_have_text("Third answer.")
    request = aimlapi.requests[-1].json["messages"]
    assert [m["content"] for m in request] == [
        "First question",
        "First answer.",
        "Second question",
        "Second answer.",
        "Third question",
    ]
    page.reload()
    expect(answers(page)).to_have_count(3)


def test_delete_a_turn_asks_first_and_takes_everything_after_it(page, aimlapi):
    two_turns(page, aimlapi)
    prompts(page).last.get_by_role("button", name="Delete turn").click()
    confirm = page.get_by_role("dialog", name="Are you sure?")
    expect(confirm).to_contain_text("Delete this turn and all after it?")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")  # Cancel has the focus: nothing is deleted by accident
    expect(confirm).to_be_hidden()
    expect(prompts(page)).to_have_count(2)

    prompts(page).first.get_by_role("button", name="Delete turn").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(page.locator("#thread article")).to_have_count(0)
    page.reload()
    expect(page.locator("#thread article")).to_have_count(0)
    # The conversation goes on from the start.
    aimlapi.enqueue(Reply([Text("A fresh start.")]))
    send(page, "Start again")
    expect(finished(page).locator(".msg-body")).to_have_text("A fresh start.")
    assert sent_user_texts(aimlapi.requests[-1]) == ["Start again"]


def test_deleting_a_version_shows_the_one_left_beside_it(page, aimlapi):
    two_turns(page, aimlapi)
    prompts(page).last.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("textbox", name="Edit message")).to_be_focused()
    page.get_by_role("textbox", name="Edit message").fill("Second question, edited")
    aimlapi.enqueue(Reply([Text("Edited answer.")]))
    page.locator(".edit-form").get_by_role("button", name="Send").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Edited answer.")

    prompts(page).last.get_by_role("button", name="Delete turn").click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    expect(prompts(page).last.locator(".msg-text")).to_have_text("Second question")
    expect(prompts(page).last.locator(".versions")).to_have_count(0)  # one version left
    page.reload()
    assert thread_text(page)[-1] == "Second answer."


def test_two_tabs_on_two_branches_each_add_to_their_own(page, aimlapi):
    two_turns(page, aimlapi)
    aimlapi.enqueue(Reply([Text("Branch two answer.")]))
    answers(page).first.get_by_role("button", name="Regenerate").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Branch two answer.")

    other = page.context.new_page()
    other.goto(page.url)
    expect(answers(other)).to_have_count(1)  # the branch shown now
    answers(other).first.get_by_role("button", name="Previous version").click()
    expect(answers(other)).to_have_count(2)

    # The first tab, still on branch two, sends: it goes there, and the other tab, on
    # branch one, does not show it.
    aimlapi.enqueue(Reply([Text("On branch two.")]))
    send(page, "Sent on branch two")
    expect(finished(page).locator(".msg-body")).to_have_text("On branch two.")
    assert sent_user_texts(aimlapi.requests[-1]) == ["First question", "Sent on branch two"]

    aimlapi.enqueue(Reply([Text("On branch one.")]))
    send(other, "Sent on branch one")
    expect(finished(other).locator(".msg-body")).to_have_text("On branch one.")
    assert sent_user_texts(aimlapi.requests[-1]) == [
        "First question",
        "Second question",
        "Sent on branch one",
    ]
    assert "Sent on branch one" not in thread_text(page)
    assert "Sent on branch two" not in thread_text(other)
    other.close()


@pytest.mark.parametrize("action", ["reload", "second tab"])
def test_an_answer_regenerated_mid_thread_resumes_on_its_branch_after_a_reload(
    page, aimlapi, action
):
    two_turns(page, aimlapi)
    aimlapi.enqueue(Reply([Text("Resumed "), Gate("mid"), Text("on its branch.")]))
    answers(page).first.get_by_role("button", name="Regenerate").click()
    aimlapi.wait_for_gate("mid")
    viewer = page
    if action == "reload":
        page.reload()
    else:
        viewer = page.context.new_page()
        viewer.goto(page.url)
    expect(answers(viewer)).to_have_count(1)
    expect(answers(viewer).first.locator(".msg-tail")).to_have_text("Resumed ")
    aimlapi.release("mid")
    expect(finished(viewer).locator(".msg-body")).to_have_text("Resumed on its branch.")
    expect(finished(viewer).locator(".version-count")).to_have_text("2 / 2")


def test_stop_and_continue_work_on_a_regenerated_version(page, aimlapi):
    two_turns(page, aimlapi)
    aimlapi.enqueue(Reply([Text("Cut "), Gate("never")]))
    answers(page).first.get_by_role("button", name="Regenerate").click()
    expect(answers(page).first.locator(".msg-tail")).to_have_text("Cut ")
    page.get_by_role("button", name="Stop").click()
    expect(finished(page).locator(".msg-note")).to_have_text("Stopped.")
    expect(finished(page).locator(".version-count")).to_have_text("2 / 2")

    aimlapi.enqueue(Reply([Text("short.")]))
    finished(page).get_by_role("button", name="Continue").click()
    expect(finished(page).locator(".msg-body")).to_have_text("Cut short.")
    expect(finished(page).locator(".version-count")).to_have_text("2 / 2")
    # The other version is untouched, with the turn that followed it.
    finished(page).get_by_role("button", name="Previous version").click()
    expect(answers(page)).to_have_count(2)
    expect(answers(page).first.locator(".msg-body")).to_have_text("First answer.")
