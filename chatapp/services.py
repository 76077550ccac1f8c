"""Writes. Views call one service; the generation run calls the message_* services.

Every function takes keyword-only arguments and raises a `ServiceError` subclass whose message
a person can read (it names the limit it enforces).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Length
from django.utils import timezone

from . import images, rendering
from .models import Attachment, Conversation, Message, MessageAttachment, Worker
from .providers import catalog

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TurnConflict(ServiceError):
    status = 409


class LimitExceeded(ServiceError):
    status = 429


class NotFound(ServiceError):
    """Something the request names is not there - or is someone else's: the same answer."""

    status = 404


class RequestTooLarge(ServiceError):
    """What would be sent upstream exceeds the route's request size budget."""

    status = 413


class UploadRejected(ServiceError):
    """An upload that is not an acceptable image (400) or too large (413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InvalidSettings(ServiceError):
    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors


# --- Accounts ---------------------------------------------------------------------------------


def user_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create an account; the first account on a server becomes its superuser."""
    User = get_user_model()
    with transaction.atomic():
        first = not User.objects.exists()
        if first:
            return User.objects.create_superuser(username=username, password=password)
        return User.objects.create_user(username=username, password=password)


# --- Conversations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Validated settings for a conversation: the model and the parameters the person set."""

    spec: catalog.ModelSpec
    system_prompt: str
    options: dict[str, Any]


def chat_settings_validate(
    *, model_key: str, system_prompt: str, raw_options: dict[str, Any]
) -> ChatSettings:
    spec = catalog.get_model_by_key(model_key)
    if spec is None:
        raise InvalidSettings(
            "Choose a model from the list.",
            {"model": f"The model {model_key!r} is not available on this server."},
        )
    limit = settings.CHAT_LIMITS["system_prompt_chars"]
    errors: dict[str, str] = {}
    if len(system_prompt) > limit:
        errors["system_prompt"] = (
            f"The system prompt is {len(system_prompt):,} characters; the limit is {limit:,}."
        )
    options, option_errors = catalog.validate_options(spec, raw_options)
    errors.update(option_errors)
    if errors:
        raise InvalidSettings("Some settings are out of range for this model.", errors)
    return ChatSettings(spec=spec, system_prompt=system_prompt, options=options)


def conversation_settings_update(
    *, conversation: Conversation, chat_settings: ChatSettings
) -> Conversation:
    conversation.route = chat_settings.spec.route
    conversation.model = chat_settings.spec.id
    conversation.system_prompt = chat_settings.system_prompt
    conversation.settings = chat_settings.options
    conversation.save(update_fields=["route", "model", "system_prompt", "settings"])
    return conversation


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    conversation.pinned = pinned
    conversation.save(update_fields=["pinned"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages, and the images only it referred to (an image
    also sent in another conversation stays)."""
    if conversation.messages.filter(status__in=Message.ACTIVE_STATUSES).exists():
        raise TurnConflict("An answer is still being written here. Press Stop first, then delete.")
    with transaction.atomic():
        attachment_ids = set(
            MessageAttachment.objects.filter(message__conversation=conversation).values_list(
                "attachment_id", flat=True
            )
        )
        conversation.delete()
        # Their files go when the rows do, once committed (signals.attachment_files_cleanup).
        Attachment.objects.filter(pk__in=attachment_ids, message_links__isnull=True).delete()


# --- Attachments ------------------------------------------------------------------------------


def attachment_create(*, owner: AbstractBaseUser, upload: Any) -> Attachment:
    """Validate and normalise an uploaded image (chatapp.images) and store it, once per owner
    and content: uploading the same image again returns the first attachment.

    Nothing is saved unless the whole image is acceptable; the files are written before the
    row and removed again if the row cannot be saved. Raises LimitExceeded or UploadRejected.
    """
    _check_upload_rate(owner)
    try:
        image = images.normalise(upload)
    except images.ImageRejected as exc:
        raise UploadRejected(exc.message, exc.status) from None
    existing = Attachment.objects.filter(owner=owner, sha256=image.sha256).first()
    if existing is not None:
        return existing
    attachment_id = uuid.uuid4()
    stem = f"attachments/{attachment_id.hex[:2]}/{attachment_id.hex}"
    names: list[str] = []
    try:
        names.append(default_storage.save(f"{stem}.{image.extension}", ContentFile(image.data)))
        names.append(
            default_storage.save(
                f"{stem}.thumb.{image.thumbnail_extension}", ContentFile(image.thumbnail)
            )
        )
        with transaction.atomic():
            attachment = Attachment.objects.create(
                id=attachment_id,
                owner=owner,
                sha256=image.sha256,
                file_name=names[0],
                thumbnail_name=names[1],
                mime_type=image.mime_type,
                width=image.width,
                height=image.height,
                byte_size=len(image.data),
            )
    except IntegrityError:
        # The same image uploaded twice at once: keep the one that won.
        attachment_files_delete(names=names)
        return Attachment.objects.get(owner=owner, sha256=image.sha256)
    except BaseException:
        attachment_files_delete(names=names)
        raise
    _attachments_prune_unsent(owner)
    return attachment


def attachment_files_delete(*, names: Iterable[str]) -> None:
    """Remove stored files; a file already gone is not an error."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            # The row is gone either way; a file left behind is logged, not fatal.
            log.exception("could not delete the stored file %s", name)


def _attachments_prune_unsent(owner: AbstractBaseUser) -> None:
    """Images uploaded but never sent (the tab was closed, the image removed before sending)
    are deleted after a while."""
    hours = settings.CHAT_IMAGE_LIMITS["unsent_ttl_hours"]
    cutoff = timezone.now() - timedelta(hours=hours)
    Attachment.objects.filter(
        owner=owner, created_at__lt=cutoff, message_links__isnull=True
    ).delete()


def _check_upload_rate(owner: AbstractBaseUser) -> None:
    per_minute = settings.CHAT_LIMITS["uploads_per_minute"]
    since = timezone.now() - timedelta(minutes=1)
    uploaded = Attachment.objects.filter(owner=owner, created_at__gte=since).count()
    if uploaded >= per_minute:
        raise LimitExceeded(
            f"You have uploaded {uploaded} images in the last minute; the limit is {per_minute} "
            "per minute. Wait a moment and attach again."
        )


def _attachments_for_turn(
    *, owner: AbstractBaseUser, attachment_ids: Sequence[uuid.UUID]
) -> list[Attachment]:
    """The person's own attachments, in the order given. Someone else's id is treated exactly
    like an id that does not exist (SECURITY 9)."""
    ids = list(dict.fromkeys(attachment_ids))
    if not ids:
        return []
    limit = settings.CHAT_LIMITS["images_per_message"]
    if len(ids) > limit:
        raise ServiceError(f"You attached {len(ids)} images; the limit is {limit} per message.")
    found = {a.pk: a for a in Attachment.objects.filter(owner=owner, pk__in=ids)}
    if len(found) != len(ids):
        raise NotFound(
            "An attached image is no longer available (it may have been deleted with its "
            "conversation). Remove it and attach it again."
        )
    return [found[i] for i in ids]


def _check_images_fit(
    *,
    conversation: Conversation,
    spec: catalog.ModelSpec,
    new_images: Sequence[Attachment] = (),
    new_text: str = "",
    thread_is_empty: bool = False,
) -> None:
    """Before any request: the model must read images if the thread has any, and the whole
    request (every image of the thread, base64-encoded, and the text) must fit the route."""
    earlier_count, earlier_bytes = 0, 0
    if not thread_is_empty:
        thread = MessageAttachment.objects.filter(
            message__conversation=conversation, message__superseded=False
        ).aggregate(count=Count("id"), total=Sum("attachment__byte_size"))
        earlier_count, earlier_bytes = thread["count"] or 0, thread["total"] or 0
    if (new_images or earlier_count) and not spec.capabilities.vision:
        if new_images:
            raise ServiceError(
                f"{spec.label} takes text only and cannot read the images attached. Choose a "
                "model that reads images in Settings, or remove the images."
            )
        raise ServiceError(
            f"This conversation has images, which {spec.label} cannot read (it takes text "
            "only). Choose a model that reads images in Settings."
        )
    if not new_images and not earlier_count:
        return
    text_chars = (
        0
        if thread_is_empty
        else Message.objects.filter(conversation=conversation, superseded=False).aggregate(
            chars=Sum(Length("content"))
        )["chars"]
        or 0
    )
    new_bytes = sum(a.byte_size for a in new_images)
    budget = images.route_limits(spec.route)["request_bytes"]
    text_bytes = text_chars + len(new_text) + len(conversation.system_prompt)
    encoded = _encoded_size(new_bytes, len(new_images))
    total = encoded + _encoded_size(earlier_bytes, earlier_count) + text_bytes
    if total <= budget:
        return
    route = catalog.ROUTE_LABELS.get(spec.route, spec.route)
    if encoded + len(new_text) > budget:
        raise RequestTooLarge(
            f"The images attached come to {images.megabytes(encoded)} once encoded for sending; "
            f"{route} takes at most {images.megabytes(budget)} per request. Remove an image."
        )
    raise RequestTooLarge(
        f"With the images already in this conversation, this request would come to "
        f"{images.megabytes(total)}; {route} takes at most {images.megabytes(budget)} per "
        "request. Start a new conversation to send more images."
    )


def _encoded_size(raw_bytes: int, count: int) -> int:
    """Base64 (4 bytes for every 3) plus the data: URI prefix of each image."""
    return 4 * ((raw_bytes + 2) // 3) + 40 * count


# --- Turns ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    conversation: Conversation
    user_message: Message
    assistant_message: Message
    created: bool  # False when an idempotency key matched an earlier submit
    new_conversation: bool = False


def turn_start(
    *,
    owner: AbstractBaseUser,
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
    attachments = _attachments_for_turn(owner=owner, attachment_ids=attachment_ids)
    _check_text(text, with_images=bool(attachments))
    _check_rate(owner)
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation, created = _conversation_for_turn(
                owner, conversation_id, chat_settings, text=text, now=now
            )
            if attachments or not created:
                _check_images_fit(
                    conversation=conversation,
                    spec=chat_settings.spec,
                    new_images=attachments,
                    new_text=text,
                    thread_is_empty=created,
                )
            parent = (
                None
                if created
                else conversation.messages.filter(superseded=False)
                .order_by("-created_at", "-id")
                .only("id")
                .first()
            )
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
        raise TurnConflict(
            "An answer is still being written in this conversation. "
            "Wait for it to finish or press Stop."
        ) from None
    return Turn(
        conversation, user_message, assistant_message, created=True, new_conversation=created
    )


def turn_retry(*, message: Message, chat_settings: ChatSettings, worker_id: uuid.UUID) -> Message:
    """Answer the same user message again with the conversation's current settings.

    The old answer is kept but superseded (it leaves the visible thread). Pressing Retry twice
    returns the replacement created by the first press.
    """
    if message.role != Message.Role.ASSISTANT or message.is_active:
        raise TurnConflict("Only a finished answer can be retried.")
    _check_rate(message.conversation.owner)
    try:
        with transaction.atomic():
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
                raise TurnConflict(
                    "An answer is still being written in this conversation. "
                    "Wait for it to finish or press Stop."
                )
            # The settings may have changed since: the images must still be readable and fit.
            _check_images_fit(conversation=conversation, spec=chat_settings.spec)
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
        raise TurnConflict(
            "An answer is still being written in this conversation. "
            "Wait for it to finish or press Stop."
        ) from None
    return replacement


CONTINUABLE = (Message.Status.INTERRUPTED, Message.Status.STOPPED, Message.Status.FAILED)


def turn_continue(*, message: Message, worker_id: uuid.UUID) -> Message:
    """Pick up an answer that stopped part-way (the server stopped, Stop, a dropped stream)
    where it stopped: the same message goes back to pending, keeping its text, and the run
    appends to it. Only the conversation's last answer, and only one with some text."""
    _check_rate(message.conversation.owner)
    try:
        with transaction.atomic():
            locked = (
                Message.objects.select_for_update()
                .select_related("conversation")
                .get(pk=message.pk)
            )
            if locked.role != Message.Role.ASSISTANT or locked.status not in CONTINUABLE:
                raise TurnConflict("Only an answer that stopped part-way can be continued.")
            if not locked.content:
                raise TurnConflict("This answer has no text to continue from; press Retry.")
            latest = (
                locked.conversation.messages.filter(superseded=False)
                .order_by("-created_at", "-id")
                .only("id")
                .first()
            )
            if latest is None or latest.pk != locked.pk:
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
        raise TurnConflict(
            "An answer is still being written in this conversation. "
            "Wait for it to finish or press Stop."
        ) from None
    return locked


# What a title keeps of a markdown line: the words, not the markup around them.
_TITLE_LINE_PREFIX = re.compile(r"^(?:#{1,6}\s+|>\s*|[-*+]\s+|\d{1,3}[.)]\s+)+")
_TITLE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Paired markers only, as markdown reads them: "2*3" and "__init__" keep their characters.
_TITLE_MARKERS = re.compile(r"(\*\*|\*|~~|`)(?=\S)(.+?)(?<=\S)\1")


def title_from_text(text: str, limit: int = 80) -> str:
    """A conversation's title from its first message: the first line with words in it,
    without markdown markup (headings, quotes, list markers, emphasis, code spans, links),
    cut at a word boundary. Lines inside code fences count only if nothing else has words."""
    line, code_line, in_fence = "", "", False
    for raw in text.splitlines():
        if raw.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            code_line = code_line or " ".join(raw.split())
            continue
        line = _TITLE_LINK.sub(r"\1", _TITLE_LINE_PREFIX.sub("", raw.strip()))
        for _ in range(3):  # nested emphasis: the outer pair first, then what it held
            line, found = _TITLE_MARKERS.subn(r"\2", line)
            if not found:
                break
        line = " ".join(line.split())
        if line:
            break
    line = line or code_line or "New chat"
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(",.;:") + "…"


def _assistant_message(
    *,
    conversation: Conversation,
    parent: Message | None,
    spec: catalog.ModelSpec,
    options: dict[str, Any],
    worker_id: uuid.UUID,
    created_at: Any,
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
    owner: AbstractBaseUser,
    conversation_id: uuid.UUID,
    chat_settings: ChatSettings,
    *,
    text: str,
    now: Any,
) -> tuple[Conversation, bool]:
    """The conversation of a turn, created (True) or updated with the settings sent along,
    its last activity and, if it has none, a title - in one statement either way."""
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    title = title_from_text(text) if text.strip() else "Image"
    if conversation is None:
        conversation = Conversation.objects.create(
            id=conversation_id,
            owner=owner,
            title=title,
            route=chat_settings.spec.route,
            model=chat_settings.spec.id,
            system_prompt=chat_settings.system_prompt,
            settings=chat_settings.options,
            created_at=now,
            updated_at=now,
        )
        return conversation, True
    if conversation.owner_id != owner.pk:
        # Someone else's id: behave exactly as if it did not exist (SECURITY 9).
        raise Conversation.DoesNotExist
    conversation.route = chat_settings.spec.route
    conversation.model = chat_settings.spec.id
    conversation.system_prompt = chat_settings.system_prompt
    conversation.settings = chat_settings.options
    conversation.updated_at = now
    conversation.title = conversation.title or title
    conversation.save(
        update_fields=["route", "model", "system_prompt", "settings", "updated_at", "title"]
    )
    return conversation, False


def _turn_for_key(*, owner: AbstractBaseUser, idempotency_key: uuid.UUID) -> Turn | None:
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


def _check_text(text: str, *, with_images: bool = False) -> None:
    limit = settings.CHAT_LIMITS["message_chars"]
    if not text.strip() and not with_images:
        raise ServiceError("Type a message first.")
    if len(text) > limit:
        raise ServiceError(
            f"Your message is {len(text):,} characters long; the limit is {limit:,} characters."
        )


_RATE_SQL = """
SELECT
  (SELECT COUNT(*) FROM {message} m JOIN {conversation} c ON m.conversation_id = c.id
    WHERE c.owner_id = %s AND m.role = %s AND m.created_at >= %s),
  (SELECT COUNT(*) FROM {message} m JOIN {conversation} c ON m.conversation_id = c.id
    WHERE c.owner_id = %s AND m.status IN (%s, %s))
"""


def _check_rate(owner: AbstractBaseUser) -> None:
    """Sends per minute and answers being written at once, per person (SECURITY 14). One
    statement for both counts: this is on every send's path to the first token."""
    since = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(minutes=1))
    sql = _RATE_SQL.format(message=Message._meta.db_table, conversation=Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [owner.pk, Message.Role.ASSISTANT, since, owner.pk, *Message.ACTIVE_STATUSES]
        )
        sent, active = cursor.fetchone()
    per_minute = settings.CHAT_LIMITS["sends_per_minute"]
    if sent >= per_minute:
        raise LimitExceeded(
            f"You have sent {sent} messages in the last minute; the limit is {per_minute} per "
            "minute. Wait a moment and send again."
        )
    active_limit = settings.CHAT_LIMITS["active_turns_per_user"]
    if active >= active_limit:
        raise LimitExceeded(
            f"{active} answers are being written for you right now; the limit is {active_limit} "
            "at a time. Wait for one to finish or press Stop."
        )


# --- The generation run's writes ---------------------------------------------------------------


def message_checkpoint(*, message_id: uuid.UUID, content_tail: str, reasoning_tail: str) -> None:
    """Append the text streamed since the last checkpoint (at most one per second per message).

    Appending, not rewriting, keeps the bytes written linear in the answer's length; the final
    save (message_finish) writes the whole text once, which also repairs a checkpoint that
    failed after all. One plain statement: with hundreds of streams this runs hundreds of times
    a second, and building it through the ORM's expressions cost more than executing it.
    """
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET content = content || %s, reasoning = reasoning || %s, "
            "status = %s WHERE id = %s AND status IN (%s, %s)",
            [
                content_tail,
                reasoning_tail,
                Message.Status.STREAMING,
                Message._meta.pk.get_db_prep_value(message_id, connection),
                *Message.ACTIVE_STATUSES,
            ],
        )


@dataclass(slots=True)
class Outcome:
    """Everything the run knows when it ends; saved in one UPDATE."""

    status: str
    content: str
    reasoning: str = ""
    error_code: str = ""
    error_message: str = ""
    finish_reason: str = ""
    model_reported: str = ""
    upstream_request_id: str = ""
    upstream_response_id: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    credits_used: float | None = None
    usd_spent: float | None = None
    ttft_ms: int | None = None
    duration_ms: int | None = None
    provider_extras: dict | None = None


def message_finish(*, message_id: uuid.UUID, outcome: Outcome) -> bool:
    """Save the final state of a run. Returns False if the message was already terminal
    (e.g. marked interrupted by another worker while this one was partitioned away)."""
    fields: dict[str, Any] = {
        "status": outcome.status,
        "content": outcome.content,
        "content_html": rendering.render_markdown(outcome.content) if outcome.content else "",
        "html_version": rendering.RENDERER_VERSION,
        "reasoning": outcome.reasoning,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "finish_reason": outcome.finish_reason[:32],
        "model_reported": outcome.model_reported[:200],
        "upstream_request_id": outcome.upstream_request_id[:200],
        "upstream_response_id": outcome.upstream_response_id[:200],
        "prompt_tokens": _count(outcome.prompt_tokens),
        "completion_tokens": _count(outcome.completion_tokens),
        "reasoning_tokens": _count(outcome.reasoning_tokens),
        "total_tokens": _count(outcome.total_tokens),
        "credits_used": _decimal(outcome.credits_used),
        "usd_spent": _decimal(outcome.usd_spent),
        "ttft_ms": outcome.ttft_ms,
        "duration_ms": outcome.duration_ms,
        "finished_at": timezone.now(),
    }
    if outcome.provider_extras is not None:
        fields["provider_extras"] = outcome.provider_extras
    updated = Message.objects.filter(pk=message_id, status__in=Message.ACTIVE_STATUSES).update(
        **fields
    )
    return bool(updated)


def _count(value: int | None) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.00000001"))
    except (InvalidOperation, ValueError):
        return None


# --- Workers and interrupted runs --------------------------------------------------------------

INTERRUPTED_MESSAGE = (
    "The server stopped while this answer was being written. The text up to that moment is "
    "kept; press Retry to ask again or Continue to pick up where it stopped."
)


def worker_heartbeat(*, worker_id: uuid.UUID, hostname: str, pid: int) -> None:
    now = timezone.now()
    updated = Worker.objects.filter(pk=worker_id).update(seen_at=now)
    if not updated:
        Worker.objects.update_or_create(
            pk=worker_id, defaults={"hostname": hostname, "pid": pid, "seen_at": now}
        )


def runs_reap(*, live_worker_id: uuid.UUID, stale_after: float, hostname: str) -> list[uuid.UUID]:
    """Mark as interrupted the active messages whose worker is gone, keeping their text.

    A worker is gone when it has not been seen for `stale_after` seconds, or at once when it
    ran on this host and its process no longer exists (a restart after a crash need not wait).
    Returns the ids marked, so the caller can tell their listeners.
    """
    recent = Worker.objects.filter(seen_at__gte=timezone.now() - timedelta(seconds=stale_after))
    alive = [
        worker.pk
        for worker in recent.only("id", "hostname", "pid")
        if worker.hostname != hostname or _process_exists(worker.pid)
    ]
    orphans = Message.objects.filter(status__in=Message.ACTIVE_STATUSES).exclude(
        worker_id__in=[live_worker_id, *alive]
    )
    ids = list(orphans.values_list("pk", flat=True))
    if not ids:
        return []
    Message.objects.filter(pk__in=ids, status__in=Message.ACTIVE_STATUSES).update(
        status=Message.Status.INTERRUPTED,
        error_code="interrupted",
        error_message=INTERRUPTED_MESSAGE,
        finished_at=timezone.now(),
    )
    Worker.objects.filter(seen_at__lt=timezone.now() - timedelta(days=1)).delete()
    log.warning("marked %d orphaned run(s) interrupted", len(ids))
    return ids


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True
