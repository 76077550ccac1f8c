"""Turn writes and their limits (chatapp/turns/services.py, limits.py), called directly:
turn_start (the conversation created on first use, options frozen on the answer, images linked
in order, a replayed submit, one active turn, someone else's conversation or image), the checks
it runs (text, sends per minute and answers at once, whether the images can be read and fit the
route's budget, each naming its limit), turn_regenerate and turn_continue (turn_edit and turn_delete: test_tree_services.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chatapp.conversations.chat_settings import chat_settings_validate
from chatapp.conversations.services import conversation_settings_update
from chatapp.core.errors import (
    InvalidSettings,
    LimitExceeded,
    NotFound,
    RequestTooLarge,
    ServiceError,
    TurnConflict,
)
from chatapp.models import Conversation, Message, MessageAttachment
from chatapp.providers import catalog
from chatapp.turns.limits import check_images_fit, check_rate, check_text
from chatapp.turns.services import CONTINUABLE, Turn, turn_continue, turn_regenerate, turn_start
from tests.conftest import add_message, attachment_row

pytestmark = pytest.mark.django_db

MODEL = "aimlapi:google/gemini-2.5-flash"
LEGACY = "aimlapi:gemini-1.5-pro"
TEXT_ONLY = "aimlapi:gemini-pro"
WORKER = uuid.uuid4()


@pytest.fixture(autouse=True)
def _offered(aimlapi):
    """AI/ML API is configured, so the catalog offers its models."""


def chat_settings(model: str = MODEL, options: dict | None = None, system_prompt: str = ""):
    return chat_settings_validate(
        spec=catalog.get_model_by_key(model), system_prompt=system_prompt, raw_options=options or {}
    )


def start(
    owner,
    text: str = "Hello",
    *,
    conversation_id: uuid.UUID | None = None,
    key: uuid.UUID | None = None,
    attachment_ids=(),
    **settings_kw,
) -> Turn:
    return turn_start(
        owner=owner,
        conversation_id=conversation_id or uuid.uuid4(),
        text=text,
        idempotency_key=key or uuid.uuid4(),
        chat_settings=chat_settings(**settings_kw),
        worker_id=WORKER,
        attachment_ids=attachment_ids,
    )


def finish(message: Message, *, content: str = "An answer.", status: str = "complete") -> Message:
    Message.objects.filter(pk=message.pk).update(status=status, content=content)
    message.refresh_from_db()
    return message


def thread_with_images(owner, *byte_sizes: int, **fields) -> Conversation:
    conversation = Conversation.objects.create(
        owner=owner, route="aimlapi", model="google/gemini-2.5-flash", **fields
    )
    message = add_message(conversation, role="user", content="")
    for position, size in enumerate(byte_sizes):
        MessageAttachment.objects.create(
            message=message, attachment=attachment_row(owner, size), position=position
        )
    return conversation


def budget(settings, route: str = "aimlapi", request_bytes: int = 1_000_000) -> None:
    settings.CHAT_IMAGE_ROUTES = {
        **settings.CHAT_IMAGE_ROUTES,
        route: {"request_bytes": request_bytes},
    }


# --- turn_start --------------------------------------------------------------------------------


def test_the_first_turn_creates_the_conversation_with_a_title_and_its_settings(user):
    conversation_id = uuid.uuid4()
    turn = start(
        user,
        "## What is *Gemini*?\nmore",
        conversation_id=conversation_id,
        options={"temperature": "0.5"},
        system_prompt="Be brief.",
    )
    assert turn.created
    assert turn.new_conversation
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.owner_id == user.pk
    assert conversation.title == "What is Gemini?"
    assert (conversation.route, conversation.model) == ("aimlapi", "google/gemini-2.5-flash")
    assert conversation.system_prompt == "Be brief."
    assert conversation.settings == {"temperature": 0.5}
    user_message, assistant = Message.objects.filter(conversation=conversation)
    assert (user_message, assistant) == (turn.user_message, turn.assistant_message)
    assert (user_message.role, user_message.content, user_message.parent_id) == (
        "user",
        "## What is *Gemini*?\nmore",
        None,
    )
    assert assistant.role == "assistant"
    assert assistant.status == Message.Status.PENDING
    assert assistant.parent_id == user_message.id
    assert assistant.worker_id == WORKER
    assert (assistant.route, assistant.model) == ("aimlapi", "google/gemini-2.5-flash")


def test_the_answer_freezes_the_options_to_send_with_the_models_defaults(user):
    turn = start(user, model=LEGACY, options={"temperature": "0.5"})
    # A legacy model gets an explicit max_tokens; the conversation keeps what the person set.
    assert turn.assistant_message.request_options == {"temperature": 0.5, "max_tokens": 8192}
    saved = Message.objects.get(pk=turn.assistant_message.pk)
    assert saved.request_options == {"temperature": 0.5, "max_tokens": 8192}
    assert Conversation.objects.get(pk=turn.conversation.pk).settings == {"temperature": 0.5}


def test_a_current_model_left_alone_is_sent_no_options(user):
    assert start(user).assistant_message.request_options == {}


def test_a_later_turn_follows_the_branch_shown_and_saves_the_settings(user):
    first = start(user, "First question")
    finish(first.assistant_message)
    replacement = turn_regenerate(message=first.assistant_message, worker_id=WORKER)
    finish(replacement)
    before = Conversation.objects.get(pk=first.conversation.pk).updated_at

    second = start(user, "Second question", conversation_id=first.conversation.pk, model=LEGACY)

    assert second.created
    assert not second.new_conversation
    assert second.user_message.parent_id == replacement.pk  # not the earlier version
    conversation = Conversation.objects.get(pk=first.conversation.pk)
    assert conversation.title == "First question"
    assert conversation.model == "gemini-1.5-pro"
    assert conversation.updated_at > before
    assert second.assistant_message.model == "gemini-1.5-pro"


def test_a_later_turn_reads_no_title_from_its_text_unless_the_conversation_has_none(
    user, monkeypatch
):
    first = start(user, "First question")
    finish(first.assistant_message)
    read: list[str] = []
    monkeypatch.setattr(
        "chatapp.turns.services.title_from_text", lambda text: read.append(text) or text
    )
    second = start(user, "Second question", conversation_id=first.conversation.pk)
    finish(second.assistant_message)
    assert read == []  # titled already: the text is not parsed for one
    Conversation.objects.filter(pk=first.conversation.pk).update(title="")
    start(user, "Third question", conversation_id=first.conversation.pk)
    assert read == ["Third question"]
    assert Conversation.objects.get(pk=first.conversation.pk).title == "Third question"


def test_attachments_are_linked_in_the_order_given_once_each(user):
    a, b = attachment_row(user), attachment_row(user)
    turn = start(user, "Compare these", attachment_ids=[b.id, a.id, b.id])
    links = MessageAttachment.objects.filter(message=turn.user_message).order_by("position")
    assert [(link.position, link.attachment_id) for link in links] == [(0, b.id), (1, a.id)]
    assert [link.attachment for link in turn.user_message.image_links] == [b, a]


def test_an_image_alone_is_a_message_titled_image(user):
    turn = start(user, "", attachment_ids=[attachment_row(user).id])
    assert Conversation.objects.get(pk=turn.conversation.pk).title == "Image"


@pytest.mark.parametrize("first_finished", [False, True], ids=["running", "finished"])
def test_a_replayed_idempotency_key_returns_the_same_turn(user, first_finished):
    key, conversation_id = uuid.uuid4(), uuid.uuid4()
    first = start(user, "Hello", conversation_id=conversation_id, key=key)
    if first_finished:
        finish(first.assistant_message)
    again = start(user, "Hello again", conversation_id=conversation_id, key=key, model=LEGACY)
    assert not again.created
    assert again.user_message.pk == first.user_message.pk
    assert again.assistant_message.pk == first.assistant_message.pk
    assert again.conversation.pk == conversation_id
    assert Message.objects.count() == 2
    assert Conversation.objects.get(pk=conversation_id).model == "google/gemini-2.5-flash"


def test_a_second_active_turn_in_a_conversation_is_a_conflict(user):
    first = start(user, "Hello")
    with pytest.raises(TurnConflict) as caught:
        start(user, "Again", conversation_id=first.conversation.pk, model=LEGACY)
    assert caught.value.status == 409
    assert "still being written" in caught.value.message
    assert Message.objects.count() == 2
    # The settings sent along were rolled back with the rest.
    assert Conversation.objects.get(pk=first.conversation.pk).model == "google/gemini-2.5-flash"


def test_someone_elses_conversation_id_is_as_if_it_did_not_exist(user, other_user):
    theirs = start(other_user, "Mine, not yours")
    finish(theirs.assistant_message)
    with pytest.raises(Conversation.DoesNotExist):
        start(user, "Let me in", conversation_id=theirs.conversation.pk, model=LEGACY)
    conversation = Conversation.objects.get(pk=theirs.conversation.pk)
    assert conversation.owner_id == other_user.pk
    assert conversation.model == "google/gemini-2.5-flash"
    assert Message.objects.count() == 2


@pytest.mark.parametrize("whose", ["someone else's", "missing"])
def test_an_attachment_that_is_not_mine_is_not_found(user, other_user, whose):
    attachment_id = attachment_row(other_user).id if whose == "someone else's" else uuid.uuid4()
    with pytest.raises(NotFound) as caught:
        start(user, "Look", attachment_ids=[attachment_row(user).id, attachment_id])
    assert caught.value.status == 404
    assert "no longer available" in caught.value.message
    assert not Conversation.objects.exists()
    assert not MessageAttachment.objects.exists()


def test_a_refused_first_turn_creates_no_conversation(user):
    with pytest.raises(ServiceError):
        start(user, "Read this", model=TEXT_ONLY, attachment_ids=[attachment_row(user).id])
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


# --- check_text --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_message_without_images_is_refused(text):
    with pytest.raises(ServiceError) as caught:
        check_text(text)
    assert caught.value.message == "Type a message first."
    check_text(text, with_images=True)  # an image alone is a message


def test_a_message_over_the_limit_names_the_limit(settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "message_chars": 1_000}
    check_text("x" * 1_000)
    with pytest.raises(ServiceError) as caught:
        check_text("x" * 1_001, with_images=True)
    assert caught.value.status == 400
    assert caught.value.message == (
        "Your message is 1,001 characters long; the limit is 1,000 characters."
    )


# --- check_rate --------------------------------------------------------------------------------


def answers(
    owner,
    count: int,
    *,
    ago: timedelta = timedelta(0),
    role: str = "assistant",
    status: str = Message.Status.COMPLETE,
) -> None:
    """`count` messages of one new conversation of `owner`, created `ago`."""
    conversation = Conversation.objects.create(owner=owner, route="aimlapi", model="m")
    Message.objects.bulk_create(
        Message(
            conversation=conversation, role=role, status=status, created_at=timezone.now() - ago
        )
        for _ in range(count)
    )


@pytest.fixture
def limits(settings):
    settings.CHAT_LIMITS = {
        **settings.CHAT_LIMITS,
        "sends_per_minute": 3,
        "active_turns_per_user": 2,
    }
    return settings.CHAT_LIMITS


def test_sends_per_minute_are_limited_and_the_limit_named(user, limits):
    answers(user, 2)
    check_rate(user)
    answers(user, 1)
    with pytest.raises(LimitExceeded) as caught:
        check_rate(user)
    assert caught.value.status == 429
    assert caught.value.message.startswith(
        "You have sent 3 messages in the last minute; the limit is 3 per minute."
    )


def test_only_my_answers_of_the_last_minute_count_as_sends(user, other_user, limits):
    answers(user, 5, ago=timedelta(seconds=61))
    answers(user, 2)
    answers(user, 5, role="user")
    answers(other_user, 5)
    check_rate(user)


def test_answers_written_at_once_are_limited_per_person_and_the_limit_named(user, limits):
    long_ago = timedelta(minutes=5)
    answers(user, 1, ago=long_ago, status=Message.Status.PENDING)
    answers(user, 3, ago=long_ago, status=Message.Status.COMPLETE)
    check_rate(user)
    answers(user, 1, ago=long_ago, status=Message.Status.STREAMING)
    with pytest.raises(LimitExceeded) as caught:
        check_rate(user)
    assert caught.value.message.startswith(
        "2 answers are being written for you right now; the limit is 2 at a time."
    )


def test_someone_elses_running_answers_do_not_count(user, other_user, limits):
    for _ in range(3):
        answers(other_user, 1, ago=timedelta(minutes=5), status=Message.Status.STREAMING)
    check_rate(user)


# --- check_images_fit --------------------------------------------------------------------------


def test_a_text_only_model_refuses_images_attached(user):
    spec = catalog.get_model_by_key(TEXT_ONLY)
    conversation = Conversation.objects.create(owner=user, route="aimlapi", model=spec.id)
    with pytest.raises(ServiceError) as caught:
        check_images_fit(conversation=conversation, spec=spec, new_images=[attachment_row(user)])
    assert caught.value.message.startswith(
        "Gemini 1.0 Pro takes text only and cannot read the images attached."
    )


def test_a_text_only_model_refuses_a_thread_that_has_images(user):
    spec = catalog.get_model_by_key(TEXT_ONLY)
    with pytest.raises(ServiceError) as caught:
        check_images_fit(conversation=thread_with_images(user, 1000), spec=spec)
    assert caught.value.message.startswith(
        "This conversation has images, which Gemini 1.0 Pro cannot read"
    )
    # Without images anywhere, a text-only model is fine.
    check_images_fit(conversation=thread_with_images(user), spec=spec)


def test_images_attached_over_the_routes_budget_name_it(user, settings):
    budget(settings, request_bytes=1_000_000)
    conversation = thread_with_images(user)
    with pytest.raises(RequestTooLarge) as caught:
        check_images_fit(
            conversation=conversation,
            spec=catalog.get_model_by_key(MODEL),
            new_images=[attachment_row(user, 800_000)],
            thread_end_id=None,
        )
    assert caught.value.status == 413
    assert caught.value.message == (
        "The images attached come to 1.1 MB once encoded for sending; AI/ML API takes at most "
        "1 MB per request. Remove an image."
    )


def test_the_threads_earlier_images_count_toward_the_budget(user, settings):
    budget(settings, request_bytes=1_000_000)
    spec = catalog.get_model_by_key(MODEL)
    new = [attachment_row(user, 200_000)]
    check_images_fit(conversation=thread_with_images(user), spec=spec, new_images=new)
    with pytest.raises(RequestTooLarge) as caught:
        check_images_fit(conversation=thread_with_images(user, 600_000), spec=spec, new_images=new)
    assert caught.value.message == (
        "With the images already in this conversation, this request would come to 1.1 MB; "
        "AI/ML API takes at most 1 MB per request. Start a new conversation to send more images."
    )


def test_a_request_of_exactly_the_budget_fits_and_one_byte_more_does_not(user, settings):
    budget(settings, request_bytes=1_000_000)
    spec = catalog.get_model_by_key(MODEL)
    conversation = thread_with_images(user)
    # 749,970 bytes are 999,960 in base64, and 40 for the data: prefix.
    exact = [attachment_row(user, 749_970)]
    check_images_fit(conversation=conversation, spec=spec, new_images=exact, thread_end_id=None)
    with pytest.raises(RequestTooLarge):
        check_images_fit(
            conversation=conversation,
            spec=spec,
            new_images=exact,
            new_text="x",
            thread_end_id=None,
        )


@pytest.mark.parametrize("where", ["earlier messages", "system prompt"])
def test_the_conversations_text_counts_toward_the_budget(user, settings, where):
    budget(settings, request_bytes=1_000_000)
    spec = catalog.get_model_by_key(MODEL)
    conversation = thread_with_images(user, 700_000)  # 933,376 bytes once encoded
    check_images_fit(conversation=conversation, spec=spec)
    if where == "earlier messages":
        add_message(conversation, role="assistant", content="y" * 70_000)
    else:
        conversation.system_prompt = "p" * 70_000
    with pytest.raises(RequestTooLarge):
        check_images_fit(conversation=conversation, spec=spec)


def test_a_route_without_its_own_budget_uses_the_default(user, settings):
    settings.CHAT_IMAGE_ROUTES = {"default": {"longest_side": 3072, "request_bytes": 1_000_000}}
    spec = next(s for s in catalog.CATALOG["segmind"] if s.id == "gemini-2.5-flash")
    with pytest.raises(RequestTooLarge) as caught:
        check_images_fit(
            conversation=thread_with_images(user),
            spec=spec,
            new_images=[attachment_row(user, 800_000)],
            thread_end_id=None,
        )
    assert "Segmind takes at most 1 MB per request" in caught.value.message


def test_a_new_conversation_is_not_told_of_images_already_in_it(user, settings):
    budget(settings, request_bytes=1_000_000)
    conversation = thread_with_images(user, system_prompt="p" * 70_000)
    with pytest.raises(RequestTooLarge) as caught:
        check_images_fit(
            conversation=conversation,
            spec=catalog.get_model_by_key(MODEL),
            new_images=[attachment_row(user, 700_000)],
            thread_end_id=None,
        )
    assert "already in this conversation" not in caught.value.message


# --- turn_regenerate ---------------------------------------------------------------------------


def test_regenerate_adds_a_pending_version_beside_the_old_answer_and_shows_it(user):
    turn = start(user, "Hello")
    old = finish(turn.assistant_message, status="failed", content="")
    before = Conversation.objects.get(pk=turn.conversation.pk).updated_at

    answer = turn_regenerate(message=old, worker_id=WORKER)

    assert answer.pk != old.pk
    assert answer.status == Message.Status.PENDING
    assert answer.parent_id == turn.user_message.pk  # a sibling: the old one is kept
    assert answer.worker_id == WORKER
    assert Message.objects.filter(pk=old.pk).exists()
    conversation = Conversation.objects.get(pk=turn.conversation.pk)
    assert conversation.current_leaf_id == answer.pk
    assert conversation.updated_at > before


def test_a_second_regenerate_press_while_the_first_answer_streams_is_a_conflict(user):
    turn = start(user, "Hello")
    old = finish(turn.assistant_message)
    turn_regenerate(message=old, worker_id=WORKER)
    with pytest.raises(TurnConflict):
        turn_regenerate(message=old, worker_id=WORKER)  # the page still shows the old answer
    assert Message.objects.filter(role="assistant").count() == 2


def test_regenerate_uses_the_conversations_current_settings(user):
    turn = start(user, "Hello", options={"temperature": "0.5"})
    old = finish(turn.assistant_message)
    conversation_settings_update(
        conversation=turn.conversation,
        chat_settings=chat_settings(LEGACY, {"top_p": "0.5"}),
    )
    answer = turn_regenerate(message=old, worker_id=WORKER)
    assert answer.model == "gemini-1.5-pro"
    assert answer.request_options == {"top_p": 0.5, "max_tokens": 8192}


def test_regenerate_with_another_model_sends_what_it_takes_and_keeps_the_chats_model(user):
    turn = start(user, "Hello", options={"temperature": "0.5"})
    old = finish(turn.assistant_message)
    answer = turn_regenerate(message=old, worker_id=WORKER, spec=catalog.get_model_by_key(LEGACY))
    assert (answer.route, answer.model) == ("aimlapi", "gemini-1.5-pro")
    assert answer.request_options == {"temperature": 0.5, "max_tokens": 8192}
    conversation = Conversation.objects.get(pk=turn.conversation.pk)
    assert f"{conversation.route}:{conversation.model}" == MODEL


def test_regenerate_with_a_model_no_longer_offered_is_refused_and_keeps_the_answer(user):
    turn = start(user, "Hello")
    old = finish(turn.assistant_message)
    Conversation.objects.filter(pk=turn.conversation.pk).update(model="google/gemini-0.9")
    with pytest.raises(InvalidSettings) as caught:
        turn_regenerate(message=old, worker_id=WORKER)
    assert "(google/gemini-0.9)" in caught.value.message
    assert Message.objects.count() == 2
    assert Conversation.objects.get(pk=turn.conversation.pk).current_leaf_id == old.pk


def test_an_answer_still_being_written_or_a_question_cannot_be_regenerated(user):
    turn = start(user, "Hello")
    for message in (turn.assistant_message, turn.user_message):
        with pytest.raises(TurnConflict) as caught:
            turn_regenerate(message=message, worker_id=WORKER)
        assert caught.value.message == "Only a finished answer can be regenerated."


def test_regenerate_while_another_answer_is_written_is_a_conflict(user):
    first = start(user, "Hello")
    old = finish(first.assistant_message)
    second = start(user, "And then?", conversation_id=first.conversation.pk)
    with pytest.raises(TurnConflict) as caught:
        turn_regenerate(message=old, worker_id=WORKER)
    assert "still being written" in caught.value.message
    assert Conversation.objects.get(pk=first.conversation.pk).current_leaf_id == (
        second.assistant_message.pk
    )


def test_an_earlier_answer_regenerated_starts_a_branch_and_the_later_turn_stays_on_its_own(user):
    first = start(user, "First question")
    old = finish(first.assistant_message)
    second = start(user, "Second question", conversation_id=first.conversation.pk)
    finish(second.assistant_message)

    answer = turn_regenerate(message=old, worker_id=WORKER)

    assert answer.parent_id == first.user_message.pk
    assert Message.objects.get(pk=second.user_message.pk).parent_id == old.pk  # kept there
    assert Conversation.objects.get(pk=first.conversation.pk).current_leaf_id == answer.pk


# --- turn_continue -----------------------------------------------------------------------------


def stopped_part_way(owner, status: str = "interrupted", content: str = "Half an ans") -> Turn:
    turn = start(owner, "Hello")
    Message.objects.filter(pk=turn.assistant_message.pk).update(
        status=status,
        content=content,
        error_code="upstream_gone",
        error_message="The connection dropped.",
        finished_at=timezone.now(),
        worker_id=uuid.uuid4(),
    )
    turn.assistant_message.refresh_from_db()
    return turn


@pytest.mark.parametrize("status", CONTINUABLE)
def test_continue_puts_the_same_answer_back_to_pending_keeping_its_text(user, status):
    turn = stopped_part_way(user, status)
    continued = turn_continue(message=turn.assistant_message, worker_id=WORKER)
    assert continued.pk == turn.assistant_message.pk
    saved = Message.objects.get(pk=continued.pk)
    assert saved.status == Message.Status.PENDING
    assert saved.content == "Half an ans"
    assert saved.worker_id == WORKER
    assert (saved.error_code, saved.error_message, saved.finished_at) == ("", "", None)
    assert Message.objects.count() == 2


def test_only_the_last_answer_of_a_branch_can_be_continued(user):
    turn = stopped_part_way(user)
    later = start(user, "Never mind", conversation_id=turn.conversation.pk)
    finish(later.assistant_message)
    with pytest.raises(TurnConflict) as caught:
        turn_continue(message=turn.assistant_message, worker_id=WORKER)
    assert caught.value.message == (
        "Only the last answer of a branch can be continued; press Regenerate."
    )


def test_a_stopped_version_off_the_branch_shown_can_be_continued_and_is_shown_again(user):
    turn = stopped_part_way(user, status="stopped")
    other = turn_regenerate(message=turn.assistant_message, worker_id=WORKER)
    finish(other)
    continued = turn_continue(message=turn.assistant_message, worker_id=WORKER)
    assert continued.status == Message.Status.PENDING
    assert Conversation.objects.get(pk=turn.conversation.pk).current_leaf_id == continued.pk


def test_an_answer_without_text_cannot_be_continued(user):
    turn = stopped_part_way(user, content="")
    with pytest.raises(TurnConflict) as caught:
        turn_continue(message=turn.assistant_message, worker_id=WORKER)
    assert caught.value.message == "This answer has no text to continue from; press Retry."


def test_a_finished_answer_or_a_question_cannot_be_continued(user):
    turn = stopped_part_way(user, status="complete")
    for message in (turn.assistant_message, turn.user_message):
        with pytest.raises(TurnConflict) as caught:
            turn_continue(message=message, worker_id=WORKER)
        assert caught.value.message == "Only an answer that stopped part-way can be continued."


def test_an_answer_whose_model_left_the_catalog_cannot_be_continued(user):
    turn = stopped_part_way(user)
    Message.objects.filter(pk=turn.assistant_message.pk).update(model="google/gemini-0.9")
    with pytest.raises(ServiceError) as caught:
        turn_continue(message=turn.assistant_message, worker_id=WORKER)
    assert "(google/gemini-0.9)" in caught.value.message
    assert Message.objects.get(pk=turn.assistant_message.pk).status == "interrupted"
