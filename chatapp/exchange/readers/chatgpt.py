"""ChatGPT's data export: `conversations.json` (an array of conversations; one conversation
object alone is read too), in its zip or not.

Each conversation's `mapping` is the whole tree, keyed by node id, with `parent` and
`children`; `current_node` ends the branch shown. What a person saw is kept: user and
assistant messages addressed to everyone. Hidden messages (the empty system prompt, custom
instructions, commentary), tool calls and tool outputs stay out of the thread and are noted;
a kept message then follows its nearest kept ancestor. A parent missing from the mapping
makes its child a root (noted). Images are found in the zip by their asset pointer's id.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..neutral import (
    NEVER,
    Budget,
    ImageLookup,
    Notes,
    Source,
    SourceConversation,
    SourceImage,
    SourceMessage,
    count,
    obj,
    text,
    timestamp,
)

NAME = "ChatGPT"
ROUTE = "chatgpt"


# ChatGPT's end of an answer (metadata.finish_details.type) in the app's neutral words.
FINISH = {"stop": "stop", "max_tokens": "length", "interrupted": "stopped"}
# Content types that are what a tool said (browsing pages, code output, errors).
TOOL_CONTENT = {
    "execution_output",
    "tether_browsing_display",
    "tether_browsing_code",
    "tether_quote",
    "system_error",
}


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and (
        "mapping" in item
        or "current_node" in item
        or ("create_time" in item and "title" in item and "chat" not in item)
    )


def read(value: Any, *, images: ImageLookup | None, budget: Budget) -> Source:
    source = Source(NAME)
    for item in value if isinstance(value, list) else [value]:
        if not looks_like(item):
            source.notes.add("not_conversation", _describe(item))
            continue
        budget.conversation()
        source.conversations.append(_conversation(item, images, budget))
    return source


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        return "an object with " + ", ".join(str(key)[:30] for key in list(item)[:5])
    return type(item).__name__


def _conversation(item: dict[str, Any], images: ImageLookup | None, budget: Budget) -> Any:
    conversation_id = text(item.get("conversation_id")) or text(item.get("id"))
    if not conversation_id:
        # No id to recognise it by next time: its title and time stand in.
        seed = f"{item.get('title')!r}:{item.get('create_time')!r}".encode()
        conversation_id = "h" + hashlib.sha256(seed).hexdigest()[:32]
    conversation = SourceConversation(
        origin=f"{ROUTE}:{conversation_id[:180]}",
        title=text(item.get("title")),
        messages=[],
        created=timestamp(item.get("create_time")),
        updated=timestamp(item.get("update_time")),
    )
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        return conversation
    budget.take(len(mapping))
    default_model = text(item.get("default_model_slug"), 200)
    kept: dict[str, SourceMessage] = {}
    parents: dict[str, str | None] = {}
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            continue
        parent = node.get("parent")
        parents[node_id] = parent if isinstance(parent, str) and parent else None
        message = node.get("message")
        if isinstance(message, dict):
            row = _message(node_id, message, conversation, default_model, images)
            if row is not None:
                kept[node_id] = row
    nearest = _NearestKept(parents, kept, conversation.notes)
    for node_id, row in kept.items():
        row.parent = nearest.above(node_id)
    # Sibling order: ChatGPT keeps none; the importer sorts by time, then by this order.
    conversation.messages = sorted(kept.values(), key=lambda m: m.created or NEVER)
    current = item.get("current_node")
    if isinstance(current, str) and current in parents:
        conversation.current = current if current in kept else nearest.above(current)
    return conversation


class _NearestKept:
    """A node's nearest ancestor that is kept: hidden and tool nodes between are skipped.
    Walked iteratively, each node visited once (a loop of parents ends the walk)."""

    def __init__(
        self, parents: dict[str, str | None], kept: dict[str, SourceMessage], notes: Notes
    ) -> None:
        self.parents = parents
        self.kept = kept
        self.notes = notes
        self.memo: dict[str, str | None] = {}

    def above(self, node_id: str) -> str | None:
        chain: list[str] = []
        seen = {node_id}
        current = self.parents.get(node_id)
        found: str | None = None
        while current is not None:
            if current in self.memo:
                found = self.memo[current]
                break
            if current not in self.parents:
                self.notes.add("dangling", f"{node_id} follows {current}, which is not there")
                break
            if current in self.kept:
                found = current
                break
            if current in seen:
                break  # a loop of skipped nodes: what follows starts afresh
            seen.add(current)
            chain.append(current)
            current = self.parents[current]
        for skipped in chain:
            self.memo[skipped] = found
        return found


def _message(
    node_id: str,
    message: dict[str, Any],
    conversation: SourceConversation,
    default_model: str,
    images: ImageLookup | None,
) -> SourceMessage | None:
    """The message of a node as the thread shows it, or None (noted why) when it is not a
    chat turn."""
    notes = conversation.notes
    author = obj(message.get("author"))
    role = text(author.get("role"))
    content = obj(message.get("content"))
    kind = text(content.get("content_type")) or "text"
    metadata = obj(message.get("metadata"))
    recipient = message.get("recipient")
    words = _plain_text(content)
    if metadata.get("is_visually_hidden_from_conversation") is True or kind in (
        "user_editable_context",
        "model_editable_context",
    ):
        if words.strip() or kind.endswith("_context"):
            notes.add("hidden", f"{role or 'message'}: {words or _context_words(content)}")
        return None
    if role == "system":
        if words.strip():
            if not conversation.system_prompt:
                conversation.system_prompt = words
            else:
                notes.add("system", words)
        return None
    if role == "tool":
        notes.add("tool_output", f"{text(author.get('name')) or 'tool'}: {words or kind}")
        return None
    if role not in ("user", "assistant"):
        notes.add("role", f"{role or 'no role'}: {words}")
        return None
    if role == "assistant" and isinstance(recipient, str) and recipient not in ("all", ""):
        notes.add("tool_call", f"to {recipient}: {words or kind}")
        return None
    if message.get("channel") == "commentary":
        notes.add("hidden", f"commentary: {words}")
        return None
    if kind in ("thoughts", "reasoning_recap"):
        notes.add("reasoning", words or kind)
        return None
    if kind in TOOL_CONTENT:
        notes.add("tool_output", f"{kind}: {words}")
        return None
    row = SourceMessage(
        key=node_id,
        parent=None,
        role=role,
        content="",
        created=timestamp(message.get("create_time")),
    )
    if kind == "text":
        row.content = words
    elif kind == "multimodal_text":
        row.content = _parts(content.get("parts"), row, notes, images)
    elif kind == "code":
        language = text(content.get("language"))
        language = "" if language in ("unknown", "") else language
        row.content = f"```{language}\n{text(content.get('text'))}\n```"
    else:
        notes.add("content_type", f"{kind}: {words}")
        return None
    for attached in metadata.get("attachments") or ():
        if isinstance(attached, dict) and not text(attached.get("mimeType")).startswith("image/"):
            notes.add("file", text(attached.get("name")) or text(attached.get("id")))
    if not row.content.strip() and not row.images:
        if role == "user" or message.get("status") == "finished_successfully":
            notes.add("empty", f"{role} message {node_id}")
        return None
    if role == "assistant":
        row.route = ROUTE
        row.model = text(metadata.get("model_slug"), 200) or default_model
        details = metadata.get("finish_details")
        finish = text(details.get("type")) if isinstance(details, dict) else ""
        row.finish_reason = FINISH.get(finish, "")
        status = text(message.get("status"))
        if status == "in_progress":
            row.status = "interrupted"
            row.error_message = "ChatGPT was still writing this answer when it was exported."
        elif status == "finished_partial_completion" or finish == "interrupted":
            row.status = "stopped"
            row.finish_reason = "stopped"
        usage = obj(metadata.get("usage"))
        row.prompt_tokens = count(usage.get("prompt_tokens"))
        row.completion_tokens = count(usage.get("completion_tokens"))
    return row


def _plain_text(content: dict[str, Any]) -> str:
    """The words of any content type, for the thread or for a note's example."""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n\n".join(p for p in parts if isinstance(p, str) and p)
    for key in ("text", "result", "summary", "content"):
        value = content.get(key)
        if isinstance(value, str) and value:
            return value
    thoughts = content.get("thoughts")
    if isinstance(thoughts, list):
        return " ".join(
            text(t.get("summary")) or text(t.get("content"))
            for t in thoughts
            if isinstance(t, dict)
        )
    return ""


def _context_words(content: dict[str, Any]) -> str:
    return (
        " ".join(text(content.get(key)) for key in ("user_profile", "user_instructions")).strip()
        or "custom instructions"
    )


def _parts(parts: Any, row: SourceMessage, notes: Notes, images: ImageLookup | None) -> str:
    """A multimodal message's text, with its images put on the message (found in the zip by
    their asset pointer's id, or noted as not in the file)."""
    words: list[str] = []
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, str):
            if part:
                words.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = text(part.get("content_type"))
        if kind == "image_asset_pointer":
            pointer = text(part.get("asset_pointer"))
            asset = pointer.split("://", 1)[-1]
            load = images(asset) if images is not None and asset else None
            row.images.append(SourceImage(name=asset or pointer or "an image", load=load))
        elif kind == "audio_transcription" and text(part.get("text")):
            words.append(text(part.get("text")))
        elif "audio" in kind or "video" in kind:
            notes.add("audio", kind)
        else:
            notes.add("part", kind or "a part with no type")
    return "\n\n".join(words)
