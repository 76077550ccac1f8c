"""The import's write: a file's conversations added to the person's account, in one
transaction, with a report of what was imported, what was there already and what could not
be carried.

Everything slow happens before the transaction (reading the file, rendering the answers'
HTML, decoding the images), so the write lock SQLite takes for it lasts only as long as the
inserts. Each conversation keeps the tree's rule (docs/ARCHITECTURE.md, "The message tree"):
a message is always newer than the one it follows, so a source's equal or missing times are
moved on by a microsecond where needed; its versions keep their order, and the branch the
source showed is the one shown.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from chatapp import rendering
from chatapp.attachments import images as image_files
from chatapp.attachments.models import Attachment, MessageAttachment
from chatapp.attachments.services import attachment_files_delete, attachment_store
from chatapp.conversations.chat_settings import chat_settings_validate
from chatapp.conversations.models import Conversation, Message
from chatapp.conversations.selectors import chat_settings_initial
from chatapp.conversations.titles import plain_title, title_from_text
from chatapp.core.errors import InvalidSettings
from chatapp.core.locks import lock_person
from chatapp.providers import catalog, functions
from chatapp.providers.gemini import tools as gemini_tools

from . import readers
from .neutral import (
    NEVER,
    ImportRefused,
    NoteLine,
    Notes,
    SourceConversation,
    SourceMessage,
    timestamp,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TITLE_MAX_CHARS = 80
IMPORTED = "imported"
ALREADY = "already imported"
EMPTY = "nothing to import"
# What of an exported answer's provider extras comes back: what the page shows under it.
# Thought signatures and other opaque data are never read from a file, so that no file can
# put bytes into a later request upstream.
# The built-in tools' details (sources, citations, the URLs read) are checked again wherever
# the page reads them (providers/gemini/tools.py), so a file can put nothing else there.
PROVIDER_KEYS = (
    "finish_reason",
    "finish_message",
    "safety_ratings",
    "prompt_feedback",
    "grounding",
    "url_context",
)
# The most bytes of an answer's request options or provider details kept from a file.
RECORD_JSON_MAX_BYTES = 65_536
_BATCH = 500
_TICK = timedelta(microseconds=1)


@dataclass
class ConversationReport:
    title: str
    outcome: str = IMPORTED
    conversation_id: uuid.UUID | None = None
    messages: int = 0
    branch_points: int = 0
    images: int = 0
    notes: Notes = field(default_factory=Notes)

    @property
    def note_lines(self) -> list[NoteLine]:
        return self.notes.lines()


@dataclass
class ImportReport:
    format: str
    conversations: list[ConversationReport]
    notes: Notes

    def _count(self, outcome: str) -> int:
        return sum(1 for c in self.conversations if c.outcome == outcome)

    @property
    def imported(self) -> int:
        return self._count(IMPORTED)

    @property
    def already(self) -> int:
        return self._count(ALREADY)

    @property
    def empty(self) -> int:
        return self._count(EMPTY)

    @property
    def note_lines(self) -> list[NoteLine]:
        return self.notes.lines()


@dataclass
class _Image:
    """One image of the file, decoded once however many messages carry it."""

    digest: str
    normalised: image_files.NormalisedImage | None = None
    attachment: Attachment | None = None


@dataclass
class _Prepared:
    source: SourceConversation
    conversation: Conversation
    messages: list[Message]
    links: list[tuple[uuid.UUID, int, _Image]]
    report: ConversationReport


def import_file(*, owner: User, upload: IO[bytes], size: int) -> ImportReport:
    """Import every conversation of an uploaded export into `owner`'s account: all of them,
    or (ImportRefused, naming the limit or the fault) none. A conversation imported before
    (the same origin, or this app's conversation itself) is skipped and reported."""
    source = readers.read_upload(upload, size)
    if not source.conversations:
        raise ImportRefused(f"This {source.format} file holds no conversations.")
    spec, _, defaults = chat_settings_initial(owner=owner)
    origins, ids = _existing(owner, source.conversations)
    cache: dict[str, _Image] = {}
    reports: list[ConversationReport] = []
    prepared: list[_Prepared] = []
    seen: set[str] = set()
    for conversation in source.conversations:
        report = ConversationReport(title=_title(conversation), notes=conversation.notes)
        reports.append(report)
        if (
            conversation.origin in origins
            or conversation.source_id in ids
            or conversation.origin in seen
        ):
            report.outcome = ALREADY
            continue
        seen.add(conversation.origin)
        ready = _prepare(owner, conversation, spec, defaults, cache, report)
        if ready is None:
            report.outcome = EMPTY
        else:
            prepared.append(ready)
    written: list[Attachment] = []
    try:
        with transaction.atomic():
            lock_person(owner.pk)
            # Imported meanwhile (the same file sent twice at once): skipped now.
            origins, ids = _existing(owner, [p.source for p in prepared])
            for ready in prepared:
                if ready.source.origin in origins or ready.source.source_id in ids:
                    ready.report.outcome = ALREADY
                    ready.report.conversation_id = None
                    continue
                _write(owner, ready, written)
    except BaseException as exc:
        _remove_rolled_back_files(written)
        if isinstance(exc, IntegrityError):
            raise ImportRefused(
                "Another import of these conversations finished at the same moment; nothing "
                "was imported from this one. Import the file again to see what is left.",
                409,
            ) from None
        raise
    return ImportReport(format=source.format, conversations=reports, notes=source.notes)


def _existing(owner: User, conversations: list[SourceConversation]) -> tuple[set[str], set[str]]:
    """Which of these the person has already: by origin, and (this app's own export) by the
    conversation's id itself."""
    origins: set[str] = set()
    ids: set[str] = set()
    wanted = [c.origin for c in conversations if c.origin]
    own = []
    for c in conversations:
        try:
            own.append(uuid.UUID(c.source_id))
        except ValueError:
            continue
    rows = Conversation.objects.filter(owner=owner)
    for start in range(0, len(wanted), _BATCH):
        origins.update(
            rows.filter(origin__in=wanted[start : start + _BATCH]).values_list("origin", flat=True)
        )
    for start in range(0, len(own), _BATCH):
        for found in rows.filter(pk__in=own[start : start + _BATCH]).values_list("id", flat=True):
            ids.update({str(found), found.hex})
    return origins, ids


def _title(conversation: SourceConversation) -> str:
    title = plain_title(conversation.title)[:TITLE_MAX_CHARS].strip()
    if title:
        return title
    first = next((m for m in conversation.messages if m.role == "user" and m.content), None)
    return title_from_text(first.content, TITLE_MAX_CHARS) if first else "Imported chat"


def _prepare(
    owner: User,
    source: SourceConversation,
    spec: catalog.ModelSpec,
    defaults: dict[str, Any],
    cache: dict[str, _Image],
    report: ConversationReport,
) -> _Prepared | None:
    """The rows of one conversation, unsaved, its messages parents first."""
    notes = source.notes
    placed = _place(source)
    if not placed:
        return None
    by_key = {m.key: m for m, _ in placed}
    times = {m.key: when for m, when in placed}
    ids = {m.key: uuid.uuid4() for m, _ in placed}
    newest = max(times.values())
    oldest = min(times.values())
    chosen, system_prompt, options = _settings(source, spec, defaults, notes)
    conversation = Conversation(
        id=uuid.uuid4(),
        owner=owner,
        title=report.title,
        title_locked=source.title_locked,
        route=chosen.route,
        model=chosen.id,
        system_prompt=system_prompt,
        settings=options,
        pinned=source.pinned,
        archived=source.archived,
        origin=source.origin[:200],
        created_at=min(source.created or oldest, oldest),
        updated_at=max(source.updated or newest, newest),
        current_leaf_id=ids[_current(source, by_key, times)],
    )
    messages: list[Message] = []
    links: list[tuple[uuid.UUID, int, _Image]] = []
    per_message = settings.CHAT_LIMITS["images_per_message"]
    children: dict[str | None, int] = {}
    for row, when in placed:
        children[row.parent] = children.get(row.parent, 0) + 1
        message = _message(row, ids, when, conversation, notes)
        messages.append(message)
        position = 0
        for image in row.images:
            if row.role != "user":
                notes.add("image_missing", f"{image.name} (in an answer)")
                continue
            if position >= per_message:
                notes.add("image_over_limit", image.name)
                continue
            found = _image(owner, image.name, image.load, cache, notes)
            if found is not None:
                links.append((message.pk, position, found))
                position += 1
        if row.images and position == 0 and not message.content:
            # Never an empty bubble: say what was there.
            message.content = "[An image was here; it could not be imported.]"
    report.conversation_id = conversation.id
    report.messages = len(messages)
    report.branch_points = sum(1 for n in children.values() if n > 1)
    report.images = len(links)
    return _Prepared(source, conversation, messages, links, report)


def _place(source: SourceConversation) -> list[tuple[SourceMessage, datetime]]:
    """The messages with their parents checked and their times set, parents first.

    A parent that is not in the conversation makes a root (noted); a message listed twice is
    kept once. Siblings keep their order: by time, then as the source listed them. A message
    is given a time after its parent's and its previous sibling's when its own is missing or
    not later. Walked breadth-first with a queue, never recursively: a tree of any depth.
    Messages that only loops of parents lead to are never reached, and are noted."""
    notes = source.notes
    by_key: dict[str, SourceMessage] = {}
    for message in source.messages:
        if message.key in by_key:
            notes.add("duplicate", message.content)
            continue
        by_key[message.key] = message
    order = {key: index for index, key in enumerate(by_key)}
    children: dict[str | None, list[str]] = {}
    for key, message in by_key.items():
        if message.parent is not None and (message.parent not in by_key or message.parent == key):
            notes.add("dangling", message.content or key)
            message.parent = None
        children.setdefault(message.parent, []).append(key)
    for kids in children.values():
        kids.sort(key=lambda k: (by_key[k].created or NEVER, order[k]))
    known = [m.created for m in by_key.values() if m.created is not None]
    start = source.created or (min(known) if known else timezone.now())
    placed: list[tuple[SourceMessage, datetime]] = []
    times: dict[str, datetime] = {}
    queue: deque[str | None] = deque([None])
    while queue:
        parent = queue.popleft()
        after = times.get(parent) if parent is not None else None
        previous: datetime | None = None
        for key in children.get(parent, ()):
            when = by_key[key].created or (after + _TICK if after else start)
            if after is not None and when <= after:
                when = after + _TICK
            if previous is not None and when <= previous:
                when = previous + _TICK
            times[key] = previous = when
            placed.append((by_key[key], when))
            queue.append(key)
    for key, message in by_key.items():
        if key not in times:
            notes.add("cycle", message.content or key)
    return placed


def _current(
    source: SourceConversation, by_key: dict[str, SourceMessage], times: dict[str, datetime]
) -> str:
    """The end of the branch to show: the source's, taken down to the newest leaf below it
    if it has children here; else the newest message (always a leaf)."""
    start = source.current if source.current in times else None
    if start is None:
        return max(times, key=lambda k: times[k])
    below: dict[str, list[str]] = {}
    for key, message in by_key.items():
        if message.parent is not None:
            below.setdefault(message.parent, []).append(key)
    best, pending = start, [start]
    while pending:
        key = pending.pop()
        if times[key] > times[best]:
            best = key
        pending.extend(below.get(key, ()))
    return best


def _settings(
    source: SourceConversation,
    spec: catalog.ModelSpec,
    defaults: dict[str, Any],
    notes: Notes,
) -> tuple[catalog.ModelSpec, str, dict[str, Any]]:
    """The conversation's model and settings: this app's export keeps its own where this
    server has that model; another source's conversation gets the person's defaults for new
    chats, so that Regenerate and the next message use a model of this server."""
    system_prompt = source.system_prompt
    limit = settings.CHAT_LIMITS["system_prompt_chars"]
    if len(system_prompt) > limit:
        notes.add("system_prompt_cut", f"{len(system_prompt):,} characters, cut to {limit:,}")
        system_prompt = system_prompt[:limit]
    raw: dict[str, Any] = defaults
    if source.model:
        own = catalog.get_model(source.route, source.model)
        if own is None:
            label = catalog.ROUTE_LABELS.get(source.route, source.route)
            here = (
                spec.label
                if spec.label == spec.route_label
                else f"{spec.label} on {spec.route_label}"
            )
            notes.add("model", f"{source.model} on {label}: it uses {here} here")
        else:
            spec, raw = own, source.settings
    for _ in range(2):
        try:
            checked = chat_settings_validate(
                spec=spec, system_prompt=system_prompt, raw_options=raw
            )
            return spec, system_prompt, checked.stored
        except InvalidSettings as exc:
            for name, message in exc.errors.items():
                notes.add("settings", f"{name}: {message}")
            raw = {k: v for k, v in raw.items() if k not in exc.errors}
    return spec, system_prompt, {}


def _message(
    row: SourceMessage,
    ids: dict[str, uuid.UUID],
    when: datetime,
    conversation: Conversation,
    notes: Notes,
) -> Message:
    answer = row.role == "assistant"
    message = Message(
        id=ids[row.key],
        conversation=conversation,
        parent_id=ids[row.parent] if row.parent is not None else None,
        role=Message.Role.ASSISTANT if answer else Message.Role.USER,
        content=row.content,
        reasoning=row.reasoning if answer else "",
        status=row.status if answer else Message.Status.COMPLETE,
        error_message=row.error_message if answer else "",
        finish_reason=row.finish_reason[:32] if answer else "",
        route=row.route[:32] if answer else "",
        model=row.model[:200] if answer else "",
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        reasoning_tokens=row.reasoning_tokens,
        total_tokens=row.total_tokens,
        created_at=when,
    )
    if row.record:
        _apply_record(message, row.record, notes)
        if not answer:
            # Results typed for function calls, checked as the page reads them.
            results = functions.results_of(
                {functions.RESULTS_KEY: row.record.get("function_results")}
            )
            if results:
                message.provider_extras = {functions.RESULTS_KEY: results}
    if answer and message.content:
        # As a finished answer is saved (turns.persistence): rendered once, served as is.
        message.content_html = rendering.render_markdown(
            message.content,
            gemini_tools.citations(message.provider_extras),
            anchor=gemini_tools.anchor(message.id),
        )
        message.html_version = rendering.RENDERER_VERSION
    return message


def _apply_record(message: Message, record: dict[str, Any], notes: Notes) -> None:
    """The rest of an answer's record from this app's own export, each field checked as the
    column takes it (anything else is left empty)."""
    if message.role != Message.Role.ASSISTANT:
        return
    for name in ("error_code", "model_reported", "upstream_request_id", "upstream_response_id"):
        value = record.get(name)
        column = Message._meta.get_field(name)
        if isinstance(value, str) and isinstance(column, models.CharField):
            setattr(message, name, value[: column.max_length])
    for name in (
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "total_tokens",
        "ttft_ms",
        "duration_ms",
    ):
        value = record.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
            setattr(message, name, value)
    for name in ("credits_used", "usd_spent"):
        setattr(message, name, _amount(record.get(name)))
    message.finished_at = timestamp(record.get("finished_at"))
    options = record.get("request_options")
    if isinstance(options, dict):
        message.request_options = _bounded(options, notes, "request options") or {}
    extras = record.get("provider")
    if isinstance(extras, dict):
        kept = {k: extras[k] for k in PROVIDER_KEYS if k in extras}
        calls = functions.calls_of(extras)
        if calls:
            # The calls, checked, never anything opaque beside them (signatures).
            kept[functions.CALLS_KEY] = [
                {"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls
            ]
        message.provider_extras = _bounded(kept, notes, "provider details") or {}


def _amount(value: Any) -> Decimal | None:
    """A credit or dollar amount as exported (a string), within the column (20 digits, 8 of
    them decimals)."""
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 40:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount < Decimal(10) ** 12:
        return None
    return amount.quantize(Decimal("0.00000001"))


def _bounded(value: dict[str, Any], notes: Notes, what: str) -> dict[str, Any] | None:
    """A JSON value from a file, kept if it is small: it is stored, and shown or sent."""
    try:
        size = len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        size = RECORD_JSON_MAX_BYTES + 1
    if size > RECORD_JSON_MAX_BYTES:
        notes.add("extras", f"{what}: over {RECORD_JSON_MAX_BYTES:,} bytes")
        return None
    return value


def _image(
    owner: User,
    name: str,
    load: Any,
    cache: dict[str, _Image],
    notes: Notes,
) -> _Image | None:
    """An image of the file, decoded and checked as an upload is (docs/SECURITY.md rule 6),
    or the person's own copy of it when they have one; None (noted) when it cannot be."""
    if load is None:
        notes.add("image_missing", name)
        return None
    raw: bytes = load()
    most = settings.CHAT_IMAGE_LIMITS["max_bytes"]
    if len(raw) > most:
        notes.add(
            "image_refused",
            f"{name}: {image_files.megabytes(len(raw))}, over the "
            f"{image_files.megabytes(most)} limit for an image",
        )
        return None
    digest = image_files.upload_digest(raw)
    if digest in cache:
        return cache[digest]
    found = _Image(digest=digest)
    # An image this app exported is stored under its content's hash: the same person's copy.
    found.attachment = (
        Attachment.objects.filter(owner=owner)
        .filter(Q(sha256=digest) | Q(upload_sha256=digest))
        .first()
    )
    if found.attachment is None:
        try:
            found.normalised = image_files.normalise_bytes(raw)
        except image_files.ImageRejected as exc:
            notes.add("image_refused", f"{name}: {exc.message}")
            return None
    cache[digest] = found
    return found


def _write(owner: User, ready: _Prepared, written: list[Attachment]) -> None:
    ready.conversation.save(force_insert=True)
    Message.objects.bulk_create(ready.messages, batch_size=_BATCH)
    links = []
    for message_id, position, image in ready.links:
        if image.attachment is None:
            assert image.normalised is not None
            image.attachment = attachment_store(
                owner=owner, image=image.normalised, digest=image.digest
            )
            image.normalised = None
            written.append(image.attachment)
        links.append(
            MessageAttachment(message_id=message_id, attachment=image.attachment, position=position)
        )
    MessageAttachment.objects.bulk_create(links, batch_size=_BATCH)


def _remove_rolled_back_files(written: list[Attachment]) -> None:
    """The files of the attachments this import stored and its rollback took back (one that
    someone else's upload made meanwhile keeps its row, and its files)."""
    if not written:
        return
    remaining = set(
        Attachment.objects.filter(pk__in=[a.pk for a in written]).values_list("pk", flat=True)
    )
    attachment_files_delete(
        names=[
            name
            for a in written
            if a.pk not in remaining
            for name in (a.file_name, a.thumbnail_name)
        ]
    )
