"""Writes of a turn: start one (the person's message and a pending answer), retry an answer,
continue one that stopped part-way. Each returns the assistant message to run; the view hands
it to the run manager (`turns.manager.launch`) with the request built by `turns.requests`.

Every function takes keyword-only arguments and raises a `core.errors.ServiceError` subclass
whose message names the limit it enforces.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from chatapp.attachments.models import MessageAttachment
from chatapp.attachments.selectors import attachments_for_message
from chatapp.conversations.chat_settings import ChatSettings, chat_settings_stored
from chatapp.conversations.models import Conversation, Message
from chatapp.conversations.services import SETTINGS_FIELDS, conversation_settings_apply
from chatapp.conversations.titles import title_from_text
from chatapp.core.errors import ServiceError, TurnConflict
from chatapp.providers import catalog

from .limits import check_images_fit, check_rate, check_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BUSY = "An answer is still being written in this conversation. Wait for it to finish or press Stop."


@dataclass(frozen=True, slots=True)
class Turn:
    conversation: Conversation
    user_message: Message
    assistant_message: Message
    created: bool  # False when an idempotency key matched an earlier submit
    new_conversation: bool = False


def turn_start(
    *,
    owner: User,
    conversation_id: uuid.UUID,
    text: str,
    idempotency_key: uuid.UUID,
    chat_settings: ChatSettings,
    worker_id: uuid.UUID,
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Turn:
    """Save the user's message and a pending assistant message in one transaction.

    Creates the conversation when `conversation_id` is new (the id comes from the new-chat
    form, so a double submit of a first message lands in the same conversation). The settings
    are saved on the conversation and the exact options to send are frozen on the assistant
    message. `attachment_ids` are the person's uploaded images, linked in order. Raises
    TurnConflict (one active turn per conversation), LimitExceeded, NotFound (an image that
    is not theirs) or ServiceError (text, a model that cannot read the images).

    This is on the path to the first token, so it is lean: the database's unique constraints,
    not extra queries, catch a double submit (idempotency key) and a second active turn.
    """
    attachments = attachments_for_message(owner=owner, attachment_ids=attachment_ids)
    check_text(text, with_images=bool(attachments))
    now = timezone.now()
    try:
        with transaction.atomic():
            check_rate(owner)
            conversation, created = _conversation_for_turn(
                owner, conversation_id, chat_settings, text=text, now=now
            )
            if attachments or not created:
                check_images_fit(
                    conversation=conversation,
                    spec=chat_settings.spec,
                    new_images=attachments,
                    new_text=text,
                    thread_is_empty=created,
                )
            parent = None if created else _latest(conversation)
            user_message = Message(
                conversation=conversation,
                parent=parent,
                role=Message.Role.USER,
                content=text,
                idempotency_key=idempotency_key,
                created_at=now,
            )
            assistant_message = _assistant_message(
                conversation=conversation,
                parent=user_message,
                spec=chat_settings.spec,
                options=chat_settings.options,
                worker_id=worker_id,
                created_at=now + timedelta(microseconds=1),
            )
            Message.objects.bulk_create([user_message, assistant_message])
            user_message.image_links = MessageAttachment.objects.bulk_create(
                MessageAttachment(message=user_message, attachment=attachment, position=position)
                for position, attachment in enumerate(attachments)
            )
    except IntegrityError:
        # The same submit twice (idempotency key), or a second turn while one is active.
        earlier = _turn_for_key(owner=owner, idempotency_key=idempotency_key)
        if earlier is not None:
            return earlier
        raise TurnConflict(BUSY) from None
    return Turn(
        conversation, user_message, assistant_message, created=True, new_conversation=created
    )


def turn_retry(*, message: Message, worker_id: uuid.UUID) -> Message:
    """Answer the same user message again with the conversation's current settings (checked
    again: the model may have left the catalog since they were saved).

    The old answer is kept but superseded (it leaves the visible thread). Pressing Retry twice
    returns the replacement created by the first press.
    """
    if message.role != Message.Role.ASSISTANT or message.is_active:
        raise TurnConflict("Only a finished answer can be retried.")
    try:
        with transaction.atomic():
            check_rate(message.conversation.owner)
            locked = Message.objects.select_for_update().get(pk=message.pk)
            if locked.superseded:
                replacement = (
                    Message.objects.filter(parent_id=locked.parent_id, superseded=False)
                    .order_by("-created_at")
                    .first()
                )
                if replacement is not None:
                    return replacement
            conversation = locked.conversation
            if conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).exists():
                raise TurnConflict(BUSY)
            if _latest_id(conversation) != locked.pk:
                # Its replacement would follow the later messages and be asked the wrong question.
                raise TurnConflict("Only the last answer of a conversation can be retried.")
            chat_settings = chat_settings_stored(conversation=conversation)
            # The settings may have changed since: the images must still be readable and fit.
            check_images_fit(conversation=conversation, spec=chat_settings.spec)
            locked.superseded = True
            locked.save(update_fields=["superseded"])
            now = timezone.now()
            replacement = _assistant_message(
                conversation=conversation,
                parent=locked.parent,
                spec=chat_settings.spec,
                options=chat_settings.options,
                worker_id=worker_id,
                created_at=now,
            )
            replacement.save(force_insert=True)
            conversation.updated_at = now
            conversation.save(update_fields=["updated_at"])
    except IntegrityError:
        raise TurnConflict(BUSY) from None
    return replacement


CONTINUABLE = (Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.FAILED)


def turn_continue(*, message: Message, worker_id: uuid.UUID) -> Message:
    """Pick up an answer that stopped part-way (the server stopped, Stop, a dropped stream)
    where it stopped: the same message goes back to pending, keeping its text, and the run
    appends to it. Only the conversation's last answer, and only one with some text."""
    try:
        with transaction.atomic():
            check_rate(message.conversation.owner)
            locked = (
                Message.objects.select_for_update()
                .select_related("conversation")
                .get(pk=message.pk)
            )
            if locked.role != Message.Role.ASSISTANT or locked.status not in CONTINUABLE:
                raise TurnConflict("Only an answer that stopped part-way can be continued.")
            if not locked.content:
                raise TurnConflict("This answer has no text to continue from; press Retry.")
            if _latest_id(locked.conversation) != locked.pk:
                raise TurnConflict("Only the last answer of a conversation can be continued.")
            if catalog.get_model(locked.route, locked.model) is None:
                raise ServiceError(
                    f"The model that wrote this answer ({locked.model}) is not available any "
                    "more; choose another in Settings and press Retry."
                )
            locked.status = Message.Status.PENDING
            locked.worker_id = worker_id
            locked.error_code = locked.error_message = ""
            locked.finished_at = None
            locked.save(
                update_fields=["status", "worker_id", "error_code", "error_message", "finished_at"]
            )
    except IntegrityError:
        raise TurnConflict(BUSY) from None
    return locked


def _latest(conversation: Conversation) -> Message | None:
    """The conversation's newest visible message (its id only)."""
    return (
        conversation.messages.filter(superseded=False)
        .order_by("-created_at", "-id")
        .only("id")
        .first()
    )


def _latest_id(conversation: Conversation) -> uuid.UUID | None:
    latest = _latest(conversation)
    return latest.pk if latest is not None else None


def _assistant_message(
    *,
    conversation: Conversation,
    parent: Message | None,
    spec: catalog.ModelSpec,
    options: dict[str, Any],
    worker_id: uuid.UUID,
    created_at: datetime,
) -> Message:
    """A pending answer, not saved yet, with the exact options it will send."""
    return Message(
        conversation=conversation,
        parent=parent,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        route=spec.route,
        model=spec.id,
        request_options=catalog.options_to_send(spec, options),
        worker_id=worker_id,
        created_at=created_at,
    )


def _conversation_for_turn(
    owner: User,
    conversation_id: uuid.UUID,
    chat_settings: ChatSettings,
    *,
    text: str,
    now: datetime,
) -> tuple[Conversation, bool]:
    """The conversation of a turn, created (True) or updated with the settings sent along,
    its last activity and, if it has none, a title - in one statement either way."""
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    title = title_from_text(text) if text.strip() else "Image"
    if conversation is None:
        conversation = Conversation(
            id=conversation_id, owner=owner, title=title, created_at=now, updated_at=now
        )
        conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
        conversation.save(force_insert=True)
        return conversation, True
    if conversation.owner_id != owner.pk:
        # Someone else's id: behave exactly as if it did not exist (docs/SECURITY.md rule 9).
        raise Conversation.DoesNotExist
    conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
    conversation.updated_at = now
    conversation.title = conversation.title or title
    conversation.save(update_fields=[*SETTINGS_FIELDS, "updated_at", "title"])
    return conversation, False


def _turn_for_key(*, owner: User, idempotency_key: uuid.UUID) -> Turn | None:
    user_message = (
        Message.objects.select_related("conversation")
        .filter(conversation__owner=owner, idempotency_key=idempotency_key)
        .first()
    )
    if user_message is None:
        return None
    assistant_message = (
        Message.objects.filter(parent=user_message, role=Message.Role.ASSISTANT)
        .order_by("superseded", "-created_at")
        .first()
    )
    if assistant_message is None:
        return None
    return Turn(user_message.conversation, user_message, assistant_message, created=False)
