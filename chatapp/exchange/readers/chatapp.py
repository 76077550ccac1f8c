"""This app's own export (`export.py` writes it): one JSON document per conversation,
`{"format": "chatapp-export", "version": 1, "conversation": {...}, "messages": [...]}`, in a
zip with the images (`images/<attachment id>.<ext>`) or alone (its images are then noted as
not in the file). Everything in it is checked again by the importer: a file is untrusted
whoever wrote it."""

from __future__ import annotations

from typing import Any

from ..neutral import (
    Budget,
    ImageLookup,
    ImportRefused,
    Source,
    SourceConversation,
    SourceImage,
    SourceMessage,
    text,
    timestamp,
)

NAME = "Gemini Chat"
FORMAT = "chatapp-export"
VERSION = 1
STATUSES = {"complete", "stopped", "interrupted", "failed"}
ACTIVE = {"pending", "streaming"}


def looks_like(value: Any) -> bool:
    return isinstance(value, dict) and value.get("format") == FORMAT


def read(value: Any, *, images: ImageLookup | None, budget: Budget) -> Source:
    source = Source(NAME)
    version = value.get("version")
    if version != VERSION:
        raise ImportRefused(
            f"This export is version {str(version)[:20]} of this app's format; this server "
            f"reads version {VERSION}."
        )
    conversation = value.get("conversation")
    messages = value.get("messages")
    if not isinstance(conversation, dict) or not isinstance(messages, list):
        raise ImportRefused(
            "This export has no conversation and messages in it: it is not a complete export."
        )
    budget.conversation()
    budget.take(len(messages))
    source.conversations.append(_conversation(conversation, messages, images))
    return source


def _conversation(
    record: dict[str, Any], messages: list[Any], images: ImageLookup | None
) -> SourceConversation:
    source_id = text(record.get("id"), 40)
    settings = record.get("settings")
    current = record.get("current_leaf")
    conversation = SourceConversation(
        origin=text(record.get("origin"), 200) or f"chatapp:{source_id}",
        source_id=source_id,
        title=text(record.get("title")),
        title_locked=record.get("title_locked") is True,
        pinned=record.get("pinned") is True,
        archived=record.get("archived") is True,
        route=text(record.get("route"), 32),
        model=text(record.get("model"), 200),
        system_prompt=text(record.get("system_prompt")),
        settings=settings if isinstance(settings, dict) else {},
        created=timestamp(record.get("created_at")),
        updated=timestamp(record.get("updated_at")),
        current=current if isinstance(current, str) else None,
        messages=[],
    )
    notes = conversation.notes
    for item in messages:
        if not isinstance(item, dict):
            notes.add("not_conversation", type(item).__name__)
            continue
        role = text(item.get("role"))
        key = text(item.get("id"), 40)
        if role not in ("user", "assistant") or not key:
            notes.add("role", f"{role or 'no role'}: {text(item.get('content'))}")
            continue
        parent = item.get("parent")
        row = SourceMessage(
            key=key,
            parent=parent if isinstance(parent, str) and parent else None,
            role=role,
            content=text(item.get("content")),
            created=timestamp(item.get("created_at")),
            route=text(item.get("route"), 32),
            model=text(item.get("model"), 200),
            reasoning=text(item.get("reasoning")),
            finish_reason=text(item.get("finish_reason"), 32),
            error_message=text(item.get("error_message")),
            record=item,
        )
        status = text(item.get("status"))
        if status in ACTIVE:
            # Exported while it was being written: nothing will finish it here.
            row.status = "interrupted"
            row.error_message = "This answer was still being written when it was exported."
        elif status in STATUSES:
            row.status = status
        for image in item.get("images") or ():
            if not isinstance(image, dict):
                continue
            name = text(image.get("file"), 300)
            load = images(name) if images is not None and name else None
            row.images.append(SourceImage(name=name or "an image", load=load))
        conversation.messages.append(row)
    return conversation
