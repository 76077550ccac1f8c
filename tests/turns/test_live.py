"""A conversation's open pages kept in step (turns/live.py): each page of a saved conversation
holds `/stream/c/<id>/`; a turn sent from one page reaches the others, not itself; only the
owner may listen, and logging out ends it."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from chatapp.models import Conversation
from chatapp.turns.live import publish_turn
from chatapp.turns.protocol import session_group
from tests.conftest import open_stream

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(user) -> Conversation:
    return Conversation.objects.create(owner=user, route="aimlapi", model="x", title="Mine")


def page_stream(conversation_id, cookie=None, tab="tab-a"):
    return open_stream(
        uuid.uuid4(), cookie=cookie, path=f"/stream/c/{conversation_id}/", query=f"tab={tab}"
    )


async def test_a_turn_from_another_page_arrives_and_ones_own_does_not(conversation, cookie):
    mine = page_stream(conversation.id, cookie, tab="tab-a")
    other = page_stream(conversation.id, cookie, tab="tab-b")
    for stream in (mine, other):
        await stream.start()
        await stream.attached()
    parent = uuid.uuid4()
    await sync_to_async(publish_turn)(
        conversation_id=conversation.id,
        html="<article id='m-1'></article>",
        tab="tab-a",
        after=parent,
    )
    event = await other.next_event()
    assert event is not None
    # Where it goes (after the message it follows: a page on another branch leaves it out).
    assert (event.event, event.data) == (
        "turn",
        f'{{"replaces":"","after":"m-{parent}"}}\n' + "<article id='m-1'></article>",
    )
    # Its own send is not echoed: the next thing the first page gets is the other's send.
    await sync_to_async(publish_turn)(
        conversation_id=conversation.id, html="<article id='m-2'></article>", tab="tab-b"
    )
    event = await mine.next_event()
    assert event is not None
    assert event.data == '{"replaces":"","after":""}\n' + "<article id='m-2'></article>"


async def test_a_new_version_names_the_message_it_replaces(conversation, cookie):
    stream = page_stream(conversation.id, cookie)
    await stream.start()
    await stream.attached()
    old = uuid.uuid4()
    await sync_to_async(publish_turn)(
        conversation_id=conversation.id, html="<article></article>", tab="", replaces=old
    )
    event = await stream.next_event()
    assert event is not None
    assert event.data == f'{{"replaces":"m-{old}","after":""}}\n<article></article>'


async def test_only_the_owner_may_listen(conversation, other_user, cookie):
    anonymous = page_stream(conversation.id)
    await anonymous.start()
    assert anonymous.status == 403
    from django.test import Client

    from tests.conftest import session_cookie

    client = Client()
    await sync_to_async(client.force_login)(other_user)
    theirs = page_stream(conversation.id, await sync_to_async(session_cookie)(client))
    await theirs.start()
    assert theirs.status == 404
    missing = page_stream(uuid.uuid4(), cookie)
    await missing.start()
    assert missing.status == 404


async def test_logging_out_ends_the_page_stream(conversation, user_client, cookie):
    stream = page_stream(conversation.id, cookie)
    await stream.start()
    await stream.attached()
    session_key = user_client.cookies["sessionid"].value
    await get_channel_layer().group_send(session_group(session_key), {"type": "session.ended"})
    assert await stream.next_event() is None
    assert stream.ended
