"""The request builder (chatapp/turns/requests.py), called directly: turn_request (the visible
thread before the message, answers without text left out, provider extras echoed on assistant
turns only, the frozen options, our request id, the system prompt), continuation_request (the
partial answer as the model's own turn and the instruction to go on) and first_turn_request
(built from the rows just saved, without a query)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from chatapp.attachments.services import attachment_create
from chatapp.conversations.chat_settings import chat_settings_validate
from chatapp.models import Attachment, Conversation, Message, MessageAttachment
from chatapp.providers import catalog
from chatapp.providers.types import ChatMessage, ChatRequest, ImagePart, TextPart
from chatapp.turns.requests import (
    CONTINUE_INSTRUCTION,
    continuation_request,
    first_turn_request,
    turn_request,
)
from chatapp.turns.services import Turn, turn_start
from tests import imagegen
from tests.conftest import add_message

pytestmark = pytest.mark.django_db

NOW = timezone.now()
SIGNATURE = {"google": {"thought_signature": "c2lnbmF0dXJl"}}


class Thread:
    """A conversation whose messages are added a second apart."""

    def __init__(self, owner, system_prompt: str = "Be brief.") -> None:
        self.conversation = Conversation.objects.create(
            owner=owner,
            route="aimlapi",
            model="google/gemini-2.5-flash",
            system_prompt=system_prompt,
        )
        self.count = 0

    def add(self, role: str, content: str = "", **fields) -> Message:
        self.count += 1
        if role == "assistant":
            fields = {"route": "aimlapi", "model": "google/gemini-2.5-flash", **fields}
        return add_message(
            self.conversation,
            role=role,
            content=content,
            created_at=NOW + timedelta(seconds=self.count),
            **fields,
        )

    def pending(self, **fields) -> Message:
        fields = {"route": "aimlapi", "model": "google/gemini-2.5-flash", **fields}
        return self.add("assistant", status=Message.Status.PENDING, **fields)


def user_text(text: str) -> ChatMessage:
    return ChatMessage(role="user", parts=(TextPart(text),))


def create_attachment(owner, data: bytes) -> Attachment:
    upload = SimpleUploadedFile("x.jpg", data, content_type="image/jpeg")
    return attachment_create(owner=owner, upload=upload)


def start(owner, text: str, *, model: str, attachment_ids=(), **settings_kw) -> Turn:
    return turn_start(
        owner=owner,
        conversation_id=uuid.uuid4(),
        text=text,
        idempotency_key=uuid.uuid4(),
        chat_settings=chat_settings_validate(
            spec=catalog.get_model_by_key(model),
            system_prompt=settings_kw.get("system_prompt", ""),
            raw_options=settings_kw.get("options", {}),
        ),
        worker_id=uuid.uuid4(),
        attachment_ids=attachment_ids,
    )


@pytest.fixture
def thread(user) -> Thread:
    return Thread(user)


# --- turn_request ------------------------------------------------------------------------------


def test_the_request_is_the_branch_up_to_the_message_and_nothing_beside_or_after_it(thread):
    q1 = thread.add("user", "q1", provider_extras={"ignored": True})
    a1 = thread.add("assistant", "a1", provider_extras=SIGNATURE)
    thread.add("assistant", "another version of a1", parent_id=q1.pk)  # a sibling: not sent
    thread.add("user", "q2", parent_id=a1.pk)
    thread.add("assistant", "a2")
    thread.add("user", "q3")
    message = thread.pending(request_options={"temperature": 0.5, "max_tokens": 100})
    thread.add("user", "written after the message")

    request = turn_request(message=message)

    assert request == ChatRequest(
        model="google/gemini-2.5-flash",
        messages=(
            user_text("q1"),
            ChatMessage(role="assistant", parts=(TextPart("a1"),), extras=SIGNATURE),
            user_text("q2"),
            ChatMessage(role="assistant", parts=(TextPart("a2"),)),
            user_text("q3"),
        ),
        system="Be brief.",
        options={"temperature": 0.5, "max_tokens": 100},
        request_id=message.id.hex,
    )


@pytest.mark.parametrize(
    "ending",
    [
        {"status": Message.Status.FAILED, "error_code": "upstream_error"},
        {"status": Message.Status.STOPPED},
        {"status": Message.Status.INTERRUPTED},
        {"status": Message.Status.COMPLETE, "finish_reason": "safety"},
    ],
    ids=["failed", "stopped", "interrupted", "blocked"],
)
def test_a_turn_whose_answer_has_no_text_never_travels_with_later_ones(thread, ending):
    thread.add("user", "q1")
    thread.add("assistant", "a1")
    thread.add("user", "the prompt that failed")
    thread.add("assistant", "", **ending)
    thread.add("user", "q3")
    request = turn_request(message=thread.pending())
    assert request.messages == (
        user_text("q1"),
        ChatMessage(role="assistant", parts=(TextPart("a1"),)),
        user_text("q3"),  # alone: never merged with the failed prompt into one user turn
    )


def test_a_partial_answer_that_failed_still_travels_with_its_prompt(thread):
    thread.add("user", "q1")
    thread.add("assistant", "half an answer", status=Message.Status.FAILED)
    thread.add("user", "q2")
    request = turn_request(message=thread.pending())
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]


def test_extras_go_back_only_to_the_route_and_model_that_wrote_them(thread):
    thread.add("user", "q1")
    thread.add("assistant", "a1", provider_extras=SIGNATURE, route="gemini", model="gemini-2.5-pro")
    thread.add("user", "q2")
    thread.add(
        "assistant",
        "a2",
        provider_extras=SIGNATURE,
        route="aimlapi",
        model="google/gemini-2.5-flash",
    )
    thread.add("user", "q3")
    request = turn_request(message=thread.pending())
    assert [m.extras for m in request.messages if m.role == "assistant"] == [{}, SIGNATURE]


def test_assistant_extras_are_echoed_and_user_messages_have_none(thread):
    thread.add("user", "q1", provider_extras=SIGNATURE)
    thread.add("assistant", "a1", provider_extras=SIGNATURE)
    thread.add("user", "q2")
    first, second, _ = turn_request(message=thread.pending()).messages
    assert first.extras == {}
    assert second.extras == SIGNATURE


def test_the_request_of_an_earlier_message_stops_before_it(thread):
    thread.add("user", "q1")
    earlier = thread.pending(request_options={"seed": 3})
    thread.add("user", "q2")
    request = turn_request(message=earlier)
    assert request.messages == (user_text("q1"),)
    assert request.options == {"seed": 3}
    assert request.request_id == earlier.id.hex


def test_the_options_are_a_copy_of_the_frozen_ones(thread):
    thread.add("user", "q1")
    message = thread.pending(request_options={"temperature": 0.5})
    request = turn_request(message=message)
    request.options["temperature"] = 2.0
    assert message.request_options == {"temperature": 0.5}


def test_without_a_system_prompt_the_request_has_none(user):
    thread = Thread(user, system_prompt="")
    thread.add("user", "q1")
    assert turn_request(message=thread.pending()).system == ""


def test_images_come_before_their_text_and_an_image_alone_has_no_text(thread, user):
    with_text = thread.add("user", "What is this?")
    thread.add("assistant", "A picture.")
    alone = thread.add("user", "")
    image = create_attachment(user, imagegen.jpeg(40, 30))
    for message in (with_text, alone):
        MessageAttachment.objects.create(message=message, attachment=image, position=0)
    first, _, second = turn_request(message=thread.pending()).messages
    assert [type(part) for part in first.parts] == [ImagePart, TextPart]
    assert first.parts[1] == TextPart("What is this?")
    assert [type(part) for part in second.parts] == [ImagePart]
    assert (second.parts[0].width, second.parts[0].height) == (40, 30)


# --- continuation_request ---------------------------------------------------------------------


def test_a_continuation_is_the_thread_the_partial_answer_and_the_instruction(thread):
    thread.add("user", "q1")
    thread.add("assistant", "a1")
    thread.add("user", "q2")
    partial = thread.pending(
        content="Half an ans", provider_extras=SIGNATURE, request_options={"top_p": 0.5}
    )
    before = turn_request(message=partial)

    request = continuation_request(message=partial)

    assert request.messages == (
        *before.messages,
        ChatMessage(role="assistant", parts=(TextPart("Half an ans"),), extras=SIGNATURE),
        user_text(CONTINUE_INSTRUCTION),
    )
    assert (request.model, request.system, request.options, request.request_id) == (
        before.model,
        before.system,
        {"top_p": 0.5},
        partial.id.hex,
    )
    # The partial answer is the model's own turn once, not also part of the history.
    assert [m.text for m in request.messages].count("Half an ans") == 1


# --- first_turn_request ------------------------------------------------------------------------


def test_the_first_turn_request_is_built_without_a_query(user, aimlapi, django_assert_num_queries):
    turn = start(
        user,
        "Hello there",
        model="aimlapi:gemini-1.5-pro",
        system_prompt="Be brief.",
        options={"temperature": "0.5"},
    )
    with django_assert_num_queries(0):
        request = first_turn_request(turn=turn)
    assert request == ChatRequest(
        model="gemini-1.5-pro",
        messages=(user_text("Hello there"),),
        system="Be brief.",
        options={"temperature": 0.5, "max_tokens": 8192},
        request_id=turn.assistant_message.id.hex,
    )
    # The same request the general builder reads back from the database.
    assert request == turn_request(message=turn.assistant_message)


@pytest.mark.parametrize("text", ["Compare these", ""])
def test_the_first_turn_request_carries_the_images_in_order_without_a_query(
    user, aimlapi, django_assert_num_queries, text
):
    wide = create_attachment(user, imagegen.jpeg(60, 30))
    tall = create_attachment(user, imagegen.png(20, 50))
    turn = start(
        user, text, model="aimlapi:google/gemini-2.5-flash", attachment_ids=[tall.id, wide.id]
    )
    with django_assert_num_queries(0):
        request = first_turn_request(turn=turn)
    (message,) = request.messages
    images = [part for part in message.parts if isinstance(part, ImagePart)]
    assert [(image.width, image.height) for image in images] == [(20, 50), (60, 30)]
    assert [image.mime_type for image in images] == ["image/png", "image/jpeg"]
    texts = [part for part in message.parts if isinstance(part, TextPart)]
    assert texts == ([TextPart(text)] if text else [])
    assert message.parts[: len(images)] == tuple(images)  # images before the text
    assert request == turn_request(message=turn.assistant_message)
