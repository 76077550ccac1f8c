"""Export and import helpers: the real samples (tests/fixtures/exchange/, README there), the
variations docs/ARCHITECTURE.md ("Export and import") lists, built from them, uploads, and a conversation with branches and an
image made the way the app makes them."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests import imagegen

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exchange"


def sample(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sample_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def as_upload(data: bytes, name: str = "export.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def import_data(owner: Any, data: bytes) -> Any:
    from chatapp.exchange.services import import_file

    upload = io.BytesIO(data)
    return import_file(owner=owner, upload=upload, size=len(data))


def chatgpt_node(node_id: str, parent: str | None, role: str, content: dict, **message: Any):
    """A ChatGPT mapping node as its export writes one."""
    return {
        "id": node_id,
        "parent": parent,
        "children": [],
        "message": {
            "id": node_id,
            "author": {"role": role, "name": message.pop("name", None), "metadata": {}},
            "create_time": message.pop("create_time", None),
            "content": content,
            "status": message.pop("status", "finished_successfully"),
            "metadata": message.pop("metadata", {}),
            "recipient": message.pop("recipient", "all"),
            **message,
        },
    }


# The chatgpt-tree.json sample's message that a "picture" node follows.
PICTURE_PARENT = "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8"


def pointer(url: str, kind: str = "image_asset_pointer") -> dict:
    """An asset pointer part of a ChatGPT multimodal message."""
    return {"content_type": kind, "asset_pointer": url}


def chatgpt_picture(*parts: Any) -> dict:
    """A user node after the tree sample's answer, its multimodal `parts` as given."""
    return chatgpt_node(
        "picture",
        PICTURE_PARENT,
        "user",
        {"content_type": "multimodal_text", "parts": list(parts)},
        create_time=1714585070.0,
    )


def chatgpt_with(conversation: dict, *nodes: dict) -> dict:
    """A ChatGPT conversation with more nodes (their parents' children lists updated)."""
    conversation = copy.deepcopy(conversation)
    for node in nodes:
        conversation["mapping"][node["id"]] = node
        parent = conversation["mapping"].get(node["parent"])
        if parent is not None:
            parent["children"].append(node["id"])
    return conversation


@pytest.fixture
def branched(user: Any) -> Any:
    """A conversation made as the app makes one: an image in the first prompt, a regenerated
    answer (2 versions) and an edited prompt (2 versions), the newest branch shown, answers
    with their records."""
    from chatapp import rendering
    from chatapp.attachments.models import MessageAttachment
    from chatapp.attachments.services import attachment_create
    from chatapp.models import Conversation, Message

    start = timezone.now() - timedelta(days=2)
    conversation = Conversation.objects.create(
        owner=user,
        title="Branches and an image",
        route="aimlapi",
        model="google/gemini-2.5-flash",
        system_prompt="Answer briefly.",
        settings={"temperature": 0.4},
        created_at=start,
        updated_at=start + timedelta(minutes=9),
    )
    image = attachment_create(owner=user, upload=io.BytesIO(imagegen.png(40, 30)))

    def add(parent: Any, role: str, text: str, minute: int, **fields: Any) -> Any:
        extra: dict[str, Any] = {}
        if role == "assistant":
            extra = {
                "route": "aimlapi",
                "model": "google/gemini-2.5-flash",
                "model_reported": "gemini-2.5-flash-001",
                "content_html": rendering.render_markdown(text),
                "html_version": rendering.RENDERER_VERSION,
                "prompt_tokens": 12,
                "completion_tokens": 34,
                "total_tokens": 46,
                "ttft_ms": 210,
                "duration_ms": 900,
                "finish_reason": "stop",
                "request_options": {"temperature": 0.4},
                "provider_extras": {"finish_reason": "STOP", "google": {"thought_signature": "x"}},
                "finished_at": start + timedelta(minutes=minute, seconds=2),
            }
        return Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=role,
            content=text,
            created_at=start + timedelta(minutes=minute),
            **{**extra, **fields},
        )

    first = add(None, "user", "What is in this picture?", 0)
    MessageAttachment.objects.create(message=first, attachment=image, position=0)
    old = add(first, "assistant", "A **gradient**.", 1)
    add(old, "user", "And the colours?", 2)
    new = add(first, "assistant", "A gradient of colours:\n\n- red\n- blue", 3)
    asked = add(new, "user", "Which is first?", 4)
    add(asked, "assistant", "Red.", 5)
    edited = add(new, "user", "Which is last?", 6)
    leaf = add(edited, "assistant", "Blue.", 7, credits_used="0.00012000")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)
    conversation.refresh_from_db()
    return conversation
