"""What every reader produces, whatever the format: conversations as trees of messages keyed
by the source's own ids, and notes of what could not be carried. `services.import_file`
writes them; the readers never touch the database."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatapp.core.errors import ServiceError

# Examples kept per kind of note: enough to recognise what was left out.
EXAMPLES_PER_KIND = 3
EXAMPLE_CHARS = 120


class ImportRefused(ServiceError):
    """A file that imports nothing: not an export, or past a limit (the message names it)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# What a note is about: (one, several), as the report says it.
KINDS: dict[str, tuple[str, str]] = {
    "tool_call": ("tool call", "tool calls"),
    "tool_output": ("tool output", "tool outputs"),
    "hidden": ("hidden message", "hidden messages"),
    "system": ("further system message", "further system messages"),
    "reasoning": ("reasoning summary", "reasoning summaries"),
    "content_type": ("message of an unknown content type", "messages of unknown content types"),
    "part": ("part of an unknown type", "parts of unknown types"),
    "image_missing": ("image not in the file", "images not in the file"),
    "image_refused": ("image refused", "images refused"),
    "image_over_limit": ("image past the limit per message", "images past the limit per message"),
    "file": ("attached file (not an image)", "attached files (not images)"),
    "audio": ("voice recording", "voice recordings"),
    "dangling": (
        "message whose parent is missing (kept at the start)",
        "messages whose parents are missing (kept at the start)",
    ),
    "cycle": ("message in a loop of parents", "messages in a loop of parents"),
    "role": ("message of an unknown role", "messages of unknown roles"),
    "system_prompt_cut": (
        "system prompt cut to the limit",
        "system prompts cut to the limit",
    ),
    "settings": ("setting this server does not take", "settings this server does not take"),
    "model": ("model not on this server", "models not on this server"),
    "extras": ("answer detail too large to keep", "answer details too large to keep"),
    "not_conversation": ("entry that is not a conversation", "entries that are not conversations"),
    "empty": ("empty message", "empty messages"),
    "duplicate": ("message listed twice (kept once)", "messages listed twice (kept once)"),
}


@dataclass
class Notes:
    """What could not be carried, by kind: how many, and a few examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        example = " ".join(example.split())
        if example:
            kept = self.examples.setdefault(kind, [])
            if len(kept) < EXAMPLES_PER_KIND and example not in kept:
                cut = example[:EXAMPLE_CHARS]
                kept.append(cut + "…" if len(example) > EXAMPLE_CHARS else cut)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self) -> list[NoteLine]:
        return [
            NoteLine(
                count=count,
                what=KINDS[kind][0 if count == 1 else 1],
                examples=tuple(self.examples.get(kind, ())),
            )
            for kind, count in self.counts.items()
        ]


@dataclass(frozen=True, slots=True)
class NoteLine:
    count: int
    what: str
    examples: tuple[str, ...]


@dataclass(slots=True)
class SourceImage:
    """An image a message carried: its bytes when the file holds them (`load`), else None."""

    name: str
    load: Callable[[], bytes] | None = None


@dataclass(slots=True)
class SourceMessage:
    key: str  # the source's id, unique within its conversation
    parent: str | None  # the key of the message it follows (None: a root)
    role: str  # "user" or "assistant"
    content: str
    created: datetime | None = None
    model: str = ""
    route: str = ""
    status: str = "complete"
    finish_reason: str = ""
    error_message: str = ""
    reasoning: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    images: list[SourceImage] = field(default_factory=list)
    # This app's own export only: the answer's record as exported (checked by its reader).
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceConversation:
    origin: str  # "chatgpt:<id>", "openwebui:<id>", "chatapp:<id>"
    title: str
    messages: list[SourceMessage]
    current: str | None = None  # the key of the end of the branch shown
    created: datetime | None = None
    updated: datetime | None = None
    system_prompt: str = ""
    notes: Notes = field(default_factory=Notes)
    # This app's own export only.
    source_id: str = ""
    title_locked: bool = False
    pinned: bool = False
    archived: bool = False
    route: str = ""
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Source:
    """Everything a file holds, as its reader found it."""

    format: str  # the format's name, as the report says it
    conversations: list[SourceConversation] = field(default_factory=list)
    notes: Notes = field(default_factory=Notes)


# Finds an image a message names in the file being imported: a loader of its bytes, or None.
ImageLookup = Callable[[str], Callable[[], bytes] | None]
# Messages with no time sort after those with one.
NEVER = datetime.max.replace(tzinfo=UTC)

# Earliest and latest times believed: anything else is a broken or hostile value.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(9000, 1, 1, tzinfo=UTC).timestamp()


def timestamp(value: Any) -> datetime | None:
    """A time from an export: Unix seconds, milliseconds or microseconds (told apart by size:
    exports mix them, Open WebUI's chat in ms and its messages in s), or an ISO-8601 string.
    None for anything missing or implausible, which the importer then places after its
    parent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        if seconds > 1e14:
            seconds /= 1e6
        elif seconds > 1e11:
            seconds /= 1e3
        if not _EARLIEST <= seconds <= _LATEST:
            return None
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and 0 < len(value) <= 40:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if not _EARLIEST <= when.timestamp() <= _LATEST:
            return None
        return when.astimezone(UTC)
    return None


def obj(value: Any) -> dict[str, Any]:
    """An object field of an export, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def text(value: Any, limit: int | None = None) -> str:
    """A string field of an export, or "" for anything else."""
    if not isinstance(value, str):
        return ""
    return value if limit is None else value[:limit]


def count(value: Any) -> int | None:
    """A token count: a non-negative integer that fits the column, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 2_147_483_647 else None


class Budget:
    """What one import may add (`CHAT_LIMITS["import_conversations"]`, `["import_messages"]`),
    counted by the readers as they go, before a conversation's messages are built."""

    def __init__(self, conversations: int, messages: int) -> None:
        self.most_conversations = conversations
        self.most_messages = messages
        self.conversations = 0
        self.messages = 0

    def conversation(self) -> None:
        self.conversations += 1
        if self.conversations > self.most_conversations:
            raise ImportRefused(
                f"This file holds more than {self.most_conversations:,} conversations, the "
                "limit for one import. Split the export and import it in parts.",
                413,
            )

    def take(self, messages: int) -> None:
        self.messages += messages
        if self.messages > self.most_messages:
            raise ImportRefused(
                f"This file holds more than {self.most_messages:,} messages, the limit for one "
                "import. Split the export and import it in parts.",
                413,
            )
