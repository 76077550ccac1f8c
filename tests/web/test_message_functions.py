"""Function calls and their results on the page, and the view that sends the results: each
call a group named "Function call: <name>" with its arguments as formatted JSON (escaped,
whatever they hold), a "Result for <name>" box and one "Send results" button at the end of the
branch only; results as their own article; the view answering with the three articles, or
with its refusal in the answer's error line."""

from __future__ import annotations

from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from chatapp.models import Conversation, Message
from chatapp.providers import functions
from tests.conftest import add_message
from tests.fakes import upstream as up
from tests.web.test_message_template import answer

CALLS = [
    {"id": "c1", "name": "get_weather", "arguments": '{"city": "</code><script>x</script>"}'},
    {"id": "c2", "name": "get_weather", "arguments": "{}"},
]


def page(message: Any, *, is_last: bool = True) -> str:
    return render_to_string("chatapp/_message.html", {"message": message, "is_last": is_last})


def test_each_call_is_a_named_group_with_its_arguments_and_a_result_box() -> None:
    html = page(answer(content="", provider_extras={functions.CALLS_KEY: CALLS}))
    assert html.count('<fieldset class="fn-call">') == 2
    assert "<legend>Function call: <code>get_weather</code></legend>" in html
    # The same name twice in one step: each label stays unique.
    assert "<legend>Function call: <code>get_weather (2)</code></legend>" in html
    assert "&lt;/code&gt;&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html
    assert '{\n  &quot;city&quot;: "' not in html  # formatted, then escaped once
    assert "{\n  &quot;city&quot;: &quot;&lt;/code&gt;" in html
    assert html.count('name="result"') == 2
    assert ">Result for get_weather (2)</label>" in html
    assert html.count("Send results") == 1
    # An answer that calls functions is an answer: it travels with later turns.
    assert "is not sent with later ones" not in html


def test_calls_already_answered_show_no_result_boxes() -> None:
    html = page(answer(content="", provider_extras={functions.CALLS_KEY: CALLS}), is_last=False)
    assert "Function call: <code>get_weather</code>" in html
    assert 'name="result"' not in html
    assert "Send results" not in html


def test_results_are_their_own_article_each_result_a_named_group() -> None:
    results = [{"id": "c1", "name": "get_time", "content": "<b>14:05</b>"}]
    message = answer(
        role=Message.Role.USER, content="...", provider_extras={functions.RESULTS_KEY: results}
    )
    html = page(message)
    assert 'aria-label="Function results"' in html
    assert 'role="group" aria-label="Result for get_time"' in html
    assert "&lt;b&gt;14:05&lt;/b&gt;" in html
    assert "Edit" not in html


@pytest.fixture
def calls_answer(user) -> Message:
    return make_calls_answer(user)


def make_calls_answer(user: Any) -> Message:
    conversation = Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-flash"
    )
    add_message(conversation, role="user", content="Weather?")
    return add_message(
        conversation,
        role="assistant",
        status="complete",
        content="",
        route="aimlapi",
        model="google/gemini-2.5-flash",
        provider_extras={functions.CALLS_KEY: CALLS},
    )


@pytest.mark.django_db(transaction=True)
async def test_sending_results_answers_with_the_call_the_results_and_the_next_answer(
    async_client, user, aimlapi, run_manager
) -> None:
    from asgiref.sync import sync_to_async

    from tests.conftest import wait_for_run

    called = await sync_to_async(make_calls_answer)(user)
    aimlapi.enqueue(up.Reply.text("Sunny."))
    await async_client.aforce_login(user)
    url = reverse("message-results", args=[called.conversation_id, called.id])
    response = await async_client.post(
        url, {"result": ['{"temp": 21}', "none"]}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<article") == 3
    assert 'name="result"' not in html.split('aria-label="Function results"')[0]
    assert 'aria-label="Function results"' in html
    assert "data-active" in html
    results = await sync_to_async(Message.objects.get)(parent=called)
    assert results.provider_extras[functions.RESULTS_KEY][0]["content"] == '{"temp": 21}'
    following = await sync_to_async(Message.objects.get)(parent=results)
    await wait_for_run(following.id)
    assert aimlapi.last_request.json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c2",
        "content": "none",
    }


@pytest.mark.django_db(transaction=True)
def test_a_refused_set_of_results_is_said_in_the_answers_error_line(
    user_client, calls_answer, aimlapi
) -> None:
    url = reverse("message-results", args=[calls_answer.conversation_id, calls_answer.id])
    response = user_client.post(url, {"result": ["only one"]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert response["HX-Retarget"] == f"#m-{calls_answer.pk} .fn-error"
    assert response.content.decode() == "Write a result for each of the 2 calls (got 1)."
    assert not Message.objects.filter(parent=calls_answer).exists()
