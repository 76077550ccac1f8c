"""Titles written after the first answer (chatapp/turns/titles.py), against the fake upstream:
in the background once the answer is saved, cleaned to plain text of at most 80 characters,
never over a name the person chose, the first line kept when no model can write one, the
answer's first line for a message of images alone; open pages hear the new title."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async

from chatapp.conversations.services import conversation_rename
from chatapp.models import Conversation
from chatapp.turns import titles
from tests.conftest import open_stream, start_turn, wait_for_run
from tests.fakes.upstream import ErrorReply, Reply, Text

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def on_gemini(settings, all_routes):
    settings.CHAT_TITLE_MODEL = "gemini:gemini-2.5-flash-lite"
    return all_routes


async def title_written(run_manager, answer_id: uuid.UUID) -> None:
    task = run_manager.titles.get(answer_id)
    if task is not None:
        await task


async def conversation_of(turn) -> Conversation:
    return await Conversation.objects.aget(pk=turn.conversation.pk)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Weekend in Lisbon", "Weekend in Lisbon"),
        ('"Weekend in Lisbon."\n\nHere is why', "Weekend in Lisbon"),
        ("**Lisbon** \u202etrip", "Lisbon trip"),
        ("word " * 40, ("word " * 40)[:79].rsplit(" ", 1)[0] + "…"),
    ],
    ids=["plain", "quoted-with-more", "markup-and-control", "too-long"],
)
async def test_the_first_answer_is_followed_by_a_model_title_cleaned_to_plain_text(
    on_gemini, run_manager, user, reply, expected
):
    on_gemini.enqueue(Reply([Text("Lisbon is lovely in spring.")]))
    on_gemini.enqueue(Reply([Text(reply)]))
    turn = await start_turn(user, "Plan a weekend trip to Lisbon for me, please")
    await wait_for_run(turn.assistant_message.id)
    await title_written(run_manager, turn.assistant_message.id)
    assert (await conversation_of(turn)).title == expected
    request = on_gemini.requests[-1]
    assert "gemini-2.5-flash-lite" in request.path
    assert "Plan a weekend trip to Lisbon" in str(request.json)


async def test_a_name_the_person_chose_is_never_replaced(on_gemini, run_manager, user):
    on_gemini.enqueue(Reply([Text("An answer.")]))
    turn = await start_turn(user, "Some question")
    await sync_to_async(conversation_rename)(conversation=turn.conversation, title="Mine")
    await wait_for_run(turn.assistant_message.id)
    await title_written(run_manager, turn.assistant_message.id)
    assert (await conversation_of(turn)).title == "Mine"
    assert len(on_gemini.requests) == 1  # no title was even asked for


async def test_only_the_first_turn_gets_a_title(on_gemini, run_manager, user):
    on_gemini.enqueue(Reply([Text("One.")]))
    on_gemini.enqueue(Reply([Text("Model title")]))
    turn = await start_turn(user, "First")
    await wait_for_run(turn.assistant_message.id)
    await title_written(run_manager, turn.assistant_message.id)
    on_gemini.enqueue(Reply([Text("Two.")]))
    second = await start_turn(user, "Second", conversation_id=turn.conversation.pk)
    await wait_for_run(second.assistant_message.id)
    assert second.assistant_message.id not in run_manager.titles
    assert len(on_gemini.requests) == 3
    assert (await conversation_of(turn)).title == "Model title"


async def test_when_the_model_fails_the_first_line_stays(on_gemini, run_manager, user):
    on_gemini.enqueue(Reply([Text("An answer.")]))
    on_gemini.enqueue(ErrorReply.google(403, "denied", "PERMISSION_DENIED"))
    turn = await start_turn(user, "Keep my first line")
    await wait_for_run(turn.assistant_message.id)
    await title_written(run_manager, turn.assistant_message.id)
    assert (await conversation_of(turn)).title == "Keep my first line"


async def test_with_no_model_to_ask_the_first_line_stays(settings, aimlapi, run_manager, user):
    settings.CHAT_TITLE_MODEL = "nowhere:no-model"
    aimlapi.enqueue(Reply([Text("An answer.")]))
    turn = await start_turn(user, "Keep this")
    await wait_for_run(turn.assistant_message.id)
    await title_written(run_manager, turn.assistant_message.id)
    assert (await conversation_of(turn)).title == "Keep this"
    assert len(aimlapi.requests) == 1
    assert titles.title_spec() is None


async def test_the_open_page_hears_the_new_title(on_gemini, run_manager, user, cookie):
    on_gemini.enqueue(Reply([Text("An answer.")]))
    on_gemini.enqueue(Reply([Text("A heard title")]))
    turn = await start_turn(user, "Tell the page")
    stream = open_stream(
        uuid.uuid4(), cookie=cookie, path=f"/stream/c/{turn.conversation.pk}/", query="tab=t"
    )
    await stream.start()
    await stream.attached()
    await wait_for_run(turn.assistant_message.id)
    event = await stream.next_event()
    assert event is not None
    assert (event.event, event.data) == ("title", '{"title":"A heard title"}')


def test_a_model_reply_is_cleaned_to_a_title_of_at_most_80_characters():
    assert len(titles.clean("x" * 300)) <= 80
    assert titles.clean("  ") == ""
    assert titles.clean("«Voyage à Lisbonne»") == "Voyage à Lisbonne"
    assert titles.clean("# Heading title\nmore") == "Heading title"


async def test_a_first_message_of_images_alone_is_named_after_its_answer(settings, aimlapi, user):
    settings.CHAT_TITLE_MODEL = "nowhere:no-model"  # as on the offline demo: no model to ask

    def rows():
        from tests.conftest import add_message

        conversation = Conversation.objects.create(
            owner=user, route="aimlapi", model="m", title="Image"
        )
        add_message(conversation, role="user", content="")
        return conversation, add_message(
            conversation, role="assistant", content="# A red bicycle\n\nIt leans on a wall."
        )

    conversation, answer = await sync_to_async(rows)()
    await titles.write_title(message_id=answer.id, client=None)  # type: ignore[arg-type]
    assert (await Conversation.objects.aget(pk=conversation.pk)).title == "A red bicycle"
