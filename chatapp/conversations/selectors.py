"""Reads of conversations and their messages, every one scoped to its owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.http import Http404
from django.utils import timezone as dt_timezone

from chatapp.attachments.models import MessageAttachment
from chatapp.providers import catalog

from . import tree
from .models import Conversation, Message, Preset, SavedSchema

if TYPE_CHECKING:
    from django.contrib.auth.models import User

THREAD_PAGE_SIZE = 50
# Longer than any cursor `_cursor` writes (an ISO time with microseconds and an offset, a UUID).
CURSOR_MAX_CHARS = 80


def conversation_for_owner(*, owner: User, conversation_id: uuid.UUID) -> Conversation:
    """The conversation, or 404 - the same 404 whether it does not exist or is someone else's."""
    conversation = Conversation.objects.filter(pk=conversation_id, owner=owner).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def message_for_owner(
    *,
    owner: User,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    with_versions: bool = False,
) -> Message:
    """The message, or 404 (as for a conversation); `with_versions` to show it in place."""
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation_id=conversation_id, conversation__owner=owner)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    if with_versions:
        tree.with_versions([message])
    return message


SIDEBAR_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class SidebarGroup:
    label: str  # "Pinned", "Today", "Yesterday", "Previous 7 days", "Previous 30 days", "May 2026"
    conversations: list[Conversation]


@dataclass(frozen=True, slots=True)
class SidebarPage:
    conversations: list[Conversation]
    # The cursor for the next (older) page, or None when there is no more.
    more_cursor: str | None
    groups: list[SidebarGroup] = field(default_factory=list)


def sidebar_page(
    *,
    owner: User,
    before: str | None = None,
    limit: int = SIDEBAR_PAGE_SIZE,
    archived: bool = False,
    today: date | None = None,
    zone: tzinfo | None = None,
) -> SidebarPage:
    """The person's conversations for the sidebar (or, with `archived`, the Archived list):
    pinned ones first, then the others by last activity, newest first, `limit` at a time, in
    date groups ("Today", "Yesterday", ... in the person's time zone `zone`).

    One keyset over (pinned, last activity, id) and only the columns the sidebar shows: every
    pinned conversation is reached however many there are, and a person with thousands of
    conversations gets the same small page in one query (S8).
    """
    rows = Conversation.objects.filter(owner=owner, archived=archived).only(
        "id", "title", "pinned", "updated_at", "archived"
    )
    if before:
        pinned, updated_at, conversation_id = _parse_sidebar_cursor(before)
        later = Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, id__lt=conversation_id)
        rows = (
            rows.filter((Q(pinned=True) & later) | Q(pinned=False))
            if pinned
            else rows.filter(Q(pinned=False) & later)
        )
    page = list(rows.order_by("-pinned", "-updated_at", "-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    last = page[-1] if page else None
    cursor = (
        f"{'p' if last.pinned else 'u'}{_cursor(last.updated_at, last.id)}"
        if more and last is not None
        else None
    )
    return SidebarPage(
        conversations=page,
        more_cursor=cursor,
        groups=_groups(page, today=today, zone=zone),
    )


def _groups(
    conversations: list[Conversation], *, today: date | None, zone: tzinfo | None
) -> list[SidebarGroup]:
    zone = zone or dt_timezone.get_current_timezone()
    today = today or dt_timezone.now().astimezone(zone).date()
    groups: list[SidebarGroup] = []
    for conversation in conversations:
        label = (
            "Pinned"
            if conversation.pinned
            else _date_label(conversation.updated_at.astimezone(zone).date(), today)
        )
        if not groups or groups[-1].label != label:
            groups.append(SidebarGroup(label, []))
        groups[-1].conversations.append(conversation)
    return groups


def _date_label(day: date, today: date) -> str:
    age = (today - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age < 7:
        return "Previous 7 days"
    if age < 30:
        return "Previous 30 days"
    return day.strftime("%B %Y")


def _parse_sidebar_cursor(cursor: str) -> tuple[bool, datetime, uuid.UUID]:
    """A sidebar cursor: "p" (among the pinned) or "u", then a page cursor; 404 otherwise."""
    if cursor[:1] not in ("p", "u"):
        raise Http404("Bad page cursor.")
    stamp, conversation_id = _parse_cursor(cursor[1:])
    return cursor[0] == "p", stamp, conversation_id


@dataclass(frozen=True, slots=True)
class ThreadPage:
    messages: list[Message]
    # The cursor for the next older page, or None when this page reaches the start.
    older_cursor: str | None


def thread_page(
    *, conversation: Conversation, before: str | None = None, limit: int = THREAD_PAGE_SIZE
) -> ThreadPage:
    """The last `limit` messages of the branch shown (the path to the conversation's current
    leaf), or the `limit` before the message `before` names, oldest first, each with its
    versions and images.

    One walk up the tree that stops after the page, versions included (conversations.tree),
    and one query for the images: the cost of a page does not grow with the length of the
    conversation or the number of its branches (S8).
    """
    if before:
        page = tree.path(
            conversation_id=conversation.id,
            leaf_id=_message_cursor(before),
            above=True,
            limit=limit + 1,
            versions=True,
        )
    elif conversation.current_leaf_id is not None:
        page = tree.path(
            conversation_id=conversation.id,
            leaf_id=conversation.current_leaf_id,
            limit=limit + 1,
            versions=True,
        )
    else:
        page = []
    has_older = len(page) > limit
    page = page[-limit:] if has_older else page
    prefetch_related_objects(page, _IMAGE_LINKS)
    if page and not before:
        page[-1].is_last = True
    cursor = page[0].id.hex if has_older else None
    return ThreadPage(messages=page, older_cursor=cursor)


# How far below a search hit its page reaches down its branch; a hit deeper than this from
# the end of its branch opens on that end instead (and is not in view).
HIT_REACH = 500
# Messages shown above a hit, for its context.
HIT_CONTEXT = 6


def hit_page(*, conversation: Conversation, message_id: uuid.UUID) -> ThreadPage | None:
    """The page a search hit opens: the branch through the message (down to the newest leaf
    under it, not saved as the branch shown: a GET changes nothing), from a few messages
    above the hit to that leaf. None when the message is not this conversation's."""
    leaf = tree.newest_leaf(conversation_id=conversation.id, under_id=message_id)
    if leaf is None:
        return None
    rows = tree.path(
        conversation_id=conversation.id,
        leaf_id=leaf,
        stop_at=message_id,
        limit=HIT_REACH,
        versions=True,
    )
    if not rows or rows[0].pk != message_id:
        rows = tree.path(
            conversation_id=conversation.id, leaf_id=leaf, limit=THREAD_PAGE_SIZE, versions=True
        )
        above: list[Message] = []
    else:
        above = tree.path(
            conversation_id=conversation.id,
            leaf_id=message_id,
            above=True,
            limit=HIT_CONTEXT + 1,
            versions=True,
        )
    has_older = len(above) > HIT_CONTEXT or (not above and rows and rows[0].parent_id is not None)
    above = above[-HIT_CONTEXT:]
    page = [*above, *rows]
    prefetch_related_objects(page, _IMAGE_LINKS)
    page[-1].is_last = True
    return ThreadPage(messages=page, older_cursor=page[0].id.hex if has_older else None)


def branch_from(*, conversation: Conversation, first_id: uuid.UUID) -> list[Message] | None:
    """The branch shown from `first_id` down to the current leaf, with versions and images:
    what replaces a message and everything after it when a version is switched, an answer
    regenerated or a message edited. None when it is longer than a page (or `first_id` is not
    on it): the page is then loaded again."""
    leaf = conversation.current_leaf_id
    if leaf is None:
        return None
    rows = tree.path(
        conversation_id=conversation.id,
        leaf_id=leaf,
        stop_at=first_id,
        limit=THREAD_PAGE_SIZE,
        versions=True,
    )
    if not rows or rows[0].pk != first_id:
        return None
    return _shown(rows)


def branch_after(
    *, conversation: Conversation, parent_id: uuid.UUID | None
) -> list[Message] | None:
    """The branch shown below `parent_id` (None: from the start), as `branch_from`: what
    replaces a deleted turn. None when it is longer than a page."""
    leaf = conversation.current_leaf_id
    if leaf is None or leaf == parent_id:
        return []
    rows = tree.path(
        conversation_id=conversation.id,
        leaf_id=leaf,
        stop_at=parent_id,
        limit=THREAD_PAGE_SIZE + 1,
        versions=True,
    )
    if parent_id is not None:
        if not rows or rows[0].pk != parent_id:
            return None
        rows = rows[1:]
    elif rows and rows[0].parent_id is not None:
        return None
    return _shown(rows)


def _shown(rows: list[Message]) -> list[Message]:
    """Messages ready to show at the end of a branch: their images, and the last marked."""
    prefetch_related_objects(rows, _IMAGE_LINKS)
    if rows:
        rows[-1].is_last = True
    return rows


# The images of every message of a page in one query, into the attribute Message declares for
# them (`Message.images` reads it).
_IMAGE_LINKS = Prefetch(
    "attachment_links",
    queryset=MessageAttachment.objects.select_related("attachment").order_by("position"),
    to_attr="image_links",
)


def chat_settings_initial(
    *, owner: User, preset_id: uuid.UUID | None = None, routes: catalog.Routes | None = None
) -> tuple[catalog.ModelSpec, str, dict]:
    """Where a new chat starts: the preset chosen, else the person's own defaults (set with
    "Use as default for new chats"), else the catalog's first model with nothing set. Never
    the last conversation's settings: a new chat inherits nothing silently."""
    presets = Preset.objects.filter(owner=owner)
    chosen = None
    if preset_id is not None:
        chosen = presets.filter(pk=preset_id).first()
    if chosen is None:
        chosen = presets.filter(name=Preset.DEFAULTS).first()
    if chosen is not None:
        spec = catalog.get_model(chosen.route, chosen.model, routes)
        if spec is not None:
            return spec, chosen.system_prompt, dict(chosen.settings)
    return catalog.default_model(routes), "", {}


def presets_for(*, owner: User) -> list[Preset]:
    """The person's named presets, by name (their defaults are not one of them)."""
    return list(Preset.objects.filter(owner=owner).exclude(name=Preset.DEFAULTS))


def preset_for_owner(*, owner: User, preset_id: uuid.UUID) -> Preset:
    preset = Preset.objects.filter(pk=preset_id, owner=owner).first()
    if preset is None:
        raise Http404("No such preset.")
    return preset


def schemas_for(*, owner: User) -> list[SavedSchema]:
    """The person's saved JSON schemas, by name."""
    return list(SavedSchema.objects.filter(owner=owner))


def schema_for_owner(*, owner: User, schema_id: uuid.UUID) -> SavedSchema:
    schema = SavedSchema.objects.filter(pk=schema_id, owner=owner).first()
    if schema is None:
        raise Http404("No such schema.")
    return schema


def _message_cursor(cursor: str) -> uuid.UUID:
    """The message id of a thread page's cursor, or 404 for anything else."""
    try:
        return uuid.UUID(cursor[:CURSOR_MAX_CHARS])
    except ValueError:
        raise Http404("Bad page cursor.") from None


def _cursor(stamp: datetime, row_id: uuid.UUID) -> str:
    return f"{stamp.isoformat()}_{row_id.hex}"


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) of a page cursor, or 404 for anything this module did not write: a
    cursor is an aware ISO time and a UUID, and the time must exist in UTC too (9999-12-31
    at -14:00 does not, and the database adapter would overflow converting it)."""
    try:
        if len(cursor) > CURSOR_MAX_CHARS:
            raise ValueError(cursor)
        stamp, _, hex_id = cursor.rpartition("_")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError(stamp)
        when.astimezone(UTC)
        return when, uuid.UUID(hex_id)
    except (ValueError, OverflowError):
        raise Http404("Bad page cursor.") from None
