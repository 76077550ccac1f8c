"""Conversations and their messages: what a person sees in the sidebar and the thread.

Writes go through the domains' services (`conversations.services`, `turns.services`), reads
through selectors; a streamed answer is written by its run at a bounded rate
(`turns.persistence`: a checkpoint at most once per second and one final UPDATE).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from chatapp.attachments.models import Attachment, MessageAttachment


@dataclass(frozen=True, slots=True)
class Versions:
    """A message's place among its siblings: "2 / 3", and the ones either side."""

    position: int  # from 1
    count: int
    previous_id: uuid.UUID | None
    next_id: uuid.UUID | None


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    # The person named it (Rename): no automatic title replaces theirs.
    title_locked = models.BooleanField(default=False)
    route = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    system_prompt = models.TextField(blank=True)
    # Generation parameters the person set, typed, under the neutral names of
    # providers.params.PARAMETERS; a parameter left empty is absent, and is not sent.
    settings = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)
    # Out of the sidebar, in the Archived list; search still finds it.
    archived = models.BooleanField(default=False)
    # Where an imported conversation came from ("chatgpt:<id>", "openwebui:<id>", "chatapp:<id>"):
    # importing the same file twice finds it instead of adding a copy. Empty: made here.
    origin = models.CharField(max_length=200, blank=True)
    # The end of the branch shown and sent (docs/ARCHITECTURE.md, "The message tree"): the
    # thread is the path from the root to this message. None only while there is no message.
    current_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Last activity (a turn started); the sidebar orders by it. Not auto_now: pinning or
    # renaming a conversation must not move it to the top.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "archived", "-pinned", "-updated_at"], name="sidebar"),
            # A person's conversations active lately (the sends-per-minute count, turns/limits.py).
            models.Index(fields=["owner", "updated_at"], name="recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "origin"], condition=~Q(origin=""), name="one_import_per_origin"
            )
        ]

    def __str__(self) -> str:
        return self.title or "New chat"


class Preset(models.Model):
    """A person's saved chat settings: the defaults new chats start from (the one with no
    name, set by "Use as default for new chats") or a named preset to start a chat from."""

    DEFAULTS = ""
    NAME_MAX_CHARS = 80

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets"
    )
    name = models.CharField(max_length=NAME_MAX_CHARS, blank=True)
    route = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    system_prompt = models.TextField(blank=True)
    # As Conversation.settings: typed, neutral names, only what was set.
    settings = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="one_preset_per_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or "Defaults for new chats"


class SavedSchema(models.Model):
    """A JSON Schema a person saved under a name, to use again for structured output in any
    chat ("Saved schemas" under the panel's JSON schema box). Stored as the text the person
    wrote (checked as JSON Schema when saved), so it comes back exactly as it was written."""

    NAME_MAX_CHARS = 80

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_schemas"
    )
    name = models.CharField(max_length=NAME_MAX_CHARS)
    text = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="one_schema_per_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    ACTIVE_STATUSES = (Status.PENDING, Status.STREAMING)
    # Set by selectors.thread_page on the end of the branch shown: only it offers Continue.
    is_last = False
    # Where this message stands among its versions (its siblings), set for a page by
    # conversations.tree.with_versions; None when it has none.
    versions: Versions | None = None
    # Whether `versions` is known without reading it: a new answer to a message made with it
    # has no siblings until it is over (only a finished answer can be regenerated), so the
    # end of its stream need not ask (one statement of a turn's ten, bench "turn cost").
    versions_known = False
    # The message's image links, prefetched for a page (see `images`).
    image_links: list[MessageAttachment]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The message this one answers or follows (None: the first of a branch from the start).
    # Siblings are versions: answers regenerated, messages edited. A turn is deleted with its
    # subtree in one statement (conversations.tree), never child by child here.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="children",
        db_index=False,  # the "children" index leads with it
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # The sanitised HTML of a finished answer, rendered once (see rendering.answer_html).
    content_html = models.TextField(blank=True, editable=False)
    html_version = models.PositiveSmallIntegerField(default=0, editable=False)
    reasoning = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Why the answer ended, in neutral words (providers.types.FinishReason, or "stopped" for
    # Stop); the upstream's own word is kept in provider_extras["finish_reason"].
    finish_reason = models.CharField(max_length=32, blank=True)

    # What was asked: route, model and the exact options sent upstream.
    route = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    request_options = models.JSONField(default=dict, blank=True)

    # What the upstream reported.
    model_reported = models.CharField(max_length=200, blank=True)
    upstream_request_id = models.CharField(max_length=200, blank=True)
    upstream_response_id = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    credits_used = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    usd_spent = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    # Written with the person's own API key (chatapp/credentials): theirs to pay, so not
    # counted against the budget an administrator set for the server's keys. Nullable, no
    # default: SQLite then adds the column in place; with a default Django rebuilds the table,
    # which drops the search triggers (migration 0010) and copies every message.
    own_key = models.BooleanField(null=True, default=None)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Opaque provider data kept as received, e.g. {"google": {"thought_signature": "..."}}, and
    # the upstream's own finish reason.
    provider_extras = models.JSONField(default=dict, blank=True)

    # A client-generated key on user messages: a double submit returns the first turn.
    idempotency_key = models.UUIDField(null=True, blank=True)
    # The worker process running this message's generation (see Worker).
    worker_id = models.UUIDField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="thread"),
            # A message's versions in order, and a subtree's walk down, from the index alone:
            # the walk carries created_at to find the newest leaf (conversations/tree.py).
            models.Index(fields=["parent", "created_at", "id"], name="children"),
            # The Usage page: a month of answers, in order of their day (conversations/usage.py).
            models.Index(
                fields=["created_at"], condition=Q(role="assistant"), name="answers_by_time"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="one_turn_per_idempotency_key",
            ),
            # The database, not only the service, guarantees one active turn per conversation.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(status__in=["pending", "streaming"]),
                name="one_active_turn_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return not self.is_active

    @property
    def images(self) -> list[Attachment]:
        """The images attached to this (user) message, in order. Selectors prefetch them into
        `image_links` for a whole page; a lone message costs one query."""
        links = getattr(self, "image_links", None)
        if links is None:
            links = list(self.attachment_links.select_related("attachment").order_by("position"))
            self.image_links = links
        return [link.attachment for link in links]
