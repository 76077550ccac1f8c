"""Writes of a turn: start one (the person's message and a pending answer), regenerate an
answer, edit a message, continue an answer that stopped part-way, delete a turn. Each that
starts an answer returns it to run; the view hands it to the run manager
(`turns.manager.launch`) with the request built by `turns.requests`.

Every write keeps the tree's one rule (docs/ARCHITECTURE.md, "The message tree"): a new
message hangs under the end of the branch it was written on, and becomes the conversation's
current leaf.

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

from chatapp.attachments.models import Attachment, MessageAttachment
from chatapp.attachments.selectors import attachments_for_message
from chatapp.attachments.services import attachments_delete_unlinked
from chatapp.conversations import tree
from chatapp.conversations.chat_settings import ChatSettings, chat_settings_stored
from chatapp.conversations.models import Conversation, Message
from chatapp.conversations.services import SETTINGS_FIELDS, conversation_settings_apply
from chatapp.conversations.titles import title_from_text
from chatapp.core import sql
from chatapp.core.errors import ServiceError, TurnConflict
from chatapp.credentials.selectors import PersonRoutes
from chatapp.providers import catalog, functions

from .limits import check_budget, check_images_fit, check_rate, check_text

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
    parent_id: uuid.UUID | None = None,
) -> Turn:
    """Save the user's message and a pending assistant message in one transaction.

    The message follows `parent_id`, the answer at the end of the branch the page shows (so
    two tabs on two branches each add to their own), or else the conversation's current leaf.

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
            check_budget(owner, route=chat_settings.spec.route)
            answer_id = uuid.uuid4()
            conversation, created, parent = _conversation_for_turn(
                owner,
                conversation_id,
                chat_settings,
                text=text,
                now=now,
                parent_id=parent_id,
                leaf_id=answer_id,
            )
            if attachments or not created:
                check_images_fit(
                    conversation=conversation,
                    spec=chat_settings.spec,
                    new_images=attachments,
                    new_text=text,
                    thread_end_id=parent,
                )
            user_message, assistant_message = _insert_turn(
                conversation=conversation,
                parent_id=parent,
                text=text,
                attachments=attachments,
                idempotency_key=idempotency_key,
                chat_settings=chat_settings,
                worker_id=worker_id,
                now=now,
                answer_id=answer_id,
            )
    except IntegrityError:
        # The same submit twice (idempotency key), or a second turn while one is active.
        return _replayed_turn(owner=owner, idempotency_key=idempotency_key)
    return Turn(
        conversation, user_message, assistant_message, created=True, new_conversation=created
    )


def turn_regenerate(
    *, message: Message, worker_id: uuid.UUID, spec: catalog.ModelSpec | None = None
) -> Message:
    """Answer the same message again: a new version of `message` (its sibling) that becomes
    the end of the branch shown. With the conversation's model and settings, or with `spec`
    (another model or route; the settings it does not take are not sent to it), checked again
    either way. Any answer, not only the last: what followed the old version stays on its
    branch."""
    if message.role != Message.Role.ASSISTANT or message.is_active:
        raise TurnConflict("Only a finished answer can be regenerated.")
    try:
        with transaction.atomic():
            conversation = _locked_conversation(message)
            check_rate(conversation.owner)
            check_budget(conversation.owner, route=spec.route if spec else conversation.route)
            chat_settings = chat_settings_stored(
                conversation=conversation, spec=spec, routes=PersonRoutes(conversation.owner_id)
            )
            # The images on the path must be readable by this model and fit its route.
            check_images_fit(
                conversation=conversation,
                spec=chat_settings.spec,
                thread_end_id=message.parent_id,
            )
            answer = _assistant_message(
                conversation=conversation,
                parent_id=message.parent_id,
                spec=chat_settings.spec,
                options=chat_settings.options,
                worker_id=worker_id,
                created_at=timezone.now(),
            )
            answer.save(force_insert=True)
            _make_current(conversation, answer)
    except IntegrityError:
        raise TurnConflict(BUSY) from None
    return answer


def turn_results(
    *,
    message: Message,
    results: Sequence[str],
    idempotency_key: uuid.UUID,
    worker_id: uuid.UUID,
) -> Turn:
    """Send the results a person typed for an answer's function calls: the same turn goes on
    (docs/ARCHITECTURE.md, "Function calling"). The results are a message after the answer
    (role user, `provider_extras["function_results"]`, its text the results for history,
    search and export), followed by a pending answer of the same route, model and options,
    which may call again. One result per call, each at most `functions.RESULT_MAX_CHARS`;
    only the end of its branch takes results, once (the idempotency key makes a double
    submit return the first)."""
    calls = functions.calls_of(message.provider_extras)
    if message.role != Message.Role.ASSISTANT or not calls or message.is_active:
        raise TurnConflict("Only an answer that called functions takes their results.")
    if len(results) != len(calls):
        raise ServiceError(
            f"Write a result for each of the {len(calls)} calls (got {len(results)})."
        )
    for call, text in zip(calls, results, strict=True):
        if len(text) > functions.RESULT_MAX_CHARS:
            raise ServiceError(
                f"The result for {call['name']} can be at most "
                f"{functions.RESULT_MAX_CHARS:,} characters (got {len(text):,})."
            )
    kept: list[functions.Result] = [
        {"id": call["id"], "name": call["name"], "content": text}
        for call, text in zip(calls, results, strict=True)
    ]
    owner = message.conversation.owner
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _locked_conversation(message)
            check_rate(owner)
            check_budget(owner, route=message.route)
            if tree.has_children(message.pk):
                earlier = _turn_for_key(owner=owner, idempotency_key=idempotency_key)
                if earlier is not None:
                    return earlier  # the same results sent twice
                raise TurnConflict(
                    "These calls already have their results; reload the page to see them."
                )
            routes = PersonRoutes(conversation.owner_id)
            if catalog.get_model(message.route, message.model, routes) is None:
                raise ServiceError(
                    f"The model that called these functions ({message.model}) is not "
                    "available any more."
                )
            user_message = Message(
                conversation=conversation,
                parent_id=message.pk,
                role=Message.Role.USER,
                content=functions.results_text(kept, calls),
                provider_extras={functions.RESULTS_KEY: kept},
                idempotency_key=idempotency_key,
                created_at=now,
            )
            answer = Message(
                conversation=conversation,
                parent_id=user_message.pk,
                role=Message.Role.ASSISTANT,
                status=Message.Status.PENDING,
                route=message.route,
                model=message.model,
                request_options=dict(message.request_options),
                worker_id=worker_id,
                created_at=now + timedelta(microseconds=1),
            )
            sql.insert([user_message, answer])
            user_message.image_links = []
            _make_current(conversation, answer)
    except IntegrityError:
        return _replayed_turn(owner=owner, idempotency_key=idempotency_key)
    return Turn(conversation, user_message, answer, created=True)


def turn_edit(
    *,
    message: Message,
    text: str,
    idempotency_key: uuid.UUID,
    worker_id: uuid.UUID,
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Turn:
    """Send an edited version of one of the person's messages: a new sibling of `message`
    with `text` and the images `attachment_ids` name (those it keeps, in order), and a new
    answer to it, with the conversation's settings. The old message and its branch stay,
    one version back. A double submit (the same key) returns the first edit."""
    if message.role != Message.Role.USER:
        raise ServiceError("Only your own messages can be edited.")
    conversation = message.conversation
    owner = conversation.owner
    attachments = attachments_for_message(owner=owner, attachment_ids=attachment_ids)
    check_text(text, with_images=bool(attachments))
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = _locked_conversation(message)
            check_rate(owner)
            check_budget(owner, route=conversation.route)
            chat_settings = chat_settings_stored(
                conversation=conversation, routes=PersonRoutes(conversation.owner_id)
            )
            check_images_fit(
                conversation=conversation,
                spec=chat_settings.spec,
                new_images=attachments,
                new_text=text,
                thread_end_id=message.parent_id,
            )
            user_message, assistant_message = _insert_turn(
                conversation=conversation,
                parent_id=message.parent_id,
                text=text,
                attachments=attachments,
                idempotency_key=idempotency_key,
                chat_settings=chat_settings,
                worker_id=worker_id,
                now=now,
            )
            _make_current(conversation, assistant_message)
    except IntegrityError:
        return _replayed_turn(owner=owner, idempotency_key=idempotency_key)
    return Turn(conversation, user_message, assistant_message, created=True)


def turn_delete(*, message: Message) -> Conversation:
    """Delete one of the person's messages with everything under it (its answers, what
    followed them, on every branch), and the images only they referred to. The branch shown
    moves to the newest one left beside it, else ends just above. Returns the conversation
    with its new current leaf."""
    if message.role != Message.Role.USER:
        raise ServiceError("Delete a turn from its message (yours), not from an answer.")
    with transaction.atomic():
        conversation = _locked_conversation(message)
        rows = tree.subtree(conversation_id=conversation.id, root_id=message.pk)
        if any(status in Message.ACTIVE_STATUSES for _, status in rows):
            raise TurnConflict(
                "An answer is still being written in this turn. Press Stop first, then delete."
            )
        ids = [message_id for message_id, _ in rows]
        attachment_ids: set[uuid.UUID] = set()
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            attachment_ids.update(
                MessageAttachment.objects.filter(message_id__in=batch).values_list(
                    "attachment_id", flat=True
                )
            )
            # The whole subtree goes in this transaction; a batch may hold a parent whose
            # children are in the next one (the foreign key is checked at commit).
            Message.objects.filter(pk__in=batch).delete()
        if conversation.current_leaf_id is None or conversation.current_leaf_id in set(ids):
            conversation.current_leaf_id = tree.newest_leaf(
                conversation_id=conversation.id, under_id=message.parent_id
            )
            conversation.save(update_fields=["current_leaf"])
        attachments_delete_unlinked(attachment_ids=attachment_ids)
    return conversation


# Ids per statement when a subtree is deleted: far below SQLite's limit on parameters.
_BATCH = 500


CONTINUABLE = (Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.FAILED)


def turn_continue(*, message: Message, worker_id: uuid.UUID) -> Message:
    """Pick up an answer that stopped part-way (the server stopped, Stop, a dropped stream)
    where it stopped: the same message goes back to pending, keeping its text, and the run
    appends to it. Only the conversation's last answer, and only one with some text."""
    try:
        with transaction.atomic():
            check_rate(message.conversation.owner)
            check_budget(message.conversation.owner, route=message.route)
            locked = (
                Message.objects.select_for_update()
                .select_related("conversation")
                .get(pk=message.pk)
            )
            if locked.role != Message.Role.ASSISTANT or locked.status not in CONTINUABLE:
                raise TurnConflict("Only an answer that stopped part-way can be continued.")
            if not locked.content:
                raise TurnConflict("This answer has no text to continue from; press Retry.")
            if tree.has_children(locked.pk):
                # Continuing it would change what the messages after it answered.
                raise TurnConflict(
                    "Only the last answer of a branch can be continued; press Regenerate."
                )
            routes = PersonRoutes(locked.conversation.owner_id)
            if catalog.get_model(locked.route, locked.model, routes) is None:
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
            _make_current(locked.conversation, locked)
    except IntegrityError:
        raise TurnConflict(BUSY) from None
    return locked


def _insert_turn(
    *,
    conversation: Conversation,
    parent_id: uuid.UUID | None,
    text: str,
    attachments: Sequence[Attachment],
    idempotency_key: uuid.UUID,
    chat_settings: ChatSettings,
    worker_id: uuid.UUID,
    now: datetime,
    answer_id: uuid.UUID | None = None,
) -> tuple[Message, Message]:
    """The person's message after `parent_id`, its images in order and a pending answer to
    it, in two statements."""
    user_message = Message(
        conversation=conversation,
        parent_id=parent_id,
        role=Message.Role.USER,
        content=text,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    assistant_message = _assistant_message(
        conversation=conversation,
        parent_id=user_message.pk,
        spec=chat_settings.spec,
        options=chat_settings.options,
        worker_id=worker_id,
        created_at=now + timedelta(microseconds=1),
    )
    if answer_id is not None:
        assistant_message.pk = answer_id
    # Its parent is new: it is the only version (conversations.models.Message.versions_known).
    assistant_message.versions_known = True
    sql.insert([user_message, assistant_message])
    user_message.image_links = (
        MessageAttachment.objects.bulk_create(
            [
                MessageAttachment(message=user_message, attachment=attachment, position=position)
                for position, attachment in enumerate(attachments)
            ]
        )
        if attachments
        else []
    )
    return user_message, assistant_message


def _parent_for(conversation: Conversation, parent_id: uuid.UUID | None) -> uuid.UUID | None:
    """The message a new one follows: `parent_id` when the page named one (an answer of this
    conversation), else the current leaf. One primary-key lookup, or none."""
    if parent_id is None:
        return conversation.current_leaf_id
    role = tree.role_of(conversation_id=conversation.id, message_id=parent_id)
    if role is None:
        raise TurnConflict(
            "The answer this message follows is no longer in the conversation (it was "
            "deleted, perhaps in another tab). Reload the page and send again."
        )
    if role != Message.Role.ASSISTANT:
        raise ServiceError("A message follows an answer; reload the page and send again.")
    return parent_id


def _locked_conversation(message: Message) -> Conversation:
    """The message's conversation, locked for this transaction (one writer of its tree)."""
    return Conversation.objects.select_for_update().get(pk=message.conversation_id)


def _make_current(conversation: Conversation, message: Message) -> None:
    """Show the branch that ends at `message`, now the conversation's last activity."""
    conversation.current_leaf_id = message.pk
    conversation.updated_at = max(conversation.updated_at, message.created_at)
    conversation.save(update_fields=["current_leaf", "updated_at"])


def _assistant_message(
    *,
    conversation: Conversation,
    parent_id: uuid.UUID | None,
    spec: catalog.ModelSpec,
    options: dict[str, Any],
    worker_id: uuid.UUID,
    created_at: datetime,
) -> Message:
    """A pending answer, not saved yet, with the exact options it will send."""
    return Message(
        conversation=conversation,
        parent_id=parent_id,
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
    parent_id: uuid.UUID | None,
    leaf_id: uuid.UUID,
) -> tuple[Conversation, bool, uuid.UUID | None]:
    """The conversation of a turn, created (True) or updated with the settings sent along,
    its last activity, its new current leaf (the answer about to be inserted: the foreign key
    is checked at commit) and, if it has none, a title - in one statement either way; and the
    message the turn follows."""
    conversation = _CONVERSATION_FOR_UPDATE.first(conversation_id)
    if conversation is None:
        conversation = Conversation(
            id=conversation_id,
            owner=owner,
            title=_first_title(text),
            created_at=now,
            updated_at=now,
            current_leaf_id=leaf_id,
        )
        conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
        sql.insert([conversation])
        return conversation, True, None
    if conversation.owner_id != owner.pk:
        # Someone else's id: behave exactly as if it did not exist (docs/SECURITY.md rule 9).
        raise Conversation.DoesNotExist
    parent = _parent_for(conversation, parent_id)
    conversation_settings_apply(conversation=conversation, chat_settings=chat_settings)
    conversation.updated_at = now
    # A title only if it has none: reading one from the text is 20-60 µs of markdown parsing,
    # which a later send of a titled conversation need not pay.
    conversation.title = conversation.title or _first_title(text)
    conversation.current_leaf_id = leaf_id
    sql.update(conversation, *SETTINGS_FIELDS, "updated_at", "title", "current_leaf")
    return conversation, False, parent


# On every send's path: prepared once (core.sql; the queryset cost ~1 ms to compile and run).
_CONVERSATION_FOR_UPDATE = sql.Prepared(Conversation, "id", for_update=True)


def _first_title(text: str) -> str:
    """The title a conversation gets from the message that starts it."""
    return title_from_text(text) if text.strip() else "Image"


def _replayed_turn(*, owner: User, idempotency_key: uuid.UUID) -> Turn:
    """After an insert refused by a constraint: the turn this key already made (the same
    submit twice), or else the answer already being written refused it."""
    earlier = _turn_for_key(owner=owner, idempotency_key=idempotency_key)
    if earlier is None:
        raise TurnConflict(BUSY) from None
    return earlier


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
        .order_by("-created_at")
        .first()
    )
    if assistant_message is None:
        return None
    return Turn(user_message.conversation, user_message, assistant_message, created=False)
