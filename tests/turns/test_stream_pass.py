"""Stream passes (turns.access): the send response's SSE URL carries a signed pass, so that the
browser attaches to an answer being written here without any database work; a pass that is
not good for that message, that session or now is ignored, and the session is checked as
before (docs/SECURITY.md rule 9)."""

from __future__ import annotations

import time
import uuid
from http.cookies import SimpleCookie

import pytest
from django.test import Client

from chatapp.conversations.models import Message
from chatapp.turns.access import PASS_SECONDS, pass_holder, stream_pass
from tests.conftest import open_stream, reload_message, session_cookie, start_turn, wait_for_run
from tests.fakes.upstream import Gate, Reply, words

MESSAGE = uuid.uuid4()
SESSION = "k" * 32


def test_a_pass_names_the_person_it_was_made_for_for_its_message_and_session():
    token = stream_pass(person_id=7, message_id=MESSAGE, session_key=SESSION)
    assert pass_holder(token, message_id=MESSAGE, session_key=SESSION) == 7


@pytest.mark.parametrize(
    "case",
    ["another message", "another session", "no session", "expired", "another person", "forged"],
)
def test_a_pass_is_good_for_nothing_else(case: str):
    now = time.time()
    token = stream_pass(person_id=7, message_id=MESSAGE, session_key=SESSION, now=now)
    message, session, at = MESSAGE, SESSION, now
    if case == "another message":
        message = uuid.uuid4()
    elif case == "another session":
        session = "j" * 32
    elif case == "no session":
        session = ""
    elif case == "expired":
        at = now + PASS_SECONDS + 1
    elif case == "another person":
        token = "8" + token[1:]
    elif case == "forged":
        token = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert pass_holder(token, message_id=message, session_key=session, now=at) is None


@pytest.mark.parametrize(
    "token", ["", "7", "7.", "x.1.abc", "7.x.abc", "7.99999999999.", "7." * 50]
)
def test_a_malformed_pass_is_refused(token: str):
    assert pass_holder(token, message_id=MESSAGE, session_key=SESSION) is None


def _session_key(cookie: bytes) -> str:
    jar: SimpleCookie = SimpleCookie()
    jar.load(cookie.decode())
    return jar["sessionid"].value


@pytest.mark.django_db(transaction=True)
async def test_with_a_pass_attaching_to_an_answer_written_here_reads_nothing_from_the_database(
    aimlapi, run_manager, user, cookie, statement_log
):
    aimlapi.enqueue(Reply([Gate("start"), *words("Streamed without a query.")]))
    turn = await start_turn(user, "Hello")
    answer = turn.assistant_message
    token = stream_pass(person_id=user.pk, message_id=answer.id, session_key=_session_key(cookie))
    statement_log.clear()
    stream = open_stream(answer.id, cookie=cookie, query=f"after=0&pass={token}")
    await stream.start()
    await stream.attached()
    assert stream.status == 200
    assert statement_log.statements == []  # no session, user or ownership query
    aimlapi.release("start")
    text, terminal = await stream.read_until_terminal()
    assert (text, terminal.event) == ("Streamed without a query.", "done")
    await wait_for_run(answer.id)


@pytest.mark.django_db(transaction=True)
async def test_without_a_good_pass_the_session_and_owner_are_checked(
    aimlapi, run_manager, user, cookie, statement_log
):
    aimlapi.enqueue(Reply([Gate("start"), *words("Checked the old way.")]))
    turn = await start_turn(user, "Hello")
    answer = turn.assistant_message
    stale = stream_pass(
        person_id=user.pk,
        message_id=answer.id,
        session_key=_session_key(cookie),
        now=time.time() - PASS_SECONDS - 5,
    )
    statement_log.clear()
    stream = open_stream(answer.id, cookie=cookie, query=f"after=0&pass={stale}")
    await stream.start()
    await stream.attached()
    assert any("django_session" in sql for sql in statement_log.statements)
    aimlapi.release("start")
    text, _ = await stream.read_until_terminal()
    assert text == "Checked the old way."
    await wait_for_run(answer.id)


@pytest.mark.django_db(transaction=True)
async def test_someone_elses_session_with_a_pass_for_my_answer_gets_nothing(
    aimlapi, run_manager, user, cookie, other_user
):
    aimlapi.enqueue(Reply([Gate("start"), *words("Alice's answer.")]))
    turn = await start_turn(user, "Hello")
    answer = turn.assistant_message
    mine = stream_pass(person_id=user.pk, message_id=answer.id, session_key=_session_key(cookie))
    theirs = Client()
    await theirs.aforce_login(other_user)
    stream = open_stream(answer.id, cookie=session_cookie(theirs), query=f"after=0&pass={mine}")
    await stream.start()
    assert stream.status == 404  # as if it did not exist (docs/SECURITY.md rule 9)
    aimlapi.release("start")
    await wait_for_run(answer.id)
    assert (await reload_message(answer.id)).status == Message.Status.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_the_send_response_carries_a_pass_for_its_answer(aimlapi, user_client, user):
    conversation = uuid.uuid4()
    response = user_client.post(
        f"/c/{conversation}/messages/",
        {
            "text": "Hi",
            "idempotency_key": str(uuid.uuid4()),
            "model": "aimlapi:google/gemini-2.5-flash",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    answer = Message.objects.get(conversation_id=conversation, role=Message.Role.ASSISTANT)
    html = response.content.decode()
    token = html.split("&amp;pass=", 1)[1].split('"', 1)[0]
    session_key = user_client.cookies["sessionid"].value
    assert pass_holder(token, message_id=answer.id, session_key=session_key) == user.pk
