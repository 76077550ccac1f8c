"""Open WebUI's chat export: a JSON list of chat records (a single chat's "Export → JSON" is
a one-element list), a record alone, the inner `chat` object alone, or a feedback export
whose entries hold a record in `snapshot.chat`.

The tree is `chat.history.messages` (id -> message, `parentId` and `childrenIds` in order);
`history.currentId` ends the branch shown. Editing the first prompt leaves several roots:
they become versions of each other. `chat.messages`, a flat copy of the branch shown, is read
only when there is no history. Message times are seconds, the chat's `timestamp`
milliseconds. A failed answer (`error`) is kept as failed; reasoning blocks embedded in an
answer (`<details type="reasoning">`) become its reasoning, tool-call blocks are noted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from ..neutral import (
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

NAME = "Open WebUI"
ROUTE = "openwebui"

_DETAILS = re.compile(
    r"<details\b[^>]*\btype=\"(reasoning|tool_calls|code_interpreter)\"[^>]*>(.*?)</details>\s*",
    re.DOTALL,
)
_SUMMARY = re.compile(r"<summary>.*?</summary>", re.DOTALL)
_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,", re.IGNORECASE)


def looks_like(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    snapshot = item.get("snapshot")
    if isinstance(snapshot, dict) and isinstance(snapshot.get("chat"), dict):
        return True
    return isinstance(item.get("chat"), dict) or isinstance(item.get("history"), dict)


def read(value: Any, *, images: ImageLookup | None, budget: Budget) -> Source:
    source = Source(NAME)
    seen: set[str] = set()
    for item in value if isinstance(value, list) else [value]:
        if not looks_like(item):
            source.notes.add("not_conversation", type(item).__name__)
            continue
        record, chat = _unwrap(item)
        chat_id = text(record.get("id")) or text(chat.get("id"))
        if not chat_id:
            seed = f"{chat.get('title')!r}:{chat.get('timestamp')!r}".encode()
            chat_id = "h" + hashlib.sha256(seed).hexdigest()[:32]
        if chat_id in seen:
            continue  # a feedback export repeats a chat once per rating
        seen.add(chat_id)
        budget.conversation()
        source.conversations.append(_conversation(chat_id, record, chat, budget))
    return source


def _unwrap(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the chat record, its `chat` object) of any of the shapes the file may hold."""
    snapshot = item.get("snapshot")
    if isinstance(snapshot, dict) and isinstance(snapshot.get("chat"), dict):
        item = snapshot["chat"]
        if isinstance(item.get("chat"), dict):
            return item, item["chat"]
        return {}, item
    if isinstance(item.get("chat"), dict):
        return item, item["chat"]
    return {}, item


def _conversation(
    chat_id: str, record: dict[str, Any], chat: dict[str, Any], budget: Budget
) -> SourceConversation:
    conversation = SourceConversation(
        origin=f"{ROUTE}:{chat_id[:180]}",
        title=text(record.get("title")) or text(chat.get("title")),
        messages=[],
        created=timestamp(record.get("created_at")) or timestamp(chat.get("timestamp")),
        updated=timestamp(record.get("updated_at")),
        pinned=record.get("pinned") is True,
        archived=record.get("archived") is True,
    )
    params = obj(chat.get("params"))
    conversation.system_prompt = text(params.get("system")) or text(chat.get("system"))
    models = [m for m in chat.get("models") or () if isinstance(m, str)]
    history = obj(chat.get("history"))
    messages = history.get("messages")
    if isinstance(messages, dict) and messages:
        budget.take(len(messages))
        nodes = {key: m for key, m in messages.items() if isinstance(m, dict)}
    else:
        # No tree: the flat copy of the branch shown, each message after the one before.
        flat = [m for m in chat.get("messages") or () if isinstance(m, dict)]
        budget.take(len(flat))
        nodes = {}
        previous: str | None = None
        for index, m in enumerate(flat):
            key = text(m.get("id")) or f"m{index}"
            nodes[key] = {**m, "parentId": m.get("parentId", previous)}
            previous = key
    parents = _parents(nodes)
    for key in _in_order(nodes, parents):
        row = _message(key, nodes[key], parents.get(key), conversation, models)
        if row is not None:
            conversation.messages.append(row)
    current = history.get("currentId")
    if isinstance(current, str) and current in nodes:
        conversation.current = current
    _skip_unkept(conversation)
    return conversation


def _parents(nodes: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Each message's parent: its `parentId`, else the message listing it as a child."""
    parents: dict[str, str | None] = {}
    for key, node in nodes.items():
        parent = node.get("parentId")
        parents[key] = parent if isinstance(parent, str) and parent else None
    for key, node in nodes.items():
        for child in node.get("childrenIds") or ():
            if (
                isinstance(child, str)
                and child in nodes
                and parents.get(child) is None
                and "parentId" not in nodes[child]
            ):
                parents[child] = key
    return parents


def _in_order(nodes: dict[str, dict[str, Any]], parents: dict[str, str | None]) -> list[str]:
    """The keys, each parent's children in their `childrenIds` order (the order of the
    versions), then any message no parent lists."""
    ordered: list[str] = []
    placed: set[str] = set()
    for key, node in nodes.items():
        if parents.get(key) is None and key not in placed:
            ordered.append(key)
            placed.add(key)
        for child in node.get("childrenIds") or ():
            if isinstance(child, str) and child not in placed and parents.get(child) == key:
                ordered.append(child)
                placed.add(child)
    ordered.extend(key for key in nodes if key not in placed)
    return ordered


def _message(
    key: str,
    node: dict[str, Any],
    parent: str | None,
    conversation: SourceConversation,
    models: list[str],
) -> SourceMessage | None:
    notes = conversation.notes
    role = text(node.get("role"))
    content = text(node.get("content"))
    if role == "system":
        if content.strip():
            if not conversation.system_prompt:
                conversation.system_prompt = content
            else:
                notes.add("system", content)
        return _placeholder(key, parent)
    if role not in ("user", "assistant"):
        notes.add("role", f"{role or 'no role'}: {content}")
        return _placeholder(key, parent)
    row = SourceMessage(key=key, parent=parent, role=role, content=content)
    row.created = timestamp(node.get("timestamp"))
    if role == "assistant":
        row.content, row.reasoning = _split_details(content, notes)
        row.route = ROUTE
        model = text(node.get("model"), 200) or text(node.get("modelName"), 200)
        index = node.get("modelIdx")
        if not model and isinstance(index, int) and 0 <= index < len(models):
            model = models[index][:200]
        row.model = model or (models[0][:200] if models else "")
        usage = obj(node.get("usage"))
        row.prompt_tokens = count(usage.get("prompt_tokens")) or count(
            usage.get("prompt_eval_count")
        )
        row.completion_tokens = count(usage.get("completion_tokens")) or count(
            usage.get("eval_count")
        )
        row.total_tokens = count(usage.get("total_tokens"))
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict):
            row.reasoning_tokens = count(details.get("reasoning_tokens")) or None
        error = node.get("error")
        if error:
            row.status = "failed"
            said = text(error.get("content")) if isinstance(error, dict) else text(error)
            row.error_message = said[:2000] or "This answer failed in Open WebUI."
        elif node.get("done") is False:
            row.status = "interrupted"
            row.error_message = "Open WebUI had not finished this answer when it was exported."
    _files(node.get("files"), row, notes)
    return row


def _placeholder(key: str, parent: str | None) -> SourceMessage:
    """A message that is not a chat turn (a system prompt, an unknown role): kept only so its
    children find their place, then removed by `_skip_unkept`."""
    return SourceMessage(key=key, parent=parent, role="", content="")


def _skip_unkept(conversation: SourceConversation) -> None:
    """Remove the placeholders; their children follow the nearest kept ancestor."""
    by_key = {m.key: m for m in conversation.messages}
    skipped = {m.key for m in conversation.messages if not m.role}
    if not skipped:
        return

    def kept_above(key: str | None) -> str | None:
        seen: set[str] = set()
        while key is not None and key in skipped and key not in seen:
            seen.add(key)
            key = by_key[key].parent
        return None if key in skipped else key

    for message in conversation.messages:
        if message.parent in skipped:
            message.parent = kept_above(message.parent)
    if conversation.current in skipped:
        conversation.current = kept_above(conversation.current)
    conversation.messages = [m for m in conversation.messages if m.role]


def _split_details(content: str, notes: Notes) -> tuple[str, str]:
    """An answer's text without its embedded reasoning and tool-call blocks, and the
    reasoning's text."""
    if "<details" not in content:
        return content, ""
    reasoning: list[str] = []

    def take(match: re.Match[str]) -> str:
        inner = _SUMMARY.sub("", match[2]).strip()
        if match[1] == "reasoning":
            lines = [line.removeprefix(">").removeprefix(" ") for line in inner.splitlines()]
            reasoning.append("\n".join(lines).strip())
        else:
            notes.add("tool_call" if match[1] == "tool_calls" else "tool_output", inner)
        return ""

    return _DETAILS.sub(take, content).strip(), "\n\n".join(r for r in reasoning if r)


def _files(files: Any, row: SourceMessage, notes: Notes) -> None:
    """Images a message carried: a `data:` URL holds the image itself; a link to Open WebUI's
    file store does not (its bytes are not in the export). Other files are noted."""
    for item in files if isinstance(files, list) else ():
        if not isinstance(item, dict):
            continue
        url = text(item.get("url"))
        name = text(item.get("name")) or url[:80] or "a file"
        if text(item.get("type")) != "image":
            notes.add("file", name)
            continue
        if row.role != "user":
            notes.add("image_missing", f"{name} (in an answer)")
            continue
        match = _DATA_URL.match(url)
        if match is None:
            row.images.append(SourceImage(name=name))
            continue
        encoded = url[match.end() :]
        row.images.append(SourceImage(name=f"an image ({match[1]})", load=_decoder(encoded)))


def _decoder(encoded: str) -> Any:
    def load() -> bytes:
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return b""

    return load
