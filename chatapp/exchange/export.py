"""Exports, written as they are read: a conversation as Markdown (the branch shown), as this
app's JSON (the whole tree, `FORMAT` version `VERSION`), and zips of those documents with the
images they name, streamed through `zipfile` into a sink that hands each piece on at once:
memory stays bounded by a chunk of messages and one image, whatever is exported.

The JSON carries what a person would want to keep and what an import needs to rebuild the
conversation: every message on every branch with its parent, the branch shown, the settings,
each answer's record (route, model, status, finish reason, tokens, credits, timings, the
options sent). Of an answer's provider extras only what the page shows leaves
(`services.PROVIDER_KEYS`): Gemini's thought signatures are opaque data for the upstream
that wrote them. Nothing of an account (no API key, no password, no id of the person) is in
it (docs/SECURITY.md rule 12).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.utils import timezone

from chatapp.attachments.models import Attachment
from chatapp.attachments.selectors import attachment_bytes
from chatapp.conversations.models import Conversation, Message
from chatapp.providers import catalog, functions

from . import selectors
from .services import PROVIDER_KEYS

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

FORMAT = "chatapp-export"
VERSION = 1
# Bytes gathered before they are handed on: fewer, larger writes, still a bounded amount.
PIECE_BYTES = 64 * 1024
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def file_name(title: str, extension: str) -> str:
    """A download's name from a conversation's title, in plain ASCII letters and digits."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", ascii_title).strip("-")[:60].strip("-")
    return f"{stem or 'conversation'}.{extension}"


def image_path(attachment: Attachment) -> str:
    extension = attachment.file_name.rsplit(".", 1)[-1] if "." in attachment.file_name else "bin"
    return f"images/{attachment.id}.{extension}"


# --- Markdown -------------------------------------------------------------------------------


def conversation_markdown(conversation: Conversation) -> Iterator[bytes]:
    """The branch shown as Markdown: the title, a short header, a heading per message."""
    spec = catalog.find_model(conversation.route, conversation.model)
    model = _model_words(conversation.route, conversation.model, spec)
    lines = [
        f"# {_one_line(conversation.title) or 'New chat'}",
        "",
        f"- Started: {_when(conversation.created_at)}",
        f"- Last activity: {_when(conversation.updated_at)}",
        f"- Model: {model}",
        f"- Exported: {_when(timezone.now())} (the branch shown; the JSON export holds every "
        "version)",
    ]
    if conversation.system_prompt:
        lines += [
            "",
            "System prompt:",
            "",
            *(f"> {line}" for line in _lines(conversation.system_prompt)),
        ]
    yield ("\n".join(lines) + "\n").encode()
    for message in selectors.branch_for_export(conversation=conversation):
        yield ("\n" + "\n".join(_markdown_turn(message)) + "\n").encode()


def _markdown_turn(message: Message) -> list[str]:
    results = (
        functions.results_of(message.provider_extras)
        if message.role == Message.Role.USER and functions.RESULTS_KEY in message.provider_extras
        else []
    )
    if results:
        lines = ["## Function results", ""]
        for result in results:
            lines += [f"Result for `{result['name']}`:", "", *_fenced(result["content"]), ""]
        return lines[:-1]
    if message.role == Message.Role.USER:
        lines = ["## You", ""]
        for number, link in enumerate(message.image_links, 1):
            attachment = link.attachment
            lines.append(
                f"![Image {number} ({attachment.width} × {attachment.height})]"
                f"({image_path(attachment)})"
            )
        if message.image_links:
            lines.append("")
        lines.append(message.content)
        return lines
    spec = catalog.find_model(message.route, message.model)
    lines = [f"## {_model_words(message.route, message.model_reported or message.model, spec)}", ""]
    if message.content:
        lines.append(message.content)
    for call in functions.calls_of(message.provider_extras):
        lines += ["", f"Function call: `{call['name']}`", ""]
        lines += _fenced(functions.pretty_arguments(call), "json")
    calls = functions.CALLS_KEY in message.provider_extras
    if message.status in (Message.Status.FAILED, Message.Status.INTERRUPTED):
        lines += ["", f"*No answer: {_one_line(message.error_message) or message.status}.*"]
    elif message.status == Message.Status.STOPPED:
        lines += ["", "*Stopped.*"]
    elif not message.content and not calls:
        lines.append("*No text.*")
    return lines


def _fenced(text: str, language: str = "") -> list[str]:
    """A fence one backtick longer than any run of them in the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, *_lines(text), fence]


def _model_words(route: str, model: str, spec: catalog.ModelSpec | None) -> str:
    name = spec.label if spec is not None else (model or "Assistant")
    place = catalog.ROUTE_LABELS.get(route, route)
    return f"{name} · {place}" if place else name


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _lines(text: str) -> list[str]:
    return text.splitlines() or [""]


# --- JSON -----------------------------------------------------------------------------------


def conversation_record(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "title_locked": conversation.title_locked,
        "route": conversation.route,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "settings": conversation.settings,
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "origin": conversation.origin,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "current_leaf": conversation.current_leaf_id,
    }


def message_record(message: Message) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": message.id,
        "parent": message.parent_id,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at,
    }
    if message.role == Message.Role.USER:
        record["images"] = [
            {
                "id": link.attachment.id,
                "file": image_path(link.attachment),
                "mime_type": link.attachment.mime_type,
                "width": link.attachment.width,
                "height": link.attachment.height,
            }
            for link in message.image_links
        ]
        results = functions.results_of(message.provider_extras)
        if results:
            record["function_results"] = results
        return record
    extras = message.provider_extras if isinstance(message.provider_extras, dict) else {}
    record.update(
        {
            "reasoning": message.reasoning,
            "status": message.status,
            "error_code": message.error_code,
            "error_message": message.error_message,
            "finish_reason": message.finish_reason,
            "route": message.route,
            "model": message.model,
            "model_reported": message.model_reported,
            "request_options": message.request_options,
            "upstream_request_id": message.upstream_request_id,
            "upstream_response_id": message.upstream_response_id,
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "reasoning_tokens": message.reasoning_tokens,
            "total_tokens": message.total_tokens,
            "credits_used": _decimal(message.credits_used),
            "usd_spent": _decimal(message.usd_spent),
            "ttft_ms": message.ttft_ms,
            "duration_ms": message.duration_ms,
            "finished_at": message.finished_at,
            "provider": {key: extras[key] for key in PROVIDER_KEYS if key in extras},
        }
    )
    calls = functions.calls_of(extras)
    if calls:
        # Without what Gemini put beside them (signatures): opaque data for its upstream.
        record["provider"][functions.CALLS_KEY] = [
            {"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls
        ]
    return record


def _decimal(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def conversation_json(
    conversation: Conversation, attachments: dict[Any, Attachment] | None = None
) -> Iterator[bytes]:
    """The conversation as one JSON document, a message at a time; the attachments its
    messages carry are collected in `attachments` as they pass."""
    head = orjson.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": timezone.now(),
            "conversation": conversation_record(conversation),
        },
        option=_JSON_OPTIONS,
    )
    piece = bytearray(head[:-1] + b',"messages":[\n')
    first = True
    for message in selectors.messages_for_export(conversation=conversation):
        if not first:
            piece += b",\n"
        first = False
        piece += orjson.dumps(message_record(message), option=_JSON_OPTIONS)
        if attachments is not None:
            for link in message.image_links:
                attachments.setdefault(link.attachment.id, link.attachment)
        if len(piece) >= PIECE_BYTES:
            yield bytes(piece)
            piece.clear()
    piece += b"\n]}\n"
    yield bytes(piece)


# --- Zips -----------------------------------------------------------------------------------


class _Sink:
    """What `zipfile` writes, kept until the stream takes it. No `tell` or `seek`: zipfile
    then writes each entry's sizes after its data, as a stream needs."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.pieces)
        self.pieces.clear()
        self.size = 0
        return out


class _Zip:
    def __init__(self) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", allowZip64=True)
        self.when = timezone.now().timetuple()[:6]

    def entry(self, name: str, pieces: Iterable[bytes], *, compress: bool) -> Iterator[bytes]:
        info = zipfile.ZipInfo(name, date_time=self.when)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with self.zip.open(info, "w", force_zip64=True) as fh:
            for piece in pieces:
                fh.write(piece)
                if self.sink.size >= PIECE_BYTES:
                    yield self.sink.take()
        yield self.sink.take()

    def close(self) -> bytes:
        self.zip.close()
        return self.sink.take()


def _conversation_entries(
    archive: _Zip, conversation: Conversation, written: set[Any]
) -> Iterator[bytes]:
    attachments: dict[Any, Attachment] = {}
    yield from archive.entry(
        f"conversations/{conversation.id}.json",
        conversation_json(conversation, attachments),
        compress=True,
    )
    for attachment_id, attachment in attachments.items():
        if attachment_id in written:
            continue
        written.add(attachment_id)
        try:
            data = attachment_bytes(attachment=attachment)
        except Exception:
            # Storage lost the file: the document still names it, and an import says so.
            log.exception("export: the stored file of attachment %s is missing", attachment_id)
            continue
        yield from archive.entry(image_path(attachment), [data], compress=False)


def conversation_zip(conversation: Conversation) -> Iterator[bytes]:
    """One conversation's JSON document and its images."""
    archive = _Zip()
    yield from _conversation_entries(archive, conversation, set())
    yield archive.close()


def conversations_zip(owner: User) -> Iterator[bytes]:
    """Every conversation of the person: one JSON document each (`conversations/<id>.json`)
    and each image once (`images/<attachment id>.<ext>`), however many messages carry it."""
    archive = _Zip()
    written: set[Any] = set()
    for conversation in selectors.conversations_for_export(owner=owner):
        yield from _conversation_entries(archive, conversation, written)
    yield archive.close()
