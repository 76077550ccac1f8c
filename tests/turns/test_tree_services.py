"""Writes of the message tree, called directly (docs/ARCHITECTURE.md, "The message tree"):
turn_edit (a sibling with its images and a new answer, a replayed submit), turn_delete (a
message's whole subtree and its images, the branch shown moving beside it, refused while an
answer is written), branch_show (the newest leaf under a version), and a send that follows
the branch its page shows, at the same cost in queries at any depth."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatapp.conversations.chat_settings import chat_settings_validate
from chatapp.conversations.services import branch_show
from chatapp.core.errors import ServiceError, TurnConflict
from chatapp.models import Attachment, Conversation, Message, MessageAttachment
from chatapp.providers import catalog
from chatapp.turns.services import Turn, turn_delete, turn_edit, turn_regenerate, turn_start
from tests.conftest import add_path, attachment_row

pytestmark = pytest.mark.django_db

MODEL = "aimlapi:google/gemini-2.5-flash"
WORKER = uuid.uuid4()


@pytest.fixture(autouse=True)
def _offered(aimlapi):
    """AI/ML API is configured, so the catalog offers its models."""


def start(owner, text="Hello", *, conversation_id=None, parent_id=None, attachment_ids=()) -> Turn:
    return turn_start(
        owner=owner,
        conversation_id=conversation_id or uuid.uuid4(),
        text=text,
        idempotency_key=uuid.uuid4(),
        chat_settings=chat_settings_validate(
            spec=catalog.get_model_by_key(MODEL), system_prompt="", raw_options={}
        ),
        worker_id=WORKER,
        attachment_ids=attachment_ids,
        parent_id=parent_id,
    )


def done(message: Message, content: str = "An answer.") -> Message:
    Message.objects.filter(pk=message.pk).update(status="complete", content=content)
    message.refresh_from_db()
    return message


def then(owner, turn: Turn, text: str, **kwargs) -> Turn:
    done(turn.assistant_message)
    return start(owner, text, conversation_id=turn.conversation.pk, **kwargs)


def leaf(conversation: Conversation) -> uuid.UUID | None:
    return Conversation.objects.get(pk=conversation.pk).current_leaf_id


def edit(message: Message, text: str, key=None, attachment_ids=()) -> Turn:
    return turn_edit(
        message=Message.objects.select_related("conversation").get(pk=message.pk),
        text=text,
        idempotency_key=key or uuid.uuid4(),
        worker_id=WORKER,
        attachment_ids=attachment_ids,
    )


# --- turn_edit ---------------------------------------------------------------------------------


def test_an_edit_is_a_sibling_of_the_message_with_its_own_answer_and_the_old_branch_stays(user):
    first = start(user, "First")
    second = then(user, first, "Second")
    done(second.assistant_message)

    edited = edit(first.user_message, "First, edited")

    assert edited.user_message.parent_id is None  # beside the first message
    assert edited.user_message.content == "First, edited"
    assert edited.assistant_message.parent_id == edited.user_message.pk
    assert edited.assistant_message.status == Message.Status.PENDING
    assert leaf(first.conversation) == edited.assistant_message.pk
    assert Message.objects.filter(conversation=first.conversation).count() == 6


def test_an_edit_sends_again_the_images_it_keeps_in_order(user):
    images = [attachment_row(user) for _ in range(3)]
    first = start(user, "Look", attachment_ids=[i.pk for i in images])
    done(first.assistant_message)
    kept = [images[2].pk, images[0].pk]
    edited = edit(first.user_message, "Look again", attachment_ids=kept)
    links = MessageAttachment.objects.filter(message=edited.user_message).order_by("position")
    assert [link.attachment_id for link in links] == kept
    assert MessageAttachment.objects.filter(message=first.user_message).count() == 3  # kept


def test_an_edit_submitted_twice_is_one_edit(user):
    first = start(user, "First")
    done(first.assistant_message)
    key = uuid.uuid4()
    once = edit(first.user_message, "Edited", key=key)
    again = edit(first.user_message, "Edited", key=key)
    assert again.user_message.pk == once.user_message.pk
    assert not again.created


def test_an_edit_is_refused_while_an_answer_is_written_and_for_an_answer(user):
    first = start(user, "First")
    with pytest.raises(TurnConflict):
        edit(first.user_message, "Too soon")
    done(first.assistant_message)
    with pytest.raises(ServiceError, match=r"Only your own messages can be edited\."):
        edit(first.assistant_message, "Not mine to edit")


def test_an_edit_is_checked_like_a_message(user, settings):
    first = start(user, "First")
    done(first.assistant_message)
    with pytest.raises(ServiceError, match=r"Type a message first\."):
        edit(first.user_message, "   ")
    limit = settings.CHAT_LIMITS["message_chars"]
    with pytest.raises(ServiceError, match=f"the limit is {limit:,} characters"):
        edit(first.user_message, "x" * (limit + 1))
    assert leaf(first.conversation) == first.assistant_message.pk


# --- A send follows the branch its page shows ---------------------------------------------------


def test_a_send_follows_the_answer_its_page_shows_not_the_one_another_tab_switched_to(user):
    first = start(user, "First")
    done(first.assistant_message)
    other = done(turn_regenerate(message=first.assistant_message, worker_id=WORKER))
    assert leaf(first.conversation) == other.pk  # another tab shows the new version
    turn = start(
        user, "On the first version", conversation_id=first.conversation.pk,
        parent_id=first.assistant_message.pk,
    )  # fmt: skip
    assert turn.user_message.parent_id == first.assistant_message.pk
    assert leaf(first.conversation) == turn.assistant_message.pk


def test_a_send_after_a_message_that_is_gone_or_not_an_answer_is_refused(user, other_user):
    first = start(user, "First")
    done(first.assistant_message)
    elsewhere = start(other_user, "Not yours")
    done(elsewhere.assistant_message)
    for parent in (uuid.uuid4(), elsewhere.assistant_message.pk):
        with pytest.raises(TurnConflict, match="no longer in the conversation"):
            start(user, "Next", conversation_id=first.conversation.pk, parent_id=parent)
    with pytest.raises(ServiceError, match="A message follows an answer"):
        start(user, "Next", conversation_id=first.conversation.pk, parent_id=first.user_message.pk)
    assert leaf(first.conversation) == first.assistant_message.pk


def test_a_turn_deep_in_the_tree_costs_the_queries_of_one_at_the_root(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sends_per_minute": 1000}
    shallow = start(user, "One")
    done(shallow.assistant_message)
    deep = start(user, "One")
    for i in range(30):
        deep = then(user, deep, f"Turn {i}")
        if i % 3 == 0:  # branch points along the way
            done(deep.assistant_message)
            turn_regenerate(message=deep.assistant_message, worker_id=WORKER)
            deep = Turn(
                deep.conversation,
                deep.user_message,
                Message.objects.get(pk=leaf(deep.conversation)),
                created=True,
            )
    done(deep.assistant_message)
    counts = []
    for turn in (shallow, deep):
        with CaptureQueriesContext(connection) as captured:
            start(user, "Next", conversation_id=turn.conversation.pk)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


# --- branch_show -------------------------------------------------------------------------------


def test_showing_a_version_shows_the_branch_most_recently_written_under_it(user):
    first = start(user, "First")
    done(first.assistant_message)
    later = then(user, first, "Later on the first version")
    done(later.assistant_message)
    second = done(turn_regenerate(message=first.assistant_message, worker_id=WORKER))
    conversation = Conversation.objects.get(pk=first.conversation.pk)

    branch_show(conversation=conversation, message=first.assistant_message)
    assert leaf(conversation) == later.assistant_message.pk  # where that branch ended
    branch_show(conversation=conversation, message=second)
    assert leaf(conversation) == second.pk


# --- turn_delete -------------------------------------------------------------------------------


def test_deleting_a_turn_takes_its_whole_subtree_and_the_images_only_it_had(user):
    shared, own = attachment_row(user), attachment_row(user)
    first = start(user, "First", attachment_ids=[shared.pk])
    second = then(user, first, "Second", attachment_ids=[own.pk, shared.pk])
    third = then(user, second, "Third")
    done(third.assistant_message)
    turn_regenerate(message=Message.objects.get(pk=second.assistant_message.pk), worker_id=WORKER)
    Message.objects.filter(status="pending").update(status="complete")

    conversation = turn_delete(
        message=Message.objects.select_related("conversation").get(pk=second.user_message.pk)
    )

    left = set(Message.objects.filter(conversation=first.conversation).values_list("id", flat=True))
    assert left == {first.user_message.pk, first.assistant_message.pk}
    assert conversation.current_leaf_id == first.assistant_message.pk
    assert leaf(first.conversation) == first.assistant_message.pk
    assert set(Attachment.objects.values_list("id", flat=True)) == {shared.pk}


def test_deleting_a_version_shows_the_newest_branch_left_beside_it(user):
    first = start(user, "First")
    done(first.assistant_message)
    old = then(user, first, "Second")
    done(old.assistant_message)
    newer = edit(old.user_message, "Second, edited")
    done(newer.assistant_message)

    turn_delete(
        message=Message.objects.select_related("conversation").get(pk=newer.user_message.pk)
    )
    assert leaf(first.conversation) == old.assistant_message.pk


def test_deleting_the_first_turn_of_the_only_branch_empties_the_thread(user):
    first = start(user, "First")
    done(first.assistant_message)
    turn_delete(
        message=Message.objects.select_related("conversation").get(pk=first.user_message.pk)
    )
    assert leaf(first.conversation) is None
    assert not Message.objects.filter(conversation=first.conversation).exists()
    # And the conversation goes on from the start.
    again = start(user, "Again", conversation_id=first.conversation.pk)
    assert again.user_message.parent_id is None


def test_a_turn_with_an_answer_being_written_is_not_deleted(user):
    first = start(user, "First")
    with pytest.raises(TurnConflict, match="Press Stop first"):
        turn_delete(
            message=Message.objects.select_related("conversation").get(pk=first.user_message.pk)
        )
    assert Message.objects.filter(conversation=first.conversation).count() == 2


def test_a_turn_is_deleted_from_its_message_not_from_an_answer(user):
    first = start(user, "First")
    done(first.assistant_message)
    with pytest.raises(ServiceError, match="not from an answer"):
        turn_delete(
            message=Message.objects.select_related("conversation").get(
                pk=first.assistant_message.pk
            )
        )


def test_a_long_subtree_is_deleted_in_batches_in_one_transaction(user):
    first = start(user, "First")
    done(first.assistant_message)
    conversation = Conversation.objects.get(pk=first.conversation.pk)
    add_path(
        conversation,
        [
            Message(
                conversation=conversation,
                role="user" if i % 2 == 0 else "assistant",
                content=f"m{i}",
                created_at=first.assistant_message.created_at + timedelta(seconds=i + 1),
            )
            for i in range(1200)  # more than two batches of ids under the first message
        ],
    )
    turn_delete(
        message=Message.objects.select_related("conversation").get(pk=first.user_message.pk)
    )
    assert not Message.objects.filter(conversation=first.conversation).exists()
    assert leaf(first.conversation) is None
